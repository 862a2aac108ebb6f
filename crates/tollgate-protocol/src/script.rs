//! Scripted sessions: a sequence of calls and results in, a transcript of
//! decisions and effects out. Used by `tollgate run`, the demo and the
//! data-driven tests. The script format is JSON lines:
//!
//! ```text
//! {"call": {"id": "c1", "tool": "get_customer", "args": {"email": "a@b.c", "zip": "12345"}}}
//! {"result": {"id": "c1", "result": {"verified": true, "customer_id": "c_1"}}}
//! {"result": {"id": "c2", "error": "timeout"}}
//! ```
//!
//! A call may carry the session clock rules read as `now`:
//! `"now": "2024-05-15T15:00:00-05:00"` (or milliseconds since the epoch),
//! and the agent's summary of the conversation, which an escalation's
//! handoff quotes beside the one compiled from the session: `"summary": "..."`,
//! and what the client says about it, read by rules as `context`:
//! `"context": {"cwd": "/p", "project_dir": "/p"}`.

use crate::{decision_json, effect_json};
use serde_json::{Value as Json, json};
use tollgate_core::{CallId, Event, SessionState, ToolCall, ToolOutcome, Workflow, apply, decide};

/// One step of a script.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// The agent proposes a call.
    Call(ToolCall),
    /// A tool result comes back.
    Result {
        /// The call it answers.
        call: CallId,
        /// The result (or the error text, for failures).
        result: Json,
        /// Whether the tool succeeded.
        outcome: ToolOutcome,
    },
}

impl Step {
    /// Reads a step from its JSON form; the error says what is wrong.
    pub fn from_json(value: &Json) -> Result<Step, String> {
        if let Some(call) = value.get("call") {
            let id = call.get("id").and_then(Json::as_str).ok_or("a call needs a string \"id\"")?;
            let tool = call.get("tool").and_then(Json::as_str).ok_or("a call needs a string \"tool\"")?;
            let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
            let mut call_made = ToolCall::new(id, tool, args);
            if let Some(now) = call.get("now").filter(|now| !now.is_null()) {
                call_made = call_made.at(parse_now(now)?);
            }
            match call.get("summary") {
                None | Some(Json::Null) => {}
                Some(Json::String(summary)) => call_made = call_made.with_summary(summary.as_str()),
                Some(_) => return Err("a call's \"summary\" must be text".into()),
            }
            match call.get("context") {
                None | Some(Json::Null) => {}
                Some(context @ Json::Object(_)) => call_made = call_made.with_context(context.clone()),
                Some(_) => return Err("a call's \"context\" must be an object, such as {\"cwd\": \"/p\"}".into()),
            }
            return Ok(Step::Call(call_made));
        }
        if let Some(result) = value.get("result") {
            let id = result.get("id").and_then(Json::as_str).ok_or("a result needs a string \"id\"")?;
            if let Some(error) = result.get("error") {
                return Ok(Step::Result { call: CallId::new(id), result: error.clone(), outcome: ToolOutcome::Failed });
            }
            let body = result.get("result").cloned().ok_or("a result needs \"result\" or \"error\"")?;
            return Ok(Step::Result { call: CallId::new(id), result: body, outcome: ToolOutcome::Succeeded });
        }
        Err("each line must be {\"call\": ...} or {\"result\": ...}".into())
    }
}

/// A call's `now`: RFC 3339 text (`2024-05-15T15:00:00-05:00`) or
/// milliseconds since the Unix epoch.
pub fn parse_now(now: &Json) -> Result<i64, String> {
    match now {
        Json::String(text) => tollgate_core::trace::SessionTime::parse(text).map(|time| time.unix_ms),
        Json::Number(n) => n.as_i64().ok_or_else(|| format!("\"now\" {n} is not whole milliseconds")),
        other => Err(format!("\"now\" must be RFC 3339 text or milliseconds, not {other}")),
    }
}

/// Runs a script against a session; returns one transcript line per step.
pub fn run(workflow: &Workflow, state: &mut SessionState, steps: &[Step]) -> Vec<Json> {
    steps.iter().map(|step| run_step(workflow, state, step)).collect()
}

/// Runs one step; returns its transcript line.
pub fn run_step(workflow: &Workflow, state: &mut SessionState, step: &Step) -> Json {
    match step {
        Step::Call(call) => {
            let decision = decide(workflow, state, call);
            apply(workflow, state, Event::Decided { call, decision: &decision });
            json!({"call": call.id.as_str(), "tool": call.tool, "decision": decision_json(&decision)})
        }
        Step::Result { call, result, outcome } => {
            let effects = apply(workflow, state, Event::ResultRecorded { call, result, outcome: *outcome });
            json!({"result": call.as_str(), "effects": effects.iter().map(effect_json).collect::<Vec<_>>()})
        }
    }
}
