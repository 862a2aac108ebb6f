//! The admin's side: the tenant's audit records and the log's check, and
//! the workflows the server runs.

use crate::auth::{AdminOnly, As};
use crate::error::Problem;
use crate::json::{Body, Query};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tollgate_engine::WorkflowHandle;
use tollgate_protocol::api;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify)).routes(routes!(records)).routes(routes!(workflows, add_workflow))
}

/// Checks the whole audit log (both chains, the head); a break outside the
/// caller's tenant is reported by its position only.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, description = "The check's outcome.", body = api::AuditReport)))]
async fn verify(
    State(state): State<AppState>,
    As(caller, ..): As<AdminOnly>,
) -> Result<Json<api::AuditReport>, Problem> {
    let report = caller.engine(&state).verify_audit().await?;
    Ok(Json(api::AuditReport {
        intact: report.problem.is_none(),
        records: report.records,
        head_seq: report.head.seq,
        head_hash: report.head.hash,
        problem: report.problem.map(|p| api::AuditProblem { seq: p.seq, session: p.session_id, message: p.message }),
    }))
}

/// A page of audit records.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct RecordsQuery {
    /// Records after this position in the global chain (default 0).
    after: Option<i64>,
    /// At most this many (1 to 1,000; default 100).
    limit: Option<i64>,
}

/// The tenant's audit records, in the global chain's order, a page at a time.
#[utoipa::path(get, path = "/v1/audit/records", tag = "audit", params(RecordsQuery),
    responses((status = 200, description = "A page of records.", body = api::AuditPage)))]
async fn records(
    State(state): State<AppState>,
    As(caller, ..): As<AdminOnly>,
    Query(query): Query<RecordsQuery>,
) -> Result<Json<api::AuditPage>, Problem> {
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(100);
    if after < 0 || !(1..=1_000).contains(&limit) {
        return Err(Problem::bad_request("after must be 0 or more and limit 1 to 1000"));
    }
    let page = caller.engine(&state).audit_records(after, limit).await?;
    Ok(Json(api::AuditPage {
        next_after: page.next_after,
        records: page
            .records
            .into_iter()
            .map(|r| api::AuditRecord {
                seq: r.seq,
                session: r.session_id,
                session_seq: r.session_seq,
                kind: r.kind,
                body: r.body,
                at_ms: r.at_ms,
                prev_hash: r.prev_hash,
                session_prev_hash: r.session_prev_hash,
                hash: r.hash,
            })
            .collect(),
    }))
}

fn workflow_view(handle: &WorkflowHandle) -> api::Workflow {
    api::Workflow {
        name: handle.workflow.name().to_owned(),
        version: i64::from(handle.workflow.version()),
        hash: handle.hash.clone(),
    }
}

/// The workflows the server runs (the newest version of each name).
#[utoipa::path(get, path = "/v1/workflows", tag = "workflows",
    responses((status = 200, description = "The workflows.", body = Vec<api::Workflow>)))]
async fn workflows(State(state): State<AppState>, As(..): As<AdminOnly>) -> Json<Vec<api::Workflow>> {
    Json(state.workflows().iter().map(workflow_view).collect())
}

/// Compiles, stores and runs a workflow (new sessions under its name get
/// it when it is the newest version; running sessions keep theirs).
#[utoipa::path(post, path = "/v1/workflows", tag = "workflows", request_body = api::AddWorkflow,
    responses((status = 201, description = "Stored and run.", body = api::Workflow)))]
async fn add_workflow(
    State(state): State<AppState>,
    As(..): As<AdminOnly>,
    Body(body): Body<api::AddWorkflow>,
) -> Result<(StatusCode, Json<api::Workflow>), Problem> {
    let file = body.file.as_deref().unwrap_or("workflow.toml");
    let handle = state.engine().register_workflow(&body.text, file).await?;
    state.add_workflow(handle.clone());
    Ok((StatusCode::CREATED, Json(workflow_view(&handle))))
}
