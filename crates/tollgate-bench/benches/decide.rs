//! How long one refund decision takes, per engine.
//!
//! Every function of the `decide` group cycles through [`tollgate_bench::sample_requests`]
//! (allow, block and escalate cases), one request per iteration, so a reported time is the mean
//! decision over that mix. Fixtures (the compiled workflow, parsed and validated policies,
//! schemas) are built once, outside the measurement.
//!
//! - `tollgate`: drive a new session through the calls the request describes (`get_customer`,
//!   `lookup_order`, earlier refunds: each decided, applied and its result recorded), then decide
//!   the `process_refund` call. The history calls are decided too, since Tollgate records results
//!   only for calls it allowed, so this does more work than the peers' full variants.
//! - `tollgate_decide_only`: `decide` alone on the `process_refund` call, against a session state
//!   driven outside the timed region (`decide` only reads it, so the same state serves every
//!   iteration).
//! - `cedar`: build the session and order entities, the context and the request, then authorize.
//! - `cedar_authorize_only`: the authorizer alone, on requests and entities built beforehand.
//! - `dogwood`: start a session, ingest its history events (verification, order lookup, earlier
//!   refund), then decide the `process_refund` request event.
//! - `dogwood_request_only`: the `process_refund` request event alone, on a session whose history
//!   was ingested outside the timed region.
//!
//! Each function is warmed up for 1 s and measured for 3 s, which keeps a run within minutes on a
//! two-core machine. Criterion reports means; per-call medians and tail percentiles of the same
//! six variants come from `benches/latency.rs`.
//!
//! Run with `cargo bench -p tollgate-bench` (both benches) or `cargo bench -p tollgate-bench
//! --bench decide`.

// Bench fixtures are programmer-controlled: a failure to build one is a bug to surface at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tollgate_bench::cedar_refund::CedarRefund;
use tollgate_bench::dogwood_refund::{self, DogwoodRefund};
use tollgate_bench::sample_requests;
use tollgate_bench::tollgate_refund::TollgateRefund;

fn decide(c: &mut Criterion) {
    let requests: Vec<_> = sample_requests().into_iter().map(|(req, _)| req).collect();
    let mut group = c.benchmark_group("decide");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));

    let tollgate = TollgateRefund::new().expect("the reference workflow compiles");
    group.bench_function("tollgate", |b| {
        let mut next = requests.iter().cycle();
        b.iter(|| {
            let req = next.next().unwrap();
            black_box(tollgate.decide(black_box(req)))
        });
    });

    let prepared: Vec<_> =
        requests.iter().map(|req| tollgate.prepare(req).expect("the Tollgate session is prepared")).collect();
    group.bench_function("tollgate_decide_only", |b| {
        let mut next = prepared.iter().cycle();
        b.iter(|| {
            let session = next.next().unwrap();
            black_box(tollgate.decide_prepared(black_box(session)))
        });
    });

    let cedar = CedarRefund::new().expect("the Cedar fixture builds");
    group.bench_function("cedar", |b| {
        let mut next = requests.iter().cycle();
        b.iter(|| {
            let req = next.next().unwrap();
            black_box(cedar.decide(black_box(req)))
        });
    });

    let built: Vec<_> = requests.iter().map(|req| cedar.build(req).expect("the Cedar request builds")).collect();
    group.bench_function("cedar_authorize_only", |b| {
        let mut next = built.iter().cycle();
        b.iter(|| {
            let (request, entities) = next.next().unwrap();
            black_box(cedar.authorize(black_box(request), black_box(entities)))
        });
    });

    let dogwood = DogwoodRefund::new().expect("the Dogwood fixture builds");
    group.bench_function("dogwood", |b| {
        let mut next = requests.iter().cycle();
        b.iter(|| {
            let req = next.next().unwrap();
            black_box(dogwood.decide(black_box(req)))
        });
    });

    let sessions: Vec<_> = requests
        .iter()
        .map(|req| {
            let history = DogwoodRefund::history(req);
            let ts = i64::try_from(history.len()).unwrap() + 1;
            (history, dogwood_refund::refund_request_event(ts, &req.order_id, req.amount_cents))
        })
        .collect();
    group.bench_function("dogwood_request_only", |b| {
        let mut next = sessions.iter().cycle();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (history, request) = next.next().unwrap();
                dogwood.begin_session(history);
                let start = Instant::now();
                black_box(dogwood.decide_event(black_box(request)));
                total += start.elapsed();
            }
            total
        });
    });

    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
