//! Per-call latency of one refund decision, per engine: median, p99 and p99.9.
//!
//! Criterion (`benches/decide.rs`) reports the mean over batches of calls; this times every call on
//! its own with [`Instant`], so tails can be quoted. Each engine decides the same requests, cycling
//! through [`tollgate_bench::sample_requests`] (allow, block and escalate cases) in the same order,
//! with the same number of calls:
//!
//! - `tollgate_decide_only`: `decide` on the `process_refund` call, against a session state driven
//!   beforehand (as `decide/tollgate_decide_only`);
//! - `cedar_authorize_only`: the authorizer on a request and entities built beforehand;
//! - `dogwood_request_only`: the `process_refund` request event, on a session whose history was
//!   ingested just before, outside the timed span (it includes the fixture's uncontended mutex);
//! - `tollgate`, `cedar`, `dogwood`: the full variants, as in `benches/decide.rs`.
//!
//! The engines take turns, in rounds of 10,000 calls each, so a slow spell of the machine does not
//! fall on one engine only; every engine is first warmed up on as many calls as one round, with
//! its verdicts checked against the expected ones. A timed span includes reading the clock twice:
//! its own cost is measured the same way and printed first.
//!
//! Run with `cargo bench -p tollgate-bench --bench latency`. `TOLLGATE_LATENCY_CALLS` sets the
//! calls per engine (default 200,000). Without `--bench` (as `cargo test --benches` runs it) it
//! makes 1,000 calls per engine, as a smoke test.

use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};

use tollgate_bench::cedar_refund::CedarRefund;
use tollgate_bench::dogwood_refund::{self, DogwoodRefund};
use tollgate_bench::tollgate_refund::TollgateRefund;
use tollgate_bench::{Verdict, sample_requests};

/// Calls per engine and per round.
const ROUND_CALLS: usize = 10_000;
/// Calls per engine by default.
const CALLS_DEFAULT: usize = 200_000;
/// Calls per engine in smoke-test mode.
const CALLS_SMOKE: usize = 1_000;

type Boxed = Box<dyn Error + Send + Sync>;

/// One way of deciding the `i`-th request of the cycle: returns its verdict and the time the
/// measured part took.
type Decider<'a> = Box<dyn FnMut(usize) -> (Verdict, Duration) + 'a>;

struct Engine<'a> {
    name: &'static str,
    decide: Decider<'a>,
    /// Nanoseconds per call, and per the expected verdict of the call.
    all: Vec<u64>,
    by_verdict: [Vec<u64>; 3],
}

impl<'a> Engine<'a> {
    fn new(name: &'static str, decide: Decider<'a>, calls: usize) -> Self {
        Engine { name, decide, all: Vec::with_capacity(calls), by_verdict: [Vec::new(), Vec::new(), Vec::new()] }
    }
}

/// Runs `f` and returns its verdict and how long it took.
fn time(f: &mut dyn FnMut() -> Verdict) -> (Verdict, Duration) {
    let start = Instant::now();
    let verdict = f();
    (verdict, start.elapsed())
}

fn verdict_index(verdict: Verdict) -> usize {
    match verdict {
        Verdict::Allow => 0,
        Verdict::Block => 1,
        Verdict::Escalate => 2,
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The value at quantile `q` (nearest rank) of sorted samples.
fn quantile(sorted: &[u64], q: f64) -> u64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).or(sorted.last()).copied().unwrap_or(0)
}

struct Summary {
    median: u64,
    p99: u64,
    p999: u64,
    mean: f64,
}

fn summarize(samples: &mut [u64]) -> Summary {
    samples.sort_unstable();
    let sum: u128 = samples.iter().map(|&n| u128::from(n)).sum();
    Summary {
        median: quantile(samples, 0.5),
        p99: quantile(samples, 0.99),
        p999: quantile(samples, 0.999),
        mean: sum as f64 / samples.len().max(1) as f64,
    }
}

