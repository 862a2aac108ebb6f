//! The versioned JSON API, `/v1/...`: sessions, calls and results for
//! agents; the handoff queue and its actions for reviewers; workflows and the
//! audit log for admins. Each handler states its roles; everything it reaches
//! is the caller's tenant's.

mod sessions;

use crate::state::AppState;
use axum::Router;

/// The API's routes.
pub fn routes() -> Router<AppState> {
    Router::new().merge(sessions::routes())
}
