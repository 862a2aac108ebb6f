//! Attempts through the engine, on a temporary SQLite file: exactly-once is
//! attacked too. The engine attempts re-send a side effect (same call id)
//! after its decision and after its result, reuse a call id for other
//! arguments, and record results twice. Besides the declared invariants
//! (judged on the oracle's own fold of the engine's fresh decisions and of
//! every result sent), the engine must never allow a side-effecting call id
//! twice, never hand out an idempotency key twice, count each result once,
//! and store exactly the state the core folds its decisions to. An engine
//! error in an attempt ends it and is a finding: the hunt cannot judge what
//! the engine would not answer.

use crate::corpus::Trace;
use crate::fold::Fold;
use crate::minimise::minimise;
use crate::mutate::{Ids, MUTATIONS, Mutator};
use crate::oracle::{self, Broken, Oracle};
use crate::rng::Rng;
use crate::{EngineTally as Tally, Error, Finding, FindingKind, SourceFile, Via, identities, identity_changed};
use std::collections::{BTreeMap, BTreeSet};
use tollgate_core::{Event, SessionState, ToolCall, Verdict, Workflow, apply};
use tollgate_engine::{Clock, Engine, WorkflowHandle};
use tollgate_protocol::script::Step;

/// The engine's time for calls without one: 2024-01-01T00:00:00Z.
const ENGINE_CLOCK_MS: i64 = 1_704_067_200_000;

/// An error setting up the engine attempts.
fn setup(what: &str) -> impl FnOnce(tollgate_engine::Error) -> Error + '_ {
    move |error| Error::EngineSetup { what: what.to_owned(), message: error.to_string() }
}

/// What one run of a sequence through the engine came to.
enum Run {
    /// Nothing broke.
    Held,
    /// An invariant broke at this step.
    Broken(usize, Broken),
    /// The engine answered this step with an error: its text. The engine's
    /// error type is being reworked into kinds; every kind is a finding alike.
    Failed(usize, String),
}

/// A bypass an attempt found, minimised.
struct Bypass {
    broken: Broken,
    /// The minimised steps.
    steps: Vec<Step>,
    /// The step that got through.
    at: usize,
}

/// A run the engine failed: its steps, the step it answered with an error, the error.
struct Failure {
    steps: Vec<Step>,
    at: usize,
    error: String,
}

/// The engine-side mutations.
const ENGINE_MUTATIONS: [&str; 4] =
    ["resend-after-decision", "resend-after-result", "reuse-call-id", "record-result-twice"];

struct Durable<'a> {
    runtime: tokio::runtime::Runtime,
    engine: Engine,
    handle: WorkflowHandle,
    workflow: &'a Workflow,
    oracle: &'a Oracle,
    sessions: u64,
}

