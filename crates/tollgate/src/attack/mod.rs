//! `tollgate attack`: the built-in bypass hunter. It takes allowed sessions
//! (recorded traces, or sessions it generates from the workflow), mutates
//! them as an attacker would, decides every call with the pure core and
//! judges each allowed call by the workflow's own invariants (see
//! `oracle`), which `decide` never reads. A few attempts go through the
//! engine on a temporary SQLite file, to attack exactly-once as well: a
//! side effect re-sent after its decision, a reused call id, a result
//! recorded twice. Any sequence that gets through is minimised and printed
//! in the script format `tollgate run` reads.
//!
//! Everything printed to standard output follows from the workflow, the
//! traces and the seed; the timing goes to standard error.

mod corpus;
mod durable;
mod functions;
mod generate;
mod minimise;
mod mutate;
mod oracle;
mod recorded;
mod rng;

use anyhow::{Result, bail};
use corpus::{Book, Trace};
use mutate::{Ids, MUTATIONS, Mutator};
use oracle::{Broken, Oracle};
use rng::Rng;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tollgate_core::script::Step;
use tollgate_core::{Event, SessionState, Verdict, Workflow, apply, decide};

/// What `tollgate attack` was asked to do.
pub struct Options {
    pub workflow: PathBuf,
    pub traces: Option<PathBuf>,
    pub seed: u64,
    pub attempts: u64,
    pub engine_attempts: u64,
}

/// Counts over all attempts.
#[derive(Default)]
struct Tally {
    decided: u64,
    allowed: u64,
    blocked: u64,
    escalated: u64,
    judged: u64,
}

/// A sequence to attack with: its steps, the fresh ids its mutations have
/// used, and the session it started from.
struct Sequence {
    steps: Vec<Step>,
    ids: Ids,
    origin: String,
}

/// The outcome of one sequence.
struct Outcome {
    /// The step at which an invariant broke, and which.
    broken: Option<(usize, Broken)>,
}

/// A bypass: an invariant broken by a (minimised) sequence.
struct Finding {
    broken: Broken,
    attempt: u64,
    via: String,
    mutations: Vec<&'static str>,
    /// The session the mutated sequence started from.
    origin: String,
    original_steps: usize,
    steps: Vec<Step>,
    at: usize,
}

pub fn run(options: &Options) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let (text, workflow) = crate::validate::load(&options.workflow)?;
    if options.attempts == 0 {
        bail!("--attempts must be at least 1");
    }
    let oracle = Oracle::new(&workflow)?;
    let mut rng = Rng::new(options.seed);
    let rule_numbers = rule_numbers(&workflow);
    let recorded = match &options.traces {
        Some(path) => Some((recorded::read(path, &workflow)?, path)),
        None => None,
    };
    let (traces, book, source) = match recorded {
        Some((corpus, path)) => {
            let book = Book::new(&corpus.traces, &rule_numbers);
            let source = describe_corpus(&corpus, path);
            (corpus.traces, book, source)
        }
        None => {
            let (traces, book) = generate::sessions(&workflow, &text, &rule_numbers, &mut rng);
            let source = format!("{} sessions generated from the tool schemas and fact mappings", traces.len());
            (traces, book, source)
        }
    };
    if traces.is_empty() {
        bail!(
            "there is nothing to attack: no session of the traces is allowed by the workflow, or no call could be generated"
        );
    }
    let mutator = Mutator { workflow: &workflow, book: &book, traces: &traces };
    let mut tally = Tally::default();
    let mut used = [0u64; MUTATIONS.len()];
    let mut findings: BTreeMap<String, Finding> = BTreeMap::new();
    let mut last: Option<Sequence> = None;

    for attempt in 0..options.attempts {
        let (sequence, mutations) = next_sequence(&mutator, &traces, &mut rng, &mut last, attempt, &mut used);
        let steps = &sequence.steps;
        let outcome = run_core(&workflow, &oracle, steps, &mut tally);
        match outcome.broken {
            Some((_, broken)) if findings.contains_key(&broken.invariant) => {}
            Some((_, broken)) => {
                let target = broken.invariant.clone();
                let minimal = minimise::minimise(steps, &mut |candidate| {
                    run_core(&workflow, &oracle, candidate, &mut Tally::default())
                        .broken
                        .is_some_and(|(_, b)| b.invariant == target)
                });
                let at = run_core(&workflow, &oracle, &minimal, &mut Tally::default()).broken.map_or(0, |(at, _)| at);
                let finding = Finding {
                    broken,
                    attempt: attempt + 1,
                    via: "the core".into(),
                    mutations,
                    origin: sequence.origin.clone(),
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

    let engine = durable::hunt(
        &text,
        &options.workflow.display().to_string(),
        &workflow,
        &oracle,
        &mutator,
        &mut rng,
        options.engine_attempts,
        &mut findings,
    )?;

    let seconds = started.elapsed().as_secs_f64();
    print!("{}", report(&workflow, options, &source, &oracle, &tally, &used, &engine, &findings));
    eprintln!(
        "tollgate attack: {} attempts in {seconds:.2} s ({:.0} attempts/s; {} core decisions)",
        options.attempts + options.engine_attempts,
        (options.attempts + options.engine_attempts) as f64 / seconds.max(1e-9),
        tally.decided
    );
    Ok(if findings.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// What the starting sessions are, for the report.
fn describe_corpus(corpus: &recorded::Corpus, path: &Path) -> String {
    let domain = corpus.domain.as_ref().map_or_else(String::new, |d| format!(", domain {d}"));
    let mut text = format!("{} sessions from {} ({}{domain})", corpus.traces.len(), path.display(), corpus.format);
    let skipped = [
        (corpus.other_domain, "of other domains"),
        (corpus.no_calls, "without an agent call"),
        (corpus.unknown_tools, "calling tools the workflow does not declare"),
        (corpus.refused_first, "whose first call the workflow blocks"),
    ];
    let mut left: Vec<String> =
        skipped.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} skipped {what}")).collect();
    if corpus.cut > 0 {
        left.push(format!("{} cut before a call the workflow blocks", corpus.cut));
    }
    if !left.is_empty() {
        text.push_str(&format!("; {}", left.join(", ")));
    }
    text
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

/// Decides a sequence with the pure core and judges every allowed call.
/// A call id decided before is skipped, as the engine answers it with the
/// recorded decision (the engine attempts check that it does).
fn run_core(workflow: &Workflow, oracle: &Oracle, steps: &[Step], tally: &mut Tally) -> Outcome {
    let mut state = SessionState::new(workflow);
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
                        if let Some(broken) = oracle.check_allowed(workflow, &state, call) {
                            return Outcome { broken: Some((index, broken)) };
                        }
                    }
                    Verdict::Block => tally.blocked += 1,
                    Verdict::Escalate => tally.escalated += 1,
                }
                apply(workflow, &mut state, Event::Decided { call, decision: &decision });
            }
            Step::Result { call, result, outcome } => {
                let before = identities(workflow, &state);
                apply(workflow, &mut state, Event::ResultRecorded { call, result, outcome: *outcome });
                if let Some(broken) = identity_changed(&before, &identities(workflow, &state)) {
                    return Outcome { broken: Some((index, broken)) };
                }
            }
        }
    }
    Outcome { broken: None }
}

