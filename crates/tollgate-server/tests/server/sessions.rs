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

#[tokio::test]
async fn results_steps_investigations_and_the_session_summary_go_through_the_api() {
    crate::common::on_both(|server| async move {
        server.verified("s1").await;
        let summary = server.expect(StatusCode::OK, "GET", "/v1/sessions/s1", &server.agent, None).await;
        assert_eq!(
            (summary["allowed_calls"].as_i64(), summary["session"]["journal_entries"].as_i64()),
            (Some(2), Some(4))
        );
        assert!(summary["facts"].as_array().unwrap().iter().any(|f| f.as_str().unwrap().starts_with("order[#W1]")));
        // A refund allowed, its result and the next call in one step.
        let allowed = server.refund("s1", "r1", 30.0).await;
        assert_eq!(allowed["decision"]["verdict"], "allow", "{allowed}");
        let summary = server.expect(StatusCode::OK, "GET", "/v1/sessions/s1", &server.reviewer, None).await;
        assert_eq!(summary["pending_calls"], json!(["r1"]));
        assert_eq!(summary["in_doubt"][0]["call_id"], "r1");
        let step = json!({"result": {"call_id": "r1", "error": "processor timeout"},
                          "next": {"id": "r2", "tool": "process_refund", "args": {"order_id": "#W1", "amount": 30}}});
        let stepped = server.expect(StatusCode::OK, "POST", "/v1/sessions/s1/steps", &server.agent, Some(step)).await;
        assert_eq!(stepped["recorded"]["recorded"], true, "{stepped}");
        assert_eq!(stepped["decision"]["decision"]["verdict"], "allow");

        // Investigations: opened, concluded, joined.
        let open = json!({"concerns": [{"id": "a", "concern": "refund #W1"}, {"id": "b", "concern": "address"}]});
        let opened = server
            .expect(StatusCode::CREATED, "POST", "/v1/sessions/s1/investigations", &server.agent, Some(open))
            .await;
        assert_eq!(opened[0]["session"], "s1:a");
        for child in ["s1:a", "s1:b"] {
            let path = format!("/v1/sessions/{child}/conclusion");
            let (status, body) =
                server.send("POST", &path, Some(&server.agent), Some(json!({"outcome": "done"}))).await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        }
        let joined = server.expect(StatusCode::OK, "POST", "/v1/sessions/s1/join", &server.agent, None).await;
        assert_eq!(joined["findings"].as_array().unwrap().len(), 2, "{joined}");
        let summary = server.expect(StatusCode::OK, "GET", "/v1/sessions/s1", &server.agent, None).await;
        assert_eq!(summary["investigations"].as_array().unwrap().len(), 2);

        // Counted in the metrics, without a tenant or session in sight.
        let (status, metrics) = server.send("GET", "/metrics", None, None).await;
        assert_eq!(status, StatusCode::OK);
        let metrics = metrics.as_str().unwrap();
        assert!(metrics.contains("tollgate_decisions_total{verdict=\"allow\"}"), "{metrics}");
        assert!(metrics.contains("tollgate_http_request_duration_seconds_bucket"), "{metrics}");
        assert!(!metrics.contains("acme") && !metrics.contains("s1"), "{metrics}");
        let (status, _) = server.send("GET", "/readyz", None, None).await;
        assert_eq!(status, StatusCode::OK);
        server.state.begin_shutdown();
    })
    .await;
}

#[tokio::test]
async fn a_journal_is_read_a_page_at_a_time() {
    crate::common::on_both(|server| async move {
        server.verified("s1").await;
        let agent = &server.agent;
        let whole = server.expect(StatusCode::OK, "GET", "/v1/sessions/s1/journal", agent, None).await;
        let seqs = |page: &serde_json::Value| -> Vec<i64> {
            page.as_array().unwrap().iter().map(|entry| entry["seq"].as_i64().unwrap()).collect()
        };
        assert_eq!(seqs(&whole), [1, 2, 3, 4]);
        let first = server.expect(StatusCode::OK, "GET", "/v1/sessions/s1/journal?limit=3", agent, None).await;
        assert_eq!(seqs(&first), [1, 2, 3]);
        assert_eq!(first[0]["kind"], "decision.allow");
        let next = server.expect(StatusCode::OK, "GET", "/v1/sessions/s1/journal?after=3&limit=3", agent, None).await;
        assert_eq!(seqs(&next), [4]);
        let past = server.expect(StatusCode::OK, "GET", "/v1/sessions/s1/journal?after=4", agent, None).await;
        assert_eq!(seqs(&past), Vec::<i64>::new());
        for bad in ["limit=0", "limit=10001", "after=-1", "after=x", "page=2"] {
            let (status, problem) =
                server.send("GET", &format!("/v1/sessions/s1/journal?{bad}"), Some(agent), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
            assert_eq!(problem["type"], "/problems/bad-request", "{bad}: {problem}");
        }
        let (status, _) = server.send("GET", "/v1/sessions/s1/journal?limit=2", Some(&server.stranger), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    })
    .await;
}
