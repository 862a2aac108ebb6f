//! Investigations: child sessions opened for the concerns of one
//! multi-concern request. This is what a session knows of its own place in
//! a case: the concern it investigates and its tools (`Scope`), how it
//! ended (`Ending`), and the investigations it opened (`Opened`). The
//! session state holds these; what a decision knows of the rest of the case
//! is `case`, and the join of ended investigations is `join`.

use crate::decision::Reason;

/// What a child session investigates: set by its first journal entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Scope {
    pub concern: String,
    /// The tools the investigation may call; `None`: every tool.
    pub tools: Option<Vec<String>>,
}

/// How an investigation ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Ending {
    /// The agent concluded it with an outcome.
    Resolved {
        /// The outcome, in the agent's words.
        outcome: String,
    },
    /// One of its calls was escalated: a human takes this concern over.
    Escalated {
        /// The escalation's reasons (rule and sentence).
        reasons: Vec<Reason>,
        /// The escalation's urgency.
        urgency: String,
        /// What the human should do.
        recommended_action: String,
    },
}

/// One investigation a parent session opened: its concern id, its session.
#[derive(Clone, Debug, PartialEq)]
pub struct Opened {
    /// The concern's id, as the agent named it (`refund-a`).
    pub concern_id: String,
    /// The child session's id (`{parent}:{concern id}`).
    pub session: String,
    /// The concern, in the agent's words.
    pub concern: String,
}
