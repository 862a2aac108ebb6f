//! `examples/tau2-airline.toml` against the recorded τ airline traces in
//! `../shared/tau/traces/` (beside the repository), replayed with
//! `tollgate replay --expect` as a user runs it: the τ² ground truth with no
//! block, the τ-bench v1 ground truth blocked exactly where it breaks the
//! written policy, and every public airline violation blocked at its call
//! for its rule with nothing blocked before it. Without the traces the
//! tests say they skip; under `CI=true` that is a failure. The hand-made
//! scenarios in `tests/fixtures/replay/airline_scenarios.tau.jsonl` (rules
//! no recorded trace exercises) run everywhere.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

use crate::common::{tau_traces, text, tollgate};

use std::path::Path;
use std::process::Output;

const WORKFLOW: &str = "examples/tau2-airline.toml";
const SCENARIOS: &str = "crates/tollgate/tests/fixtures/replay/airline_scenarios.tau.jsonl";

/// The airline sessions of a trace file, written to `dir`; their count.
fn airline_only(source: &Path, dir: &Path) -> (String, usize) {
    let text = std::fs::read_to_string(source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| {
            let trace: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            trace["domain"] == "airline"
        })
        .collect();
    let path = dir.join(source.file_name().unwrap());
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    (path.display().to_string(), lines.len())
}

/// Replays `traces` with `--expect` into a fresh database; the output.
fn replay_expect(dir: &Path, traces: &str, json: bool) -> Output {
    let db = dir.join("replay.db").display().to_string();
    let mut args = vec!["replay", "--workflow", WORKFLOW, "--db", &db, "--expect"];
    if json {
        args.push("--json");
    }
    args.push(traces);
    tollgate(&args)
}

/// The summary line: sessions, calls, allowed, blocked, escalated.
fn summary(output: &Output) -> Vec<usize> {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let line = stdout.lines().nth(2).unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    line.split_whitespace().map(|n| n.parse().unwrap_or_else(|e| panic!("{line}: {e}"))).collect()
}

#[test]
fn the_workflow_is_valid() {
    let output = tollgate(&["validate", WORKFLOW]);
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn tau2_ground_truth_is_never_blocked() {
    let Some(traces) = tau_traces() else { return };
    let dir = tollgate_store::testing::temp_dir("tollgate_tau_airline").unwrap();
    let (file, sessions) = airline_only(&traces.join("gt_completed_tau2.jsonl"), &dir);
    assert_eq!(sessions, 50);
    let output = replay_expect(&dir, &file, false);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(summary(&output), [50, 271, 271, 0, 0], "{}", text(&output));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn tau_v1_ground_truth_is_blocked_exactly_where_it_breaks_the_policy() {
    let Some(traces) = tau_traces() else { return };
    let dir = tollgate_store::testing::temp_dir("tollgate_tau_airline").unwrap();
    let (file, sessions) = airline_only(&traces.join("gt_completed_tau_v1.jsonl"), &dir);
    assert_eq!(sessions, 50);
    let output = replay_expect(&dir, &file, false);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    // Eleven calls in ten sessions (REPORT.md §5); the two cancellations of a
    // trip already flown are handed to a human rather than refused.
    assert_eq!(summary(&output), [50, 195, 184, 9, 2], "{out}");
    assert!(out.contains("expect: all 50 traces with an expect field decided as expected"), "{out}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn every_public_airline_violation_is_blocked_at_its_call_for_its_rule_and_not_before() {
    let Some(traces) = tau_traces() else { return };
    let dir = tollgate_store::testing::temp_dir("tollgate_tau_airline").unwrap();
    let (file, sessions) = airline_only(&traces.join("violations_public.jsonl"), &dir);
    assert_eq!(sessions, 6);
    let output = replay_expect(&dir, &file, true);
    assert!(output.status.success(), "{}", text(&output));

    // The same, case by case, from the decisions themselves.
    let decisions: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let cases: Vec<serde_json::Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let flagged = case["expect"]["blocked_indexes"][0].as_u64().unwrap();
        let rule = case["expect"]["rule_ids"][0].as_str().unwrap();
        let mine: Vec<&serde_json::Value> = decisions.iter().filter(|d| d["trace"] == id).collect();
        for decision in &mine {
            let index = decision["index"].as_u64().unwrap();
            let refused = decision["verdict"] != "allow";
            if index < flagged {
                assert!(!refused, "{id}: call {index} before the violation was refused: {decision}");
            }
            if index == flagged {
                assert!(refused, "{id}: the violation at {index} was allowed");
                assert!(
                    decision["rule_ids"].as_array().unwrap().iter().any(|r| r == rule),
                    "{id}: refused for other rules than {rule}: {decision}"
                );
            }
        }
        assert!(mine.iter().any(|d| d["index"].as_u64() == Some(flagged)), "{id}: the flagged call was not decided");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn hand_made_scenarios_decide_as_expected() {
    let dir = tollgate_store::testing::temp_dir("tollgate_tau_airline").unwrap();
    let output = replay_expect(&dir, SCENARIOS, false);
    let out = text(&output);
    assert!(output.status.success(), "{out}");
    assert!(out.contains("expect: all 21 traces with an expect field decided as expected"), "{out}");
    std::fs::remove_dir_all(dir).unwrap();
}
