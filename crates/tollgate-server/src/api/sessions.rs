//! Sessions, calls and results: the agent's side.

use crate::auth::{AgentOnly, AgentOrReviewer, As};
use crate::error::Problem;
use crate::json::{Body, Id, Query};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value as Json_;
use std::sync::Arc;
use tollgate_core::{FactSnapshot, ToolCall, ToolOutcome};
use tollgate_engine::{SessionInfo, handoff_id};
use tollgate_protocol::api;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(read))
        .routes(routes!(journal))
        .routes(routes!(decide))
        .routes(routes!(record))
        .routes(routes!(step))
}

pub(crate) fn session_view(info: SessionInfo) -> api::Session {
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

/// Starts a session under a workflow the server runs.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = api::CreateSession,
    responses((status = 201, description = "The session was created.", body = api::Session)))]
async fn create(
    State(state): State<AppState>,
    As(caller, ..): As<AgentOnly>,
    Body(body): Body<api::CreateSession>,
) -> Result<(StatusCode, Json<api::Session>), Problem> {
    let workflow = state
        .workflow(&body.workflow)
        .ok_or_else(|| Problem::not_found(format!("this server runs no workflow {:?}", body.workflow)))?;
    let info = caller.engine(&state).create_session(&workflow, &body.id, None).await?;
    Ok((StatusCode::CREATED, Json(session_view(info))))
}

/// A session and where it stands: counts, facts, pending calls, calls in
/// doubt, investigations and handoffs.
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path, description = "The session.")),
    responses((status = 200, description = "The session.", body = api::SessionSummary)))]
async fn read(
    State(state): State<AppState>,
    As(caller, ..): As<AgentOrReviewer>,
    Id(id): Id,
) -> Result<Json<api::SessionSummary>, Problem> {
    let resume = caller.engine(&state).resume(&id).await?;
    let (workflow, session_state) = (&resume.workflow, &resume.state);
    let facts = session_state
        .facts(workflow)
        .into_iter()
        .map(|(fact, key, value)| {
            FactSnapshot { fact: Arc::from(fact), key: key.map(Arc::from), fields: value.clone() }.line()
        })
        .collect();
    Ok(Json(api::SessionSummary {
        allowed_calls: session_state.allowed_calls(),
        blocked_calls: session_state.blocked_calls(),
        escalations: session_state.escalations(),
        facts,
        pending_calls: session_state.pending_calls().map(|call| call.as_str().to_owned()).collect(),
        in_doubt: resume
            .in_doubt
            .iter()
            .map(|d| api::InDoubt {
                call_id: d.call_id.clone(),
                tool: d.tool.clone(),
                idempotency_key: d.idempotency_key.clone(),
            })
            .collect(),
        investigations: session_state
            .investigations()
            .iter()
            .map(|o| api::Investigation {
                concern_id: o.concern_id.clone(),
                session: o.session.clone(),
                concern: o.concern.clone(),
            })
            .collect(),
        handoffs: session_state
            .handoffs()
            .iter()
            .map(|h| api::SessionHandoff {
                id: handoff_id(&id, h.call.as_str()),
                call_id: h.call.as_str().to_owned(),
                tool: h.tool.clone(),
                status: h.status.as_str().to_owned(),
            })
            .collect(),
        session: session_view(resume.session),
    }))
}

/// Which page of a journal.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct JournalQuery {
    /// Only entries numbered above this (default 0: from the first); pass the
    /// last `seq` of a page to get the next.
    after: Option<i64>,
    /// At most this many (1 to 10,000; default 1,000).
    limit: Option<i64>,
}

/// The session's journal, oldest first, a page at a time.
#[utoipa::path(get, path = "/v1/sessions/{id}/journal", tag = "sessions",
    params(("id" = String, Path, description = "The session."), JournalQuery),
    responses((status = 200, description = "The journal's entries numbered above `after`, at most `limit`; fewer than `limit` when the journal ends.", body = Vec<api::JournalEntry>)))]
async fn journal(
    State(state): State<AppState>,
    As(caller, ..): As<AgentOrReviewer>,
    Id(id): Id,
    Query(query): Query<JournalQuery>,
) -> Result<Json<Vec<api::JournalEntry>>, Problem> {
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(1_000);
    if after < 0 {
        return Err(Problem::bad_request("after must be 0 or more"));
    }
    if !(1..=tollgate_engine::JOURNAL_PAGE_MAX).contains(&limit) {
        return Err(Problem::bad_request(format!("limit must be 1 to {}", tollgate_engine::JOURNAL_PAGE_MAX)));
    }
    let entries = caller.engine(&state).journal_page(&id, after, limit).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|entry| api::JournalEntry {
                seq: entry.seq,
                at_ms: entry.at_ms,
                kind: entry.record.audit_event(),
                body: serde_json::from_str(&entry.record.body()).unwrap_or(Json_::Null),
            })
            .collect(),
    ))
}

