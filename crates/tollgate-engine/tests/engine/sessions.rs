//! The engine over both stores: durable decisions, checkpoint == replay,
//! exactly-once results, re-sent calls, resume, audit, concurrent refunds.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

use crate::common::on_both;
use serde_json::json;
use std::sync::Arc;
use tollgate_core::{ToolCall, ToolOutcome, Verdict};
use tollgate_engine::journal::Kind;
use tollgate_engine::{Engine, Error, WorkflowHandle};

const REFERENCE: &str = include_str!("../../../../examples/support-refunds.toml");

async fn engine(url: &str) -> (Engine, WorkflowHandle) {
    let engine = Engine::open(url).await.unwrap();
    let handle = engine.register_workflow(REFERENCE, "support-refunds.toml").await.unwrap();
    (engine, handle)
}

async fn call(engine: &Engine, session: &str, id: &str, tool: &str, args: serde_json::Value) -> Verdict {
    engine.decide(session, &ToolCall::new(id, tool, args)).await.unwrap().decision.verdict()
}

async fn ok(engine: &Engine, session: &str, id: &str, result: serde_json::Value) {
    let recorded = engine.record_result(session, id, &result, ToolOutcome::Succeeded).await.unwrap();
    assert!(recorded.recorded, "{recorded:?}");
}

/// Verified customer c_42 with order #W1 (total 300) looked up.
async fn verified(engine: &Engine, session: &str) {
    assert_eq!(
        call(engine, session, "v", "get_customer", json!({"email": "a@example.com", "zip": "94107"})).await,
        Verdict::Allow
    );
    ok(
        engine,
        session,
        "v",
        json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"}),
    )
    .await;
    assert_eq!(call(engine, session, "o", "lookup_order", json!({"order_id": "#W1"})).await, Verdict::Allow);
    ok(engine, session, "o", json!({"order_id": "#W1", "customer_id": "c_42", "total": 300.0, "status": "delivered"}))
        .await;
}

async fn assert_checkpoint_is_replay(engine: &Engine, session: &str) {
    let (_, cached) = engine.state(session).await.unwrap();
    let (_, replayed) = engine.replay(session).await.unwrap();
    assert_eq!(cached, replayed, "checkpoint and replay differ for {session}");
}

#[tokio::test]
async fn decisions_persist_and_the_checkpoint_equals_the_replay_at_every_step() {
    on_both(|url| async move {
        let (engine, workflow) = engine(&url).await;
        engine.create_session(&workflow, "s1", None).await.unwrap();
        assert_eq!(
            call(&engine, "s1", "r0", "process_refund", json!({"order_id": "#W1", "amount": 10.0})).await,
            Verdict::Block
        );
        assert_checkpoint_is_replay(&engine, "s1").await;
        verified(&engine, "s1").await;
        assert_checkpoint_is_replay(&engine, "s1").await;
        assert_eq!(
            call(&engine, "s1", "r1", "process_refund", json!({"order_id": "#W1", "amount": 200.0})).await,
            Verdict::Allow
        );
        assert_checkpoint_is_replay(&engine, "s1").await;
        ok(&engine, "s1", "r1", json!({"refund_id": "rf_1"})).await;
        assert_checkpoint_is_replay(&engine, "s1").await;
        // 200 of 300 refunded: 150 more does not fit.
        assert_eq!(
            call(&engine, "s1", "r2", "process_refund", json!({"order_id": "#W1", "amount": 150.0})).await,
            Verdict::Block
        );
        assert_checkpoint_is_replay(&engine, "s1").await;

        // Another process (a new engine on the same database) sees all of it.
        let (again, _) = self::engine(&url).await;
        let (_, state) = again.state("s1").await.unwrap();
        assert_eq!(state.allowed_calls(), 3);
        assert_eq!(state.blocked_calls(), 2);
        assert_eq!(
            call(&again, "s1", "r3", "process_refund", json!({"order_id": "#W1", "amount": 100.0})).await,
            Verdict::Allow
        );

        let journal = again.journal("s1").await.unwrap();
        assert_eq!(journal.iter().filter(|e| e.record.kind() == Kind::Decision).count(), 6);
        let report = again.verify_audit().await.unwrap();
        assert_eq!(report.problem, None);
        assert_eq!(report.records, 6 + 3, "one audit record per decision and per recorded result");
    })
    .await;
}

