//! Data-driven decision tests: the reference workflow plus a scripted call
//! sequence in (`tests/scripts/*.jsonl`), a decision transcript out, compared
//! with the reviewed snapshot in `tests/snapshots/`.

use tollgate_core::SessionState;
use tollgate_protocol::script::{Step, run};

const REFERENCE: &str = include_str!("../../../../examples/support-refunds.toml");

fn transcript(script: &str) -> String {
    let workflow = match tollgate_core::compile(REFERENCE, "support-refunds.toml") {
        Ok(workflow) => workflow,
        Err(problems) => panic!("reference workflow does not compile: {problems:?}"),
    };
    let steps: Vec<Step> = script
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            Step::from_json(&json).unwrap_or_else(|e| panic!("{line}: {e}"))
        })
        .collect();
    let mut state = SessionState::new(&workflow);
    let lines = run(&workflow, &mut state, &steps);
    lines.iter().map(|line| serde_json::to_string_pretty(line).unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

macro_rules! transcript_test {
    ($name:ident) => {
        #[test]
        fn $name() {
            let script = include_str!(concat!("../scripts/", stringify!($name), ".jsonl"));
            // insta names a snapshot after the module path, here
            // `protocol::transcripts`, beside the source file. The reviewed
            // snapshots were named when this file was a test binary of its
            // own (in tollgate-core); their name and place are given here so
            // they stay as they are.
            let mut settings = insta::Settings::clone_current();
            settings.set_snapshot_path("../snapshots");
            settings.set_prepend_module_to_snapshot(false);
            settings.bind(|| insta::assert_snapshot!(concat!("transcripts__", stringify!($name)), transcript(script)));
        }
    };
}

transcript_test!(refunds_story);
transcript_test!(parallel_batch);
transcript_test!(handoff);
transcript_test!(delete_account);
transcript_test!(bad_input);

#[test]
fn same_workflow_and_events_give_byte_identical_transcripts() {
    let reference = || tollgate_core::compile(REFERENCE, "support-refunds.toml").unwrap_or_else(|p| panic!("{p:?}"));
    let workflow = reference();
    let script = include_str!("../scripts/refunds_story.jsonl");
    let steps: Vec<Step> =
        script.lines().filter_map(|l| serde_json::from_str(l).ok()).filter_map(|j| Step::from_json(&j).ok()).collect();
    let first = run(&workflow, &mut SessionState::new(&workflow), &steps);
    let again = run(&reference(), &mut SessionState::new(&workflow), &steps);
    assert_eq!(serde_json::to_string(&first).ok(), serde_json::to_string(&again).ok());
    assert!(first.len() > 10);
}
