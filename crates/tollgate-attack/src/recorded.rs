//! Where the hunter's starting sessions come from: a file of `tollgate run`
//! script lines (`{"session": ...}` between sessions), or recorded agent
//! traces in any format `tollgate_core::trace` reads (τ trace lines, OpenAI
//! and Anthropic transcripts). Either way only sessions the workflow allows
//! are starting points. Traces that name their domain (τ) are kept only
//! for the workflow's domain: the one most of whose sessions call only
//! tools the workflow declares, so one file of several domains seeds each
//! workflow with its own. A session calling a tool the workflow does not
//! declare is skipped, and a session is cut before its first call the
//! workflow blocks (or whose result it withholds), so every starting point
//! is a sequence of calls the workflow allows or escalates to a human.

use crate::corpus::Trace;
use crate::{Error, SourceFile, Start};
use serde_json::Value as Json;
use tollgate_core::trace::{self, TraceEvent};
use tollgate_core::{CallId, Event, SessionState, Verdict, Workflow, apply, decide};
use tollgate_protocol::script::Step;

/// The starting sessions and what was left out of the file.
#[derive(Default)]
pub struct Corpus {
    /// The sessions the workflow allows, as they will be mutated.
    pub traces: Vec<Trace>,
    /// How the file was read: `script lines`, or the trace formats seen.
    pub format: String,
    /// The domain whose sessions were kept, when the traces name domains.
    pub domain: Option<String>,
    /// Sessions of other domains, skipped.
    pub other_domain: usize,
    /// Sessions without a single agent call, skipped.
    pub no_calls: usize,
    /// Sessions skipped because they call a tool the workflow does not declare.
    pub unknown_tools: usize,
    /// Sessions cut before a call the workflow blocks, with calls left.
    pub cut: usize,
    /// Sessions whose first call the workflow blocks: nothing left.
    pub refused_first: usize,
}

/// Reads the traces and keeps what the workflow allows.
pub fn read(file: &SourceFile, workflow: &Workflow) -> Result<Corpus, Error> {
    let text = &file.text;
    let (sessions, format) = if is_script(text) {
        let sessions = read_script(text, &file.name)?.into_iter().map(|trace| (None, trace)).collect();
        (sessions, "script lines".to_owned())
    } else {
        let name = crate::file_name(&file.name);
        let traces =
            trace::parse(text, &name).map_err(|e| Error::Traces { file: file.name.clone(), message: e.to_string() })?;
        let mut formats: Vec<&str> = traces.iter().map(|t| t.format.as_str()).collect();
        formats.sort_unstable();
        formats.dedup();
        let format = format!("{} traces", formats.join(" and "));
        (traces.iter().map(|t| (t.domain.clone(), from_recorded(workflow, t))).collect::<Vec<_>>(), format)
    };
    if sessions.iter().all(|(_, t)| t.steps.is_empty()) {
        return Err(Error::NoCalls { file: file.name.clone() });
    }
    let domain = domain_of(workflow, &sessions);
    let mut corpus = Corpus { traces: Vec::new(), format, domain: domain.clone(), ..Corpus::default() };
    for (session_domain, mut session) in sessions {
        if session_domain.is_some() && session_domain != domain {
            corpus.other_domain += 1;
            continue;
        }
        if !session.steps.iter().any(|s| matches!(s, Step::Call(_))) {
            corpus.no_calls += 1;
            continue;
        }
        if !knows_all(workflow, &session) {
            corpus.unknown_tools += 1;
            continue;
        }
        let allowed = allowed_prefix(workflow, &session.steps);
        let whole = allowed == session.steps.len();
        session.steps.truncate(allowed);
        if !session.steps.iter().any(|s| matches!(s, Step::Call(_))) {
            corpus.refused_first += 1;
            continue;
        }
        if !whole {
            corpus.cut += 1;
        }
        corpus.traces.push(session);
    }
    Ok(corpus)
}

impl Corpus {
    /// What the report says about the starting sessions read from `file`.
    pub fn start(&self, file: &str) -> Start {
        Start::Recorded {
            sessions: self.traces.len(),
            file: file.to_owned(),
            format: self.format.clone(),
            domain: self.domain.clone(),
            other_domain: self.other_domain,
            no_calls: self.no_calls,
            unknown_tools: self.unknown_tools,
            refused_first: self.refused_first,
            cut: self.cut,
        }
    }
}

