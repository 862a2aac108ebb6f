//! Race test with real processes: two OS processes, each with 32 concurrent
//! callers, race refunds of 40 on one session whose order totals 300. Only 7
//! fit; together they must get exactly 7 allowed, on SQLite (one file) and on
//! PostgreSQL (one database).
//!
//! The workers are this test binary itself, started again with
//! `TOLLGATE_RACE_DB` set: then `race_worker` runs the callers and prints how
//! many refunds it was allowed.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

use serde_json::json;
use std::process::{Command, Stdio};
use std::sync::Arc;
use tollgate_core::{ToolCall, ToolOutcome, Verdict};
use tollgate_engine::Engine;
use tollgate_store::testing::{postgres_schema_url, sqlite_url};

const REFERENCE: &str = include_str!("../../../../examples/support-refunds.toml");
const CALLERS: usize = 32;

/// The worker half: only does something when started by `two_processes_race`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn race_worker() {
    let (Ok(db), Ok(prefix)) = (std::env::var("TOLLGATE_RACE_DB"), std::env::var("TOLLGATE_RACE_PREFIX")) else {
        return;
    };
    let engine = Arc::new(Engine::open(&db).await.unwrap());
    engine.register_workflow(REFERENCE, "support-refunds.toml").await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..CALLERS {
        let engine = Arc::clone(&engine);
        let id = format!("{prefix}-{n}");
        tasks.push(tokio::spawn(async move {
            let call = ToolCall::new(id, "process_refund", json!({"order_id": "#W1", "amount": 40.0}));
            engine.decide("race", &call).await.unwrap().decision.verdict() == Verdict::Allow
        }));
    }
    let mut allowed = 0;
    for task in tasks {
        allowed += usize::from(task.await.unwrap());
    }
    println!("RACE-ALLOWED {allowed}");
}

async fn prepare(url: &str) {
    let engine = Engine::open(url).await.unwrap();
    let workflow = engine.register_workflow(REFERENCE, "support-refunds.toml").await.unwrap();
    engine.create_session(&workflow, "race", None).await.unwrap();
    let call = |id: &str, tool: &str, args| ToolCall::new(id, tool, args);
    engine.decide("race", &call("v", "get_customer", json!({"email": "a@example.com", "zip": "94107"}))).await.unwrap();
    let customer = json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"});
    engine.record_result("race", "v", &customer, ToolOutcome::Succeeded).await.unwrap();
    engine.decide("race", &call("o", "lookup_order", json!({"order_id": "#W1"}))).await.unwrap();
    let order = json!({"order_id": "#W1", "customer_id": "c_42", "total": 300.0, "status": "delivered"});
    engine.record_result("race", "o", &order, ToolOutcome::Succeeded).await.unwrap();
    engine.close().await;
}

async fn race(url: &str) {
    prepare(url).await;
    let exe = std::env::current_exe().unwrap();
    let workers: Vec<_> = ["a", "b"]
        .iter()
        .map(|prefix| {
            Command::new(&exe)
                .args(["--exact", "race::race_worker", "--nocapture", "--test-threads", "1"])
                .env("TOLLGATE_RACE_DB", url)
                .env("TOLLGATE_RACE_PREFIX", prefix)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        let output = worker.wait_with_output().unwrap();
        assert!(output.status.success(), "a worker failed");
        let text = String::from_utf8_lossy(&output.stdout);
        let line = text.lines().find_map(|l| l.split("RACE-ALLOWED ").nth(1)).unwrap_or_else(|| panic!("{text}"));
        total += line.trim().parse::<usize>().unwrap();
    }
    assert_eq!(total, 7, "{url}: two processes allowed {total} refunds of 40 on an order of 300");

    let engine = Engine::open(url).await.unwrap();
    let (_, state) = engine.state("race").await.unwrap();
    let (_, replayed) = engine.replay("race").await.unwrap();
    assert_eq!(state, replayed);
    assert_eq!(state.allowed_calls(), 2 + 7);
    assert_eq!(engine.verify_audit().await.unwrap().problem, None);
}

#[tokio::test]
async fn two_processes_race_refunds_on_one_session() {
    if std::env::var("TOLLGATE_RACE_DB").is_ok() {
        return; // this process is a worker
    }
    race(&sqlite_url().unwrap()).await;
    if let Some(url) = postgres_schema_url().await {
        race(&url).await;
    }
}
