//! The hunt, judged by its report: the reference workflow holds under 100,000
//! seeded attempts, and each τ² workflow under attempts seeded from the τ²
//! ground-truth traces of its domain (`../shared/tau/traces/`, read where they
//! lie); workflows with a hole planted in them are caught, with a minimised
//! sequence the weakened workflow allows and the reference does not; the same
//! seed gives the same report.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

use std::path::PathBuf;
use tollgate_attack::{Error, Finding, FindingKind, Input, Report, SourceFile, Start, Via, hunt};
use tollgate_core::{SessionState, compile};
use tollgate_protocol::script::{self, Step};

const WORKFLOW: &str = "examples/support-refunds.toml";
const TRACES: &str = "examples/support-refunds.traces.jsonl";

/// The repository's root: example and fixture paths are relative to it.
fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A file of the repository, named as a user in its root would name it.
fn file(path: &str) -> SourceFile {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    SourceFile { name: path.to_owned(), text }
}

/// A hunt of `workflow` from `traces`, with the defaults of `tollgate attack` otherwise.
fn input(workflow: SourceFile, traces: Option<SourceFile>) -> Input {
    Input { traces, ..Input::new(workflow) }
}

fn run(input: &Input) -> Report {
    hunt(input).unwrap_or_else(|e| panic!("the hunt failed: {e}"))
}

/// `workflow` with each `from` replaced by its `to` (each must occur), named `{name}.toml`.
fn weakened(workflow: &str, name: &str, edits: &[(&str, &str)]) -> SourceFile {
    let mut text = file(workflow).text;
    for (from, to) in edits {
        assert!(text.contains(from), "{name}: {workflow} no longer contains {from:?}");
        text = text.replacen(from, to, 1);
    }
    SourceFile { name: format!("{name}.toml"), text }
}

/// The finding that broke `invariant`.
fn bypass_of<'r>(report: &'r Report, invariant: &str) -> &'r Finding {
    report
        .findings
        .iter()
        .find(|f| matches!(&f.kind, FindingKind::Bypass { invariant: i, .. } if i == invariant))
        .unwrap_or_else(|| panic!("no bypass of {invariant}:\n{report}"))
}

/// The verdict the pure core gives the call at `at` when `steps` run under `workflow`.
fn verdict_at(workflow: &SourceFile, steps: &[Step], at: usize) -> String {
    let compiled = compile(&workflow.text, &workflow.name).unwrap();
    let transcript = script::run(&compiled, &mut SessionState::new(&compiled), steps);
    transcript[at]["decision"]["verdict"].as_str().unwrap_or_else(|| panic!("step {at} is no call")).to_owned()
}

/// The report names a bypass of `invariant` whose minimised sequence (at most
/// 8 steps) the weakened workflow allows at the step that got through, and
/// the reference workflow does not.
fn assert_found_and_minimised(report: &Report, invariant: &str, weak: &SourceFile, reference: &SourceFile) {
    let finding = bypass_of(report, invariant);
    let steps = &finding.steps;
    assert!(!steps.is_empty() && steps.len() <= 8, "{}: not minimised:\n{report}", weak.name);
    assert!(finding.original_steps >= steps.len(), "{report}");
    assert_eq!(finding.at, steps.len() - 1, "the minimised sequence ends where it got through:\n{report}");
    assert_eq!(verdict_at(weak, steps, finding.at), "allow", "{}:\n{report}", weak.name);
    assert_ne!(verdict_at(reference, steps, finding.at), "allow", "{} allows it too:\n{report}", reference.name);
}

#[test]
fn the_reference_workflow_holds_under_100000_attempts() {
    let report = run(&input(file(WORKFLOW), Some(file(TRACES))));
    assert!(report.findings.is_empty(), "{report}");
    assert_eq!(report.total_attempts(), 100_050);
    assert_eq!((report.declared_invariants, report.built_in_invariants), (7, 5), "{report}");
    // The hunt reaches every outcome, so the oracle judged real allows.
    assert!(report.core.judged > 100_000, "{report}");
    assert!(report.core.blocked > 100_000, "{report}");
    assert!(report.core.escalated > 1_000, "{report}");
    // Exactly-once was attacked through the engine.
    assert!(report.engine.replayed > 0, "{report}");
    assert!(report.engine.reused_refused > 0, "{report}");
    assert!(report.to_string().ends_with("no bypass found in 100050 attempts"), "{report}");
}

