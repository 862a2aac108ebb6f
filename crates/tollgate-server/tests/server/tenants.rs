//! Another tenant's tokens reach nothing of ours: sessions, journals,
//! handoffs, actions, the queue, the audit export and check all answer as if
//! our data did not exist, and our journal and handoff are unchanged after.

use crate::common::on_both;
use crate::roles::{ENDPOINTS, concrete, snapshot};
use axum::http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn another_tenant_reaches_none_of_our_sessions_handoffs_or_audit_records() {
    on_both(|server| async move {
        server.verified("s1").await;
        server.refund("s1", "r1", 800.0).await;
        let before = snapshot(&server).await;
        let bodies = |path: &str| match path.rsplit('/').next() {
            Some("calls") => json!({"id": "x", "tool": "process_refund", "args": {"order_id": "#W1", "amount": 1}}),
            Some("results") => json!({"call_id": "v", "result": {}}),
            Some("steps") => {
                json!({"result": {"call_id": "v", "result": {}}, "next": {"id": "y", "tool": "get_customer"}})
            }
            Some("investigations") => json!({"concerns": [{"id": "a", "concern": "a refund"}]}),
            Some("conclusion") => json!({"outcome": "done"}),
            Some("approve") => json!({"expires_in_seconds": 60}),
            Some("deny") => json!({"reason": "no"}),
            Some("resolve") => json!({"note": "done"}),
            _ => json!({}),
        };
        let theirs = [&server.stranger, &server.stranger_reviewer];
        for (method, template, has_body, _) in ENDPOINTS {
            if !template.contains("{id}") {
                continue;
            }
            let path = concrete(template);
            for token in theirs {
                let body = has_body.then(|| bodies(&path));
                let (status, problem) = server.send(method, &path, Some(token), body).await;
                if status == StatusCode::FORBIDDEN {
                    continue; // not their role: refused before the tenant is looked at
                }
                assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {problem}");
            }
        }
        let queue = server
            .expect(StatusCode::OK, "GET", "/v1/handoffs?status=open,claimed,approved", &server.stranger_reviewer, None)
            .await;
        assert_eq!(queue, json!([]));
        let records =
            server.expect(StatusCode::OK, "GET", "/v1/audit/records?limit=1000", &server.stranger_admin, None).await;
        assert_eq!(records["records"], json!([]));
        let ours = server.expect(StatusCode::OK, "GET", "/v1/audit/records?limit=1000", &server.admin, None).await;
        assert!(ours["records"].as_array().unwrap().len() >= 5);
        let verified = server.expect(StatusCode::OK, "GET", "/v1/audit/verify", &server.stranger_admin, None).await;
        assert_eq!(verified["intact"], true);
        // Creating a session under an id another tenant holds is refused, not a takeover.
        let create = json!({"id": "s1", "workflow": "support-refunds"});
        let (status, _) = server.send("POST", "/v1/sessions", Some(&server.stranger), Some(create)).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(snapshot(&server).await, before, "journal and handoff unchanged");
    })
    .await;
}
