//! `tollgate replay`: recorded agent traces decided again through the
//! engine. Every trace becomes a stored session, so each decision is
//! journaled and audited and can be inspected afterwards (`tollgate sessions
//! show`, `tollgate audit verify`): "what would Tollgate have stopped?".
//!
//! Every input file is read and parsed before the store is touched, so bad
//! input stores nothing.

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tollgate_core::trace::{self, CallOutcome, SessionTime, Trace, TraceEvent};
use tollgate_core::{Verdict, Workflow};
use tollgate_engine::{Engine, WorkflowHandle};

/// What `tollgate replay` was asked to do.
pub struct Options {
    /// The workflow file.
    pub workflow: PathBuf,
    /// Trace files.
    pub traces: Vec<PathBuf>,
    /// The store.
    pub db: String,
    /// One JSON object per decision instead of the summary.
    pub json: bool,
    /// Compare with each trace's `expect` and fail on any difference.
    pub expect: bool,
    /// The session clock for traces that carry none.
    pub now: Option<String>,
}

/// Reads the workflow text and compiles it.
pub fn load_workflow(path: &Path) -> Result<(String, Workflow)> {
    crate::validate::load(path)
}

/// Reads and parses every trace file; the first bad one is the error,
/// naming its file and line.
pub fn load_traces(paths: &[PathBuf]) -> Result<Vec<Trace>> {
    let mut traces = Vec::new();
    for path in paths {
        let mut text = crate::input::read(path, "the trace file", crate::input::TRACE_BYTES_MAX)?;
        for subagent in claude_code_subagents(path, &text)? {
            let more = crate::input::read(&subagent, "a subagent's transcript", crate::input::TRACE_BYTES_MAX)?;
            text.push('\n');
            text.push_str(&more);
        }
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let parsed = trace::parse(&text, &name).map_err(|error| match error.line {
            Some(line) => anyhow!("{}:{line}: {}", path.display(), error.message),
            None => anyhow!("{}: {}", path.display(), error.message),
        })?;
        traces.extend(parsed);
    }
    Ok(traces)
}

/// A Claude Code session transcript's subagents' transcripts: Claude Code
/// keeps them beside it, in `<session>/subagents/*.jsonl`. Their calls are
/// part of the session (the hook gated them there), so a replay reads them
/// with it; the parser orders all entries by time. Nothing for other files.
fn claude_code_subagents(path: &Path, text: &str) -> Result<Vec<PathBuf>> {
    let first = text.lines().find(|line| !line.trim().is_empty()).unwrap_or_default();
    let is_claude_code = serde_json::from_str::<serde_json::Value>(first).is_ok_and(|entry| {
        entry.get("sessionId").is_some_and(serde_json::Value::is_string) && entry.get("type").is_some()
    });
    let (Some(parent), Some(stem)) = (path.parent(), path.file_stem()) else { return Ok(Vec::new()) };
    let dir = parent.join(stem).join("subagents");
    if !is_claude_code || !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|file| file.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    Ok(files)
}

/// The session clock for traces without one: `--now`, else the system clock.
pub fn fallback_now(now: Option<&str>) -> Result<SessionTime> {
    match now {
        Some(text) => SessionTime::parse(text).map_err(|e| anyhow!("--now: {e}")),
        None => {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            Ok(SessionTime { text: "the system clock".into(), unix_ms: ms })
        }
    }
}

