//! `tollgate bench replay` (at the end) measures decided calls per second
//! over recorded traces.
//!
//! `tollgate bench decide`: how long one decision takes in the decision core,
//! as this binary is built (the peer comparison with Cedar and Dogwood is in
//! `crates/tollgate-bench`; building those peers changes serde_json's map
//! type for everything in that build, which slows Tollgate's argument reads,
//! so the figures as shipped are measured here).
//!
//! Sessions are prepared on the reference workflow the way an agent drives
//! them (every call decided, applied, its result recorded); the measured
//! calls are a fixed mix of allowed, blocked and escalated refunds, each
//! timed on its own.

use anyhow::{Context, Result, bail};
use serde_json::json;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tollgate_core::trace;
use tollgate_core::{CallId, Event, SessionState, ToolCall, ToolOutcome, Verdict, Workflow, apply, decide};

/// A session and the call to decide on it, with the verdict it must get.
struct Case {
    name: &'static str,
    state: SessionState,
    call: ToolCall,
    expect: Verdict,
}

fn drive(
    workflow: &Workflow,
    state: &mut SessionState,
    id: &str,
    tool: &str,
    args: serde_json::Value,
    result: serde_json::Value,
) {
    let call = ToolCall::new(id, tool, args);
    let decision = decide(workflow, state, &call);
    apply(workflow, state, Event::Decided { call: &call, decision: &decision });
    apply(
        workflow,
        state,
        Event::ResultRecorded { call: &CallId::new(id), result: &result, outcome: ToolOutcome::Succeeded },
    );
}

/// A session with customer c_42 verified and its orders #W1 (120) and #W3 (2,000) looked up,
/// 30 already refunded on #W1.
fn verified(workflow: &Workflow) -> SessionState {
    let mut state = SessionState::new(workflow);
    drive(
        workflow,
        &mut state,
        "v",
        "get_customer",
        json!({"email": "alice@example.com", "zip": "94107"}),
        json!({"verified": true, "customer_id": "c_42", "email": "alice@example.com", "tier": "gold"}),
    );
    for (id, order, total) in [("o1", "#W1", 120.0), ("o3", "#W3", 2000.0)] {
        drive(
            workflow,
            &mut state,
            id,
            "lookup_order",
            json!({"order_id": order}),
            json!({"order_id": order, "customer_id": "c_42", "total": total, "status": "delivered"}),
        );
    }
    drive(
        workflow,
        &mut state,
        "r0",
        "process_refund",
        json!({"order_id": "#W1", "amount": 30.0}),
        json!({"refund_id": "rf_0"}),
    );
    state
}

