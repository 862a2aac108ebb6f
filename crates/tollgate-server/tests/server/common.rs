//! What the server's tests share: a server over a fresh store on each
//! backend, tokens of each role for two tenants, and requests.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{Value as Json, json};
use std::future::Future;
use std::sync::Arc;
use tollgate_engine::{Clock, Engine, Role};
use tollgate_server::{AppState, Limits};
use tower::ServiceExt;

pub const REFERENCE: &str = include_str!("../../../../examples/support-refunds.toml");
/// 2026-01-01T00:00:00Z.
pub const T0: i64 = 1_767_225_600_000;
pub const MINUTE: i64 = 60_000;

/// A server under test: its router, and tokens of each role for two tenants.
pub struct Server {
    pub url: String,
    pub router: axum::Router,
    pub state: AppState,
    pub engine: Arc<Engine>,
    pub agent: String,
    pub reviewer: String,
    /// A second reviewer of the same tenant.
    pub reviewer2: String,
    pub admin: String,
    /// An agent, a reviewer and an admin of another tenant.
    pub stranger: String,
    pub stranger_reviewer: String,
    pub stranger_admin: String,
}

/// An answer: status, headers, body as JSON (or a JSON string when it is not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Json,
}

impl Server {
    /// A server over `url` on `clock` (the system's if `None`) within `limits`.
    pub async fn start_with(url: &str, clock: Option<i64>, limits: Limits) -> Server {
        let mut engine = Engine::open(url).await.unwrap();
        if let Some(now_ms) = clock {
            engine = engine.with_clock(Clock::Fixed(now_ms));
        }
        let engine = Arc::new(engine);
        let workflow = engine.register_workflow(REFERENCE, "support-refunds.toml").await.unwrap();
        let token = |tenant: &'static str, role: Role, name: &'static str| {
            let engine = Arc::clone(&engine);
            async move { engine.create_token(tenant, role, name).await.unwrap().1 }
        };
        let state = AppState::new(Arc::clone(&engine), vec![workflow], limits);
        Server {
            url: url.to_owned(),
            router: tollgate_server::router(state.clone()),
            state,
            agent: token("acme", Role::Agent, "support bot").await,
            reviewer: token("acme", Role::Reviewer, "Ann").await,
            reviewer2: token("acme", Role::Reviewer, "Bob").await,
            admin: token("acme", Role::Admin, "ops").await,
            stranger: token("globex", Role::Agent, "their bot").await,
            stranger_reviewer: token("globex", Role::Reviewer, "Eve").await,
            stranger_admin: token("globex", Role::Admin, "their ops").await,
            engine,
        }
    }

    /// Another server (a replica) on the same store, on `clock`, sharing
    /// this one's tokens.
    pub async fn replica_at(&self, clock: i64) -> Server {
        let engine = Arc::new(Engine::open(&self.url).await.unwrap().with_clock(Clock::Fixed(clock)));
        let workflow = engine.register_workflow(REFERENCE, "support-refunds.toml").await.unwrap();
        let state = AppState::new(Arc::clone(&engine), vec![workflow], Limits::default());
        Server {
            url: self.url.clone(),
            router: tollgate_server::router(state.clone()),
            state,
            engine,
            agent: self.agent.clone(),
            reviewer: self.reviewer.clone(),
            reviewer2: self.reviewer2.clone(),
            admin: self.admin.clone(),
            stranger: self.stranger.clone(),
            stranger_reviewer: self.stranger_reviewer.clone(),
            stranger_admin: self.stranger_admin.clone(),
        }
    }

    /// Sends a request; returns the status and the body as JSON.
    pub async fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<Json>) -> (StatusCode, Json) {
        let (content_type, bytes) = match body {
            Some(body) => (Some("application/json"), Some(body.to_string().into_bytes())),
            None => (None, None),
        };
        let answer = self.raw(method, path, token, content_type, bytes).await;
        (answer.status, answer.body)
    }

    /// Sends a request with any content type and body bytes.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let request = request.body(body.map_or_else(Body::empty, Body::from)).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&bytes).into()));
        Answer { status, headers, body }
    }

    /// Sends and expects `status`; returns the body.
    pub async fn expect(&self, status: StatusCode, method: &str, path: &str, token: &str, body: Option<Json>) -> Json {
        let (got, answer) = self.send(method, path, Some(token), body).await;
        assert_eq!(got, status, "{method} {path}: {answer}");
        answer
    }

    /// Session `id` of the agent's tenant with a verified customer and an
    /// order of $5,000 looked up.
    pub async fn verified(&self, id: &str) {
        let agent = &self.agent;
        let create = json!({"id": id, "workflow": "support-refunds"});
        self.expect(StatusCode::CREATED, "POST", "/v1/sessions", agent, Some(create)).await;
        let calls = format!("/v1/sessions/{id}/calls");
        let results = format!("/v1/sessions/{id}/results");
        let verify = json!({"id": "v", "tool": "get_customer", "args": {"email": "a@example.com", "zip": "94107"}});
        self.expect(StatusCode::OK, "POST", &calls, agent, Some(verify)).await;
        let customer = json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"});
        let recorded = json!({"call_id": "v", "result": customer});
        self.expect(StatusCode::OK, "POST", &results, agent, Some(recorded)).await;
        let order = json!({"id": "o", "tool": "lookup_order", "args": {"order_id": "#W1"}});
        self.expect(StatusCode::OK, "POST", &calls, agent, Some(order)).await;
        let order = json!({"order_id": "#W1", "customer_id": "c_42", "total": 5000.0, "status": "delivered"});
        self.expect(StatusCode::OK, "POST", &results, agent, Some(json!({"call_id": "o", "result": order}))).await;
    }

    /// The agent proposes a refund of `amount` as call `id` in `session`; the decision.
    pub async fn refund(&self, session: &str, id: &str, amount: f64) -> Json {
        let call = json!({"id": id, "tool": "process_refund", "args": {"order_id": "#W1", "amount": amount}});
        let path = format!("/v1/sessions/{session}/calls");
        self.expect(StatusCode::OK, "POST", &path, &self.agent, Some(call)).await
    }
}

/// Runs `test` on a server over a fresh SQLite file and one over a fresh
/// PostgreSQL schema.
pub async fn on_both<F, Fut>(test: F)
where
    F: Fn(Server) -> Fut,
    Fut: Future<Output = ()>,
{
    on_both_with(None, Limits::default(), test).await;
}

/// [`on_both`] on `clock` within `limits`.
pub async fn on_both_with<F, Fut>(clock: Option<i64>, limits: Limits, test: F)
where
    F: Fn(Server) -> Fut,
    Fut: Future<Output = ()>,
{
    test(Server::start_with(&tollgate_store::testing::sqlite_url().unwrap(), clock, limits.clone()).await).await;
    if let Some(url) = tollgate_store::testing::postgres_schema_url().await {
        test(Server::start_with(&url, clock, limits).await).await;
    }
}
