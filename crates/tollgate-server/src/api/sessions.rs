//! Sessions, calls and results: the agent's side.

use crate::auth::Caller;
use crate::error::Problem;
use crate::json::Body;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use tollgate_core::ToolCall;
use tollgate_engine::{Role, SessionInfo, handoff_id};
use tollgate_protocol::api;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions", post(create))
        .route("/v1/sessions/{id}", get(read))
        .route("/v1/sessions/{id}/calls", post(decide))
}

fn session_view(info: SessionInfo) -> api::Session {
    api::Session {
        id: info.id,
        workflow: info.workflow_name,
        workflow_version: info.workflow_version,
        workflow_hash: info.workflow_hash,
        parent: info.parent_id,
        created_ms: info.created_ms,
        journal_entries: info.last_seq,
    }
}

/// `POST /v1/sessions` (agent): starts a session under a workflow the
/// server runs.
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<api::CreateSession>,
) -> Result<(StatusCode, Json<api::Session>), Problem> {
    caller.require(&[Role::Agent])?;
    let workflow = state
        .workflow(&body.workflow)
        .ok_or_else(|| Problem::not_found(format!("this server runs no workflow {:?}", body.workflow)))?;
    let info = caller.engine(&state).create_session(&workflow, &body.id, None).await?;
    Ok((StatusCode::CREATED, Json(session_view(info))))
}

/// `GET /v1/sessions/{id}` (agent, reviewer).
async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<api::Session>, Problem> {
    caller.require(&[Role::Agent, Role::Reviewer])?;
    let info = caller.engine(&state).session(&id).await?;
    info.map(|info| Json(session_view(info))).ok_or_else(|| Problem::not_found(format!("no session '{id}'")))
}

/// `POST /v1/sessions/{id}/calls` (agent): decides a call, durably.
async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    Path(session): Path<String>,
    Body(call): Body<api::Call>,
) -> Result<Json<api::CallDecision>, Problem> {
    caller.require(&[Role::Agent])?;
    if !call.args.is_object() {
        return Err(Problem::bad_request("a call's args must be a JSON object"));
    }
    let mut tool_call = ToolCall::new(call.id.as_str(), call.tool.as_str(), call.args);
    if let Some(summary) = call.summary {
        tool_call = tool_call.with_summary(summary);
    }
    let decided = caller.engine(&state).decide(&session, &tool_call).await?;
    let opens_handoff = match &decided.decision {
        tollgate_core::Decision::Escalate(_) => true,
        tollgate_core::Decision::Allow(allowed) => allowed.handoff.is_some(),
        tollgate_core::Decision::Block(_) => false,
    };
    Ok(Json(api::CallDecision {
        call: call.id.clone(),
        decision: tollgate_protocol::Decision::from(&decided.decision),
        replayed: decided.replayed,
        handoff: opens_handoff.then(|| handoff_id(&session, &call.id)),
    }))
}
