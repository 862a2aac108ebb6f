//! Tollgate as a server: the versioned JSON API agents call (sessions,
//! calls, results, investigations, handoffs, audit), on one axum router
//! over one engine, with its OpenAPI document, metrics, limits, a graceful
//! shutdown, an expiry sweep and a webhook announcing handoffs.
//!
//! It owns HTTP: routing, authentication by API token, the tenant every
//! request is scoped to, problem documents, limits. It must not decide
//! anything (the engine does) nor know SQL (the store does); every body it
//! reads or writes is a `tollgate-protocol` type.

pub mod api;
pub mod auth;
pub mod desk;
pub mod error;
mod hooks;
pub mod json;
mod limits;
mod metrics;
mod openapi;
mod ops;
pub mod serve;
pub mod state;
pub mod webhook;

pub use error::Problem;
pub use serve::{Bound, Config, ExtMcpConfig, ServeError, WorkflowSource, serve};
pub use state::{Announcer, AppState, Limits};
pub use webhook::{Webhook, WebhookConfig, WebhookError};

use axum::Router;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The whole server as a router (tests drive it without a socket), and its
/// OpenAPI document as JSON text.
pub fn router_and_document(state: AppState) -> (Router, Arc<String>) {
    router_and_document_with(state, desk::Desk::new())
}

/// [`router_and_document`] with the desk given (its CSRF key shared by
/// every replica).
pub fn router_and_document_with(state: AppState, desk: desk::Desk) -> (Router, Arc<String>) {
    // Installs the process's recorder before anything is counted.
    let _ = metrics::handle();
    let (router, document) = OpenApiRouter::with_openapi(openapi::Base::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi))
        .merge(api::routes())
        .split_for_parts();
    let document = Arc::new(openapi::finish(document));
    let router = router
        .merge(desk.routes())
        .fallback(|| async { Problem::not_found("no such path") })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .layer(axum::Extension(ops::Document(Arc::clone(&document))))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::deadline))
        // After the layers: the hook route answers every failure itself,
        // with 200 (docs: hooks.rs).
        .merge(hooks::routes())
        .with_state(state);
    (router, document)
}

/// The whole server as a router (tests drive it without a socket).
pub fn router(state: AppState) -> Router {
    router_and_document(state).0
}
