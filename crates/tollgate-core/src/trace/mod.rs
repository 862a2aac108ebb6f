//! Recorded agent traces and their replay: what the agent called, with the
//! results its tools really returned, decided again under a workflow ("what
//! would Tollgate have stopped?").
//!
//! [`parse`] reads the text of a file the caller has read (no I/O here) in
//! one of four formats, detected automatically: the τ-bench trace lines of
//! `shared/tau/FORMAT.md`, OpenAI chat-completions transcripts, Anthropic
//! Messages transcripts and Claude Code's session transcripts (its JSONL,
//! subagents' entries included).
//! A replayed call's tool is the workflow's name for the client's
//! (`[tool_names]`), as the hook and the gateway map it live. [`replay`] decides every call of a trace with
//! [`decide`], folds the decision in with [`apply`], and feeds an allowed
//! call its recorded result, so facts evolve as they did when the trace was
//! recorded. [`compare`] checks the outcome against the trace's `expect`.

mod chat;
mod parse;
mod time;

use crate::apply::{Effect, Event, ToolOutcome, apply};
use crate::call::ToolCall;
use crate::decide::decide;
use crate::decision::{Decision, Reason, Verdict};
use crate::limits::json_bytes;
use crate::state::SessionState;
use crate::value::Value;
use crate::workflow::Workflow;
use serde_json::Value as Json;

pub use parse::{ParseError, parse};
pub use time::SessionTime;

/// The input format a trace was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// τ-bench trace lines (`{"id", "events": [{"call": ...}], "expect"}`).
    Tau,
    /// OpenAI chat completions: assistant `tool_calls` and `tool` messages.
    OpenAi,
    /// Anthropic Messages: `tool_use` and `tool_result` content blocks.
    Anthropic,
    /// Claude Code's session transcript: one entry a line (`type`,
    /// `sessionId`, `timestamp`, `message`), Anthropic messages inside.
    ClaudeCode,
}

impl Format {
    /// The format's short name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Tau => "tau",
            Format::OpenAi => "openai",
            Format::Anthropic => "anthropic",
            Format::ClaudeCode => "claude-code",
        }
    }
}

/// One recorded session.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// The trace's id (from the input, else the caller's name plus the line).
    pub id: String,
    /// The domain (`retail`, `airline`, `telecom`), when the trace says.
    pub domain: Option<String>,
    /// The session clock the trace was recorded under, when it says.
    pub now: Option<SessionTime>,
    /// Tool calls and user actions, in order; indexes count positions here.
    pub events: Vec<TraceEvent>,
    /// What a correct workflow must decide, when the trace says.
    pub expect: Option<Expect>,
    /// The format it was read from.
    pub format: Format,
}

/// One event of a trace.
#[derive(Clone, Debug, PartialEq)]
pub enum TraceEvent {
    /// The agent called a tool: decided by the workflow.
    Call(RecordedCall),
    /// The customer did something on their own device (τ² telecom): not an
    /// agent's call, never gated; kept so that indexes line up.
    UserAction(RecordedCall),
}

impl TraceEvent {
    /// The call or action.
    pub fn call(&self) -> &RecordedCall {
        match self {
            TraceEvent::Call(call) | TraceEvent::UserAction(call) => call,
        }
    }
}

/// A tool call (or user action) with what it returned.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedCall {
    /// The call's id in the transcript (a `tool_use` block's id, an OpenAI
    /// tool call's id), when it has one: what the client's hook saw.
    pub source_id: Option<String>,
    /// What the client said about where the call ran (`context` in rules),
    /// when the transcript records it (Claude Code's: the working directory,
    /// the project directory, the subagent).
    pub context: Option<Json>,
    /// The tool's name.
    pub tool: String,
    /// The arguments, as sent.
    pub arguments: Json,
    /// What came back.
    pub outcome: Recorded,
}

