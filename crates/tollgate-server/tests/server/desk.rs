//! The handoff desk through its router, on both stores: signing in and out,
//! the queue, a handoff's page and its actions, the forms' protections, roles
//! and tenants, escaping, the event stream and the audit page.

use crate::common::{REFERENCE, Server};
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::json;
use std::future::Future;
use tollgate_core::{ToolCall, ToolOutcome, Verdict};
use tollgate_engine::{HumanAction, Role, handoff_id};
use tower::ServiceExt;

/// Runs `test` on a server over SQLite and one over PostgreSQL, with the
/// store's URL (to reach the store behind the server's back).
async fn on_both<F, Fut>(test: F)
where
    F: Fn(Server, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let url = tollgate_store::testing::sqlite_url().unwrap();
    test(Server::start_with(&url, None, tollgate_server::Limits::default()).await, url).await;
    if let Some(url) = tollgate_store::testing::postgres_schema_url().await {
        test(Server::start_with(&url, None, tollgate_server::Limits::default()).await, url).await;
    }
}

/// A response, read whole.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn cookie(&self) -> &str {
        self.headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The first form's CSRF token on the page.
    fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

async fn send(server: &Server, request: Request<Body>) -> Page {
    let response = server.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// A person at the desk: their cookie.
struct Person<'s> {
    server: &'s Server,
    cookie: String,
}

impl Person<'_> {
    async fn get(&self, path: &str) -> Page {
        let request = Request::get(path).header(header::COOKIE, format!("tollgate_desk={}", self.cookie));
        send(self.server, request.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Page {
        self.post_from(path, pairs, "http://desk.test").await
    }

    async fn post_from(&self, path: &str, pairs: &[(&str, &str)], origin: &str) -> Page {
        let request = Request::post(path)
            .header(header::HOST, "desk.test")
            .header(header::ORIGIN, origin)
            .header(header::COOKIE, format!("tollgate_desk={}", self.cookie))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        send(self.server, request.body(Body::from(form(pairs))).unwrap()).await
    }

    /// Sends a handoff action with the CSRF token of the handoff's page.
    async fn act(&self, id: &str, action: &str, pairs: &[(&str, &str)]) -> Page {
        let csrf = self.get(&format!("/desk/handoffs/{id}")).await.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(pairs);
        self.post(&format!("/desk/handoffs/{id}/{action}"), &all).await
    }
}

async fn try_sign_in(server: &Server, token: &str, next: &str) -> Page {
    let request = Request::post("/desk/sign-in")
        .header(header::HOST, "desk.test")
        .header(header::ORIGIN, "http://desk.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    send(server, request.body(Body::from(form(&[("token", token), ("next", next)]))).unwrap()).await
}

async fn sign_in<'s>(server: &'s Server, token: &str) -> Person<'s> {
    let page = try_sign_in(server, token, "").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let cookie = page.cookie().strip_prefix("tollgate_desk=").unwrap().split(';').next().unwrap().to_owned();
    Person { server, cookie }
}

/// A reviewer token of `tenant` named `name`.
async fn reviewer(server: &Server, tenant: &str, name: &str) -> String {
    server.engine.create_token(tenant, Role::Reviewer, name).await.unwrap().1
}

/// Session `session` of acme with a verified customer and a $5,000 order.
async fn verified(server: &Server, session: &str) {
    let workflow = server.engine.register_workflow(REFERENCE, "support-refunds.toml").await.unwrap();
    let acme = server.engine.for_tenant("acme");
    acme.create_session(&workflow, session, None).await.unwrap();
    let customer = ToolCall::new("v", "get_customer", json!({"email": "a@example.com", "zip": "94107"}));
    acme.decide(session, &customer).await.unwrap();
    let found = json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"});
    acme.record_result(session, "v", &found, ToolOutcome::Succeeded).await.unwrap();
    let order = ToolCall::new("o", "lookup_order", json!({"order_id": "#W1"}));
    acme.decide(session, &order).await.unwrap();
    let found = json!({"order_id": "#W1", "customer_id": "c_42", "total": 5000.0, "status": "delivered"});
    acme.record_result(session, "o", &found, ToolOutcome::Succeeded).await.unwrap();
}

fn refund(id: &str, amount: f64) -> ToolCall {
    ToolCall::new(id, "process_refund", json!({"order_id": "#W1", "amount": amount}))
}

/// A refund of $800 escalated in a new session: its handoff's id.
async fn escalated(server: &Server, session: &str) -> String {
    verified(server, session).await;
    let decided = server.engine.for_tenant("acme").decide(session, &refund("r1", 800.0)).await.unwrap();
    assert_eq!(decided.decision.verdict(), Verdict::Escalate);
    handoff_id(session, "r1")
}

