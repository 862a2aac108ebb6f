//! Running a test file against a workflow: every test a fresh session in
//! memory, every step decided by the core as the engine would, the verdict
//! and rules compared with what the step expects. No I/O.

use crate::coverage::Coverage;
use crate::file::{CallStep, Expect, HumanStep, Outcome, Step, Test, TestFile};
use tollgate_core::{
    CallId, Decision, Effect, Event, Reason, SessionState, ToolCall, ToolOutcome, Verdict, Workflow, apply, decide,
};

/// How one test went.
#[derive(Debug)]
pub struct TestResult {
    /// The test's name.
    pub name: String,
    /// `None` when every step got what it expected; otherwise the first
    /// step that did not, in words.
    pub failure: Option<String>,
}

/// How a file went.
#[derive(Debug)]
pub struct FileResult {
    /// One entry per test, in the file's order.
    pub tests: Vec<TestResult>,
}

impl FileResult {
    /// The number of tests that passed.
    pub fn passed(&self) -> usize {
        self.tests.iter().filter(|t| t.failure.is_none()).count()
    }
    /// The number that failed.
    pub fn failed(&self) -> usize {
        self.tests.len() - self.passed()
    }
}

/// Runs the file's tests whose name contains `filter` (all when `None`),
/// counting what each rule did into `coverage`.
pub fn run(workflow: &Workflow, file: &TestFile, filter: Option<&str>, coverage: &mut Coverage) -> FileResult {
    let tests = file
        .tests
        .iter()
        .filter(|test| filter.is_none_or(|f| test.name.contains(f)))
        .map(|test| TestResult { name: test.name.clone(), failure: run_test(workflow, test, coverage).err() })
        .collect();
    FileResult { tests }
}

fn run_test(workflow: &Workflow, test: &Test, coverage: &mut Coverage) -> Result<(), String> {
    let mut state = SessionState::new(workflow);
    for (index, step) in test.steps.iter().enumerate() {
        let number = index + 1;
        match step {
            Step::Call(call) => run_call(workflow, &mut state, call, coverage)
                .map_err(|why| format!("step {number} (call {} to {}): {why}", call.id, call.tool))?,
            Step::Human(human) => run_human(workflow, &mut state, human).map_err(|why| {
                format!("step {number} ({} on the handoff of {}): {why}", human.action.as_str(), human.handoff)
            })?,
        }
    }
    Ok(())
}

fn run_call(
    workflow: &Workflow,
    state: &mut SessionState,
    step: &CallStep,
    coverage: &mut Coverage,
) -> Result<(), String> {
    let mut call = ToolCall::new(step.id.as_str(), step.tool.as_str(), step.args.clone());
    if let Some(now) = step.now_ms {
        call = call.at(now);
    }
    if let Some(context) = &step.context {
        call = call.with_context(context.clone());
    }
    if let Some(summary) = &step.summary {
        call = call.with_summary(summary.as_str());
    }
    let decision = decide(workflow, state, &call);
    apply(workflow, state, Event::Decided { call: &call, decision: &decision });
    coverage.decided(&step.tool, &decision);

    let expected_verdict = match step.expect {
        Expect::Allow | Expect::Withheld => Verdict::Allow,
        Expect::Block => Verdict::Block,
        Expect::Escalate => Verdict::Escalate,
    };
    if decision.verdict() != expected_verdict {
        return Err(format!("expected {}, got {}", expected(step), described(&decision)));
    }
    if decision.verdict() != Verdict::Allow {
        return reasons_match(step, decision.reasons());
    }

    let Some(outcome) = &step.outcome else { return Ok(()) };
    let id = CallId::new(step.id.as_str());
    let effects = match outcome {
        Outcome::Result(result) => {
            apply(workflow, state, Event::ResultRecorded { call: &id, result, outcome: ToolOutcome::Succeeded })
        }
        Outcome::Error(error) => {
            apply(workflow, state, Event::ResultRecorded { call: &id, result: error, outcome: ToolOutcome::Failed })
        }
    };
    let withheld = effects.iter().find_map(|effect| match effect {
        Effect::ResultWithheld { call, reasons } if *call == id => Some(reasons.as_slice()),
        _ => None,
    });
    if matches!(outcome, Outcome::Result(_)) {
        coverage.result(&step.tool, withheld.unwrap_or(&[]));
    }
    match (step.expect, withheld) {
        (Expect::Withheld, Some(reasons)) => reasons_match(step, reasons),
        (Expect::Withheld, None) => Err("expected the result to be withheld, but it was passed on".into()),
        (_, Some(reasons)) => Err(format!("allowed, but its result was withheld: {}", listed(reasons))),
        (_, None) => Ok(()),
    }
}

fn run_human(workflow: &Workflow, state: &mut SessionState, step: &HumanStep) -> Result<(), String> {
    let call = CallId::new(step.handoff.as_str());
    let effects = apply(workflow, state, Event::Human { call: &call, action: &step.action, now_ms: step.now_ms });
    let refusal = effects.iter().find_map(|effect| match effect {
        Effect::HandoffUnchanged { reason, .. } => Some(reason.as_str()),
        _ => None,
    });
    let changed = effects.iter().any(|effect| matches!(effect, Effect::HandoffChanged { .. }));
    match (step.refused, refusal, changed) {
        (false, None, true) | (true, Some(_), _) => Ok(()),
        (false, Some(reason), _) => Err(format!("expected it done, but it was refused: {reason}")),
        (true, None, _) => Err("expected it refused, but it was done".into()),
        (false, None, false) => Err(format!("there is no handoff for call {} to act on", step.handoff)),
    }
}

fn reasons_match(step: &CallStep, reasons: &[Reason]) -> Result<(), String> {
    let missing: Vec<&str> =
        step.rules.iter().map(String::as_str).filter(|rule| !reasons.iter().any(|r| r.rule_id == *rule)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "expected {} by {}, got {} by {}",
            step.expect.as_str(),
            missing.join(", "),
            step.expect.as_str(),
            listed(reasons)
        ));
    }
    if let Some(text) = &step.message
        && !reasons.iter().any(|r| r.message.contains(text.as_str()))
    {
        return Err(format!("no reason says {text:?}; the reasons: {}", listed(reasons)));
    }
    Ok(())
}

fn expected(step: &CallStep) -> String {
    match step.rules.as_slice() {
        [] => step.expect.as_str().to_owned(),
        rules => format!("{} by {}", step.expect.as_str(), rules.join(", ")),
    }
}

fn described(decision: &Decision) -> String {
    match decision {
        Decision::Allow(_) => "allow".into(),
        Decision::Block(_) => format!("block by {}", listed(decision.reasons())),
        Decision::Escalate(_) => format!("escalate by {}", listed(decision.reasons())),
    }
}

fn listed(reasons: &[Reason]) -> String {
    if reasons.is_empty() {
        return "no rule".into();
    }
    reasons.iter().map(|r| format!("{} ({})", r.rule_id, r.message)).collect::<Vec<_>>().join("; ")
}
