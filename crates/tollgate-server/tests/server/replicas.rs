//! Two replicas as real processes on one PostgreSQL database (this test
//! binary re-executed as a server): 64 refunds racing on one session
//! through both never exceed the order's total, and two reviewers claiming
//! one handoff through different replicas: one wins, the other hears 409.

use crate::common::REFERENCE;
use crate::socket::{send, verified};
use axum::http::StatusCode;
use serde_json::json;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use tollgate_engine::{Engine, Role};
use tollgate_server::{Bound, Config, WorkflowSource};

const REPLICA_DB: &str = "TOLLGATE_TEST_REPLICA_DB";

/// Not a test of its own: when this binary is run as a replica (the
/// variable set), it serves until its standard input closes.
#[tokio::test]
async fn replica_process() {
    let Ok(db) = std::env::var(REPLICA_DB) else { return };
    let workflows = vec![WorkflowSource { path: "support-refunds.toml".into(), text: REFERENCE.to_owned() }];
    let bound = Bound::bind(Config::new(workflows, db, "127.0.0.1:0".parse().unwrap())).await.unwrap();
    println!("replica listening on {}", bound.local_addr().unwrap());
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    });
    bound
        .run(async move {
            let _ = stdin_closed.await;
        })
        .await
        .unwrap();
}

/// A replica process; killed if the test ends without stopping it.
struct Replica {
    child: Child,
    addr: SocketAddr,
}

impl Replica {
    fn start(db: &str) -> Replica {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["replicas::replica_process", "--exact", "--nocapture", "--test-threads=1"])
            .env(REPLICA_DB, db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("the replica ended before listening").unwrap();
            // The harness prints `test ... ` before it on the same line.
            if let Some((_, addr)) = line.split_once("replica listening on ") {
                break addr.trim().parse().unwrap();
            }
        };
        // Read the rest, so the replica's last words meet no closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Replica { child, addr }
    }

    /// Closes its input (it shuts down gracefully) and waits for it.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn two_replica_processes_hold_a_limit_together_and_agree_on_one_claim() {
    if std::env::var(REPLICA_DB).is_ok() {
        return;
    }
    let Some(url) = tollgate_store::testing::postgres_schema_url().await else {
        eprintln!("skipping the two-replica test: it needs PostgreSQL");
        return;
    };
    let engine = Engine::open(&url).await.unwrap();
    let agent = engine.create_token("acme", Role::Agent, "bot").await.unwrap().1;
    let ann = engine.create_token("acme", Role::Reviewer, "Ann").await.unwrap().1;
    let bob = engine.create_token("acme", Role::Reviewer, "Bob").await.unwrap().1;
    let (a, b) = (Replica::start(&url), Replica::start(&url));

    for session in ["s1", "s2"] {
        let create = json!({"id": session, "workflow": "support-refunds"});
        assert_eq!(send(a.addr, "POST", "/v1/sessions", Some(&agent), Some(create)).await.0, StatusCode::CREATED);
        // Verified and looked up through the other replica.
        verified(b.addr, &agent, session).await;
    }

    // 64 refunds of $100 against $5,000, alternating replicas, all at once: exactly 50 pass.
    let racing = (0..64).map(|n| {
        let (addr, agent) = (if n % 2 == 0 { a.addr } else { b.addr }, agent.clone());
        tokio::spawn(async move {
            let call =
                json!({"id": format!("r{n}"), "tool": "process_refund", "args": {"order_id": "#W1", "amount": 100}});
            let (status, decided) = send(addr, "POST", "/v1/sessions/s1/calls", Some(&agent), Some(call)).await;
            assert_eq!(status, StatusCode::OK, "{decided}");
            decided["decision"]["verdict"].as_str().unwrap().to_owned()
        })
    });
    let verdicts: Vec<String> = futures_util::future::join_all(racing).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(verdicts.iter().filter(|v| *v == "allow").count(), 50, "{verdicts:?}");
    assert_eq!(verdicts.iter().filter(|v| *v == "block").count(), 14);

    // Two reviewers claim one handoff through different replicas: one wins.
    let refund = json!({"id": "big", "tool": "process_refund", "args": {"order_id": "#W1", "amount": 800}});
    let (_, escalated) = send(a.addr, "POST", "/v1/sessions/s2/calls", Some(&agent), Some(refund)).await;
    let claim = format!("/v1/handoffs/{}/claim", escalated["handoff"].as_str().unwrap());
    let (first, second) =
        tokio::join!(send(a.addr, "POST", &claim, Some(&ann), None), send(b.addr, "POST", &claim, Some(&bob), None));
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "{} {}", first.1, second.1);
    a.stop();
    b.stop();
    assert_eq!(engine.verify_audit().await.unwrap().problem, None);
    engine.close().await;
}
