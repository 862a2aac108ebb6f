//! Tollgate's bypass hunter, behind `tollgate attack`. It owns the starting
//! sessions (recorded traces, or sessions generated from the workflow), the
//! mutations an attacker makes to them, the oracle that judges every allowed
//! call by the workflow's `[[invariants]]` and the built-in ones over a fold
//! of the session's events of its own (`fold.rs`, `spec.rs`), ddmin for
//! what got through, and a few attempts through the engine on a temporary
//! SQLite file to attack exactly-once as well (a side effect re-sent after its
//! decision, a reused call id, a result recorded twice). [`hunt`] returns a
//! typed [`Report`]; its `Display` is the text `tollgate attack` prints.
//!
//! It must not depend on the core's evaluator nor on the core's session state:
//! the oracle evaluates every rule, invariants and fact mappings alike, with
//! the `cel` crate's own interpreter (`oracle.rs`, `fold.rs`, `functions.rs`)
//! over facts and totals it folds itself from the events it feeds the core,
//! so a mistake in the core's evaluation or in its `apply` cannot judge
//! itself. Nor does it depend on the binary or on the terminal: everything in
//! the report follows from the input (workflow, traces, seed), and timing is
//! the caller's business.

mod corpus;
mod durable;
mod fold;
mod functions;
mod generate;
mod minimise;
mod mutate;
mod oracle;
mod recorded;
mod report;
mod rng;
mod spec;

pub use oracle::BUILT_IN;
pub use report::{CoreTally, EngineTally, Finding, FindingKind, MutationCount, Report, Start, Via, step_line};

use corpus::{Book, Trace};
use mutate::{Ids, MUTATIONS, Mutator};
use oracle::{Broken, Oracle};
use rng::Rng;
use std::collections::BTreeMap;
use std::path::Path;
use tollgate_core::{Event, SessionState, Verdict, Workflow, decide};
use tollgate_protocol::script::Step;

/// A text and the name it is known by (a file path as the user gave it).
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// What errors and the report call it: a path as given (`examples/support-refunds.toml`).
    pub name: String,
    /// Its content.
    pub text: String,
}

/// What to hunt in, and how hard.
#[derive(Clone, Debug)]
pub struct Input {
    /// The workflow (TOML); its `[[invariants]]` are the oracle.
    pub workflow: SourceFile,
    /// Allowed sessions to start from: `tollgate run` script lines with
    /// `{"session": "name"}` between sessions, or recorded traces in any format
    /// the core's `trace` module reads. `None`: sessions are generated from the
    /// workflow's schemas and fact mappings.
    pub traces: Option<SourceFile>,
    /// The seed: the same seed, workflow and traces give the same report.
    pub seed: u64,
    /// Mutated sequences decided by the pure core (at least 1).
    pub attempts: u64,
    /// Mutated sequences run through the engine on a temporary SQLite file.
    pub engine_attempts: u64,
}

impl Input {
    /// `tollgate attack`'s defaults: seed 1, 100,000 attempts on the core and
    /// 50 through the engine, sessions generated from the workflow.
    pub fn new(workflow: SourceFile) -> Input {
        Input { workflow, traces: None, seed: 1, attempts: 100_000, engine_attempts: 50 }
    }
}

/// Why a hunt could not be made. A bypass is not an error: it is a finding in
/// the [`Report`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The workflow does not compile.
    #[error("the workflow has {} problem(s):\n{}", problems.len(), problems.join("\n"))]
    Workflow {
        /// Each problem, with file, line and column.
        problems: Vec<String>,
    },
    /// No attempt on the core was asked for.
    #[error("the number of attempts must be at least 1")]
    NoAttempts,
    /// A line of the traces is not a step.
    #[error("{file}:{line}: {message}")]
    TraceLine {
        /// The traces' name.
        file: String,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The traces are neither script lines nor recorded traces.
    #[error("{file}: {message}")]
    Traces {
        /// The traces' name.
        file: String,
        /// What the trace reader said.
        message: String,
    },
    /// The traces hold no call.
    #[error("{file} holds no calls")]
    NoCalls {
        /// The traces' name.
        file: String,
    },
    /// No starting session is left.
    #[error(
        "there is nothing to attack: no session of the traces is allowed by the workflow, or no call could be generated"
    )]
    NothingToAttack,
    /// An invariant or a gate key that the `cel` crate cannot parse.
    #[error("{what} does not parse: {message}")]
    Oracle {
        /// Which rule (`invariant refund-of-own-order`, `gate key args.id`).
        what: String,
        /// The parser's message.
        message: String,
    },
    /// The engine attempts could not start (temporary directory, runtime,
    /// store, workflow registration).
    #[error("the engine attempts cannot start: {what}: {message}")]
    EngineSetup {
        /// What failed.
        what: String,
        /// Its error.
        message: String,
    },
}

