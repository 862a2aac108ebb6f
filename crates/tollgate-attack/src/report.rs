//! What a hunt tried and found, as data. `Display` renders it as the text
//! `tollgate attack` prints: a header of counts, then each finding with its
//! minimised sequence in the script format `tollgate run` reads.

use serde_json::json;
use std::fmt;
use tollgate_core::ToolOutcome;
use tollgate_protocol::script::Step;

/// The outcome of a hunt. Everything in it follows from the input: the same
/// workflow, traces and seed give an equal report.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The workflow's declared name.
    pub workflow_name: String,
    /// The workflow's declared version.
    pub workflow_version: u32,
    /// The last part of the workflow's file name (`support-refunds.toml`).
    pub workflow_file: String,
    /// The seed the attempts were drawn with.
    pub seed: u64,
    /// The sessions the hunt started from.
    pub start: Start,
    /// How many invariants the workflow declares.
    pub declared_invariants: usize,
    /// How many invariants are built in ([`crate::BUILT_IN`]).
    pub built_in_invariants: usize,
    /// Attempts on the core.
    pub attempts: u64,
    /// Attempts through the engine.
    pub engine_attempts: u64,
    /// What the core decided over all core attempts.
    pub core: CoreTally,
    /// What the engine did over all engine attempts.
    pub engine: EngineTally,
    /// How often each mutation changed a core attempt, in the hunter's order.
    pub mutations: Vec<MutationCount>,
    /// Bypasses, one per invariant broken (ordered by invariant id), then the
    /// first engine error, if any.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether anything got through or failed: what makes `tollgate attack` exit 1.
    pub fn found_anything(&self) -> bool {
        !self.findings.is_empty()
    }

    /// Attempts on the core and through the engine together.
    pub fn total_attempts(&self) -> u64 {
        self.attempts + self.engine_attempts
    }
}

/// Where the starting sessions came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// Sessions generated from the tool schemas and fact mappings.
    Generated {
        /// How many.
        sessions: usize,
    },
    /// Sessions read from traces, kept where the workflow allows them.
    Recorded {
        /// How many were kept.
        sessions: usize,
        /// The traces' name, as given.
        file: String,
        /// How they were read: `script lines`, or the trace formats seen (`tau traces`).
        format: String,
        /// The domain whose sessions were kept, when the traces name domains.
        domain: Option<String>,
        /// Sessions of other domains, skipped.
        other_domain: usize,
        /// Sessions without a single agent call, skipped.
        no_calls: usize,
        /// Sessions calling a tool the workflow does not declare, skipped.
        unknown_tools: usize,
        /// Sessions whose first call the workflow blocks, skipped.
        refused_first: usize,
        /// Sessions cut before a call the workflow blocks.
        cut: usize,
    },
}

impl Start {
    /// How many sessions the hunt started from.
    pub fn sessions(&self) -> usize {
        match self {
            Start::Generated { sessions } | Start::Recorded { sessions, .. } => *sessions,
        }
    }
}

/// Counts over the attempts on the core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreTally {
    /// Calls decided.
    pub decided: u64,
    /// Calls allowed.
    pub allowed: u64,
    /// Calls blocked.
    pub blocked: u64,
    /// Calls escalated.
    pub escalated: u64,
    /// Allowed calls the oracle judged.
    pub judged: u64,
}

/// Counts over the attempts through the engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineTally {
    /// Calls the engine decided (re-sent ones included).
    pub decided: u64,
    /// Results recorded (counted or not).
    pub results: u64,
    /// Re-sent calls answered with their recorded decision.
    pub replayed: u64,
    /// Call ids refused (reused for another call, or not an id at all).
    pub reused_refused: u64,
    /// Attempts ended by an engine error (the first is a finding).
    pub errors: u64,
}

/// How often one mutation changed an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MutationCount {
    /// The mutation (`swap-ids`).
    pub name: &'static str,
    /// Attempts it changed.
    pub count: u64,
}

/// Something that got through, or failed, with the sequence that shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// What was found.
    pub kind: FindingKind,
    /// The attempt that found it, from 1 (engine attempts count from 1 too).
    pub attempt: u64,
    /// Whether the core or the engine was attacked.
    pub via: Via,
    /// The starting session the attempt mutated.
    pub session: String,
    /// The mutations the attempt made, in order.
    pub mutations: Vec<&'static str>,
    /// How many steps the attempt had before it was minimised.
    pub original_steps: usize,
    /// The sequence that shows it (minimised for a bypass), in the script
    /// format [`step_line`] writes.
    pub steps: Vec<Step>,
    /// The index in `steps` of the call that got through, or of the step that failed.
    pub at: usize,
}

/// What a finding is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FindingKind {
    /// An invariant was broken by an allowed call (or a recorded result).
    Bypass {
        /// The invariant's id (declared, or one of [`crate::BUILT_IN`]).
        invariant: String,
        /// Its message and what the oracle saw.
        message: String,
    },
    /// The engine answered a step of an engine attempt with an error instead
    /// of a decision or a recorded result: the hunt cannot judge what it
    /// cannot see, so it fails closed. The first one met is reported.
    EngineError {
        /// The engine's error, as its `Display` says it.
        message: String,
    },
}

