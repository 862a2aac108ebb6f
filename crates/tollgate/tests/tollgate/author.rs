//! `tollgate test` as a policy author runs it: the examples' own tests pass
//! and make every rule fire; a failing test, a rule no test makes fire, a
//! broken test file and a workflow without tests each exit non-zero with
//! what to do.

use crate::common::{root, stdout, text, tollgate};
use std::path::Path;

/// The example workflows, whose tests must make every rule fire.
const COVERED: &[&str] = &[
    "examples/support-refunds.toml",
    "examples/multi-concern.toml",
    "examples/tau2-retail.toml",
    "examples/tau2-telecom.toml",
    "examples/tau2-airline.toml",
    "examples/coding-agent.toml",
];

#[test]
fn the_examples_tests_pass() {
    let output = tollgate(&["test", "examples/"]);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(all.contains("test result: ok."), "{all}");
    assert!(!all.contains("FAILED"), "{all}");
    assert!(all.contains("all files: "), "{all}");
}

#[test]
fn the_examples_tests_make_every_rule_fire() {
    for workflow in COVERED {
        let output = tollgate(&["test", "--require-coverage", workflow]);
        let all = text(&output);
        assert!(output.status.success(), "{workflow}:\n{all}");
        assert!(!all.contains("never fired"), "{workflow}:\n{all}");
    }
}

/// A copy of an example with its tests, in a directory of its own.
fn copy_example(name: &str) -> std::path::PathBuf {
    let dir = tollgate_store::testing::temp_dir("tollgate_author").unwrap();
    for file in [format!("{name}.toml"), format!("{name}.tests.toml")] {
        std::fs::copy(root().join("examples").join(&file), dir.join(&file)).unwrap();
    }
    dir
}

#[test]
fn a_changed_rule_fails_the_test_that_covers_it_and_says_what_happened() {
    let dir = copy_example("support-refunds");
    let workflow = dir.join("support-refunds.toml");
    let text_before = std::fs::read_to_string(&workflow).unwrap();
    // Someone raises the human threshold: refunds of $650 now go through alone.
    let changed = text_before.replace("rule = \"args.amount > 500.0\"", "rule = \"args.amount > 700.0\"");
    assert_ne!(changed, text_before);
    std::fs::write(&workflow, changed).unwrap();
    let output = tollgate(&["test", &dir.display().to_string()]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        all.contains(
            "test a refund over $500 goes to a human; the approval lets the identical refund through once ... FAILED"
        ),
        "{all}"
    );
    assert!(
        all.contains("step 3 (call c3 to process_refund): expected escalate by refund-over-500, got allow"),
        "{all}"
    );
    assert!(all.contains("test result: FAILED."), "{all}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_rule_no_test_makes_fire_fails_require_coverage_and_is_named() {
    let dir = copy_example("support-refunds");
    let tests = dir.join("support-refunds.tests.toml");
    // Keep only the careful path.
    let text_before = std::fs::read_to_string(&tests).unwrap();
    let second = text_before.match_indices("[[test]]").nth(1).unwrap().0;
    std::fs::write(&tests, &text_before[..second]).unwrap();
    let path = dir.join("support-refunds.toml").display().to_string();

    let output = tollgate(&["test", "--coverage", &path]);
    assert!(output.status.success(), "--coverage reports, it does not fail: {}", text(&output));
    let output = tollgate(&["test", "--require-coverage", &path]);
    let all = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("coverage of support-refunds v1: 0 of 13 rules fired (0%)"), "{all}");
    assert!(all.contains("delete_account    escalation    delete-always-human"), "{all}");
    assert!(all.contains("tools never allowed: confirm_identity, delete_account, escalate_to_human"), "{all}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_broken_test_file_or_a_workflow_without_tests_is_an_error_that_says_what_to_write() {
    let dir = copy_example("support-refunds");
    let tests = dir.join("support-refunds.tests.toml");
    std::fs::write(&tests, "[[test]]\nname = \"x\"\nsteps = [{ call = \"get_customer\", expect = \"maybe\" }]\n")
        .unwrap();
    let output = tollgate(&["test", &tests.display().to_string()]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(all.contains("`expect = \"maybe\"` is not a verdict; write allow, block, escalate or withheld"), "{all}");

    std::fs::remove_file(&tests).unwrap();
    let workflow = dir.join("support-refunds.toml");
    let output = tollgate(&["test", &workflow.display().to_string()]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(all.contains("has no tests beside it: write them in"), "{all}");
    assert!(Path::new(&workflow).exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn explain_shows_every_rule_of_a_stored_or_scripted_call_with_its_values() {
    let dir = tollgate_store::testing::temp_dir("tollgate_explain").unwrap();
    let script = dir.join("refund.jsonl");
    std::fs::write(
        &script,
        concat!(
            r##"{"call": {"id": "v", "tool": "get_customer", "args": {"email": "ana@example.com", "zip": "12345"}}}"##, "\n",
            r##"{"result": {"id": "v", "result": {"verified": true, "customer_id": "c_1", "email": "ana@example.com", "tier": "gold"}}}"##, "\n",
            r##"{"call": {"id": "o", "tool": "lookup_order", "args": {"order_id": "#W1"}}}"##, "\n",
            r##"{"result": {"id": "o", "result": {"order_id": "#W1", "customer_id": "c_1", "total": 120.0, "status": "processing"}}}"##, "\n",
            r##"{"call": {"id": "r", "tool": "process_refund", "args": {"order_id": "#W1", "amount": 650}}}"##, "\n",
        ),
    )
    .unwrap();
    let script = script.display().to_string();
    let db = dir.join("s.db").display().to_string();
    let run =
        tollgate(&["run", "--workflow", "examples/support-refunds.toml", &script, "--db", &db, "--session", "s1"]);
    assert!(run.status.success(), "{}", text(&run));

    let stored = tollgate(&["explain", "--db", &db, "--session", "s1", "--call", "r"]);
    let scripted = tollgate(&["explain", "--workflow", "examples/support-refunds.toml", &script, "--call", "r"]);
    for output in [&stored, &scripted] {
        let out = stdout(output);
        assert!(output.status.success(), "{}", text(output));
        assert!(out.contains("decision: block by refund-order-refundable"), "{out}");
        assert!(
            out.contains("FAIL  check      refund-order-refundable  order.status in ['delivered', 'returned']"),
            "{out}"
        );
        assert!(out.contains("        order.status = \"processing\""), "{out}");
        assert!(out.contains("        refunded(args.order_id) = 0"), "{out}");
        assert!(out.contains("MATCH escalation refund-over-500"), "{out}");
        assert!(out.contains("pass  gate where refund-order-owned"), "{out}");
    }
    // The rules are the same for the stored call and the scripted one.
    let rules = |o: &std::process::Output| stdout(o).lines().skip(1).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(rules(&stored), rules(&scripted));

    let unknown = tollgate(&["explain", "--db", &db, "--session", "s1", "--call", "nope"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(text(&unknown).contains("session s1 has no decided call nope"), "{}", text(&unknown));
    std::fs::remove_dir_all(&dir).ok();
}