#[tokio::test]
async fn a_result_counts_once_and_a_resent_call_gets_its_original_decision() {
    on_both(|url| async move {
        let (engine, workflow) = engine(&url).await;
        engine.create_session(&workflow, "s1", None).await.unwrap();
        verified(&engine, "s1").await;
        let args = json!({"order_id": "#W1", "amount": 120.0});
        let first = engine.decide("s1", &ToolCall::new("r1", "process_refund", args.clone())).await.unwrap();
        assert!(!first.replayed);
        assert_eq!(first.json()["idempotency_key"], "s1/process_refund:r1");

        // The agent re-sends the same call (say, after a crash): same decision, nothing new stored.
        let before = engine.journal("s1").await.unwrap().len();
        let again = engine.decide("s1", &ToolCall::new("r1", "process_refund", args.clone())).await.unwrap();
        assert!(again.replayed);
        assert_eq!(again.json(), first.json());
        assert_eq!(engine.journal("s1").await.unwrap().len(), before);

        // The same id for a different call is refused, audited, and changes no state.
        let reused = engine
            .decide("s1", &ToolCall::new("r1", "process_refund", json!({"order_id": "#W1", "amount": 1.0})))
            .await
            .unwrap();
        assert_eq!(reused.decision.verdict(), Verdict::Block);
        assert_eq!(reused.json()["reasons"][0]["rule_id"], "tollgate.call_id_reused");

        let result = json!({"refund_id": "rf_1"});
        let once = engine.record_result("s1", "r1", &result, ToolOutcome::Succeeded).await.unwrap();
        let twice = engine.record_result("s1", "r1", &result, ToolOutcome::Succeeded).await.unwrap();
        assert!(once.recorded && !twice.recorded, "{once:?} {twice:?}");
        assert!(twice.note.unwrap().contains("counts once"));
        let never = engine.record_result("s1", "zzz", &result, ToolOutcome::Succeeded).await.unwrap();
        assert!(!never.recorded);

        // 120 refunded once, not twice: 180 still fits, 181 does not.
        assert_eq!(
            call(&engine, "s1", "r2", "process_refund", json!({"order_id": "#W1", "amount": 181.0})).await,
            Verdict::Block
        );
        assert_eq!(
            call(&engine, "s1", "r3", "process_refund", json!({"order_id": "#W1", "amount": 180.0})).await,
            Verdict::Allow
        );
        assert_checkpoint_is_replay(&engine, "s1").await;
        assert_eq!(engine.verify_audit().await.unwrap().problem, None);
    })
    .await;
}

#[tokio::test]
async fn resume_reports_allowed_calls_without_results_as_in_doubt() {
    on_both(|url| async move {
        let (engine, workflow) = engine(&url).await;
        engine.create_session(&workflow, "s1", None).await.unwrap();
        verified(&engine, "s1").await;
        call(&engine, "s1", "r1", "process_refund", json!({"order_id": "#W1", "amount": 50.0})).await;
        call(
            &engine,
            "s1",
            "a1",
            "update_address",
            json!({"street": "1 Main St", "city": "Springfield", "zip": "94107"}),
        )
        .await;
        drop(engine);

        let (engine, _) = self::engine(&url).await;
        let resume = engine.resume("s1").await.unwrap();
        let in_doubt: Vec<_> =
            resume.in_doubt.iter().map(|d| (d.call_id.as_str(), d.idempotency_key.as_deref())).collect();
        assert_eq!(in_doubt, vec![("r1", Some("s1/process_refund:r1")), ("a1", Some("s1/update_address:a1"))]);
        ok(&engine, "s1", "r1", json!({"refund_id": "rf_1"})).await;
        assert_eq!(engine.resume("s1").await.unwrap().in_doubt.len(), 1);
    })
    .await;
}