/// A case the agent hands over itself, at `urgency`.
async fn handed_over(server: &Server, session: &str, urgency: &str, summary: &str) -> String {
    verified(server, session).await;
    let args = json!({
        "customer_id": "c_42", "conversation_summary": summary, "root_cause": "the customer is upset",
        "recommended_action": format!("call the customer back ({urgency})"), "urgency": urgency,
    });
    let decided =
        server.engine.for_tenant("acme").decide(session, &ToolCall::new("h", "escalate_to_human", args)).await.unwrap();
    assert_ne!(decided.decision.verdict(), Verdict::Block, "{}", decided.json());
    handoff_id(session, "h")
}

async fn status_of(server: &Server, id: &str) -> (String, Option<String>) {
    let handoff = server.engine.handoff(id).await.unwrap().unwrap();
    (handoff.status, handoff.claimed_by)
}

#[tokio::test]
async fn bad_agent_and_revoked_tokens_are_refused_and_a_revoked_sign_in_ends_on_the_next_request() {
    on_both(|server, _| async move {
        let page = try_sign_in(&server, "tg_not_a_token", "").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(page.body.contains("That token is not one this desk accepts"), "{}", page.body);
        let page = try_sign_in(&server, &server.agent, "").await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(page.body.contains("That is an agent&#39;s token") || page.body.contains("agent"), "{}", page.body);
        assert!(page.cookie().is_empty());

        // Signed in: a strict cookie, and only a desk page to go to next.
        let page = try_sign_in(&server, &server.reviewer, "//evil.example/desk").await;
        assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/desk"));
        for part in ["HttpOnly", "SameSite=Strict", "Path=/desk"] {
            assert!(page.cookie().contains(part), "{}", page.cookie());
        }
        assert!(!page.cookie().contains("Secure"));
        let page = try_sign_in(&server, &server.reviewer, "/desk/audit").await;
        assert_eq!(page.location(), "/desk/audit");
        let request = Request::post("/desk/sign-in")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-forwarded-proto", "https");
        let page = send(&server, request.body(Body::from(form(&[("token", &server.reviewer)]))).unwrap()).await;
        assert!(page.cookie().contains("; Secure"), "{}", page.cookie());

        let nobody = send(&server, Request::get("/desk").body(Body::empty()).unwrap()).await;
        assert_eq!(nobody.status, StatusCode::SEE_OTHER);
        assert_eq!(nobody.location(), "/desk/sign-in?why=signed-out&next=/desk");
        let form = Request::post("/desk/handoffs/h_1/claim").body(Body::empty()).unwrap();
        let nobody = send(&server, form).await;
        assert_eq!(nobody.location(), "/desk/sign-in?why=signed-out&next=/desk", "a form is not a page to return to");

        let ann = sign_in(&server, &server.reviewer).await;
        assert_eq!(ann.get("/desk").await.status, StatusCode::OK);
        let tokens = server.engine.tokens(Some("acme")).await.unwrap();
        let id = &tokens.iter().find(|t| t.name == "Ann").unwrap().id;
        assert!(server.engine.revoke_token(id).await.unwrap());
        let page = ann.get("/desk").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert!(page.location().contains("why=revoked"), "{}", page.location());
        assert!(page.cookie().contains("Max-Age=0"), "{}", page.cookie());
        assert_eq!(try_sign_in(&server, &server.reviewer, "").await.status, StatusCode::UNAUTHORIZED);
    })
    .await;
}

#[tokio::test]
async fn the_queue_puts_critical_before_high_filters_and_says_who_claimed() {
    on_both(|server, _| async move {
        let ann = sign_in(&server, &server.reviewer).await;
        let empty = ann.get("/desk").await;
        assert!(empty.body.contains("No handoffs waiting. New ones appear here live."), "{}", empty.body);

        let high = escalated(&server, "s-high").await;
        let critical = handed_over(&server, "s-critical", "critical", "the customer threatens to sue").await;
        let queue = ann.get("/desk").await.body;
        let (at_high, at_critical) = (queue.find(&high).unwrap(), queue.find(&critical).unwrap());
        assert!(at_critical < at_high, "critical first");

        server.engine.act(&high, HumanAction::Claim { reviewer: "Bob".into() }).await.unwrap();
        let queue = ann.get("/desk").await.body;
        assert!(queue.contains("by Bob"), "{queue}");
        let claimed = ann.get("/desk?status=claimed").await.body;
        assert!(claimed.contains(&high) && !claimed.contains(&critical));
        let urgent = ann.get("/desk?urgency=critical").await.body;
        assert!(urgent.contains(&critical) && !urgent.contains(&high));
        let approved = ann.get("/desk?status=approved").await.body;
        assert!(approved.contains("No handoffs approved."), "{approved}");
        let rows = ann.get("/desk/queue/rows?status=all").await;
        assert!(rows.body.contains(&high) && rows.body.contains(&critical) && !rows.body.contains("<html"));
        assert_eq!(ann.get("/desk?status=bogus").await.status, StatusCode::BAD_REQUEST);
    })
    .await;
}

