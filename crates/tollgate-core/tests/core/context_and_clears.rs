//! What the language gained for coding agents: `context` (what the client,
//! not the model, says about a call: its working and project directories),
//! `clears` (an allowed call makes a fact stale: an edit after a passing test
//! run), and a fact mapping's `when` that reads the call's arguments (a
//! result counts only as the answer to the right question).

use serde_json::{Value as Json, json};
use tollgate_core::{
    CallId, Effect, Event, SessionState, ToolCall, ToolOutcome, Verdict, Workflow, apply, compile, decide,
};

const WORKFLOW: &str = r#"
[workflow]
name = "context-and-clears"
version = 1

[facts.tests_passed]
fields = { stdout = "string" }

[facts.reviewed]
key = "path"
fields = { path = "string" }

[facts.owner]
identity = true
fields = { name = "string" }

[tools.shell]
args = { type = "object", required = ["command"], properties = { command = { type = "string" } } }

# Shell commands clear a pass unless they are git commands.
clears = ["tests_passed"]
clears_when = "!args.command.startsWith('git ')"

[[tools.shell.establishes]]
fact = "tests_passed"
when = "args.command == 'make test' && !result.interrupted"
fields = { stdout = "result.stdout" }

[[tools.shell.checks]]
id = "tests-before-push"
rule = "args.command != 'git push' || has(facts.tests_passed)"
message = "run the tests first"

[tools.review]
args = { type = "object", required = ["path"], properties = { path = { type = "string" } } }

[[tools.review.establishes]]
fact = "reviewed"
fields = { path = "args.path" }

[tools.edit]
clears = ["tests_passed", "reviewed"]
args = { type = "object", required = ["file_path"], properties = { file_path = { type = "string" } } }

[[tools.edit.checks]]
id = "inside-project"
rule = "args.file_path.startsWith(context.project_dir + '/')"
message = "{args.file_path} is outside {context.project_dir}"
"#;

fn workflow() -> Workflow {
    compile(WORKFLOW, "w.toml").unwrap_or_else(|p| panic!("{p:?}"))
}

const PROJECT: &str = "/home/dev/app";

fn call(id: &str, tool: &str, args: Json) -> ToolCall {
    ToolCall::new(id, tool, args).with_context(json!({"project_dir": PROJECT, "cwd": PROJECT}))
}

/// Decides and applies the call; returns its verdict and the effects.
fn step(workflow: &Workflow, state: &mut SessionState, call: &ToolCall) -> (Verdict, Vec<Effect>) {
    let decision = decide(workflow, state, call);
    let effects = apply(workflow, state, Event::Decided { call, decision: &decision });
    (decision.verdict(), effects)
}

fn result(workflow: &Workflow, state: &mut SessionState, id: &str, result: Json) -> Vec<Effect> {
    apply(
        workflow,
        state,
        Event::ResultRecorded { call: &CallId::new(id), result: &result, outcome: ToolOutcome::Succeeded },
    )
}

fn passed(stdout: &str) -> Json {
    json!({"stdout": stdout, "stderr": "", "interrupted": false})
}

#[test]
fn context_is_what_the_client_said_and_its_absence_blocks() {
    let workflow = workflow();
    let mut state = SessionState::new(&workflow);
    let inside = call("e1", "edit", json!({"file_path": "/home/dev/app/src/lib.rs"}));
    assert_eq!(decide(&workflow, &state, &inside).verdict(), Verdict::Allow);
    let outside = call("e2", "edit", json!({"file_path": "/home/dev/application/x"}));
    let decision = decide(&workflow, &state, &outside);
    assert_eq!(decision.verdict(), Verdict::Block);
    assert_eq!(decision.reasons()[0].rule_id, "inside-project");
    assert_eq!(decision.reasons()[0].message, "/home/dev/application/x is outside /home/dev/app");
    // A call the client said nothing about: the rule cannot read the project,
    // which is a refusal, never a pass.
    let bare = ToolCall::new("e3", "edit", json!({"file_path": "/home/dev/app/src/lib.rs"}));
    let decision = decide(&workflow, &state, &bare);
    assert_eq!(decision.verdict(), Verdict::Block, "{decision:?}");
    assert!(decision.reasons()[0].message.contains("could not be evaluated"), "{decision:?}");
    // The model's own arguments are not the context.
    let forged = ToolCall::new("e4", "edit", json!({"file_path": "/etc/x", "project_dir": "/etc"}))
        .with_context(json!({"project_dir": PROJECT}));
    assert_eq!(decide(&workflow, &state, &forged).verdict(), Verdict::Block);
    // The context is journaled with the call: it is bounded like the arguments.
    let huge = call("e5", "edit", json!({"file_path": "/home/dev/app/a.rs"}))
        .with_context(json!({"project_dir": PROJECT, "cwd": "x".repeat(70_000)}));
    let decision = decide(&workflow, &state, &huge);
    assert_eq!(decision.reasons()[0].rule_id, "tollgate.limits.args_bytes_max", "{decision:?}");
    let _ = step(&workflow, &mut state, &inside);
}