fn main() -> Result<(), Boxed> {
    let bench_mode = std::env::args().any(|arg| arg == "--bench");
    let calls = if bench_mode {
        match std::env::var("TOLLGATE_LATENCY_CALLS") {
            Ok(text) => text.parse::<usize>().map_err(|e| format!("TOLLGATE_LATENCY_CALLS={text}: {e}"))?,
            Err(_) => CALLS_DEFAULT,
        }
    } else {
        CALLS_SMOKE
    };

    let samples = sample_requests();
    let requests: Vec<_> = samples.iter().map(|(req, _)| req.clone()).collect();
    let expected: Vec<Verdict> = samples.iter().map(|(_, verdict)| *verdict).collect();
    let count = requests.len();
    let pick = |i: usize| i % count;

    let tollgate = TollgateRefund::new()?;
    let cedar = CedarRefund::new()?;
    let dogwood = DogwoodRefund::new()?;

    let prepared = requests.iter().map(|req| tollgate.prepare(req)).collect::<Result<Vec<_>, _>>()?;
    let built = requests.iter().map(|req| cedar.build(req)).collect::<Result<Vec<_>, _>>()?;
    let sessions: Vec<_> = requests
        .iter()
        .map(|req| {
            let history = DogwoodRefund::history(req);
            let ts = i64::try_from(history.len()).unwrap_or(i64::MAX - 1) + 1;
            (history, dogwood_refund::refund_request_event(ts, &req.order_id, req.amount_cents))
        })
        .collect();

    let engine = |name: &'static str, decide| Engine::new(name, decide, calls);
    let mut engines = vec![
        engine(
            "tollgate_decide_only",
            Box::new(|i| match prepared.get(pick(i)) {
                Some(session) => time(&mut || black_box(tollgate.decide_prepared(black_box(session)))),
                None => (Verdict::Block, Duration::ZERO),
            }),
        ),
        engine(
            "cedar_authorize_only",
            Box::new(|i| match built.get(pick(i)) {
                Some((request, entities)) => {
                    time(&mut || black_box(cedar.authorize(black_box(request), black_box(entities))))
                }
                None => (Verdict::Block, Duration::ZERO),
            }),
        ),
        engine(
            "dogwood_request_only",
            Box::new(|i| match sessions.get(pick(i)) {
                Some((history, request)) => {
                    dogwood.begin_session(history);
                    time(&mut || black_box(dogwood.decide_event(black_box(request))))
                }
                None => (Verdict::Block, Duration::ZERO),
            }),
        ),
        engine(
            "tollgate",
            Box::new(|i| match requests.get(pick(i)) {
                Some(req) => time(&mut || black_box(tollgate.decide(black_box(req)))),
                None => (Verdict::Block, Duration::ZERO),
            }),
        ),
        engine(
            "cedar",
            Box::new(|i| match requests.get(pick(i)) {
                Some(req) => time(&mut || black_box(cedar.decide(black_box(req)))),
                None => (Verdict::Block, Duration::ZERO),
            }),
        ),
        engine(
            "dogwood",
            Box::new(|i| match requests.get(pick(i)) {
                Some(req) => time(&mut || black_box(dogwood.decide(black_box(req)))),
                None => (Verdict::Block, Duration::ZERO),
            }),
        ),
    ];

    // The clock's own cost, timed like a call that does nothing.
    let mut overhead: Vec<u64> = (0..calls.min(100_000)).map(|_| nanos(time(&mut || Verdict::Allow).1)).collect();
    let overhead = summarize(&mut overhead);

    // Warm-up, checking every verdict.
    for engine in &mut engines {
        for i in 0..ROUND_CALLS.min(calls) {
            let (verdict, _) = (engine.decide)(i);
            let want = expected.get(pick(i)).copied();
            if Some(verdict) != want {
                return Err(
                    format!("{} decided request {} as {verdict:?}, expected {want:?}", engine.name, pick(i)).into()
                );
            }
        }
    }

    let mut done = 0;
    while done < calls {
        let round = ROUND_CALLS.min(calls - done);
        for engine in &mut engines {
            for i in done..done + round {
                let (_, elapsed) = (engine.decide)(i);
                let ns = nanos(elapsed);
                engine.all.push(ns);
                if let Some(bucket) = expected.get(pick(i)).and_then(|v| engine.by_verdict.get_mut(verdict_index(*v))) {
                    bucket.push(ns);
                }
            }
        }
        done += round;
    }

    println!("per-call latency: {calls} calls per engine over the {count} sample requests, in rounds of {ROUND_CALLS}");
    println!(
        "clock overhead (Instant::now + elapsed, included below): median {} ns, p99 {} ns",
        overhead.median, overhead.p99
    );
    println!();
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>10}   {:>9} {:>9} {:>9}",
        "engine", "median ns", "p99 ns", "p99.9 ns", "mean ns", "allow", "block", "escalate"
    );
    let mut summaries = Vec::new();
    for engine in &mut engines {
        let summary = summarize(&mut engine.all);
        let by: Vec<String> =
            engine.by_verdict.iter_mut().map(|samples| summarize(samples).median.to_string()).collect();
        println!(
            "{:<22} {:>10} {:>10} {:>10} {:>10.0}   {:>9} {:>9} {:>9}",
            engine.name,
            summary.median,
            summary.p99,
            summary.p999,
            summary.mean,
            by.first().map_or("", String::as_str),
            by.get(1).map_or("", String::as_str),
            by.get(2).map_or("", String::as_str),
        );
        summaries.push((engine.name, summary));
    }
    println!("(allow / block / escalate: median ns over the calls expecting that verdict)");

    println!();
    let find = |name: &str| summaries.iter().find(|(n, _)| *n == name).map(|(_, s)| s);
    for (peer, ours) in [
        ("cedar_authorize_only", "tollgate_decide_only"),
        ("dogwood_request_only", "tollgate_decide_only"),
        ("cedar", "tollgate"),
        ("dogwood", "tollgate"),
    ] {
        if let (Some(p), Some(t)) = (find(peer), find(ours)) {
            let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
            println!(
                "{peer} / {ours}: median {:.2}x, p99 {:.2}x, p99.9 {:.2}x",
                ratio(p.median, t.median),
                ratio(p.p99, t.p99),
                ratio(p.p999, t.p999)
            );
        }
    }
    Ok(())
}
