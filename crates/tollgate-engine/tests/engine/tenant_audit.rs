//! What the server builds on: the engine's clock as the server reads it, the
//! handoffs an expiry sweep expired (to announce them), and one tenant's view
//! of the global audit log: its records paged, and a break elsewhere reported
//! by position only.

use crate::common::on_both;
use serde_json::json;
use tollgate_core::{ToolCall, ToolOutcome};
use tollgate_engine::{Clock, Engine, WorkflowHandle};

const REFERENCE: &str = include_str!("../../../../examples/support-refunds.toml");
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const DAY: i64 = 24 * 60 * 60_000;

async fn engine_at(url: &str, now_ms: i64) -> (Engine, WorkflowHandle) {
    let engine = Engine::open(url).await.unwrap().with_clock(Clock::Fixed(now_ms));
    let workflow = engine.register_workflow(REFERENCE, "support-refunds.toml").await.unwrap();
    (engine, workflow)
}

/// A session of `tenant` with a verified customer and an order of $5,000:
/// four audit records.
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

#[tokio::test]
async fn the_engine_tells_its_time_and_an_expiry_sweep_returns_what_it_expired() {
    on_both(|url| async move {
        let (engine, workflow) = engine_at(&url, T0).await;
        assert_eq!(engine.now_ms(), T0);
        verified(&engine, &workflow, "acme", "s1").await;
        let refund = ToolCall::new("r1", "process_refund", json!({"order_id": "#W1", "amount": 800.0}));
        engine.for_tenant("acme").decide("s1", &refund).await.unwrap();
        assert!(engine.expire_overdue_handoffs(100).await.unwrap().is_empty());
        let (later, _) = engine_at(&url, T0 + DAY + 1).await;
        let expired = later.expire_overdue_handoffs(100).await.unwrap();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].id, tollgate_engine::handoff_id("s1", "r1"));
        assert_eq!((expired[0].status.as_str(), expired[0].tenant.as_str()), ("expired", "acme"));
        assert_eq!(later.expire_overdue(100).await.unwrap(), 0, "expired once");
        engine.close().await;
        later.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_tenant_pages_its_own_audit_records_and_sees_only_the_position_of_a_break_elsewhere() {
    on_both(|url| async move {
        let (engine, workflow) = engine_at(&url, T0).await;
        verified(&engine, &workflow, "acme", "a1").await;
        verified(&engine, &workflow, "globex", "g1").await;
        verified(&engine, &workflow, "acme", "a2").await;
        let acme = engine.for_tenant("acme");

        let first = acme.audit_records(0, 5).await.unwrap();
        assert_eq!(first.records.len(), 5);
        assert!(first.records.iter().all(|r| r.session_id == "a1" || r.session_id == "a2"));
        let second = acme.audit_records(first.next_after, 5).await.unwrap();
        let mut seen: Vec<i64> = first.records.iter().chain(&second.records).map(|r| r.seq).collect();
        assert_eq!(seen.len(), 8, "every acme record, none twice");
        seen.dedup();
        assert_eq!(seen.len(), 8);
        let end = acme.audit_records(second.next_after, 5).await.unwrap();
        assert!(end.records.is_empty());
        assert_eq!(end.next_after, second.next_after);
        assert!(engine.for_tenant("nobody").audit_records(0, 1_000).await.unwrap().records.is_empty());

        assert_eq!(acme.verify_audit().await.unwrap().problem, None);
        // Someone alters a globex record in the database.
        let store = tollgate_store::Store::open(&url).await.unwrap();
        let sql = "UPDATE tollgate_audit SET body = '{}' WHERE seq = \
                   (SELECT MIN(seq) FROM tollgate_audit WHERE session_id = 'g1')";
        tollgate_store::testing::execute(&store, sql).await.unwrap();
        let theirs = engine.for_tenant("globex").verify_audit().await.unwrap().problem.unwrap();
        assert_eq!(theirs.session_id.as_deref(), Some("g1"));
        let ours = acme.verify_audit().await.unwrap().problem.unwrap();
        assert_eq!(ours.seq, theirs.seq);
        assert_eq!(ours.session_id, None);
        assert!(!ours.message.contains("g1"), "{}", ours.message);
        store.close().await;
        engine.close().await;
    })
    .await;
}