/// What a recorded call returned.
#[derive(Clone, Debug, PartialEq)]
pub enum Recorded {
    /// The tool's result (parsed as JSON when it was JSON text).
    Result(Json),
    /// The tool failed with this text.
    Error(String),
    /// The transcript holds no result for the call (it ends there).
    Missing,
}

/// What a trace says a correct workflow decides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// The indexes of the calls that must be blocked or escalated; every
    /// other call must be allowed.
    pub blocked_indexes: Vec<usize>,
    /// The policy rules behind those blocks.
    pub rule_ids: Vec<String>,
}

/// The decision on one call of a replayed trace.
#[derive(Clone, Debug, PartialEq)]
pub struct CallOutcome {
    /// The call's index in the trace's events.
    pub index: usize,
    /// The decision before the call ran.
    pub decision: Decision,
    /// Result checks that failed on the recorded result, which was then
    /// withheld from the agent: the call counts as blocked.
    pub withheld: Option<Vec<Reason>>,
}

impl CallOutcome {
    /// The verdict as reported: `block` when the result was withheld.
    pub fn verdict(&self) -> Verdict {
        if self.withheld.is_some() { Verdict::Block } else { self.decision.verdict() }
    }

    /// The reasons behind the reported verdict (empty for an allow).
    pub fn reasons(&self) -> &[Reason] {
        match &self.withheld {
            Some(reasons) => reasons,
            None => self.decision.reasons(),
        }
    }

    /// Whether the call was refused (blocked, withheld or escalated).
    pub fn refused(&self) -> bool {
        self.verdict() != Verdict::Allow
    }
}

/// The reasons of a withheld result among the effects of recording it.
pub fn withheld_reasons(effects: &[Effect]) -> Option<Vec<Reason>> {
    effects.iter().find_map(|effect| match effect {
        Effect::ResultWithheld { reasons, .. } => Some(reasons.clone()),
        _ => None,
    })
}

/// The id a replay gives the call at `index` (trace ids need not be valid
/// call ids, and chat transcripts' own ids are unique only per transcript).
pub fn call_id(index: usize) -> String {
    format!("c{index}")
}

/// The call to decide for the event at `index`, at the session clock, under
/// the workflow's name for the recorded tool.
pub fn tool_call(workflow: &Workflow, index: usize, call: &RecordedCall, now_ms: Option<i64>) -> ToolCall {
    let tool = workflow.resolve_tool_name(&call.tool).to_owned();
    let built = ToolCall::new(call_id(index), tool, call.arguments.clone());
    let built = match &call.context {
        Some(context) => built.with_context(context.clone()),
        None => built,
    };
    at(built, now_ms)
}

/// Sets the session clock on a call. The only place replay does so.
fn at(call: ToolCall, now_ms: Option<i64>) -> ToolCall {
    match now_ms {
        Some(now_ms) => call.at(now_ms),
        None => call,
    }
}

/// How a recorded outcome is fed back: the result and whether it failed.
pub fn recorded_result(outcome: &Recorded) -> Option<(Json, ToolOutcome)> {
    match outcome {
        Recorded::Result(result) => Some((result.clone(), ToolOutcome::Succeeded)),
        Recorded::Error(text) => Some((Json::String(text.clone()), ToolOutcome::Failed)),
        Recorded::Missing => None,
    }
}

/// A trace made ready to replay: every call built with its id and clock,
/// every result converted once to the core's value type (with its size as
/// JSON), so replaying it again and again repeats no conversion.
#[derive(Clone, Debug)]
pub struct Prepared {
    calls: Vec<PreparedCall>,
}

#[derive(Clone, Debug)]
struct PreparedCall {
    index: usize,
    call: ToolCall,
    result: Option<(Value, usize, ToolOutcome)>,
}

