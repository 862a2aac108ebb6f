//! The HTTP API's bodies, version 1 (`/v1/...`): what agents, reviewers and
//! admins send and receive. Requests refuse unknown fields, so a typo is a
//! clear 400 rather than a silently ignored option.

use crate::decision::Decision;
use serde::{Deserialize, Serialize};

/// `POST /v1/sessions`: start a session under a workflow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
