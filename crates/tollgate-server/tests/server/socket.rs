//! The server over a real socket, as `tollgate serve` runs it: bound to a
//! free port, spoken to with hyper's client, its webhook heard by a real
//! loopback receiver that checks each signature; shutdown ends an open
//! event stream and `run` returns. And the webhook alone: retried after a
//! failure; a full queue drops (and counts) instead of blocking.

use crate::common::REFERENCE;
use axum::http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value as Json, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tollgate_engine::{Engine, Handoff, Role};
use tollgate_server::webhook::signature;
use tollgate_server::{Announcer, Bound, Config, Webhook, WebhookConfig, WorkflowSource};

const SECRET: &[u8] = b"a webhook secret of some length";

/// A connection to `addr` and one request on it; the response.
async fn open(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Json>,
) -> hyper::Response<hyper::body::Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::builder().method(method).uri(path).header("host", "localhost");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            Full::new(Bytes::from(body.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    sender.send_request(request.body(body).unwrap()).await.unwrap()
}

pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Json>,
) -> (StatusCode, Json) {
    let response = open(addr, method, path, token, body).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&bytes).into())))
}

/// What a receiver heard: the event header, whether the signature held, the body.
type Heard = (String, bool, Json);

/// A webhook receiver on a free loopback port: answers each request with the
/// next of `statuses` (then 200), after `gate` is notified when given.
async fn receiver(statuses: Vec<u16>, gate: Option<Arc<Notify>>) -> (SocketAddr, mpsc::UnboundedReceiver<Heard>) {
    let (heard, hear) = mpsc::unbounded_channel();
    let statuses = Arc::new(Mutex::new(statuses.into_iter()));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (heard, statuses, gate) = (heard.clone(), Arc::clone(&statuses), gate.clone());
            async move {
                if let Some(gate) = gate {
                    gate.notified().await;
                }
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                let timestamp: i64 = header("x-tollgate-timestamp").parse().unwrap_or(0);
                let valid = header("x-tollgate-signature") == signature(SECRET, timestamp, &body);
                heard.send((header("x-tollgate-event"), valid, serde_json::from_slice(&body).unwrap())).unwrap();
                StatusCode::from_u16(statuses.lock().unwrap().next().unwrap_or(200)).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hear)
}

fn webhook_config(addr: SocketAddr) -> WebhookConfig {
    let mut config = WebhookConfig::new(&format!("http://{addr}/hook"), SECRET).unwrap();
    config.backoff_first = Duration::from_millis(10);
    config
}

#[tokio::test]
async fn the_server_serves_over_a_socket_announces_handoffs_and_shuts_down_gracefully() {
    let db = tollgate_store::testing::sqlite_url().unwrap();
    let engine = Engine::open(&db).await.unwrap();
    let agent = engine.create_token("acme", Role::Agent, "bot").await.unwrap().1;
    let reviewer = engine.create_token("acme", Role::Reviewer, "Ann").await.unwrap().1;
    engine.close().await;
    let (hook, mut heard) = receiver(vec![], None).await;
    let workflows = vec![WorkflowSource { path: "support-refunds.toml".into(), text: REFERENCE.to_owned() }];
    let mut config = Config::new(workflows, db.clone(), "127.0.0.1:0".parse().unwrap());
    config.webhook = Some(webhook_config(hook));
    let bound = Bound::bind(config).await.unwrap();
    let addr = bound.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(bound.run(async move {
        let _ = stopped.await;
    }));

    assert_eq!(send(addr, "GET", "/healthz", None, None).await.0, StatusCode::OK);
    assert_eq!(send(addr, "GET", "/readyz", None, None).await.0, StatusCode::OK);
    let create = json!({"id": "s1", "workflow": "support-refunds"});
    assert_eq!(send(addr, "POST", "/v1/sessions", Some(&agent), Some(create)).await.0, StatusCode::CREATED);
    verified(addr, &agent, "s1").await;
    let refund = json!({"id": "r1", "tool": "process_refund", "args": {"order_id": "#W1", "amount": 800}});
    let (_, escalated) = send(addr, "POST", "/v1/sessions/s1/calls", Some(&agent), Some(refund)).await;
    let id = escalated["handoff"].as_str().unwrap().to_owned();

    let (event, valid, body) = heard.recv().await.unwrap();
    assert_eq!((event.as_str(), valid), ("handoff.opened", true));
    assert_eq!(body["handoff"]["id"], id.as_str());
    let (status, _) = send(addr, "POST", &format!("/v1/handoffs/{id}/claim"), Some(&reviewer), None).await;
    assert_eq!(status, StatusCode::OK);
    let (event, valid, body) = heard.recv().await.unwrap();
    assert_eq!((event.as_str(), valid, body["handoff"]["claimed_by"].as_str()), ("handoff.claimed", true, Some("Ann")));

    // An open event stream: its first event, then shutdown ends it.
    let stream = open(addr, "GET", &format!("/v1/handoffs/{id}/events"), Some(&agent), None).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let mut body = stream.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("\"claimed\""));
    stop.send(()).unwrap();
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
    running.await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer listening");
}

