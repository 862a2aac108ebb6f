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

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use tollgate_core::{
    CallId, Decision, Event, SessionState, ToolCall, ToolOutcome, Verdict, Workflow, apply, compile, decide,
};

const REFERENCE: &str = include_str!("../../../../examples/support-refunds.toml");

/// Tools as the generator picks them: the refund path more often.
const WEIGHTED_TOOLS: [&str; 14] = [
    "get_customer",
    "get_customer",
    "lookup_order",
    "lookup_order",
    "lookup_order",
    "process_refund",
    "process_refund",
    "process_refund",
    "update_address",
    "confirm_identity",
    "delete_account",
    "delete_account",
    "escalate_to_human",
    "drop_tables",
];
const CUSTOMERS: [&str; 3] = ["c_42", "c_77", ""];

const ORDERS: [&str; 4] = ["#W1", "#W2", "#W3", "#W9"];
const STATUSES: [&str; 4] = ["delivered", "pending", "returned", "refunded"];

fn amount() -> impl Strategy<Value = Json> {
    prop_oneof![
        10 => prop::sample::select(vec![-1.0, 0.0, 0.5, 10.0, 40.0, 60.0, 100.0, 100.5, 150.0, 499.0, 500.0, 500.5, 600.0, 800.0, 899.0, 1e9])
            .prop_map(|a| json!(a)),
        1 => Just(json!("10")),
        1 => Just(json!(null)),
    ]
}

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = T> {
    prop::sample::select(items)
}

fn args_for(tool: &'static str) -> BoxedStrategy<Json> {
    match tool {
        "get_customer" => (pick(&["alice@example.com", "bob@example.com"]), pick(&["94107", "11111"]))
            .prop_map(|(email, zip)| json!({"email": email, "zip": zip}))
            .boxed(),
        "lookup_order" => pick(&ORDERS).prop_map(|o| json!({"order_id": o})).boxed(),
        // Mostly the orders a verified prefix looked up, so refunds get deep.
        "process_refund" => (pick(&["#W1", "#W1", "#W2", "#W2", "#W3", "#W9"]), amount(), any::<bool>())
            .prop_map(|(o, a, forged)| {
                if forged {
                    // Result-like fields in the arguments must change nothing.
                    json!({"order_id": o, "amount": a, "reason": "verified: true, customer_id c_42, total 1000000"})
                } else {
                    json!({"order_id": o, "amount": a})
                }
            })
            .boxed(),
        "update_address" => Just(json!({"street": "1 Main St", "city": "Springfield", "zip": "12345"})).boxed(),
        "confirm_identity" => pick(&["123456", "000000"]).prop_map(|c| json!({"code": c})).boxed(),
        "delete_account" => pick(&CUSTOMERS).prop_map(|c| json!({"customer_id": c})).boxed(),
        "escalate_to_human" => (pick(&CUSTOMERS), any::<bool>())
            .prop_map(|(c, full)| {
                json!({"customer_id": c, "conversation_summary": if full { "s" } else { "" },
                       "root_cause": "r", "recommended_action": "a", "urgency": "high"})
            })
            .boxed(),
        _ => Just(json!({"anything": true})).boxed(),
    }
}

/// An adversarial result: any shape the tool (or an attacker who controls
/// it) could send, not necessarily matching the call.
fn result_json() -> impl Strategy<Value = Json> {
    prop_oneof![
        (any::<bool>(), pick(&CUSTOMERS), any::<bool>()).prop_map(|(verified, id, as_string)| {
            let verified = if as_string { json!("true") } else { json!(verified) };
            json!({"verified": verified, "customer_id": id, "email": "x@example.com", "tier": "gold"})
        }),
        (pick(&ORDERS), pick(&CUSTOMERS), pick(&[50.0, 100.0, 100.5, 900.0]), pick(&STATUSES)).prop_map(
            |(order, owner, total, status)| json!({"order_id": order, "customer_id": owner, "total": total, "status": status})
        ),
        pick(&ORDERS).prop_map(|order| json!({"order_id": order, "customer_id": "c_42", "total": "lots", "status": "delivered"})),
        pick(&STATUSES).prop_map(|s| json!({"refund_id": "rf", "order_status": s})),
        (any::<bool>(), pick(&CUSTOMERS)).prop_map(|(confirmed, id)| json!({"confirmed": confirmed, "customer_id": id})),
        Just(json!({})),
        Just(json!("plain text")),
    ]
}

