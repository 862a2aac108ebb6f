//! `tollgate attack` as a user runs it: it prints the library's report and
//! exits 1 when something got through, 0 when nothing did, 2 when it cannot
//! hunt. What the hunt finds is tested on the report, in `tollgate-attack`.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

use crate::common::{root, stderr, stdout, tollgate};
use tollgate_attack::{Input, SourceFile, hunt};

const WORKFLOW: &str = "examples/support-refunds.toml";
const TRACES: &str = "examples/support-refunds.traces.jsonl";

fn file(name: &str, path: &std::path::Path) -> SourceFile {
    SourceFile { name: name.to_owned(), text: std::fs::read_to_string(path).unwrap() }
}

/// The report the library gives for what the command line asks, as printed.
fn printed(workflow: &str, seed: u64, attempts: u64) -> String {
    let input = Input {
        traces: Some(file(TRACES, &root().join(TRACES))),
        seed,
        attempts,
        engine_attempts: 5,
        ..Input::new(file(workflow, &root().join(workflow)))
    };
    format!("{}\n", hunt(&input).unwrap())
}

#[test]
fn attack_prints_the_report_and_exits_1_on_a_bypass_0_without() {
    let args = ["attack", "--traces", TRACES, "--seed", "3", "--attempts", "300", "--engine-attempts", "5"];
    let holds = tollgate(&[&args[..], &["--workflow", WORKFLOW]].concat());
    assert_eq!(holds.status.code(), Some(0), "{}", stderr(&holds));
    assert_eq!(stdout(&holds), printed(WORKFLOW, 3, 300));
    assert!(stdout(&holds).ends_with("no bypass found in 305 attempts\n"), "{}", stdout(&holds));
    assert!(stderr(&holds).contains("attempts/s"), "the timing goes to standard error: {}", stderr(&holds));

    let dir = tollgate_store::testing::temp_dir("tollgate_attack_cli").unwrap();
    let text = std::fs::read_to_string(root().join(WORKFLOW)).unwrap();
    let weak = dir.join("no-escalation.toml");
    std::fs::write(&weak, text.replacen("rule = \"args.amount > 500.0\"", "rule = \"false\"", 1)).unwrap();
    let weak = weak.display().to_string();
    let hole = tollgate(&[&args[..], &["--workflow", &weak]].concat());
    assert_eq!(hole.status.code(), Some(1), "{}", stderr(&hole));
    assert_eq!(stdout(&hole), printed(&weak, 3, 300));
    assert!(stdout(&hole).contains("BYPASS refund-over-500-never-plain-allow: "), "{}", stdout(&hole));
    std::fs::remove_dir_all(&dir).ok();
}

/// A call id the engine refuses makes recording its result an engine error:
/// a finding, so the command exits 1 as on a bypass.
#[test]
fn attack_exits_1_on_an_engine_error() {
    let dir = tollgate_store::testing::temp_dir("tollgate_attack_cli").unwrap();
    let traces = dir.join("bad-call-ids.jsonl");
    let lines = [
        r#"{"call": {"id": "c 1", "tool": "get_customer", "args": {"email": "alice@example.com", "zip": "94107"}}}"#,
        r#"{"result": {"id": "c 1", "result": {"verified": true, "customer_id": "c_42", "email": "alice@example.com", "tier": "gold"}}}"#,
    ];
    std::fs::write(&traces, lines.join("\n")).unwrap();
    let traces = traces.display().to_string();
    let output =
        tollgate(&["attack", "--workflow", WORKFLOW, "--traces", &traces, "--attempts", "5", "--engine-attempts", "5"]);
    assert_eq!(output.status.code(), Some(1), "{}{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).contains("\nENGINE ERROR: call id \"c 1\""), "{}", stdout(&output));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn attack_cannot_read_what_is_not_there() {
    let missing = tollgate(&["attack", "--workflow", WORKFLOW, "--traces", "no/such/traces.jsonl"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot read no/such/traces.jsonl"), "{}", stderr(&missing));
    let zero = tollgate(&["attack", "--workflow", WORKFLOW, "--attempts", "0"]);
    assert_eq!(zero.status.code(), Some(2));
    assert!(stdout(&zero).is_empty(), "{}", stdout(&zero));
}
