//! The demo scenarios as a library caller sees them, without the binary: the
//! story's decisions and why, the $800 escalation's handoff, the
//! multi-concern join and its handoff, a second run that changes nothing,
//! and a side effect left in doubt by a crash that runs once when the case
//! is run again (the backend's ledger, per idempotency key).

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tollgate_core::{Decision, Effect, FindingStatus};
use tollgate_demo::multi_concern::{self, Attempt, Happened, Origin, Phase, Progress, Start, Step};
use tollgate_demo::support_refunds::{self, Tally};

/// A fresh directory for one test's store, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("tollgate-demo-test-{}-{name}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn db(&self) -> String {
        self.0.join("demo.db").display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// A runtime of its own per run, so a run cut short ends with it, its
/// investigations' tasks included, as a killed process would.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Every event of a run, in order.
#[derive(Clone)]
struct Recorder<E>(Arc<Mutex<Vec<E>>>);

impl<E: Clone> Recorder<E> {
    fn new() -> Recorder<E> {
        Recorder(Arc::new(Mutex::new(Vec::new())))
    }

    fn push(&self, event: E) {
        self.0.lock().unwrap().push(event);
    }

    fn events(&self) -> Vec<E> {
        self.0.lock().unwrap().clone()
    }
}

/// A decision in a line: the verdict, where a block stopped, the rules.
fn decision_line(decision: &Decision) -> String {
    let rules =
        |reasons: &[tollgate_core::Reason]| reasons.iter().map(|r| r.rule_id.as_str()).collect::<Vec<_>>().join(", ");
    match decision {
        Decision::Allow(_) => "allow".to_owned(),
        Decision::Block(blocked) => format!("block at {}: {}", blocked.stage.as_str(), rules(&blocked.reasons)),
        Decision::Escalate(escalation) => format!("escalate: {}", rules(&escalation.reasons)),
    }
}

#[test]
fn the_story_blocks_allows_withholds_and_escalates_each_call_for_its_reason() {
    let dir = TempDir::new("story");
    let recorder = Recorder::new();
    let observer = |event: support_refunds::Event| recorder.push(event);
    let options = support_refunds::Options { session: Some("story".to_owned()) };
    let story = runtime().block_on(support_refunds::run(&dir.db(), &options, &observer)).unwrap();
    assert_eq!(story.session, "story");
    assert_eq!(story.tally, Tally { allowed: 4, blocked: 5, escalated: 1 });

    // A line per scene: the tool, the decision, and whether the result was withheld.
    let mut scenes: Vec<String> = Vec::new();
    let mut escalation = None;
    for event in recorder.events() {
        match event {
            support_refunds::Event::Started { workflow, version, session } => {
                assert_eq!((workflow.as_str(), version, session.as_str()), ("support-refunds", 1, "story"));
            }
            support_refunds::Event::Scene { number, call, .. } => {
                assert_eq!(number, scenes.len() + 1);
                scenes.push(call.tool);
            }
            support_refunds::Event::Decided(decision) => {
                let scene = scenes.last_mut().unwrap();
                *scene = format!("{scene} {}", decision_line(&decision));
                if let Decision::Escalate(escalated) = decision {
                    escalation = Some(escalated);
                }
            }
            support_refunds::Event::Answered { .. } => {}
            support_refunds::Event::Recorded(effects) => {
                if effects.iter().any(|e| matches!(e, Effect::ResultWithheld { .. })) {
                    scenes.last_mut().unwrap().push_str(", result withheld");
                }
            }
        }
    }
    assert_eq!(
        scenes,
        [
            // Before the customer is verified, and again when the agent says they are.
            "process_refund block at gates: process_refund.requires.1, refund-order-owned",
            "process_refund block at gates: process_refund.requires.1, refund-order-owned",
            "get_customer allow",
            // Another customer's order: the lookup runs, its result is withheld...
            "lookup_order allow, result withheld",
            // ...so the order is not known and its refund is blocked.
            "process_refund block at gates: refund-order-owned",
            "lookup_order allow",
            "process_refund allow",
            // Over what remains refundable on the order.
            "process_refund block at checks: refund-within-remaining",
            "lookup_order allow",
            "process_refund escalate: refund-over-500",
        ]
    );

    // The $800 escalation hands a human the customer, the order and the amount.
    let escalation = escalation.expect("the $800 refund escalates");
    let handoff = &escalation.handoff;
    assert_eq!(escalation.urgency, "high");
    assert_eq!(handoff.customer_id.as_deref(), Some("c_42"));
    assert_eq!(handoff.urgency, "high");
    assert_eq!(handoff.recommended_action, "approve or deny the refund of $800 on order #W1002");
    assert!(handoff.root_cause.contains("refunds above $500 need human approval (refund-over-500)"), "{handoff:?}");
    let facts: Vec<String> = handoff.facts.iter().map(|f| f.line()).collect();
    assert_eq!(
        facts,
        [
            r#"customer = {"email":"alice@example.com","id":"c_42","tier":"gold"}"#,
            r##"order[#W1001] = {"customer_id":"c_42","id":"#W1001","status":"delivered","total":120.0}"##,
            r##"order[#W1002] = {"customer_id":"c_42","id":"#W1002","status":"delivered","total":1500.0}"##,
        ]
    );
    // Every earlier call is on the timeline: nine decisions and five results.
    assert_eq!(handoff.timeline.len(), 14, "{:?}", handoff.timeline);
}