/// Whether the workflow declares every tool the session calls.
fn knows_all(workflow: &Workflow, session: &Trace) -> bool {
    session.steps.iter().all(|s| !matches!(s, Step::Call(call) if workflow.tool(&call.tool).is_none()))
}

/// The workflow's domain among the traces' (`retail`, `airline`, ...): the
/// one with the most sessions whose calls all name tools the workflow
/// declares (on a tie, the first in alphabetical order). A workflow's tools
/// may overlap another domain's (`get_user_details`, `calculate`,
/// `transfer_to_human_agents`), so sessions of other domains are skipped
/// even when they call only those.
fn domain_of(workflow: &Workflow, sessions: &[(Option<String>, Trace)]) -> Option<String> {
    let mut known: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (domain, session) in sessions {
        if let Some(domain) = domain
            && session.steps.iter().any(|s| matches!(s, Step::Call(_)))
        {
            *known.entry(domain.as_str()).or_default() += usize::from(knows_all(workflow, session));
        }
    }
    let best = known.values().copied().max()?;
    known.into_iter().find(|&(_, count)| count == best).map(|(domain, _)| domain.to_owned())
}

/// Whether the text is `tollgate run` script lines: its first line is a
/// `session`, `call` or `result` object (a recorded trace is never one).
fn is_script(text: &str) -> bool {
    let first = text.lines().find(|line| !line.trim().is_empty()).unwrap_or_default();
    serde_json::from_str::<Json>(first)
        .ok()
        .is_some_and(|json| ["session", "call", "result"].iter().any(|key| json.get(key).is_some()))
}

/// Script lines; a line `{"session": "name"}` starts the next session.
fn read_script(text: &str, file: &str) -> Result<Vec<Trace>, Error> {
    let mut traces: Vec<Trace> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad_line = |message: String| Error::TraceLine { file: file.to_owned(), line: number + 1, message };
        let json: Json = serde_json::from_str(line).map_err(|e| bad_line(format!("malformed JSON: {e}")))?;
        if let Some(name) = json.get("session") {
            let name = name.as_str().map_or_else(|| name.to_string(), str::to_owned);
            traces.push(Trace { name, steps: Vec::new() });
            continue;
        }
        let step = Step::from_json(&json).map_err(bad_line)?;
        if traces.is_empty() {
            traces.push(Trace { name: "session-1".into(), steps: Vec::new() });
        }
        if let Some(trace) = traces.last_mut() {
            trace.steps.push(step);
        }
    }
    Ok(traces)
}

/// A recorded trace as script steps: each call under the id a replay gives
/// it (`c<index>`), at the trace's session clock, followed by its recorded
/// result. User actions are not agent calls and are left out.
fn from_recorded(workflow: &Workflow, recorded: &trace::Trace) -> Trace {
    let now_ms = recorded.now.as_ref().map(|now| now.unix_ms);
    let mut steps = Vec::new();
    for (index, event) in recorded.events.iter().enumerate() {
        let TraceEvent::Call(call) = event else { continue };
        steps.push(Step::Call(trace::tool_call(workflow, index, call, now_ms)));
        if let Some((result, outcome)) = trace::recorded_result(&call.outcome) {
            steps.push(Step::Result { call: CallId::new(trace::call_id(index)), result, outcome });
        }
    }
    Trace { name: recorded.id.clone(), steps }
}

/// How many leading steps the workflow allows: no call among them is
/// blocked and none of their results is withheld.
fn allowed_prefix(workflow: &Workflow, steps: &[Step]) -> usize {
    let mut state = SessionState::new(workflow);
    for (index, step) in steps.iter().enumerate() {
        match step {
            Step::Call(call) => {
                let decision = decide(workflow, &state, call);
                // An escalation is the workflow's own answer (a human takes
                // the case), so the session goes on; a block ends it.
                if decision.verdict() == Verdict::Block {
                    return index;
                }
                apply(workflow, &mut state, Event::Decided { call, decision: &decision });
            }
            Step::Result { call, result, outcome } => {
                let effects = apply(workflow, &mut state, Event::ResultRecorded { call, result, outcome: *outcome });
                if trace::withheld_reasons(&effects).is_some() {
                    // Cut before the call whose result was withheld.
                    return steps
                        .iter()
                        .position(|s| matches!(s, Step::Call(made) if made.id == *call))
                        .map_or(index, |at| at.min(index));
                }
            }
        }
    }
    steps.len()
}