/// Identity facts held, as (name, key, fields as JSON text).
fn identities(workflow: &Workflow, state: &SessionState) -> Vec<(String, Option<String>, String)> {
    state
        .facts(workflow)
        .into_iter()
        .filter(|(name, _, _)| workflow.facts().iter().any(|f| f.name() == *name && f.is_identity()))
        .map(|(name, key, value)| (name.to_owned(), key.map(str::to_owned), value.to_json().to_string()))
        .collect()
}

fn identity_changed(
    before: &[(String, Option<String>, String)],
    after: &[(String, Option<String>, String)],
) -> Option<Broken> {
    for (name, key, value) in before {
        match after.iter().find(|(n, k, _)| n == name && k == key) {
            Some((_, _, now)) if now == value => {}
            now => {
                return Some(Broken {
                    invariant: oracle::IDENTITY_UNCHANGED.into(),
                    message: format!(
                        "identity fact {name} changed from {value} to {}",
                        now.map_or("nothing", |(_, _, v)| v.as_str())
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

/// A step in the script format `tollgate run` reads.
pub fn step_line(step: &Step) -> String {
    match step {
        Step::Call(call) => match call.now_ms {
            Some(now) => json!({"call": {"id": call.id.as_str(), "tool": call.tool, "args": call.args, "now": now}}),
            None => json!({"call": {"id": call.id.as_str(), "tool": call.tool, "args": call.args}}),
        }
        .to_string(),
        Step::Result { call, result, outcome: tollgate_core::ToolOutcome::Failed } => {
            json!({"result": {"id": call.as_str(), "error": result}}).to_string()
        }
        Step::Result { call, result, .. } => json!({"result": {"id": call.as_str(), "result": result}}).to_string(),
    }
}

#[expect(clippy::too_many_arguments, reason = "one call site; everything the report shows")]
fn report(
    workflow: &Workflow,
    options: &Options,
    source: &str,
    oracle: &Oracle,
    tally: &Tally,
    used: &[u64; MUTATIONS.len()],
    engine: &durable::Tally,
    findings: &BTreeMap<String, Finding>,
) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "tollgate attack: {} v{} ({}), seed {}",
        workflow.name(),
        workflow.version(),
        file_name(&options.workflow),
        options.seed
    ));
    line(format!("  starting from: {source}"));
    line(format!("  oracle: {} declared invariant(s), {} built in", oracle.declared(), oracle::BUILT_IN.len()));
    line(format!("  attempts: {} on the core, {} through the engine", options.attempts, options.engine_attempts));
    line(format!(
        "  core decisions: {} ({} allowed and judged, {} blocked, {} escalated)",
        tally.decided, tally.judged, tally.blocked, tally.escalated
    ));
    line(format!(
        "  engine: {} decisions, {} results, {} re-sent calls answered from the journal, {} reused ids refused",
        engine.decided, engine.results, engine.replayed, engine.reused_refused
    ));
    let mix: Vec<String> = MUTATIONS.iter().zip(used).map(|(name, count)| format!("{name} {count}")).collect();
    line(format!("  mutations: {}", mix.join(", ")));
    if findings.is_empty() {
        line(format!("no bypass found in {} attempts", options.attempts + options.engine_attempts));
        return out;
    }
    for finding in findings.values() {
        line(String::new());
        line(format!("BYPASS {}: {}", finding.broken.invariant, finding.broken.message));
        let via = if finding.mutations.is_empty() {
            "the trace as recorded".to_owned()
        } else {
            format!("mutations {}", finding.mutations.join(", "))
        };
        line(format!(
            "  found by attempt {} through {} (session {}, {via}); minimised from {} to {} steps; step {} got through:",
            finding.attempt,
            finding.via,
            finding.origin,
            finding.original_steps,
            finding.steps.len(),
            finding.at + 1
        ));
        for step in &finding.steps {
            line(format!("  {}", step_line(step)));
        }
    }
    line(String::new());
    line(format!("{} bypass(es) found in {} attempts", findings.len(), options.attempts + options.engine_attempts));
    out
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}