fn cases(workflow: &Workflow) -> Vec<Case> {
    let refund =
        |amount: f64, order: &str| ToolCall::new("r9", "process_refund", json!({"order_id": order, "amount": amount}));
    let session = verified(workflow);
    vec![
        Case {
            name: "allow: refund within the remaining amount",
            state: session.clone(),
            call: refund(25.0, "#W1"),
            expect: Verdict::Allow,
        },
        Case {
            name: "allow: exactly the remaining amount",
            state: session.clone(),
            call: refund(90.0, "#W1"),
            expect: Verdict::Allow,
        },
        Case {
            name: "allow: exactly $500",
            state: session.clone(),
            call: refund(500.0, "#W3"),
            expect: Verdict::Allow,
        },
        Case {
            name: "block: nobody verified",
            state: SessionState::new(workflow),
            call: refund(25.0, "#W1"),
            expect: Verdict::Block,
        },
        Case {
            name: "block: an order never looked up",
            state: session.clone(),
            call: refund(25.0, "#W2"),
            expect: Verdict::Block,
        },
        Case {
            name: "block: over the remaining amount",
            state: session.clone(),
            call: refund(90.5, "#W1"),
            expect: Verdict::Block,
        },
        Case {
            name: "block: arguments violate the schema",
            state: session.clone(),
            call: ToolCall::new("r9", "process_refund", json!({"order_id": "W1", "amount": -5})),
            expect: Verdict::Block,
        },
        Case { name: "escalate: $800", state: session.clone(), call: refund(800.0, "#W3"), expect: Verdict::Escalate },
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn ns(d: Duration) -> u128 {
    d.as_nanos()
}

pub fn decide_bench(calls: usize, only: Option<&str>) -> Result<ExitCode> {
    let workflow = tollgate_core::compile(crate::demo::SUPPORT_REFUNDS, "support-refunds.toml")
        .map_err(|p| anyhow::anyhow!("the reference workflow does not compile: {p:?}"))?;
    let mut cases = cases(&workflow);
    if let Some(only) = only {
        cases.retain(|case| case.name.contains(only));
        if cases.is_empty() {
            bail!("no case matches '{only}'");
        }
    }
    for case in &cases {
        let got = decide(&workflow, &case.state, &case.call).verdict();
        if got != case.expect {
            bail!("{}: decided {got:?}, expected {:?}", case.name, case.expect);
        }
    }
    let per_case = (calls / cases.len()).max(1);
    // Warm up, then time every call on its own, cycling through the cases.
    for case in &cases {
        for _ in 0..2_000 {
            black_box(decide(&workflow, &case.state, black_box(&case.call)));
        }
    }
    let clock: Vec<Duration> = (0..10_000).map(|_| Instant::now().elapsed()).collect();
    let mut by_case: Vec<Vec<Duration>> = vec![Vec::with_capacity(per_case); cases.len()];
    for _ in 0..per_case {
        for (case, samples) in cases.iter().zip(by_case.iter_mut()) {
            let start = Instant::now();
            black_box(decide(&workflow, &case.state, black_box(&case.call)));
            samples.push(start.elapsed());
        }
    }
    let mut clock = clock;
    clock.sort();
    out!(
        "decide on the reference workflow, {} calls ({} per case), each timed alone",
        per_case * cases.len(),
        per_case
    );
    out!("clock overhead (included below): median {} ns", ns(percentile(&clock, 0.5)));
    out!("{:<44} {:>10} {:>10} {:>10}", "case", "median ns", "p99 ns", "p99.9 ns");
    let mut all = Vec::with_capacity(per_case * cases.len());
    for (case, samples) in cases.iter().zip(by_case.iter_mut()) {
        samples.sort();
        out!(
            "{:<44} {:>10} {:>10} {:>10}",
            case.name,
            ns(percentile(samples, 0.5)),
            ns(percentile(samples, 0.99)),
            ns(percentile(samples, 0.999))
        );
        all.extend_from_slice(samples);
    }
    all.sort();
    out!(
        "{:<44} {:>10} {:>10} {:>10}",
        "all cases",
        ns(percentile(&all, 0.5)),
        ns(percentile(&all, 0.99)),
        ns(percentile(&all, 0.999))
    );
    Ok(ExitCode::SUCCESS)
}

/// Checks the count given on the command line.
pub fn calls(text: &str) -> Result<usize> {
    let calls: usize = text.parse().with_context(|| format!("'{text}' is not a number of calls"))?;
    if calls == 0 {
        bail!("the number of calls must be positive");
    }
    Ok(calls)
}

/// `tollgate bench replay`: decided calls per second through the pure
/// replay (decide, apply, record the recorded result) on this thread. The
/// traces are read, parsed and prepared first (`trace::Prepared`: calls
/// built, results converted to the core's value type); each run replays all
/// of them as often as it takes to decide at least 200,000 calls, and the
/// median run is reported. For comparison it also times replays that
/// convert every result from parsed JSON again on each pass
/// (`trace::replay`), which is what a one-off replay of a log does.
pub fn replay_bench(workflow: &Path, traces: &[PathBuf], runs: usize, now: Option<&str>) -> Result<ExitCode> {
    let (_, workflow) = crate::replay::load_workflow(workflow)?;
    let mut traces = crate::replay::load_traces(traces)?;
    let fallback = crate::replay::fallback_now(now)?;
    for trace in &mut traces {
        trace.now.get_or_insert_with(|| fallback.clone());
    }
    let prepared: Vec<trace::Prepared> = traces.iter().map(|t| trace::Prepared::new(&workflow, t)).collect();
    let pass = |prepared: &[trace::Prepared]| -> Vec<Vec<trace::CallOutcome>> {
        prepared.iter().map(|t| t.replay(&workflow)).collect()
    };
    let pass_from_json = |traces: &[trace::Trace]| -> Vec<Vec<trace::CallOutcome>> {
        traces.iter().map(|t| trace::replay(&workflow, t)).collect()
    };
    let outcomes = pass(&prepared);
    let calls: usize = outcomes.iter().map(Vec::len).sum();
    if calls == 0 {
        bail!("the traces hold no agent calls to decide");
    }
    if pass_from_json(&traces) != outcomes {
        bail!("replaying prepared traces decided differently from replaying them from JSON");
    }
    let (mut allowed, mut blocked, mut escalated) = (0, 0, 0);
    for outcome in outcomes.iter().flatten() {
        match outcome.verdict() {
            Verdict::Allow => allowed += 1,
            Verdict::Block => blocked += 1,
            Verdict::Escalate => escalated += 1,
        }
    }
    let calls_per_run: usize = 200_000;
    let repeats = calls_per_run.div_ceil(calls);
    // Warm up once, then time each run as a whole; the two ways alternate
    // run by run, so both see the same machine.
    black_box(pass(black_box(&prepared)));
    let (mut rates, mut rates_from_json): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let start = Instant::now();
        for _ in 0..repeats {
            black_box(pass(black_box(&prepared)));
        }
        rates.push((repeats * calls) as f64 / start.elapsed().as_secs_f64());
        let start = Instant::now();
        for _ in 0..repeats {
            black_box(pass_from_json(black_box(&traces)));
        }
        rates_from_json.push((repeats * calls) as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates_from_json.sort_by(f64::total_cmp);
    out!(
        "replay under workflow {} v{}: {} traces, {calls} decided calls ({allowed} allowed, {blocked} blocked, \
         {escalated} escalated) per pass",
        workflow.name(),
        workflow.version(),
        traces.len()
    );
    out!("{runs} runs of {repeats} passes ({} calls each), one thread, input parsed beforehand", repeats * calls);
    let median = |rates: &[f64]| rates.get(rates.len() / 2).copied().unwrap_or_default();
    let range = |rates: &[f64]| (rates.first().copied().unwrap_or_default(), rates.last().copied().unwrap_or_default());
    let (low, high) = range(&rates);
    out!("median: {:.0} calls/s (range {low:.0} to {high:.0})", median(&rates));
    let (low, high) = range(&rates_from_json);
    out!(
        "converting each result from JSON on every pass: median {:.0} calls/s (range {low:.0} to {high:.0})",
        median(&rates_from_json)
    );
    Ok(ExitCode::SUCCESS)
}

/// Checks the number of runs given on the command line.
pub fn runs(text: &str) -> Result<usize> {
    let runs: usize = text.parse().with_context(|| format!("'{text}' is not a number of runs"))?;
    if runs == 0 {
        bail!("the number of runs must be positive");
    }
    Ok(runs)
}
