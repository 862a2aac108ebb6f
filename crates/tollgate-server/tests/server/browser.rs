//! The desk in a real browser: the router on a real socket over a fresh
//! SQLite store; the agent calls it over HTTP (hyper); a reviewer works the
//! desk in Debian's Chromium, driven by `tests/browser/desk.mjs`
//! (playwright-core). The two sides take turns one line at a time.

use crate::common::REFERENCE;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tollgate_core::{ToolCall, ToolOutcome};
use tollgate_engine::{Engine, HumanAction, Role, handoff_id};
use tollgate_server::{AppState, Limits};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Why the browser test cannot run here, if it cannot.
fn missing(dir: &Path) -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} is not installed (.ci/node installs it)"));
    }
    if std::process::Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed (.ci/node installs it)".into());
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return Some("playwright-core is not installed (.ci/node runs npm ci)".into());
    }
    None
}

/// The agent's side: one HTTP/1 request per connection.
struct Agent {
    address: std::net::SocketAddr,
    token: String,
}

impl Agent {
    async fn post(&self, path: &str, body: Json) -> Json {
        let stream = tokio::net::TcpStream::connect(self.address).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        let request = hyper::Request::post(path)
            .header("host", self.address.to_string())
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json: Json = serde_json::from_slice(&bytes).unwrap();
        assert!(status.is_success(), "{status}: {json}");
        json
    }

    async fn refund(&self, session: &str, id: &str) -> Json {
        let call = json!({"id": id, "tool": "process_refund", "args": {"order_id": "#W1", "amount": 800.0}});
        self.post(&format!("/v1/sessions/{session}/calls"), call).await["decision"].clone()
    }
}

/// The reviewer's side: the node script, a line at a time.
struct Reviewer {
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Reviewer {
    async fn tell(&mut self, line: &str) {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn hear(&mut self) -> String {
        let line = self.stdout.next_line().await.unwrap().unwrap_or_else(|| "the browser side ended".into());
        assert!(!line.starts_with("error") && !line.starts_with("problems"), "browser: {line}");
        line
    }
}

/// Session `session` with a verified customer and an order, its results
/// recorded as the agent's tools would.
async fn verified(engine: &Engine, agent: &Agent, session: &str) {
    agent.post("/v1/sessions", json!({"id": session, "workflow": "support-refunds"})).await;
    let acme = engine.for_tenant("acme");
    let calls = [
        ("v", "get_customer", json!({"email": "a@example.com", "zip": "94107"})),
        ("o", "lookup_order", json!({"order_id": "#W1"})),
    ];
    let results = [
        json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"}),
        json!({"order_id": "#W1", "customer_id": "c_42", "total": 5000.0, "status": "delivered"}),
    ];
    for ((id, tool, args), result) in calls.into_iter().zip(results) {
        let decided =
            agent.post(&format!("/v1/sessions/{session}/calls"), json!({"id": id, "tool": tool, "args": args})).await;
        assert_eq!(decided["decision"]["verdict"], "allow", "{decided}");
        acme.record_result(session, id, &result, ToolOutcome::Succeeded).await.unwrap();
    }
}

/// A case handed over by the agent itself, at `urgency`.
async fn handed_over(engine: &Engine, agent: &Agent, session: &str, urgency: &str, action: &str) -> String {
    verified(engine, agent, session).await;
    let args = json!({
        "customer_id": "c_42", "conversation_summary": format!("The customer asks us to {action}."),
        "root_cause": "the agent may not do this itself", "recommended_action": action, "urgency": urgency,
    });
    let call = ToolCall::new("h", "escalate_to_human", args);
    engine.for_tenant("acme").decide(session, &call).await.unwrap();
    handoff_id(session, "h")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_approves_and_denies_live_escalations_in_chromium() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if let Some(why) = missing(&dir) {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "the desk's browser test cannot run: {why}");
        eprintln!("skipping the desk's browser test: {why}");
        return;
    }
    let engine = Arc::new(Engine::open(&tollgate_store::testing::sqlite_url().unwrap()).await.unwrap());
    let workflow = engine.register_workflow(REFERENCE, "support-refunds.toml").await.unwrap();
    let agent_token = engine.create_token("acme", Role::Agent, "support bot").await.unwrap().1;
    let reviewer_token = engine.create_token("acme", Role::Reviewer, "Ann").await.unwrap().1;
    let router = tollgate_server::router(AppState::new(Arc::clone(&engine), vec![workflow], Limits::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let agent = Agent { address, token: agent_token };

    // Two less urgent handoffs wait, one of them claimed by Bob.
    handed_over(&engine, &agent, "s-low", "low", "send the customer a goodwill voucher").await;
    let normal = handed_over(&engine, &agent, "s-normal", "normal", "update the customer's address").await;
    engine.act(&normal, HumanAction::Claim { reviewer: "Bob".into() }).await.unwrap();

    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/desk-screenshots");
    let mut child = Command::new("node")
        .arg(dir.join("desk.mjs"))
        .arg(format!("http://{address}"))
        .arg(&reviewer_token)
        .arg(&shots)
        .env("CHROMIUM", CHROMIUM)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut reviewer =
        Reviewer { stdin: child.stdin.take().unwrap(), stdout: BufReader::new(child.stdout.take().unwrap()).lines() };
    assert_eq!(reviewer.hear().await, "signed-in 2");

    // A refund over the limit escalates through the API and shows up live.
    verified(&engine, &agent, "s1").await;
    let escalated = agent.refund("s1", "r1").await;
    assert_eq!(escalated["verdict"], "escalate", "{escalated}");
    let first = handoff_id("s1", "r1");
    reviewer.tell(&format!("escalated {first}")).await;
    assert_eq!(reviewer.hear().await, "approved");

    // The identical call runs once on the approval; the next escalates again.
    let allowed = agent.refund("s1", "r2").await;
    assert_eq!((allowed["verdict"].as_str(), allowed["approved_by"].as_str()), (Some("allow"), Some("r1")));
    let again = agent.refund("s1", "r3").await;
    assert_eq!(again["verdict"], "escalate", "{again}");

    // Denied with a typed reason: the retry is blocked with exactly it.
    let reason = "Order W1 was refunded by cheque last week";
    reviewer.tell(&format!("deny {} {reason}", handoff_id("s1", "r3"))).await;
    assert_eq!(reviewer.hear().await, "denied");
    let blocked = agent.refund("s1", "r4").await;
    assert_eq!(blocked["verdict"], "block", "{blocked}");
    let said: Vec<&str> = blocked["reasons"].as_array().unwrap().iter().filter_map(|r| r["message"].as_str()).collect();
    assert!(said.iter().any(|message| message.contains(reason)), "{blocked}");

    reviewer.tell("done s1").await;
    assert_eq!(reviewer.hear().await, "ok");
    drop(reviewer);
    assert!(child.wait().await.unwrap().success());
}
