//! Handoffs: the reviewer's queue and actions, and the agent's wait for an
//! outcome (long-poll or Server-Sent Events). The reviewer's identity in
//! the journal and audit log is always the token's name.

use crate::auth::{AgentOrReviewer, As, Caller, ReviewerOnly};
use crate::error::Problem;
use crate::json::{Body, Id, Query};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tollgate_engine::{APPROVAL_MAX_MS, Handoff, HandoffFilter, HumanAction};
use tollgate_protocol::api;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(of_session))
        .routes(routes!(queue))
        .routes(routes!(read))
        .routes(routes!(outcome))
        .routes(routes!(events))
        .routes(routes!(claim))
        .routes(routes!(release))
        .routes(routes!(approve))
        .routes(routes!(deny))
        .routes(routes!(resolve))
}

/// How often a wait looks at the store for another replica's changes.
const POLL: Duration = Duration::from_millis(250);

pub(crate) fn view(handoff: Handoff) -> api::Handoff {
    api::Handoff {
        id: handoff.id,
        session: handoff.session,
        call_id: handoff.call_id,
        tool: handoff.tool,
        status: handoff.status,
        urgency: handoff.urgency,
        customer_id: handoff.customer_id,
        claimed_by: handoff.claimed_by,
        consumed_by: handoff.consumed_by,
        created_ms: handoff.created_ms,
        updated_ms: handoff.updated_ms,
        expires_ms: handoff.expires_ms,
        body: handoff.body,
    }
}

/// A session's handoffs.
#[utoipa::path(get, path = "/v1/sessions/{id}/handoffs", tag = "handoffs",
    params(("id" = String, Path, description = "The session.")),
    responses((status = 200, description = "Its handoffs, oldest first.", body = Vec<api::Handoff>)))]
async fn of_session(
    State(state): State<AppState>,
    As(caller, ..): As<AgentOrReviewer>,
    Id(session): Id,
) -> Result<Json<Vec<api::Handoff>>, Problem> {
    let view_ = caller.engine(&state);
    let summary = view_.resume(&session).await?;
    let mut handoffs = Vec::new();
    for opened in summary.state.handoffs() {
        let id = tollgate_engine::handoff_id(&session, opened.call.as_str());
        if let Some(handoff) = view_.handoff(&id).await? {
            handoffs.push(view(handoff));
        }
    }
    Ok(Json(handoffs))
}

/// What the queue lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct QueueQuery {
    /// Only handoffs of these statuses, comma-separated (default: open,claimed).
    status: Option<String>,
    /// Only handoffs opened at or after this time (ms since the Unix epoch).
    since: Option<i64>,
    /// At most this many (1 to 1,000; default 100).
    limit: Option<i64>,
}

/// The tenant's queue, most urgent first, oldest first within an urgency.
#[utoipa::path(get, path = "/v1/handoffs", tag = "handoffs", params(QueueQuery),
    responses((status = 200, description = "The handoffs.", body = Vec<api::Handoff>)))]
async fn queue(
    State(state): State<AppState>,
    As(caller, ..): As<ReviewerOnly>,
    Query(query): Query<QueueQuery>,
) -> Result<Json<Vec<api::Handoff>>, Problem> {
    let statuses = query.status.as_deref().unwrap_or("open,claimed");
    let statuses = statuses.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    let limit = query.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(Problem::bad_request("limit must be 1 to 1000"));
    }
    let filter = HandoffFilter { statuses, since_ms: query.since, limit };
    let handoffs = caller.engine(&state).handoffs(&filter).await?;
    Ok(Json(handoffs.into_iter().map(view).collect()))
}

async fn own(state: &AppState, caller: &Caller, id: &str) -> Result<Handoff, Problem> {
    caller.engine(state).handoff(id).await?.ok_or_else(|| Problem::not_found(format!("no handoff '{id}'")))
}

/// One handoff.
#[utoipa::path(get, path = "/v1/handoffs/{id}", tag = "handoffs", params(("id" = String, Path, description = "The handoff.")),
    responses((status = 200, description = "The handoff.", body = api::Handoff)))]
async fn read(
    State(state): State<AppState>,
    As(caller, ..): As<AgentOrReviewer>,
    Id(id): Id,
) -> Result<Json<api::Handoff>, Problem> {
    Ok(Json(view(own(&state, &caller, &id).await?)))
}

/// How long to wait.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct WaitQuery {
    /// Seconds to wait for a person's decision (capped by the server; default 0).
    wait: Option<u64>,
}

/// The handoff once settled (approved, denied, resolved or expired), or as
/// it is when the wait ends: a long-poll.
#[utoipa::path(get, path = "/v1/handoffs/{id}/outcome", tag = "handoffs",
    params(("id" = String, Path, description = "The handoff."), WaitQuery),
    responses((status = 200, description = "The handoff as it is when settled or when the wait ended.", body = api::Handoff)))]
async fn outcome(
    State(state): State<AppState>,
    As(caller, ..): As<AgentOrReviewer>,
    Id(id): Id,
    Query(query): Query<WaitQuery>,
) -> Result<Json<api::Handoff>, Problem> {
    let limits = state.limits();
    // Answered before the request's deadline cuts it.
    let cap = limits.wait_seconds_max.min(limits.request_seconds_max.saturating_sub(1));
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(cap));
    let view_ = caller.engine(&state);
    let handoff = tokio::select! {
        waited = view_.wait_for_handoff(&id, wait, POLL) => waited?,
        () = state.shutting_down() => own(&state, &caller, &id).await?,
    };
    Ok(Json(view(handoff)))
}

