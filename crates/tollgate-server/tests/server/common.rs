//! What the server's tests share: a server over a fresh store on each
//! backend, tokens of each role, and requests.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value as Json;
use std::future::Future;
use std::sync::Arc;
use tollgate_engine::{Engine, Role};
use tollgate_server::{AppState, Limits};
use tower::ServiceExt;

pub const REFERENCE: &str = include_str!("../../../../examples/support-refunds.toml");

/// A server under test: its router, and a token of each role for two tenants.
pub struct Server {
    pub router: axum::Router,
    pub engine: Arc<Engine>,
    pub agent: String,
    pub reviewer: String,
    pub admin: String,
    /// An agent of another tenant.
    pub stranger: String,
}

impl Server {
    pub async fn start(url: &str) -> Server {
        let engine = Arc::new(Engine::open(url).await.unwrap());
        let workflow = engine.register_workflow(REFERENCE, "support-refunds.toml").await.unwrap();
        let token = |tenant: &'static str, role: Role, name: &'static str| {
            let engine = Arc::clone(&engine);
            async move { engine.create_token(tenant, role, name).await.unwrap().1 }
        };
        let agent = token("acme", Role::Agent, "support bot").await;
        let reviewer = token("acme", Role::Reviewer, "Ann").await;
        let admin = token("acme", Role::Admin, "ops").await;
        let stranger = token("globex", Role::Agent, "their bot").await;
        let state = AppState::new(Arc::clone(&engine), vec![workflow], Limits::default());
        Server { router: tollgate_server::router(state), engine, agent, reviewer, admin, stranger }
    }

    /// Sends a request; returns the status and the body as JSON (or as a
    /// JSON string when it is not JSON).
    pub async fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<Json>) -> (StatusCode, Json) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request.header("content-type", "application/json").body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let json =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&bytes).into()));
        (status, json)
    }
}

/// Runs `test` on a server over a fresh SQLite file and one over a fresh
/// PostgreSQL schema.
pub async fn on_both<F, Fut>(test: F)
where
    F: Fn(Server) -> Fut,
    Fut: Future<Output = ()>,
{
    test(Server::start(&tollgate_store::testing::sqlite_url().unwrap()).await).await;
    if let Some(url) = tollgate_store::testing::postgres_schema_url().await {
        test(Server::start(&url).await).await;
    }
}
