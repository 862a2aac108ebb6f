//! A decision is a value: allow, block with reasons, or escalate with a
//! handoff. Each variant carries exactly the data that makes sense for it.

use crate::call::{CallId, HistoryEntry};
use crate::value::{Value, compact_json};
use std::sync::Arc;

/// The three verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// The call may run.
    Allow,
    /// The call may not run; the agent is told why.
    Block,
    /// The call does not run; a human takes over.
    Escalate,
}

impl Verdict {
    /// `allow`, `block` or `escalate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Block => "block",
            Verdict::Escalate => "escalate",
        }
    }
}

/// The stage of evaluation that produced a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// The tool is unknown or a limit was exceeded.
    Admission,
    /// The arguments violate the tool's JSON Schema.
    Schema,
    /// A prerequisite fact is missing or does not match the call.
    Gates,
    /// A check rule failed.
    Checks,
    /// An escalation rule could not be evaluated, or the handoff is incomplete.
    Escalation,
}

impl Stage {
    /// The stage's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Admission => "admission",
            Stage::Schema => "schema",
            Stage::Gates => "gates",
            Stage::Checks => "checks",
            Stage::Escalation => "escalation",
        }
    }
}

/// Why a call was blocked or escalated: the rule and a sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    /// The rule's id (`process_refund.checks.1`, or one the workflow gives).
    pub rule_id: String,
    /// What is wrong, phrased for the agent.
    pub message: String,
}

/// A prerequisite the call lacks, and what the agent can do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// The fact that is missing.
    pub fact: String,
    /// The instance, for keyed facts.
    pub key: Option<String>,
    /// What to do: "verify the customer with get_customer first".
    pub action: String,
    /// A call already allowed that may establish it, once its result is in.
    pub pending_call: Option<CallId>,
}

/// The decision for an allowed call.
#[derive(Clone, Debug, PartialEq)]
pub struct Allowed {
    /// For side-effecting tools: the key the tool must be run under so that a
    /// retry never repeats the effect.
    pub idempotency_key: Option<String>,
    /// A call that needed a person runs because one approved it: the call
    /// whose handoff holds the approval (used up by this call).
    pub approved_by: Option<CallId>,
    /// The handoff tool's call runs, and its handoff goes to the queue.
    pub handoff: Option<Box<Handoff>>,
}

impl Allowed {
    /// An allowed call with nothing but (for a side effect) its key.
    pub fn plain(idempotency_key: Option<String>) -> Allowed {
        Allowed { idempotency_key, approved_by: None, handoff: None }
    }
}

/// The decision for a blocked call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// The first stage that failed.
    pub stage: Stage,
    /// Every reason found in that stage.
    pub reasons: Vec<Reason>,
    /// Missing prerequisites (gates stage only).
    pub missing: Vec<Missing>,
}

/// The decision for an escalated call.
#[derive(Clone, Debug, PartialEq)]
pub struct Escalation {
    /// The escalation rules that matched (or the handoff tool's request).
    pub reasons: Vec<Reason>,
    /// The highest urgency among them.
    pub urgency: String,
    /// What the human should do.
    pub recommended_action: String,
    /// The handoff record compiled from the session.
    pub handoff: Handoff,
}

/// What a human receives.
#[derive(Clone, Debug, PartialEq)]
pub struct Handoff {
    /// The verified customer's id.
    pub customer_id: Option<String>,
    /// What happened in the conversation.
    pub conversation_summary: String,
    /// Why the case is with a human: the rule and its inputs.
    pub root_cause: String,
    /// What the human should do.
    pub recommended_action: String,
    /// How soon.
    pub urgency: String,
    /// Everything the session established.
    pub facts: Vec<FactSnapshot>,
    /// Recent calls with their outcomes, oldest first.
    pub timeline: Vec<Arc<HistoryEntry>>,
    /// Calls allowed whose results are still outstanding.
    pub pending_calls: Vec<CallId>,
}

/// One fact instance as the session held it when the handoff was made.
/// Shares its data with the session state, so a handoff is cheap to make.
#[derive(Clone, Debug, PartialEq)]
pub struct FactSnapshot {
    /// The fact's name.
    pub fact: Arc<str>,
    /// Its key, for keyed facts.
    pub key: Option<Arc<str>>,
    /// Its fields.
    pub fields: Value,
}

impl FactSnapshot {
    /// The fact as one line: `order[#W1] = {"total":84.5,...}`.
    pub fn line(&self) -> String {
        let fields = compact_json(&self.fields.to_json());
        match &self.key {
            Some(key) => format!("{}[{key}] = {fields}", self.fact),
            None => format!("{} = {fields}", self.fact),
        }
    }
}

/// The decision on one tool call.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Run the call.
    Allow(Allowed),
    /// Do not run the call; tell the agent why.
    Block(Blocked),
    /// Do not run the call; hand the case to a human.
    Escalate(Box<Escalation>),
}

impl Decision {
    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        match self {
            Decision::Allow(_) => Verdict::Allow,
            Decision::Block(_) => Verdict::Block,
            Decision::Escalate(_) => Verdict::Escalate,
        }
    }

    /// The reasons (empty for an allow).
    pub fn reasons(&self) -> &[Reason] {
        match self {
            Decision::Allow(_) => &[],
            Decision::Block(blocked) => &blocked.reasons,
            Decision::Escalate(escalation) => &escalation.reasons,
        }
    }

    /// The ids of the rules behind the decision.
    pub fn rule_ids(&self) -> Vec<&str> {
        self.reasons().iter().map(|r| r.rule_id.as_str()).collect()
    }

    pub(crate) fn block(stage: Stage, reasons: Vec<Reason>, missing: Vec<Missing>) -> Decision {
        Decision::Block(Blocked { stage, reasons, missing })
    }
}
