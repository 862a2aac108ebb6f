//! The fold against the core's `apply` on the edges of the documented
//! semantics: both must hold the same facts, counters and totals after every
//! step. A difference is a bug in one of them; the message says which step.

use super::{Fold, fields_cel, to_cel};
use crate::corpus::Book;
use crate::mutate::{MUTATIONS, Mutator};
use crate::rng::Rng;
use crate::spec::Spec;
use cel::Value as Cel;
use cel::objects::Key;
use serde_json::{Value as Json, json};
use tollgate_core::{CallId, Event, SessionState, ToolCall, ToolOutcome, Workflow, apply, compile, decide};
use tollgate_protocol::script::Step;

const EDGES: &str = r#"
[workflow]
name = "fold-edges"
version = 1

[limits]
result_bytes_max = 300
facts_max = 6

[facts.customer]
identity = true
fields = { id = "string", tier = "string" }

[facts.order]
key = "id"
fields = { id = "string", customer_id = "string", total = "double", status = "string", items = "int" }

[facts.slot]
key = "n"
fields = { n = "double", label = "any" }

[aggregates.refunded]
tool = "refund"
sum = "args.amount"
by = "args.order_id"

[tools.verify]
[[tools.verify.establishes]]
fact = "customer"
when = "result.ok == true"
fields = { id = "result.id", tier = "result.tier" }

[tools.lookup]
requires = ["customer"]
[[tools.lookup.result_checks]]
rule = "result.customer_id == customer.id"
message = "not the customer's"
[[tools.lookup.establishes]]
fact = "order"
fields = { id = "result.order_id", customer_id = "result.customer_id", total = "result.total", status = "result.status", items = "result.items" }

[tools.slot]
[[tools.slot.establishes]]
fact = "slot"
fields = { n = "args.n", label = "result" }

[tools.refund]
side_effect = true
requires = ["customer", "order[args.order_id]"]
[[tools.refund.checks]]
rule = "args.amount <= order.total - refunded(args.order_id)"
message = "too much"
[[tools.refund.escalate]]
rule = "args.amount > 500.0"
reason = "large"
urgency = "high"
recommended_action = "look"
[[tools.refund.updates]]
fact = "order"
key = "args.order_id"
when = "has(result.status)"
fields = { status = "result.status" }
"#;

type Snapshot = (Vec<(String, Option<String>, Json)>, [u64; 3], Vec<(String, f64, Vec<(String, f64)>)>);

fn normal(json: &Json) -> Json {
    from_cel(&to_cel(json))
}

/// A value of the oracle's evaluator as JSON (numbers as doubles).
fn from_cel(value: &Cel) -> Json {
    match value {
        Cel::Bool(b) => Json::Bool(*b),
        Cel::Int(n) => json!(*n as f64),
        Cel::UInt(n) => json!(*n as f64),
        Cel::Float(x) => json!(x),
        Cel::String(s) => Json::String(s.as_str().to_owned()),
        Cel::List(items) => Json::Array(items.iter().map(from_cel).collect()),
        Cel::Map(map) => Json::Object(
            map.map
                .iter()
                .map(|(key, value)| match key {
                    Key::String(key) => (key.as_str().to_owned(), from_cel(value)),
                    other => (format!("{other:?}"), from_cel(value)),
                })
                .collect(),
        ),
        _ => Json::Null,
    }
}

fn of_fold(fold: &Fold<'_>) -> Snapshot {
    let mut facts: Vec<(String, Option<String>, Json)> =
        fold.single.iter().map(|(name, fields)| (name.clone(), None, from_cel(&fields_cel(fields)))).collect();
    for (name, instances) in &fold.keyed {
        let folded =
            instances.iter().map(|(key, fields)| (name.clone(), Some(key.clone()), from_cel(&fields_cel(fields))));
        facts.extend(folded);
    }
    facts.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let totals = fold
        .spec
        .aggregates
        .iter()
        .map(|a| {
            let (total, by_key) = fold.totals.get(&a.name).cloned().unwrap_or_default();
            (a.name.clone(), total, by_key.into_iter().filter(|(_, v)| *v != 0.0).collect())
        })
        .collect();
    (facts, [fold.allowed_calls, fold.blocked_calls, fold.escalations], totals)
}

