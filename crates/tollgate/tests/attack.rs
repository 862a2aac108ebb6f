//! `tollgate attack`: the reference workflow holds under 100,000 seeded
//! attempts, and each τ² workflow under attempts seeded from the τ²
//! ground-truth traces of its domain (`../shared/tau/traces/`, read where
//! they lie); workflows with a hole planted in them are caught, with a
//! minimised sequence that reproduces the hole; the same seed prints the
//! same report.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

mod common;

use common::{root, stdout, tollgate};

use std::path::Path;
use std::process::Output;

const WORKFLOW: &str = "examples/support-refunds.toml";
const TRACES: &str = "examples/support-refunds.traces.jsonl";

/// The number printed right before `label` in the report (`74270 allowed and judged`).
fn figure(report: &str, label: &str) -> u64 {
    let at = report.find(label).unwrap_or_else(|| panic!("no '{label}' in:\n{report}"));
    let digits: String = report[..at]
        .trim_end()
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().unwrap_or_else(|_| panic!("no number before '{label}' in:\n{report}"))
}

/// The reference workflow with `from` replaced by `to` (each must occur).
fn weakened(dir: &Path, name: &str, edits: &[(&str, &str)]) -> String {
    weakened_from(WORKFLOW, dir, name, edits)
}

/// `workflow` with `from` replaced by `to` (each must occur).
fn weakened_from(workflow: &str, dir: &Path, name: &str, edits: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(root().join(workflow)).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{name}: {workflow} no longer contains {from:?}");
        text = text.replacen(from, to, 1);
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn the_reference_workflow_holds_under_100000_attempts() {
    let output = tollgate(&["attack", "--workflow", WORKFLOW, "--traces", TRACES, "--attempts", "100000"]);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(report.contains("no bypass found in 100050 attempts"), "{report}");
    assert!(report.contains("oracle: 7 declared invariant(s), 5 built in"), "{report}");
    // The hunt reaches every outcome, so the oracle judged real allows.
    assert!(figure(&report, "allowed and judged") > 100_000, "{report}");
    assert!(figure(&report, "blocked,") > 100_000, "{report}");
    assert!(figure(&report, "escalated") > 1_000, "{report}");
    // Exactly-once was attacked through the engine.
    assert!(figure(&report, "re-sent calls answered from the journal") > 0, "{report}");
    assert!(figure(&report, "reused ids refused") > 0, "{report}");
}

#[test]
fn planted_holes_are_found_and_minimised() {
    let dir = tollgate_store::testing::temp_dir("tollgate_attack").unwrap();
    let plants = [
        (
            "ownership-removed",
            vec![
                ("where = \"order.customer_id == customer.id\"\n", ""),
                ("rule = \"result.customer_id == customer.id\"", "rule = \"true\""),
            ],
            "refund-of-own-order",
        ),
        (
            "remaining-check-removed",
            vec![("rule = \"args.amount <= order.total - refunded(args.order_id)\"", "rule = \"args.amount > 0.0\"")],
            "refund-within-order-total",
        ),
        (
            "escalation-removed",
            vec![("rule = \"args.amount > 500.0\"", "rule = \"false\"")],
            "refund-over-500-never-plain-allow",
        ),
        (
            "reverification-gate-removed",
            vec![
                ("where = \"reverification.customer_id == customer.id\"\n", ""),
                ("id = \"delete-always-human\"\nrule = \"true\"", "id = \"delete-always-human\"\nrule = \"false\""),
            ],
            "delete-reverified-own-account",
        ),
    ];
    for (name, edits, invariant) in plants {
        let path = weakened(&dir, name, &edits);
        let output = tollgate(&[
            "attack",
            "--workflow",
            &path,
            "--traces",
            TRACES,
            "--attempts",
            "20000",
            "--engine-attempts",
            "0",
            // The reverification hole needs a confirmation naming another
            // customer, which the hunter makes rarely: seed 3 reaches it
            // within 20,000 attempts (seed 1 no longer does since the
            // resize-list mutation changed the stream).
            "--seed",
            "3",
        ]);
        assert_found_and_minimised(&dir, name, &output, invariant, &path, WORKFLOW);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The report of `output` names a bypass of `invariant` whose minimised
/// sequence (at most 8 steps) the weakened workflow allows to its last call
/// and the reference workflow does not.
fn assert_found_and_minimised(dir: &Path, name: &str, output: &Output, invariant: &str, path: &str, reference: &str) {
    let report = stdout(output);
    assert_eq!(output.status.code(), Some(1), "{name}: the hole was not found:\n{report}");
    let header = format!("BYPASS {invariant}:");
    assert!(report.contains(&header), "{name}: expected {header}\n{report}");
    // The minimised sequence: script lines after the finding, until a blank line.
    let sequence: Vec<&str> = report
        .lines()
        .skip_while(|l| !l.starts_with(&header))
        .skip(2)
        .take_while(|l| !l.is_empty())
        .map(str::trim)
        .collect();
    assert!(!sequence.is_empty() && sequence.len() <= 8, "{name}: not minimised: {sequence:#?}");
    // It reproduces: the weakened workflow allows its last call, the reference does not.
    let script = dir.join(format!("{name}.jsonl"));
    std::fs::write(&script, sequence.join("\n")).unwrap();
    let script = script.display().to_string();
    let last_verdict = |workflow: &str| {
        let run = stdout(&tollgate(&["run", "--workflow", workflow, &script]));
        let last = run.lines().rfind(|l| l.contains("\"decision\"")).unwrap_or_default().to_owned();
        serde_json::from_str::<serde_json::Value>(&last).unwrap()["decision"]["verdict"].as_str().unwrap().to_owned()
    };
    assert_eq!(last_verdict(path), "allow", "{name}: {sequence:#?}");
    assert_ne!(last_verdict(reference), "allow", "{name}: {reference} allows it too: {sequence:#?}");
}

#[test]
fn the_same_seed_prints_the_same_report() {
    let run = |seed: &str| {
        let output = tollgate(&[
            "attack",
            "--workflow",
            WORKFLOW,
            "--traces",
            TRACES,
            "--attempts",
            "3000",
            "--engine-attempts",
            "10",
            "--seed",
            seed,
        ]);
        assert_eq!(output.status.code(), Some(0));
        stdout(&output)
    };
    let first = run("7");
    assert_eq!(first, run("7"));
    assert_ne!(first, run("8"), "another seed makes other attempts");
    // A hole is reported identically too, minimised sequence included.
    let dir = tollgate_store::testing::temp_dir("tollgate_attack").unwrap();
    let path = weakened(&dir, "no-escalation", &[("rule = \"args.amount > 500.0\"", "rule = \"false\"")]);
    let hole = |seed: &str| {
        stdout(&tollgate(&["attack", "--workflow", &path, "--traces", TRACES, "--attempts", "2000", "--seed", seed]))
    };
    let report = hole("3");
    assert!(report.contains("BYPASS "), "{report}");
    assert_eq!(report, hole("3"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn without_traces_sessions_are_generated_from_the_workflow() {
    let output = tollgate(&["attack", "--workflow", WORKFLOW, "--attempts", "3000", "--engine-attempts", "5"]);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert!(report.contains("sessions generated from the tool schemas and fact mappings"), "{report}");
    assert!(figure(&report, "allowed and judged") > 0, "some generated calls are allowed: {report}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let missing = tollgate(&["attack", "--workflow", WORKFLOW, "--traces", "no/such/traces.jsonl"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read no/such/traces.jsonl"));
    let dir = tollgate_store::testing::temp_dir("tollgate_attack").unwrap();
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"session\": \"s\"}\n{\"call\": {\"tool\": \"get_customer\"}}\n").unwrap();
    let output = tollgate(&["attack", "--workflow", WORKFLOW, "--traces", &bad.display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(error.contains("bad.jsonl:2: a call needs a string \"id\""), "{error}");
    let zero = tollgate(&["attack", "--workflow", WORKFLOW, "--attempts", "0"]);
    assert_eq!(zero.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

/// The τ² ground-truth traces of every domain, where the repository's
/// sibling `shared/` holds them; `None` (after saying so) when absent,
/// except under `CI=true`.
fn tau2_ground_truth() -> Option<String> {
    common::tau_traces().map(|dir| dir.join("gt_completed_tau2.jsonl").display().to_string())
}

/// A τ² workflow attacked from the ground truth of its domain (picked by
/// attack from the whole file): no bypass, and the oracle judged real
/// allows of the sessions it says it kept.
fn tau2_holds(workflow: &str, domain: &str, sessions: u64, invariants: u64, attempts: &str) {
    let Some(traces) = tau2_ground_truth() else { return };
    let output = tollgate(&[
        "attack",
        "--workflow",
        workflow,
        "--traces",
        &traces,
        "--seed",
        "11",
        "--attempts",
        attempts,
        "--engine-attempts",
        "10",
    ]);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(report.contains(&format!("(tau traces, domain {domain})")), "{report}");
    assert_eq!(figure(&report, "sessions from"), sessions, "{report}");
    assert!(report.contains(&format!("oracle: {invariants} declared invariant(s)")), "{report}");
    let attempts: u64 = attempts.parse().unwrap();
    assert!(figure(&report, "allowed and judged") > attempts, "{report}");
    assert!(figure(&report, "blocked,") > attempts / 2, "{report}");
    assert!(report.contains("no bypass found"), "{report}");
}

#[test]
fn tau2_retail_holds_under_attacks_seeded_from_its_ground_truth() {
    tau2_holds("examples/tau2-retail.toml", "retail", 112, 14, "1000");
}

#[test]
fn tau2_airline_holds_under_attacks_seeded_from_its_ground_truth() {
    tau2_holds("examples/tau2-airline.toml", "airline", 43, 17, "3000");
}

#[test]
fn tau2_telecom_holds_under_attacks_seeded_from_its_ground_truth() {
    tau2_holds("examples/tau2-telecom.toml", "telecom", 97, 9, "8000");
}

/// retail without its order-status check on cancel: a cancelled order is
/// cancelled again (the tool would refund it twice), and the invariant
/// stated from R13 catches it from the ground truth.
#[test]
fn a_hole_planted_in_tau2_retail_is_found_and_minimised() {
    let Some(traces) = tau2_ground_truth() else { return };
    let retail = "examples/tau2-retail.toml";
    let dir = tollgate_store::testing::temp_dir("tollgate_attack").unwrap();
    let name = "retail-cancel-status-removed";
    let path = weakened_from(
        retail,
        &dir,
        name,
        &[(
            "id = \"R-CANCEL-PENDING\"\nrule = \"order.status == 'pending'\"",
            "id = \"R-CANCEL-PENDING\"\nrule = \"true\"",
        )],
    );
    let output =
        tollgate(&["attack", "--workflow", &path, "--traces", &traces, "--attempts", "1000", "--engine-attempts", "0"]);
    assert_found_and_minimised(&dir, name, &output, "R13-R15.cancel-pending-with-reason", &path, retail);
    std::fs::remove_dir_all(&dir).ok();
}

/// Chat transcripts seed the hunt as τ traces do: read by the core's trace
/// module, each call at its transcript's clock.
#[test]
fn openai_and_anthropic_transcripts_are_starting_points() {
    for (file, format) in [("refunds.openai.json", "openai traces"), ("refunds.anthropic.jsonl", "anthropic traces")] {
        let traces = format!("crates/tollgate/tests/fixtures/replay/{file}");
        let output = tollgate(&["attack", "--workflow", WORKFLOW, "--traces", &traces, "--attempts", "500"]);
        let report = stdout(&output);
        assert_eq!(output.status.code(), Some(0), "{file}: {report}{}", String::from_utf8_lossy(&output.stderr));
        assert!(report.contains(&format!("sessions from {traces} ({format})")), "{file}: {report}");
        assert!(figure(&report, "allowed and judged") > 500, "{file}: {report}");
    }
}