/// Runs `attempts` engine attempts, adding the bypasses they find to
/// `findings`; returns the engine's counts and the first engine error met,
/// as a finding.
pub fn hunt(
    file: &SourceFile,
    workflow: &Workflow,
    oracle: &Oracle,
    mutator: &Mutator<'_>,
    rng: &mut Rng,
    attempts: u64,
    findings: &mut BTreeMap<String, Finding>,
) -> Result<(Tally, Option<Finding>), Error> {
    if attempts == 0 {
        return Ok((Tally::default(), None));
    }
    let dir = std::env::temp_dir().join(format!("tollgate-attack-{}-{}", std::process::id(), rng.next_u64()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::EngineSetup { what: format!("cannot create {}", dir.display()), message: e.to_string() })?;
    let outcome = (|| {
        // A runtime of its own: the library is called from plain threads.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::EngineSetup { what: "no async runtime".into(), message: e.to_string() })?;
        let url = dir.join("attack.db").display().to_string();
        // A fixed clock for calls that carry no time of their own: the
        // output must follow from the seed, not from when it runs.
        let engine = runtime.block_on(Engine::open(&url)).map_err(setup("cannot open the store"))?;
        let engine = engine.with_clock(Clock::Fixed(ENGINE_CLOCK_MS));
        let handle = runtime
            .block_on(engine.register_workflow(&file.text, &file.name))
            .map_err(setup("cannot register the workflow"))?;
        let mut durable = Durable { runtime, engine, handle, workflow, oracle, sessions: 0 };
        let mut tally = Tally::default();
        let mut engine_error: Option<Finding> = None;
        for attempt in 0..attempts {
            let (steps, mutations, origin) = sequence(mutator, mutator.traces, rng);
            let found = |kind, steps: Vec<Step>, at| Finding {
                kind,
                attempt: attempt + 1,
                via: Via::Engine,
                mutations: mutations.clone(),
                session: origin.clone(),
                original_steps: steps.len(),
                steps,
                at,
            };
            let (bypass, failure) = durable.attempt(&steps, findings, &mut tally);
            if let Some(Bypass { broken, steps: minimal, at }) = bypass {
                let kind = FindingKind::Bypass { invariant: broken.invariant.clone(), message: broken.message };
                findings.insert(broken.invariant, Finding { original_steps: steps.len(), ..found(kind, minimal, at) });
            }
            if let Some(Failure { steps: failed, at, error }) = failure {
                tally.errors += 1;
                // The steps after the one that failed never ran.
                let ran = failed.get(..=at).map_or_else(|| failed.clone(), <[Step]>::to_vec);
                let kind = FindingKind::EngineError { message: error };
                engine_error.get_or_insert(Finding { original_steps: failed.len(), ..found(kind, ran, at) });
            }
        }
        durable.runtime.block_on(durable.engine.close());
        Ok((tally, engine_error))
    })();
    std::fs::remove_dir_all(&dir).ok();
    outcome
}

/// A trace, mutated as on the core, then attacked on exactly-once.
fn sequence(mutator: &Mutator<'_>, traces: &[Trace], rng: &mut Rng) -> (Vec<Step>, Vec<&'static str>, String) {
    let trace = rng.pick(traces);
    let origin = trace.map(|t| t.name.clone()).unwrap_or_default();
    let mut steps = trace.map(|t| t.steps.clone()).unwrap_or_default();
    let mut ids = Ids::new();
    let mut mutations = Vec::new();
    for _ in 0..rng.below(3) {
        let which = rng.below(MUTATIONS.len());
        if mutator.apply(rng, &mut ids, &mut steps, which)
            && let Some(name) = MUTATIONS.get(which)
        {
            mutations.push(*name);
        }
    }
    for _ in 0..1 + rng.below(2) {
        let which = rng.below(ENGINE_MUTATIONS.len());
        if engine_mutation(mutator, rng, &mut steps, which)
            && let Some(name) = ENGINE_MUTATIONS.get(which)
        {
            mutations.push(*name);
        }
    }
    (steps, mutations, origin)
}

fn engine_mutation(mutator: &Mutator<'_>, rng: &mut Rng, steps: &mut Vec<Step>, which: usize) -> bool {
    let calls: Vec<(usize, ToolCall)> = steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| if let Step::Call(c) = s { Some((i, c.clone())) } else { None })
        .collect();
    let effects: Vec<(usize, ToolCall)> = calls
        .iter()
        .filter(|(_, c)| mutator.workflow.tool(&c.tool).is_some_and(|t| t.is_side_effect()))
        .cloned()
        .collect();
    let pool = if effects.is_empty() { &calls } else { &effects };
    let Some((index, call)) = rng.pick(pool).cloned() else { return false };
    let result_at = steps.iter().position(|s| matches!(s, Step::Result { call: id, .. } if *id == call.id));
    match which {
        0 => steps.insert(index + 1, Step::Call(call)),
        1 => {
            let at = result_at.map_or(steps.len(), |r| r + 1);
            steps.insert(at.min(steps.len()), Step::Call(call));
        }
        2 => {
            // The same id for another call: other arguments, or another tool's.
            let Some((_, other)) = rng.pick(&calls).cloned() else { return false };
            let mut reused = ToolCall { id: call.id.clone(), ..other };
            if reused.args == call.args
                && reused.tool == call.tool
                && let serde_json::Value::Object(object) = &mut reused.args
            {
                object.insert("reason".into(), serde_json::Value::String("again".into()));
            }
            let at = result_at.map_or(index + 1, |r| r + 1);
            steps.insert(at.min(steps.len()), Step::Call(reused));
        }
        _ => {
            let Some(at) = result_at else { return false };
            let Some(step) = steps.get(at).cloned() else { return false };
            steps.push(step);
        }
    }
    true
}

