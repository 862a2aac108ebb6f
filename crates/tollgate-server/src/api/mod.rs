//! The versioned JSON API, `/v1/...`: sessions, calls and results for
//! agents; the handoff queue and its actions for reviewers; workflows and the
//! audit log for admins. Each handler names its roles in its extractor's
//! type; everything it reaches is the caller's tenant's. Every route is
//! registered with its OpenAPI operation, so `/openapi.json` lists exactly
//! what the router serves.

mod admin;
mod cases;
mod handoffs;
mod sessions;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;

/// A handoff as the API shows it.
pub fn handoff_view(handoff: tollgate_engine::Handoff) -> tollgate_protocol::api::Handoff {
    handoffs::view(handoff)
}

/// The API's routes, each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(sessions::routes())
        .merge(cases::routes())
        .merge(handoffs::routes())
        .merge(admin::routes())
}