#[test]
fn when_reads_the_question_so_only_the_test_command_establishes_a_pass() {
    let workflow = workflow();
    let mut state = SessionState::new(&workflow);
    let push = || call("p", "shell", json!({"command": "git push"}));
    let (verdict, _) = step(&workflow, &mut state, &call("s1", "shell", json!({"command": "echo ok"})));
    assert_eq!(verdict, Verdict::Allow);
    assert!(result(&workflow, &mut state, "s1", passed("ok")).is_empty());
    assert_eq!(decide(&workflow, &state, &push()).verdict(), Verdict::Block);
    step(&workflow, &mut state, &call("s2", "shell", json!({"command": "make test"})));
    let interrupted = json!({"stdout": "", "stderr": "", "interrupted": true});
    assert!(result(&workflow, &mut state, "s2", interrupted).is_empty());
    assert_eq!(decide(&workflow, &state, &push()).verdict(), Verdict::Block);
    step(&workflow, &mut state, &call("s3", "shell", json!({"command": "make test"})));
    let effects = result(&workflow, &mut state, "s3", passed("3 passed"));
    assert_eq!(effects, vec![Effect::FactEstablished { fact: "tests_passed".into(), key: None }]);
    assert_eq!(decide(&workflow, &state, &push()).verdict(), Verdict::Allow);
}

#[test]
fn an_allowed_edit_clears_the_pass_and_a_refused_one_does_not() {
    let workflow = workflow();
    let mut state = SessionState::new(&workflow);
    let push = || call("p", "shell", json!({"command": "git push"}));
    step(&workflow, &mut state, &call("t1", "shell", json!({"command": "make test"})));
    result(&workflow, &mut state, "t1", passed("ok"));
    step(&workflow, &mut state, &call("r1", "review", json!({"path": "a.rs"})));
    result(&workflow, &mut state, "r1", json!({}));
    assert_eq!(decide(&workflow, &state, &push()).verdict(), Verdict::Allow);
    // Refused: nothing changed, the pass stands.
    let (verdict, effects) = step(&workflow, &mut state, &call("e1", "edit", json!({"file_path": "/tmp/x"})));
    assert_eq!(verdict, Verdict::Block);
    assert!(!effects.iter().any(|e| matches!(e, Effect::FactCleared { .. })), "{effects:?}");
    assert_eq!(decide(&workflow, &state, &push()).verdict(), Verdict::Allow);
    // Allowed: cleared the moment it is allowed, before its result, every
    // instance of a keyed fact too.
    let (verdict, effects) =
        step(&workflow, &mut state, &call("e2", "edit", json!({"file_path": "/home/dev/app/a.rs"})));
    assert_eq!(verdict, Verdict::Allow);
    let by = CallId::new("e2");
    assert_eq!(
        effects[..2],
        [
            Effect::FactCleared { fact: "tests_passed".into(), by: by.clone() },
            Effect::FactCleared { fact: "reviewed".into(), by }
        ]
    );
    assert!(state.facts(&workflow).is_empty(), "{:?}", state.facts(&workflow));
    let decision = decide(&workflow, &state, &push());
    assert_eq!(decision.verdict(), Verdict::Block);
    assert_eq!(decision.reasons()[0].rule_id, "tests-before-push");
    // The next pass counts again.
    result(&workflow, &mut state, "e2", json!({}));
    step(&workflow, &mut state, &call("t2", "shell", json!({"command": "make test"})));
    result(&workflow, &mut state, "t2", passed("ok"));
    assert_eq!(decide(&workflow, &state, &push()).verdict(), Verdict::Allow);
}

