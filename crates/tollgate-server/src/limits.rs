//! Limits every request meets: a token bucket per API token (per replica),
//! and a deadline per request, measured around the handler with its
//! latency recorded for `/metrics`.

use crate::error::Problem;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Token buckets, one per API token: each holds up to `burst` requests and
/// refills at `per_second`.
pub(crate) struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Most buckets kept; past it, idle ones (full again) are dropped.
const BUCKETS_MAX: usize = 10_000;

impl RateLimiter {
    pub(crate) fn new(per_second: f64, burst: f64) -> RateLimiter {
        RateLimiter { per_second, burst: burst.max(1.0), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one request from `key`'s bucket, or says how many seconds until
    /// one is there.
    pub(crate) fn take(&self, key: &str) -> Result<(), u64> {
        // NaN or not positive: no limit.
        if self.per_second.is_nan() || self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= BUCKETS_MAX && !buckets.contains_key(key) {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < burst);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.burst, at: now });
        let refilled = now.duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refilled).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / self.per_second;
        // At least a second: Retry-After counts whole seconds.
        Err(wait.ceil().max(1.0) as u64)
    }
}

/// Middleware: runs the rest of the request on a task of its own within the
/// deadline. Past it the caller hears a 503 problem; the task still
/// finishes (a decision half-committed is never abandoned), so a retry with
/// the same call id gets the recorded decision. Records the latency.
pub(crate) async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let seconds = state.limits().request_seconds_max;
    let task = tokio::spawn(next.run(request));
    let response = match tokio::time::timeout(Duration::from_secs(seconds), task).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            eprintln!("tollgate serve: a request's task failed: {error}");
            Problem::internal().into_response()
        }
        Err(_) => Problem::deadline(seconds).into_response(),
    };
    crate::metrics::request(&method, &route, response.status().as_u16(), started.elapsed());
    response
}
