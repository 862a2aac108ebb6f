//! Handoffs as durable work items, on both stores: an escalation lands in
//! its tenant's queue; people claim and decide it, each action journaled and
//! audited with who did it; an approval lets the identical call through once,
//! used up in the commit of that decision; a denial reaches the agent with its
//! reason; waiters wake when it is settled; overdue ones expire; tenants never
//! see each other's; two engines on one store agree on who claimed it.

use crate::common::on_both;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tollgate_core::{ToolCall, ToolOutcome, Verdict};
use tollgate_engine::journal::Record;
use tollgate_engine::{Clock, Conflict, Engine, Error, HandoffFilter, HumanAction, WorkflowHandle};

const REFERENCE: &str = include_str!("../../../../examples/support-refunds.toml");
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const MINUTE: i64 = 60_000;

async fn engine_at(url: &str, now_ms: i64) -> (Engine, WorkflowHandle) {
    let engine = Engine::open(url).await.unwrap().with_clock(Clock::Fixed(now_ms));
    let workflow = engine.register_workflow(REFERENCE, "support-refunds.toml").await.unwrap();
    (engine, workflow)
}

/// A session of `tenant` with a verified customer and an order of $5,000.
async fn verified(engine: &Engine, workflow: &WorkflowHandle, tenant: &str, session: &str) {
    let view = engine.for_tenant(tenant);
    view.create_session(workflow, session, None).await.unwrap();
    let call = |id: &str, tool: &str, args| ToolCall::new(id, tool, args);
    view.decide(session, &call("v", "get_customer", json!({"email": "a@example.com", "zip": "94107"}))).await.unwrap();
    let customer = json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"});
    view.record_result(session, "v", &customer, ToolOutcome::Succeeded).await.unwrap();
    view.decide(session, &call("o", "lookup_order", json!({"order_id": "#W1"}))).await.unwrap();
    let order = json!({"order_id": "#W1", "customer_id": "c_42", "total": 5000.0, "status": "delivered"});
    view.record_result(session, "o", &order, ToolOutcome::Succeeded).await.unwrap();
}

fn refund(id: &str, amount: f64) -> ToolCall {
    ToolCall::new(id, "process_refund", json!({"order_id": "#W1", "amount": amount}))
}

fn claim(who: &str) -> HumanAction {
    HumanAction::Claim { reviewer: who.into() }
}

fn open_filter() -> HandoffFilter {
    HandoffFilter { statuses: vec!["open".into(), "claimed".into()], since_ms: None, limit: 100 }
}

