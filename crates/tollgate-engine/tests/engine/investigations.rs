//! Investigations on both stores: inherited identity that cannot be forged,
//! tool subsets, a parent that cannot close while children run, the join
//! (deterministic order, a handoff with every concern), and the per-case
//! refund limit under concurrent children.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

use crate::common::on_both;
use serde_json::json;
use std::sync::Arc;
use tollgate_core::{Effect, FindingStatus, ToolCall, ToolOutcome, Verdict};
use tollgate_engine::journal::{Kind, Record};
use tollgate_engine::{Concern, Conflict, Engine, Error, WorkflowHandle};

const MULTI: &str = include_str!("../../../../examples/multi-concern.toml");

async fn engine(url: &str) -> (Engine, WorkflowHandle) {
    let engine = Engine::open(url).await.unwrap();
    let handle = engine.register_workflow(MULTI, "multi-concern.toml").await.unwrap();
    (engine, handle)
}

async fn decide(
    engine: &Engine,
    session: &str,
    id: &str,
    tool: &str,
    args: serde_json::Value,
) -> tollgate_engine::CallDecision {
    engine.decide(session, &ToolCall::new(id, tool, args)).await.unwrap()
}

async fn ok(engine: &Engine, session: &str, id: &str, result: serde_json::Value) -> Vec<Effect> {
    let recorded = engine.record_result(session, id, &result, ToolOutcome::Succeeded).await.unwrap();
    assert!(recorded.recorded, "{recorded:?}");
    recorded.effects
}

