//! Bad input and limits: malformed, mistyped, oversized and mislabelled
//! bodies, unknown sessions, a session id taken, a token over its rate and
//! a revoked token: a clear 4xx problem each, nothing stored.

use crate::common::{Server, on_both, on_both_with};
use axum::http::StatusCode;
use serde_json::json;
use tollgate_server::Limits;

async fn journal_len(server: &Server, id: &str) -> usize {
    server.engine.journal(id).await.unwrap().len()
}

#[tokio::test]
async fn bad_bodies_are_400_413_or_415_problems_and_store_nothing() {
    let limits = Limits { body_bytes_max: 2_048, ..Limits::default() };
    on_both_with(None, limits, |server| async move {
        server.verified("s1").await;
        let before = journal_len(&server, "s1").await;
        let calls = "/v1/sessions/s1/calls";
        let json_type = Some("application/json");
        let cases: Vec<(Option<&str>, Vec<u8>, StatusCode, &str)> = vec![
            (json_type, b"{".to_vec(), StatusCode::BAD_REQUEST, "bad-request"),
            (json_type, b"".to_vec(), StatusCode::BAD_REQUEST, "bad-request"),
            (
                json_type,
                br#"{"id": "c", "tool": "x", "args": [], "extra": 1}"#.to_vec(),
                StatusCode::BAD_REQUEST,
                "bad-request",
            ),
            (json_type, br#"{"id": "c", "tool": "x", "args": []}"#.to_vec(), StatusCode::BAD_REQUEST, "bad-request"),
            (json_type, br#"{"id": 7, "tool": "x"}"#.to_vec(), StatusCode::BAD_REQUEST, "bad-request"),
            (
                json_type,
                format!(r#"{{"id": "c", "tool": "x", "summary": "{}"}}"#, "a".repeat(4_000)).into_bytes(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
            ),
            (
                Some("text/plain"),
                br#"{"id": "c", "tool": "get_customer"}"#.to_vec(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
            ),
            (
                None,
                br#"{"id": "c", "tool": "get_customer"}"#.to_vec(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
            ),
        ];
        for (content_type, body, status, kind) in cases {
            let shown = String::from_utf8_lossy(&body).chars().take(60).collect::<String>();
            let answer = server.raw("POST", calls, Some(&server.agent), content_type, Some(body)).await;
            assert_eq!(answer.status, status, "{shown}: {}", answer.body);
            assert_eq!(answer.body["type"], format!("/problems/{kind}"), "{shown}");
            assert!(answer.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        }
        let results = [json!({"call_id": "v"}), json!({"call_id": "v", "result": {}, "error": "x"})];
        for body in results {
            let (status, _) = server.send("POST", "/v1/sessions/s1/results", Some(&server.agent), Some(body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
        }
        for query in ["/v1/handoffs?limit=0", "/v1/handoffs?limit=x", "/v1/handoffs?status=lost", "/v1/handoffs?nope=1"]
        {
            let (status, problem) = server.send("GET", query, Some(&server.reviewer), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {problem}");
        }
        assert_eq!(journal_len(&server, "s1").await, before, "nothing stored");
    })
    .await;
}

#[tokio::test]
async fn unknown_sessions_are_404_and_a_taken_session_id_is_409() {
    on_both(|server| async move {
        let call = json!({"id": "c", "tool": "get_customer", "args": {}});
        let (status, problem) = server.send("POST", "/v1/sessions/nope/calls", Some(&server.agent), Some(call)).await;
        assert_eq!((status, problem["type"].as_str()), (StatusCode::NOT_FOUND, Some("/problems/not-found")));
        for path in ["/v1/sessions/nope", "/v1/sessions/nope/journal", "/v1/sessions/nope/handoffs", "/v1/handoffs/h_0"]
        {
            let (status, _) = server.send("GET", path, Some(&server.agent), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
        let create = json!({"id": "s1", "workflow": "support-refunds"});
        server.expect(StatusCode::CREATED, "POST", "/v1/sessions", &server.agent, Some(create.clone())).await;
        let (status, problem) = server.send("POST", "/v1/sessions", Some(&server.agent), Some(create)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
        let unknown = json!({"id": "s2", "workflow": "no-such-workflow"});
        let (status, _) = server.send("POST", "/v1/sessions", Some(&server.agent), Some(unknown)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(server.engine.session("s2").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn a_token_over_its_rate_gets_429_with_retry_after_and_others_are_not_slowed() {
    let limits = Limits { rate_per_second: 0.5, rate_burst: 3.0, ..Limits::default() };
    on_both_with(None, limits, |server| async move {
        for _ in 0..3 {
            let (status, _) = server.send("GET", "/v1/sessions/nope", Some(&server.agent), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
        let answer = server.raw("GET", "/v1/sessions/nope", Some(&server.agent), None, None).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS, "{}", answer.body);
        assert_eq!(answer.body["type"], "/problems/too-many-requests");
        let retry: u64 = answer.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry), "{retry}");
        let (status, _) = server.send("GET", "/v1/sessions/nope", Some(&server.reviewer), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "another token has its own bucket");
    })
    .await;
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once_without_a_token_cache() {
    let limits = Limits { token_cache_seconds: 0, ..Limits::default() };
    on_both_with(None, limits, |server| async move {
        let (status, _) = server.send("GET", "/v1/sessions/nope", Some(&server.agent), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let id = server.agent.strip_prefix("tg_").unwrap().split('_').next().unwrap();
        assert!(server.engine.revoke_token(id).await.unwrap());
        let (status, _) = server.send("GET", "/v1/sessions/nope", Some(&server.agent), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    })
    .await;
}

#[tokio::test]
async fn a_request_past_its_deadline_is_a_503_and_its_decision_is_made_once() {
    use tower::ServiceExt;
    // SQLite, whose write lock another connection can hold: the decision
    // cannot commit while it is held, so the deadline passes for certain.
    let server = Server::start_with(&tollgate_store::testing::sqlite_url().unwrap(), None, Limits::default()).await;
    server.verified("s1").await;
    let limits = Limits { request_seconds_max: 1, ..Limits::default() };
    let state = tollgate_server::AppState::new(std::sync::Arc::clone(&server.engine), server.state.workflows(), limits);
    let hurried = tollgate_server::router(state);
    let blocker = rusqlite::Connection::open(&server.url).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let call = json!({"id": "r1", "tool": "process_refund", "args": {"order_id": "#W1", "amount": 30.0}});
    let request = axum::http::Request::post("/v1/sessions/s1/calls")
        .header("authorization", format!("Bearer {}", server.agent))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(call.to_string()))
        .unwrap();
    let response = hurried.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["type"], "/problems/deadline", "{problem}");
    blocker.execute_batch("ROLLBACK").unwrap();

    // Sent again through a server with time to answer: one decision,
    // whichever of the two reached the session first.
    let again = server.refund("s1", "r1", 30.0).await;
    assert_eq!(again["decision"]["verdict"], "allow", "{again}");
    let decisions = server
        .engine
        .journal("s1")
        .await
        .unwrap()
        .iter()
        .filter(|entry| {
            entry.record.audit_event().starts_with("decision") && format!("{:?}", entry.record).contains("\"r1\"")
        })
        .count();
    assert_eq!(decisions, 1);
    server.state.begin_shutdown();
}