fn of_core(workflow: &Workflow, state: &SessionState, keys: &[String]) -> Snapshot {
    let mut facts: Vec<(String, Option<String>, Json)> = state
        .facts(workflow)
        .into_iter()
        .map(|(name, key, value)| (name.to_owned(), key.map(str::to_owned), normal(&value.to_json())))
        .collect();
    facts.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let counters = [state.allowed_calls(), state.blocked_calls(), state.escalations()].map(|n| n as u64);
    let totals = workflow
        .aggregates()
        .iter()
        .enumerate()
        .map(|(index, a)| {
            let by_key = keys
                .iter()
                .map(|key| (key.clone(), state.aggregate_by(index, key)))
                .filter(|(_, v)| *v != 0.0)
                .collect();
            (a.name().to_owned(), state.aggregate_total(index), by_key)
        })
        .collect();
    (facts, counters, totals)
}

/// Runs `steps` through the core and the fold side by side, as the hunt
/// does, and compares them after every step; the last snapshot.
fn agree(name: &str, text: &str, steps: &[Step]) -> Snapshot {
    let workflow = compile(text, "edges.toml").unwrap_or_else(|p| panic!("{p:?}"));
    let spec = Spec::read(text, workflow.limits()).unwrap();
    side_by_side(name, &workflow, &spec, steps)
}

fn side_by_side(name: &str, workflow: &Workflow, spec: &Spec, steps: &[Step]) -> Snapshot {
    let mut state = SessionState::new(workflow);
    let mut fold = Fold::new(spec);
    let mut decided: Vec<&CallId> = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        match step {
            // As the hunt: a call id is decided once.
            Step::Call(call) if decided.contains(&&call.id) => continue,
            Step::Call(call) => {
                decided.push(&call.id);
                let decision = decide(workflow, &state, call);
                apply(workflow, &mut state, Event::Decided { call, decision: &decision });
                fold.decided(call, decision.verdict());
            }
            Step::Result { call, result, outcome } => {
                apply(workflow, &mut state, Event::ResultRecorded { call, result, outcome: *outcome });
                fold.recorded(call, result, *outcome);
            }
        }
        let folded = of_fold(&fold);
        let keys: Vec<String> = folded.2.iter().flat_map(|(_, _, by)| by.iter().map(|(k, _)| k.clone())).collect();
        assert_eq!(of_core(workflow, &state, &keys), folded, "{name}: after step {index} ({step:?})");
    }
    of_fold(&fold)
}

/// The hunt's own sequences: 3,000 mutated sessions of the reference
/// workflow, from its traces and generated, agree step by step.
#[test]
fn the_hunts_sequences_fold_alike() {
    let text = include_str!("../../../../examples/support-refunds.toml");
    let traces = include_str!("../../../../examples/support-refunds.traces.jsonl");
    let workflow = compile(text, "support-refunds.toml").unwrap();
    let spec = Spec::read(text, workflow.limits()).unwrap();
    let numbers = crate::rule_numbers(&workflow);
    let mut rng = Rng::new(5);
    let file = crate::SourceFile { name: "traces.jsonl".into(), text: traces.into() };
    let recorded = crate::recorded::read(&file, &workflow).unwrap().traces;
    let generated = crate::generate::sessions(&workflow, text, &numbers, &mut rng);
    for (origin, traces, book) in
        [("recorded", &recorded, Book::new(&recorded, &numbers)), ("generated", &generated.0, generated.1)]
    {
        let mutator = Mutator { workflow: &workflow, book: &book, traces };
        let (mut last, mut used) = (None, [0; MUTATIONS.len()]);
        for attempt in 0..1_500 {
            let (sequence, _) = crate::next_sequence(&mutator, traces, &mut rng, &mut last, attempt, &mut used);
            side_by_side(&format!("{origin} attempt {attempt}"), &workflow, &spec, &sequence.steps);
            if sequence.steps.len() < 48 {
                last = Some(sequence);
            }
        }
    }
}