/// Which side a finding was found on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The pure core (`decide` and `apply`).
    Core,
    /// The engine, on a temporary SQLite file.
    Engine,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Via::Core => "the core",
            Via::Engine => "the engine",
        })
    }
}

impl fmt::Display for Start {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Start::Recorded {
            sessions,
            file,
            format,
            domain,
            other_domain,
            no_calls,
            unknown_tools,
            refused_first,
            cut,
        } = self
        else {
            return write!(f, "{} sessions generated from the tool schemas and fact mappings", self.sessions());
        };
        let domain = domain.as_ref().map_or_else(String::new, |d| format!(", domain {d}"));
        write!(f, "{sessions} sessions from {file} ({format}{domain})")?;
        let skipped = [
            (other_domain, "of other domains"),
            (no_calls, "without an agent call"),
            (unknown_tools, "calling tools the workflow does not declare"),
            (refused_first, "whose first call the workflow blocks"),
        ];
        let mut left: Vec<String> =
            skipped.iter().filter(|(n, _)| **n > 0).map(|(n, what)| format!("{n} skipped {what}")).collect();
        if *cut > 0 {
            left.push(format!("{cut} cut before a call the workflow blocks"));
        }
        if !left.is_empty() {
            write!(f, "; {}", left.join(", "))?;
        }
        Ok(())
    }
}

/// The report as `tollgate attack` prints it, without a final newline.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "tollgate attack: {} v{} ({}), seed {}",
            self.workflow_name, self.workflow_version, self.workflow_file, self.seed
        )?;
        writeln!(f, "  starting from: {}", self.start)?;
        writeln!(
            f,
            "  oracle: {} declared invariant(s), {} built in",
            self.declared_invariants, self.built_in_invariants
        )?;
        writeln!(f, "  attempts: {} on the core, {} through the engine", self.attempts, self.engine_attempts)?;
        let core = &self.core;
        writeln!(
            f,
            "  core decisions: {} ({} allowed and judged, {} blocked, {} escalated)",
            core.decided, core.judged, core.blocked, core.escalated
        )?;
        let engine = &self.engine;
        write!(
            f,
            "  engine: {} decisions, {} results, {} re-sent calls answered from the journal, {} reused ids refused",
            engine.decided, engine.results, engine.replayed, engine.reused_refused
        )?;
        if engine.errors > 0 {
            write!(f, ", {} attempt(s) ended by an engine error", engine.errors)?;
        }
        writeln!(f)?;
        let mix: Vec<String> = self.mutations.iter().map(|m| format!("{} {}", m.name, m.count)).collect();
        writeln!(f, "  mutations: {}", mix.join(", "))?;
        if self.findings.is_empty() {
            return write!(f, "no bypass found in {} attempts", self.total_attempts());
        }
        for finding in &self.findings {
            writeln!(f)?;
            write!(f, "{finding}")?;
        }
        writeln!(f)?;
        let bypasses = self.findings.iter().filter(|f| matches!(f.kind, FindingKind::Bypass { .. })).count();
        let also = if bypasses < self.findings.len() { " and an engine error" } else { "" };
        write!(f, "{bypasses} bypass(es){also} found in {} attempts", self.total_attempts())
    }
}

/// A finding as the report shows it: what, how it was found, and its steps,
/// one line each (every line ends with a newline).
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let via = if self.mutations.is_empty() {
            "the trace as recorded".to_owned()
        } else {
            format!("mutations {}", self.mutations.join(", "))
        };
        let found = format!("found by attempt {} through {} (session {}, {via})", self.attempt, self.via, self.session);
        match &self.kind {
            FindingKind::Bypass { invariant, message } => {
                writeln!(f, "BYPASS {invariant}: {message}")?;
                writeln!(
                    f,
                    "  {found}; minimised from {} to {} steps; step {} got through:",
                    self.original_steps,
                    self.steps.len(),
                    self.at + 1
                )?;
            }
            FindingKind::EngineError { message } => {
                writeln!(f, "ENGINE ERROR: {message}")?;
                writeln!(f, "  {found}; step {} of {} failed:", self.at + 1, self.original_steps)?;
            }
        }
        for step in &self.steps {
            writeln!(f, "  {}", step_line(step))?;
        }
        Ok(())
    }
}

/// A step in the script format `tollgate run` reads, on one line.
pub fn step_line(step: &Step) -> String {
    match step {
        Step::Call(call) => match call.now_ms {
            Some(now) => json!({"call": {"id": call.id.as_str(), "tool": call.tool, "args": call.args, "now": now}}),
            None => json!({"call": {"id": call.id.as_str(), "tool": call.tool, "args": call.args}}),
        }
        .to_string(),
        Step::Result { call, result, outcome: ToolOutcome::Failed } => {
            json!({"result": {"id": call.as_str(), "error": result}}).to_string()
        }
        Step::Result { call, result, .. } => json!({"result": {"id": call.as_str(), "result": result}}).to_string(),
    }
}
