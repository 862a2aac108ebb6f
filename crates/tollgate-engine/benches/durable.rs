//! Durability costs, measured against the machine's own baselines in the
//! same run (the machines are noisy; ratios travel, absolute figures less).
//!
//! - raw fsync: 4 KiB write + `fsync` on a file beside the database;
//! - raw SQLite commit: one single-row INSERT committed with
//!   `synchronous=FULL` (the store's setting), through sqlx;
//! - engine step: `Engine::decide` on the reference workflow (lock, load
//!   checkpoint, decide, journal + audit + checkpoint, commit), median, and its
//!   ratio to the raw commit;
//! - durable decisions per second from 64 concurrent sessions;
//! - resume: `Engine::resume` of a session with a checkpoint, median;
//! - audit verify: records per second over the whole log.
//!
//! Run with `cargo bench -p tollgate-engine --bench durable`
//! (`TOLLGATE_BENCH_DB` = a `postgres://` URL measures PostgreSQL instead).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use serde_json::json;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_core::{ToolCall, ToolOutcome};
use tollgate_engine::Engine;
use tollgate_store::{NewAudit, NewSession, Store, StoredWorkflow};

const REFERENCE: &str = include_str!("../../../examples/support-refunds.toml");

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

async fn verified_session(engine: &Engine, workflow: &tollgate_engine::WorkflowHandle, id: &str) {
    engine.create_session(workflow, id, None).await.unwrap();
    let call = |c: &str, tool: &str, args| ToolCall::new(c, tool, args);
    engine.decide(id, &call("v", "get_customer", json!({"email": "a@example.com", "zip": "94107"}))).await.unwrap();
    let customer = json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"});
    engine.record_result(id, "v", &customer, ToolOutcome::Succeeded).await.unwrap();
    engine.decide(id, &call("o", "lookup_order", json!({"order_id": "#W1"}))).await.unwrap();
    let order = json!({"order_id": "#W1", "customer_id": "c_42", "total": 1e9, "status": "delivered"});
    engine.record_result(id, "o", &order, ToolOutcome::Succeeded).await.unwrap();
}