/// Session `session` (created) gets a verified customer and an order of $5,000.
pub async fn verified(addr: SocketAddr, agent: &str, session: &str) {
    let calls = format!("/v1/sessions/{session}/calls");
    let results = format!("/v1/sessions/{session}/results");
    let steps = [
        (&calls, json!({"id": "v", "tool": "get_customer", "args": {"email": "a@example.com", "zip": "94107"}})),
        (
            &results,
            json!({"call_id": "v", "result": {"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"}}),
        ),
        (&calls, json!({"id": "o", "tool": "lookup_order", "args": {"order_id": "#W1"}})),
        (
            &results,
            json!({"call_id": "o", "result": {"order_id": "#W1", "customer_id": "c_42", "total": 5000.0, "status": "delivered"}}),
        ),
    ];
    for (path, body) in steps {
        let (status, answer) = send(addr, "POST", path, Some(agent), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
}

#[tokio::test]
async fn the_expiry_sweep_expires_an_overdue_handoff_and_announces_it() {
    let db = tollgate_store::testing::sqlite_url().unwrap();
    let engine = Engine::open(&db).await.unwrap();
    let agent = engine.create_token("acme", Role::Agent, "bot").await.unwrap().1;
    engine.close().await;
    let (hook, mut heard) = receiver(vec![], None).await;
    // Handoffs of this workflow wait one second for a person.
    let text = REFERENCE.replacen("[handoff]\n", "[handoff]\nexpires_after = \"1s\"\n", 1);
    assert_ne!(text, REFERENCE);
    let workflows = vec![WorkflowSource { path: "support-refunds.toml".into(), text }];
    let mut config = Config::new(workflows, db, "127.0.0.1:0".parse().unwrap());
    config.webhook = Some(webhook_config(hook));
    config.expiry_sweep_every = Duration::from_millis(100);
    let bound = Bound::bind(config).await.unwrap();
    let addr = bound.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(bound.run(async move {
        let _ = stopped.await;
    }));
    let create = json!({"id": "s1", "workflow": "support-refunds"});
    assert_eq!(send(addr, "POST", "/v1/sessions", Some(&agent), Some(create)).await.0, StatusCode::CREATED);
    verified(addr, &agent, "s1").await;
    let refund = json!({"id": "r1", "tool": "process_refund", "args": {"order_id": "#W1", "amount": 800}});
    let (_, escalated) = send(addr, "POST", "/v1/sessions/s1/calls", Some(&agent), Some(refund)).await;
    let id = escalated["handoff"].as_str().unwrap().to_owned();
    assert_eq!(heard.recv().await.unwrap().0, "handoff.opened");
    let (event, valid, body) = heard.recv().await.unwrap();
    assert_eq!((event.as_str(), valid, body["handoff"]["id"].as_str()), ("handoff.expired", true, Some(id.as_str())));
    let (_, handoff) = send(addr, "GET", &format!("/v1/handoffs/{id}"), Some(&agent), None).await;
    assert_eq!(handoff["status"], "expired");
    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}

fn handoff(id: &str) -> Handoff {
    Handoff {
        id: id.into(),
        tenant: "acme".into(),
        session: "s1".into(),
        call_id: "r1".into(),
        tool: "process_refund".into(),
        status: "open".into(),
        urgency: "high".into(),
        urgency_rank: 2,
        customer_id: None,
        claimed_by: None,
        consumed_by: None,
        created_ms: 0,
        updated_ms: 0,
        expires_ms: 0,
        body: json!({}),
    }
}

#[tokio::test]
async fn a_webhook_event_is_retried_after_a_failure_and_a_full_queue_drops_without_blocking() {
    let (addr, mut heard) = receiver(vec![500], None).await;
    let webhook = Webhook::start(webhook_config(addr));
    webhook.announce("handoff.opened", &handoff("h_1"));
    let first = heard.recv().await.unwrap();
    let retried = heard.recv().await.unwrap();
    assert!(first.1 && retried.1, "both signed");
    assert_eq!(first.2, retried.2, "the same event again");
    webhook.stop(Duration::from_secs(5)).await;

    // A receiver that does not answer: one event in flight, one queued, the rest dropped.
    let gate = Arc::new(Notify::new());
    let (addr, mut heard) = receiver(vec![], Some(Arc::clone(&gate))).await;
    let mut config = webhook_config(addr);
    config.queue_max = 1;
    let webhook = Webhook::start(config);
    for n in 0..6 {
        webhook.announce("handoff.opened", &handoff(&format!("h_{n}")));
    }
    assert!(webhook.dropped() >= 4, "{}", webhook.dropped());
    gate.notify_waiters();
    gate.notify_one();
    let (event, valid, _) = heard.recv().await.unwrap();
    assert_eq!((event.as_str(), valid), ("handoff.opened", true));
    gate.notify_one();
    webhook.stop(Duration::from_secs(5)).await;
}

#[test]
fn a_webhook_takes_only_plain_http_urls_and_a_secret_of_16_bytes() {
    for url in ["https://example.test/hook", "ftp://x/", "http://", "http://a:b/", "http://u@h/"] {
        assert!(WebhookConfig::new(url, SECRET).is_err(), "{url}");
    }
    assert!(WebhookConfig::new("http://127.0.0.1:9/hook", b"short").is_err());
    assert!(WebhookConfig::new("http://127.0.0.1:9/hook", SECRET).is_ok());
    let file = std::env::temp_dir().join(format!("tollgate-webhook-secret-{}", std::process::id()));
    std::fs::write(&file, b"  a secret from a file  \n").unwrap();
    let config = WebhookConfig::from_secret_file("http://127.0.0.1:9/hook", &file).unwrap();
    assert!(!format!("{config:?}").contains("secret"));
    std::fs::remove_file(&file).unwrap();
    // The signature is sha256= and 32 bytes of hex.
    assert_eq!(signature(b"key", 1, b"{}").len(), "sha256=".len() + 64);
}
