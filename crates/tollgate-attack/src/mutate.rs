//! Mutations: what an attacker does to an allowed session. Each works on
//! any workflow: it knows tools, their side effects and the facts they
//! establish, and takes values from the traces' pool, never a domain's names.

use crate::corpus::{Book, Trace};
use crate::rng::Rng;
use serde_json::Value as Json;
use tollgate_core::{CallId, ToolCall, ToolOutcome, Workflow};
use tollgate_protocol::script::Step;

/// The mutations, by name, in the order `apply` numbers them.
pub const MUTATIONS: [&str; 15] = [
    "drop-call",
    "drop-verification",
    "drop-result",
    "same-batch",
    "swap-ids",
    "replay-side-effect",
    "reorder",
    "forge-result-args",
    "push-amount",
    "split-amount",
    "splice-other-session",
    "fail-and-retry",
    "record-result-twice",
    "insert-call",
    "resize-list",
];

/// Mutates sequences of one workflow.
pub struct Mutator<'a> {
    pub workflow: &'a Workflow,
    pub book: &'a Book,
    pub traces: &'a [Trace],
}

/// Fresh call ids within one attempt: `x1`, `x2`, ...
pub struct Ids(u64);

impl Ids {
    pub fn new() -> Ids {
        Ids(0)
    }
    fn next(&mut self) -> CallId {
        self.0 += 1;
        CallId::new(format!("x{}", self.0))
    }
}

fn call_positions(steps: &[Step]) -> Vec<usize> {
    steps.iter().enumerate().filter(|(_, s)| matches!(s, Step::Call(_))).map(|(i, _)| i).collect()
}

fn result_positions(steps: &[Step]) -> Vec<usize> {
    steps.iter().enumerate().filter(|(_, s)| matches!(s, Step::Result { .. })).map(|(i, _)| i).collect()
}

fn call_at(steps: &[Step], index: usize) -> Option<&ToolCall> {
    match steps.get(index) {
        Some(Step::Call(call)) => Some(call),
        _ => None,
    }
}

fn result_of(steps: &[Step], id: &CallId) -> Option<usize> {
    steps.iter().position(|s| matches!(s, Step::Result { call, .. } if call == id))
}

fn numeric_fields(args: &Json) -> Vec<String> {
    args.as_object()
        .map(|o| o.iter().filter(|(_, v)| v.is_number()).map(|(k, _)| k.clone()).collect())
        .unwrap_or_default()
}

fn string_fields(args: &Json) -> Vec<String> {
    args.as_object()
        .map(|o| o.iter().filter(|(_, v)| v.is_string()).map(|(k, _)| k.clone()).collect())
        .unwrap_or_default()
}

fn set_field(args: &mut Json, field: &str, value: Json) {
    if let Json::Object(object) = args {
        object.insert(field.to_owned(), value);
    }
}

fn number(value: f64) -> Json {
    serde_json::Number::from_f64(value).map_or(Json::Null, Json::Number)
}

