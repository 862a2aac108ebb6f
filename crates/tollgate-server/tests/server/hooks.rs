//! `POST /v1/hooks/claude-code`: Claude Code's HTTP hooks answered by the
//! server. Every answer is 200 (Claude Code lets a call through on any other
//! status); refusals of every kind are denies the model reads.

use crate::common::{Server, on_both, on_both_with};
use axum::http::StatusCode;
use serde_json::{Value as Json, json};
use tollgate_server::Limits;

const PATH: &str = "/v1/hooks/claude-code";

fn pre(session: &str, id: &str, tool: &str, input: Json) -> Json {
    json!({"session_id": session, "transcript_path": "/tmp/t.jsonl", "cwd": "/tmp", "hook_event_name": "PreToolUse",
           "tool_name": tool, "tool_input": input, "tool_use_id": id})
}

fn post(session: &str, id: &str, tool: &str, input: Json, response: Json) -> Json {
    json!({"session_id": session, "transcript_path": "/tmp/t.jsonl", "cwd": "/tmp", "hook_event_name": "PostToolUse",
           "tool_name": tool, "tool_input": input, "tool_use_id": id, "tool_response": response})
}

/// Sends an event; asserts the 200 and returns the hook's JSON.
async fn hook(server: &Server, token: Option<&str>, event: &Json) -> Json {
    let (status, body) = server.send("POST", PATH, token, Some(event.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn decision(answer: &Json) -> (&str, &str) {
    let specific = &answer["hookSpecificOutput"];
    (
        specific["permissionDecision"].as_str().unwrap_or_default(),
        specific["permissionDecisionReason"].as_str().unwrap_or_default(),
    )
}

#[tokio::test]
async fn the_hook_route_gates_a_session_in_the_token_s_tenant() {
    on_both(|server| async move {
        let agent = Some(server.agent.as_str());
        let refund = json!({"order_id": "#W1", "amount": 30});
        // Before the customer is verified: denied, with the reason.
        let answer = hook(&server, agent, &pre("h1", "t1", "process_refund", refund.clone())).await;
        let (verdict, reason) = decision(&answer);
        assert_eq!(verdict, "deny", "{answer}");
        assert!(reason.contains("verify the customer"), "{reason}");

        // The careful path: verified, the order read, the refund allowed.
        let customer = json!({"email": "a@example.com", "zip": "94107"});
        assert_eq!(
            decision(&hook(&server, agent, &pre("h1", "t2", "get_customer", customer.clone())).await).0,
            "allow"
        );
        let verified = json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"});
        let recorded =
            hook(&server, agent, &post("h1", "t2", "get_customer", customer, json!(verified.to_string()))).await;
        assert!(recorded.get("hookSpecificOutput").is_none(), "{recorded}");
        let order = json!({"order_id": "#W1"});
        assert_eq!(decision(&hook(&server, agent, &pre("h1", "t3", "lookup_order", order.clone())).await).0, "allow");
        let found = json!({"order_id": "#W1", "customer_id": "c_42", "total": 100.0, "status": "delivered"});
        hook(&server, agent, &post("h1", "t3", "lookup_order", order, found)).await;
        assert_eq!(
            decision(&hook(&server, agent, &pre("h1", "t4", "process_refund", refund.clone())).await).0,
            "allow"
        );

        // The session is the agent's tenant's: the API shows it, another
        // tenant's hook cannot use it.
        let (status, _) = server.send("GET", "/v1/sessions/h1", agent, None).await;
        assert_eq!(status, StatusCode::OK);
        let journal_before = server.send("GET", "/v1/sessions/h1/journal", agent, None).await.1;
        let theirs = hook(&server, Some(&server.stranger), &pre("h1", "t9", "process_refund", refund)).await;
        assert_eq!(decision(&theirs).0, "deny", "{theirs}");
        assert_eq!(server.send("GET", "/v1/sessions/h1/journal", agent, None).await.1, journal_before);
    })
    .await;
}

#[tokio::test]
async fn every_failure_is_a_200_deny_never_a_status_claude_code_would_pass() {
    let limits = Limits { body_bytes_max: 2048, ..Limits::default() };
    on_both_with(None, limits, |server| async move {
        let event = pre("h2", "t1", "get_customer", json!({"email": "a@example.com", "zip": "94107"}));
        let cases: Vec<(&str, Option<String>, Vec<u8>)> = vec![
            ("no token", None, event.to_string().into_bytes()),
            ("forged token", Some(format!("tg_{}_{}", "0".repeat(16), "0".repeat(64))), event.to_string().into_bytes()),
            ("reviewer token", Some(server.reviewer.clone()), event.to_string().into_bytes()),
            ("malformed JSON", Some(server.agent.clone()), b"{not json".to_vec()),
            ("not an event", Some(server.agent.clone()), br#"{"hook_event_name": "Nonsense"}"#.to_vec()),
            ("over the limit", Some(server.agent.clone()), vec![b' '; 4096]),
        ];
        for (name, token, body) in cases {
            let answer = server.raw("POST", PATH, token.as_deref(), Some("application/json"), Some(body)).await;
            assert_eq!(answer.status, StatusCode::OK, "{name}: {}", answer.body);
            assert_eq!(decision(&answer.body).0, "deny", "{name}: {}", answer.body);
        }
        // No workflow by that name: refused too.
        let answer = server
            .raw(
                "POST",
                &format!("{PATH}?workflow=nope"),
                Some(&server.agent),
                Some("application/json"),
                Some(event.to_string().into_bytes()),
            )
            .await;
        assert_eq!((answer.status, decision(&answer.body).0), (StatusCode::OK, "deny"), "{}", answer.body);
        // Nothing was decided: no session was created.
        assert_eq!(server.send("GET", "/v1/sessions/h2", Some(&server.agent), None).await.0, StatusCode::NOT_FOUND);
    })
    .await;
}
