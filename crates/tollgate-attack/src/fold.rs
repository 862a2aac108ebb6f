//! The oracle's own fold of a session: what the events the hunt fed in (each
//! call with its decision's verdict, each result as JSON with its outcome)
//! establish, by the workflow's declared mappings evaluated with the `cel`
//! crate. The oracle judges with this, never with the core's `SessionState`,
//! so a mistake in the core's `apply` cannot agree with itself. It is a
//! reference model: small, written from the documented semantics, slow where
//! that keeps it plain.
//!
//! The semantics (README, ARCHITECTURE "Invariants"):
//! - An allowed call awaits its result, and reserves its amounts against the
//!   aggregates of its tool at once; a blocked or escalated one only counts.
//! - A result counts only for a call that awaits one (not for a refused call,
//!   an unknown id, or a second result).
//! - A failed result releases what its call reserved and establishes nothing.
//! - A result over the size limit, or failing a result check, is withheld: it
//!   counts as a blocked call and establishes nothing.
//! - Fact fields read `result` (an established keyed fact's key field may read
//!   `args`), are converted to their declared types, and a mapping whose
//!   field cannot be evaluated or converted records nothing.
//! - A key (of a fact, a gate, an aggregate) is text; null, a list, a map or a
//!   non-finite number is no key, and a result whose key is one establishes nothing.
//! - Identity facts are written once per session: once one is held, no
//!   result establishes or updates it again.
//!
//! Numbers are doubles throughout, as in the invariants' view.

use crate::spec::{Mapping, Spec};
use cel::objects::{Key, Map as CelMap};
use cel::{Context, Program, Value as Cel};
use serde_json::Value as Json;
use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tollgate_core::{CallId, ToolCall, ToolOutcome, Verdict};

/// A fact instance's fields.
type Fields = BTreeMap<String, Cel>;

/// The oracle's model of one session.
pub struct Fold<'s> {
    spec: &'s Spec,
    /// Facts held once per session, by name.
    single: BTreeMap<String, Fields>,
    /// Keyed facts, by name, then key.
    keyed: BTreeMap<String, BTreeMap<String, Fields>>,
    /// `facts` as rules read it, built when first read after a change.
    view: OnceCell<Cel>,
    allowed_calls: u64,
    blocked_calls: u64,
    escalations: u64,
    /// Per aggregate: the session total and the totals by key.
    totals: BTreeMap<String, (f64, BTreeMap<String, f64>)>,
    /// Allowed calls awaiting their result, by id.
    pending: BTreeMap<String, Pending>,
}

/// An allowed call awaiting its result.
struct Pending {
    tool: String,
    args: Cel,
    /// What it holds against aggregates: (aggregate, key, amount).
    reserved: Vec<(String, Option<String>, f64)>,
}

/// What a result is read with: scopes of the oracle's evaluator, each
/// within the one before, so that each value is bound (and converted by the
/// `cel` crate) once.
struct Scopes<'a> {
    /// `result` alone: every fact field but an established keyed fact's key.
    field: &'a Context<'a, 'static>,
    /// And `args`: an established keyed fact's key field, an update's key.
    key: &'a Context<'a, 'static>,
    /// And `facts`: a mapping's `when`.
    when: &'a Context<'a, 'static>,
}

