//! Keys that can be null, missing or of the wrong type.
//!
//! Generated workflows key a per-invoice payment limit (an aggregate with
//! `by`) and, in some, a gate (`invoice[<key>]`) by an argument path whose
//! schema lets it be null, missing, a list or a map, or says nothing at all.
//! The oracle here knows nothing of the core's key text: it works out which
//! invoice a call names from the raw JSON (a string as written, a number as
//! its shortest text, a bool; anything else names no invoice), sums what it
//! saw allowed per invoice, and keeps every invoice id a recorded lookup
//! returned. Nothing may be allowed past the limit, or without a looked-up
//! invoice where the workflow gates on it, or without naming an invoice.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use tollgate_core::{CallId, Event, SessionState, ToolCall, ToolOutcome, Verdict, apply, compile, decide};

/// The per-invoice limit the generated workflows check.
const INVOICE_LIMIT: f64 = 100.0;

#[derive(Clone, Debug)]
pub(super) struct KeyedWorkflow {
    /// `args.inv` or `args.meta.inv`.
    pub(super) nested: bool,
    /// The schema of the key argument (or of `meta`), as TOML; `None`: the
    /// tool has no argument schema at all.
    pub(super) schema: Option<&'static str>,
    /// Whether the key is in the schema's required list.
    pub(super) required: bool,
    /// Whether `pay` is gated on a looked-up invoice.
    pub(super) gated: bool,
}

impl KeyedWorkflow {
    fn key(&self) -> &'static str {
        if self.nested { "args.meta.inv" } else { "args.inv" }
    }

    /// The workflow as TOML text.
    pub(super) fn text(&self) -> String {
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

pub(super) fn keyed_workflow() -> impl Strategy<Value = KeyedWorkflow> {
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
pub(super) enum KeyAction {
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

pub(super) fn key_action() -> impl Strategy<Value = KeyAction> {
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

pub(super) fn check_keyed(workflow: &KeyedWorkflow, actions: &[KeyAction]) -> Result<usize, TestCaseError> {
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
