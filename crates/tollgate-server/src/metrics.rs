//! Prometheus metrics (`GET /metrics`): decisions by verdict, handoff
//! actions by the status they lead to, request latency by route. Counts
//! only: no tenant, session or token appears in a label.
//!
//! The recorder is global to the process (one per process, as `metrics`
//! has it): several servers in one process (tests) share the counts.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Installs the process's recorder (once); `None` if another recorder was
/// installed before (then `/metrics` says so).
pub(crate) fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(&BUCKETS).ok()?;
            builder.install_recorder().ok()
        })
        .as_ref()
}

/// A decision was answered.
pub(crate) fn decision(verdict: &'static str) {
    metrics::counter!("tollgate_decisions_total", "verdict" => verdict).increment(1);
}

/// A handoff moved to `status` (`open` when an escalation opened it).
pub(crate) fn handoff(status: &str) {
    let status = match status {
        "open" => "open",
        "claimed" => "claimed",
        "approved" => "approved",
        "denied" => "denied",
        "resolved" => "resolved",
        "expired" => "expired",
        _ => "other",
    };
    metrics::counter!("tollgate_handoffs_total", "status" => status).increment(1);
}

/// A request was answered.
pub(crate) fn request(method: &str, route: &str, status: u16, took: Duration) {
    metrics::histogram!(
        "tollgate_http_request_duration_seconds",
        "method" => match method {
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" => method.to_owned(),
            _ => "other".to_owned(),
        },
        "route" => route.to_owned(),
        "status" => status.to_string(),
    )
    .record(took.as_secs_f64());
}
