//! Tollgate as a server: the versioned JSON API agents call (sessions,
//! calls, results, investigations, handoffs, audit) and the handoff desk
//! people work in, both on one axum router over one engine.
//!
//! It owns HTTP: routing, authentication by API token, the tenant every
//! request is scoped to, problem documents, limits. It must not decide
//! anything (the engine does) nor know SQL (the store does); every body it
//! reads or writes is a `tollgate-protocol` type.

pub mod api;
pub mod auth;
pub mod desk;
pub mod error;
pub mod json;
pub mod state;

pub use error::Problem;
pub use state::{AppState, Limits};

use axum::Router;
use axum::routing::get;

/// The whole server as a router (tests drive it without a socket).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(api::routes())
        .merge(desk::routes())
        .fallback(|| async { Problem::not_found("no such path") })
        .with_state(state)
}
