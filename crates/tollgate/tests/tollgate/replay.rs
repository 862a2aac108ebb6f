//! `tollgate replay` and `tollgate bench replay`, run as a user runs them,
//! over the fixtures in `tests/fixtures/replay/` (the reference workflow,
//! one trace file per input format) and the recorded τ traces in
//! `../shared/tau/traces/`.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

use crate::common::{stderr, stdout, tau_traces, tollgate};

use std::path::{Path, PathBuf};
use std::process::Output;

const WORKFLOW: &str = "examples/support-refunds.toml";
const TAU: &str = "crates/tollgate/tests/fixtures/replay/refunds.tau.jsonl";
const OPENAI: &str = "crates/tollgate/tests/fixtures/replay/refunds.openai.json";
const ANTHROPIC: &str = "crates/tollgate/tests/fixtures/replay/refunds.anthropic.jsonl";
const MISMATCH: &str = "crates/tollgate/tests/fixtures/replay/refunds_mismatch.tau.jsonl";

/// A database path in a new directory (the file does not exist yet).
fn new_db() -> (PathBuf, String) {
    let dir = tollgate_store::testing::temp_dir("tollgate_replay").unwrap();
    let db = dir.join("replay.db").display().to_string();
    (dir, db)
}

fn replay(db: &str, extra: &[&str], traces: &[&str]) -> Output {
    let mut args = vec!["replay", "--workflow", WORKFLOW, "--db", db];
    args.extend_from_slice(extra);
    args.extend_from_slice(traces);
    tollgate(&args)
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    stdout(output).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}