#[test]
fn planted_holes_are_found_and_minimised() {
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
        let weak = weakened(WORKFLOW, name, &edits);
        // The reverification hole needs a confirmation naming another
        // customer, which the hunter makes rarely: seed 3 reaches it within
        // 20,000 attempts (seed 1 no longer does since the resize-list
        // mutation changed the stream).
        let report =
            run(&Input { seed: 3, attempts: 20_000, engine_attempts: 0, ..input(weak.clone(), Some(file(TRACES))) });
        assert_found_and_minimised(&report, invariant, &weak, &file(WORKFLOW));
        assert_eq!(bypass_of(&report, invariant).via, Via::Core);
    }
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let hunt_with = |seed: u64| {
        run(&Input { seed, attempts: 3_000, engine_attempts: 10, ..input(file(WORKFLOW), Some(file(TRACES))) })
    };
    let first = hunt_with(7);
    assert!(first.findings.is_empty(), "{first}");
    assert_eq!(first, hunt_with(7));
    assert_ne!(first, hunt_with(8), "another seed makes other attempts");
    // A hole is reported identically too, minimised sequence included.
    let weak = weakened(WORKFLOW, "no-escalation", &[("rule = \"args.amount > 500.0\"", "rule = \"false\"")]);
    let hole = || run(&Input { seed: 3, attempts: 2_000, ..input(weak.clone(), Some(file(TRACES))) });
    let report = hole();
    assert!(!report.findings.is_empty(), "{report}");
    assert_eq!(report, hole());
    assert_eq!(report.to_string(), hole().to_string());
}

#[test]
fn without_traces_sessions_are_generated_from_the_workflow() {
    let report = run(&Input { attempts: 3_000, engine_attempts: 5, ..input(file(WORKFLOW), None) });
    assert!(report.findings.is_empty(), "{report}");
    assert!(matches!(report.start, Start::Generated { sessions } if sessions > 0), "{report}");
    assert!(report.to_string().contains("sessions generated from the tool schemas and fact mappings"), "{report}");
    assert!(report.core.judged > 0, "some generated calls are allowed: {report}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let bad = SourceFile {
        name: "dir/bad.jsonl".into(),
        text: "{\"session\": \"s\"}\n{\"call\": {\"tool\": \"get_customer\"}}\n".into(),
    };
    let error = hunt(&input(file(WORKFLOW), Some(bad))).unwrap_err();
    assert!(matches!(error, Error::TraceLine { line: 2, .. }), "{error:?}");
    assert_eq!(error.to_string(), "dir/bad.jsonl:2: a call needs a string \"id\"");
    let zero = hunt(&Input { attempts: 0, ..input(file(WORKFLOW), None) }).unwrap_err();
    assert!(matches!(zero, Error::NoAttempts), "{zero:?}");
    let broken = SourceFile { name: "broken.toml".into(), text: "[workflow]\nname = \"x\"\n".into() };
    let error = hunt(&input(broken, None)).unwrap_err();
    assert!(matches!(&error, Error::Workflow { problems } if !problems.is_empty()), "{error:?}");
    assert!(error.to_string().starts_with("the workflow has 1 problem(s):\nbroken.toml:"), "{error}");
    let empty = SourceFile { name: "empty.jsonl".into(), text: "{\"session\": \"s\"}\n".into() };
    let error = hunt(&input(file(WORKFLOW), Some(empty))).unwrap_err();
    assert!(matches!(error, Error::NoCalls { .. }), "{error:?}");
}

/// A session whose call ids the engine does not accept (a space in them):
/// the pure core decides such calls as any other, the engine refuses the call
/// as a block (`tollgate.call_id`) and its result as an error.
fn bad_call_ids() -> SourceFile {
    let text = [
        r#"{"session": "spaces-in-ids"}"#,
        r#"{"call": {"id": "c 1", "tool": "get_customer", "args": {"email": "alice@example.com", "zip": "94107"}}}"#,
        r#"{"result": {"id": "c 1", "result": {"verified": true, "customer_id": "c_42", "email": "alice@example.com", "tier": "gold"}}}"#,
    ];
    SourceFile { name: "bad-call-ids.jsonl".into(), text: text.join("\n") }
}