#[test]
fn a_test_run_allowed_before_an_edit_does_not_vouch_for_it() {
    let workflow = workflow();
    let mut state = SessionState::new(&workflow);
    let push = || call("p", "shell", json!({"command": "git push"}));
    // The tests start; an edit (a subagent's, say) is allowed while they run.
    step(&workflow, &mut state, &call("t1", "shell", json!({"command": "make test"})));
    step(&workflow, &mut state, &call("e1", "edit", json!({"file_path": "/home/dev/app/a.rs"})));
    // The stale state survives a checkpoint (a hook process per event).
    let checkpoint = state.to_checkpoint(&workflow);
    let pending = checkpoint["pending"].as_array().unwrap();
    let of = |id: &str| pending.iter().find(|p| p["call"] == id).unwrap().clone();
    assert_eq!(of("t1")["stale"], json!(["tests_passed", "reviewed"]));
    assert!(of("e1").get("stale").is_none(), "the edit's own result is not affected: {checkpoint}");
    let mut state = SessionState::from_checkpoint(&workflow, &checkpoint).unwrap();
    let effects = result(&workflow, &mut state, "t1", passed("ok"));
    assert!(
        matches!(&effects[..], [Effect::FactNotRecorded { fact, reason }]
            if fact == "tests_passed" && reason.contains("cleared")),
        "{effects:?}"
    );
    assert_eq!(decide(&workflow, &state, &push()).verdict(), Verdict::Block);
    // A run allowed after the edit counts.
    result(&workflow, &mut state, "e1", json!({}));
    step(&workflow, &mut state, &call("t2", "shell", json!({"command": "make test"})));
    result(&workflow, &mut state, "t2", passed("ok"));
    assert_eq!(decide(&workflow, &state, &push()).verdict(), Verdict::Allow);
}

fn problems(text: &str) -> Vec<String> {
    match compile(text, "w.toml") {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn misuses_of_context_clears_and_when_are_refused_with_the_fix() {
    let with = |from: &str, to: &str| {
        assert!(WORKFLOW.contains(from), "{from}");
        WORKFLOW.replacen(from, to, 1)
    };
    let found = problems(&with("context.project_dir + '/')", "context.home + '/')"));
    assert!(found.iter().any(|p| p.contains("context has no field 'home' (known: cwd, project_dir")), "{found:?}");
    // A result is recorded without the call's context: mappings cannot read it.
    let found = problems(&with("fields = { stdout = \"result.stdout\" }", "fields = { stdout = \"context.cwd\" }"));
    assert!(found.iter().any(|p| p.contains("unknown name 'context'")), "{found:?}");
    // `when` may read the arguments; a field still may not.
    let found = problems(&with("fields = { stdout = \"result.stdout\" }", "fields = { stdout = \"args.command\" }"));
    assert!(found.iter().any(|p| p.contains("unknown name 'args'")), "{found:?}");
    let found = problems(&with("clears = [\"tests_passed\", \"reviewed\"]", "clears = [\"test_passed\"]"));
    assert!(
        found.iter().any(|p| p.contains("clears 'test_passed', which is not a declared fact (declared: ")),
        "{found:?}"
    );
    let found = problems(&with("clears = [\"tests_passed\", \"reviewed\"]", "clears = [\"owner\"]"));
    assert!(found.iter().any(|p| p.contains("clears 'owner', an identity fact")), "{found:?}");
    assert_eq!(problems(WORKFLOW), Vec::<String>::new());
}

#[test]
fn clears_when_lets_only_the_commands_that_may_change_files_clear() {
    let workflow = workflow();
    let mut state = SessionState::new(&workflow);
    let push = || call("p", "shell", json!({"command": "git push"}));
    step(&workflow, &mut state, &call("t1", "shell", json!({"command": "make test"})));
    result(&workflow, &mut state, "t1", passed("ok"));
    // A git command does not clear.
    let (_, effects) = step(&workflow, &mut state, &call("g1", "shell", json!({"command": "git commit -am x"})));
    assert!(!effects.iter().any(|e| matches!(e, Effect::FactCleared { .. })), "{effects:?}");
    result(&workflow, &mut state, "g1", passed(""));
    assert_eq!(decide(&workflow, &state, &push()).verdict(), Verdict::Allow);
    // Another command may have changed files: the pass is stale.
    let (_, effects) = step(&workflow, &mut state, &call("s1", "shell", json!({"command": "sed -i s/a/b/ a.rs"})));
    assert!(effects.contains(&Effect::FactCleared { fact: "tests_passed".into(), by: CallId::new("s1") }));
    assert_eq!(decide(&workflow, &state, &push()).verdict(), Verdict::Block);
}

#[test]
fn clears_when_without_clears_or_reading_the_result_is_refused() {
    let found = problems(&WORKFLOW.replacen("clears = [\"tests_passed\"]\n", "", 1));
    assert!(found.iter().any(|p| p.contains("tool 'shell' has clears_when but clears nothing")), "{found:?}");
    let found = problems(&WORKFLOW.replacen("!args.command.startsWith('git ')", "result.stdout == ''", 1));
    assert!(found.iter().any(|p| p.contains("clears_when") && p.contains("unknown name 'result'")), "{found:?}");
}
