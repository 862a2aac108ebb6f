//! Who may call what: every endpoint against no token, a forged token, an
//! unknown well-formed token and every role it does not admit (refused
//! before its body is read: a body that is not even JSON gets a 403, not a
//! 415), and nothing stored on their account. The OpenAPI document lists
//! exactly these endpoints.

use crate::common::{Server, on_both};
use axum::http::StatusCode;
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;

#[derive(Clone, Copy, PartialEq)]
pub enum Who {
    Agent,
    Reviewer,
    Admin,
}

const A: &[Who] = &[Who::Agent];
const AR: &[Who] = &[Who::Agent, Who::Reviewer];
const R: &[Who] = &[Who::Reviewer];
const ADMIN: &[Who] = &[Who::Admin];

/// Every endpoint: method, path template, whether it takes a body, the roles it admits.
pub const ENDPOINTS: &[(&str, &str, bool, &[Who])] = &[
    ("POST", "/v1/sessions", true, A),
    ("GET", "/v1/sessions/{id}", false, AR),
    ("GET", "/v1/sessions/{id}/journal", false, AR),
    ("POST", "/v1/sessions/{id}/calls", true, A),
    ("POST", "/v1/sessions/{id}/results", true, A),
    ("POST", "/v1/sessions/{id}/steps", true, A),
    ("POST", "/v1/sessions/{id}/investigations", true, A),
    ("POST", "/v1/sessions/{id}/conclusion", true, A),
    ("POST", "/v1/sessions/{id}/join", false, A),
    ("GET", "/v1/sessions/{id}/handoffs", false, AR),
    ("GET", "/v1/handoffs", false, R),
    ("GET", "/v1/handoffs/{id}", false, AR),
    ("GET", "/v1/handoffs/{id}/outcome", false, AR),
    ("GET", "/v1/handoffs/{id}/events", false, AR),
    ("POST", "/v1/handoffs/{id}/claim", false, R),
    ("POST", "/v1/handoffs/{id}/release", false, R),
    ("POST", "/v1/handoffs/{id}/approve", true, R),
    ("POST", "/v1/handoffs/{id}/deny", true, R),
    ("POST", "/v1/handoffs/{id}/resolve", true, R),
    ("GET", "/v1/audit/verify", false, ADMIN),
    ("GET", "/v1/audit/records", false, ADMIN),
    ("GET", "/v1/workflows", false, ADMIN),
    ("POST", "/v1/workflows", true, ADMIN),
];

/// The endpoints served without a token.
const OPEN: &[&str] = &["/healthz", "/readyz", "/metrics", "/openapi.json"];

/// The path with the session `s1` or its handoff of call `r1` in place.
pub fn concrete(template: &str) -> String {
    let handoff = tollgate_engine::handoff_id("s1", "r1");
    if template.starts_with("/v1/handoffs/") {
        template.replace("{id}", &handoff)
    } else {
        template.replace("{id}", "s1")
    }
}

/// What the store holds of `s1`: its journal and its handoff.
pub async fn snapshot(server: &Server) -> (usize, Json) {
    let journal = server.engine.journal("s1").await.unwrap().len();
    let handoff = server.engine.handoff(&tollgate_engine::handoff_id("s1", "r1")).await.unwrap().unwrap();
    (journal, json!([handoff.status, handoff.updated_ms, handoff.claimed_by]))
}

#[tokio::test]
async fn every_endpoint_refuses_a_missing_forged_or_unknown_token_and_every_role_it_does_not_admit() {
    on_both(|server| async move {
        server.verified("s1").await;
        server.refund("s1", "r1", 800.0).await;
        let before = snapshot(&server).await;
        let unknown = format!("tg_{}_{}", "0".repeat(16), "ab".repeat(32));
        let tokens = [(Who::Agent, &server.agent), (Who::Reviewer, &server.reviewer), (Who::Admin, &server.admin)];
        for (method, template, _, admits) in ENDPOINTS {
            let path = concrete(template);
            for token in [None, Some("tg_forged"), Some(unknown.as_str()), Some("Basic x")] {
                let answer = server.raw(method, &path, token, Some("application/json"), Some(b"{}".to_vec())).await;
                assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path} with {token:?}: {}", answer.body);
                assert_eq!(answer.body["type"], "/problems/unauthenticated");
                assert_eq!(answer.headers["content-type"], "application/problem+json");
            }
            for (who, token) in &tokens {
                if admits.contains(who) {
                    continue;
                }
                let answer =
                    server.raw(method, &path, Some(token), Some("text/plain"), Some(b"not json".to_vec())).await;
                assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {path}: {}", answer.body);
                assert_eq!(answer.body["type"], "/problems/forbidden");
            }
        }
        assert_eq!(snapshot(&server).await, before, "nothing stored on their account");
        assert!(server.engine.session("s2").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_endpoints_the_router_serves() {
    on_both(|server| async move {
        let (status, document) = server.send("GET", "/openapi.json", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(document["openapi"].as_str().unwrap().starts_with("3.1"), "{}", document["openapi"]);
        let mut listed = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                listed.insert((method.to_uppercase(), path.clone()));
                let secured = !operation["security"].as_array().is_none_or(Vec::is_empty);
                assert_eq!(secured, path.starts_with("/v1/"), "{method} {path}");
                assert!(operation["responses"]["500"].is_object());
            }
        }
        let mut served: BTreeSet<(String, String)> =
            ENDPOINTS.iter().map(|(method, path, ..)| ((*method).to_owned(), (*path).to_owned())).collect();
        served.extend(OPEN.iter().map(|path| ("GET".to_owned(), (*path).to_owned())));
        assert_eq!(listed, served);
        // Decisions are described exactly: the verdicts and their fields.
        let decision = &document["components"]["schemas"]["Decision"];
        let text = decision.to_string();
        for verdict in ["allow", "block", "escalate", "idempotency_key", "missing", "recommended_action"] {
            assert!(text.contains(verdict), "{verdict} in {text}");
        }
        for path in OPEN {
            let (status, _) = server.send("GET", path, None, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
        }
        let (status, problem) = server.send("GET", "/v2/nothing", None, None).await;
        assert_eq!((status, problem["type"].as_str()), (StatusCode::NOT_FOUND, Some("/problems/not-found")));
        let (status, problem) = server.send("DELETE", "/v1/sessions", Some(&server.agent), None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{problem}");
        assert_eq!(problem["type"], "/problems/method-not-allowed");
    })
    .await;
}