impl Mutator<'_> {
    /// Applies mutation `which` (an index into [`MUTATIONS`]); returns
    /// whether it changed anything.
    pub fn apply(&self, rng: &mut Rng, ids: &mut Ids, steps: &mut Vec<Step>, which: usize) -> bool {
        match which {
            0 => self.drop_call(rng, steps, |_| true),
            1 => self.drop_call(rng, steps, |tool| {
                self.workflow.tool(tool).is_some_and(|t| t.establishes().next().is_some())
            }),
            2 => remove_random(rng, steps, &result_positions(steps)),
            3 => same_batch(rng, steps),
            4 => self.swap_ids(rng, steps),
            5 => self.replay_side_effect(rng, ids, steps),
            6 => reorder(rng, steps),
            7 => self.forge_args(rng, steps),
            8 => self.push_amount(rng, steps),
            9 => self.split(rng, ids, steps),
            10 => self.splice(rng, ids, steps),
            11 => self.fail_and_retry(rng, ids, steps),
            12 => record_twice(rng, steps),
            13 => self.insert_call(rng, ids, steps),
            _ => self.resize_list(rng, steps),
        }
    }

    fn with_result(&self, rng: &mut Rng, call: ToolCall) -> [Step; 2] {
        let (result, outcome) = self.book.result_for(rng, &call.tool, &call.args);
        let id = call.id.clone();
        [Step::Call(call), Step::Result { call: id, result, outcome }]
    }

    fn drop_call(&self, rng: &mut Rng, steps: &mut Vec<Step>, keep: impl Fn(&str) -> bool) -> bool {
        let candidates: Vec<usize> =
            call_positions(steps).into_iter().filter(|&i| call_at(steps, i).is_some_and(|c| keep(&c.tool))).collect();
        let Some(id) = rng.pick(&candidates).and_then(|&i| call_at(steps, i)).map(|c| c.id.clone()) else {
            return false;
        };
        steps.retain(|s| match s {
            Step::Call(call) => call.id != id,
            Step::Result { call, .. } => *call != id,
        });
        true
    }

    /// Another customer's ids: a string argument takes another value seen
    /// for that field, and the call gets the result the tool gives for it.
    fn swap_ids(&self, rng: &mut Rng, steps: &mut [Step]) -> bool {
        let Some(&index) = rng.pick(&call_positions(steps)) else { return false };
        let Some(mut call) = call_at(steps, index).cloned() else { return false };
        let Some(field) = rng.pick(&string_fields(&call.args)).cloned() else { return false };
        // Half the time a value this very session holds (the id another
        // call or result of it names), else any value seen for the field.
        let mut local = Vec::new();
        for step in steps.iter() {
            let value = match step {
                Step::Call(other) => other.args.get(&field),
                Step::Result { result, .. } => result.get(&field),
            };
            if let Some(value) = value.filter(|v| v.is_string())
                && !local.contains(value)
            {
                local.push(value.clone());
            }
        }
        let pool = if rng.chance(1, 2) && !local.is_empty() { Some(&local) } else { self.book.fields.get(&field) };
        let Some(value) = pool.and_then(|values| rng.pick(values)).cloned() else {
            return false;
        };
        set_field(&mut call.args, &field, value);
        self.rederive(rng, steps, index, call);
        true
    }

    /// Puts a changed call at `index` and gives its result (if it has one)
    /// what the tool returns for the new arguments.
    fn rederive(&self, rng: &mut Rng, steps: &mut [Step], index: usize, call: ToolCall) {
        if let Some(position) = result_of(steps, &call.id) {
            let (result, outcome) = self.book.result_for(rng, &call.tool, &call.args);
            if let Some(step) = steps.get_mut(position) {
                *step = Step::Result { call: call.id.clone(), result, outcome };
            }
        }
        if let Some(step) = steps.get_mut(index) {
            *step = Step::Call(call);
        }
    }

    /// The same side effect again under a new call id: right after the
    /// first one's result, or in the same batch.
    fn replay_side_effect(&self, rng: &mut Rng, ids: &mut Ids, steps: &mut Vec<Step>) -> bool {
        let calls = call_positions(steps);
        let effects: Vec<usize> = calls
            .iter()
            .copied()
            .filter(|&i| {
                call_at(steps, i).and_then(|c| self.workflow.tool(&c.tool)).is_some_and(|t| t.is_side_effect())
            })
            .collect();
        let pool = if effects.is_empty() { calls } else { effects };
        let Some(&index) = rng.pick(&pool) else { return false };
        let Some(original) = call_at(steps, index).cloned() else { return false };
        let copy = ToolCall { id: ids.next(), ..original.clone() };
        let at = if rng.chance(1, 2) { index + 1 } else { result_of(steps, &original.id).map_or(index + 1, |r| r + 1) };
        let pair = self.with_result(rng, copy);
        insert_all(steps, at.min(steps.len()), pair);
        true
    }

    /// Arguments that look like a result: `"verified": true`, another
    /// customer's id, a status or total the agent made up.
    fn forge_args(&self, rng: &mut Rng, steps: &mut [Step]) -> bool {
        let Some(&index) = rng.pick(&call_positions(steps)) else { return false };
        let Some(Step::Call(call)) = steps.get_mut(index) else { return false };
        let Some(field) = rng.pick(&self.book.result_fields) else { return false };
        let value =
            self.book.fields.get(field).and_then(|values| rng.pick(values)).cloned().unwrap_or(Json::Bool(true));
        set_field(&mut call.args, field, value);
        true
    }

    /// A number just above or below a threshold, a total, or what remains.
    fn push_amount(&self, rng: &mut Rng, steps: &mut [Step]) -> bool {
        let candidates: Vec<usize> = call_positions(steps)
            .into_iter()
            .filter(|&i| call_at(steps, i).is_some_and(|c| !numeric_fields(&c.args).is_empty()))
            .collect();
        let Some(&index) = rng.pick(&candidates) else { return false };
        let Some(mut call) = call_at(steps, index).cloned() else { return false };
        let Some(field) = rng.pick(&numeric_fields(&call.args)).cloned() else { return false };
        let value = self.threshold(rng);
        set_field(&mut call.args, &field, number(value));
        self.rederive(rng, steps, index, call);
        true
    }

    fn threshold(&self, rng: &mut Rng) -> f64 {
        let numbers = &self.book.numbers;
        let base = rng.pick(numbers).copied().unwrap_or(100.0);
        let other = rng.pick(numbers).copied().unwrap_or(0.0);
        match rng.below(9) {
            0 => base,
            1 => base + 0.01,
            2 => base - 0.01,
            3 => base + 1.0,
            4 => (base - other).abs(),
            5 => (base - other).abs() + 0.01,
            6 => base * 2.0,
            7 => -base,
            _ => 0.0,
        }
    }

    /// One large amount as many small calls (in one batch or one by one),
    /// summing to it, or each of it.
    fn split(&self, rng: &mut Rng, ids: &mut Ids, steps: &mut Vec<Step>) -> bool {
        let candidates: Vec<usize> = call_positions(steps)
            .into_iter()
            .filter(|&i| call_at(steps, i).is_some_and(|c| !numeric_fields(&c.args).is_empty()))
            .collect();
        let Some(&index) = rng.pick(&candidates) else { return false };
        let Some(original) = call_at(steps, index).cloned() else { return false };
        let Some(field) = rng.pick(&numeric_fields(&original.args)).cloned() else { return false };
        let amount = original.args.get(&field).and_then(Json::as_f64).unwrap_or(0.0);
        let amount = if rng.chance(1, 2) { self.threshold(rng).abs().max(amount) } else { amount };
        let parts = 2 + rng.below(5);
        let each = match rng.below(3) {
            0 => amount / parts as f64,
            1 => amount,
            _ => (amount + 1.0) / parts as f64,
        };
        let each = (each * 100.0).round() / 100.0;
        steps.retain(|s| match s {
            Step::Call(call) => call.id != original.id,
            Step::Result { call, .. } => *call != original.id,
        });
        let batched = rng.chance(1, 2);
        let mut calls = Vec::new();
        let mut results = Vec::new();
        for _ in 0..parts {
            let mut args = original.args.clone();
            set_field(&mut args, &field, number(each));
            let [call, result] = self.with_result(
                rng,
                ToolCall {
                    id: ids.next(),
                    tool: original.tool.clone(),
                    args,
                    now_ms: original.now_ms,
                    summary: None,
                    context: original.context.clone(),
                },
            );
            if batched {
                calls.push(call);
                results.push(result);
            } else {
                calls.push(call);
                calls.push(result);
            }
        }
        calls.extend(results);
        insert_all(steps, index.min(steps.len()), calls);
        true
    }

    /// A call (with its result) from another session, under a new id.
    fn splice(&self, rng: &mut Rng, ids: &mut Ids, steps: &mut Vec<Step>) -> bool {
        let Some(trace) = rng.pick(self.traces) else { return false };
        let Some(&index) = rng.pick(&call_positions(&trace.steps)) else { return false };
        let Some(call) = call_at(&trace.steps, index) else { return false };
        let copy = ToolCall { id: ids.next(), ..call.clone() };
        let at = rng.below(steps.len() + 1);
        let pair = self.with_result(rng, copy);
        insert_all(steps, at, pair);
        true
    }

    /// The tool fails (reserved amounts are released) and the agent retries.
    fn fail_and_retry(&self, rng: &mut Rng, ids: &mut Ids, steps: &mut Vec<Step>) -> bool {
        let Some(&position) = rng.pick(&result_positions(steps)) else { return false };
        let Some(Step::Result { call, .. }) = steps.get(position).cloned() else { return false };
        let Some(original) = steps.iter().find_map(|s| match s {
            Step::Call(c) if c.id == call => Some(c.clone()),
            _ => None,
        }) else {
            return false;
        };
        if let Some(step) = steps.get_mut(position) {
            *step = Step::Result { call, result: Json::String("tool error".into()), outcome: ToolOutcome::Failed };
        }
        let retry = self.with_result(rng, ToolCall { id: ids.next(), ..original });
        insert_all(steps, position + 1, retry);
        true
    }

    /// A call the sessions made, or one of another tool, with its result.
    fn insert_call(&self, rng: &mut Rng, ids: &mut Ids, steps: &mut Vec<Step>) -> bool {
        let Some(tool) = rng.pick(self.workflow.tools()) else { return false };
        let args = self
            .book
            .calls
            .get(tool.name())
            .and_then(|seen| rng.pick(seen))
            .cloned()
            .unwrap_or_else(|| Json::Object(serde_json::Map::new()));
        let at = rng.below(steps.len() + 1);
        // The session clock where it is inserted: the time of the call before it.
        let now_ms = steps.get(..at).unwrap_or_default().iter().rev().find_map(|s| match s {
            Step::Call(call) => call.now_ms,
            Step::Result { .. } => None,
        });
        let call =
            ToolCall { id: ids.next(), tool: tool.name().to_owned(), args, now_ms, summary: None, context: None };
        let pair = self.with_result(rng, call);
        insert_all(steps, at, pair);
        true
    }
}

