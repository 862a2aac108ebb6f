//! The refund property's machinery: the generator of call and result
//! sequences on the reference workflow, the reference model of what the
//! policy allows, and the checker that runs a sequence through `decide` and
//! `apply` beside the model.

use proptest::prelude::*;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use tollgate_core::{
    CallId, Decision, Event, SessionState, ToolCall, ToolOutcome, Verdict, Workflow, apply, compile, decide,
};

const REFERENCE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/support-refunds.toml"));

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
pub(super) enum Action {
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
pub(super) struct Shape {
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
    /// Refunds handed to a person, by their arguments' JSON: the same call
    /// again waits for that person (blocked), it does not open another.
    escalated: std::collections::BTreeSet<String>,
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
            if self.escalated.contains(&args.to_string()) { Verdict::Block } else { Verdict::Escalate }
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

pub(super) fn workflow() -> Workflow {
    match compile(REFERENCE, "support-refunds.toml") {
        Ok(workflow) => workflow,
        Err(problems) => panic!("reference workflow does not compile: {problems:?}"),
    }
}

/// How many refunds a sequence got allowed and escalated: the property is
/// only as good as the share of sequences that reach them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Reached {
    pub(super) allowed_refunds: usize,
    pub(super) escalated_refunds: usize,
}

pub(super) fn check_sequence(workflow: &Workflow, actions: &[Action]) -> Result<Reached, TestCaseError> {
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
                if verdict == Verdict::Escalate && *tool == "process_refund" {
                    model.escalated.insert(args.to_string());
                }
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

/// A generated session. Half start from a verified customer with two
/// looked-up orders, so the random part explores refunds deep in a session.
pub(super) fn session() -> impl Strategy<Value = Vec<Action>> {
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

/// The recorded result of a recent call, as given (not forged, not failed).
pub(super) fn plain_result(target: usize, result: Json) -> Action {
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
