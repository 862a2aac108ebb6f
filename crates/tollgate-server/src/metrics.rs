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

/// A decision was answered, with the rules behind it (a block's or an
/// escalation's reasons; the workflow's rule ids and Tollgate's own
/// `tollgate.*`, a bounded set).
pub(crate) fn decision(verdict: &'static str, rules: &[&str]) {
    metrics::counter!("tollgate_decisions_total", "verdict" => verdict).increment(1);
    for rule in rules {
        metrics::counter!("tollgate_decision_rules_total", "verdict" => verdict, "rule" => (*rule).to_owned())
            .increment(1);
    }
}

/// The queue's gauges, read from the store at each scrape (so every
/// replica shows the same queue): handoffs waiting for a person and how
/// long the oldest has waited, by urgency; and whether the store could be
/// read for them. Prometheus text, appended to the recorder's.
pub(crate) fn queue_gauges(waiting: Result<&[tollgate_engine::Waiting], ()>) -> String {
    let mut out = String::new();
    out.push_str("# HELP tollgate_handoffs_waiting Handoffs open or claimed, by urgency.\n");
    out.push_str("# TYPE tollgate_handoffs_waiting gauge\n");
    let rows = waiting.unwrap_or_default();
    for w in rows {
        out.push_str(&format!("tollgate_handoffs_waiting{{urgency=\"{}\"}} {}\n", label(&w.urgency), w.count));
    }
    out.push_str(
        "# HELP tollgate_handoffs_oldest_waiting_seconds How long the oldest handoff open or claimed has waited, by urgency.\n",
    );
    out.push_str("# TYPE tollgate_handoffs_oldest_waiting_seconds gauge\n");
    for w in rows {
        out.push_str(&format!(
            "tollgate_handoffs_oldest_waiting_seconds{{urgency=\"{}\"}} {}\n",
            label(&w.urgency),
            w.oldest_waited_ms as f64 / 1000.0
        ));
    }
    out.push_str("# HELP tollgate_queue_readable Whether the store could be read for the queue's gauges.\n");
    out.push_str("# TYPE tollgate_queue_readable gauge\n");
    out.push_str(&format!("tollgate_queue_readable {}\n", u8::from(waiting.is_ok())));
    out
}

/// A label value in Prometheus' text format: backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
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