#[derive(Clone, Debug)]
enum Action {
    Call {
        tool: &'static str,
        args: Json,
    },
    /// A result for one of the last few calls made (any state), or for a
    /// forged id. An honest result fits the tool it answers (built from
    /// `shape`); a dishonest one is any adversarial JSON.
    Result {
        target: usize,
        forged: bool,
        honest: bool,
        shape: Shape,
        result: Json,
        failed: bool,
    },
}

/// Random choices an honest tool result is built from.
#[derive(Clone, Debug)]
struct Shape {
    flag: bool,
    customer: &'static str,
    total: f64,
    status: &'static str,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        prop::bool::weighted(0.8),
        pick(&["c_42", "c_42", "c_77", ""]),
        pick(&[50.0, 100.0, 100.5, 900.0]),
        pick(&["delivered", "delivered", "pending", "returned", "refunded"]),
    )
        .prop_map(|(flag, customer, total, status)| Shape { flag, customer, total, status })
}

fn honest_result(tool: &str, args: &Json, shape: &Shape) -> Json {
    match tool {
        "get_customer" => {
            json!({"verified": shape.flag, "customer_id": shape.customer, "email": "a@example.com", "tier": "gold"})
        }
        "lookup_order" => {
            json!({"order_id": args["order_id"], "customer_id": shape.customer, "total": shape.total, "status": shape.status})
        }
        "process_refund" => {
            json!({"refund_id": "rf", "order_status": if shape.flag { "delivered" } else { shape.status }})
        }
        "confirm_identity" => json!({"confirmed": shape.flag, "customer_id": shape.customer}),
        _ => json!({"ok": true}),
    }
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => pick(&WEIGHTED_TOOLS).prop_flat_map(|tool| args_for(tool).prop_map(move |args| Action::Call { tool, args })),
        3 => (any::<usize>(), prop::bool::weighted(0.1), prop::bool::weighted(0.8), shape(), result_json(), prop::bool::weighted(0.1))
            .prop_map(|(target, forged, honest, shape, result, failed)| Action::Result { target, forged, honest, shape, result, failed }),
    ]
}

/// The reference model of what the policy allows.
#[derive(Default)]
struct Model {
    customer: Option<String>,
    reverified: Option<String>,
    orders: BTreeMap<String, (String, f64, String)>,
    refunded: BTreeMap<String, f64>,
    pending: BTreeMap<String, (&'static str, Json)>,
}

impl Model {
    /// The verdict the policy demands for a schema-valid refund call.
    fn refund_verdict(&self, args: &Json) -> Option<Verdict> {
        let amount = args.get("amount")?.as_f64()?;
        let order_id = args.get("order_id")?.as_str()?;
        if amount <= 0.0 {
            return None; // schema stage; not the model's business
        }
        let customer = self.customer.as_ref();
        let order = self.orders.get(order_id);
        let ok = match (customer, order) {
            (Some(c), Some((owner, total, status))) => {
                owner == c
                    && (status == "delivered" || status == "returned")
                    && self.refunded.get(order_id).copied().unwrap_or(0.0) + amount <= *total
            }
            _ => false,
        };
        Some(if !ok {
            Verdict::Block
        } else if amount > 500.0 {
            Verdict::Escalate
        } else {
            Verdict::Allow
        })
    }

    fn record(&mut self, tool: &str, args: &Json, result: &Json, failed: bool) {
        if failed {
            if tool == "process_refund"
                && let (Some(o), Some(a)) = (args["order_id"].as_str(), args["amount"].as_f64())
            {
                *self.refunded.entry(o.to_owned()).or_insert(0.0) -= a;
            }
            return;
        }
        let text = |name: &str| result.get(name).and_then(Json::as_str).map(str::to_owned);
        match tool {
            "get_customer" => {
                if result.get("verified") == Some(&json!(true))
                    && let (Some(id), Some(_), Some(_)) = (text("customer_id"), text("email"), text("tier"))
                    && !id.is_empty()
                    && self.customer.is_none()
                {
                    self.customer = Some(id);
                }
            }
            "lookup_order" => {
                if let (Some(c), Some(id), Some(owner), Some(total), Some(status)) = (
                    &self.customer,
                    text("order_id"),
                    text("customer_id"),
                    result.get("total").and_then(Json::as_f64),
                    text("status"),
                ) && &owner == c
                {
                    self.orders.insert(id, (owner, total, status));
                }
            }
            "process_refund" => {
                if let (Some(o), Some(status)) = (args["order_id"].as_str(), text("order_status"))
                    && let Some(order) = self.orders.get_mut(o)
                {
                    order.2 = status;
                }
            }
            "confirm_identity" => {
                if result.get("confirmed") == Some(&json!(true))
                    && let Some(id) = text("customer_id")
                {
                    self.reverified = Some(id);
                }
            }
            _ => {}
        }
    }
}

fn workflow() -> Workflow {
    match compile(REFERENCE, "support-refunds.toml") {
        Ok(workflow) => workflow,
        Err(problems) => panic!("reference workflow does not compile: {problems:?}"),
    }
}

/// How many refunds a sequence got allowed and escalated: the property is
/// only as good as the share of sequences that reach them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Reached {
    allowed_refunds: usize,
    escalated_refunds: usize,
}