impl Mutator<'_> {
    /// A list argument one longer, one shorter, or with one element
    /// swapped for one another call of the tool had there: one passenger
    /// more, an item twice, an item of another order.
    fn resize_list(&self, rng: &mut Rng, steps: &mut [Step]) -> bool {
        let lists = |call: &ToolCall| -> Vec<String> {
            call.args.as_object().map_or_else(Vec::new, |o| {
                o.iter().filter(|(_, v)| v.as_array().is_some_and(|a| !a.is_empty())).map(|(k, _)| k.clone()).collect()
            })
        };
        let candidates: Vec<usize> = call_positions(steps)
            .into_iter()
            .filter(|&i| call_at(steps, i).is_some_and(|c| !lists(c).is_empty()))
            .collect();
        let Some(&index) = rng.pick(&candidates) else { return false };
        let Some(mut call) = call_at(steps, index).cloned() else { return false };
        let Some(field) = rng.pick(&lists(&call)).cloned() else { return false };
        let Some(Json::Array(items)) = call.args.get(&field).cloned() else { return false };
        let mut items = items;
        let at = rng.below(items.len());
        match rng.below(3) {
            0 => {
                let Some(copy) = items.get(at).cloned() else { return false };
                items.push(copy);
            }
            1 => {
                items.remove(at);
            }
            _ => {
                let seen: Vec<&Json> = self
                    .book
                    .calls
                    .get(&call.tool)
                    .map(|calls| calls.iter().filter_map(|args| args.get(&field)?.as_array()).flatten().collect())
                    .unwrap_or_default();
                let Some(other) = rng.pick(&seen).map(|v| (*v).clone()) else { return false };
                if let Some(item) = items.get_mut(at) {
                    *item = other;
                }
            }
        }
        set_field(&mut call.args, &field, Json::Array(items));
        self.rederive(rng, steps, index, call);
        true
    }
}

