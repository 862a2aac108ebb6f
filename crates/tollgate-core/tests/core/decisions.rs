//! Decision behaviour that the transcripts show by example, pinned here as
//! assertions: parallel batches, fail-closed evaluation, limits, determinism.

use serde_json::json;
use tollgate_core::{
    CallId, Decision, Event, SessionState, Stage, ToolCall, ToolOutcome, Verdict, Workflow, apply, compile, decide,
};

const REFERENCE: &str = include_str!("../../../../examples/support-refunds.toml");

fn reference() -> Workflow {
    compile(REFERENCE, "support-refunds.toml").unwrap_or_else(|p| panic!("{p:?}"))
}

struct Session<'w> {
    workflow: &'w Workflow,
    state: SessionState,
}

impl<'w> Session<'w> {
    fn new(workflow: &'w Workflow) -> Self {
        Session { workflow, state: SessionState::new(workflow) }
    }
    fn call(&mut self, id: &str, tool: &str, args: serde_json::Value) -> Decision {
        let call = ToolCall::new(id, tool, args);
        let decision = decide(self.workflow, &self.state, &call);
        apply(self.workflow, &mut self.state, Event::Decided { call: &call, decision: &decision });
        decision
    }
    fn result(&mut self, id: &str, result: serde_json::Value) {
        let call = CallId::new(id);
        apply(
            self.workflow,
            &mut self.state,
            Event::ResultRecorded { call: &call, result: &result, outcome: ToolOutcome::Succeeded },
        );
    }
    fn verified_with_order(workflow: &'w Workflow, total: f64) -> Self {
        let mut session = Session::new(workflow);
        session.call("v", "get_customer", json!({"email": "alice@example.com", "zip": "94107"}));
        session.result("v", json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"}));
        session.call("o", "lookup_order", json!({"order_id": "#W1"}));
        session.result("o", json!({"order_id": "#W1", "customer_id": "c_42", "total": total, "status": "delivered"}));
        session
    }
}

#[test]
fn a_prerequisite_in_the_same_batch_is_pending_not_done() {
    let workflow = reference();
    let mut session = Session::new(&workflow);
    // One agent turn: verify, look up and refund, all at once.
    let verify = session.call("t1", "get_customer", json!({"email": "alice@example.com", "zip": "94107"}));
    let lookup = session.call("t2", "lookup_order", json!({"order_id": "#W1"}));
    assert_eq!(verify.verdict(), Verdict::Allow);
    let Decision::Block(blocked) = lookup else { panic!("lookup must wait: {lookup:?}") };
    assert_eq!(blocked.stage, Stage::Gates);
    assert_eq!(blocked.missing[0].pending_call, Some(CallId::new("t1")));
    assert!(blocked.missing[0].action.starts_with("wait for the result of get_customer (call t1)"));
    // Once the result is recorded, the same call goes through.
    session.result("t1", json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"}));
    assert_eq!(session.call("t3", "lookup_order", json!({"order_id": "#W1"})).verdict(), Verdict::Allow);
}

#[test]
fn an_allowed_call_whose_tool_failed_establishes_nothing() {
    let workflow = reference();
    let mut session = Session::new(&workflow);
    session.call("t1", "get_customer", json!({"email": "alice@example.com", "zip": "94107"}));
    let failed = CallId::new("t1");
    apply(
        &workflow,
        &mut session.state,
        Event::ResultRecorded {
            call: &failed,
            result: &json!({"verified": true, "customer_id": "c_42", "email": "a", "tier": "b"}),
            outcome: ToolOutcome::Failed,
        },
    );
    assert_eq!(session.call("t2", "lookup_order", json!({"order_id": "#W1"})).verdict(), Verdict::Block);
}

#[test]
fn refunds_in_one_batch_cannot_together_exceed_the_order_total() {
    let workflow = reference();
    let mut session = Session::verified_with_order(&workflow, 100.0);
    assert_eq!(
        session.call("r1", "process_refund", json!({"order_id": "#W1", "amount": 70})).verdict(),
        Verdict::Allow
    );
    // r1's result is not back yet; its amount is already held.
    let second = session.call("r2", "process_refund", json!({"order_id": "#W1", "amount": 70}));
    assert_eq!(second.verdict(), Verdict::Block);
    assert_eq!(second.rule_ids(), vec!["refund-within-remaining"]);
    assert_eq!(
        session.call("r3", "process_refund", json!({"order_id": "#W1", "amount": 30})).verdict(),
        Verdict::Allow
    );
}

#[test]
fn recording_a_result_twice_changes_nothing() {
    let workflow = reference();
    let mut session = Session::verified_with_order(&workflow, 100.0);
    session.call("r1", "process_refund", json!({"order_id": "#W1", "amount": 60}));
    session.result("r1", json!({"refund_id": "x", "order_status": "delivered"}));
    let once = session.state.clone();
    session.result("r1", json!({"refund_id": "x", "order_status": "delivered"}));
    assert_eq!(session.state, once);
}

#[test]
fn a_rule_that_cannot_be_evaluated_blocks_and_names_itself() {
    let text = r#"
[workflow]
name = "t"
version = 1
[tools.pay]
args = { type = "object", properties = { amount = { type = "integer" }, split = { type = "integer" }, note = { type = "string" } } }
[[tools.pay.checks]]
id = "per-part-limit"
rule = "args.amount / args.split <= 100"
message = "each part must be at most 100"
[[tools.pay.escalate]]
id = "big-note"
rule = "args.note == 'vip'"
reason = "vip"
urgency = "high"
recommended_action = "look"
"#;
    let workflow = compile(text, "t.toml").unwrap_or_else(|p| panic!("{p:?}"));
    let state = SessionState::new(&workflow);
    let zero = decide(&workflow, &state, &ToolCall::new("c1", "pay", json!({"amount": 500, "split": 0})));
    let Decision::Block(blocked) = &zero else { panic!("division by zero must block: {zero:?}") };
    assert_eq!(blocked.stage, Stage::Checks);
    assert_eq!(zero.rule_ids(), vec!["per-part-limit"]);
    assert!(blocked.reasons[0].message.contains("could not be evaluated"), "{zero:?}");
    // A missing argument inside an escalation rule blocks rather than allows.
    let missing = decide(&workflow, &state, &ToolCall::new("c2", "pay", json!({"amount": 50, "split": 1})));
    assert_eq!(missing.verdict(), Verdict::Block);
    assert_eq!(missing.rule_ids(), vec!["big-note"]);
}

#[test]
fn limits_block_with_clear_reasons() {
    let text = r#"
[workflow]
name = "t"
version = 1
[limits]
args_bytes_max = 64
pending_calls_max = 1
evaluation_steps_max = 50
[tools.echo]
[tools.count]
args = { type = "object", properties = { items = { type = "array" } } }
[[tools.count.checks]]
rule = "args.items.all(x, args.items.all(y, x != y || x == y))"
message = "never"
"#;
    let workflow = compile(text, "t.toml").unwrap_or_else(|p| panic!("{p:?}"));
    let mut session = Session::new(&workflow);
    let big = session.call("c1", "echo", json!({"text": "x".repeat(100)}));
    assert_eq!(big.rule_ids(), vec!["tollgate.limits.args_bytes_max"]);
    let steps = session.call("c2", "count", json!({"items": [1, 2, 3, 4, 5, 6, 7, 8]}));
    assert!(steps.reasons()[0].message.contains("evaluation step limit"), "{steps:?}");
    assert_eq!(session.call("c3", "echo", json!({})).verdict(), Verdict::Allow);
    let crowded = session.call("c4", "echo", json!({}));
    assert_eq!(crowded.rule_ids(), vec!["tollgate.limits.pending_calls_max"]);
}

#[test]
fn a_pending_lookup_of_another_order_is_not_offered_as_the_way() {
    let workflow = reference();
    let mut session = Session::verified_with_order(&workflow, 100.0);
    session.call("l2", "lookup_order", json!({"order_id": "#W2"}));
    let other = session.call("r1", "process_refund", json!({"order_id": "#W3", "amount": 5}));
    let Decision::Block(blocked) = &other else { panic!("{other:?}") };
    assert_eq!(blocked.missing[0].pending_call, None);
    assert_eq!(blocked.missing[0].action, "look up order #W3 with lookup_order first");
    let same = session.call("r2", "process_refund", json!({"order_id": "#W2", "amount": 5}));
    let Decision::Block(blocked) = &same else { panic!("{same:?}") };
    assert_eq!(blocked.missing[0].pending_call, Some(CallId::new("l2")));
}

/// Integer ids beyond 2^53 (64-bit account numbers, snowflake ids) are
/// compared exactly: one digit apart is another account. Compared through
/// f64, as an earlier evaluator did, these two ids were equal and the gate
/// let the call through for an account the session never verified.
#[test]
fn large_integer_ids_that_differ_never_match() {
    let text = r#"
[workflow]
name = "ids"
version = 1

[facts.account]
identity = true
fields = { id = "int" }

[tools.find_account]
args = { type = "object", required = ["account_id"], properties = { account_id = { type = "integer" } } }

[[tools.find_account.establishes]]
fact = "account"
fields = { id = "result.account_id" }

[tools.close_account]
side_effect = true
args = { type = "object", required = ["account_id"], properties = { account_id = { type = "integer" } } }

[[tools.close_account.requires]]
id = "close-own-account"
fact = "account"
where = "args.account_id == account.id"
message = "account {args.account_id} is not the verified one"
"#;
    let workflow = compile(text, "ids.toml").unwrap_or_else(|p| panic!("{p:?}"));
    let mut session = Session::new(&workflow);
    assert_eq!(
        session.call("f", "find_account", json!({"account_id": 9_007_199_254_740_992i64})).verdict(),
        Verdict::Allow
    );
    session.result("f", json!({"account_id": 9_007_199_254_740_992i64}));
    let other = session.call("c1", "close_account", json!({"account_id": 9_007_199_254_740_993i64}));
    let Decision::Block(blocked) = other else { panic!("another account must be blocked: {other:?}") };
    assert!(blocked.reasons.iter().any(|r| r.rule_id == "close-own-account"), "{blocked:?}");
    let own = session.call("c2", "close_account", json!({"account_id": 9_007_199_254_740_992i64}));
    assert_eq!(own.verdict(), Verdict::Allow, "{own:?}");
}

#[test]
fn a_result_given_as_a_value_is_recorded_exactly_as_its_json_would_be() {
    let workflow = reference();
    let result = json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"});
    let value = tollgate_core::Value::from_json(&result);
    let limit = workflow.limits().result_bytes_max;
    let recorded = |bytes: Option<usize>| {
        let mut session = Session::new(&workflow);
        session.call("v", "get_customer", json!({"email": "alice@example.com", "zip": "94107"}));
        let call = CallId::new("v");
        let event = match bytes {
            None => Event::ResultRecorded { call: &call, result: &result, outcome: ToolOutcome::Succeeded },
            Some(json_bytes) => {
                Event::ValueRecorded { call: &call, result: &value, json_bytes, outcome: ToolOutcome::Succeeded }
            }
        };
        let effects = apply(&workflow, &mut session.state, event);
        (effects, session.state)
    };
    let (from_json, json_state) = recorded(None);
    let (from_value, value_state) = recorded(Some(tollgate_core::json_bytes(&result)));
    assert_eq!(from_json, from_value);
    assert_eq!(json_state, value_state);
    assert_eq!(value_state.facts(&workflow).len(), 1, "the customer is verified");
    // Over the limit, the value is withheld like oversized JSON.
    let (over, state) = recorded(Some(limit + 1));
    assert!(matches!(&over[..], [tollgate_core::Effect::ResultWithheld { .. }]), "{over:?}");
    assert!(state.facts(&workflow).is_empty());
}

#[test]
fn an_escalation_quotes_the_agents_summary_beside_the_one_compiled_from_the_session() {
    let workflow = reference();
    let session = Session::verified_with_order(&workflow, 2_000.0);
    let refund = ToolCall::new("r", "process_refund", json!({"order_id": "#W1", "amount": 800.0}));
    let handoff = |call: &ToolCall| match decide(&workflow, &session.state, call) {
        Decision::Escalate(escalation) => escalation.handoff,
        other => panic!("expected an escalation, got {other:?}"),
    };
    let compiled = handoff(&refund).conversation_summary;
    assert!(compiled.contains("customer c_42"), "{compiled}");
    let with_summary = handoff(&refund.clone().with_summary("Customer wants $800 back for a broken TV."));
    assert_eq!(
        with_summary.conversation_summary,
        format!("Customer wants $800 back for a broken TV. (from the session: {compiled})")
    );
    // An empty summary is no summary: the compiled one stands alone.
    assert_eq!(handoff(&refund.with_summary("   ")).conversation_summary, compiled);
}

/// The invoice workflow of the fail-open report: a payment limit per invoice,
/// keyed by an argument the schema lets be null.
const NULLABLE_INVOICE: &str = r#"
[workflow]
name = "invoices"
version = 1

[aggregates.paid]
tool = "pay"
sum = "args.amount"
by = "args.invoice"

[tools.pay]
side_effect = true
args = { type = "object", required = ["amount"], properties = { invoice = INVOICE, amount = { type = "number" } } }

[[tools.pay.checks]]
rule = "paid(args.invoice) + args.amount <= 100.0"
message = "payments on invoice {args.invoice} would exceed 100"
"#;

#[test]
fn regression_an_aggregate_key_that_is_null_or_missing_blocks_instead_of_resetting_the_limit() {
    let nullable = NULLABLE_INVOICE.replace("INVOICE", r#"{ type = ["string", "null"] }"#);
    let workflow = compile(&nullable, "invoices.toml").unwrap_or_else(|p| panic!("{p:?}"));
    // Any JSON at all: the wrong types reach the key too.
    let untyped =
        compile(&NULLABLE_INVOICE.replace("INVOICE", "{}"), "untyped.toml").unwrap_or_else(|p| panic!("{p:?}"));
    for (label, workflow, args) in [
        ("null", &workflow, json!({"invoice": null, "amount": 90.0})),
        ("missing", &workflow, json!({"amount": 90.0})),
        ("null, untyped", &untyped, json!({"invoice": null, "amount": 90.0})),
        ("a list", &untyped, json!({"invoice": ["a"], "amount": 90.0})),
        ("an object", &untyped, json!({"invoice": {"id": "a"}, "amount": 90.0})),
    ] {
        let mut session = Session::new(workflow);
        for attempt in 0..3 {
            let decision = session.call(&format!("p{attempt}"), "pay", args.clone());
            let Decision::Block(blocked) = &decision else {
                panic!("a payment whose invoice is {label} was not blocked (attempt {attempt}): {decision:?}")
            };
            assert!(
                blocked.reasons.iter().any(|r| r.rule_id == "aggregate.paid" && r.message.contains("args.invoice")),
                "the block names the aggregate and its key ({label}): {:?}",
                blocked.reasons
            );
        }
    }
    // A real key still counts: 90 then 20 on one invoice is over the limit.
    let mut session = Session::new(&workflow);
    assert_eq!(session.call("a", "pay", json!({"invoice": "I-1", "amount": 90.0})).verdict(), Verdict::Allow);
    assert_eq!(session.call("b", "pay", json!({"invoice": "I-1", "amount": 20.0})).verdict(), Verdict::Block);
    assert_eq!(session.call("c", "pay", json!({"invoice": "I-2", "amount": 20.0})).verdict(), Verdict::Allow);
}

/// Arguments are measured as they are stored: 3,000 control characters are
/// 18,000 bytes of JSON, over the reference's 16 KiB limit, though 3,000
/// bytes of text.
#[test]
fn arguments_are_measured_with_their_escapes() {
    let workflow = reference();
    assert_eq!(workflow.limits().args_bytes_max, 16 * 1024);
    let call = ToolCall::new("c1", "get_customer", json!({"email": "\u{1}".repeat(3_000), "zip": "1"}));
    assert!(tollgate_core::json_bytes(&call.args) > 18_000);
    let decision = decide(&workflow, &SessionState::new(&workflow), &call);
    assert_eq!(decision.rule_ids(), ["tollgate.limits.args_bytes_max"]);
    // The same length of plain text is well within it.
    let plain = ToolCall::new("c2", "get_customer", json!({"email": "a".repeat(3_000), "zip": "1"}));
    assert_ne!(decide(&workflow, &SessionState::new(&workflow), &plain).rule_ids(), ["tollgate.limits.args_bytes_max"]);
}

#[test]
fn message_holes_take_any_cel_and_doubled_braces_write_a_brace() {
    let text = r#"
[workflow]
name = "t"
version = 1

[tools.note]
args = { type = "object", properties = { k = { type = "string" }, note = { type = "string" } } }

[[tools.note.checks]]
rule = "false"
message = "{{literal}} { {'a': 'map', 'b': 'other'}[args.k] } {args.note + '}'} {'{'} {{{args.k}}} {'''}'''}"
"#;
    let workflow = compile(text, "t.toml").unwrap_or_else(|p| panic!("{p:?}"));
    let mut session = Session::new(&workflow);
    let decision = session.call("c1", "note", json!({"k": "a", "note": "n"}));
    assert_eq!(decision.reasons()[0].message, "{literal} map n} { {a} }");
    // An unclosed hole says how to write a brace.
    let broken = text.replace("{{literal}}", "{literal");
    let problems = compile(&broken, "t.toml").err().unwrap_or_default();
    assert!(problems.iter().any(|p| p.to_string().contains("write '{{' for a brace")), "{problems:?}");
}

#[test]
fn explain_evaluates_every_rule_with_the_values_it_read() {
    use tollgate_core::{RuleOutcome, explain};
    let workflow = reference();
    let mut session = Session::verified_with_order(&workflow, 120.0);
    let call = ToolCall::new("r", "process_refund", json!({"order_id": "#W1", "amount": 650.0}));
    let explained = explain(&workflow, &session.state, &call);
    assert_eq!(explained.decision, decide(&workflow, &session.state, &call));
    let rule = |id: &str, kind: &str| {
        explained.rules.iter().find(|r| r.rule_id == id && r.kind == kind).unwrap_or_else(|| panic!("{id} {kind}"))
    };
    assert_eq!(rule("refund-order-owned", "gate").outcome, RuleOutcome::Passed);
    let remaining = rule("refund-within-remaining", "check");
    assert!(
        matches!(&remaining.outcome, RuleOutcome::Failed(m) if m.contains("exceeds what remains")),
        "{remaining:?}"
    );
    assert!(remaining.values.contains(&("args.amount".into(), "650".into())), "{:?}", remaining.values);
    assert!(remaining.values.contains(&("order.total".into(), "120".into())), "{:?}", remaining.values);
    assert!(remaining.values.contains(&("refunded(args.order_id)".into(), "0".into())), "{:?}", remaining.values);
    // The escalation that decide never reached is evaluated too.
    assert!(matches!(rule("refund-over-500", "escalation").outcome, RuleOutcome::Failed(_)));

    // Without the order: the gate fails, and what reads the order is not evaluated.
    let fresh = Session::new(&workflow);
    let explained = explain(&workflow, &fresh.state, &call);
    let owned = explained.rules.iter().find(|r| r.rule_id == "refund-order-owned" && r.kind == "gate").unwrap();
    assert!(matches!(&owned.outcome, RuleOutcome::Failed(m) if m == "no order #W1 in the session"), "{owned:?}");
    let check = explained.rules.iter().find(|r| r.rule_id == "refund-within-remaining").unwrap();
    assert!(matches!(check.outcome, RuleOutcome::NotEvaluated(_)), "{check:?}");
    let _ = &mut session;
}