impl Prepared {
    /// Prepares `trace` for `workflow` (its own session clock, if any, on
    /// every call).
    pub fn new(workflow: &Workflow, trace: &Trace) -> Prepared {
        let now_ms = trace.now.as_ref().map(|now| now.unix_ms);
        let calls = trace
            .events
            .iter()
            .enumerate()
            .filter_map(|(index, event)| match event {
                TraceEvent::Call(recorded) => Some(PreparedCall {
                    index,
                    call: tool_call(workflow, index, recorded, now_ms),
                    result: recorded_result(&recorded.outcome)
                        .map(|(json, outcome)| (Value::from_json(&json), json_bytes(&json), outcome)),
                }),
                TraceEvent::UserAction(_) => None,
            })
            .collect();
        Prepared { calls }
    }

    /// The number of calls a replay decides.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// Replays the trace in a new session: see [`replay`].
    pub fn replay(&self, workflow: &Workflow) -> Vec<CallOutcome> {
        let mut state = SessionState::new(workflow);
        let mut outcomes = Vec::with_capacity(self.calls.len());
        for prepared in &self.calls {
            let call = &prepared.call;
            let decision = decide(workflow, &state, call);
            apply(workflow, &mut state, Event::Decided { call, decision: &decision });
            let mut withheld = None;
            if decision.verdict() == Verdict::Allow
                && let Some((result, json_bytes, outcome)) = &prepared.result
            {
                let event = Event::ValueRecorded { call: &call.id, result, json_bytes: *json_bytes, outcome: *outcome };
                withheld = withheld_reasons(&apply(workflow, &mut state, event));
            }
            outcomes.push(CallOutcome { index: prepared.index, decision, withheld });
        }
        outcomes
    }
}

/// Replays a trace in a new session, purely: each call is decided at the
/// trace's clock; an allowed call then gets its recorded result (or error)
/// recorded, so facts evolve as they did; a refused call gets nothing. A
/// result that a result check withholds makes that call a block. User
/// actions are skipped. Pure: the same workflow and trace give the same
/// outcomes.
pub fn replay(workflow: &Workflow, trace: &Trace) -> Vec<CallOutcome> {
    Prepared::new(workflow, trace).replay(workflow)
}

/// One way a replay differs from what its trace expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The call's index, or `None` for a difference about the whole trace
    /// (an expected rule that no refusal named).
    pub index: Option<usize>,
    /// The tool called there.
    pub tool: String,
    /// What the trace expects, in words.
    pub expected: String,
    /// What the replay decided, in words.
    pub got: String,
}

/// Whether a decision's rule id stands for an expected policy rule: the
/// same id, or the id followed by `.` or `/` and a sub-part
/// (`A-BAG-ALLOWANCE.free-bags`), so one policy rule may be enforced by
/// several workflow rules.
pub fn rule_matches(expected: &str, got: &str) -> bool {
    got.strip_prefix(expected).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '/']))
}

