use super::*;
use tollgate_core::compile;

const WORKFLOW: &str = r#"
[workflow]
name = "refunds"
version = 1

[facts.customer]
identity = true
fields = { id = "string" }
missing = "verify the customer with get_customer first"

[tools.get_customer]
args = { type = "object", required = ["email"], properties = { email = { type = "string" } } }

[[tools.get_customer.result_checks]]
id = "found"
rule = "result.id != ''"
message = "no customer"

[[tools.get_customer.establishes]]
fact = "customer"
fields = { id = "result.id" }

[tools.refund]
side_effect = true
args = { type = "object", required = ["amount"], properties = { amount = { type = "number" } } }

[[tools.refund.requires]]
fact = "customer"

[[tools.refund.checks]]
id = "positive"
rule = "args.amount > 0"
message = "a refund is positive"

[[tools.refund.escalate]]
id = "large"
rule = "args.amount > 100"
reason = "a large refund"
urgency = "high"
recommended_action = "check the order"

[tools.escalate_to_human]
args = { type = "object" }

[handoff]
tool = "escalate_to_human"
required = ["customer_id", "conversation_summary", "root_cause", "recommended_action", "urgency"]
urgency_levels = ["low", "normal", "high", "critical"]
"#;

fn workflow() -> tollgate_core::Workflow {
    match compile(WORKFLOW, "refunds.toml") {
        Ok(workflow) => workflow,
        Err(problems) => panic!("the test workflow does not compile: {problems:?}"),
    }
}

fn run_text(text: &str) -> (FileResult, Coverage) {
    let workflow = workflow();
    let file = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let mut coverage = Coverage::new(&workflow);
    let result = run(&workflow, &file, None, &mut coverage);
    (result, coverage)
}

const CAREFUL: &str = r#"
now = 2024-05-15T15:00:00Z

[[test]]
name = "verified, then refunded"
steps = [
  { call = "get_customer", args = { email = "a@b.c" }, result = { id = "c_1" } },
  { call = "refund", args = { amount = 30 } },
]

[[test]]
name = "refused and escalated"
steps = [
  { call = "refund", args = { amount = 30 }, expect = "block", rule = "refund.requires.1" },
  { call = "get_customer", args = { email = "a@b.c" }, result = { id = "" }, expect = "withheld", rule = "found" },
  { call = "get_customer", args = { email = "a@b.c" }, result = { id = "c_1" } },
  { call = "refund", args = { amount = -5 }, expect = "block", rule = "positive", message = "positive" },
  { call = "refund", args = { amount = 500 }, expect = "escalate", rule = "large" },
  { human = "claim", handoff = "c5" },
  { human = "approve", handoff = "c5" },
  { call = "refund", args = { amount = 500 } },
  { human = "deny", handoff = "c1", reason = "no", expect = "refused" },
]
"#;

#[test]
fn tests_that_match_the_workflow_pass_and_every_rule_is_covered() {
    let (result, coverage) = run_text(CAREFUL);
    for test in &result.tests {
        assert_eq!(test.failure, None, "{}", test.name);
    }
    assert_eq!(result.passed(), 2);
    let never: Vec<&str> = coverage.never_fired().map(|r| r.id.as_str()).collect();
    assert!(never.is_empty(), "never fired: {never:?}");
    assert_eq!(coverage.never_allowed().collect::<Vec<_>>(), ["escalate_to_human"]);
}