/// Decides a proposed call, durably: the answer is on disk before it is sent.
#[utoipa::path(post, path = "/v1/sessions/{id}/calls", tag = "sessions", request_body = api::Call,
    params(("id" = String, Path, description = "The session.")),
    responses((status = 200, description = "The decision.", body = api::CallDecision)))]
async fn decide(
    State(state): State<AppState>,
    As(caller, ..): As<AgentOnly>,
    Id(session): Id,
    Body(call): Body<api::Call>,
) -> Result<Json<api::CallDecision>, Problem> {
    let tool_call = tool_call(call)?;
    let decided = caller.engine(&state).decide(&session, &tool_call).await?;
    Ok(Json(answer(&state, &caller.tenant, &session, &tool_call, &decided).await))
}

/// Records a tool's result (`result`) or its failure (`error`).
#[utoipa::path(post, path = "/v1/sessions/{id}/results", tag = "sessions", request_body = api::ToolResult,
    params(("id" = String, Path, description = "The session.")),
    responses((status = 200, description = "What recording it did.", body = api::Recorded)))]
async fn record(
    State(state): State<AppState>,
    As(caller, ..): As<AgentOnly>,
    Id(session): Id,
    Body(result): Body<api::ToolResult>,
) -> Result<Json<api::Recorded>, Problem> {
    let (value, outcome) = outcome(&result)?;
    let recorded = caller.engine(&state).record_result(&session, &result.call_id, &value, outcome).await?;
    Ok(Json(recorded_view(&recorded)))
}

/// Records a result and decides the next call, in one commit.
#[utoipa::path(post, path = "/v1/sessions/{id}/steps", tag = "sessions", request_body = api::Step,
    params(("id" = String, Path, description = "The session.")),
    responses((status = 200, description = "What recording did, and the next call's decision.", body = api::StepOutcome)))]
async fn step(
    State(state): State<AppState>,
    As(caller, ..): As<AgentOnly>,
    Id(session): Id,
    Body(step): Body<api::Step>,
) -> Result<Json<api::StepOutcome>, Problem> {
    let (value, outcome) = outcome(&step.result)?;
    let next = tool_call(step.next)?;
    let (recorded, decided) =
        caller.engine(&state).record_and_decide(&session, &step.result.call_id, &value, outcome, &next).await?;
    Ok(Json(api::StepOutcome {
        recorded: recorded_view(&recorded),
        decision: answer(&state, &caller.tenant, &session, &next, &decided).await,
    }))
}

fn tool_call(call: api::Call) -> Result<ToolCall, Problem> {
    if !call.args.is_object() {
        return Err(Problem::bad_request("a call's args must be a JSON object"));
    }
    let mut tool_call = ToolCall::new(call.id.as_str(), call.tool.as_str(), call.args);
    if let Some(summary) = call.summary {
        tool_call = tool_call.with_summary(summary);
    }
    Ok(tool_call)
}

fn outcome(result: &api::ToolResult) -> Result<(Json_, ToolOutcome), Problem> {
    match (&result.result, &result.error) {
        (Some(value), None) => Ok((value.clone(), ToolOutcome::Succeeded)),
        (None, Some(error)) => Ok((Json_::String(error.clone()), ToolOutcome::Failed)),
        _ => Err(Problem::bad_request("a result has exactly one of \"result\" and \"error\"")),
    }
}

fn recorded_view(recorded: &tollgate_engine::Recorded) -> api::Recorded {
    api::Recorded {
        recorded: recorded.recorded,
        effects: recorded.effects.iter().map(tollgate_protocol::Effect::from).collect(),
        note: recorded.note.clone(),
    }
}

/// The answer to a decided call; counts it, and announces the handoff it
/// opened (a replayed decision opened nothing new).
async fn answer(
    state: &AppState,
    tenant: &str,
    session: &str,
    call: &ToolCall,
    decided: &tollgate_engine::CallDecision,
) -> api::CallDecision {
    let opens_handoff = match &decided.decision {
        tollgate_core::Decision::Escalate(_) => true,
        tollgate_core::Decision::Allow(allowed) => allowed.handoff.is_some(),
        tollgate_core::Decision::Block(_) => false,
    };
    let handoff = opens_handoff.then(|| handoff_id(session, call.id.as_str()));
    if !decided.replayed {
        let rules: Vec<&str> = decided.decision.reasons().iter().map(|reason| reason.rule_id.as_str()).collect();
        let verdict = match &decided.decision {
            tollgate_core::Decision::Allow(_) => "allow",
            tollgate_core::Decision::Block(_) => "block",
            tollgate_core::Decision::Escalate(_) => "escalate",
        };
        crate::metrics::decision(verdict, &rules);
        if let Some(id) = &handoff {
            crate::metrics::handoff("open");
            if state.announces()
                && let Ok(Some(opened)) = state.engine().for_tenant(tenant).handoff(id).await
            {
                state.announce("handoff.opened", &opened);
            }
        }
    }
    api::CallDecision {
        call: call.id.to_string(),
        decision: tollgate_protocol::Decision::from(&decided.decision),
        replayed: decided.replayed,
        handoff,
    }
}