/// Compares a replay with the trace's `expect` (none: nothing to compare).
///
/// The refused calls (blocked, withheld or escalated) must be exactly the
/// expected indexes, and every expected rule id must be named (see
/// [`rule_matches`]) by a refusal at an expected index, as its rule id or
/// as one of the written policy rules that rule enforces
/// ([`Workflow::policy_refs`]): a violation blocked for another reason, such
/// as a missing read, does not show that the rule it breaks is enforced.
pub fn compare(workflow: &Workflow, trace: &Trace, outcomes: &[CallOutcome]) -> Vec<Difference> {
    let Some(expect) = &trace.expect else { return Vec::new() };
    let tool = |index: usize| trace.events.get(index).map_or("?", |e| e.call().tool.as_str()).to_owned();
    let mut differences = Vec::new();
    for outcome in outcomes {
        let expected = expect.blocked_indexes.contains(&outcome.index);
        if outcome.refused() != expected {
            let mut got = describe(outcome);
            // A refusal of a call the tool itself failed had no effect to
            // prevent; say so, so a reader can weigh the difference.
            if outcome.refused()
                && let Some(TraceEvent::Call(RecordedCall { outcome: Recorded::Error(error), .. })) =
                    trace.events.get(outcome.index)
            {
                got.push_str(&format!("; the tool itself failed this call: {error}"));
            }
            differences.push(Difference {
                index: Some(outcome.index),
                tool: tool(outcome.index),
                expected: if expected { "block or escalate".into() } else { "allow".into() },
                got,
            });
        }
    }
    for &index in &expect.blocked_indexes {
        if !outcomes.iter().any(|o| o.index == index) {
            let what = match trace.events.get(index) {
                Some(TraceEvent::UserAction(_)) => "a user action, which is never decided",
                Some(TraceEvent::Call(_)) => "not decided",
                None => "past the end of the trace",
            };
            differences.push(Difference {
                index: Some(index),
                tool: tool(index),
                expected: "block or escalate".into(),
                got: what.into(),
            });
        }
    }
    let named: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.refused() && expect.blocked_indexes.contains(&o.index))
        .flat_map(|o| o.reasons().iter().map(|r| r.rule_id.as_str()))
        .collect();
    let policies: Vec<&str> = named.iter().flat_map(|rule| workflow.policy_refs(rule)).collect();
    for rule in &expect.rule_ids {
        if !expect.blocked_indexes.is_empty() && !named.iter().chain(&policies).any(|got| rule_matches(rule, got)) {
            differences.push(Difference {
                index: None,
                tool: String::new(),
                expected: format!("a refusal naming rule {rule}"),
                got: if named.is_empty() { "no refusal at the expected indexes".into() } else { named.join(", ") },
            });
        }
    }
    differences.sort_by_key(|d| d.index.unwrap_or(usize::MAX));
    differences
}

fn describe(outcome: &CallOutcome) -> String {
    let rules: Vec<&str> = outcome.reasons().iter().map(|r| r.rule_id.as_str()).collect();
    if rules.is_empty() {
        outcome.verdict().as_str().to_owned()
    } else {
        format!("{} ({})", outcome.verdict().as_str(), rules.join(", "))
    }
}

#[cfg(test)]
mod tests;

/// A tool's response as a client reports it, turned into the result the
/// workflow's fact mappings and result checks read (the hook reads a live
/// `tool_response` with it, a replay of a Claude Code transcript its
/// recorded `toolUseResult`, so both feed the workflow the same data). The
/// clients report it in several shapes: Claude Code gives built-in tools'
/// responses as objects and an MCP tool's as its text content (a JSON
/// string, or a list of content blocks); Codex gives the shell's output as a
/// string and an MCP tool's whole `tools/call` result. Text that is JSON is
/// read as JSON, and an MCP result as its `structuredContent` when it has
/// one, else as its text.
pub fn client_result(response: &Json) -> Json {
    match response {
        Json::String(text) => text_json(text),
        Json::Array(blocks) => blocks_json(blocks).unwrap_or_else(|| response.clone()),
        Json::Object(object) => {
            if let Some(structured) = object.get("structuredContent").filter(|s| !s.is_null()) {
                return structured.clone();
            }
            match object.get("content") {
                Some(Json::Array(blocks))
                    if object.keys().all(|k| matches!(k.as_str(), "content" | "isError" | "_meta")) =>
                {
                    blocks_json(blocks).unwrap_or_else(|| response.clone())
                }
                _ => response.clone(),
            }
        }
        _ => response.clone(),
    }
}

/// Text content blocks, joined and read as JSON if they are; `None` if any
/// block is not text.
fn blocks_json(blocks: &[Json]) -> Option<Json> {
    let mut text = String::new();
    for block in blocks {
        if block.get("type").and_then(Json::as_str) != Some("text") {
            return None;
        }
        text.push_str(block.get("text").and_then(Json::as_str)?);
    }
    Some(text_json(&text))
}

/// Text that is a JSON value is that value; other text stays text.
fn text_json(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_owned()))
}
