//! Durable steps per second over loopback HTTP against the engine in
//! process, at the same concurrency, on the same store, beside a null
//! handler (an axum route that reads the body and answers `{}`) served and
//! called the same way in the same run; medians of interleaved runs, the p99
//! of an HTTP step at full load, and the p99 with every session paced so
//! that together they ask for half the median HTTP rate.
//!
//! A step is a tool's result and the next call's decision, committed
//! together (`POST /v1/sessions/{id}/steps`, `Tenant::record_and_decide`).
//! Each of `--sessions` concurrent workers drives its own session. Client
//! and server share this process and its cores, so on a small machine the
//! HTTP figure pays for both.
//!
//! ```sh
//! cargo run --release -p tollgate-server --example bench_http -- [--db URL] [--sessions N] [--seconds S] [--runs R]
//! ```
//!
//! Without `--db` it writes to an SQLite file of its own, removed after. It
//! writes sessions and a token into the store it is given: point a
//! PostgreSQL URL at a schema of its own
//! (`postgres://.../db?options=-c%20search_path%3Dbench`) and drop it after.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // a benchmark, not a library

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_core::{ToolCall, ToolOutcome};
use tollgate_engine::{Engine, Role, WorkflowHandle};
use tollgate_server::{Bound, Config, Limits, WorkflowSource};

const REFERENCE: &str = include_str!("../../../examples/support-refunds.toml");

struct Options {
    db: Option<String>,
    sessions: usize,
    seconds: u64,
    runs: usize,
}

fn options() -> Options {
    let mut options = Options { db: None, sessions: 64, seconds: 3, runs: 3 };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--db" => options.db = Some(value),
            "--sessions" => options.sessions = value.parse().expect("--sessions N"),
            "--seconds" => options.seconds = value.parse().expect("--seconds S"),
            "--runs" => options.runs = value.parse().expect("--runs R"),
            other => panic!("unknown option {other}"),
        }
    }
    options
}

/// The customer's verification, pending: each step records its result and
/// asks for it again.
fn verify(id: &str) -> ToolCall {
    ToolCall::new(id, "get_customer", json!({"email": "a@example.com", "zip": "94107"}))
}

fn customer() -> serde_json::Value {
    json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"})
}

/// The body of step `n`: call `c{n}`'s result and call `c{n+1}`.
fn step_body(n: u64) -> Bytes {
    let body = json!({
        "result": {"call_id": format!("c{n}"), "result": customer()},
        "next": {"id": format!("c{}", n + 1), "tool": "get_customer", "args": {"email": "a@example.com", "zip": "94107"}},
    });
    Bytes::from(body.to_string())
}

/// A POST of step `n` to `path`, with `token` if there is one.
fn step_request(path: &str, token: Option<&str>, n: u64) -> hyper::Request<Full<Bytes>> {
    let mut request = hyper::Request::post(path).header("host", "localhost").header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Full::new(step_body(n))).unwrap()
}

async fn start(engine: &Engine, workflow: &WorkflowHandle, session: &str) {
    let acme = engine.for_tenant("acme");
    acme.create_session(workflow, session, None).await.unwrap();
    acme.decide(session, &verify("c0")).await.unwrap();
}

/// Steps per second and latencies (ms) of `workers` workers for `seconds`,
/// each on its own session, each step made by `step(worker, n)`.
async fn measure<F, Fut>(workers: usize, seconds: u64, step: F) -> (f64, Vec<f64>)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let step = Arc::new(step);
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let step = Arc::clone(&step);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0;
                while Instant::now() < end {
                    let at = Instant::now();
                    step(worker, n).await;
                    latencies.push(at.elapsed().as_secs_f64() * 1000.0);
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    (rate, latencies)
}