#[tokio::test]
async fn a_handoff_page_shows_the_five_fields_first_then_the_rest_in_order() {
    on_both(|server, _| async move {
        let id = escalated(&server, "s1").await;
        let ann = sign_in(&server, &server.reviewer).await;
        let page = ann.get(&format!("/desk/handoffs/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        let order = [
            "<dt>Customer</dt>",
            "<dt>Urgency</dt>",
            "<dt>Recommended action</dt>",
            "<dt>Root cause</dt>",
            "<dt>Conversation summary</dt>",
            "<h2>Facts</h2>",
            "<h2>Timeline</h2>",
            "<h2>What the agent said</h2>",
            "<h2>The call</h2>",
            "<h2>Rules that stopped it</h2>",
            "<h2>The case</h2>",
            "<h2>Who did what</h2>",
        ];
        let places: Vec<usize> = order.iter().map(|s| page.body.find(s).unwrap_or_else(|| panic!("{s}"))).collect();
        assert!(places.windows(2).all(|w| w[0] < w[1]), "{places:?}");
        assert!(page.body.contains("approve or deny the refund of $800 on order #W1"));
        assert!(page.body.contains("refund-over-500"));
        let session = ann.get("/desk/sessions/s1").await;
        assert!(session.body.contains("process_refund (r1) handed to a person"), "{}", session.body);
        assert!(session.body.contains(&format!("/desk/handoffs/{id}")));
    })
    .await;
}

#[tokio::test]
async fn claimed_then_approved_the_identical_call_runs_once_and_the_next_escalates() {
    on_both(|server, _| async move {
        let id = escalated(&server, "s1").await;
        let ann = sign_in(&server, &server.reviewer).await;
        let claimed = ann.act(&id, "claim", &[]).await;
        assert_eq!(
            (claimed.status, claimed.location()),
            (StatusCode::SEE_OTHER, format!("/desk/handoffs/{id}").as_str())
        );
        let approved = ann.act(&id, "approve", &[("minutes", "60")]).await;
        assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
        assert_eq!(status_of(&server, &id).await, ("approved".into(), Some("Ann".into())));
        let notice = ann.get(approved.location()).await.body;
        assert!(notice.contains("Ann approved"), "{notice}");

        let acme = server.engine.for_tenant("acme");
        let allowed = acme.decide("s1", &refund("r2", 800.0)).await.unwrap();
        assert_eq!(allowed.json()["approved_by"], "r1", "{}", allowed.json());
        let again = acme.decide("s1", &refund("r3", 800.0)).await.unwrap();
        assert_eq!(again.decision.verdict(), Verdict::Escalate);
        // Too long an approval is refused in words.
        let other = escalated(&server, "s2").await;
        ann.act(&other, "claim", &[]).await;
        let long = ann.act(&other, "approve", &[("minutes", "99999")]).await;
        assert_eq!(long.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(long.body.contains("15 minutes to 3 days"));
    })
    .await;
}

#[tokio::test]
async fn a_denial_needs_a_reason_and_the_agent_receives_it() {
    on_both(|server, _| async move {
        let id = escalated(&server, "s1").await;
        let ann = sign_in(&server, &server.reviewer).await;
        ann.act(&id, "claim", &[]).await;
        let empty = ann.act(&id, "deny", &[("reason", "   ")]).await;
        assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(empty.body.contains("Write why it is denied"));
        assert_eq!(status_of(&server, &id).await.0, "claimed");
        let reason = "Order #W1 was refunded by cheque last week";
        let denied = ann.act(&id, "deny", &[("reason", reason)]).await;
        assert_eq!(denied.status, StatusCode::SEE_OTHER, "{}", denied.body);
        let blocked = server.engine.for_tenant("acme").decide("s1", &refund("r2", 800.0)).await.unwrap();
        assert_eq!(blocked.decision.verdict(), Verdict::Block);
        assert!(blocked.json().to_string().contains(reason), "{}", blocked.json());
    })
    .await;
}

#[tokio::test]
async fn forms_without_this_sign_ins_csrf_token_or_from_another_site_change_nothing() {
    on_both(|server, _| async move {
        let id = escalated(&server, "s1").await;
        let ann = sign_in(&server, &server.reviewer).await;
        let bob = sign_in(&server, &reviewer(&server, "acme", "Bob").await).await;
        let bobs = bob.get(&format!("/desk/handoffs/{id}")).await.csrf();
        let anns = ann.get(&format!("/desk/handoffs/{id}")).await.csrf();
        let claim = format!("/desk/handoffs/{id}/claim");
        let before = server.engine.journal("s1").await.unwrap().len();
        for sent in [vec![], vec![("csrf", "")], vec![("csrf", "00ff")], vec![("csrf", bobs.as_str())]] {
            let page = ann.post(&claim, &sent).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{sent:?}");
        }
        let page = ann.post_from(&claim, &[("csrf", &anns)], "https://evil.example").await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(page.body.contains("another site"));
        let page = ann.post_from("/desk/sign-out", &[("csrf", &anns)], "https://evil.example").await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert_eq!(status_of(&server, &id).await, ("open".into(), None));
        assert_eq!(server.engine.journal("s1").await.unwrap().len(), before);
        // The right token from the right place works.
        assert_eq!(ann.post(&claim, &[("csrf", &anns)]).await.status, StatusCode::SEE_OTHER);
        let out = ann.post("/desk/sign-out", &[("csrf", &anns)]).await;
        assert!(out.cookie().contains("Max-Age=0"));
    })
    .await;
}

#[tokio::test]
async fn a_stale_claim_is_refused_in_words_and_keeps_what_was_typed() {
    on_both(|server, _| async move {
        let id = escalated(&server, "s1").await;
        let ann = sign_in(&server, &server.reviewer).await;
        let csrf = ann.get(&format!("/desk/handoffs/{id}")).await.csrf();
        server.engine.act(&id, HumanAction::Claim { reviewer: "Bob".into() }).await.unwrap();
        let typed = "Refund looks like fraud: three in a week";
        let page = ann.post(&format!("/desk/handoffs/{id}/deny"), &[("csrf", &csrf), ("reason", typed)]).await;
        assert_eq!(page.status, StatusCode::CONFLICT);
        assert!(page.body.contains("Bob claimed this handoff before you; only they can decide or release it now."));
        assert!(page.body.contains(typed), "{}", page.body);
        assert_eq!(status_of(&server, &id).await, ("claimed".into(), Some("Bob".into())));
    })
    .await;
}

#[tokio::test]
async fn an_admin_looks_but_cannot_act() {
    on_both(|server, _| async move {
        let id = escalated(&server, "s1").await;
        let ops = sign_in(&server, &server.admin).await;
        let page = ops.get(&format!("/desk/handoffs/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Admins may look at handoffs but not act on them"));
        for action in ["claim", "approve", "deny", "resolve", "release"] {
            let page = ops.act(&id, action, &[("reason", "no"), ("note", "no"), ("minutes", "60")]).await;
            assert_eq!(page.status, StatusCode::FORBIDDEN, "{action}");
            assert!(page.body.contains("Admins may look"));
        }
        assert_eq!(status_of(&server, &id).await, ("open".into(), None));
    })
    .await;
}

#[tokio::test]
async fn another_tenants_reviewer_sees_nothing_and_writes_nothing() {
    on_both(|server, _| async move {
        let id = escalated(&server, "s1").await;
        let theirs = sign_in(&server, &reviewer(&server, "globex", "Gus").await).await;
        let queue = theirs.get("/desk?status=all").await;
        assert!(queue.body.contains("No handoffs yet. New ones appear here live."), "{}", queue.body);
        assert!(!queue.body.contains(&id));
        assert_eq!(theirs.get(&format!("/desk/handoffs/{id}")).await.status, StatusCode::NOT_FOUND);
        assert_eq!(theirs.get("/desk/sessions/s1").await.status, StatusCode::NOT_FOUND);
        let before = server.engine.journal("s1").await.unwrap().len();
        let csrf = theirs.get("/desk").await.csrf();
        let page = theirs.post(&format!("/desk/handoffs/{id}/claim"), &[("csrf", &csrf)]).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        assert_eq!(server.engine.journal("s1").await.unwrap().len(), before);
        assert_eq!(status_of(&server, &id).await, ("open".into(), None));
    })
    .await;
}

#[tokio::test]
async fn markup_in_a_summary_or_arguments_comes_out_escaped_everywhere() {
    on_both(|server, _| async move {
        verified(&server, "s1").await;
        let payload = "<script>alert(1)</script><img src=x onerror=alert(2)>";
        let args = json!({
            "customer_id": "c_42", "conversation_summary": payload, "root_cause": payload,
            "recommended_action": payload, "urgency": "high",
        });
        let call = ToolCall::new("h", "escalate_to_human", args).with_summary(payload);
        let decided = server.engine.for_tenant("acme").decide("s1", &call).await.unwrap();
        assert_ne!(decided.decision.verdict(), Verdict::Block, "{}", decided.json());
        let id = handoff_id("s1", "h");
        let ann = sign_in(&server, &server.reviewer).await;
        for path in
            [format!("/desk/handoffs/{id}"), "/desk".into(), "/desk/queue/rows".into(), "/desk/sessions/s1".into()]
        {
            let page = ann.get(&path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}");
            assert!(!page.body.contains("<script>alert") && !page.body.contains("<img src=x"), "{path}: {}", page.body);
            let csp = page.headers.get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
            assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"), "{csp}");
            assert_eq!(page.headers.get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
            assert_eq!(page.headers.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff");
            assert_eq!(page.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        }
        let page = ann.get(&format!("/desk/handoffs/{id}")).await.body;
        assert!(page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{page}");
    })
    .await;
}

#[tokio::test]
async fn the_event_stream_says_changed_then_signed_out_when_the_token_is_revoked_and_ends() {
    on_both(|server, _| async move {
        escalated(&server, "s1").await;
        let token = reviewer(&server, "acme", "Eve").await;
        let eve = sign_in(&server, &token).await;
        let request = Request::get("/desk/events?status=waiting&since=stale")
            .header(header::COOKIE, format!("tollgate_desk={}", eve.cookie))
            .body(Body::empty())
            .unwrap();
        let response = server.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let mut next = async || {
            let frame = body.frame().await?.unwrap();
            Some(String::from_utf8_lossy(&frame.into_data().unwrap()).into_owned())
        };
        let first = next().await.unwrap();
        assert!(first.starts_with("event: changed\ndata: "), "{first}");
        assert!(!first.contains("800") && !first.contains("c_42"), "no case data: {first}");
        let tokens = server.engine.tokens(Some("acme")).await.unwrap();
        server.engine.revoke_token(&tokens.iter().find(|t| t.name == "Eve").unwrap().id).await.unwrap();
        let last = next().await.unwrap();
        assert!(last.starts_with("event: signed-out"), "{last}");
        assert_eq!(next().await, None, "the stream ends");
    })
    .await;
}

#[tokio::test]
async fn the_audit_page_says_broken_after_a_tampered_record_and_where_to_admins_only() {
    on_both(|server, url| async move {
        escalated(&server, "s1").await;
        let ann = sign_in(&server, &server.reviewer).await;
        let ops = sign_in(&server, &server.admin).await;
        let store = tollgate_store::Store::open(&url).await.unwrap();
        let sql = "UPDATE tollgate_audit SET body = replace(body, 'get_customer', 'get_kustomer') WHERE seq = 1";
        assert_eq!(tollgate_store::testing::execute(&store, sql).await.unwrap(), 1);
        let page = ann.get("/desk/audit").await;
        assert!(page.body.contains("Broken."), "{}", page.body);
        assert!(!page.body.contains("Where it breaks"));
        let page = ops.get("/desk/audit").await;
        assert!(page.body.contains("Broken.") && page.body.contains("Where it breaks"), "{}", page.body);
        assert!(page.body.contains("Record 1"), "{}", page.body);
    })
    .await;
}

#[tokio::test]
async fn assets_are_served_at_hashed_addresses_only() {
    on_both(|server, _| async move {
        let page = send(&server, Request::get("/desk/sign-in").body(Body::empty()).unwrap()).await;
        let at = page.body.find("/desk/assets/desk.").unwrap();
        let address = page.body[at..].split('"').next().unwrap().to_owned();
        let asset = send(&server, Request::get(address.as_str()).body(Body::empty()).unwrap()).await;
        assert_eq!(asset.status, StatusCode::OK, "{address}");
        assert!(asset.headers.get(header::CACHE_CONTROL).unwrap().to_str().unwrap().contains("immutable"));
        let plain = send(&server, Request::get("/desk/assets/desk.js").body(Body::empty()).unwrap()).await;
        assert_eq!(plain.status, StatusCode::NOT_FOUND);
    })
    .await;
}
