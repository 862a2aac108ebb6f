//! Property test: no sequence of calls and results — random tools, forged
//! ids, other customers' orders, adversarial results, results for unknown
//! calls, failures, results recorded twice, parallel batches — gets a refund
//! or an account deletion past its gates and limits.
//!
//! The engine is compared with a small reference model written here from
//! the policy's words: a verified customer comes from a recorded
//! verification result; an order counts once a recorded lookup showed it
//! belongs to that customer; refunds per order never exceed its total and
//! each is at most $500 (above that, escalate).
//!
//! A second property generates workflows whose keys (a gate's, an
//! aggregate's `by`) may be null, missing or of the wrong type, and checks
//! that no payment gets past its per-invoice limit (`keys`).
//!
//! Both properties are here, so that `bypass.proptest-regressions` beside
//! this file holds the seeds of both; their generators, models and checkers
//! are in `refunds` and `keys`.

mod keys;
mod refunds;

use keys::{KeyAction, KeyedWorkflow, check_keyed, key_action, keyed_workflow};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use refunds::{Action, Reached, check_sequence, plain_result, session, workflow};
use serde_json::{Value as Json, json};
use tollgate_core::Workflow;

thread_local! {
    static WORKFLOW: std::rc::Rc<Workflow> = std::rc::Rc::new(workflow());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("TOLLGATE_BYPASS_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000),
        max_shrink_iters: 2_000,
        // Beside this file, as `bypass.proptest-regressions`: proptest's
        // default looks for a `main.rs` above the source, finds this test
        // binary's and would read `tests/proptest-regressions/bypass.txt`.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_call_sequence_bypasses_refund_or_deletion_gates(actions in session()) {
        let workflow = WORKFLOW.with(|w| w.clone());
        check_sequence(&workflow, &actions)?;
    }
}

/// The property above proves something only if the generated sessions reach
/// allowed and escalated refunds: the same generator, seeded, over 2,000
/// sessions, through the same checker.
#[test]
fn the_generator_reaches_allowed_and_escalated_refunds() {
    let workflow = workflow();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = session();
    let sessions = 2_000;
    let (mut with_allowed, mut with_escalated) = (0, 0);
    for _ in 0..sessions {
        let actions = strategy.new_tree(&mut runner).map(|tree| proptest::strategy::ValueTree::current(&tree));
        let actions = actions.unwrap_or_else(|e| panic!("{e}"));
        let reached = check_sequence(&workflow, &actions).unwrap_or_else(|e| panic!("{e}"));
        with_allowed += usize::from(reached.allowed_refunds > 0);
        with_escalated += usize::from(reached.escalated_refunds > 0);
    }
    // Measured at 2,000 seeded sessions: hundreds of each; a generator that
    // stopped reaching refunds would fall to 0.
    eprintln!("of {sessions} sessions, {with_allowed} reach an allowed refund and {with_escalated} an escalated one");
    assert!(with_allowed * 10 >= sessions, "{with_allowed} of {sessions} sessions reach an allowed refund");
    assert!(with_escalated * 50 >= sessions, "{with_escalated} of {sessions} sessions reach an escalated refund");
}

/// A fixed happy path through the checker: it must see the refunds allowed
/// and escalated, so the checker itself can tell them apart.
#[test]
fn checker_sees_allowed_and_escalated_refunds() {
    let workflow = workflow();
    let call = |tool: &'static str, args: Json| Action::Call { tool, args };
    // `target` 0: the result answers the call just made.
    let result = |result: Json| plain_result(0, result);
    let actions = vec![
        call("get_customer", json!({"email": "alice@example.com", "zip": "94107"})),
        result(json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"})),
        call("lookup_order", json!({"order_id": "#W2"})),
        result(json!({"order_id": "#W2", "customer_id": "c_42", "total": 900.0, "status": "delivered"})),
        call("process_refund", json!({"order_id": "#W2", "amount": 100.0})),
        call("process_refund", json!({"order_id": "#W2", "amount": 800.0})),
        call("process_refund", json!({"order_id": "#W2", "amount": 801.0})),
    ];
    let reached = check_sequence(&workflow, &actions).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reached, Reached { allowed_refunds: 1, escalated_refunds: 1 });
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("TOLLGATE_BYPASS_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000) / 4,
        max_shrink_iters: 2_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_key_that_is_null_missing_or_of_the_wrong_type_gets_a_payment_past_its_limit(
        workflow in keyed_workflow(),
        actions in prop::collection::vec(key_action(), 1..40),
    ) {
        check_keyed(&workflow, &actions)?;
    }
}

/// The property above must reach allowed payments in every kind of workflow
/// it generates, and the oracle must catch a payment past the limit.
#[test]
fn keyed_checker_sees_allowed_payments_and_catches_one_past_the_limit() {
    let lookup = |key: Json| KeyAction::Lookup { key: Some(key) };
    let found = |id: Json| KeyAction::Result { target: 0, id: Some(id), failed: false };
    let pay = |key: Json, amount: f64| KeyAction::Pay { key: Some(key), amount: json!(amount), meta_shape: 0 };
    for nested in [false, true] {
        for gated in [false, true] {
            let workflow = KeyedWorkflow { nested, schema: Some("{}"), required: false, gated };
            let actions = vec![lookup(json!("a")), found(json!("a")), pay(json!("a"), 60.0), pay(json!("a"), 40.0)];
            assert_eq!(check_keyed(&workflow, &actions).ok(), Some(2), "{}", workflow.text());
            // A third payment on the same invoice is blocked, so still two.
            let mut over = actions.clone();
            over.push(pay(json!("a"), 10.0));
            assert_eq!(check_keyed(&workflow, &over).ok(), Some(2), "{}", workflow.text());
        }
    }
}