/// The facts of a snapshot, as (name, key).
fn held(snapshot: &Snapshot) -> Vec<(&str, Option<&str>)> {
    snapshot.0.iter().map(|(name, key, _)| (name.as_str(), key.as_deref())).collect()
}

fn call(id: &str, tool: &str, args: Json) -> Step {
    Step::Call(ToolCall::new(id, tool, args))
}

fn result(id: &str, result: Json) -> Step {
    Step::Result { call: CallId::new(id), result, outcome: ToolOutcome::Succeeded }
}

fn failed(id: &str) -> Step {
    Step::Result { call: CallId::new(id), result: json!("tool error"), outcome: ToolOutcome::Failed }
}

fn verified(id: &str) -> Vec<Step> {
    vec![call(id, "verify", json!({})), result(id, json!({"ok": true, "id": "c1", "tier": "gold"}))]
}

fn order(id: &str, order: Json) -> Vec<Step> {
    vec![call(id, "lookup", json!({})), result(id, order)]
}

fn w1(total: Json) -> Json {
    json!({"order_id": "W1", "customer_id": "c1", "total": total, "status": "delivered", "items": 2})
}

#[test]
fn identity_is_written_once() {
    let mut steps = verified("v1");
    steps.extend([
        call("v2", "verify", json!({})),
        result("v2", json!({"ok": true, "id": "c2", "tier": "silver"})),
        call("v3", "verify", json!({})),
        result("v3", json!({"ok": false, "id": "c3", "tier": "x"})),
    ]);
    let last = agree("identity", EDGES, &steps);
    assert_eq!(last.0, vec![("customer".to_owned(), None, json!({"id": "c1", "tier": "gold"}))]);
}

#[test]
fn a_first_identity_that_does_not_convert_is_not_held() {
    for bad in [
        json!({"ok": true, "id": 42, "tier": "gold"}),
        json!({"ok": true, "id": "c1"}),
        json!({"ok": true, "id": "c1", "tier": null}),
    ] {
        let steps = [
            call("v1", "verify", json!({})),
            result("v1", bad.clone()),
            call("v2", "verify", json!({})),
            result("v2", json!({"ok": true, "id": "c9", "tier": "gold"})),
        ];
        let last = agree(&format!("identity {bad}"), EDGES, &steps);
        assert_eq!(last.0, vec![("customer".to_owned(), None, json!({"id": "c9", "tier": "gold"}))], "{bad}");
    }
}

#[test]
fn keys_and_fields_that_are_not_what_they_say_establish_nothing() {
    let bad_orders = [
        json!({"order_id": null, "customer_id": "c1", "total": 10, "status": "delivered", "items": 2}),
        json!({"order_id": ["W1"], "customer_id": "c1", "total": 10, "status": "delivered", "items": 2}),
        json!({"order_id": {"a": 1}, "customer_id": "c1", "total": 10, "status": "delivered", "items": 2}),
        json!({"order_id": "W1", "customer_id": "c1", "total": "ten", "status": "delivered", "items": 2}),
        json!({"order_id": "W1", "customer_id": "c1", "total": 10, "status": "delivered", "items": 2.5}),
        json!({"order_id": "W1", "customer_id": "c1", "total": 10, "items": 2}),
        json!({"order_id": "W1", "customer_id": "c1", "total": 10, "status": null, "items": 2}),
        json!({"order_id": 7, "customer_id": "c1", "total": 10, "status": "delivered", "items": 2}),
    ];
    for bad in bad_orders {
        let mut steps = verified("v1");
        steps.extend(order("o1", bad.clone()));
        let last = agree(&format!("order {bad}"), EDGES, &steps);
        assert_eq!(held(&last), vec![("customer", None)], "{bad}");
    }
}

