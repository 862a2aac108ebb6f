//! Investigations: a session splits a request into concerns, each a child
//! session; the child concludes; the parent joins them.

use crate::auth::{AgentOnly, As};
use crate::error::Problem;
use crate::json::{Body, Id};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tollgate_engine::Concern;
use tollgate_protocol::api;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(open)).routes(routes!(conclude)).routes(routes!(join))
}

/// Opens one investigation (a child session `{id}:{concern}`) per concern.
#[utoipa::path(post, path = "/v1/sessions/{id}/investigations", tag = "investigations",
    request_body = api::OpenInvestigations, params(("id" = String, Path, description = "The parent session.")),
    responses((status = 201, description = "The investigations opened.", body = Vec<api::Investigation>)))]
async fn open(
    State(state): State<AppState>,
    As(caller, ..): As<AgentOnly>,
    Id(parent): Id,
    Body(body): Body<api::OpenInvestigations>,
) -> Result<(StatusCode, Json<Vec<api::Investigation>>), Problem> {
    let concerns: Vec<Concern> =
        body.concerns.into_iter().map(|c| Concern { id: c.id, concern: c.concern, tools: c.tools }).collect();
    let opened = caller.engine(&state).open_investigations(&parent, &concerns).await?;
    let opened = opened
        .into_iter()
        .map(|o| api::Investigation { concern_id: o.concern_id, session: o.session, concern: o.concern })
        .collect();
    Ok((StatusCode::CREATED, Json(opened)))
}

/// Concludes an investigation with its outcome.
#[utoipa::path(post, path = "/v1/sessions/{id}/conclusion", tag = "investigations",
    request_body = api::Conclusion, params(("id" = String, Path, description = "The investigation's session.")),
    responses((status = 204, description = "Concluded.")))]
async fn conclude(
    State(state): State<AppState>,
    As(caller, ..): As<AgentOnly>,
    Id(session): Id,
    Body(body): Body<api::Conclusion>,
) -> Result<StatusCode, Problem> {
    caller.engine(&state).conclude(&session, &body.outcome).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Joins a parent's ended investigations: every finding, and the case's
/// handoff when one escalated.
#[utoipa::path(post, path = "/v1/sessions/{id}/join", tag = "investigations",
    params(("id" = String, Path, description = "The parent session.")),
    responses((status = 200, description = "The join.", body = tollgate_protocol::Join)))]
async fn join(
    State(state): State<AppState>,
    As(caller, ..): As<AgentOnly>,
    Id(parent): Id,
) -> Result<Json<tollgate_protocol::Join>, Problem> {
    let joined = caller.engine(&state).join(&parent).await?;
    Ok(Json(tollgate_protocol::Join::from(&joined)))
}