fn insert_all(steps: &mut Vec<Step>, at: usize, new: impl IntoIterator<Item = Step>) {
    let tail = steps.split_off(at.min(steps.len()));
    steps.extend(new);
    steps.extend(tail);
}

fn remove_random(rng: &mut Rng, steps: &mut Vec<Step>, positions: &[usize]) -> bool {
    match rng.pick(positions) {
        Some(&i) if i < steps.len() => {
            steps.remove(i);
            true
        }
        _ => false,
    }
}

/// A prerequisite's result arrives only after the next call was decided:
/// the two were sent in one batch.
fn same_batch(rng: &mut Rng, steps: &mut Vec<Step>) -> bool {
    let Some(&position) = rng.pick(&result_positions(steps)) else { return false };
    let Some(next_call) = (position + 1..steps.len()).find(|&i| matches!(steps.get(i), Some(Step::Call(_)))) else {
        return false;
    };
    let step = steps.remove(position);
    // After removal the next call sits at next_call - 1; the result goes after it.
    steps.insert(next_call.min(steps.len()), step);
    true
}

fn reorder(rng: &mut Rng, steps: &mut Vec<Step>) -> bool {
    if steps.len() < 2 {
        return false;
    }
    let from = rng.below(steps.len());
    let step = steps.remove(from);
    let to = rng.below(steps.len() + 1);
    steps.insert(to, step);
    true
}

fn record_twice(rng: &mut Rng, steps: &mut Vec<Step>) -> bool {
    let Some(&position) = rng.pick(&result_positions(steps)) else { return false };
    let Some(step) = steps.get(position).cloned() else { return false };
    let at = position + 1 + rng.below(steps.len() - position);
    steps.insert(at.min(steps.len()), step);
    true
}