/// What a run through the engine keeps beside it.
struct Watch<'o> {
    /// The core's fold of the engine's fresh decisions and first results:
    /// what the engine's stored state must equal.
    shadow: SessionState,
    /// The oracle's own fold of the same events: what invariants are judged by.
    fold: Fold<'o>,
    /// The idempotency key each allowed call id was given.
    keys: BTreeMap<String, Option<String>>,
    /// Idempotency keys handed out for execution.
    executed: BTreeSet<String>,
    /// Calls whose result the engine counted.
    recorded: BTreeSet<String>,
}

impl Durable<'_> {
    /// One attempt: runs `steps` and, if they break an invariant not found
    /// before, minimises them. The bypass (invariant, minimal steps, the step
    /// that got through) and the first run of the attempt that failed, if any.
    fn attempt(
        &mut self,
        steps: &[Step],
        findings: &BTreeMap<String, Finding>,
        tally: &mut Tally,
    ) -> (Option<Bypass>, Option<Failure>) {
        let broken = match self.run(steps, tally) {
            Run::Held => return (None, None),
            Run::Failed(at, error) => return (None, Some(Failure { steps: steps.to_vec(), at, error })),
            Run::Broken(_, broken) if findings.contains_key(&broken.invariant) => return (None, None),
            Run::Broken(_, broken) => broken,
        };
        let mut failure: Option<Failure> = None;
        let mut still_breaks =
            |durable: &mut Self, candidate: &[Step]| match durable.run(candidate, &mut Tally::default()) {
                Run::Broken(at, b) if b.invariant == broken.invariant => Some(at),
                Run::Broken(..) | Run::Held => None,
                Run::Failed(at, error) => {
                    failure.get_or_insert(Failure { steps: candidate.to_vec(), at, error });
                    None
                }
            };
        let minimal = minimise(steps, &mut |candidate| still_breaks(self, candidate).is_some());
        let at = still_breaks(self, &minimal).unwrap_or(0);
        (Some(Bypass { broken, steps: minimal, at }), failure)
    }

    /// Runs a sequence as a new session: the first broken invariant, or the
    /// first step the engine answered with an error.
    fn run(&mut self, steps: &[Step], tally: &mut Tally) -> Run {
        self.sessions += 1;
        let session = format!("attack-{}", self.sessions);
        if let Err(error) = self.runtime.block_on(self.engine.create_session(&self.handle, &session, None)) {
            return Run::Failed(0, format!("cannot create session {session}: {error}"));
        }
        let mut watch = Watch {
            shadow: SessionState::new(self.workflow),
            fold: self.oracle.fold(),
            keys: BTreeMap::new(),
            executed: BTreeSet::new(),
            recorded: BTreeSet::new(),
        };
        for (index, step) in steps.iter().enumerate() {
            let broken = match step {
                Step::Call(call) => {
                    let answer = match self.runtime.block_on(self.engine.decide(&session, call)) {
                        Ok(answer) => answer,
                        Err(error) => return Run::Failed(index, error.to_string()),
                    };
                    tally.decided += 1;
                    self.judge_call(call, &answer, &mut watch, tally)
                }
                Step::Result { call, result, outcome } => {
                    let recording = self.engine.record_result(&session, call.as_str(), result, *outcome);
                    let answer = match self.runtime.block_on(recording) {
                        Ok(answer) => answer,
                        Err(error) => return Run::Failed(index, error.to_string()),
                    };
                    tally.results += 1;
                    // The oracle folds every result it sends, as sent: what
                    // counts is for its own fold to say.
                    watch.fold.recorded(call, result, *outcome);
                    if !answer.recorded {
                        continue;
                    }
                    if !watch.recorded.insert(call.to_string()) {
                        Some(Broken {
                            invariant: oracle::RESULT_COUNTS_ONCE.into(),
                            message: format!("the result of call {call} was recorded twice"),
                        })
                    } else {
                        let shadow = &mut watch.shadow;
                        let before = identities(self.workflow, shadow);
                        apply(self.workflow, shadow, Event::ResultRecorded { call, result, outcome: *outcome });
                        identity_changed(&before, &identities(self.workflow, shadow))
                    }
                }
            };
            if let Some(broken) = broken {
                return Run::Broken(index, broken);
            }
        }
        let last = steps.len().saturating_sub(1);
        let stored = match self.runtime.block_on(self.engine.state(&session)) {
            Ok((_, stored)) => stored,
            Err(error) => return Run::Failed(last, format!("cannot read the state of session {session}: {error}")),
        };
        if stored != watch.shadow {
            let message = "the engine's stored state is not the fold of its decisions and first results";
            return Run::Broken(last, Broken { invariant: oracle::RESULT_COUNTS_ONCE.into(), message: message.into() });
        }
        Run::Held
    }

    fn judge_call(
        &self,
        call: &ToolCall,
        answer: &tollgate_engine::CallDecision,
        watch: &mut Watch<'_>,
        tally: &mut Tally,
    ) -> Option<Broken> {
        let allowed = answer.decision.verdict() == Verdict::Allow;
        let key = match &answer.decision {
            tollgate_core::Decision::Allow(allowed) => allowed.idempotency_key.clone(),
            _ => None,
        };
        if answer.replayed {
            tally.replayed += 1;
            // The original answer again: the same key, nothing executes anew.
            return match watch.keys.get(call.id.as_str()) {
                Some(original) if allowed && *original != key => Some(Broken {
                    invariant: oracle::KEY_EXECUTES_ONCE.into(),
                    message: format!("call {} re-sent got another idempotency key", call.id),
                }),
                _ => None,
            };
        }
        if answer.decision.rule_ids().iter().any(|r| r.starts_with("tollgate.call_id")) {
            tally.reused_refused += 1;
            return None;
        }
        if allowed {
            let side_effect = self.workflow.tool(&call.tool).is_some_and(|t| t.is_side_effect());
            if side_effect && watch.keys.contains_key(call.id.as_str()) {
                return Some(Broken {
                    invariant: oracle::CALL_ID_ONCE.into(),
                    message: format!("side-effecting call id {} was allowed a second time", call.id),
                });
            }
            if let Some(key) = &key
                && !watch.executed.insert(key.clone())
            {
                return Some(Broken {
                    invariant: oracle::KEY_EXECUTES_ONCE.into(),
                    message: format!("idempotency key {key} was handed out for a second execution"),
                });
            }
            watch.keys.insert(call.id.to_string(), key);
            if let Some(broken) = self.oracle.check_allowed(&watch.fold, call) {
                return Some(broken);
            }
        }
        // The engine decided the call at its own time when it carried none.
        let timed = call.clone().at(call.now_ms.unwrap_or(ENGINE_CLOCK_MS));
        apply(self.workflow, &mut watch.shadow, Event::Decided { call: &timed, decision: &answer.decision });
        watch.fold.decided(&timed, answer.decision.verdict());
        None
    }
}