/// A sequence to attack with: its steps, the fresh ids its mutations have
/// used, and the session it started from.
struct Sequence {
    steps: Vec<Step>,
    ids: Ids,
    origin: String,
}

/// Hunts for bypasses of `input.workflow` and reports what it tried and found.
///
/// Blocking: the engine attempts run on a runtime of their own, so this must
/// not be called from inside an async runtime.
pub fn hunt(input: &Input) -> Result<Report, Error> {
    let workflow = compile(&input.workflow)?;
    if input.attempts == 0 {
        return Err(Error::NoAttempts);
    }
    let oracle = Oracle::new(&workflow, &input.workflow.text)?;
    let mut rng = Rng::new(input.seed);
    let rule_numbers = rule_numbers(&workflow);
    let (traces, book, start) = match &input.traces {
        Some(file) => {
            let corpus = recorded::read(file, &workflow)?;
            let book = Book::new(&corpus.traces, &rule_numbers);
            let start = corpus.start(&file.name);
            (corpus.traces, book, start)
        }
        None => {
            let (traces, book) = generate::sessions(&workflow, &input.workflow.text, &rule_numbers, &mut rng);
            let start = Start::Generated { sessions: traces.len() };
            (traces, book, start)
        }
    };
    if traces.is_empty() {
        return Err(Error::NothingToAttack);
    }
    let mutator = Mutator { workflow: &workflow, book: &book, traces: &traces };
    let mut core = CoreTally::default();
    let mut used = [0u64; MUTATIONS.len()];
    let mut findings: BTreeMap<String, Finding> = BTreeMap::new();
    let mut last: Option<Sequence> = None;

    for attempt in 0..input.attempts {
        let (sequence, mutations) = next_sequence(&mutator, &traces, &mut rng, &mut last, attempt, &mut used);
        let steps = &sequence.steps;
        match run_core(&workflow, &oracle, steps, &mut core) {
            Some((_, broken)) if findings.contains_key(&broken.invariant) => {}
            Some((_, broken)) => {
                let target = broken.invariant.clone();
                let minimal = minimise::minimise(steps, &mut |candidate| {
                    run_core(&workflow, &oracle, candidate, &mut CoreTally::default())
                        .is_some_and(|(_, b)| b.invariant == target)
                });
                let at = run_core(&workflow, &oracle, &minimal, &mut CoreTally::default()).map_or(0, |(at, _)| at);
                let finding = Finding {
                    kind: FindingKind::Bypass { invariant: broken.invariant, message: broken.message },
                    attempt: attempt + 1,
                    via: Via::Core,
                    mutations,
                    session: sequence.origin.clone(),
                    original_steps: steps.len(),
                    steps: minimal,
                    at,
                };
                findings.insert(target, finding);
            }
            None if steps.len() < 48 => last = Some(sequence),
            None => {}
        }
    }

    let (engine, engine_error) =
        durable::hunt(&input.workflow, &workflow, &oracle, &mutator, &mut rng, input.engine_attempts, &mut findings)?;
    let mut findings: Vec<Finding> = findings.into_values().collect();
    findings.extend(engine_error);

    Ok(Report {
        workflow_name: workflow.name().to_owned(),
        workflow_version: workflow.version(),
        workflow_file: file_name(&input.workflow.name),
        seed: input.seed,
        start,
        declared_invariants: oracle.declared(),
        built_in_invariants: BUILT_IN.len(),
        attempts: input.attempts,
        engine_attempts: input.engine_attempts,
        core,
        engine,
        mutations: MUTATIONS.iter().zip(used).map(|(name, count)| MutationCount { name, count }).collect(),
        findings,
    })
}

/// The workflow compiled, or every problem it has.
fn compile(file: &SourceFile) -> Result<Workflow, Error> {
    let workflow = tollgate_core::compile(&file.text, &file.name)
        .map_err(|problems| Error::Workflow { problems: problems.iter().map(ToString::to_string).collect() })?;
    if let Some(problem) = tollgate_core::workflow_name_problem(workflow.name()) {
        return Err(Error::Workflow { problems: vec![format!("{}: {problem}", file.name)] });
    }
    Ok(workflow)
}

/// The next sequence to try: an allowed trace as recorded (the first
/// attempts), else a trace or the last harmless mutant, mutated 1–3 times.
fn next_sequence(
    mutator: &Mutator<'_>,
    traces: &[Trace],
    rng: &mut Rng,
    last: &mut Option<Sequence>,
    attempt: u64,
    used: &mut [u64; MUTATIONS.len()],
) -> (Sequence, Vec<&'static str>) {
    let fresh = |trace: &Trace| Sequence { steps: trace.steps.clone(), ids: Ids::new(), origin: trace.name.clone() };
    if let Some(trace) = usize::try_from(attempt).ok().and_then(|i| traces.get(i)) {
        return (fresh(trace), Vec::new());
    }
    let mut sequence = match last.take() {
        Some(previous) if rng.chance(1, 2) => previous,
        _ => rng.pick(traces).map(fresh).unwrap_or(Sequence {
            steps: Vec::new(),
            ids: Ids::new(),
            origin: String::new(),
        }),
    };
    let Sequence { steps, ids, .. } = &mut sequence;
    let mut mutations = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let which = rng.below(MUTATIONS.len());
        if mutator.apply(rng, ids, steps, which)
            && let (Some(count), Some(name)) = (used.get_mut(which), MUTATIONS.get(which))
        {
            *count += 1;
            mutations.push(*name);
        }
    }
    (sequence, mutations)
}