fn main() {
    let dir = tollgate_store::testing::temp_dir("tollgate_bench").unwrap();
    let url = std::env::var("TOLLGATE_BENCH_DB").unwrap_or_else(|_| dir.join("bench.db").display().to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    // Raw fsync on this disk.
    let mut file = std::fs::File::create(dir.join("fsync.bin")).unwrap();
    let block = vec![7u8; 4096];
    let rounds = 300;
    let start = Instant::now();
    for _ in 0..rounds {
        file.write_all(&block).unwrap();
        file.sync_data().unwrap();
    }
    let fsync = start.elapsed() / rounds;
    println!("raw fsync (4 KiB write + fdatasync):      {:>9.1} µs  ({:.0}/s)", us(fsync), 1.0 / fsync.as_secs_f64());

    runtime.block_on(async {
        let engine = Engine::open(&url).await.unwrap();
        let backend = engine.store().backend();
        println!("store: {backend} ({url})");

        // One raw commit of one small row, the way the store commits.
        let raw = match engine.store() {
            Store::Sqlite(pool) => {
                sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw (n BIGINT, body TEXT)").execute(pool).await.unwrap();
                let mut samples = Vec::new();
                for n in 0..300i64 {
                    let start = Instant::now();
                    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
                    sqlx::query("INSERT INTO bench_raw VALUES ($1, 'x')").bind(n).execute(&mut *tx).await.unwrap();
                    tx.commit().await.unwrap();
                    samples.push(start.elapsed());
                }
                median(samples)
            }
            Store::Postgres(pool) => {
                sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw (n BIGINT, body TEXT)").execute(pool).await.unwrap();
                let mut samples = Vec::new();
                for n in 0..300i64 {
                    let start = Instant::now();
                    let mut tx = pool.begin().await.unwrap();
                    sqlx::query("INSERT INTO bench_raw VALUES ($1, 'x')").bind(n).execute(&mut *tx).await.unwrap();
                    tx.commit().await.unwrap();
                    samples.push(start.elapsed());
                }
                median(samples)
            }
        };
        println!("raw commit (one row, durable), median:    {:>9.1} µs", us(raw));

        // One engine step: a durable decision with its audit record and checkpoint.
        let workflow = engine.register_workflow(REFERENCE, "support-refunds.toml").await.unwrap();
        verified_session(&engine, &workflow, "step").await;
        let mut samples = Vec::new();
        for n in 0..300 {
            let call = ToolCall::new(format!("r{n}"), "process_refund", json!({"order_id": "#W1", "amount": 1.0}));
            let start = Instant::now();
            engine.decide("step", &call).await.unwrap();
            samples.push(start.elapsed());
        }
        let step = median(samples);
        println!(
            "engine step (decide + journal + audit + checkpoint), median: {:>9.1} µs  = {:.2}x the raw commit",
            us(step),
            step.as_secs_f64() / raw.as_secs_f64()
        );

        // Durable decisions per second from 64 concurrent sessions.
        let engine = Arc::new(engine);
        for n in 0..64 {
            verified_session(&engine, &workflow, &format!("c{n}")).await;
        }
        let per_session = 40;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for n in 0..64 {
            let engine = Arc::clone(&engine);
            tasks.push(tokio::spawn(async move {
                for k in 0..per_session {
                    let call =
                        ToolCall::new(format!("r{k}"), "process_refund", json!({"order_id": "#W1", "amount": 1.0}));
                    engine.decide(&format!("c{n}"), &call).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let elapsed = start.elapsed();
        println!(
            "durable decisions from 64 concurrent sessions: {:>9.0}/s  ({} in {:.2} s)",
            per_second(64 * per_session, elapsed),
            64 * per_session,
            elapsed.as_secs_f64()
        );

        // Resume: sessions with a checkpoint, one with many calls in doubt.
        let mut samples = Vec::new();
        let mut in_doubt = 0;
        for _ in 0..200 {
            let start = Instant::now();
            let resume = engine.resume("step").await.unwrap();
            samples.push(start.elapsed());
            in_doubt = resume.in_doubt.len();
        }
        println!("resume (a session of 300 refunds, {in_doubt} in doubt), median: {:>9.1} µs", us(median(samples)));
        let mut samples = Vec::new();
        for n in 0..200 {
            let start = Instant::now();
            engine.resume(&format!("c{}", n % 64)).await.unwrap();
            samples.push(start.elapsed());
        }
        println!("resume (a session of {} calls), median:    {:>9.1} µs", per_session + 2, us(median(samples)));

        // Audit verify over a large log: 200,000 more records, appended in big transactions.
        let store = engine.store();
        store
            .put_workflow(&StoredWorkflow { hash: "bench".into(), name: "b".into(), version: 1, text: String::new() })
            .await
            .unwrap();
        store
            .create_session(&NewSession {
                id: "audit".into(),
                workflow_hash: "bench".into(),
                workflow_name: "b".into(),
                workflow_version: 1,
                parent_id: None,
                created_ms: 0,
            })
            .await
            .unwrap();
        let body = json!({"call": {"id": "c1", "tool": "process_refund", "args": {"order_id": "#W1", "amount": 1.0}},
                          "decision": {"verdict": "allow", "idempotency_key": "audit/process_refund:c1"}})
        .to_string();
        let records: Vec<NewAudit> =
            (0..10_000).map(|_| NewAudit { kind: "decision.allow".into(), body: body.clone(), at_ms: 1 }).collect();
        for _ in 0..20 {
            let mut tx = store.lock_session("audit").await.unwrap();
            tx.append("audit", &[], &records, None).await.unwrap();
            tx.commit().await.unwrap();
        }
        let start = Instant::now();
        let report = store.verify_audit().await.unwrap();
        let elapsed = start.elapsed();
        assert_eq!(report.problem, None);
        println!(
            "audit verify: {} records in {:.2} s = {:>9.0} records/s",
            report.records,
            elapsed.as_secs_f64(),
            per_second(usize::try_from(report.records).unwrap_or(0), elapsed)
        );
    });
    std::fs::remove_dir_all(&dir).ok();
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
