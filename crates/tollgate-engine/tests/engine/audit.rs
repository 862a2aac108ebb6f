//! The audit log against someone who can write to the database: results are
//! in the chain; a full rewrite with every hash and the head recomputed
//! passes the chains (as it must: anyone can compute SHA-256) but not the
//! head's signature; a writer without the key is caught too; and a log being
//! written while it is verified gives no false alarm, key or not.

use crate::common::on_both;
use serde_json::{Value as Json, json};
use std::sync::Arc;
use tollgate_core::{ToolCall, ToolOutcome};
use tollgate_engine::{AuditKey, Engine, WorkflowHandle};
use tollgate_store::{AuditRecord, Store, record_hash};

const REFERENCE: &str = include_str!("../../../../examples/support-refunds.toml");

async fn keyed(url: &str, key: &AuditKey) -> (Engine, WorkflowHandle) {
    let engine = Engine::open(url).await.unwrap().with_audit_key(key.clone());
    let workflow = engine.register_workflow(REFERENCE, "support-refunds.toml").await.unwrap();
    (engine, workflow)
}

/// A verified customer, an order of $300, a refund of $100 and its result.
async fn story(engine: &Engine, workflow: &WorkflowHandle, session: &str) {
    engine.create_session(workflow, session, None).await.unwrap();
    let call = |id: &str, tool: &str, args| ToolCall::new(id, tool, args);
    engine
        .decide(session, &call("v", "get_customer", json!({"email": "a@example.com", "zip": "94107"})))
        .await
        .unwrap();
    let customer = json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"});
    engine.record_result(session, "v", &customer, ToolOutcome::Succeeded).await.unwrap();
    engine.decide(session, &call("o", "lookup_order", json!({"order_id": "#W1"}))).await.unwrap();
    let order = json!({"order_id": "#W1", "customer_id": "c_42", "total": 300.0, "status": "delivered"});
    engine.record_result(session, "o", &order, ToolOutcome::Succeeded).await.unwrap();
}

/// SQL text literal.
fn text(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Rewrites the audit log as a careful writer without the key would:
/// `change` edits record bodies, then every hash, both chains, the
/// sessions' chain heads and the log's head are recomputed and stored.
async fn rewrite(store: &Store, change: impl Fn(&mut AuditRecord)) {
    let mut records = store.audit_records(0, 100_000).await.unwrap();
    let mut last = tollgate_store::AuditHead::unsigned(0, "0".repeat(64)).hash;
    let mut sessions: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    for record in &mut records {
        change(record);
        record.prev_hash = last.clone();
        record.session_prev_hash = sessions.get(&record.session_id).cloned().unwrap_or_else(|| "0".repeat(64));
        record.hash = record_hash(record);
        last = record.hash.clone();
        sessions.insert(record.session_id.clone(), record.hash.clone());
        let sql = format!(
            "UPDATE tollgate_audit SET body = {}, prev_hash = {}, session_prev_hash = {}, hash = {} WHERE seq = {}",
            text(&record.body),
            text(&record.prev_hash),
            text(&record.session_prev_hash),
            text(&record.hash),
            record.seq
        );
        tollgate_store::testing::execute(store, &sql).await.unwrap();
    }
    for (session, hash) in &sessions {
        let sql = format!("UPDATE tollgate_sessions SET audit_hash = {} WHERE id = {}", text(hash), text(session));
        tollgate_store::testing::execute(store, &sql).await.unwrap();
    }
    let sql = format!("UPDATE tollgate_audit_head SET hash = {} WHERE id = 1", text(&last));
    tollgate_store::testing::execute(store, &sql).await.unwrap();
}

#[tokio::test]
async fn a_full_rewrite_passes_the_chains_but_not_the_key() {
    on_both(|url| async move {
        let key = AuditKey::generate().unwrap();
        let (engine, workflow) = keyed(&url, &key).await;
        story(&engine, &workflow, "s1").await;
        // Results are in the chain: the order's total is in its audit record.
        let records = engine.audit_records(0, 100).await.unwrap();
        let result = records.iter().find(|r| r.kind == "result" && r.body.contains("\"order_id\":\"#W1\"")).unwrap();
        assert!(result.body.contains("\"total\":300.0"), "{}", result.body);
        let public = key.public();
        let clean = engine.verify_audit_with(Some(&public)).await.unwrap();
        assert_eq!(clean.problem, None);
        assert!(public.signed(&clean.head) && clean.head.seq == records.len() as i64);
        engine.close().await;

        // Someone with write access makes the order worth more, recomputing everything.
        let store = Store::open(&url).await.unwrap();
        rewrite(&store, |record| record.body = record.body.replace("\"total\":300.0", "\"total\":3000.0")).await;
        store.close().await;
        let engine = Engine::open(&url).await.unwrap();
        let without = engine.verify_audit().await.unwrap();
        assert_eq!(without.problem, None, "without the key a careful rewrite cannot be told apart");
        let with = engine.verify_audit_with(Some(&public)).await.unwrap();
        let problem = with.problem.unwrap();
        assert!(problem.message.contains("not signed by key"), "{problem:?}");
        // Another key does not vouch for the real log either.
        let other = AuditKey::generate().unwrap().public();
        engine.close().await;
        let (engine, workflow) = keyed(&url, &key).await;
        story(&engine, &workflow, "s2").await;
        assert_eq!(engine.verify_audit_with(Some(&public)).await.unwrap().problem, None, "the key's writer goes on");
        assert!(engine.verify_audit_with(Some(&other)).await.unwrap().problem.is_some());
        engine.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_writer_without_the_key_leaves_an_unsigned_head() {
    on_both(|url| async move {
        let key = AuditKey::generate().unwrap();
        let (engine, workflow) = keyed(&url, &key).await;
        story(&engine, &workflow, "s1").await;
        engine.close().await;
        let unkeyed = Engine::open(&url).await.unwrap();
        let call = ToolCall::new("x", "get_customer", json!({"email": "a@example.com", "zip": "94107"}));
        unkeyed.decide("s1", &call).await.unwrap();
        let report = unkeyed.verify_audit_with(Some(&key.public())).await.unwrap();
        assert!(report.problem.is_some_and(|p| p.message.contains("not signed")));
        assert_eq!(unkeyed.audit_head().await.unwrap().signature, None);
        unkeyed.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_written_while_it_is_verified_gives_no_false_alarm() {
    on_both(|url| async move {
        let key = AuditKey::generate().unwrap();
        let (engine, workflow) = keyed(&url, &key).await;
        let engine = Arc::new(engine);
        story(&engine, &workflow, "s1").await;
        let writer = {
            let engine = Arc::clone(&engine);
            tokio::spawn(async move {
                for n in 0..150 {
                    let call = ToolCall::new(format!("c{n}"), "lookup_order", json!({"order_id": "#W1"}));
                    engine.decide("s1", &call).await.unwrap();
                }
            })
        };
        let public = key.public();
        let mut verified = 0;
        while !writer.is_finished() {
            let report = engine.verify_audit_with(Some(&public)).await.unwrap();
            assert_eq!(report.problem, None);
            verified += 1;
        }
        writer.await.unwrap();
        assert!(verified > 0);
        let last: Json = json!(engine.verify_audit_with(Some(&public)).await.unwrap().records);
        assert_eq!(last, json!(4 + 150), "every decision and result, one record each");
        engine.close().await;
    })
    .await;
}
