//! What the hunter starts from: allowed traces (sessions of calls with the
//! results the real tools returned; read in `recorded.rs`), the results it
//! may hand to mutated calls, and the pool of values it swaps in.

use crate::rng::Rng;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use tollgate_core::{ToolCall, ToolOutcome};
use tollgate_protocol::script::Step;

/// One recorded session.
#[derive(Clone, Debug)]
pub struct Trace {
    /// Its name: a script's `{"session": ...}` line, or a recorded trace's id.
    pub name: String,
    /// Calls and results in order.
    pub steps: Vec<Step>,
}

/// Recorded results and the values seen, gathered from the traces.
#[derive(Debug, Default)]
pub struct Book {
    /// (tool, arguments as JSON text) → the result the tool gave.
    exact: BTreeMap<(String, String), (Json, ToolOutcome)>,
    /// Per tool: (arguments, result) of successful calls.
    samples: BTreeMap<String, Vec<(Json, Json)>>,
    /// Per field name (a key anywhere in arguments or results): the values seen.
    pub fields: BTreeMap<String, Vec<Json>>,
    /// Every number seen, and the numbers written in the workflow's rules.
    pub numbers: Vec<f64>,
    /// Per tool: arguments of calls seen.
    pub calls: BTreeMap<String, Vec<Json>>,
    /// Field names seen in results: what a forged argument pretends to be.
    pub result_fields: Vec<String>,
}

impl Book {
    /// Everything the traces teach; `rule_numbers` are thresholds from rules.
    pub fn new(traces: &[Trace], rule_numbers: &[f64]) -> Book {
        let mut book = Book::default();
        for trace in traces {
            let mut calls: BTreeMap<&str, &ToolCall> = BTreeMap::new();
            for step in &trace.steps {
                match step {
                    Step::Call(call) => {
                        calls.insert(call.id.as_str(), call);
                        book.learn_values(&call.args, false);
                        push_new(book.calls.entry(call.tool.clone()).or_default(), call.args.clone());
                    }
                    Step::Result { call, result, outcome } => {
                        let Some(made) = calls.get(call.as_str()) else { continue };
                        book.learn_values(result, true);
                        book.exact
                            .entry((made.tool.clone(), made.args.to_string()))
                            .or_insert_with(|| (result.clone(), *outcome));
                        if *outcome == ToolOutcome::Succeeded {
                            book.samples
                                .entry(made.tool.clone())
                                .or_default()
                                .push((made.args.clone(), result.clone()));
                        }
                    }
                }
            }
        }
        for &number in rule_numbers {
            if !book.numbers.contains(&number) {
                book.numbers.push(number);
            }
        }
        book
    }

    /// Records a synthesised result as if a trace had shown it.
    pub fn teach(&mut self, tool: &str, args: &Json, result: &Json) {
        self.learn_values(args, false);
        self.learn_values(result, true);
        self.exact
            .entry((tool.to_owned(), args.to_string()))
            .or_insert_with(|| (result.clone(), ToolOutcome::Succeeded));
        self.samples.entry(tool.to_owned()).or_default().push((args.clone(), result.clone()));
        push_new(self.calls.entry(tool.to_owned()).or_default(), args.clone());
    }

    fn learn_values(&mut self, value: &Json, from_result: bool) {
        let Json::Object(object) = value else { return };
        for (key, value) in object {
            if from_result && !self.result_fields.contains(key) {
                self.result_fields.push(key.clone());
            }
            match value {
                Json::Object(_) => self.learn_values(value, from_result),
                Json::Array(items) => items.iter().for_each(|item| self.learn_values(item, from_result)),
                Json::Number(number) => {
                    if let Some(n) = number.as_f64()
                        && !self.numbers.contains(&n)
                    {
                        self.numbers.push(n);
                    }
                    push_new(self.fields.entry(key.clone()).or_default(), value.clone());
                }
                _ => push_new(self.fields.entry(key.clone()).or_default(), value.clone()),
            }
        }
    }

    /// The result a real tool would give this call: the recorded one for
    /// the same tool and arguments, else a recorded result of the tool with
    /// the ids it was about swapped for this call's (and, sometimes, one
    /// more value swapped from the pool: the tool's data vary).
    pub fn result_for(&self, rng: &mut Rng, tool: &str, args: &Json) -> (Json, ToolOutcome) {
        if let Some(known) = self.exact.get(&(tool.to_owned(), args.to_string())) {
            return known.clone();
        }
        let Some((old_args, old_result)) = self.samples.get(tool).and_then(|s| rng.pick(s)) else {
            return (Json::Object(serde_json::Map::new()), ToolOutcome::Succeeded);
        };
        let mut result = old_result.clone();
        if let (Json::Object(old), Json::Object(new)) = (old_args, args) {
            for (field, old_value) in old {
                if let (Json::String(from), Some(Json::String(to))) = (old_value, new.get(field)) {
                    replace_strings(&mut result, from, to);
                }
            }
        }
        if rng.chance(1, 3) {
            self.vary_one(rng, &mut result);
        }
        (result, ToolOutcome::Succeeded)
    }

    /// Replaces one top-level string field of a result by another value
    /// seen for a field of that name.
    fn vary_one(&self, rng: &mut Rng, result: &mut Json) {
        let Json::Object(object) = result else { return };
        let keys: Vec<String> = object.iter().filter(|(_, v)| v.is_string()).map(|(k, _)| k.clone()).collect();
        let Some(key) = rng.pick(&keys) else { return };
        if let Some(value) = self.fields.get(key).and_then(|values| rng.pick(values)) {
            object.insert(key.clone(), value.clone());
        }
    }
}

fn push_new(values: &mut Vec<Json>, value: Json) {
    if !values.contains(&value) {
        values.push(value);
    }
}

fn replace_strings(value: &mut Json, from: &str, to: &str) {
    match value {
        Json::String(text) if text == from => *text = to.to_owned(),
        Json::Array(items) => items.iter_mut().for_each(|item| replace_strings(item, from, to)),
        Json::Object(object) => object.values_mut().for_each(|item| replace_strings(item, from, to)),
        _ => {}
    }
}

/// Numbers written in rule sources (`500.0`, `3`): the thresholds an
/// attacker pushes amounts across.
pub fn numbers_in(source: &str) -> Vec<f64> {
    let mut numbers = Vec::new();
    let mut current = String::new();
    let mut in_string = None;
    for c in source.chars().chain(std::iter::once(' ')) {
        match in_string {
            Some(quote) if c == quote => in_string = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => in_string = Some(c),
            None if c.is_ascii_digit() || (c == '.' && !current.is_empty()) => current.push(c),
            None => {
                if let Ok(number) = current.parse::<f64>()
                    && !numbers.contains(&number)
                {
                    numbers.push(number);
                }
                current.clear();
            }
        }
    }
    numbers
}

#[cfg(test)]
mod tests {
    use super::numbers_in;

    #[test]
    fn numbers_in_rules_skip_string_literals() {
        assert_eq!(numbers_in("args.amount > 500.0 && x == 'W1' && y < 3"), vec![500.0, 3.0]);
    }
}