/// Latencies (ms) of `workers` workers for `seconds`, each starting one
/// step every `every` (a step that takes longer delays the next one; none
/// is skipped).
async fn measure_paced<F, Fut>(workers: usize, seconds: u64, every: Duration, step: F) -> Vec<f64>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let step = Arc::new(step);
    let end = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let step = Arc::clone(&step);
            tokio::spawn(async move {
                // Spread the workers' first steps over one interval.
                let offset = every.mul_f64(worker as f64 / workers.max(1) as f64);
                let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + offset, every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut latencies = Vec::new();
                let mut n = 0;
                loop {
                    ticks.tick().await;
                    if Instant::now() >= end {
                        break;
                    }
                    let at = Instant::now();
                    step(worker, n).await;
                    latencies.push(at.elapsed().as_secs_f64() * 1000.0);
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    latencies
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn p99(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[(values.len() * 99 / 100).min(values.len() - 1)]
}

/// A kept-alive HTTP/1 connection to `addr`.
async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    sender
}

#[tokio::main]
async fn main() {
    let options = options();
    let dir = std::env::temp_dir().join(format!("tollgate-bench-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = options.db.clone().unwrap_or_else(|| dir.join("bench.db").display().to_string());
    let engine = Arc::new(Engine::open(&db).await.unwrap());
    let workflow = engine.register_workflow(REFERENCE, "support-refunds.toml").await.unwrap();
    let token = engine.create_token("acme", Role::Agent, "bench").await.unwrap().1;
    let run_id = std::process::id();

    let workflows = vec![WorkflowSource { path: "support-refunds.toml".into(), text: REFERENCE.to_owned() }];
    let mut config = Config::new(workflows, db.clone(), "127.0.0.1:0".parse().unwrap());
    config.limits = Limits { rate_per_second: 0.0, ..Limits::default() };
    let bound = Bound::bind(config).await.unwrap();
    let addr = bound.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.run(async move {
        let _ = stopped.await;
    }));
    // The null handler: what HTTP, hyper and axum cost with nothing behind.
    let null_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let null_addr = null_listener.local_addr().unwrap();
    let null_router = axum::Router::new().route(
        "/null",
        axum::routing::post(|body: Bytes| async move {
            std::hint::black_box(body);
            "{}"
        }),
    );
    tokio::spawn(async move { axum::serve(null_listener, null_router).await });

    println!(
        "backend {}, {} concurrent sessions, {} s a run, {} runs each, interleaved",
        engine.backend(),
        options.sessions,
        options.seconds,
        options.runs
    );
    let (mut engine_rates, mut http_rates, mut http_latencies, mut engine_latencies) = (vec![], vec![], vec![], vec![]);
    let mut null_rates = vec![];
    for run in 0..options.runs {
        // In process.
        let sessions: Vec<String> = (0..options.sessions).map(|w| format!("e{run_id}-{run}-{w}")).collect();
        for session in &sessions {
            start(&engine, &workflow, session).await;
        }
        let (engine_, sessions_) = (Arc::clone(&engine), Arc::new(sessions));
        let (rate, mut latencies) = measure(options.sessions, options.seconds, move |worker, n| {
            let (engine, sessions) = (Arc::clone(&engine_), Arc::clone(&sessions_));
            async move {
                let session = &sessions[worker];
                let next = verify(&format!("c{}", n + 1));
                let acme = engine.for_tenant("acme");
                acme.record_and_decide(session, &format!("c{n}"), &customer(), ToolOutcome::Succeeded, &next)
                    .await
                    .unwrap();
            }
        })
        .await;
        engine_rates.push(rate);
        engine_latencies.push(p99(&mut latencies));

        // Over HTTP.
        let sessions: Vec<String> = (0..options.sessions).map(|w| format!("h{run_id}-{run}-{w}")).collect();
        for session in &sessions {
            start(&engine, &workflow, session).await;
        }
        let mut connections = Vec::new();
        for _ in 0..options.sessions {
            connections.push(tokio::sync::Mutex::new(connect(addr).await));
        }
        let (connections, sessions, token_) = (Arc::new(connections), Arc::new(sessions), token.clone());
        let (rate, mut latencies) = measure(options.sessions, options.seconds, move |worker, n| {
            let (connections, sessions, token) = (Arc::clone(&connections), Arc::clone(&sessions), token_.clone());
            async move {
                let request = step_request(&format!("/v1/sessions/{}/steps", sessions[worker]), Some(&token), n);
                let mut connection = connections[worker].lock().await;
                let response = connection.send_request(request).await.unwrap();
                let status = response.status();
                let bytes = response.into_body().collect().await.unwrap().to_bytes();
                assert!(status.is_success(), "{status}: {}", String::from_utf8_lossy(&bytes));
            }
        })
        .await;
        http_rates.push(rate);
        http_latencies.push(p99(&mut latencies));

        // The null handler, the same body, the same client.
        let mut connections = Vec::new();
        for _ in 0..options.sessions {
            connections.push(tokio::sync::Mutex::new(connect(null_addr).await));
        }
        let connections = Arc::new(connections);
        let (rate, _) = measure(options.sessions, options.seconds, move |worker, n| {
            let connections = Arc::clone(&connections);
            async move {
                let request = step_request("/null", None, n);
                let mut connection = connections[worker].lock().await;
                let response = connection.send_request(request).await.unwrap();
                assert!(response.status().is_success());
                response.into_body().collect().await.unwrap();
            }
        })
        .await;
        null_rates.push(rate);
        println!(
            "run {}: engine {:.0} steps/s (p99 {:.2} ms), HTTP {:.0} steps/s (p99 {:.2} ms), null handler {:.0} requests/s",
            run + 1,
            engine_rates[run],
            engine_latencies[run],
            http_rates[run],
            http_latencies[run],
            null_rates[run]
        );
    }
    let (engine_rate, http_rate) = (median(&mut engine_rates), median(&mut http_rates));
    println!(
        "median: engine {engine_rate:.0} steps/s, HTTP {http_rate:.0} steps/s = {:.2}x; null handler {:.0} requests/s; \
         p99 of an HTTP step at full load {:.2} ms (median of runs)",
        http_rate / engine_rate,
        median(&mut null_rates),
        median(&mut http_latencies)
    );

    // Half the peak: every session paced so that together they ask for
    // half the median HTTP rate.
    let sessions: Vec<String> = (0..options.sessions).map(|w| format!("p{run_id}-{w}")).collect();
    for session in &sessions {
        start(&engine, &workflow, session).await;
    }
    let mut connections = Vec::new();
    for _ in 0..options.sessions {
        connections.push(tokio::sync::Mutex::new(connect(addr).await));
    }
    let every = Duration::from_secs_f64(options.sessions as f64 / (http_rate / 2.0));
    let (connections, sessions, token_) = (Arc::new(connections), Arc::new(sessions), token.clone());
    let started = Instant::now();
    let mut latencies = measure_paced(options.sessions, options.seconds.max(5), every, move |worker, n| {
        let (connections, sessions, token) = (Arc::clone(&connections), Arc::clone(&sessions), token_.clone());
        async move {
            let request = step_request(&format!("/v1/sessions/{}/steps", sessions[worker]), Some(&token), n);
            let mut connection = connections[worker].lock().await;
            let response = connection.send_request(request).await.unwrap();
            assert!(response.status().is_success());
            response.into_body().collect().await.unwrap();
        }
    })
    .await;
    let achieved = latencies.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "half the peak ({:.0} steps/s asked, {achieved:.0} done): HTTP step median {:.2} ms, p99 {:.2} ms",
        http_rate / 2.0,
        median(&mut latencies),
        p99(&mut latencies)
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    engine.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