#[test]
fn withheld_results_count_as_blocked_and_establish_nothing() {
    let mut steps = verified("v1");
    steps.extend(order(
        "o1",
        json!({"order_id": "W1", "customer_id": "c2", "total": 10, "status": "delivered", "items": 1}),
    ));
    // Over the 300-byte limit: withheld too.
    let long = "x".repeat(400);
    steps.extend(order("o2", json!({"order_id": "W2", "customer_id": "c1", "total": 10, "status": long, "items": 1})));
    let last = agree("withheld", EDGES, &steps);
    assert_eq!(held(&last), vec![("customer", None)]);
    assert_eq!(last.1, [3, 2, 0], "allowed, blocked (the two withheld), escalated");
}

#[test]
fn amounts_are_reserved_when_allowed_and_released_when_the_tool_fails() {
    let mut steps = verified("v1");
    steps.extend(order("o1", w1(json!(100))));
    steps.extend([
        call("r1", "refund", json!({"order_id": "W1", "amount": 60})),
        call("r2", "refund", json!({"order_id": "W1", "amount": 60})),
        failed("r1"),
        call("r3", "refund", json!({"order_id": "W1", "amount": 40})),
        result("r3", json!({"status": "returned"})),
        result("r3", json!({"status": "lost"})),
        result("r2", json!({"status": "refused-but-answered"})),
        result("nobody", json!({"status": "x"})),
    ]);
    steps.extend(order(
        "o2",
        json!({"order_id": "W2", "customer_id": "c1", "total": 1000, "status": "delivered", "items": 1}),
    ));
    steps.extend([
        call("r4", "refund", json!({"order_id": "W2", "amount": 600})),
        result("r4", json!({"status": "escalated-but-answered"})),
        call("r5", "refund", json!({"order_id": "W9", "amount": 1})),
    ]);
    let last = agree("amounts", EDGES, &steps);
    // r2 was blocked (60 + 60 > 100), r1 failed and released its 60, r3 counts
    // its 40 and set the status once, r4 escalated, r5 had no order.
    assert_eq!(last.2, vec![("refunded".to_owned(), 40.0, vec![("W1".to_owned(), 40.0)])]);
    assert_eq!(last.1, [5, 2, 1]);
    assert_eq!(last.0[1].2["status"], json!("returned"));
}

#[test]
fn a_looked_up_order_is_replaced_by_the_next_lookup() {
    let mut steps = verified("v1");
    steps.extend(order("o1", w1(json!(100))));
    steps.extend(order(
        "o2",
        json!({"order_id": "W1", "customer_id": "c1", "total": 80.5, "status": "returned", "items": 3}),
    ));
    let last = agree("relookup", EDGES, &steps);
    assert_eq!(last.0[1].2["total"], json!(80.5));
}

#[test]
fn numeric_keys_and_the_fact_limit() {
    let mut steps = verified("v1");
    for (index, n) in [
        json!(5),
        json!(5.0),
        json!(5.5),
        json!(-0.0),
        json!(1e20),
        json!(true),
        json!("6"),
        json!(7),
        json!(8),
        json!(9),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("s{index}");
        steps.push(call(&id, "slot", json!({"n": n})));
        steps.push(result(&id, json!({"label": index})));
    }
    let last = agree("slots", EDGES, &steps);
    // 5 and 5.0 are one key; true is no double; the limit of 6 instances
    // (the customer and five slots) leaves 8 and 9 out.
    let slots: Vec<Option<&str>> =
        held(&last).into_iter().filter(|(name, _)| *name == "slot").map(|(_, key)| key).collect();
    assert_eq!(slots, vec![Some("0"), Some("100000000000000000000"), Some("5"), Some("5.5"), Some("7")]);
}