/// Runs the multi-concern case to its end, with its events.
fn run_case(db: &str, session: &str, latency_ms: u64) -> (multi_concern::Case, Vec<multi_concern::Event>) {
    let recorder = Recorder::new();
    let observer = {
        let recorder = recorder.clone();
        Arc::new(move |event: multi_concern::Event| recorder.push(event))
    };
    let options =
        multi_concern::Options { session: Some(session.to_owned()), latency: Duration::from_millis(latency_ms) };
    let case = runtime().block_on(multi_concern::run(db, &options, observer)).unwrap();
    (case, recorder.events())
}

/// The ledger at `db`, per idempotency key: executions and repeats answered from it.
fn ledger(db: &str) -> BTreeMap<String, (usize, usize)> {
    let mut seen: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let text = std::fs::read_to_string(multi_concern::ledger_path(db)).unwrap();
    for line in text.lines() {
        let line: Json = serde_json::from_str(line).unwrap();
        let counts = seen.entry(line["key"].as_str().unwrap().to_owned()).or_default();
        if line.get("result").is_some() {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }
    seen
}

#[test]
fn the_multi_concern_case_joins_its_investigations_in_the_order_they_were_opened() {
    let dir = TempDir::new("multi");
    let (case, events) = run_case(&dir.db(), "P", 1);
    let concerns = ["refund", "address", "charge"];

    let mut parent_calls = Vec::new();
    let mut branches = Vec::new();
    let mut joined = Vec::new();
    for event in &events {
        match event {
            multi_concern::Event::Started { parent, start } => assert_eq!((parent.as_str(), *start), ("P", Start::New)),
            multi_concern::Event::ParentCalled { phase, tool, decision, origin } => {
                assert_eq!(*origin, Origin::ThisRun);
                parent_calls.push((*phase, format!("{tool} {}", decision_line(decision))));
            }
            multi_concern::Event::Opened { sessions } => assert_eq!(sessions, &["P:refund", "P:address", "P:charge"]),
            multi_concern::Event::Branch(timeline) => branches.push(timeline.concern_id.clone()),
            multi_concern::Event::Joined { join, origin } => joined.push((join.clone(), *origin)),
            multi_concern::Event::Progress(_) => {}
        }
    }
    // The parent verifies, is refused its reply while the investigations run, and replies after the join.
    assert_eq!(
        parent_calls,
        [
            (Phase::BeforeFanOut, "get_customer allow".to_owned()),
            (Phase::BeforeFanOut, "reply_to_customer block at admission: tollgate.investigations.running".to_owned()),
            (Phase::AfterJoin, "reply_to_customer allow".to_owned()),
        ]
    );
    assert_eq!(branches, concerns, "timelines in the order the concerns were opened");

    // Joined once, in the order the concerns were opened; the double charge needs a human.
    assert_eq!(joined.len(), 1);
    let (join, origin) = &joined[0];
    assert_eq!(*origin, Origin::ThisRun);
    assert_eq!(join, &case.join);
    let findings: Vec<(&str, FindingStatus)> =
        join.findings.iter().map(|f| (f.concern_id.as_str(), f.status)).collect();
    assert_eq!(
        findings,
        [
            ("refund", FindingStatus::Resolved),
            ("address", FindingStatus::Resolved),
            ("charge", FindingStatus::Escalated)
        ]
    );
    let handoff = join.handoff.as_ref().expect("the escalated charge makes a joined handoff");
    assert_eq!(handoff.customer_id.as_deref(), Some("c_42"));
    assert_eq!(handoff.urgency, "high");
    let in_handoff: Vec<&str> = handoff.concerns.iter().map(|f| f.concern_id.as_str()).collect();
    assert_eq!(in_handoff, concerns, "every concern is in the joined handoff, in order");
    let charge = &handoff.concerns[2];
    assert_eq!(
        charge.recommended_action.as_deref(),
        Some("reverse one of the 2 charges of $45 on order #W1002 and confirm to customer c_42")
    );

    // The "joined" step comes before the join is told, and once.
    let joined_step = events
        .iter()
        .position(|e| matches!(e, multi_concern::Event::Progress(Progress { step: Step::Joined, .. })))
        .unwrap();
    let join_event = events.iter().position(|e| matches!(e, multi_concern::Event::Joined { .. })).unwrap();
    assert!(joined_step < join_event);
    assert!(case.slowest_branch_ms <= case.branches_sum_ms);

    // A refund and an address change: each executed once, under its key.
    let executed: Vec<(String, (usize, usize))> = ledger(&dir.db()).into_iter().collect();
    assert_eq!(
        executed,
        [
            ("P:address/update_address:address-2".to_owned(), (1, 0)),
            ("P:refund/process_refund:refund-2".to_owned(), (1, 0)),
        ]
    );

    // Run again, the case is as it was: everything decided before, nothing run again, the same join.
    let (again, events) = run_case(&dir.db(), "P", 1);
    assert_eq!(again.join, case.join);
    for event in &events {
        match event {
            multi_concern::Event::Started { start, .. } => assert_eq!(*start, Start::Continued),
            multi_concern::Event::ParentCalled { origin, .. } | multi_concern::Event::Joined { origin, .. } => {
                assert_eq!(*origin, Origin::BeforeRestart);
            }
            multi_concern::Event::Progress(progress) => panic!("nothing is committed again: {progress:?}"),
            multi_concern::Event::Branch(timeline) => {
                assert!(
                    matches!(timeline.entries.as_slice(), [entry] if matches!(entry.happened, Happened::EndedBefore(_))),
                    "{timeline:?}"
                );
            }
            multi_concern::Event::Opened { .. } => {}
        }
    }
    assert_eq!(ledger(&dir.db()).into_iter().collect::<Vec<_>>(), executed);
}

#[test]
fn a_refund_executed_before_a_crash_runs_once_when_the_case_is_run_again() {
    let dir = TempDir::new("crash");
    let db = dir.db();
    let refund = "P:refund/process_refund:refund-2";

    // The process "dies" right after the backend executed the refund: the
    // answer is on its way back (a long latency), the journal lacks it.
    let executed = Arc::new(tokio::sync::Notify::new());
    let observer = {
        let executed = Arc::clone(&executed);
        Arc::new(move |event: multi_concern::Event| {
            if let multi_concern::Event::Progress(Progress { step: Step::Executed { key }, .. }) = &event
                && key == refund
            {
                executed.notify_one();
            }
        })
    };
    let options = multi_concern::Options { session: Some("P".to_owned()), latency: Duration::from_millis(300) };
    let crashed = runtime();
    crashed.block_on(async {
        tokio::select! {
            biased;
            () = executed.notified() => {}
            outcome = multi_concern::run(&db, &options, observer) => panic!("the run ended before the refund: {outcome:?}"),
        }
    });
    drop(crashed);
    assert_eq!(ledger(&db).get(refund), Some(&(1, 0)));

    // Run again: the refund is in doubt, re-driven under its key and
    // answered from the ledger; its result is recorded once.
    let (case, events) = run_case(&db, "P", 1);
    let refund_timeline = events
        .iter()
        .find_map(|e| match e {
            multi_concern::Event::Branch(timeline) if timeline.concern_id == "refund" => Some(timeline),
            _ => None,
        })
        .unwrap();
    let redriven: Vec<&Happened> = refund_timeline
        .entries
        .iter()
        .map(|e| &e.happened)
        .filter(|h| matches!(h, Happened::Answered { attempt: Attempt::ReDriven, .. }))
        .collect();
    assert_eq!(redriven.len(), 1, "{refund_timeline:?}");
    assert!(
        !events.iter().any(|e| matches!(
            e,
            multi_concern::Event::Progress(Progress { step: Step::Executed { key }, .. }) if key == refund
        )),
        "the refund is not executed again"
    );
    let ledger = ledger(&db);
    assert_eq!(ledger.get(refund), Some(&(1, 1)), "executed once, answered once from the ledger");
    for (key, (executions, _)) in &ledger {
        assert_eq!(*executions, 1, "{key} ran {executions} times");
    }
    assert_eq!(case.join.findings.len(), 3);

    let engine_runtime = runtime();
    engine_runtime.block_on(async {
        let engine = tollgate_engine::Engine::open(&db).await.unwrap();
        let results = engine
            .journal("P:refund")
            .await
            .unwrap()
            .iter()
            .filter(|e| matches!(&e.record, tollgate_engine::journal::Record::Result(r) if r.call == "refund-2"))
            .count();
        assert_eq!(results, 1, "the refund's result is recorded once");
        let resume = engine.resume("P:refund").await.unwrap();
        assert!(resume.in_doubt.is_empty(), "{:?}", resume.in_doubt);
        engine.close().await;
    });
}

/// The ledger is read strictly: a last line a crash cut short is no run, but
/// a damaged line anywhere else stops the demo rather than let it guess
/// which side effects ran (and run one twice).
#[test]
fn a_damaged_ledger_stops_the_case_and_a_line_cut_short_does_not() {
    let dir = TempDir::new("ledger");
    let db = dir.db();
    run_case(&db, "case", 0);
    let path = multi_concern::ledger_path(&db);
    let intact = std::fs::read_to_string(&path).unwrap();
    // Cut short at the end: the case goes on.
    std::fs::write(&path, format!("{intact}{{\"key\":\"cut")).unwrap();
    run_case(&db, "case", 0);
    // Damaged in the middle: refused, naming the line.
    let mut lines: Vec<&str> = intact.lines().collect();
    lines.insert(1, "{\"key\":\"x\",\"tool\":\"refund\"}");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let observer: std::sync::Arc<dyn tollgate_demo::Observer<multi_concern::Event>> = std::sync::Arc::new(|_| {});
    let options = multi_concern::Options { session: Some("case".into()), latency: std::time::Duration::ZERO };
    let error = runtime().block_on(multi_concern::run(&db, &options, observer)).unwrap_err();
    assert!(matches!(error, tollgate_demo::Error::DamagedLedger { line: 2, .. }), "{error}");
}
