//! Spoilt bodies, generated: valid bodies of every endpoint that takes one,
//! cut short, given an unknown field, a field of the wrong type, a byte
//! that is not UTF-8, or grown past the size limit. Each is a 4xx problem
//! document (never a 5xx, never a panic) and nothing is stored.

use crate::common::Server;
use axum::http::StatusCode;
use proptest::prelude::*;
use serde_json::{Value as Json, json};
use tollgate_server::Limits;

const BODY_BYTES_MAX: usize = 4_096;

/// Every endpoint that takes a body, a valid body for it, and the token to send it with.
fn valid(server: &Server, handoff: &str) -> Vec<(String, Json, String)> {
    let agent = server.agent.clone();
    let reviewer = server.reviewer.clone();
    vec![
        ("/v1/sessions".into(), json!({"id": "new", "workflow": "support-refunds"}), agent.clone()),
        (
            "/v1/sessions/s1/calls".into(),
            json!({"id": "c9", "tool": "process_refund", "args": {"order_id": "#W1", "amount": 5}, "summary": "a refund"}),
            agent.clone(),
        ),
        ("/v1/sessions/s1/results".into(), json!({"call_id": "r1", "result": {"ok": true}}), agent.clone()),
        (
            "/v1/sessions/s1/steps".into(),
            json!({"result": {"call_id": "r1", "error": "timeout"}, "next": {"id": "c8", "tool": "get_customer", "args": {}}}),
            agent.clone(),
        ),
        ("/v1/sessions/s1/investigations".into(), json!({"concerns": [{"id": "a", "concern": "refund"}]}), agent),
        (format!("/v1/handoffs/{handoff}/approve"), json!({"expires_in_seconds": 60}), reviewer.clone()),
        (format!("/v1/handoffs/{handoff}/deny"), json!({"reason": "no"}), reviewer.clone()),
        (format!("/v1/handoffs/{handoff}/resolve"), json!({"note": "done"}), reviewer),
        ("/v1/workflows".into(), json!({"text": "[workflow]\nname = \"x\"\n", "file": "x.toml"}), server.admin.clone()),
    ]
}

#[derive(Clone, Debug)]
enum Spoil {
    /// Cut at this fraction of its length (a proper prefix of a JSON object never parses).
    Cut(f64),
    /// An unknown field.
    Unknown(String),
    /// Every string field replaced by a number, at the top level.
    Retyped(i64),
    /// A byte that is not UTF-8 inside its text.
    NotUtf8(f64),
    /// Padded past the size limit.
    Huge(usize),
}

fn spoil() -> impl Strategy<Value = Spoil> {
    prop_oneof![
        (0.0..1.0f64).prop_map(Spoil::Cut),
        "[a-z_]{1,12}".prop_map(Spoil::Unknown),
        any::<i64>().prop_map(Spoil::Retyped),
        (0.0..1.0f64).prop_map(Spoil::NotUtf8),
        (0..10_000usize).prop_map(Spoil::Huge),
    ]
}

fn spoilt(body: &Json, spoil: &Spoil) -> Vec<u8> {
    let text = body.to_string().into_bytes();
    let at = |fraction: f64| ((text.len() - 1) as f64 * fraction) as usize;
    match spoil {
        Spoil::Cut(fraction) => text[..at(*fraction).max(1).min(text.len() - 1)].to_vec(),
        Spoil::Unknown(name) => {
            let mut body = body.clone();
            body.as_object_mut().unwrap().insert(format!("x_{name}"), json!(1));
            body.to_string().into_bytes()
        }
        Spoil::Retyped(number) => {
            let mut body = body.clone();
            for value in body.as_object_mut().unwrap().values_mut() {
                *value = match value {
                    Json::String(_) | Json::Object(_) | Json::Array(_) => json!(number),
                    _ => json!("text"),
                };
            }
            body.to_string().into_bytes()
        }
        Spoil::NotUtf8(fraction) => {
            let mut bytes = text.clone();
            bytes.insert(at(*fraction).max(1), 0xff);
            bytes
        }
        Spoil::Huge(extra) => {
            let mut body = body.clone();
            body.as_object_mut().unwrap().insert("pad".into(), json!("p".repeat(BODY_BYTES_MAX + extra)));
            body.to_string().into_bytes()
        }
    }
}

/// What the store holds that a request could change.
async fn stored(server: &Server, handoff: &str) -> (usize, usize, Option<Json>, bool, usize) {
    let handoff = server.engine.handoff(handoff).await.unwrap().unwrap();
    (
        server.engine.journal("s1").await.unwrap().len(),
        server.engine.audit_records(0, 100_000).await.unwrap().len(),
        Some(json!([handoff.status, handoff.updated_ms])),
        server.engine.session("new").await.unwrap().is_some(),
        server.state.workflows().len(),
    )
}

#[test]
fn spoilt_bodies_are_4xx_problems_and_store_nothing() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let limits = Limits { body_bytes_max: BODY_BYTES_MAX, rate_per_second: 0.0, ..Limits::default() };
    let servers = runtime.block_on(async {
        let mut servers =
            vec![Server::start_with(&tollgate_store::testing::sqlite_url().unwrap(), None, limits.clone()).await];
        if let Some(url) = tollgate_store::testing::postgres_schema_url().await {
            servers.push(Server::start_with(&url, None, limits).await);
        }
        for server in &servers {
            server.verified("s1").await;
            server.refund("s1", "r1", 30.0).await;
            server.refund("s1", "big", 800.0).await;
            let id = tollgate_engine::handoff_id("s1", "big");
            server.expect(StatusCode::OK, "POST", &format!("/v1/handoffs/{id}/claim"), &server.reviewer, None).await;
        }
        servers
    });
    let handoff = tollgate_engine::handoff_id("s1", "big");
    let before: Vec<_> = servers.iter().map(|s| runtime.block_on(stored(s, &handoff))).collect();
    let config = ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(endpoint in 0..9usize, spoil in spoil())| {
        for (server, before) in servers.iter().zip(&before) {
            let (path, body, token) = valid(server, &handoff).swap_remove(endpoint);
            let bytes = spoilt(&body, &spoil);
            let answer = runtime.block_on(server.raw("POST", &path, Some(&token), Some("application/json"), Some(bytes)));
            prop_assert!(answer.status.is_client_error(), "{path} {spoil:?}: {} {}", answer.status, answer.body);
            prop_assert_eq!(&answer.headers["content-type"], "application/problem+json");
            prop_assert!(answer.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
            let expected = if matches!(spoil, Spoil::Huge(_)) { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::BAD_REQUEST };
            prop_assert_eq!(answer.status, expected, "{} {:?}: {}", path, spoil, answer.body);
            prop_assert_eq!(&runtime.block_on(stored(server, &handoff)), before, "nothing stored");
        }
    });
}
