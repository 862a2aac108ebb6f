//! The human half over HTTP: an escalation is claimed by one reviewer and
//! approved; the identical retried call runs once and the next escalates
//! again; a denial's reason reaches the agent; the agent's long-poll and
//! event stream return when the reviewer acts; a stale claim, an approval
//! out of bounds, an expired handoff and an expired approval are refused.

use crate::common::{MINUTE, Server, T0, on_both, on_both_with};
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use serde_json::{Value as Json, json};
use tollgate_server::Limits;
use tower::ServiceExt;

const DAY: i64 = 24 * 60 * MINUTE;

fn action(id: &str, what: &str) -> String {
    format!("/v1/handoffs/{id}/{what}")
}

#[tokio::test]
async fn an_approval_lets_the_identical_call_through_once_and_a_denial_reaches_the_agent() {
    on_both_with(Some(T0), Limits::default(), |server| async move {
        server.verified("s1").await;
        let escalated = server.refund("s1", "r1", 800.0).await;
        assert_eq!(escalated["decision"]["verdict"], "escalate", "{escalated}");
        let id = escalated["handoff"].as_str().unwrap().to_owned();
        let queue = server.expect(StatusCode::OK, "GET", "/v1/handoffs", &server.reviewer, None).await;
        assert_eq!(queue.as_array().unwrap().len(), 1);
        assert_eq!(queue[0]["id"], id.as_str());

        // One reviewer claims; the other's claim is stale.
        let claimed = server.expect(StatusCode::OK, "POST", &action(&id, "claim"), &server.reviewer, None).await;
        assert_eq!(claimed["claimed_by"], "Ann");
        let (status, problem) = server.send("POST", &action(&id, "claim"), Some(&server.reviewer2), None).await;
        assert_eq!((status, problem["type"].as_str()), (StatusCode::CONFLICT, Some("/problems/conflict")));
        let bob_approves = Some(json!({"expires_in_seconds": 600}));
        let (status, _) = server.send("POST", &action(&id, "approve"), Some(&server.reviewer2), bob_approves).await;
        assert_eq!(status, StatusCode::CONFLICT, "only the holder decides");
        for bad in [json!({"expires_in_seconds": 0}), json!({"expires_in_seconds": 7 * 24 * 3600 + 1}), json!({})] {
            let (status, problem) =
                server.send("POST", &action(&id, "approve"), Some(&server.reviewer), Some(bad)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
        }
        let approve = Some(json!({"expires_in_seconds": 600}));
        let approved = server.expect(StatusCode::OK, "POST", &action(&id, "approve"), &server.reviewer, approve).await;
        assert_eq!(
            (approved["status"].as_str(), approved["expires_ms"].as_i64()),
            (Some("approved"), Some(T0 + 10 * MINUTE))
        );

        // The identical call runs once; the next one escalates again.
        let allowed = server.refund("s1", "r2", 800.0).await;
        assert_eq!(allowed["decision"]["verdict"], "allow", "{allowed}");
        assert_eq!(allowed["decision"]["approved_by"], "r1");
        let again = server.refund("s1", "r3", 800.0).await;
        assert_eq!(again["decision"]["verdict"], "escalate", "{again}");

        // A denial's reason reaches the agent as the block.
        let second = again["handoff"].as_str().unwrap().to_owned();
        server.expect(StatusCode::OK, "POST", &action(&second, "claim"), &server.reviewer2, None).await;
        let deny = Some(json!({"reason": "the customer was refunded by phone"}));
        server.expect(StatusCode::OK, "POST", &action(&second, "deny"), &server.reviewer2, deny).await;
        let blocked = server.refund("s1", "r4", 800.0).await;
        assert_eq!(blocked["decision"]["verdict"], "block", "{blocked}");
        assert!(blocked.to_string().contains("the customer was refunded by phone"), "{blocked}");

        // Who acted is the token's name, in the journal.
        let journal = server.expect(StatusCode::OK, "GET", "/v1/sessions/s1/journal", &server.reviewer, None).await;
        let people: Vec<(String, String)> = journal
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"].as_str().unwrap().starts_with("human."))
            .map(|e| (e["kind"].as_str().unwrap().to_owned(), e["body"]["reviewer"].as_str().unwrap().to_owned()))
            .collect();
        let expected =
            [("human.claim", "Ann"), ("human.approve", "Ann"), ("human.claim", "Bob"), ("human.deny", "Bob")];
        assert_eq!(people, expected.map(|(k, r)| (k.to_owned(), r.to_owned())));
        let summary = server.expect(StatusCode::OK, "GET", "/v1/sessions/s1", &server.agent, None).await;
        assert_eq!(summary["handoffs"].as_array().unwrap().len(), 2, "{summary}");
        assert_eq!(summary["escalations"], 2);
        let listed = server.expect(StatusCode::OK, "GET", "/v1/sessions/s1/handoffs", &server.agent, None).await;
        assert_eq!(listed[1]["status"], "denied");
    })
    .await;
}

/// Reads server-sent events from `body` until `count` events came or it ends.
async fn events(body: axum::body::Body, count: usize) -> Vec<Json> {
    let mut stream = body.into_data_stream();
    let (mut text, mut out) = (String::new(), Vec::new());
    while out.len() < count {
        let Some(chunk) = stream.next().await else { break };
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|line| line.strip_prefix("data: ")) {
                out.push(serde_json::from_str(data).unwrap());
            }
        }
    }
    out
}

