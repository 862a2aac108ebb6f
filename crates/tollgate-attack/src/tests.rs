//! The oracle is independent of the core's state: given a core whose `apply`
//! has a bug planted in it, the oracle, folding the events itself, reports
//! what that core lets through. An oracle that read the core's
//! `SessionState` would agree with the bug and report nothing.

use super::{CoreTally, Oracle, run_core, run_with};
use serde_json::json;
use tollgate_core::{
    Allowed, CallId, Decision, Effect, Event, SessionState, ToolCall, ToolOutcome, Verdict, Workflow, apply, compile,
};
use tollgate_protocol::script::Step;

const REFUNDS: &str = include_str!("../../../examples/support-refunds.toml");

fn call(id: &str, tool: &str, args: serde_json::Value) -> Step {
    Step::Call(ToolCall::new(id, tool, args))
}

fn result(id: &str, result: serde_json::Value) -> Step {
    Step::Result { call: CallId::new(id), result, outcome: ToolOutcome::Succeeded }
}

fn verify() -> [Step; 2] {
    [
        call("c1", "get_customer", json!({"email": "alice@example.com", "zip": "94107"})),
        result("c1", json!({"verified": true, "customer_id": "c_42", "email": "alice@example.com", "tier": "gold"})),
    ]
}

fn order_w1() -> serde_json::Value {
    json!({"order_id": "#W1", "customer_id": "c_42", "total": 100.0, "status": "delivered"})
}

/// The invariant broken, and at which step, when `steps` run on a core folding with `apply`.
fn broken(apply: super::Apply, steps: &[Step]) -> Option<(usize, String)> {
    let workflow = compile(REFUNDS, "support-refunds.toml").unwrap();
    let oracle = Oracle::new(&workflow, REFUNDS).unwrap();
    run_with(apply, &workflow, &oracle, steps, &mut CoreTally::default()).map(|(at, b)| (at, b.invariant))
}

/// An `apply` that forgets every allowed refund: it never counts against
/// the order, so the core's own check lets the next refund through.
fn forgets_refunds(workflow: &Workflow, state: &mut SessionState, event: Event<'_>) -> Vec<Effect> {
    match event {
        Event::Decided { call, decision } if call.tool == "process_refund" && decision.verdict() == Verdict::Allow => {
            Vec::new()
        }
        event => apply(workflow, state, event),
    }
}

/// An `apply` that folds a blocked lookup as if it had been allowed, so the
/// result of a refused call establishes its order.
fn unblocks_lookups(workflow: &Workflow, state: &mut SessionState, event: Event<'_>) -> Vec<Effect> {
    match event {
        Event::Decided { call, decision } if call.tool == "lookup_order" && decision.verdict() == Verdict::Block => {
            let allowed = Decision::Allow(Allowed::plain(None));
            apply(workflow, state, Event::Decided { call, decision: &allowed })
        }
        event => apply(workflow, state, event),
    }
}

#[test]
fn amounts_are_counted_by_the_oracle_even_when_apply_forgets_them() {
    let mut steps = verify().to_vec();
    steps.extend([
        call("c2", "lookup_order", json!({"order_id": "#W1"})),
        result("c2", order_w1()),
        call("c3", "process_refund", json!({"order_id": "#W1", "amount": 60.0})),
        result("c3", json!({"refund_id": "r1"})),
        call("c4", "process_refund", json!({"order_id": "#W1", "amount": 60.0})),
    ]);
    // The core as it is blocks the second refund (60 + 60 > 100).
    assert_eq!(broken(apply, &steps), None);
    // With the planted bug the core allows it, and the oracle's own fold,
    // which counted the first refund, says so.
    assert_eq!(broken(forgets_refunds, &steps), Some((6, "refund-within-order-total".into())));
}

#[test]
fn results_of_refused_calls_establish_nothing_for_the_oracle() {
    // The lookup comes before the customer is verified, so it is blocked; its
    // result arrives after the verification.
    let [verify_call, verify_result] = verify();
    let steps = [
        call("c2", "lookup_order", json!({"order_id": "#W1"})),
        verify_call,
        verify_result,
        result("c2", order_w1()),
        call("c3", "process_refund", json!({"order_id": "#W1", "amount": 50.0})),
    ];
    assert_eq!(broken(apply, &steps), None);
    assert_eq!(broken(unblocks_lookups, &steps), Some((4, "tollgate.prerequisite-recorded".into())));
}

/// The hunt's own entry point judges with the oracle's fold too.
#[test]
fn run_core_is_the_core_as_it_is() {
    let workflow = compile(REFUNDS, "support-refunds.toml").unwrap();
    let oracle = Oracle::new(&workflow, REFUNDS).unwrap();
    let mut steps = verify().to_vec();
    steps.extend([call("c2", "lookup_order", json!({"order_id": "#W1"})), result("c2", order_w1())]);
    let mut tally = CoreTally::default();
    assert_eq!(run_core(&workflow, &oracle, &steps, &mut tally), None);
    assert_eq!((tally.decided, tally.judged), (2, 2));
}

/// What the oracle judges with is built from events only: none of its code
/// reads the core's session state.
#[test]
fn the_oracle_never_reads_the_cores_session_state() {
    for (file, text) in [
        ("oracle.rs", include_str!("oracle.rs")),
        ("fold.rs", include_str!("fold.rs")),
        ("spec.rs", include_str!("spec.rs")),
    ] {
        let code = text.lines().filter(|line| !line.trim_start().starts_with("//"));
        assert!(code.clone().all(|line| !line.contains("SessionState")), "{file} reads SessionState");
        assert!(code.clone().all(|line| !line.contains("tollgate_core::apply")), "{file} calls the core's apply");
        assert!(code.clone().all(|line| !line.contains("evaluate_standalone")), "{file} uses the core's evaluator");
    }
}