#[tokio::test]
async fn an_escalation_is_queued_decided_by_one_person_and_runs_once() {
    on_both(|url| async move {
        let (engine, workflow) = engine_at(&url, T0).await;
        verified(&engine, &workflow, "acme", "s1").await;
        let acme = engine.for_tenant("acme");
        let escalated = acme.decide("s1", &refund("r1", 800.0)).await.unwrap();
        assert_eq!(escalated.decision.verdict(), Verdict::Escalate);
        let id = tollgate_engine::handoff_id("s1", "r1");
        let queue = acme.handoffs(&open_filter()).await.unwrap();
        assert_eq!(queue.len(), 1);
        let queued = &queue[0];
        assert_eq!(
            (queued.id.as_str(), queued.status.as_str(), queued.urgency.as_str()),
            (id.as_str(), "open", "high")
        );
        assert_eq!(queued.customer_id.as_deref(), Some("c_42"));
        assert_eq!(queued.body["handoff"]["recommended_action"], "approve or deny the refund of $800 on order #W1");
        assert_eq!(queued.body["call"]["args"]["amount"], 800.0);

        // The same call again waits: blocked, and nothing new queued.
        let again = acme.decide("s1", &refund("r2", 800.0)).await.unwrap();
        assert_eq!(again.decision.rule_ids(), ["tollgate.handoff.waiting"]);
        assert_eq!(acme.handoffs(&open_filter()).await.unwrap().len(), 1);

        // One reviewer claims; another can neither claim nor decide it.
        assert_eq!(acme.act(&id, claim("ann")).await.unwrap().claimed_by.as_deref(), Some("ann"));
        let taken = acme.act(&id, claim("bob")).await;
        assert!(
            matches!(taken, Err(Error::Conflict(Conflict::Handoff(ref m))) if m.contains("claimed by ann")),
            "{taken:?}"
        );
        let approve = |who: &str| HumanAction::Approve { reviewer: who.into(), expires_ms: T0 + 10 * MINUTE };
        assert!(matches!(acme.act(&id, approve("bob")).await, Err(Error::Conflict(_))));
        let approved = acme.act(&id, approve("ann")).await.unwrap();
        assert_eq!((approved.status.as_str(), approved.expires_ms), ("approved", T0 + 10 * MINUTE));

        // The identical call runs once, on the approval, used up in its commit.
        let allowed = acme.decide("s1", &refund("r3", 800.0)).await.unwrap();
        assert_eq!(allowed.decision.verdict(), Verdict::Allow);
        assert_eq!(allowed.json()["approved_by"], "r1");
        let used = acme.handoff(&id).await.unwrap().unwrap();
        assert_eq!(used.consumed_by.as_deref(), Some("r3"));
        let second = acme.decide("s1", &refund("r4", 800.0)).await.unwrap();
        assert_eq!(second.decision.verdict(), Verdict::Escalate, "{}", second.json());

        // Who did what is journaled and audited, and the session replays.
        let actions: Vec<(String, Option<String>)> = engine
            .journal("s1")
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.record {
                Record::Human(acted) => Some((acted.action, acted.reviewer)),
                _ => None,
            })
            .collect();
        assert_eq!(actions, [("claim".into(), Some("ann".into())), ("approve".into(), Some("ann".into()))]);
        let audit = engine.audit_records(0, 1_000).await.unwrap();
        let human: Vec<&str> = audit.iter().filter(|r| r.kind.starts_with("human.")).map(|r| r.kind.as_str()).collect();
        assert_eq!(human, ["human.claim", "human.approve"]);
        assert!(audit.iter().any(|r| r.kind == "human.approve" && r.body.contains("\"reviewer\":\"ann\"")));
        assert_eq!(engine.verify_audit().await.unwrap().problem, None);
        let (_, state) = engine.state("s1").await.unwrap();
        assert_eq!(state, engine.replay("s1").await.unwrap().1);
        engine.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_denial_reaches_the_agent_and_a_waiter_wakes_when_it_is_settled() {
    on_both(|url| async move {
        let (engine, workflow) = engine_at(&url, T0).await;
        let engine = Arc::new(engine);
        verified(&engine, &workflow, "acme", "s1").await;
        engine.for_tenant("acme").decide("s1", &refund("r1", 900.0)).await.unwrap();
        let id = tollgate_engine::handoff_id("s1", "r1");
        let waiter = {
            let (engine, id) = (Arc::clone(&engine), id.clone());
            tokio::spawn(async move {
                engine.for_tenant("acme").wait_for_handoff(&id, Duration::from_secs(30), Duration::from_secs(30)).await
            })
        };
        engine.act(&id, claim("ann")).await.unwrap();
        let denial = HumanAction::Deny { reviewer: "ann".into(), reason: "refunded by bank transfer already".into() };
        engine.act(&id, denial).await.unwrap();
        // Woken by the commit, not by its 30 s poll.
        let settled = tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap().unwrap();
        assert_eq!(settled.status, "denied");
        let retried = engine.for_tenant("acme").decide("s1", &refund("r2", 900.0)).await.unwrap();
        assert_eq!(retried.decision.rule_ids(), ["tollgate.handoff.denied"]);
        assert!(retried.decision.reasons()[0].message.contains("refunded by bank transfer already"));
        // Bad input is refused and stores nothing.
        let before = engine.journal("s1").await.unwrap().len();
        for bad in [
            HumanAction::Claim { reviewer: String::new() },
            HumanAction::Claim { reviewer: "a\u{0}b".into() },
            HumanAction::Deny { reviewer: "ann".into(), reason: "x".repeat(5_000) },
        ] {
            assert!(matches!(engine.act(&id, bad).await, Err(Error::BadRequest { .. })));
        }
        assert!(matches!(engine.act("h_nope", claim("ann")).await, Err(Error::NotFound { .. })));
        assert!(matches!(engine.act(&id, claim("ann")).await, Err(Error::Conflict(_))), "a denied handoff is settled");
        assert_eq!(engine.journal("s1").await.unwrap().len(), before);
        engine.close().await;
    })
    .await;
}

#[tokio::test]
async fn tenants_never_reach_each_others_sessions_or_handoffs() {
    on_both(|url| async move {
        let (engine, workflow) = engine_at(&url, T0).await;
        verified(&engine, &workflow, "acme", "s1").await;
        engine.for_tenant("acme").decide("s1", &refund("r1", 800.0)).await.unwrap();
        let id = tollgate_engine::handoff_id("s1", "r1");
        let other = engine.for_tenant("globex");
        let before = engine.journal("s1").await.unwrap().len();
        assert!(matches!(other.decide("s1", &refund("x", 1.0)).await, Err(Error::NotFound { .. })));
        let result = other.record_result("s1", "v", &json!({}), ToolOutcome::Succeeded).await;
        assert!(matches!(result, Err(Error::NotFound { .. })));
        assert!(matches!(other.journal("s1").await, Err(Error::NotFound { .. })));
        assert!(matches!(other.resume("s1").await, Err(Error::NotFound { .. })));
        assert!(other.session("s1").await.unwrap().is_none());
        assert!(other.handoffs(&open_filter()).await.unwrap().is_empty());
        assert!(other.handoff(&id).await.unwrap().is_none());
        assert!(matches!(other.act(&id, claim("mallory")).await, Err(Error::NotFound { .. })));
        assert!(matches!(other.join("s1").await, Err(Error::NotFound { .. })));
        assert_eq!(engine.journal("s1").await.unwrap().len(), before, "nothing was written");
        assert_eq!(engine.for_tenant("acme").handoffs(&open_filter()).await.unwrap().len(), 1);
        engine.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_overdue_handoff_expires_and_two_engines_agree_on_one_claim() {
    on_both(|url| async move {
        let (engine, workflow) = engine_at(&url, T0).await;
        verified(&engine, &workflow, "acme", "s1").await;
        engine.decide("s1", &refund("r1", 800.0)).await.unwrap();
        engine.decide("s1", &refund("r2", 700.0)).await.unwrap();
        let (first, second) = (tollgate_engine::handoff_id("s1", "r1"), tollgate_engine::handoff_id("s1", "r2"));
        // Not overdue yet: nothing expires.
        assert_eq!(engine.expire_overdue(100).await.unwrap(), 0);

        // Two engines (as two replicas) race to claim r2's handoff: one wins.
        let (a, _) = engine_at(&url, T0 + MINUTE).await;
        let (b, _) = engine_at(&url, T0 + MINUTE).await;
        let (won_a, won_b) = tokio::join!(a.act(&second, claim("ann")), b.act(&second, claim("bob")));
        assert!(won_a.is_ok() != won_b.is_ok(), "{won_a:?} {won_b:?}");
        let holder = engine.handoff(&second).await.unwrap().unwrap().claimed_by.unwrap();
        assert!(holder == "ann" || holder == "bob");

        // A day later, both waiting handoffs expire; the call escalates anew.
        let (later, _) = engine_at(&url, T0 + 24 * 60 * MINUTE + 1).await;
        assert_eq!(later.expire_overdue(100).await.unwrap(), 2);
        assert_eq!(later.handoff(&first).await.unwrap().unwrap().status, "expired");
        assert!(matches!(later.act(&first, claim("ann")).await, Err(Error::Conflict(_))));
        let again = later.decide("s1", &refund("r3", 800.0).at(T0 + 24 * 60 * MINUTE + 2)).await.unwrap();
        assert_eq!(again.decision.verdict(), Verdict::Escalate, "{}", again.json());
        assert_eq!(later.verify_audit().await.unwrap().problem, None);
        for engine in [engine, a, b, later] {
            engine.close().await;
        }
    })
    .await;
}

#[tokio::test]
async fn tokens_authenticate_until_revoked_and_are_stored_only_as_hashes() {
    on_both(|url| async move {
        let (engine, _) = engine_at(&url, T0).await;
        let (token, secret) = engine.create_token("acme", tollgate_engine::Role::Reviewer, "Ann Lee").await.unwrap();
        assert!(secret.starts_with(&format!("tg_{}_", token.id)), "{secret}");
        let found = engine.authenticate(&secret).await.unwrap().unwrap();
        assert_eq!(
            (found.tenant.as_str(), found.role, found.name.as_str()),
            ("acme", tollgate_engine::Role::Reviewer, "Ann Lee")
        );
        // A token one character off, a malformed one, or none at all: nobody.
        let mut wrong = secret.clone();
        wrong.pop();
        wrong.push(if secret.ends_with('0') { '1' } else { '0' });
        for other in [wrong.as_str(), "tg_x", "", "Bearer x", &"a".repeat(10_000)] {
            assert_eq!(engine.authenticate(other).await.unwrap(), None, "{other}");
        }
        // The store holds no secret.
        let store = tollgate_store::Store::open(&url).await.unwrap();
        let stored = store.tokens(Some("acme")).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(!stored[0].secret_hash.contains(&secret[20..]) && stored[0].secret_hash.len() == 64);
        store.close().await;
        assert!(matches!(
            engine.create_token("acme", tollgate_engine::Role::Agent, "").await,
            Err(Error::BadRequest { .. })
        ));
        assert!(engine.revoke_token(&token.id).await.unwrap());
        assert_eq!(engine.authenticate(&secret).await.unwrap(), None, "revoked");
        assert!(!engine.revoke_token(&token.id).await.unwrap());
        assert_eq!(engine.tokens(Some("acme")).await.unwrap()[0].revoked_ms, Some(T0));
        engine.close().await;
    })
    .await;
}

/// A NUL (or any control character) from a tool result never reaches the
/// database as it is: the queue row shows it replaced, on PostgreSQL too
/// (which cannot store a NUL at all).
#[tokio::test]
async fn a_customer_id_with_a_nul_from_a_tool_result_is_queued_printable() {
    on_both(|url| async move {
        let (engine, workflow) = engine_at(&url, T0).await;
        engine.create_session(&workflow, "s1", None).await.unwrap();
        let call = |id: &str, tool: &str, args| ToolCall::new(id, tool, args);
        engine
            .decide("s1", &call("v", "get_customer", json!({"email": "a@example.com", "zip": "94107"})))
            .await
            .unwrap();
        let customer = json!({"verified": true, "customer_id": "c\u{0}42", "email": "a@example.com", "tier": "gold"});
        engine.record_result("s1", "v", &customer, ToolOutcome::Succeeded).await.unwrap();
        engine.decide("s1", &call("o", "lookup_order", json!({"order_id": "#W1"}))).await.unwrap();
        let order = json!({"order_id": "#W1", "customer_id": "c\u{0}42", "total": 5000.0, "status": "delivered"});
        engine.record_result("s1", "o", &order, ToolOutcome::Succeeded).await.unwrap();
        let escalated = engine.decide("s1", &refund("r1", 800.0)).await.unwrap();
        assert_eq!(escalated.decision.verdict(), Verdict::Escalate, "{}", escalated.json());
        let queued = engine.handoff(&tollgate_engine::handoff_id("s1", "r1")).await.unwrap().unwrap();
        assert_eq!(queued.customer_id.as_deref(), Some("c\u{fffd}42"));
        // The body keeps it, escaped, as the session holds it.
        assert_eq!(queued.body["handoff"]["customer_id"], "c\u{0}42");
        engine.close().await;
    })
    .await;
}