#[test]
fn a_wrong_expectation_fails_with_what_happened_instead() {
    let (result, _) = run_text(
        r#"
[[test]]
name = "expects an allow"
steps = [{ call = "refund", args = { amount = 30 } }]

[[test]]
name = "expects the wrong rule"
steps = [
  { call = "get_customer", args = { email = "a@b.c" }, result = { id = "c_1" } },
  { call = "refund", args = { amount = -1 }, expect = "block", rule = "large" },
]

[[test]]
name = "expects a withholding that does not happen"
steps = [{ call = "get_customer", args = { email = "a@b.c" }, result = { id = "c_1" }, expect = "withheld" }]
"#,
    );
    let failures: Vec<String> = result.tests.iter().map(|t| t.failure.clone().unwrap_or_default()).collect();
    assert!(
        failures[0].contains("step 1 (call c1 to refund): expected allow, got block by refund.requires.1"),
        "{}",
        failures[0]
    );
    assert!(failures[1].contains("expected block by large, got block by positive"), "{}", failures[1]);
    assert!(failures[2].contains("expected the result to be withheld"), "{}", failures[2]);
    assert_eq!(result.failed(), 3);
    let text = render("t.tests.toml", &workflow(), &result);
    assert!(text.contains("test expects an allow ... FAILED"), "{text}");
    assert!(text.ends_with("test result: FAILED. 0 passed; 3 failed\n"), "{text}");
}

#[test]
fn coverage_lists_what_no_test_made_fire_or_pass() {
    let (_, coverage) = run_text(
        r#"
[[test]]
name = "only the careful path"
steps = [
  { call = "get_customer", args = { email = "a@b.c" }, result = { id = "c_1" } },
  { call = "refund", args = { amount = 30 } },
]
"#,
    );
    let never: Vec<&str> = coverage.never_fired().map(|r| r.id.as_str()).collect();
    assert_eq!(never, ["found", "refund.requires.1", "positive", "large"]);
    assert!(!coverage.complete());
    let report = coverage.render(&workflow());
    assert!(report.starts_with("coverage of refunds v1: 0 of 4 rules fired (0%)"), "{report}");
    assert!(report.contains("refund        escalation    large"), "{report}");
}

#[test]
fn a_broken_file_says_where_and_what_to_write() {
    let cases = [
        (
            "[[test]]\nname = \"x\"\nsteps = [{ call = \"refund\", expect = \"maybe\" }]",
            "not a verdict; write allow, block",
        ),
        ("[[test]]\nname = \"x\"\nsteps = [{ tool = \"refund\" }]", "unknown field `tool`"),
        ("[[test]]\nname = \"x\"\nsteps = []", "no steps"),
        ("[[test]]\nname = \"x\"\nsteps = [{ human = \"approve\" }]", "name the escalated call"),
        ("[[test]]\nname = \"x\"\nsteps = [{ call = \"refund\", rule = \"large\" }]", "an allowed call has no reasons"),
        ("[[test]]\nname = \"x\"\nsteps = [{ call = \"refund\", result = 1, error = \"e\" }]", "give one of `result`"),
        (
            "[[test]]\nname = \"x\"\nsteps = [{ call = \"a\" }]\n[[test]]\nname = \"x\"\nsteps = [{ call = \"a\" }]",
            "same name",
        ),
        ("[[test]]\nname = \"x\"\nnow = \"yesterday\"\nsteps = [{ call = \"a\" }]", "RFC 3339"),
        ("[[test]\n", "TOML parse error"),
    ];
    for (text, expected) in cases {
        match parse(text) {
            Ok(_) => panic!("{text:?} was accepted"),
            Err(e) => assert!(e.0.contains(expected), "{text:?}: {e}"),
        }
    }
}

#[test]
fn result_json_carries_nulls_and_ids_count_calls_only() {
    let file = parse(
        r#"
[[test]]
name = "nulls"
steps = [
  { call = "get_customer", args = { email = "a" }, result_json = '{"id": null}' },
  { human = "expire", handoff = "c1" },
  { call = "refund", id = "mine" },
  { call = "refund" },
]
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = file.tests[0]
        .steps
        .iter()
        .filter_map(|s| match s {
            file::Step::Call(c) => Some(c.id.as_str()),
            file::Step::Human(_) => None,
        })
        .collect();
    assert_eq!(ids, ["c1", "mine", "c3"]);
    match &file.tests[0].steps[0] {
        file::Step::Call(call) => {
            assert!(matches!(&call.outcome, Some(file::Outcome::Result(r)) if r["id"].is_null()))
        }
        file::Step::Human(_) => panic!("the first step is a call"),
    }
}