/// The handoff as Server-Sent Events: a `handoff` event with the handoff now
/// and each time it changes; the stream ends once it is settled (or the
/// server stops).
#[utoipa::path(get, path = "/v1/handoffs/{id}/events", tag = "handoffs",
    params(("id" = String, Path, description = "The handoff.")),
    responses((status = 200, description = "`event: handoff` with the handoff's JSON as data, on each change.",
        content_type = "text/event-stream", body = String)))]
async fn events(
    State(state): State<AppState>,
    As(caller, ..): As<AgentOrReviewer>,
    Id(id): Id,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let first = own(&state, &caller, &id).await?;
    let start = (state, caller.tenant, id, Some(first), None::<(String, i64)>);
    let stream = futures_util::stream::unfold(start, |(state, tenant, id, next, last)| async move {
        let mut next = next;
        loop {
            let handoff = match next.take() {
                Some(handoff) => handoff,
                None => {
                    if last.as_ref().is_some_and(|(status, _)| is_settled(status)) {
                        return None;
                    }
                    let view_ = state.engine().for_tenant(&tenant);
                    tokio::select! {
                        waited = view_.wait_for_handoff(&id, Duration::from_secs(1), POLL) => waited.ok()?,
                        () = state.shutting_down() => return None,
                    }
                }
            };
            let seen = (handoff.status.clone(), handoff.updated_ms);
            if last.as_ref() == Some(&seen) {
                continue;
            }
            let event = Event::default().event("handoff").json_data(view(handoff)).ok()?;
            return Some((Ok(event), (state, tenant, id, None, Some(seen))));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn is_settled(status: &str) -> bool {
    !matches!(status, "open" | "claimed")
}

async fn act(state: &AppState, caller: &Caller, id: &str, action: HumanAction) -> Result<Json<api::Handoff>, Problem> {
    let handoff = caller.engine(state).act(id, action).await?;
    crate::metrics::handoff(&handoff.status);
    state.announce(&format!("handoff.{}", handoff.status), &handoff);
    Ok(Json(view(handoff)))
}

/// Claims a handoff: only its holder may decide it.
#[utoipa::path(post, path = "/v1/handoffs/{id}/claim", tag = "handoffs", params(("id" = String, Path, description = "The handoff.")),
    responses((status = 200, description = "Claimed by the token's name.", body = api::Handoff)))]
async fn claim(
    State(state): State<AppState>,
    As(caller, ..): As<ReviewerOnly>,
    Id(id): Id,
) -> Result<Json<api::Handoff>, Problem> {
    act(&state, &caller, &id, HumanAction::Claim { reviewer: caller.name.clone() }).await
}

/// Releases a claim: the handoff is open again.
#[utoipa::path(post, path = "/v1/handoffs/{id}/release", tag = "handoffs", params(("id" = String, Path, description = "The handoff.")),
    responses((status = 200, description = "Open again.", body = api::Handoff)))]
async fn release(
    State(state): State<AppState>,
    As(caller, ..): As<ReviewerOnly>,
    Id(id): Id,
) -> Result<Json<api::Handoff>, Problem> {
    act(&state, &caller, &id, HumanAction::Release { reviewer: caller.name.clone() }).await
}

/// Approves a claimed handoff: the agent's identical retried call runs
/// once, until the approval expires.
#[utoipa::path(post, path = "/v1/handoffs/{id}/approve", tag = "handoffs", request_body = api::Approve,
    params(("id" = String, Path, description = "The handoff.")),
    responses((status = 200, description = "Approved.", body = api::Handoff)))]
async fn approve(
    State(state): State<AppState>,
    As(caller, ..): As<ReviewerOnly>,
    Id(id): Id,
    Body(body): Body<api::Approve>,
) -> Result<Json<api::Handoff>, Problem> {
    let max_seconds = u64::try_from(APPROVAL_MAX_MS / 1000).unwrap_or(u64::MAX);
    if !(1..=max_seconds).contains(&body.expires_in_seconds) {
        return Err(Problem::bad_request(format!("expires_in_seconds must be 1 to {max_seconds} (a week)")));
    }
    let millis = i64::try_from(body.expires_in_seconds).unwrap_or(i64::MAX).saturating_mul(1000);
    let expires_ms = state.engine().now_ms().saturating_add(millis);
    act(&state, &caller, &id, HumanAction::Approve { reviewer: caller.name.clone(), expires_ms }).await
}

/// Denies a claimed handoff: the agent's retried call is blocked with the reason.
#[utoipa::path(post, path = "/v1/handoffs/{id}/deny", tag = "handoffs", request_body = api::Deny,
    params(("id" = String, Path, description = "The handoff.")),
    responses((status = 200, description = "Denied.", body = api::Handoff)))]
async fn deny(
    State(state): State<AppState>,
    As(caller, ..): As<ReviewerOnly>,
    Id(id): Id,
    Body(body): Body<api::Deny>,
) -> Result<Json<api::Handoff>, Problem> {
    act(&state, &caller, &id, HumanAction::Deny { reviewer: caller.name.clone(), reason: body.reason }).await
}

/// Resolves a claimed handoff with a note (handled outside the agent).
#[utoipa::path(post, path = "/v1/handoffs/{id}/resolve", tag = "handoffs", request_body = api::Resolve,
    params(("id" = String, Path, description = "The handoff.")),
    responses((status = 200, description = "Resolved.", body = api::Handoff)))]
async fn resolve(
    State(state): State<AppState>,
    As(caller, ..): As<ReviewerOnly>,
    Id(id): Id,
    Body(body): Body<api::Resolve>,
) -> Result<Json<api::Handoff>, Problem> {
    act(&state, &caller, &id, HumanAction::Resolve { reviewer: caller.name.clone(), note: body.note }).await
}
