//! The handoff desk: server-rendered pages where reviewers work the queue
//! (`/desk/...`). Plain forms and redirects, so every action works without
//! JavaScript; one hand-written script adds keys and live updates.
//!
//! A reviewer signs in by pasting a token: it is kept in an HttpOnly,
//! SameSite=Strict cookie and checked against the store on every request, so
//! a revoked token signs the desk out at once. Every form carries a CSRF
//! token (an HMAC of the cookie under the desk's key), a POST from another
//! origin is refused, and every page is sent with a strict
//! Content-Security-Policy. The desk decides nothing itself: each action is
//! the engine's, for the signed-in person's tenant, under their name.

mod actions;
mod assets;
mod events;
mod handoff;
mod journal;
mod pages;
mod security;
mod sign_in;
mod views;

use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;

pub use security::{Desk, ShortSecret};

/// The desk's routes, with a key drawn now for its CSRF tokens (one
/// process: forms from another process's desk are refused; use
/// [`Desk::with_key`] to share a key between replicas).
pub fn routes() -> Router<AppState> {
    Desk::new().routes()
}

impl Desk {
    /// The desk's routes, under this desk's key.
    pub fn routes(self) -> Router<AppState> {
        Router::new()
            .route("/desk", get(pages::queue))
            .route("/desk/", get(pages::queue))
            .route("/desk/queue/rows", get(pages::rows))
            .route("/desk/events", get(events::stream))
            .route("/desk/sign-in", get(sign_in::form).post(sign_in::submit))
            .route("/desk/sign-out", post(sign_in::sign_out))
            .route("/desk/handoffs/{id}", get(pages::handoff))
            .route("/desk/handoffs/{id}/{action}", post(actions::act))
            .route("/desk/sessions/{id}", get(pages::session))
            .route("/desk/audit", get(pages::audit))
            .route("/desk/assets/{name}", get(assets::serve))
            .route("/desk/{*rest}", get(pages::not_found))
            .layer(axum::middleware::map_response(security::headers))
            .layer(axum::Extension(Arc::new(self)))
    }
}
