//! A tool call as the agent proposes it, and the line it leaves in a
//! session's history. These are plain records: everything above them (the
//! decision, the session state, the handoff) refers to calls by these types,
//! and they refer to nothing.

use std::fmt;

/// The id of one tool call within a session, given by the caller.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(String);

impl CallId {
    /// Wraps a caller-given id.
    pub fn new(id: impl Into<String>) -> CallId {
        CallId(id.into())
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One tool call proposed by the agent.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    /// The caller's id for this call (unique within the session).
    pub id: CallId,
    /// The tool's name, as the agent sent it.
    pub tool: String,
    /// The arguments, as the agent sent them.
    pub args: serde_json::Value,
    /// The session clock when the call was made, in milliseconds since the
    /// Unix epoch: what rules read as `now`. The core never reads a clock;
    /// the engine sets this from its own (or a replay from the trace), and
    /// records it with the decision so a replay decides the same way. A rule
    /// that reads `now` when it is unset fails, and so blocks.
    pub now_ms: Option<i64>,
    /// The agent's own summary of the conversation so far, if it sends one
    /// with the call. An escalation of this call puts it in the handoff
    /// beside the summary compiled from the session (never instead of it).
    pub summary: Option<String>,
    /// What the client (not the model) says about where the call is made:
    /// for a coding agent's hook, `cwd` (the working directory) and
    /// `project_dir` (the project the session runs in). Rules read it as
    /// `context.<field>`; it is journaled with the call, so a replay decides
    /// the same. `None`: the caller gave none (rules see an empty map).
    pub context: Option<serde_json::Value>,
}

impl ToolCall {
    /// A call with the given id, tool and arguments, and no clock.
    pub fn new(id: impl Into<String>, tool: impl Into<String>, args: serde_json::Value) -> ToolCall {
        ToolCall { id: CallId::new(id), tool: tool.into(), args, now_ms: None, summary: None, context: None }
    }

    /// The same call, with the agent's summary of the conversation so far.
    #[must_use]
    pub fn with_summary(mut self, summary: impl Into<String>) -> ToolCall {
        self.summary = Some(summary.into());
        self
    }

    /// The same call, with what the client says about where it is made
    /// (`{"cwd": ..., "project_dir": ...}`), read by rules as `context`.
    #[must_use]
    pub fn with_context(mut self, context: serde_json::Value) -> ToolCall {
        self.context = Some(context);
        self
    }

    /// The same call, made at `now_ms` (milliseconds since the Unix epoch).
    #[must_use]
    pub fn at(mut self, now_ms: i64) -> ToolCall {
        self.now_ms = Some(now_ms);
        self
    }
}

/// One line of the session's recent history, for handoffs.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    /// The call's id.
    pub call: CallId,
    /// The tool called.
    pub tool: String,
    /// `allow`, `block`, `escalate`, `result`, `failed` or `withheld`.
    pub event: &'static str,
    /// A one-line description.
    pub summary: String,
}

impl HistoryEntry {
    /// The entry as one line: `call-3 get_customer allow: allowed`.
    pub fn line(&self) -> String {
        format!("{} {} {}: {}", self.call, self.tool, self.event, self.summary)
    }
}