/// Resume and state read a snapshot: a transaction that holds the session
/// (SQLite: the writer lock; PostgreSQL: the row lock) with an uncommitted
/// entry neither holds them up nor shows them that entry.
#[tokio::test]
async fn resume_and_state_read_a_snapshot_without_waiting_for_writers() {
    on_both(|url| async move {
        let (engine, workflow) = engine(&url).await;
        engine.create_session(&workflow, "s1", None).await.unwrap();
        verified(&engine, "s1").await;
        call(&engine, "s1", "r1", "process_refund", json!({"order_id": "#W1", "amount": 50.0})).await;

        // A writer of its own: another store on the same database, as another process would be.
        let store = tollgate_store::Store::open(&url).await.unwrap();
        let mut writer = store.lock_session("s1").await.unwrap();
        let entry = tollgate_store::NewEntry {
            kind: "refused".into(),
            call_id: None,
            body: json!({"call": {"id": "x", "tool": "x", "args": {}}, "decision": {}}).to_string(),
            at_ms: 0,
        };
        writer.append("s1", &[entry], &[], None).await.unwrap();
        // Without a snapshot these wait for the writer: SQLite's busy
        // timeout is 30 s, PostgreSQL's row lock forever.
        let patience = std::time::Duration::from_secs(10);
        let resume = tokio::time::timeout(patience, engine.resume("s1")).await.expect("resume waited").unwrap();
        assert_eq!(resume.session.last_seq, 5, "{}", engine.backend());
        assert_eq!(resume.in_doubt.len(), 1);
        let (_, state) = tokio::time::timeout(patience, engine.state("s1")).await.expect("state waited").unwrap();
        assert_eq!(state, engine.replay("s1").await.unwrap().1);
        writer.commit().await.unwrap();
        assert_eq!(engine.resume("s1").await.unwrap().session.last_seq, 6);

        // A snapshot cannot be written to.
        let mut snapshot = store.snapshot("s1").await.unwrap();
        let refused = snapshot.append("s1", &[], &[], None).await;
        assert!(matches!(refused, Err(tollgate_store::Error::ReadOnly(_))), "{refused:?}");
        drop(snapshot);
        assert!(matches!(store.snapshot("nobody").await, Err(tollgate_store::Error::NoSession(_))));
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_refunds_on_one_session_never_pass_the_order_total_together() {
    on_both(|url| async move {
        let (engine, workflow) = engine(&url).await;
        engine.create_session(&workflow, "s1", None).await.unwrap();
        verified(&engine, "s1").await;
        let engine = Arc::new(engine);
        // 24 callers race to refund 40 each on an order of 300: at most 7 fit.
        let mut tasks = Vec::new();
        for n in 0..24 {
            let engine = Arc::clone(&engine);
            tasks.push(tokio::spawn(async move {
                let call = ToolCall::new(format!("r{n}"), "process_refund", json!({"order_id": "#W1", "amount": 40.0}));
                engine.decide("s1", &call).await.unwrap().decision.verdict()
            }));
        }
        let mut allowed = 0;
        for task in tasks {
            if task.await.unwrap() == Verdict::Allow {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 7, "exactly 7 refunds of 40 fit in 300");
        assert_checkpoint_is_replay(&engine, "s1").await;
    })
    .await;
}

#[tokio::test]
async fn bad_ids_and_unknown_sessions_are_clear_errors_that_store_nothing() {
    on_both(|url| async move {
        // A workflow whose name is no line of text is not registered.
        let engine_only = Engine::open(&url).await.unwrap();
        let badly_named = REFERENCE.replacen("name = \"support-refunds\"", "name = \"a\\u0000b\"", 1);
        assert_ne!(badly_named, REFERENCE);
        let refused = engine_only.register_workflow(&badly_named, "w.toml").await;
        assert!(
            matches!(refused, Err(Error::BadRequest { ref message }) if message.contains("workflow.name")),
            "{refused:?}"
        );
        drop(engine_only);
        let (engine, workflow) = engine(&url).await;
        let error = engine.create_session(&workflow, "bad id with spaces", None).await.unwrap_err();
        assert!(matches!(error, Error::BadRequest { .. }), "{error}");
        let error = engine.decide("nope", &ToolCall::new("c", "get_customer", json!({}))).await.unwrap_err();
        assert!(matches!(error, Error::NotFound { .. }) && error.to_string().contains("no session 'nope'"), "{error}");
        engine.create_session(&workflow, "s1", None).await.unwrap();
        let odd = engine.decide("s1", &ToolCall::new("x".repeat(500), "get_customer", json!({}))).await.unwrap();
        assert_eq!(odd.json()["reasons"][0]["rule_id"], "tollgate.call_id");
        assert!(engine.register_workflow("[workflow]\nname = 1", "bad.toml").await.is_err());
        let forged = engine.record_result("s1", &"x".repeat(10_000), &json!({}), ToolOutcome::Succeeded).await;
        assert!(matches!(forged, Err(Error::BadRequest { .. })), "{forged:?}");
        let next = ToolCall::new("n1", "get_customer", json!({"email": "a@example.com", "zip": "94107"}));
        let forged =
            engine.record_and_decide("s1", &"x".repeat(10_000), &json!({}), ToolOutcome::Succeeded, &next).await;
        assert!(matches!(forged, Err(Error::BadRequest { .. })), "{forged:?}");
        // A session claiming a parent it does not belong to (wrong id, no
        // such parent, no concern after the colon) is not created.
        for (id, parent) in [("other", "s1"), ("ghost:x", "ghost"), ("s1:", "s1")] {
            let refused = engine.create_session(&workflow, id, Some(parent)).await;
            assert!(matches!(refused, Err(Error::BadRequest { .. })), "{id} under {parent}: {refused:?}");
        }
        // A session with nothing to join is refused, and nothing is written.
        let refused = engine.join("s1").await;
        assert!(
            matches!(refused, Err(Error::BadRequest { ref message }) if message.contains("no investigations")),
            "{refused:?}"
        );
        let journal = engine.journal("s1").await.unwrap();
        assert!(journal.iter().all(|e| e.record.kind() == Kind::Refused), "only the refusal");
        assert_eq!(engine.sessions(10).await.unwrap().len(), 1);
        assert_checkpoint_is_replay(&engine, "s1").await;
    })
    .await;
}

#[tokio::test]
async fn an_engine_never_decides_on_a_state_another_engine_has_moved_past() {
    on_both(|url| async move {
        // Two engines (as two processes would) on one session, each with its own cache.
        let (a, workflow) = engine(&url).await;
        let (b, _) = engine(&url).await;
        a.create_session(&workflow, "s1", None).await.unwrap();
        verified(&a, "s1").await; // a caches the session
        let refund =
            |id: &str, amount: f64| ToolCall::new(id, "process_refund", json!({"order_id": "#W1", "amount": amount}));
        assert_eq!(b.decide("s1", &refund("b1", 100.0)).await.unwrap().decision.verdict(), Verdict::Allow);
        // a's cache predates b1: it must see 100 of 300 already refunded.
        assert_eq!(a.decide("s1", &refund("a1", 201.0)).await.unwrap().decision.verdict(), Verdict::Block);
        assert_eq!(a.decide("s1", &refund("a2", 150.0)).await.unwrap().decision.verdict(), Verdict::Allow);
        // b's cache predates a1 and a2: 250 of 300 are taken.
        assert_eq!(b.decide("s1", &refund("b2", 100.0)).await.unwrap().decision.verdict(), Verdict::Block);
        assert_eq!(b.decide("s1", &refund("b3", 50.0)).await.unwrap().decision.verdict(), Verdict::Allow);
        assert_checkpoint_is_replay(&a, "s1").await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_calls_on_many_sessions_share_commits() {
    on_both(|url| async move {
        let (engine, workflow) = engine(&url).await;
        for n in 0..32 {
            engine.create_session(&workflow, &format!("s{n}"), None).await.unwrap();
        }
        let before = engine.commit_stats();
        let engine = Arc::new(engine);
        let mut tasks = Vec::new();
        for n in 0..32 {
            let engine = Arc::clone(&engine);
            tasks.push(tokio::spawn(async move {
                let session = format!("s{n}");
                let call = ToolCall::new("v", "get_customer", json!({"email": "a@example.com", "zip": "94107"}));
                engine.decide(&session, &call).await.unwrap().decision.verdict()
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), Verdict::Allow);
        }
        let after = engine.commit_stats();
        let (groups, calls) = (after.0 - before.0, after.1 - before.1);
        assert_eq!(calls, 32);
        assert!(groups < 32, "32 concurrent calls took {groups} commits: nothing was grouped");
        for n in 0..32 {
            assert_eq!(engine.journal(&format!("s{n}")).await.unwrap().len(), 1);
        }
        assert_eq!(engine.verify_audit().await.unwrap().problem, None);
    })
    .await;
}

#[tokio::test]
async fn oversized_arguments_and_results_are_refused_or_withheld_and_never_stored() {
    on_both(|url| async move {
        let (engine, workflow) = engine(&url).await;
        engine.create_session(&workflow, "s1", None).await.unwrap();
        verified(&engine, "s1").await;
        // What is stored, read through a store of its own.
        let store = tollgate_store::Store::open(&url).await.unwrap();
        let stored = |_: &Engine| {
            let store = store.clone();
            async move { store.journal("s1").await.unwrap().iter().map(|e| e.body.len()).sum::<usize>() }
        };
        let before = stored(&engine).await;

        let huge = "x".repeat(200_000);
        let big = ToolCall::new("big", "process_refund", json!({"order_id": "#W1", "amount": 1.0, "reason": huge}));
        let refused = engine.decide("s1", &big).await.unwrap();
        assert_eq!(refused.json()["reasons"][0]["rule_id"], "tollgate.limits.args_bytes_max");
        let long_tool = ToolCall::new("t", "t".repeat(100_000), json!({}));
        assert_eq!(engine.decide("s1", &long_tool).await.unwrap().decision.verdict(), Verdict::Block);

        assert_eq!(call(&engine, "s1", "o2", "lookup_order", json!({"order_id": "#W2"})).await, Verdict::Allow);
        let result = json!({"order_id": "#W2", "customer_id": "c_42", "total": 5.0, "status": "delivered", "notes": "y".repeat(2_000_000)});
        let recorded = engine.record_result("s1", "o2", &result, ToolOutcome::Succeeded).await.unwrap();
        assert!(recorded.recorded);
        assert!(
            matches!(recorded.effects.as_slice(), [tollgate_core::Effect::ResultWithheld { .. }]),
            "{:?}",
            recorded.effects
        );

        // Nothing oversized reached the journal; the session still replays.
        assert!(stored(&engine).await - before < 10_000, "oversized input was stored");
        assert_checkpoint_is_replay(&engine, "s1").await;
        let (_, state) = engine.replay("s1").await.unwrap();
        let (workflow, state) = (&workflow.workflow, state);
        assert!(!state.facts(workflow).iter().any(|(fact, key, _)| *fact == "order" && *key == Some("#W2")));
        assert_eq!(state.blocked_calls(), 1, "the withheld result counts as blocked; refused calls do not touch the state");
        assert_eq!(engine.verify_audit().await.unwrap().problem, None);
    })
    .await;
}

/// A workflow whose one rule reads the session clock.
const OFFICE_HOURS: &str = r#"
[workflow]
name = "office-hours"
version = 1
[tools.callback]
side_effect = true
[[tools.callback.checks]]
id = "before-deadline"
rule = "now < timestamp('2024-05-15T17:00:00-05:00')"
message = "callbacks close at 17:00 EST on 2024-05-15"
"#;

#[tokio::test]
async fn the_session_clock_is_journaled_and_a_replay_decides_at_the_same_time() {
    on_both(|url| async move {
        let deadline = 1_715_810_400_000; // 2024-05-15T17:00:00-05:00
        // The engine's clock is before the deadline; a call may bring its own.
        let engine = Engine::open(&url).await.unwrap().with_clock(tollgate_engine::Clock::Fixed(deadline - 60_000));
        let workflow = engine.register_workflow(OFFICE_HOURS, "office-hours.toml").await.unwrap();
        engine.create_session(&workflow, "t1", None).await.unwrap();
        let early = engine.decide("t1", &ToolCall::new("a", "callback", json!({}))).await.unwrap();
        assert_eq!(early.decision.verdict(), Verdict::Allow);
        let late = engine.decide("t1", &ToolCall::new("b", "callback", json!({})).at(deadline)).await.unwrap();
        assert_eq!(late.decision.verdict(), Verdict::Block);
        assert_eq!(late.decision.rule_ids(), vec!["before-deadline"]);
        // Another engine whose clock is past the deadline replays the journal
        // to the same decisions: the clock of each call was recorded with it.
        let later = Engine::open(&url).await.unwrap().with_clock(tollgate_engine::Clock::Fixed(deadline + 3_600_000));
        let (_, replayed) = later.replay("t1").await.unwrap();
        assert_eq!(replayed.allowed_calls(), 1);
        assert_eq!(replayed.blocked_calls(), 1);
        // Re-sent, the first call gets its original decision, not one at the new time.
        let resent = later.decide("t1", &ToolCall::new("a", "callback", json!({}))).await.unwrap();
        assert!(resent.replayed);
        assert_eq!(resent.decision.verdict(), Verdict::Allow);
    })
    .await;
}

#[tokio::test]
async fn a_result_and_the_next_call_commit_together_and_decide_as_if_sent_one_after_the_other() {
    on_both(|url| async move {
        let (engine, workflow) = engine(&url).await;
        engine.create_session(&workflow, "rd", None).await.unwrap();
        assert_eq!(
            call(&engine, "rd", "v", "get_customer", json!({"email": "a@example.com", "zip": "94107"})).await,
            Verdict::Allow
        );
        let (groups_before, _) = engine.commit_stats();
        // The lookup needs the verified customer: it is allowed only because
        // the result is folded in before the lookup is decided.
        let (recorded, decided) = engine
            .record_and_decide(
                "rd",
                "v",
                &json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"}),
                ToolOutcome::Succeeded,
                &ToolCall::new("o", "lookup_order", json!({"order_id": "#W1"})),
            )
            .await
            .unwrap();
        assert!(recorded.recorded, "{recorded:?}");
        assert_eq!(decided.decision.verdict(), Verdict::Allow, "{:?}", decided.decision.reasons());
        let (groups_after, _) = engine.commit_stats();
        assert_eq!(groups_after - groups_before, 1, "one commit for both");
        // A result that is not awaited changes nothing, and the next call is
        // still decided on its own merits.
        let (again, refund) = engine
            .record_and_decide(
                "rd",
                "v",
                &json!({"verified": true, "customer_id": "c_99"}),
                ToolOutcome::Succeeded,
                &ToolCall::new("r", "process_refund", json!({"order_id": "#W1", "amount": 5.0})),
            )
            .await
            .unwrap();
        assert!(!again.recorded);
        assert_eq!(refund.decision.verdict(), Verdict::Block, "the order's result is not recorded yet");
        assert_checkpoint_is_replay(&engine, "rd").await;
    })
    .await;
}

#[tokio::test]
async fn the_agents_summary_is_journaled_with_the_call_and_its_escalation_replays() {
    on_both(|url| async move {
        let (engine, workflow) = engine(&url).await;
        engine.create_session(&workflow, "hs", None).await.unwrap();
        verified(&engine, "hs").await;
        assert_eq!(call(&engine, "hs", "o2", "lookup_order", json!({"order_id": "#W2"})).await, Verdict::Allow);
        ok(
            &engine,
            "hs",
            "o2",
            json!({"order_id": "#W2", "customer_id": "c_42", "total": 2000.0, "status": "delivered"}),
        )
        .await;
        let big = ToolCall::new("big", "process_refund", json!({"order_id": "#W2", "amount": 800.0}))
            .with_summary("Customer asks for $800 back on a $2,000 order.");
        let decided = engine.decide("hs", &big).await.unwrap();
        let summary = decided.json()["handoff"]["conversation_summary"].as_str().unwrap().to_owned();
        assert!(summary.starts_with("Customer asks for $800 back on a $2,000 order. (from the session: "), "{summary}");
        // The replay re-decides with the journaled summary and agrees.
        assert_checkpoint_is_replay(&engine, "hs").await;
        // Re-sent (even without the summary), the call gets its original decision.
        let resent = engine
            .decide("hs", &ToolCall::new("big", "process_refund", json!({"order_id": "#W2", "amount": 800.0})))
            .await
            .unwrap();
        assert!(resent.replayed);
        assert_eq!(resent.json(), decided.json());
        // A summary over the limit (16 KiB by default) is refused and never stored.
        let long = ToolCall::new("long", "process_refund", json!({"order_id": "#W2", "amount": 800.0}))
            .with_summary("y".repeat(16 * 1024 + 1));
        let refused = engine.decide("hs", &long).await.unwrap();
        assert_eq!(refused.decision.reasons()[0].rule_id, "tollgate.limits.text_bytes_max");
        let store = tollgate_store::Store::open(&url).await.unwrap();
        let journal = store.journal("hs").await.unwrap();
        assert!(journal.iter().all(|entry| !entry.body.contains("yyyy")), "the long summary was stored");
    })
    .await;
}

#[tokio::test]
async fn the_clients_context_is_journaled_with_the_call_and_read_back() {
    on_both(|url| async move {
        let (engine, workflow) = engine(&url).await;
        engine.create_session(&workflow, "cx", None).await.unwrap();
        let context = json!({"cwd": "/home/dev/app/src", "project_dir": "/home/dev/app"});
        let lookup = ToolCall::new("c1", "get_customer", json!({"email": "a@example.com", "zip": "94107"}))
            .with_context(context.clone());
        assert_eq!(engine.decide("cx", &lookup).await.unwrap().decision.verdict(), Verdict::Allow);
        let plain = ToolCall::new("c2", "lookup_order", json!({"order_id": "#W1"}));
        engine.decide("cx", &plain).await.unwrap();
        let calls: Vec<ToolCall> = engine
            .journal("cx")
            .await
            .unwrap()
            .into_iter()
            .filter_map(|entry| match entry.record {
                tollgate_engine::journal::Record::Decision(decided) => Some(decided.call.to_call()),
                _ => None,
            })
            .collect();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].context, Some(context), "the context is journaled with its call");
        assert_eq!(calls[1].context, None, "a call without one journals none");
        assert_checkpoint_is_replay(&engine, "cx").await;
    })
    .await;
}