pub fn run(options: &Options) -> Result<ExitCode> {
    let (text, workflow) = load_workflow(&options.workflow)?;
    let mut traces = load_traces(&options.traces)?;
    let fallback = fallback_now(options.now.as_deref())?;
    for trace in &mut traces {
        trace.now.get_or_insert_with(|| fallback.clone());
    }
    // Refused before anything is stored, like any other bad input.
    if options.expect && traces.iter().all(|trace| trace.expect.is_none()) {
        bail!("--expect: no trace carries an expect field");
    }
    let file = options.workflow.display().to_string();
    let replayed = crate::runtime()?.block_on(replay_stored(&options.db, &text, &file, &traces, options.json))?;
    let summary = Summary::of(&traces, &replayed);
    if !options.json {
        // A closed pipe (`| head`) ends the output, not the run: the sessions are stored.
        let _ = summary.print(&mut std::io::stdout().lock(), &workflow, &options.db, &replayed);
    }
    if !options.expect {
        return Ok(ExitCode::SUCCESS);
    }
    let mut out: Box<dyn Write> =
        if options.json { Box::new(std::io::stderr().lock()) } else { Box::new(std::io::stdout().lock()) };
    let failures = print_differences(&mut out, &workflow, &traces, &replayed)?;
    drop(out);
    Ok(if failures { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// One replayed trace: its session and its decisions.
pub struct Replayed {
    session: String,
    outcomes: Vec<CallOutcome>,
}

/// Traces replayed at once: their calls share the engine's group commits,
/// so a run costs far fewer durable writes than it has decisions.
const CONCURRENT_TRACES: usize = 64;

async fn replay_stored(db: &str, text: &str, file: &str, traces: &[Trace], json: bool) -> Result<Vec<Replayed>> {
    let engine = crate::audit::open_writer(db).await?;
    let handle = engine.register_workflow(text, file).await?;
    let ids = session_ids(traces, &run_tag());
    let events: usize = traces.iter().map(|t| t.events.len()).sum();
    let progress = progress_bar(events);
    // Each trace runs in order within itself; traces run side by side, and
    // their results come back in input order.
    let mut runs = futures_util::stream::iter(traces.iter().zip(ids))
        .map(|(trace, session)| {
            let (engine, handle) = (&engine, &handle);
            async move {
                let outcomes = replay_one(engine, handle, &session, trace).await.with_context(|| {
                    format!(
                        "replaying trace {} as session {session} (the sessions of this run replayed so far stay stored)",
                        trace.id
                    )
                })?;
                anyhow::Ok((trace, Replayed { session, outcomes }))
            }
        })
        .buffered(CONCURRENT_TRACES);
    let mut replayed = Vec::with_capacity(traces.len());
    while let Some(run) = runs.next().await {
        let (trace, run) = run?;
        progress.inc(trace.events.len() as u64);
        if json {
            print_json(&run.session, trace, &run.outcomes);
        }
        replayed.push(run);
    }
    drop(runs);
    progress.finish_and_clear();
    engine.close().await;
    Ok(replayed)
}

/// One trace through the engine: each call decided at the trace's session
/// clock (and so journaled and audited), each allowed call's recorded
/// result recorded.
async fn replay_one(
    engine: &Engine,
    handle: &WorkflowHandle,
    session: &str,
    trace: &Trace,
) -> Result<Vec<CallOutcome>> {
    engine.create_session(handle, session, None).await?;
    let now_ms = trace.now.as_ref().map(|now| now.unix_ms);
    let mut outcomes = Vec::new();
    for (index, event) in trace.events.iter().enumerate() {
        let TraceEvent::Call(recorded) = event else { continue };
        let call = trace::tool_call(&handle.workflow, index, recorded, now_ms);
        let decided = engine.decide(session, &call).await?;
        let mut withheld = None;
        if decided.decision.verdict() == Verdict::Allow
            && let Some((result, outcome)) = trace::recorded_result(&recorded.outcome)
        {
            let recorded = engine.record_result(session, call.id.as_str(), &result, outcome).await?;
            withheld = trace::withheld_reasons(&recorded.effects);
        }
        outcomes.push(CallOutcome { index, decision: decided.decision, withheld });
    }
    Ok(outcomes)
}

/// A tag that makes this run's session ids unique: the time in base 36 and
/// the process id.
fn run_tag() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("{}{}", base36(ms), base36(u128::from(std::process::id())))
}

fn base36(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS.get((n % 36) as usize).copied().unwrap_or(b'0'));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// Session ids for the traces: the trace id with `/` as `:` and any other
/// character the engine does not take in ids as `-`, shortened, then
/// `@TAG` (and `.N` for a trace id seen before in this run).
fn session_ids(traces: &[Trace], tag: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    traces
        .iter()
        .map(|trace| {
            let base: String = trace
                .id
                .chars()
                .map(|c| match c {
                    '/' => ':',
                    c if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '#') => c,
                    _ => '-',
                })
                .take(96)
                .collect();
            let mut id = format!("{base}@{tag}");
            let mut n = 1;
            while !seen.insert(id.clone()) {
                n += 1;
                id = format!("{base}@{tag}.{n}");
            }
            id
        })
        .collect()
}

fn progress_bar(calls: usize) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(calls as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("replay {bar:40} {pos}/{len} events {per_sec} {eta}") {
        bar.set_style(style);
    }
    bar
}

fn print_json(session: &str, trace: &Trace, outcomes: &[CallOutcome]) {
    let mut out = std::io::stdout().lock();
    for outcome in outcomes {
        let recorded = trace.events.get(outcome.index).map(TraceEvent::call);
        let line = json!({
            "session": session,
            "trace": trace.id,
            "index": outcome.index,
            "call": recorded.and_then(|c| c.source_id.as_deref()),
            "tool": recorded.map_or("", |c| c.tool.as_str()),
            "verdict": outcome.verdict().as_str(),
            "decision": outcome.decision.verdict().as_str(),
            "withheld": outcome.withheld.is_some(),
            "rule_ids": outcome.reasons().iter().map(|r| r.rule_id.as_str()).collect::<Vec<_>>(),
            "reasons": outcome.reasons().iter().map(|r| r.message.as_str()).collect::<Vec<_>>(),
        });
        // A closed pipe (`| head`) ends the output, not the replay.
        let _ = writeln!(out, "{line}");
    }
}

/// Counts over a whole run.
#[derive(Default)]
struct Summary {
    sessions: usize,
    calls: usize,
    user_actions: usize,
    verdicts: BTreeMap<Verdict, usize>,
    /// Refusals naming each rule: (blocked, escalated).
    rules: BTreeMap<String, (usize, usize)>,
}

impl Summary {
    fn of(traces: &[Trace], replayed: &[Replayed]) -> Summary {
        let mut summary = Summary { sessions: replayed.len(), ..Summary::default() };
        summary.user_actions =
            traces.iter().flat_map(|t| &t.events).filter(|e| matches!(e, TraceEvent::UserAction(_))).count();
        for outcome in replayed.iter().flat_map(|r| &r.outcomes) {
            summary.calls += 1;
            let verdict = outcome.verdict();
            *summary.verdicts.entry(verdict).or_default() += 1;
            for reason in outcome.reasons() {
                let counts = summary.rules.entry(reason.rule_id.clone()).or_default();
                match verdict {
                    Verdict::Escalate => counts.1 += 1,
                    _ => counts.0 += 1,
                }
            }
        }
        summary
    }

    fn count(&self, verdict: Verdict) -> usize {
        self.verdicts.get(&verdict).copied().unwrap_or(0)
    }

    fn print(&self, out: &mut dyn Write, workflow: &Workflow, db: &str, replayed: &[Replayed]) -> std::io::Result<()> {
        writeln!(out, "replay under workflow {} v{}, stored in {db}", workflow.name(), workflow.version())?;
        writeln!(out, "{:>9} {:>9} {:>9} {:>9} {:>10}", "sessions", "calls", "allowed", "blocked", "escalated")?;
        writeln!(
            out,
            "{:>9} {:>9} {:>9} {:>9} {:>10}",
            self.sessions,
            self.calls,
            self.count(Verdict::Allow),
            self.count(Verdict::Block),
            self.count(Verdict::Escalate)
        )?;
        if self.user_actions > 0 {
            writeln!(out, "({} user actions skipped: they are not agent calls)", self.user_actions)?;
        }
        if !self.rules.is_empty() {
            let width = self.rules.keys().map(String::len).max().unwrap_or(0).max(4);
            writeln!(out)?;
            writeln!(out, "{:<width$} {:>9} {:>10}", "rule", "blocked", "escalated")?;
            for (rule, (blocked, escalated)) in &self.rules {
                writeln!(out, "{rule:<width$} {blocked:>9} {escalated:>10}")?;
            }
        }
        match (replayed.first(), replayed.last()) {
            (Some(first), Some(last)) if replayed.len() > 1 => {
                writeln!(out, "\nsessions {} … {} (tollgate sessions show ID)", first.session, last.session)?
            }
            (Some(only), _) => writeln!(out, "\nsession {} (tollgate sessions show ID)", only.session)?,
            _ => {}
        }
        Ok(())
    }
}

/// Prints every difference from the traces' `expect`; returns whether there
/// was one.
fn print_differences(
    out: &mut dyn Write,
    workflow: &Workflow,
    traces: &[Trace],
    replayed: &[Replayed],
) -> Result<bool> {
    let mut differences = 0;
    let mut without = 0;
    for (trace, replayed) in traces.iter().zip(replayed) {
        if trace.expect.is_none() {
            without += 1;
            continue;
        }
        for difference in trace::compare(workflow, trace, &replayed.outcomes) {
            differences += 1;
            let at = match difference.index {
                Some(index) => format!(" index {index} ({})", difference.tool),
                None => String::new(),
            };
            writeln!(
                out,
                "DIFFERENCE trace {}{at}: expected {}, got {}",
                trace.id, difference.expected, difference.got
            )?;
        }
    }
    let compared = traces.len() - without;
    if differences == 0 {
        writeln!(out, "expect: all {compared} traces with an expect field decided as expected")?;
    } else {
        writeln!(out, "expect: {differences} difference(s) in {compared} traces with an expect field")?;
    }
    if without > 0 {
        writeln!(out, "expect: {without} trace(s) carry no expect field and were not compared")?;
    }
    if compared == 0 {
        bail!("--expect: no trace carries an expect field");
    }
    Ok(differences > 0)
}
