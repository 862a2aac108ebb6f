//! The HTTP API's bodies, version 1 (`/v1/...`): what agents, reviewers and
//! admins send and receive. Requests refuse unknown fields, so a typo is a
//! clear 400 rather than a silently ignored option.

use crate::decision::Decision;
use serde::{Deserialize, Serialize};

/// `POST /v1/sessions`: start a session under a workflow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// The session's id (1 to 128 of letters, digits and `- _ . : # @`).
    pub id: String,
    /// The workflow, by name (the newest version the server runs) or by
    /// the SHA-256 of its text.
    pub workflow: String,
}

/// A session as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Its id.
    pub id: String,
    /// Its workflow's name.
    pub workflow: String,
    /// Its workflow's version.
    pub workflow_version: i64,
    /// SHA-256 of its workflow's text.
    pub workflow_hash: String,
    /// The parent session, for an investigation.
    pub parent: Option<String>,
    /// When it was created (ms since the Unix epoch).
    pub created_ms: i64,
    /// How many journal entries it has.
    pub journal_entries: i64,
}

/// A tool call an agent proposes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Call {
    /// The call's id, unique in the session (re-sending the same call with
    /// the same id gets its recorded decision back).
    pub id: String,
    /// The tool.
    pub tool: String,
    /// Its arguments (a JSON object).
    #[serde(default = "empty_object")]
    pub args: serde_json::Value,
    /// The agent's summary of the conversation so far, which an escalation's
    /// handoff quotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// The answer to a proposed call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CallDecision {
    /// The call's id.
    pub call: String,
    /// The decision (`tollgate.decision/v1`).
    pub decision: Decision,
    /// Whether this call id was decided before and this is that decision.
    pub replayed: bool,
    /// When the call escalated (or is a handoff tool's call that runs): the
    /// handoff a person works on, to wait for its outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<String>,
}

/// A session with where it stands (`GET /v1/sessions/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SessionSummary {
    /// The session.
    pub session: Session,
    /// Calls allowed so far.
    pub allowed_calls: i64,
    /// Calls blocked so far (withheld results included).
    pub blocked_calls: i64,
    /// Calls escalated so far.
    pub escalations: i64,
    /// Every fact the session holds, one line each (`order[#W1] = {...}`).
    pub facts: Vec<String>,
    /// Calls allowed whose results are still outstanding.
    pub pending_calls: Vec<String>,
    /// Calls allowed whose results were never recorded, with the keys to
    /// re-drive them under.
    pub in_doubt: Vec<InDoubt>,
    /// The investigations this session opened.
    pub investigations: Vec<Investigation>,
    /// Its handoffs: the call and where each stands.
    pub handoffs: Vec<SessionHandoff>,
}

/// An allowed call whose result never arrived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InDoubt {
    /// The call.
    pub call_id: String,
    /// Its tool.
    pub tool: String,
    /// The key to re-drive it with (side effects only).
    pub idempotency_key: Option<String>,
}

/// An investigation of a session: one concern in a child session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Investigation {
    /// The concern's id.
    pub concern_id: String,
    /// The child session (`{parent}:{concern id}`).
    pub session: String,
    /// The concern, in the agent's words.
    pub concern: String,
}

/// A handoff as its session's state shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SessionHandoff {
    /// The handoff's id.
    pub id: String,
    /// The call that opened it.
    pub call_id: String,
    /// That call's tool.
    pub tool: String,
    /// `open`, `claimed`, `approved`, `denied`, `resolved` or `expired`.
    pub status: String,
}

/// One journal entry (`GET /v1/sessions/{id}/journal`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JournalEntry {
    /// Position in the session's journal, from 1.
    pub seq: i64,
    /// When it was written (ms since the Unix epoch).
    pub at_ms: i64,
    /// What it records, as the audit log names it (`decision.allow`, `result`, `human.claim`, ...).
    pub kind: String,
    /// The record.
    pub body: serde_json::Value,
}

/// `POST /v1/sessions/{id}/results`: a tool's result, or its failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ToolResult {
    /// The call it answers.
    pub call_id: String,
    /// What the tool returned (exactly one of `result` and `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why the tool failed (its reserved amounts are released).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What recording a result did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    /// False if nothing changed (the call was never allowed, or its result
    /// was recorded before: a result counts once).
    pub recorded: bool,
    /// Its effects on the session.
    pub effects: Vec<crate::effect::Effect>,
    /// Why nothing changed, when `recorded` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `POST /v1/sessions/{id}/steps`: a result and the next call, in one commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The result of the previous call.
    pub result: ToolResult,
    /// The next call.
    pub next: Call,
}

