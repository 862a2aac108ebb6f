//! Sessions and calls through the API.

use crate::common::on_both;
use axum::http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn an_agent_starts_a_session_and_its_calls_are_decided() {
    on_both(|server| async move {
        let (status, session) = server
            .send("POST", "/v1/sessions", Some(&server.agent), Some(json!({"id": "s1", "workflow": "support-refunds"})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        assert_eq!(session["workflow"], "support-refunds");
        let call = json!({"id": "c1", "tool": "process_refund", "args": {"order_id": "#W1", "amount": 30}});
        let (status, decided) = server.send("POST", "/v1/sessions/s1/calls", Some(&server.agent), Some(call)).await;
        assert_eq!(status, StatusCode::OK, "{decided}");
        assert_eq!(decided["decision"]["verdict"], "block");
        assert_eq!(decided["decision"]["stage"], "gates");
    })
    .await;
}

#[tokio::test]
async fn a_missing_token_a_wrong_role_or_another_tenant_is_refused_and_stores_nothing() {
    on_both(|server| async move {
        let create = json!({"id": "s1", "workflow": "support-refunds"});
        let (status, problem) = server.send("POST", "/v1/sessions", None, Some(create.clone())).await;
        assert_eq!((status, problem["type"].as_str()), (StatusCode::UNAUTHORIZED, Some("/problems/unauthenticated")));
        let (status, problem) = server.send("POST", "/v1/sessions", Some("tg_forged"), Some(create.clone())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
        let (status, problem) = server.send("POST", "/v1/sessions", Some(&server.reviewer), Some(create.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
        let (status, problem) = server.send("POST", "/v1/sessions", Some(&server.admin), Some(create.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
        assert!(server.engine.session("s1").await.unwrap().is_none());
        server.send("POST", "/v1/sessions", Some(&server.agent), Some(create)).await;
        let call = json!({"id": "c1", "tool": "get_customer", "args": {"email": "a@b.c", "zip": "1"}});
        let (status, problem) = server.send("POST", "/v1/sessions/s1/calls", Some(&server.stranger), Some(call)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
        let (status, _) = server.send("GET", "/v1/sessions/s1", Some(&server.stranger), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(server.engine.journal("s1").await.unwrap().len(), 0);
    })
    .await;
}