#[test]
fn all_three_formats_replay_as_expected_into_stored_audited_sessions() {
    let (dir, db) = new_db();
    let output = replay(&db, &["--expect"], &[TAU, OPENAI, ANTHROPIC]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    // 4 sessions; 17 calls: 11 allowed, 4 blocked (2 of them withheld lookups), 2 escalated.
    let table: Vec<&str> = text.lines().collect();
    assert_eq!(
        table[1].split_whitespace().collect::<Vec<_>>(),
        ["sessions", "calls", "allowed", "blocked", "escalated"]
    );
    assert_eq!(table[2].split_whitespace().collect::<Vec<_>>(), ["4", "17", "11", "4", "2"], "{text}");
    for (rule, blocked, escalated) in
        [("order-visible-to-customer", "2", "0"), ("refund-order-owned", "2", "0"), ("refund-over-500", "0", "2")]
    {
        assert!(
            table.iter().any(|l| l.split_whitespace().collect::<Vec<_>>() == [rule, blocked, escalated]),
            "{rule} {blocked} {escalated} missing from:\n{text}"
        );
    }
    assert!(text.contains("expect: all 4 traces with an expect field decided as expected"), "{text}");

    // Every trace is a stored session, its journal inspectable.
    let list = stdout(&tollgate(&["sessions", "list", "--db", &db]));
    let sessions: Vec<&str> = list.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(sessions.len(), 4, "{list}");
    for prefix in
        ["refunds:story@", "refunds:clean@", "refunds:openai-escalation@", "refunds:anthropic-other-customer@"]
    {
        assert!(sessions.iter().any(|s| s.starts_with(prefix)), "{prefix} missing from:\n{list}");
    }
    let story = sessions.iter().find(|s| s.starts_with("refunds:story@")).unwrap();
    let show = stdout(&tollgate(&["sessions", "show", story, "--db", &db]));
    assert!(show.contains(r#""verdict":"escalate""#) && show.contains("refund-order-owned"), "{show}");
    assert!(show.lines().any(|l| l.contains("decision") && l.contains("c5")), "{show}");
    // 17 decisions and 13 results (the allowed calls; the failed refund's error too), all chained.
    let verify = tollgate(&["audit", "verify", "--db", &db]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert!(stdout(&verify).contains("audit log intact: 30 records in 4 sessions"), "{}", stdout(&verify));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_replay_that_differs_from_expect_fails_listing_every_difference() {
    let (dir, db) = new_db();
    let output = replay(&db, &["--expect"], &[MISMATCH, OPENAI]);
    assert_eq!(output.status.code(), Some(1), "{}{}", stdout(&output), stderr(&output));
    let text = stdout(&output);
    let differences: Vec<&str> = text.lines().filter(|l| l.starts_with("DIFFERENCE")).collect();
    assert_eq!(
        differences,
        [
            "DIFFERENCE trace refunds/mismatch index 2 (process_refund): expected allow, got block (refund-within-remaining)",
            "DIFFERENCE trace refunds/mismatch index 3 (process_refund): expected block or escalate, got allow",
            "DIFFERENCE trace refunds/mismatch: expected a refusal naming rule refund-within-remaining, got no refusal at the expected indexes",
        ],
        "{text}"
    );
    assert!(text.contains("expect: 3 difference(s) in 2 traces with an expect field"), "{text}");
    // Without --expect the same replay succeeds: the decisions are what they are.
    assert!(replay(&db, &[], &[MISMATCH]).status.success());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn json_prints_one_object_per_decision_and_nothing_else() {
    let (dir, db) = new_db();
    let output = replay(&db, &["--json", "--expect"], &[TAU]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 11);
    for line in &lines {
        let mut keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["call", "decision", "index", "reasons", "rule_ids", "session", "tool", "trace", "verdict", "withheld"]
        );
        // τ trace lines carry no call ids of their own.
        assert!(line["call"].is_null(), "{line}");
    }
    let story = &lines[3..6];
    assert_eq!(story.iter().map(|l| l["index"].as_u64().unwrap()).collect::<Vec<_>>(), [3, 4, 5]);
    assert_eq!(
        story.iter().map(|l| l["verdict"].as_str().unwrap()).collect::<Vec<_>>(),
        ["block", "escalate", "block"]
    );
    assert_eq!(lines[4]["rule_ids"], serde_json::json!(["refund-over-500"]));
    assert_eq!(lines[4]["reasons"], serde_json::json!(["refunds above $500 need human approval"]));
    assert_eq!(lines[4]["tool"], "process_refund");
    assert_eq!(lines[0]["session"], lines[5]["session"]);
    assert_ne!(lines[5]["session"], lines[6]["session"]);
    assert_eq!(lines[6]["trace"], "refunds/clean");
    // The comparison goes to stderr, so stdout stays JSON.
    assert!(stderr(&output).contains("decided as expected"), "{}", stderr(&output));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_session_clock_is_the_traces_own_else_now() {
    let (dir, db) = new_db();
    let lines = json_lines(&replay(&db, &["--json", "--now", "2025-02-25T12:08:00-05:00"], &[TAU]));
    let journal =
        |index: usize| stdout(&tollgate(&["sessions", "show", lines[index]["session"].as_str().unwrap(), "--db", &db]));
    // refunds/story says 2024-05-15T15:00:00-05:00; refunds/clean says nothing.
    let (story, clean) = (journal(0), journal(6));
    assert_eq!(story.matches(r#""now_ms":1715803200000"#).count(), 6, "{story}");
    assert_eq!(clean.matches(r#""now_ms":1740503280000"#).count(), 5, "{clean}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_run_makes_sessions_of_its_own() {
    let (dir, db) = new_db();
    let first = json_lines(&replay(&db, &["--json"], &[OPENAI, OPENAI]));
    let second = json_lines(&replay(&db, &["--json"], &[OPENAI]));
    let mut sessions: Vec<&str> = first.iter().chain(&second).map(|l| l["session"].as_str().unwrap()).collect();
    sessions.dedup();
    assert_eq!(sessions.len(), 3, "{sessions:?}");
    let list = stdout(&tollgate(&["sessions", "list", "--db", &db]));
    assert_eq!(list.lines().count(), 3, "{list}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn malformed_input_is_a_clear_error_and_stores_nothing() {
    let cases = [
        (
            vec![TAU, "crates/tollgate/tests/fixtures/replay/malformed.openai.jsonl"],
            "malformed.openai.jsonl:2: messages[1]: a tool result for unknown call id 'call_9'",
        ),
        (
            vec!["crates/tollgate/tests/fixtures/replay/malformed_arguments.openai.jsonl"],
            "malformed_arguments.openai.jsonl:1: messages[0]: tool_calls[0]: the arguments of lookup_order (call call_1) are not valid JSON",
        ),
        (vec![OPENAI, "no/such/traces.jsonl"], "cannot read no/such/traces.jsonl"),
        (vec![WORKFLOW], "support-refunds.toml:1: malformed JSON"),
    ];
    for (traces, wanted) in cases {
        let (dir, db) = new_db();
        let output = replay(&db, &[], &traces);
        assert_eq!(output.status.code(), Some(2), "{traces:?}: {}", stdout(&output));
        assert!(stderr(&output).contains(wanted), "{traces:?}: wanted {wanted:?} in {}", stderr(&output));
        assert!(!Path::new(&db).exists(), "{traces:?}: the store was touched");
        std::fs::remove_dir_all(&dir).ok();
    }
    let (dir, db) = new_db();
    let output = replay(&db, &["--now", "yesterday"], &[OPENAI]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--now: 'yesterday' is not an RFC 3339 timestamp"), "{}", stderr(&output));
    assert!(!Path::new(&db).exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bench_replay_reports_decided_calls_per_second() {
    let output = tollgate(&["bench", "replay", "--workflow", WORKFLOW, "--runs", "3", TAU, OPENAI, ANTHROPIC]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert!(text.contains("4 traces, 17 decided calls"), "{text}");
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("median: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok());
    assert!(rate.is_some_and(|r| r > 0.0), "{text}");
    let bad = tollgate(&["bench", "replay", "--workflow", WORKFLOW, "--runs", "0", TAU]);
    assert!(!bad.status.success());
}

#[test]
fn recorded_tau_violations_replay_through_the_engine_one_decision_per_call() {
    let Some(traces) = tau_traces() else { return };
    let file = traces.join("violations_public.jsonl").display().to_string();
    let (dir, db) = new_db();
    let output = replay(&db, &["--json"], &[&file]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    // 18 sessions, 43 agent calls; the reference workflow knows none of their tools.
    assert_eq!(lines.len(), 43);
    let mut sessions: Vec<&str> = lines.iter().map(|l| l["session"].as_str().unwrap()).collect();
    sessions.dedup();
    assert_eq!(sessions.len(), 18);
    assert!(lines.iter().all(|l| l["rule_ids"] == serde_json::json!(["tollgate.unknown_tool"])));
    assert!(tollgate(&["audit", "verify", "--db", &db]).status.success());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn expect_without_any_expectation_is_refused_before_anything_is_stored() {
    let (dir, db) = new_db();
    let trace = dir.join("plain.jsonl");
    std::fs::write(
        &trace,
        r#"{"id": "plain", "events": [{"call": {"name": "get_customer", "arguments": {"email": "a@b.c", "zip": "12345"}}, "result": {"verified": false}, "error": null}]}"#,
    )
    .unwrap();
    let output = replay(&db, &["--expect"], &[&trace.display().to_string()]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("no trace carries an expect field"), "{}", stderr(&output));
    assert!(!Path::new(&db).exists(), "nothing is stored");
    std::fs::remove_dir_all(&dir).ok();
}