/// What a step did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StepOutcome {
    /// What recording the result did.
    pub recorded: Recorded,
    /// The next call's decision.
    pub decision: CallDecision,
}

/// `POST /v1/sessions/{id}/investigations`: open one investigation per concern.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OpenInvestigations {
    /// The concerns (1 to 32).
    pub concerns: Vec<Concern>,
}

/// One concern to investigate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Concern {
    /// Its id (letters, digits, `-`, `_`, `.`): the child session is `{parent}:{id}`.
    pub id: String,
    /// The concern, in the agent's words.
    pub concern: String,
    /// The tools the investigation may call (absent: every tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
}

/// `POST /v1/sessions/{id}/conclusion`: an investigation's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Conclusion {
    /// What the investigation found.
    pub outcome: String,
}

/// A handoff as the queue shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    /// Its id.
    pub id: String,
    /// The session.
    pub session: String,
    /// The call that opened it.
    pub call_id: String,
    /// That call's tool.
    pub tool: String,
    /// `open`, `claimed`, `approved`, `denied`, `resolved` or `expired`.
    pub status: String,
    /// How soon, as the workflow names it.
    pub urgency: String,
    /// The verified customer, if the session established one.
    pub customer_id: Option<String>,
    /// Who holds the claim, or decided it.
    pub claimed_by: Option<String>,
    /// The call that ran on its approval, once one did.
    pub consumed_by: Option<String>,
    /// When it was opened (ms since the Unix epoch).
    pub created_ms: i64,
    /// When it last moved.
    pub updated_ms: i64,
    /// When it expires if nobody decides it, or (approved) when its approval ends.
    pub expires_ms: i64,
    /// Everything a person sees: the handoff, the call, the reasons, the
    /// case, and what people did.
    pub body: serde_json::Value,
}

/// `POST /v1/handoffs/{id}/approve`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Approve {
    /// How long the approval lasts (1 second to a week).
    pub expires_in_seconds: u64,
}

/// `POST /v1/handoffs/{id}/deny`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Deny {
    /// Why: the agent's retried call is blocked with this reason.
    pub reason: String,
}

/// `POST /v1/handoffs/{id}/resolve`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// What was done.
    pub note: String,
}

/// The audit log checked (`GET /v1/audit/verify`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AuditReport {
    /// Whether both chains are intact up to the head.
    pub intact: bool,
    /// Records checked before the first problem (all of them if none).
    pub records: u64,
    /// The head's position in the global chain.
    pub head_seq: i64,
    /// The head's hash.
    pub head_hash: String,
    /// The first problem, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<AuditProblem>,
}

/// Where the audit log breaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AuditProblem {
    /// The record's position in the global chain.
    pub seq: i64,
    /// Its session, when it is the caller's tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// A page of audit records (`GET /v1/audit/records`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AuditPage {
    /// The records, in the global chain's order.
    pub records: Vec<AuditRecord>,
    /// Ask again with `after` = this for the next page (equal to the `after`
    /// asked with when nothing is left).
    pub next_after: i64,
}

/// One audit record, as stored and chained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the global chain, from 1.
    pub seq: i64,
    /// The session.
    pub session: String,
    /// Position in the session's chain, from 1.
    pub session_seq: i64,
    /// The event (`decision.allow`, `result`, ...).
    pub kind: String,
    /// The record, as JSON text (hashed as it is).
    pub body: String,
    /// When (ms since the Unix epoch).
    pub at_ms: i64,
    /// Hash of the record before it in the global chain.
    pub prev_hash: String,
    /// Hash of the record before it in the session's chain.
    pub session_prev_hash: String,
    /// Its hash.
    pub hash: String,
}

/// A workflow the server runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: i64,
    /// SHA-256 of its text.
    pub hash: String,
}

/// `POST /v1/workflows`: run a workflow (a newer version of a name replaces
/// the older one for new sessions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddWorkflow {
    /// The workflow file's text (TOML).
    pub text: String,
    /// A file name to show in its problems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}
