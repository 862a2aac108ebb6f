//! What the multi-concern case tells its caller: events as they happen and
//! the case's result at the end.

use serde_json::Value as Json;
use tollgate_core::{Decision, Effect, Ending, Join, ToolCall, Verdict};

/// What happens in the case, in order. Progress steps of the investigations
/// interleave as their tasks commit; a branch's timeline comes once every
/// branch is done, in the order the concerns were opened.
#[derive(Clone, Debug)]
pub enum Event {
    /// The case starts (once its store, session and ledger are open).
    Started {
        /// The parent session.
        parent: String,
        /// Whether it is new or continues an earlier run.
        start: Start,
    },
    /// The parent session made a call and the engine decided it.
    ParentCalled {
        /// Before the investigations run, or after they are joined.
        phase: Phase,
        /// The tool called.
        tool: String,
        /// The decision.
        decision: Decision,
        /// In this run, or in an earlier one.
        origin: Origin,
    },
    /// The parent has its investigations (opened now or in an earlier run).
    Opened {
        /// Their sessions, in the order the concerns were given.
        sessions: Vec<String>,
    },
    /// A step was committed (or a side effect executed) just now.
    Progress(Progress),
    /// An investigation's timeline, once every investigation is done.
    Branch(Timeline),
    /// The investigations are joined.
    Joined {
        /// The join: each concern's finding, and the joined handoff if any
        /// concern needs a human.
        join: Join,
        /// Joined in this run, or in an earlier one (given back unchanged).
        origin: Origin,
    },
}

/// Whether a case is new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The parent session was created by this run.
    New,
    /// The parent session existed: this run continues where one stopped.
    Continued,
}

/// When the parent makes a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the investigations run (verifying, answering too early).
    BeforeFanOut,
    /// After the join (the reply that closes the case).
    AfterJoin,
}

/// When something was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// In this run.
    ThisRun,
    /// In an earlier run that stopped; the engine gave back what it recorded.
    BeforeRestart,
}

/// A step as it happens, in the session it happened in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The session.
    pub session: String,
    /// What happened.
    pub step: Step,
}

/// What a progress step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A call was decided (not one decided in an earlier run).
    Decided {
        /// The call's id.
        call_id: String,
        /// The verdict.
        verdict: Verdict,
    },
    /// The backend executed a side effect and wrote it to its ledger; its
    /// result is not recorded yet.
    Executed {
        /// The side effect's idempotency key.
        key: String,
    },
    /// A call's result was recorded.
    Recorded {
        /// The call's id.
        call_id: String,
    },
    /// The parent opened its investigations.
    Opened,
    /// An investigation was concluded.
    Concluded,
    /// The parent's investigations were joined.
    Joined,
}

/// One investigation's run, in this process.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// The concern's id (`refund`, `address`, `charge`).
    pub concern_id: String,
    /// The investigation's session.
    pub session: String,
    /// How long the branch took in this run.
    pub elapsed_ms: u128,
    /// What it did, in order.
    pub entries: Vec<Entry>,
}

/// One line of a timeline: when, since the investigations started, and what.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Milliseconds since the investigations started.
    pub at_ms: u128,
    /// What happened.
    pub happened: Happened,
}

/// What happened in an investigation.
#[derive(Clone, Debug)]
pub enum Happened {
    /// The investigation had ended in an earlier run; nothing ran again.
    EndedBefore(Ending),
    /// The agent made a call and the engine decided it.
    Called {
        /// The call.
        call: ToolCall,
        /// The decision.
        decision: Decision,
        /// Decided in this run, or in an earlier one.
        origin: Origin,
    },
    /// An allowed call ran and its result was recorded.
    Answered {
        /// The tool's answer (for a failure, its message as a JSON string).
        result: Json,
        /// What recording it did to the session.
        effects: Vec<Effect>,
        /// Whether it ran for the first time or was re-driven.
        attempt: Attempt,
    },
    /// A call escalated: a human takes the concern over.
    HandedOver {
        /// What the human should do.
        recommended_action: String,
    },
    /// The agent concluded the investigation.
    Concluded {
        /// The outcome.
        outcome: String,
    },
}

/// Whether an allowed call ran for the first time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Decided and run in this run.
    First,
    /// Allowed in an earlier run that stopped before its result was
    /// recorded (in doubt): run again under its idempotency key, so the
    /// backend answers a side effect from its ledger instead of repeating it.
    ReDriven,
}

/// How the case ended.
#[derive(Clone, Debug)]
pub struct Case {
    /// The parent session.
    pub parent: String,
    /// The join of its investigations.
    pub join: Join,
    /// Wall time of the investigations, run concurrently, in this run.
    pub wall_ms: u128,
    /// The investigations' times added up: what running them one after
    /// another would have cost.
    pub branches_sum_ms: u128,
    /// The slowest investigation's time.
    pub slowest_branch_ms: u128,
}