#[tokio::test]
async fn the_agents_long_poll_and_event_stream_return_when_the_reviewer_acts() {
    on_both_with(Some(T0), Limits::default(), |server| async move {
        server.verified("s1").await;
        let id = server.refund("s1", "r1", 800.0).await["handoff"].as_str().unwrap().to_owned();
        let request = Request::get(action(&id, "events"))
            .header("authorization", format!("Bearer {}", server.agent))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = server.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut body = response.into_body().into_data_stream();
        // The first event is the handoff as it is: the stream is open.
        let first = events(axum::body::Body::from_stream(futures_util::stream::iter(body.next().await)), 1).await;
        assert_eq!(first[0]["status"], "open");

        // Nothing happens: the long-poll answers the handoff as it is when its wait ends.
        let waited = server
            .expect(StatusCode::OK, "GET", &format!("{}?wait=1", action(&id, "outcome")), &server.agent, None)
            .await;
        assert_eq!(waited["status"], "open");

        let long = format!("{}?wait=20", action(&id, "outcome"));
        let poll = server.expect(StatusCode::OK, "GET", &long, &server.agent, None);
        let act = async {
            server.expect(StatusCode::OK, "POST", &action(&id, "claim"), &server.reviewer, None).await;
            let deny = Some(json!({"reason": "no"}));
            server.expect(StatusCode::OK, "POST", &action(&id, "deny"), &server.reviewer, deny).await;
        };
        let started = std::time::Instant::now();
        let (polled, ()) = tokio::join!(poll, act);
        assert_eq!(polled["status"], "denied", "{polled}");
        assert!(started.elapsed() < std::time::Duration::from_secs(15));

        // The stream shows the claim (unless it moved on first) and the
        // denial, then ends.
        let rest = events(axum::body::Body::from_stream(body), 10).await;
        let statuses: Vec<&str> = rest.iter().map(|e| e["status"].as_str().unwrap()).collect();
        assert_eq!(statuses.last(), Some(&"denied"), "{statuses:?}");
        assert!(statuses.len() <= 2, "{statuses:?}");
    })
    .await;
}

#[tokio::test]
async fn an_expired_handoff_is_refused_and_an_expired_approval_escalates_afresh() {
    on_both_with(Some(T0), Limits::default(), |server| async move {
        server.verified("s1").await;
        let stale = server.refund("s1", "r1", 800.0).await["handoff"].as_str().unwrap().to_owned();
        let later: Server = server.replica_at(T0 + DAY + MINUTE).await;
        let (status, problem) = later.send("POST", &action(&stale, "claim"), Some(&later.reviewer), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("expiry"), "{problem}");

        server.verified("s2").await;
        let id = server.refund("s2", "x1", 700.0).await["handoff"].as_str().unwrap().to_owned();
        server.expect(StatusCode::OK, "POST", &action(&id, "claim"), &server.reviewer, None).await;
        let approve = Some(json!({"expires_in_seconds": 60}));
        server.expect(StatusCode::OK, "POST", &action(&id, "approve"), &server.reviewer, approve).await;
        let after = server.replica_at(T0 + 2 * MINUTE).await;
        let retried = after.refund("s2", "x2", 700.0).await;
        assert_eq!(retried["decision"]["verdict"], "escalate", "{retried}");
        assert_ne!(retried["handoff"].as_str(), Some(id.as_str()));
        after.engine.close().await;
        later.engine.close().await;
    })
    .await;
}

#[tokio::test]
async fn the_metrics_show_the_queue_by_urgency_and_decisions_by_rule() {
    on_both(|server| async move {
        let scrape = || async {
            let (status, metrics) = server.send("GET", "/metrics", None, None).await;
            assert_eq!(status, StatusCode::OK);
            metrics.as_str().unwrap().to_owned()
        };
        let before = scrape().await;
        assert!(before.contains("tollgate_queue_readable 1"), "{before}");
        assert!(!before.contains("tollgate_handoffs_waiting{"), "an empty queue has no urgency: {before}");

        server.verified("s1").await;
        server.verified("s2").await;
        let escalated = server.refund("s1", "r1", 800.0).await;
        assert_eq!(escalated["decision"]["verdict"], "escalate", "{escalated}");
        server.refund("s2", "r1", 900.0).await;
        let waiting = scrape().await;
        assert!(waiting.contains("tollgate_handoffs_waiting{urgency=\"high\"} 2"), "{waiting}");
        assert!(waiting.contains("tollgate_handoffs_oldest_waiting_seconds{urgency=\"high\"} "), "{waiting}");
        assert!(
            waiting.contains("tollgate_decision_rules_total{verdict=\"escalate\",rule=\"refund-over-500\"}"),
            "{waiting}"
        );
        assert!(!waiting.contains("acme") && !waiting.contains("s1"), "{waiting}");

        // Decided handoffs leave the gauge.
        let id = escalated["handoff"].as_str().unwrap().to_owned();
        let reviewer = &server.reviewer;
        server.expect(StatusCode::OK, "POST", &format!("/v1/handoffs/{id}/claim"), reviewer, None).await;
        let deny = json!({"reason": "not this one"});
        server.expect(StatusCode::OK, "POST", &format!("/v1/handoffs/{id}/deny"), reviewer, Some(deny)).await;
        assert!(scrape().await.contains("tollgate_handoffs_waiting{urgency=\"high\"} 1"));

        // A store that cannot be read: the scrape still answers, and says so.
        server.engine.close().await;
        let closed = scrape().await;
        assert!(closed.contains("tollgate_queue_readable 0"), "{closed}");
        assert!(!closed.contains("tollgate_handoffs_waiting{"), "{closed}");
        server.state.begin_shutdown();
    })
    .await;
}
