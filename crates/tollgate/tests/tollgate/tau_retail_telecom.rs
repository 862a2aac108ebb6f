//! `examples/tau2-retail.toml` and `examples/tau2-telecom.toml` against the
//! recorded τ-bench / τ²-bench traces in `../shared/tau/traces/` (read where
//! they lie, filtered by domain into a temporary file). The rules no public
//! trace breaks are tested in `examples/*.tests.toml` (`tollgate test`, see
//! `author.rs`). Every replay runs `tollgate replay --expect` as a user runs it.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

use crate::common::{tau_traces, text, tollgate};

use serde_json::{Value, json};
use std::path::Path;

const RETAIL: &str = "examples/tau2-retail.toml";
const TELECOM: &str = "examples/tau2-telecom.toml";

/// Ground-truth calls that break the written policy and that the benchmark's
/// own tool rejects too (the trace records its error): the workflow refuses
/// them before they run, which the trace files' `expect` does not list.
/// REPORT.md §5 counts such blocks as acceptable ("a block on a GT action the
/// tool rejects anyway"); each is asserted below to be a recorded tool error.
/// (trace id, index, rule id)
const TOOL_REJECTED_TAU2: &[(&str, usize, &str)] = &[
    // An exchange on a pending order (R32).
    ("tau2-bench/retail/test/64", 6, "R-RETURN-EXCHANGE-DELIVERED"),
    // A gift card of $17 for a larger price difference (R36).
    ("tau2-bench/retail/train/105", 4, "R-GIFTCARD-BALANCE"),
];

const TOOL_REJECTED_V1: &[(&str, usize, &str)] = &[
    // A refund to PayPal on an order paid by credit card (R30).
    ("tau-bench/retail/test/12", 4, "R-REFUND-ORIGINAL-OR-GIFTCARD"),
    ("tau-bench/retail/test/13", 4, "R-REFUND-ORIGINAL-OR-GIFTCARD"),
    ("tau-bench/retail/test/64", 6, "R-RETURN-EXCHANGE-DELIVERED"),
    ("tau-bench/retail/test/106", 4, "R-GIFTCARD-BALANCE"),
];

/// The sessions of one domain, each with the tool-rejected calls added to
/// its expected blocks (after checking the tool did reject them).
fn sessions(file: &Path, domain: &str, tool_rejected: &[(&str, usize, &str)]) -> Vec<Value> {
    let all = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut sessions: Vec<Value> = all
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|trace| trace["domain"] == domain)
        .collect();
    for &(id, index, rule) in tool_rejected {
        let trace = sessions.iter_mut().find(|t| t["id"] == id).unwrap_or_else(|| panic!("{id} is not in the file"));
        let event = &trace["events"][index];
        assert!(event["error"].is_string(), "{id} index {index}: the tool did not reject it: {event}");
        let expect = &mut trace["expect"];
        expect["blocked_indexes"].as_array_mut().unwrap().push(json!(index));
        expect["rule_ids"].as_array_mut().unwrap().push(json!(rule));
    }
    sessions
}

/// Replays sessions with `--expect` and returns the summary table's first
/// row (sessions, calls, allowed, blocked, escalated) and the whole output.
fn replay_expect(workflow: &str, sessions: &[Value]) -> ([u64; 5], String) {
    let dir = tollgate_store::testing::temp_dir("tollgate_tau").unwrap();
    let traces = dir.join("traces.jsonl");
    let body: String = sessions.iter().map(|s| format!("{s}\n")).collect();
    std::fs::write(&traces, body).unwrap();
    let db = dir.join("replay.db");
    let output = tollgate(&[
        "replay",
        "--workflow",
        workflow,
        "--db",
        &db.display().to_string(),
        "--expect",
        &traces.display().to_string(),
    ]);
    let all = text(&output);
    assert!(output.status.success(), "{workflow}:\n{all}");
    let row: Vec<u64> = all
        .lines()
        .nth(2)
        .unwrap_or_default()
        .split_whitespace()
        .map(|n| n.parse().unwrap_or_else(|_| panic!("no summary row in:\n{all}")))
        .collect();
    std::fs::remove_dir_all(&dir).ok();
    (row.try_into().unwrap_or_else(|_| panic!("no summary row in:\n{all}")), all)
}

#[test]
fn both_workflows_are_valid() {
    for workflow in [RETAIL, TELECOM] {
        let output = tollgate(&["validate", workflow]);
        assert!(output.status.success(), "{}", text(&output));
    }
}

#[test]
fn tau2_ground_truth_is_allowed_except_what_the_tools_reject_too() {
    let Some(traces) = tau_traces() else { return };
    let file = traces.join("gt_completed_tau2.jsonl");
    let retail = sessions(&file, "retail", TOOL_REJECTED_TAU2);
    let (row, _) = replay_expect(RETAIL, &retail);
    assert_eq!(row, [114, 764, 762, 2, 0]);
    let telecom = sessions(&file, "telecom", &[]);
    let (row, all) = replay_expect(TELECOM, &telecom);
    assert_eq!(row, [134, 212, 212, 0, 0]);
    assert!(all.contains("413 user actions skipped"), "{all}");
}

#[test]
fn tau_v1_retail_ground_truth_is_blocked_only_at_its_same_item_exchanges() {
    let Some(traces) = tau_traces() else { return };
    let retail = sessions(&traces.join("gt_completed_tau_v1.jsonl"), "retail", TOOL_REJECTED_V1);
    let marked: Vec<&str> = retail
        .iter()
        .filter(|t| t["expect"]["rule_ids"].as_array().unwrap().contains(&json!("R-ITEMS-SAME-PRODUCT")))
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(marked, ["tau-bench/retail/test/18", "tau-bench/retail/test/91", "tau-bench/retail/test/108"]);
    let (row, all) = replay_expect(RETAIL, &retail);
    assert_eq!(row, [115, 788, 781, 7, 0]);
    // The summary's per-rule table: only the three same-item exchanges.
    let same_item = all
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.first() == Some(&"R-ITEMS-SAME-PRODUCT"));
    assert_eq!(same_item, Some(vec!["R-ITEMS-SAME-PRODUCT", "3", "0"]), "{all}");
}

#[test]
fn every_public_violation_is_blocked_at_its_index_for_its_rule() {
    let Some(traces) = tau_traces() else { return };
    let file = traces.join("violations_public.jsonl");
    // --expect holds every call before the flagged one to "allow" and the
    // flagged one to a refusal naming the trace's rule.
    let (row, _) = replay_expect(RETAIL, &sessions(&file, "retail", &[]));
    assert_eq!(row, [8, 19, 11, 8, 0]);
    let (row, _) = replay_expect(TELECOM, &sessions(&file, "telecom", &[]));
    assert_eq!(row, [4, 8, 4, 4, 0]);
}