/// A parent session with customer c_42 verified.
async fn verified_parent(engine: &Engine, handle: &WorkflowHandle, parent: &str) {
    engine.create_session(handle, parent, None).await.unwrap();
    let d = decide(engine, parent, "v", "get_customer", json!({"email": "a@example.com", "zip": "94107"})).await;
    assert_eq!(d.decision.verdict(), Verdict::Allow);
    ok(engine, parent, "v", json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"}))
        .await;
}

fn concern(id: &str, text: &str, tools: Option<&[&str]>) -> Concern {
    Concern {
        id: id.to_owned(),
        concern: text.to_owned(),
        tools: tools.map(|t| t.iter().map(|s| (*s).to_owned()).collect()),
    }
}

async fn lookup(engine: &Engine, session: &str, id: &str, order: &str, owner: &str, total: f64) {
    let d = decide(engine, session, id, "lookup_order", json!({"order_id": order})).await;
    assert_eq!(d.decision.verdict(), Verdict::Allow, "{}", d.json());
    ok(engine, session, id, json!({"order_id": order, "customer_id": owner, "total": total, "status": "delivered"}))
        .await;
}

async fn assert_checkpoint_is_replay(engine: &Engine, session: &str) {
    let (_, cached) = engine.state(session).await.unwrap();
    let (_, replayed) = engine.replay(session).await.unwrap();
    assert_eq!(cached, replayed, "checkpoint and replay differ for {session}");
}

fn customer_id(engine_state: &(Arc<tollgate_core::Workflow>, tollgate_core::SessionState)) -> Option<String> {
    let (workflow, state) = engine_state;
    state.identity_facts(workflow).first().map(|(_, fields)| fields["id"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn an_investigation_inherits_the_verified_customer_and_cannot_forge_it() {
    on_both(|url| async move {
        let (engine, handle) = engine(&url).await;
        verified_parent(&engine, &handle, "p").await;
        let opened = engine
            .open_investigations(
                "p",
                &[
                    concern("refund", "refund order #W1", Some(&["get_customer", "lookup_order", "process_refund"])),
                    concern("address", "new address", Some(&["update_address"])),
                ],
            )
            .await
            .unwrap();
        assert_eq!(opened.iter().map(|o| o.session.as_str()).collect::<Vec<_>>(), ["p:refund", "p:address"]);
        assert_eq!(engine.session("p:refund").await.unwrap().unwrap().parent_id.as_deref(), Some("p"));

        // The customer is in the child's state from its first entry, and the replay agrees.
        let journal = engine.journal("p:refund").await.unwrap();
        let Record::Opened(opened) = &journal[0].record else { panic!("{:?}", journal[0]) };
        assert_eq!(opened.concern, "refund order #W1");
        assert_eq!(customer_id(&engine.state("p:refund").await.unwrap()).as_deref(), Some("c_42"));
        assert_checkpoint_is_replay(&engine, "p:refund").await;
        assert_eq!(engine.journal("p").await.unwrap().last().unwrap().record.kind(), Kind::Investigations);

        // A lookup in the child claiming another customer changes nothing.
        let d =
            decide(&engine, "p:refund", "v2", "get_customer", json!({"email": "m@example.com", "zip": "10001"})).await;
        assert_eq!(d.decision.verdict(), Verdict::Allow);
        let effects = ok(
            &engine,
            "p:refund",
            "v2",
            json!({"verified": true, "customer_id": "c_77", "email": "m@example.com", "tier": "gold"}),
        )
        .await;
        assert!(
            effects.iter().any(|e| matches!(e, Effect::FactNotRecorded { fact, .. } if fact == "customer")),
            "{effects:?}"
        );
        assert_eq!(customer_id(&engine.state("p:refund").await.unwrap()).as_deref(), Some("c_42"));
        // So c_77's order stays out of reach: its details are withheld.
        let d = decide(&engine, "p:refund", "o77", "lookup_order", json!({"order_id": "#W77"})).await;
        assert_eq!(d.decision.verdict(), Verdict::Allow);
        let effects = ok(
            &engine,
            "p:refund",
            "o77",
            json!({"order_id": "#W77", "customer_id": "c_77", "total": 90.0, "status": "delivered"}),
        )
        .await;
        assert!(effects.iter().any(|e| matches!(e, Effect::ResultWithheld { .. })), "{effects:?}");

        // A tool outside the concern's subset is blocked at admission.
        let d = decide(&engine, "p:address", "r", "process_refund", json!({"order_id": "#W1", "amount": 5.0})).await;
        assert_eq!(d.decision.verdict(), Verdict::Block);
        assert_eq!(d.json()["stage"], "admission");
        assert_eq!(d.json()["reasons"][0]["rule_id"], "tollgate.investigation.tool_out_of_scope");
        assert_checkpoint_is_replay(&engine, "p:refund").await;
        assert_checkpoint_is_replay(&engine, "p:address").await;

        // Opening again with the same text is a no-op; other text is refused; nesting too.
        let again = engine.open_investigations("p", &[concern("refund", "refund order #W1", None)]).await.unwrap();
        assert_eq!(again.len(), 1);
        assert!(matches!(
            engine.open_investigations("p", &[concern("refund", "something else", None)]).await,
            Err(Error::Conflict(Conflict::State(_)))
        ));
        assert!(matches!(
            engine.open_investigations("p:refund", &[concern("x", "nested", None)]).await,
            Err(Error::BadRequest { .. })
        ));
        assert_eq!(engine.verify_audit().await.unwrap().problem, None);
    })
    .await;
}

#[tokio::test]
async fn a_parent_cannot_close_while_an_investigation_runs_and_the_join_has_every_concern_in_order() {
    on_both(|url| async move {
        let (engine, handle) = engine(&url).await;
        verified_parent(&engine, &handle, "p").await;
        // Opened in an order that is not alphabetical, ended in yet another.
        engine
            .open_investigations(
                "p",
                &[
                    concern("refund", "refund $80 on order #W1", None),
                    concern("charge", "charged twice on order #W2", None),
                    concern("address", "new address 1 Main St", None),
                ],
            )
            .await
            .unwrap();
        let reply = json!({"message": "all done"});
        let d = decide(&engine, "p", "reply1", "reply_to_customer", reply.clone()).await;
        assert_eq!(d.decision.verdict(), Verdict::Block);
        assert_eq!(d.json()["reasons"][0]["rule_id"], "tollgate.investigations.running");
        let json = d.json();
        let message = json["reasons"][0]["message"].as_str().unwrap();
        assert!(message.contains("refund, charge, address"), "{message}");
        match engine.join("p").await {
            Err(Error::Conflict(Conflict::Running { running, .. })) => {
                assert_eq!(running, ["refund", "charge", "address"])
            }
            other => panic!("{other:?}"),
        }

        // address: resolved.
        let d = decide(
            &engine,
            "p:address",
            "a1",
            "update_address",
            json!({"street": "1 Main St", "city": "Springfield", "zip": "12345"}),
        )
        .await;
        assert_eq!(d.decision.verdict(), Verdict::Allow);
        ok(&engine, "p:address", "a1", json!({"ok": true})).await;
        engine.conclude("p:address", "address changed to 1 Main St").await.unwrap();
        // charge: escalated by its call.
        let d = decide(&engine, "p:charge", "c1", "lookup_charges", json!({"order_id": "#W2"})).await;
        assert_eq!(d.decision.verdict(), Verdict::Allow);
        ok(&engine, "p:charge", "c1", json!({"order_id": "#W2", "customer_id": "c_42", "count": 2, "amount": 45.0}))
            .await;
        let d = decide(&engine, "p:charge", "c2", "reverse_duplicate_charge", json!({"order_id": "#W2"})).await;
        assert_eq!(d.decision.verdict(), Verdict::Escalate, "{}", d.json());
        // An ended investigation takes no more calls and cannot be concluded.
        let d = decide(&engine, "p:charge", "c3", "lookup_charges", json!({"order_id": "#W2"})).await;
        assert_eq!(d.json()["reasons"][0]["rule_id"], "tollgate.investigation.ended");
        assert!(matches!(engine.conclude("p:charge", "done").await, Err(Error::Conflict(Conflict::State(_)))));

        // One still runs: the parent still may not answer, and the join names it alone.
        let d = decide(&engine, "p", "reply2", "reply_to_customer", reply.clone()).await;
        assert_eq!(d.decision.verdict(), Verdict::Block);
        assert!(d.json()["reasons"][0]["message"].as_str().unwrap().contains(": refund;"), "{}", d.json());
        match engine.join("p").await {
            Err(Error::Conflict(Conflict::Running { running, .. })) => assert_eq!(running, ["refund"]),
            other => panic!("{other:?}"),
        }

        // refund: a blocked call, then resolved.
        lookup(&engine, "p:refund", "o1", "#W1", "c_42", 120.0).await;
        let d = decide(&engine, "p:refund", "r0", "process_refund", json!({"order_id": "#W1", "amount": 130.0})).await;
        assert_eq!(d.decision.verdict(), Verdict::Block);
        let d = decide(&engine, "p:refund", "r1", "process_refund", json!({"order_id": "#W1", "amount": 80.0})).await;
        assert_eq!(d.decision.verdict(), Verdict::Allow);
        ok(&engine, "p:refund", "r1", json!({"refund_id": "rf_1"})).await;
        engine.conclude("p:refund", "refunded $80 on #W1").await.unwrap();

        let join = engine.join("p").await.unwrap();
        let order: Vec<&str> = join.findings.iter().map(|f| f.concern_id.as_str()).collect();
        assert_eq!(order, ["refund", "charge", "address"]);
        let journal = engine.journal("p").await.unwrap().len();
        let audit = engine.verify_audit().await.unwrap().records;
        assert_eq!(join, engine.join("p").await.unwrap(), "the join is deterministic");
        // Joined again: the same join, and nothing written a second time.
        assert_eq!(engine.journal("p").await.unwrap().len(), journal);
        assert_eq!(engine.verify_audit().await.unwrap().records, audit);
        let joins = engine.journal("p").await.unwrap().iter().filter(|e| matches!(e.record, Record::Joined(_))).count();
        assert_eq!(joins, 1);
        let [refund, charge, address] = &join.findings[..] else { panic!("{join:?}") };
        assert_eq!(
            (refund.status, charge.status, address.status),
            (FindingStatus::Resolved, FindingStatus::Escalated, FindingStatus::Resolved)
        );
        assert_eq!(refund.outcome, "refunded $80 on #W1");
        assert_eq!(refund.blocks.len(), 1, "{:?}", refund.blocks);
        assert!(refund.facts.iter().any(|f| f.line().contains("#W1")));
        assert!(charge.outcome.contains("duplicate charge"), "{}", charge.outcome);
        assert_eq!(charge.rule_ids, ["duplicate-charge-human"]);
        assert_eq!(charge.urgency.as_deref(), Some("high"));
        let handoff = join.handoff.as_ref().expect("an escalated concern makes a joined handoff");
        assert_eq!(handoff.customer_id.as_deref(), Some("c_42"));
        assert_eq!(handoff.urgency, "high");
        assert_eq!(handoff.concerns.len(), 3, "every concern, not only the escalated one");
        for text in ["resolved: refunded $80 on #W1", "charge (charged twice on order #W2): escalated", "address"] {
            assert!(handoff.summary.contains(text), "{text} in {}", handoff.summary);
        }
        assert!(handoff.concerns.iter().all(|c| c.facts.iter().any(|f| f.line().contains("c_42"))));

        // Every investigation ended: the parent may answer; the replay of the
        // parent decides its calls with the journaled case and agrees.
        let d = decide(&engine, "p", "reply3", "reply_to_customer", reply).await;
        assert_eq!(d.decision.verdict(), Verdict::Allow, "{}", d.json());
        for session in ["p", "p:refund", "p:charge", "p:address"] {
            assert_checkpoint_is_replay(&engine, session).await;
        }
        let audit = engine.audit_records(0, 1000).await.unwrap();
        // Named as the journal names them: one spelling of each event.
        for kind in ["investigations", "opened", "concluded", "joined"] {
            assert!(audit.iter().any(|r| r.kind == kind), "no audit record {kind}");
        }
        assert_eq!(engine.verify_audit().await.unwrap().problem, None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_case_refund_limit_holds_under_concurrent_investigations() {
    on_both(|url| async move {
        for repetition in 0..4 {
            // Two engines on one database: two group-commit leaders, as two processes would have.
            let (first, handle) = engine(&url).await;
            let (second, _) = engine(&url).await;
            let (first, second) = (Arc::new(first), Arc::new(second));
            let parent = format!("case{repetition}");
            verified_parent(&first, &handle, &parent).await;
            let concerns: Vec<Concern> =
                (0..4).map(|i| concern(&format!("c{i}"), &format!("refund order #W{i}"), None)).collect();
            let opened = first.open_investigations(&parent, &concerns).await.unwrap();
            for (i, child) in opened.iter().enumerate() {
                lookup(&first, &child.session, "o", &format!("#W{i}"), "c_42", 1000.0).await;
            }
            // Every child tries three $200 refunds at once: 2,400 asked, $500 per case.
            let mut tasks = Vec::new();
            for (i, child) in opened.iter().enumerate() {
                for attempt in 0..3 {
                    let engine = if (i + attempt) % 2 == 0 { Arc::clone(&first) } else { Arc::clone(&second) };
                    let (session, order) = (child.session.clone(), format!("#W{i}"));
                    tasks.push(tokio::spawn(async move {
                        let call = ToolCall::new(
                            format!("r{attempt}"),
                            "process_refund",
                            json!({"order_id": order, "amount": 200.0}),
                        );
                        engine.decide(&session, &call).await.unwrap()
                    }));
                }
            }
            let mut allowed = 0;
            for task in tasks {
                let decided = task.await.unwrap();
                match decided.decision.verdict() {
                    Verdict::Allow => allowed += 1,
                    Verdict::Block => assert_eq!(decided.json()["reasons"][0]["rule_id"], "refund-within-case-limit"),
                    Verdict::Escalate => panic!("{}", decided.json()),
                }
            }
            assert_eq!(allowed, 2, "$400 of $500 fits; a third $200 would not (repetition {repetition})");
            let mut total = 0.0;
            for child in &opened {
                let (_, state) = first.state(&child.session).await.unwrap();
                total += state.aggregate_total(0);
                assert_checkpoint_is_replay(&second, &child.session).await;
            }
            assert_eq!(total, 400.0);
            first.close().await;
            second.close().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_refused_opening_opens_nothing() {
    on_both(|url| async move {
        let (engine, handle) = engine(&url).await;
        verified_parent(&engine, &handle, "q").await;
        // The same concern twice is refused before anything is stored.
        let twice = engine.open_investigations("q", &[concern("a", "one", None), concern("a", "two", None)]).await;
        assert!(
            matches!(twice, Err(Error::BadRequest { ref message }) if message.contains("given twice")),
            "{twice:?}"
        );
        // A session that already holds a child's id makes the whole opening
        // fail, and its sibling is not left half opened.
        engine.create_session(&handle, "q:taken", None).await.unwrap();
        let clash =
            engine.open_investigations("q", &[concern("free", "first", None), concern("taken", "second", None)]).await;
        assert!(matches!(clash, Err(Error::Conflict(Conflict::State(_)))), "{clash:?}");
        let (_, free) = engine.state("q:free").await.unwrap();
        assert!(free.concern().is_none(), "the sibling was not opened");
        let (_, parent) = engine.state("q").await.unwrap();
        assert!(parent.investigations().is_empty());
        // Without the clash the same concern opens normally.
        let opened = engine.open_investigations("q", &[concern("free", "first", None)]).await.unwrap();
        assert_eq!(opened.len(), 1);
        // Free text over the workflow's limit (16 KiB by default), a concern
        // or an outcome, is refused and nothing of it is stored.
        let long = "x".repeat(16 * 1024 + 1);
        let before = engine.journal("q").await.unwrap().len();
        let refused = engine.open_investigations("q", &[concern("long", &long, None)]).await;
        assert!(
            matches!(refused, Err(Error::BadRequest { ref message }) if message.contains("over the limit")),
            "{refused:?}"
        );
        assert!(engine.session("q:long").await.unwrap().is_none(), "no child row for a refused concern");
        let refused = engine.conclude("q:free", &long).await;
        assert!(
            matches!(refused, Err(Error::BadRequest { ref message }) if message.contains("over the limit")),
            "{refused:?}"
        );
        assert_eq!(engine.journal("q:free").await.unwrap().len(), 1, "only its opening");
        assert_eq!(engine.journal("q").await.unwrap().len(), before);
        engine.conclude("q:free", &"x".repeat(16 * 1024)).await.unwrap();
    })
    .await;
}

/// Limits on what an agent sends: concerns per opening, and texts measured
/// as they are stored (escapes included: a control character is six bytes).
#[tokio::test]
async fn openings_and_texts_are_bounded_as_stored() {
    on_both(|url| async move {
        let (engine, handle) = engine(&url).await;
        verified_parent(&engine, &handle, "q").await;
        let before = engine.journal("q").await.unwrap().len();
        let many: Vec<Concern> = (0..33).map(|n| concern(&format!("c{n}"), "a concern", None)).collect();
        let refused = engine.open_investigations("q", &many).await;
        assert!(
            matches!(refused, Err(Error::BadRequest { ref message }) if message.contains("1 to 32 concerns")),
            "{refused:?}"
        );
        assert!(matches!(engine.open_investigations("q", &[]).await, Err(Error::BadRequest { .. })));
        // 3,000 control characters: 3,000 bytes as text, 18,000 as stored.
        let controls = "\u{1}".repeat(3_000);
        let refused = engine.open_investigations("q", &[concern("esc", &controls, None)]).await;
        assert!(
            matches!(refused, Err(Error::BadRequest { ref message }) if message.contains("as stored")),
            "{refused:?}"
        );
        let call = tollgate_core::ToolCall::new("s1", "get_customer", json!({"email": "a@b.c", "zip": "1"}))
            .with_summary(controls.clone());
        let decided = engine.decide("q", &call).await.unwrap();
        assert_eq!(decided.decision.rule_ids(), ["tollgate.limits.text_bytes_max"]);
        assert_eq!(engine.journal("q").await.unwrap().len(), before + 1, "only the refusal, without the summary");
        engine.open_investigations("q", &[concern("ok", "refund order #W1", None)]).await.unwrap();
        let refused = engine.conclude("q:ok", &controls).await;
        assert!(
            matches!(refused, Err(Error::BadRequest { ref message }) if message.contains("as stored")),
            "{refused:?}"
        );
    })
    .await;
}

/// A child's decision reads its parent and siblings from the engine's cache
/// when the stored journals end where the cache does: the store is not read.
/// Shown by damaging the parent's and a sibling's stored journal in place
/// (their numbers unchanged): a read of the store would fail on it, the
/// cache does not; another engine, with no cache, does fail.
#[tokio::test]
async fn a_cases_decisions_read_the_parent_and_siblings_from_the_cache() {
    on_both(|url| async move {
        let (engine, handle) = engine(&url).await;
        verified_parent(&engine, &handle, "p").await;
        let concerns = [concern("a", "refund order #W1", None), concern("b", "refund order #W2", None)];
        engine.open_investigations("p", &concerns).await.unwrap();
        lookup(&engine, "p:a", "l1", "#W1", "c_42", 300.0).await;
        lookup(&engine, "p:b", "l2", "#W2", "c_42", 300.0).await;
        let store = tollgate_store::Store::open(&url).await.unwrap();
        for session in ["p", "p:b"] {
            let sql = format!("UPDATE tollgate_journal SET body = '{{}}' WHERE session_id = '{session}'");
            tollgate_store::testing::execute(&store, &sql).await.unwrap();
        }
        store.close().await;
        let d = decide(&engine, "p:a", "r1", "process_refund", json!({"order_id": "#W1", "amount": 50.0})).await;
        assert_eq!(d.decision.verdict(), Verdict::Allow, "{}", d.json());
        let (cold, _) = self::engine(&url).await;
        let refused =
            cold.decide("p:a", &ToolCall::new("r2", "process_refund", json!({"order_id": "#W1", "amount": 5.0}))).await;
        assert!(matches!(refused, Err(Error::Diverged { .. })), "{refused:?}");
        cold.close().await;
        engine.close().await;
    })
    .await;
}
