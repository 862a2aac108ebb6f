//! `tollgate bench durable`: the figures of `tollgate-durable-bench`,
//! printed as text or as one JSON object.

use anyhow::Result;
use serde_json::Value as Json;
use std::process::ExitCode;

/// Measures (see `tollgate_durable_bench::run`) and prints.
pub fn durable_bench(url: Option<String>, json_out: bool) -> Result<ExitCode> {
    let figures = tollgate_durable_bench::run(url)?;
    print_figures(&figures, json_out);
    Ok(ExitCode::SUCCESS)
}

/// Prints the figures, as text or as one JSON object.
fn print_figures(figures: &Json, json_out: bool) {
    if json_out {
        out!("{figures}");
        return;
    }
    let f = |key: &str| figures.get(key).and_then(Json::as_f64).unwrap_or(f64::NAN);
    out!("store: {}", figures.get("store").and_then(Json::as_str).unwrap_or("?"));
    out!("raw fsync (4 KiB write + fdatasync), median:  {:>10.1} µs", f("raw_fsync_us"));
    out!("raw commit (one row, durable), median:        {:>10.1} µs", f("raw_commit_us"));
    out!(
        "engine step (decide, durable), median:        {:>10.1} µs  = {:.2}x the raw commit",
        f("engine_step_us"),
        f("engine_step_over_raw_commit")
    );
    if figures.get("store").and_then(Json::as_str) == Some("sqlite") {
        out!(
            "the same, the commit handed to tokio's blocking pool: {:>10.1} µs  = {:.2}x (SQLite's default; the above blocks in place)",
            f("engine_step_commit_on_blocking_pool_us"),
            f("engine_step_commit_on_blocking_pool_over_raw_commit")
        );
    }
    out!(
        "three-step workflow, per step (decide + result), median: {:>10.1} µs  = {:.2}x the raw commit",
        f("three_step_workflow_per_step_us"),
        f("three_step_per_step_over_raw_commit")
    );
    out!(
        "the same, each result sent with the next call:    {:>10.1} µs  = {:.2}x the raw commit",
        f("three_step_looped_per_step_us"),
        f("three_step_looped_per_step_over_raw_commit")
    );
    out!(
        "durable decisions, 64 concurrent sessions:    {:>10.0} /s  ({:.1} a commit)",
        f("decisions_per_second_64_sessions"),
        f("decisions_per_group_commit_64_sessions")
    );
    out!(
        "the same 64 decisions' rows, store alone:     {:>10.0} /s  (no engine: the ceiling of the above; engine {:.0}% of it)",
        f("store_only_decisions_per_second_64_sessions"),
        100.0 * f("decisions_per_second_64_sessions") / f("store_only_decisions_per_second_64_sessions")
    );
    out!(
        "durable decisions, 1,024 concurrent sessions: {:>10.0} /s  ({:.1} a commit)",
        f("decisions_per_second_1024_sessions"),
        f("decisions_per_group_commit_1024_sessions")
    );
    out!(
        "process CPU per decision, 64 / 1,024 sessions: {:>9.1} / {:.1} µs  (so at most {:.0} /s on {} cores)",
        f("cpu_us_per_decision_64_sessions"),
        f("cpu_us_per_decision_1024_sessions"),
        f("cores") * 1e6 / f("cpu_us_per_decision_1024_sessions"),
        f("cores")
    );
    if figures.get("one_indexed_table_decisions_per_second_64_sessions").is_some_and(Json::is_number) {
        out!(
            "64 decisions' texts, one table, one index:    {:>10.0} /s  (any layout that finds a session's entries)",
            f("one_indexed_table_decisions_per_second_64_sessions")
        );
    }
    out!("resume, median:                               {:>10.1} µs", f("resume_us"));
    out!(
        "audit verify:                                 {:>10.0} records/s ({} records)",
        f("audit_verify_records_per_second"),
        f("audit_verify_records")
    );
}