/// Decides a sequence with the pure core and judges every allowed call; the
/// step at which an invariant broke, and which. A call id decided before is
/// skipped, as the engine answers it with the recorded decision (the engine
/// attempts check that it does).
fn run_core(workflow: &Workflow, oracle: &Oracle, steps: &[Step], tally: &mut CoreTally) -> Option<(usize, Broken)> {
    run_with(tollgate_core::apply, workflow, oracle, steps, tally)
}

/// The core's `apply`, or (in tests) one with a bug planted in it.
type Apply = fn(&Workflow, &mut SessionState, Event<'_>) -> Vec<tollgate_core::Effect>;

/// [`run_core`] with the `apply` the core under attack folds its state with.
/// The oracle folds the same events itself, so whatever `apply` gets wrong, it
/// judges the allowed calls by what the events say.
fn run_with(
    apply: Apply,
    workflow: &Workflow,
    oracle: &Oracle,
    steps: &[Step],
    tally: &mut CoreTally,
) -> Option<(usize, Broken)> {
    let mut state = SessionState::new(workflow);
    // What the oracle judges with: its own fold of the events fed in, never `state`.
    let mut fold = oracle.fold();
    let mut decided: Vec<&str> = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        match step {
            Step::Call(call) => {
                if decided.contains(&call.id.as_str()) {
                    continue;
                }
                decided.push(call.id.as_str());
                let decision = decide(workflow, &state, call);
                tally.decided += 1;
                match decision.verdict() {
                    Verdict::Allow => {
                        tally.allowed += 1;
                        tally.judged += 1;
                        if let Some(broken) = oracle.check_allowed(&fold, call) {
                            return Some((index, broken));
                        }
                    }
                    Verdict::Block => tally.blocked += 1,
                    Verdict::Escalate => tally.escalated += 1,
                }
                apply(workflow, &mut state, Event::Decided { call, decision: &decision });
                fold.decided(call, decision.verdict());
            }
            Step::Result { call, result, outcome } => {
                let before = identities(workflow, &state);
                apply(workflow, &mut state, Event::ResultRecorded { call, result, outcome: *outcome });
                fold.recorded(call, result, *outcome);
                if let Some(broken) = identity_changed(&before, &identities(workflow, &state)) {
                    return Some((index, broken));
                }
            }
        }
    }
    None
}

/// An identity fact instance the core holds: (name, key, fields).
type Identity = (String, Option<String>, tollgate_core::Value);

/// Identity facts the core holds.
fn identities(workflow: &Workflow, state: &SessionState) -> Vec<Identity> {
    state
        .facts(workflow)
        .into_iter()
        .filter(|(name, _, _)| workflow.facts().iter().any(|f| f.name() == *name && f.is_identity()))
        .map(|(name, key, value)| (name.to_owned(), key.map(str::to_owned), value.clone()))
        .collect()
}

/// The built-in identity invariant, judged on what the core holds before and
/// after a result: an identity fact, once held, stays as it was.
fn identity_changed(before: &[Identity], after: &[Identity]) -> Option<Broken> {
    for (name, key, value) in before {
        match after.iter().find(|(n, k, _)| n == name && k == key) {
            Some((_, _, now)) if now == value => {}
            now => {
                return Some(Broken {
                    invariant: oracle::IDENTITY_UNCHANGED.into(),
                    message: format!(
                        "identity fact {name} changed from {} to {}",
                        value.to_json(),
                        now.map_or_else(|| "nothing".to_owned(), |(_, _, v)| v.to_json().to_string())
                    ),
                });
            }
        }
    }
    None
}

/// Numbers written in the workflow's checks, escalation rules and invariants.
fn rule_numbers(workflow: &Workflow) -> Vec<f64> {
    let mut numbers = Vec::new();
    let mut add = |source: &str| {
        for n in corpus::numbers_in(source) {
            if !numbers.contains(&n) {
                numbers.push(n);
            }
        }
    };
    for tool in workflow.tools() {
        tool.checks().iter().for_each(|c| add(c.source()));
        tool.escalations().iter().for_each(|e| add(e.source()));
    }
    workflow.invariants().iter().for_each(|i| add(i.rule()));
    numbers
}

/// The last part of a path as given, as the report's header names the workflow.
fn file_name(name: &str) -> String {
    Path::new(name).file_name().map_or_else(|| name.to_owned(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests;