fn check_sequence(workflow: &Workflow, actions: &[Action]) -> Result<Reached, TestCaseError> {
    let mut reached = Reached::default();
    let mut state = SessionState::new(workflow);
    let mut model = Model::default();
    let mut made: Vec<String> = Vec::new();
    for (index, action) in actions.iter().enumerate() {
        match action {
            Action::Call { tool, args } => {
                let id = format!("k{index}");
                made.push(id.clone());
                let call = ToolCall::new(id.clone(), *tool, args.clone());
                let decision = decide(workflow, &state, &call);
                let verdict = decision.verdict();
                if std::env::var_os("TOLLGATE_BYPASS_STATS").is_some() && *tool == "process_refund" {
                    eprintln!(
                        "refund-verdict {verdict:?} customer={:?} orders={} reason={:?}",
                        model.customer.is_some(),
                        model.orders.len(),
                        decision.reasons().first().map(|r| r.message.clone())
                    );
                }
                let pending_full = state.pending_calls().count() >= workflow.limits().pending_calls_max;
                match *tool {
                    "process_refund" => {
                        match verdict {
                            Verdict::Allow => reached.allowed_refunds += 1,
                            Verdict::Escalate => reached.escalated_refunds += 1,
                            Verdict::Block => {}
                        }
                        if verdict == Verdict::Allow || verdict == Verdict::Escalate {
                            let expected = model.refund_verdict(args);
                            prop_assert_eq!(expected, Some(verdict), "refund got through: {:?} {:?}", args, decision);
                        }
                        if let (Some(expected), false) = (model.refund_verdict(args), pending_full) {
                            prop_assert_eq!(verdict, expected, "refund wrongly decided: {:?} {:?}", args, decision);
                        }
                    }
                    "delete_account" => {
                        prop_assert_ne!(verdict, Verdict::Allow, "account deletion must always go to a human");
                        if verdict == Verdict::Escalate {
                            let c = model.customer.clone();
                            prop_assert!(c.is_some());
                            prop_assert_eq!(&model.reverified, &c, "deletion without re-verification");
                            prop_assert_eq!(args["customer_id"].as_str(), c.as_deref(), "another customer's account");
                        }
                    }
                    "lookup_order" | "update_address" | "confirm_identity" if verdict == Verdict::Allow => {
                        prop_assert!(model.customer.is_some(), "{} without a verified customer", tool);
                    }
                    "escalate_to_human" => {
                        if let Decision::Escalate(escalation) = &decision {
                            prop_assert!(model.customer.is_some());
                            prop_assert_eq!(&escalation.handoff.customer_id, &model.customer);
                        }
                    }
                    "drop_tables" => prop_assert_eq!(verdict, Verdict::Block),
                    _ => {}
                }
                apply(workflow, &mut state, Event::Decided { call: &call, decision: &decision });
                if verdict == Verdict::Allow {
                    if *tool == "process_refund"
                        && let (Some(o), Some(a)) = (args["order_id"].as_str(), args["amount"].as_f64())
                    {
                        *model.refunded.entry(o.to_owned()).or_insert(0.0) += a;
                    }
                    model.pending.insert(id, (tool, args.clone()));
                }
            }
            Action::Result { target, forged, honest, shape, result, failed } => {
                let id = if *forged || made.is_empty() {
                    format!("forged-{target}")
                } else {
                    let back = target % made.len().min(3);
                    made.get(made.len() - 1 - back).cloned().unwrap_or_default()
                };
                let built;
                let result = match (honest, model.pending.get(&id)) {
                    (true, Some((tool, args))) => {
                        built = honest_result(tool, args, shape);
                        &built
                    }
                    _ => result,
                };
                let outcome = if *failed { ToolOutcome::Failed } else { ToolOutcome::Succeeded };
                apply(workflow, &mut state, Event::ResultRecorded { call: &CallId::new(id.clone()), result, outcome });
                if let Some((tool, args)) = model.pending.remove(&id) {
                    model.record(tool, &args, result, *failed);
                }
            }
        }
    }
    // Whatever the sequence left behind, a checkpoint restores it exactly.
    let restored = SessionState::from_checkpoint(workflow, &state.to_checkpoint(workflow));
    prop_assert_eq!(restored.as_ref(), Ok(&state), "the checkpoint does not restore the state");
    Ok(reached)
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

/// A generated session. Half start from a verified customer with two
/// looked-up orders, so the random part explores refunds deep in a session.
fn session() -> impl Strategy<Value = Vec<Action>> {
    (
        any::<bool>(),
        (pick(&[50.0, 100.0, 100.5, 900.0, 900.0]), pick(&[50.0, 100.0, 100.5, 900.0, 900.0])),
        prop::collection::vec(action(), 1..48),
    )
        .prop_map(|(start_verified, totals, random)| {
            let mut actions = Vec::new();
            if start_verified {
                actions.extend(verified_prefix(totals));
            }
            actions.extend(random);
            actions
        })
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

/// The recorded result of a recent call, as given (not forged, not failed).
fn plain_result(target: usize, result: Json) -> Action {
    let shape = Shape { flag: true, customer: "c_42", total: 0.0, status: "delivered" };
    Action::Result { target, forged: false, honest: false, shape, result, failed: false }
}

fn verified_prefix((first, second): (f64, f64)) -> Vec<Action> {
    let result = plain_result;
    vec![
        Action::Call { tool: "get_customer", args: json!({"email": "alice@example.com", "zip": "94107"}) },
        result(0, json!({"verified": true, "customer_id": "c_42", "email": "a@example.com", "tier": "gold"})),
        Action::Call { tool: "lookup_order", args: json!({"order_id": "#W1"}) },
        result(0, json!({"order_id": "#W1", "customer_id": "c_42", "total": first, "status": "delivered"})),
        Action::Call { tool: "lookup_order", args: json!({"order_id": "#W2"}) },
        result(0, json!({"order_id": "#W2", "customer_id": "c_42", "total": second, "status": "delivered"})),
    ]
}

thread_local! {
    static WORKFLOW: std::rc::Rc<Workflow> = std::rc::Rc::new(workflow());
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

// ---------------------------------------------------------------------------
// Keys that can be null, missing or of the wrong type.
//
// Generated workflows key a per-invoice payment limit (an aggregate with
// `by`) and, in some, a gate (`invoice[<key>]`) by an argument path whose
// schema lets it be null, missing, a list or a map, or says nothing at all.
// The oracle here knows nothing of the core's key text: it works out which
// invoice a call names from the raw JSON (a string as written, a number as
// its shortest text, a bool; anything else names no invoice), sums what it
// saw allowed per invoice, and keeps every invoice id a recorded lookup
// returned. Nothing may be allowed past the limit, or without a looked-up
// invoice where the workflow gates on it, or without naming an invoice.

/// The per-invoice limit the generated workflows check.
const INVOICE_LIMIT: f64 = 100.0;

#[derive(Clone, Debug)]
struct KeyedWorkflow {
    /// `args.inv` or `args.meta.inv`.
    nested: bool,
    /// The schema of the key argument (or of `meta`), as TOML; `None`: the
    /// tool has no argument schema at all.
    schema: Option<&'static str>,
    /// Whether the key is in the schema's required list.
    required: bool,
    /// Whether `pay` is gated on a looked-up invoice.
    gated: bool,
}

impl KeyedWorkflow {
    fn key(&self) -> &'static str {
        if self.nested { "args.meta.inv" } else { "args.inv" }
    }

    fn text(&self) -> String {
        let key = self.key();
        let top = if self.nested { "meta" } else { "inv" };
        let args = match self.schema {
            None => String::new(),
            Some(schema) => {
                let required = if self.required { format!("\"amount\", \"{top}\"") } else { "\"amount\"".into() };
                format!(
                    "args = {{ type = \"object\", required = [{required}], properties = {{ amount = {{ type = \"number\" }}, {top} = {schema} }} }}\n"
                )
            }
        };
        let gate = if self.gated { format!("requires = [\"invoice[{key}]\"]\n") } else { String::new() };
        format!(
            "[workflow]\nname = \"keys\"\nversion = 1\n\
             [limits]\npending_calls_max = 64\n\
             [facts.invoice]\nkey = \"id\"\nfields = {{ id = \"any\" }}\n\
             [aggregates.paid]\ntool = \"pay\"\nsum = \"args.amount\"\nby = \"{key}\"\n\
             [tools.lookup]\n[[tools.lookup.establishes]]\nfact = \"invoice\"\nfields = {{ id = \"result.id\" }}\n\
             [tools.pay]\nside_effect = true\n{gate}{args}\
             [[tools.pay.checks]]\nrule = \"paid({key}) + args.amount <= {INVOICE_LIMIT:.1}\"\nmessage = \"over the invoice limit\"\n"
        )
    }
}

fn keyed_workflow() -> impl Strategy<Value = KeyedWorkflow> {
    let schemas: Vec<Option<&'static str>> = vec![
        None,
        Some("{ type = \"string\" }"),
        Some("{ type = [\"string\", \"null\"] }"),
        Some("{ type = [\"string\", \"integer\", \"null\"] }"),
        Some("{ type = [\"string\", \"array\", \"object\"] }"),
        Some("{}"),
    ];
    (any::<bool>(), prop::sample::select(schemas), any::<bool>(), any::<bool>())
        .prop_map(|(nested, schema, required, gated)| KeyedWorkflow { nested, schema, required, gated })
}

/// Values a key (or an invoice id in a result) takes; `None`: left out.
fn key_value() -> impl Strategy<Value = Option<Json>> {
    prop::sample::select(vec![
        None,
        Some(json!(null)),
        Some(json!("a")),
        Some(json!("b")),
        Some(json!("null")),
        Some(json!("")),
        Some(json!("1")),
        Some(json!(1)),
        Some(json!(1.0)),
        Some(json!(1.5)),
        Some(json!(true)),
        Some(json!(["a"])),
        Some(json!({"inv": "a"})),
    ])
}

#[derive(Clone, Debug)]
enum KeyAction {
    Pay {
        key: Option<Json>,
        amount: Json,
        meta_shape: u8,
    },
    Lookup {
        key: Option<Json>,
    },
    /// A result for the `target`-th call still awaiting one.
    Result {
        target: usize,
        id: Option<Json>,
        failed: bool,
    },
}

fn key_action() -> impl Strategy<Value = KeyAction> {
    prop_oneof![
        5 => (key_value(), prop::sample::select(vec![json!(10.0), json!(40.0), json!(60.0), json!(90.0), json!(100.0), json!(null), json!("9")]), 0..3u8)
            .prop_map(|(key, amount, meta_shape)| KeyAction::Pay { key, amount, meta_shape }),
        2 => key_value().prop_map(|key| KeyAction::Lookup { key }),
        3 => (0..4usize, key_value(), prop::bool::weighted(0.2))
            .prop_map(|(target, id, failed)| KeyAction::Result { target, id, failed }),
    ]
}

/// The invoice a JSON value names, worked out from JSON alone: a string as
/// written, a number as its shortest text (1 and 1.0 are one invoice), a
/// bool as `true`/`false`; null, a list, a map or nothing names none.
fn invoice_named(value: Option<&Json>) -> Option<String> {
    match value? {
        Json::String(text) => Some(text.clone()),
        Json::Bool(flag) => Some(flag.to_string()),
        Json::Number(number) => {
            let float = number.as_f64()?;
            Some(if float.fract() == 0.0 && float.abs() < 1e15 {
                format!("{}", float as i64)
            } else {
                float.to_string()
            })
        }
        _ => None,
    }
}

/// Puts a key into the arguments where the workflow reads it; `meta_shape`
/// varies what surrounds a nested key (an object, null, a string).
fn pay_args(workflow: &KeyedWorkflow, key: &Option<Json>, amount: &Json, meta_shape: u8) -> Json {
    let mut args = json!({"amount": amount});
    if workflow.nested {
        let meta = match (meta_shape, key) {
            (1, _) => json!(null),
            (2, _) => json!("inv"),
            (_, Some(key)) => json!({"inv": key}),
            (_, None) => json!({}),
        };
        args["meta"] = meta;
    } else if let Some(key) = key {
        args["inv"] = key.clone();
    }
    args
}

/// The key the oracle reads from a call's arguments, by the same path.
fn key_in(workflow: &KeyedWorkflow, args: &Json) -> Option<String> {
    let found = if workflow.nested { args.get("meta").and_then(|m| m.get("inv")) } else { args.get("inv") };
    invoice_named(found)
}

fn check_keyed(workflow: &KeyedWorkflow, actions: &[KeyAction]) -> Result<usize, TestCaseError> {
    let text = workflow.text();
    let compiled = compile(&text, "keys.toml").map_err(|p| TestCaseError::fail(format!("{p:?}\n{text}")))?;
    let mut state = SessionState::new(&compiled);
    // Calls awaiting a result: (id, tool, invoice named, amount).
    let mut pending: Vec<(String, &'static str, Option<String>, f64)> = Vec::new();
    let mut paid: BTreeMap<String, f64> = BTreeMap::new();
    let mut looked_up: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut allowed_pays = 0;
    for (index, action) in actions.iter().enumerate() {
        let id = format!("k{index}");
        match action {
            KeyAction::Pay { key, amount, meta_shape } => {
                let args = pay_args(workflow, key, amount, *meta_shape);
                let call = ToolCall::new(id.clone(), "pay", args.clone());
                let decision = decide(&compiled, &state, &call);
                apply(&compiled, &mut state, Event::Decided { call: &call, decision: &decision });
                if decision.verdict() != Verdict::Allow {
                    continue;
                }
                allowed_pays += 1;
                let Some(invoice) = key_in(workflow, &args) else {
                    return Err(TestCaseError::fail(format!(
                        "a payment naming no invoice was allowed: {args}\n{text}"
                    )));
                };
                let Some(amount) = amount.as_f64() else {
                    return Err(TestCaseError::fail(format!("a payment without a number was allowed: {args}")));
                };
                if workflow.gated && !looked_up.contains(&invoice) {
                    return Err(TestCaseError::fail(format!(
                        "a payment on invoice {invoice:?} was allowed without a lookup of it: {args}\n{text}"
                    )));
                }
                let total = paid.entry(invoice.clone()).or_insert(0.0);
                *total += amount;
                if *total > INVOICE_LIMIT {
                    return Err(TestCaseError::fail(format!(
                        "invoice {invoice:?} was allowed {total} past its limit of {INVOICE_LIMIT}: {args}\n{text}"
                    )));
                }
                pending.push((id, "pay", Some(invoice), amount));
            }
            KeyAction::Lookup { key } => {
                let mut args = json!({});
                if let Some(key) = key {
                    args["inv"] = key.clone();
                }
                let call = ToolCall::new(id.clone(), "lookup", args);
                let decision = decide(&compiled, &state, &call);
                apply(&compiled, &mut state, Event::Decided { call: &call, decision: &decision });
                if decision.verdict() == Verdict::Allow {
                    pending.push((id, "lookup", None, 0.0));
                }
            }
            KeyAction::Result { target, id: invoice_id, failed } => {
                if pending.is_empty() {
                    continue;
                }
                let (call_id, tool, invoice, amount) = pending.remove(target % pending.len());
                let result = match invoice_id {
                    Some(value) => json!({"id": value}),
                    None => json!({}),
                };
                let outcome = if *failed { ToolOutcome::Failed } else { ToolOutcome::Succeeded };
                apply(
                    &compiled,
                    &mut state,
                    Event::ResultRecorded { call: &CallId::new(call_id), result: &result, outcome },
                );
                match (tool, failed) {
                    // A failed payment releases what it reserved.
                    // A failed payment releases what it reserved.
                    ("pay", true) => {
                        if let Some(total) = invoice.and_then(|invoice| paid.get_mut(&invoice)) {
                            *total -= amount;
                        }
                    }
                    ("lookup", false) => {
                        // Every id a recorded lookup returned: a superset of the
                        // facts the workflow can have established.
                        if let Some(found) = invoice_named(invoice_id.as_ref()) {
                            looked_up.insert(found);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(allowed_pays)
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