impl<'s> Fold<'s> {
    /// The empty session.
    pub fn new(spec: &'s Spec) -> Fold<'s> {
        Fold {
            spec,
            single: BTreeMap::new(),
            keyed: BTreeMap::new(),
            view: OnceCell::new(),
            allowed_calls: 0,
            blocked_calls: 0,
            escalations: 0,
            totals: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    /// A call was decided.
    pub fn decided(&mut self, call: &ToolCall, verdict: Verdict) {
        match verdict {
            Verdict::Block => self.blocked_calls += 1,
            Verdict::Escalate => self.escalations += 1,
            Verdict::Allow => {
                self.allowed_calls += 1;
                let args = to_cel(&call.args);
                let mut reserved = Vec::new();
                let aggregates: Vec<_> = self.spec.aggregates.iter().filter(|a| a.tool == call.tool).collect();
                if !aggregates.is_empty() {
                    let scope = self.scope(&[("args", &args)]);
                    for aggregate in aggregates {
                        let Some(amount) = execute(&aggregate.sum, &scope).and_then(number) else { continue };
                        let key = aggregate.by.as_ref().and_then(|by| key_text(&execute(by, &scope)?));
                        self.add(&aggregate.name, key.as_deref(), amount);
                        reserved.push((aggregate.name.clone(), key, amount));
                    }
                }
                self.pending.insert(call.id.as_str().to_owned(), Pending { tool: call.tool.clone(), args, reserved });
            }
        }
    }

    /// A result came back for `call`.
    pub fn recorded(&mut self, call: &CallId, result: &Json, outcome: ToolOutcome) {
        let Some(pending) = self.pending.remove(call.as_str()) else { return };
        if outcome == ToolOutcome::Failed {
            for (aggregate, key, amount) in &pending.reserved {
                self.add(aggregate, key.as_deref(), -amount);
            }
            return;
        }
        let spec = self.spec;
        let Some(tool) = spec.tools.get(&pending.tool) else { return };
        let too_large = json_bytes(result) > spec.result_bytes_max;
        if tool.result_checks.is_empty() && tool.establishes.is_empty() && tool.updates.is_empty() {
            // Nothing reads the result: only its size can withhold it.
            self.blocked_calls += u64::from(too_large);
            return;
        }
        let result = to_cel(result);
        let field = self.scope(&[("result", &result)]);
        let mut key = field.new_inner_scope();
        key.add_variable_from_value("args", pending.args);
        let mut when = key.new_inner_scope();
        if tool.reads_facts {
            when.add_variable_from_value("facts", self.facts());
        }
        // Result checks also read the session's counters and the facts the
        // tool's gates bound. (`<aggregate>(key)` is not bound for them: no
        // workflow's result check reads one; such a check fails here, which
        // withholds the result and may report a bypass that is not one.)
        let mut checks = when.new_inner_scope();
        checks.add_variable_from_value("session", self.session());
        for gate in &tool.gates {
            if let Some(instance) = self.instance(&gate.fact, gate.key.as_ref(), &key) {
                checks.add_variable_from_value(gate.alias.as_str(), instance);
            }
        }
        let checks_pass = tool.result_checks.iter().all(|(_, rule)| execute(rule, &checks) == Some(Cel::Bool(true)));
        if too_large || !checks_pass {
            self.blocked_calls += 1;
            return;
        }
        // Every mapping of one result reads the facts held before it.
        let scopes = Scopes { field: &field, key: &key, when: &when };
        for mapping in &tool.establishes {
            self.establish(mapping, &scopes);
        }
        for mapping in &tool.updates {
            self.update(mapping, &scopes);
        }
    }

    fn establish(&mut self, mapping: &Mapping, scopes: &Scopes) {
        let Some(fact) = self.spec.facts.get(&mapping.fact) else { return };
        if !applies(mapping, scopes) || (fact.identity && self.holds(&mapping.fact)) {
            return;
        }
        let mut fields = Fields::new();
        for (name, program) in &mapping.fields {
            // Only the key field of a keyed fact may say which thing the
            // result is about from the question (`args`).
            let question = fact.key_field.as_deref() == Some(name.as_str());
            let scope = if question { scopes.key } else { scopes.field };
            let Some(value) = field(fact.fields.get(name), program, scope) else { return };
            fields.insert(name.clone(), value);
        }
        match &fact.key_field {
            None => {
                if !self.single.contains_key(&mapping.fact) && !self.room() {
                    return;
                }
                self.single.insert(mapping.fact.clone(), fields);
            }
            Some(key_field) => {
                let Some(key) = fields.get(key_field).and_then(key_text) else { return };
                let known = self.keyed.get(&mapping.fact).is_some_and(|instances| instances.contains_key(&key));
                if !known && !self.room() {
                    return;
                }
                self.keyed.entry(mapping.fact.clone()).or_default().insert(key, fields);
            }
        }
        self.view = OnceCell::new();
    }

    fn update(&mut self, mapping: &Mapping, scopes: &Scopes) {
        let Some(fact) = self.spec.facts.get(&mapping.fact) else { return };
        if fact.identity || self.instance(&mapping.fact, mapping.key.as_ref(), scopes.key).is_none() {
            return;
        }
        if !applies(mapping, scopes) {
            return;
        }
        let mut fields = Vec::new();
        for (name, program) in &mapping.fields {
            let Some(value) = field(fact.fields.get(name), program, scopes.field) else { return };
            fields.push((name.clone(), value));
        }
        let key = mapping.key.as_ref().and_then(|k| key_text(&execute(k, scopes.key)?));
        let instance = match key {
            Some(key) => self.keyed.get_mut(&mapping.fact).and_then(|instances| instances.get_mut(&key)),
            None => self.single.get_mut(&mapping.fact),
        };
        if let Some(instance) = instance {
            instance.extend(fields);
            self.view = OnceCell::new();
        }
    }

    /// The instance of `fact` a key program (over `args` in `scope`) names,
    /// or the single instance without one, as a rule reads it.
    fn instance(&self, fact: &str, key: Option<&Program>, scope: &Context<'_, '_>) -> Option<Cel> {
        let fields = match key {
            None => self.single.get(fact)?,
            Some(key) => self.keyed.get(fact)?.get(&key_text(&execute(key, scope)?)?)?,
        };
        Some(fields_cel(fields))
    }

    /// Whether any instance of `fact` is held.
    fn holds(&self, fact: &str) -> bool {
        self.single.contains_key(fact) || self.keyed.get(fact).is_some_and(|instances| !instances.is_empty())
    }

    /// Whether another fact instance fits under the session's limit.
    fn room(&self) -> bool {
        self.single.len() + self.keyed.values().map(BTreeMap::len).sum::<usize>() < self.spec.facts_max
    }

    fn add(&mut self, aggregate: &str, key: Option<&str>, amount: f64) {
        let (total, by_key) = self.totals.entry(aggregate.to_owned()).or_default();
        *total += amount;
        if let Some(key) = key {
            *by_key.entry(key.to_owned()).or_default() += amount;
        }
    }

    /// A scope of the oracle's evaluator (the `cel` crate's standard library,
    /// `timestamp`, `duration` and `sum`) with `variables`.
    fn scope(&self, variables: &[(&str, &Cel)]) -> Context<'s, 'static> {
        let mut scope = self.spec.root.new_inner_scope();
        for (name, value) in variables {
            scope.add_variable_from_value(*name, (*value).clone());
        }
        scope
    }

    /// Whether the fact instance `fact` (`key` for keyed facts) is held.
    pub fn has(&self, fact: &str, key: Option<&str>) -> bool {
        match key {
            None => self.single.contains_key(fact),
            Some(key) => self.keyed.get(fact).is_some_and(|instances| instances.contains_key(key)),
        }
    }

    /// Every fact as an invariant reads `facts`: a single fact's fields under
    /// its name once held, every keyed fact as a map from key to fields.
    pub fn facts(&self) -> Cel {
        let build = || {
            let mut facts: HashMap<Key, Cel> = HashMap::new();
            for (name, fact) in &self.spec.facts {
                let value = match &fact.key_field {
                    None => match self.single.get(name) {
                        Some(fields) => fields_cel(fields),
                        None => continue,
                    },
                    Some(_) => {
                        let instances = self.keyed.get(name).into_iter().flatten();
                        cel_map(instances.map(|(key, fields)| (key.clone(), fields_cel(fields))))
                    }
                };
                facts.insert(Key::String(Arc::new(name.clone())), value);
            }
            Cel::Map(CelMap { map: Arc::new(facts) })
        };
        self.view.get_or_init(build).clone()
    }

    /// The session's counters and aggregate totals, as `session.<name>` reads them.
    pub fn session(&self) -> Cel {
        let counters = [
            ("blocked_calls".to_owned(), self.blocked_calls as f64),
            ("allowed_calls".to_owned(), self.allowed_calls as f64),
            ("escalations".to_owned(), self.escalations as f64),
        ];
        let totals =
            self.spec.aggregates.iter().map(|a| (a.name.clone(), self.totals.get(&a.name).map_or(0.0, |t| t.0)));
        cel_map(counters.into_iter().chain(totals).map(|(name, value)| (name, Cel::Float(value))))
    }

    /// An aggregate's totals by key.
    pub fn by_key(&self, aggregate: &str) -> BTreeMap<String, f64> {
        self.totals.get(aggregate).map(|t| t.1.clone()).unwrap_or_default()
    }
}

/// Whether a mapping's `when` holds (a mapping without one always applies).
fn applies(mapping: &Mapping, scopes: &Scopes) -> bool {
    mapping.when.as_ref().is_none_or(|when| execute(when, scopes.when) == Some(Cel::Bool(true)))
}

/// A fact field's value, if it can be evaluated and is of its declared type
/// (a JSON shape, for `any`).
fn field(kind: Option<&String>, program: &Program, scope: &Context<'_, '_>) -> Option<Cel> {
    let value = execute(program, scope)?;
    let fits = match (kind?.as_str(), &value) {
        ("string", Cel::String(_)) | ("bool", Cel::Bool(_)) | ("int", Cel::Int(_) | Cel::UInt(_)) => true,
        ("int", Cel::Float(x)) => x.is_finite() && x.fract() == 0.0,
        ("double" | "number", Cel::Float(x)) => x.is_finite(),
        ("double" | "number", Cel::Int(_) | Cel::UInt(_)) => true,
        ("list", Cel::List(_)) | ("map", Cel::Map(_)) | ("any", _) => json_shaped(&value),
        _ => false,
    };
    fits.then_some(value)
}

/// Whether JSON could hold the value: no bytes, functions, non-finite
/// numbers or map keys that are not text.
fn json_shaped(value: &Cel) -> bool {
    match value {
        Cel::Null | Cel::Bool(_) | Cel::Int(_) | Cel::UInt(_) | Cel::String(_) => true,
        Cel::Float(x) => x.is_finite(),
        Cel::List(items) => items.iter().all(json_shaped),
        Cel::Map(map) => map.map.iter().all(|(key, value)| matches!(key, Key::String(_)) && json_shaped(value)),
        _ => false,
    }
}

/// The size of a JSON value written compactly, strings counted without
/// escapes (a few bytes short for text that needs them: a limit, not a format).
fn json_bytes(json: &Json) -> usize {
    /// Counts what is written to it.
    struct Counter(usize);
    impl std::fmt::Write for Counter {
        fn write_str(&mut self, text: &str) -> std::fmt::Result {
            self.0 += text.len();
            Ok(())
        }
    }
    let commas = |n: usize| n.saturating_sub(1);
    match json {
        Json::Null | Json::Bool(true) => 4,
        Json::Bool(false) => 5,
        Json::Number(n) => {
            let mut counter = Counter(0);
            let _ = std::fmt::Write::write_fmt(&mut counter, format_args!("{n}"));
            counter.0
        }
        Json::String(text) => text.len() + 2,
        Json::Array(items) => 2 + commas(items.len()) + items.iter().map(json_bytes).sum::<usize>(),
        Json::Object(object) => {
            2 + commas(object.len()) + object.iter().map(|(k, v)| k.len() + 3 + json_bytes(v)).sum::<usize>()
        }
    }
}

fn execute(program: &Program, scope: &Context<'_, '_>) -> Option<Cel> {
    program.execute(scope).ok()
}

fn fields_cel(fields: &Fields) -> Cel {
    cel_map(fields.iter().map(|(name, value)| (name.clone(), value.clone())))
}

fn cel_map(entries: impl Iterator<Item = (String, Cel)>) -> Cel {
    Cel::Map(CelMap { map: Arc::new(entries.map(|(k, v)| (Key::String(Arc::new(k)), v)).collect()) })
}

/// A number, as the fold counts it.
fn number(value: Cel) -> Option<f64> {
    match value {
        Cel::Float(x) => Some(x),
        Cel::Int(n) => Some(n as f64),
        Cel::UInt(n) => Some(n as f64),
        _ => None,
    }
}

/// The text a value is known by as a key: a string as it is, a number as it
/// is written (`3`, `2.5`), a boolean as `true` or `false`; null, a list, a
/// map or a non-finite number is no key.
pub fn key_text(value: &Cel) -> Option<String> {
    match value {
        Cel::String(text) => Some(text.as_str().to_owned()),
        Cel::Int(n) => Some(n.to_string()),
        Cel::UInt(n) => Some(n.to_string()),
        // Integral doubles below 2^53 are written as the integers they are.
        Cel::Float(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 => {
            Some(format!("{}", *x as i64))
        }
        Cel::Float(x) if x.is_finite() => Some(x.to_string()),
        Cel::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// JSON as the oracle sees it: every number a double.
pub fn to_cel(json: &Json) -> Cel {
    match json {
        Json::Null => Cel::Null,
        Json::Bool(b) => Cel::Bool(*b),
        Json::Number(n) => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Cel::String(Arc::new(s.clone())),
        Json::Array(items) => Cel::List(Arc::new(items.iter().map(to_cel).collect())),
        Json::Object(object) => cel_map(object.iter().map(|(k, v)| (k.clone(), to_cel(v)))),
    }
}

#[cfg(test)]
mod tests;