/// An engine error during an engine attempt was skipped (the step was left
/// out and the attempt went on); it is a finding now, with the attempt's
/// steps up to the one the engine failed and the engine's own words.
#[test]
fn an_engine_error_in_an_engine_attempt_is_a_finding() {
    let report = run(&Input { attempts: 20, engine_attempts: 5, ..input(file(WORKFLOW), Some(bad_call_ids())) });
    assert!(report.found_anything(), "{report}");
    let finding = report.findings.last().unwrap();
    let FindingKind::EngineError { message } = &finding.kind else { panic!("no engine error:\n{report}") };
    assert!(message.contains(r#"call id "c 1" is not 1 to 128 characters"#), "{report}");
    assert_eq!(finding.via, Via::Engine);
    assert_eq!(finding.at, finding.steps.len() - 1, "the steps end with the one that failed:\n{report}");
    assert!(matches!(&finding.steps[finding.at], Step::Result { call, .. } if call.as_str() == "c 1"), "{report}");
    assert!(report.engine.errors >= 1 && report.engine.errors <= 5, "{report}");
    // Only the engine error: the core judged the same calls and found nothing.
    assert_eq!(report.findings.len(), 1, "{report}");
    let text = report.to_string();
    assert!(text.contains("\nENGINE ERROR: call id \"c 1\""), "{text}");
    assert!(text.ends_with("0 bypass(es) and an engine error found in 25 attempts"), "{text}");
}

/// The recorded τ traces (`shared/tau/traces/`, beside the repository); `None`
/// (after saying so) when absent, except under `CI=true`, where that is a failure.
fn tau2_ground_truth() -> Option<SourceFile> {
    let dir = root().join("../shared/tau/traces");
    let path = dir.join("gt_completed_tau2.jsonl");
    if path.is_file() {
        let text = std::fs::read_to_string(&path).unwrap();
        return Some(SourceFile { name: path.display().to_string(), text });
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{} is missing under CI=true", path.display());
    eprintln!("skipping: {} is not there", path.display());
    None
}

/// A τ² workflow attacked from the ground truth of its domain (picked by the
/// hunt from the whole file): no bypass, and the oracle judged real allows of
/// the sessions it says it kept.
fn tau2_holds(workflow: &str, domain: &str, sessions: usize, invariants: usize, attempts: u64) {
    let Some(traces) = tau2_ground_truth() else { return };
    let report = run(&Input { seed: 11, attempts, engine_attempts: 10, ..input(file(workflow), Some(traces)) });
    assert!(report.findings.is_empty(), "{report}");
    let Start::Recorded { sessions: kept, format, domain: kept_domain, .. } = &report.start else {
        panic!("{report}");
    };
    assert_eq!((*kept, format.as_str(), kept_domain.as_deref()), (sessions, "tau traces", Some(domain)), "{report}");
    assert_eq!(report.declared_invariants, invariants, "{report}");
    assert!(report.core.judged > attempts, "{report}");
    assert!(report.core.blocked > attempts / 2, "{report}");
}

#[test]
fn tau2_retail_holds_under_attacks_seeded_from_its_ground_truth() {
    tau2_holds("examples/tau2-retail.toml", "retail", 112, 14, 1_000);
}

#[test]
fn tau2_airline_holds_under_attacks_seeded_from_its_ground_truth() {
    tau2_holds("examples/tau2-airline.toml", "airline", 43, 17, 3_000);
}

#[test]
fn tau2_telecom_holds_under_attacks_seeded_from_its_ground_truth() {
    tau2_holds("examples/tau2-telecom.toml", "telecom", 97, 9, 8_000);
}

/// retail without its order-status check on cancel: a cancelled order is
/// cancelled again (the tool would refund it twice), and the invariant
/// stated from R13 catches it from the ground truth.
#[test]
fn a_hole_planted_in_tau2_retail_is_found_and_minimised() {
    let Some(traces) = tau2_ground_truth() else { return };
    let retail = "examples/tau2-retail.toml";
    let weak = weakened(
        retail,
        "retail-cancel-status-removed",
        &[(
            "id = \"R-CANCEL-PENDING\"\nrule = \"order.status == 'pending'\"",
            "id = \"R-CANCEL-PENDING\"\nrule = \"true\"",
        )],
    );
    let report = run(&Input { attempts: 1_000, engine_attempts: 0, ..input(weak.clone(), Some(traces)) });
    assert_found_and_minimised(&report, "R13-R15.cancel-pending-with-reason", &weak, &file(retail));
}

/// Chat transcripts seed the hunt as τ traces do: read by the core's trace
/// module, each call at its transcript's clock.
#[test]
fn openai_and_anthropic_transcripts_are_starting_points() {
    for (name, format) in [("refunds.openai.json", "openai traces"), ("refunds.anthropic.jsonl", "anthropic traces")] {
        let traces = format!("crates/tollgate/tests/fixtures/replay/{name}");
        let report = run(&Input { attempts: 500, ..input(file(WORKFLOW), Some(file(&traces))) });
        assert!(report.findings.is_empty(), "{name}: {report}");
        assert!(matches!(&report.start, Start::Recorded { format: f, .. } if f == format), "{name}: {report}");
        assert!(report.to_string().contains(&format!("sessions from {traces} ({format})")), "{name}: {report}");
        assert!(report.core.judged > 500, "{name}: {report}");
    }
}
