//! `apply`: folds one event into the session state and says what changed.
//! Session state is the fold of its events, so replaying a journal through
//! `apply` rebuilds exactly the state a live session had.

use crate::call::{CallId, HistoryEntry, ToolCall};
use crate::case::InCase;
use crate::decide::gate_key;
use crate::decision::{Decision, Reason};
use crate::expr::{Bindings, Evaluator};
use crate::human::{self, HandoffState, HandoffStatus, HumanAction};
use crate::investigation::{Ending, Scope};
use crate::limits::json_bytes;
use crate::state::{FactInstances, PendingCall, SessionState};
use crate::value::{Map, Value};
use crate::workflow::{FactId, FieldType, Mapping, Tool, Workflow};
use std::sync::Arc;

/// Fact updates see no arguments in their fields: facts come from results.
static NO_ARGS: serde_json::Value = serde_json::Value::Null;

/// Whether the tool reported success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolOutcome {
    /// The tool did its work; its result may establish facts.
    Succeeded,
    /// The tool reported an error; nothing is established and amounts the
    /// call reserved are released.
    Failed,
}

/// Something that happened in a session.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A call was decided (the decision came from [`crate::decide`]).
    Decided {
        /// The call.
        call: &'a ToolCall,
        /// Its decision.
        decision: &'a Decision,
    },
    /// An allowed call's result came back.
    ResultRecorded {
        /// The call's id.
        call: &'a CallId,
        /// The tool's result.
        result: &'a serde_json::Value,
        /// Whether it succeeded.
        outcome: ToolOutcome,
    },
    /// An allowed call's result came back larger than the workflow's
    /// `result_bytes_max`: it is withheld exactly as
    /// [`Event::ResultRecorded`] would withhold it, without the caller having
    /// to keep (or store) the oversized result to say so.
    ResultTooLarge {
        /// The call's id.
        call: &'a CallId,
    },
    /// An allowed call's result came back, already in the core's value type
    /// (a replay converts a recorded trace's results once, up front, instead
    /// of on every pass). Exactly [`Event::ResultRecorded`] otherwise.
    ValueRecorded {
        /// The call's id.
        call: &'a CallId,
        /// The tool's result.
        result: &'a Value,
        /// The size of the result as JSON text ([`crate::json_bytes`] of the
        /// JSON it came from), checked against `result_bytes_max`.
        json_bytes: usize,
        /// Whether it succeeded.
        outcome: ToolOutcome,
    },
    /// The first event of an investigation: its concern, the tools it may
    /// call (`None`: all), and the identity facts it inherits from its
    /// parent (fact name, fields), put through the same write-once rule as
    /// an identity fact established from a result.
    InvestigationOpened {
        /// The concern, in the agent's words.
        concern: &'a str,
        /// The tool subset.
        tools: Option<&'a [String]>,
        /// The parent's identity facts.
        inherited: &'a [(String, serde_json::Value)],
    },
    /// A parent opened investigations (in this order).
    InvestigationsOpened {
        /// The investigations.
        opened: &'a [crate::investigation::Opened],
    },
    /// The agent concluded an investigation with an outcome.
    Concluded {
        /// The outcome.
        outcome: &'a str,
    },
    /// A person (or the clock) acted on the handoff the escalation of `call`
    /// opened, at session clock `now_ms`.
    Human {
        /// The call whose handoff it is.
        call: &'a CallId,
        /// What was done.
        action: &'a HumanAction,
        /// When, on the session clock.
        now_ms: i64,
    },
}

/// What an event changed, as data.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// The call is allowed and awaits its result.
    CallPending {
        /// The call.
        call: CallId,
    },
    /// The call was blocked or escalated; counters moved.
    CallRefused {
        /// The call.
        call: CallId,
    },
    /// A new fact instance.
    FactEstablished {
        /// The fact.
        fact: String,
        /// Its key, for keyed facts.
        key: Option<String>,
    },
    /// Fields of an existing fact changed.
    FactUpdated {
        /// The fact.
        fact: String,
        /// Its key, for keyed facts.
        key: Option<String>,
        /// The fields written.
        fields: Vec<String>,
    },
    /// Every instance of a fact was removed: an allowed call of a tool that
    /// `clears` it (an edit makes a test pass stale).
    FactCleared {
        /// The fact.
        fact: String,
        /// The call that cleared it.
        by: CallId,
    },
    /// A mapping matched but its fact could not be recorded.
    FactNotRecorded {
        /// The fact.
        fact: String,
        /// Why.
        reason: String,
    },
    /// The result failed a result check: the agent must not see it, and it
    /// establishes nothing.
    ResultWithheld {
        /// The call.
        call: CallId,
        /// The failed result checks.
        reasons: Vec<Reason>,
    },
    /// The tool failed; its reserved amounts were released.
    CallFailed {
        /// The call.
        call: CallId,
    },
    /// A result for a call that is not awaiting one (unknown, refused, or
    /// already recorded): ignored, so recording twice changes nothing.
    ResultIgnored {
        /// The call.
        call: CallId,
    },
    /// A handoff moved: opened by an escalation, or acted on.
    HandoffChanged {
        /// The call whose handoff it is.
        call: CallId,
        /// Where it stands now: `open`, `claimed`, `approved`, ...
        status: &'static str,
    },
    /// An action on a handoff that its state does not allow: nothing moved.
    HandoffUnchanged {
        /// The call whose handoff it is.
        call: CallId,
        /// Why.
        reason: String,
    },
}

/// Applies one event to the state.
pub fn apply(workflow: &Workflow, state: &mut SessionState, event: Event<'_>) -> Vec<Effect> {
    match event {
        Event::Decided { call, decision } => decided(workflow, state, call, decision),
        Event::ResultRecorded { call, result, outcome } => {
            // Converted only when it is read: the call succeeded, awaits it,
            // and it is within the limit (`None` then means over the limit).
            let converted = (outcome == ToolOutcome::Succeeded
                && json_bytes(result) <= workflow.limits.result_bytes_max
                && state.pending.contains_key(call))
            .then(|| Value::from_json(result));
            recorded(workflow, state, call, converted.as_ref(), outcome)
        }
        Event::ResultTooLarge { call } => recorded(workflow, state, call, None, ToolOutcome::Succeeded),
        Event::ValueRecorded { call, result, json_bytes, outcome } => {
            recorded(workflow, state, call, (json_bytes <= workflow.limits.result_bytes_max).then_some(result), outcome)
        }
        Event::InvestigationOpened { concern, tools, inherited } => {
            state.scope = Some(Scope { concern: concern.to_owned(), tools: tools.map(<[String]>::to_vec) });
            inherited.iter().filter_map(|(name, fields)| inherit(workflow, state, name, fields)).collect()
        }
        Event::InvestigationsOpened { opened } => {
            for new in opened {
                if !state.investigations.iter().any(|o| o.concern_id == new.concern_id) {
                    state.investigations.push(new.clone());
                }
            }
            Vec::new()
        }
        Event::Concluded { outcome } => {
            if state.scope.is_some() && state.ending.is_none() {
                state.ending = Some(Ending::Resolved { outcome: outcome.to_owned() });
            }
            Vec::new()
        }
        Event::Human { call, action, now_ms } => human_acted(state, call, action, now_ms),
    }
}

/// A person's (or the clock's) action on a handoff; one the handoff's state
/// does not allow changes nothing (the engine refuses it before journaling,
/// so a journal never holds one; a replay of a damaged one stays harmless).
fn human_acted(state: &mut SessionState, call: &CallId, action: &HumanAction, now_ms: i64) -> Vec<Effect> {
    let unchanged = |reason: String| vec![Effect::HandoffUnchanged { call: call.clone(), reason }];
    let Some(handoff) = state.handoffs.iter_mut().find(|h| &h.call == call) else {
        return unchanged(human::Refusal::NoHandoff.to_string());
    };
    match human::transition(handoff, action, now_ms) {
        Ok(status) => {
            handoff.status = status;
            vec![Effect::HandoffChanged { call: call.clone(), status: handoff.status.as_str() }]
        }
        Err(refusal) => unchanged(refusal.to_string()),
    }
}

/// Opens the handoff of an escalated call (or a handoff tool's call that runs).
fn open_handoff(state: &mut SessionState, call: &ToolCall) -> Effect {
    state.handoffs.push(HandoffState {
        call: call.id.clone(),
        tool: call.tool.clone(),
        args_hash: human::args_hash(&call.args),
        opened_ms: call.now_ms,
        status: HandoffStatus::Open,
    });
    Effect::HandoffChanged { call: call.id.clone(), status: HandoffStatus::Open.as_str() }
}

/// An identity fact inherited from the parent: only identity facts, only
/// once (the same rule as [`establish`]).
fn inherit(workflow: &Workflow, state: &mut SessionState, name: &str, fields: &serde_json::Value) -> Option<Effect> {
    let index = workflow.facts.iter().position(|f| f.name.as_ref() == name)?;
    let decl = workflow.facts.get(index)?;
    if !decl.identity || decl.key_field.is_some() || !fields.is_object() {
        return Some(Effect::FactNotRecorded {
            fact: name.to_owned(),
            reason: "only a single identity fact is inherited by an investigation".into(),
        });
    }
    put(workflow, state, FactId(index), None, Value::from_json(fields))
}

fn decided(workflow: &Workflow, state: &mut SessionState, call: &ToolCall, decision: &Decision) -> Vec<Effect> {
    let limit = workflow.limits.history_entries_max;
    let first_reason = || decision.reasons().first().map(|r| r.message.clone()).unwrap_or_default();
    match decision {
        Decision::Allow(allowed) => {
            let Some(tool) = workflow.tool(&call.tool) else {
                return Vec::new();
            };
            let args = call.args.clone();
            let reservations = reserve(workflow, state, tool, &args);
            let mut effects = clear(workflow, state, tool, call);
            state.allowed_calls += 1;
            state.pending.insert(call.id.clone(), PendingCall { tool: tool.id, args, reservations, stale: Vec::new() });
            effects.push(Effect::CallPending { call: call.id.clone() });
            let summary = match &allowed.approved_by {
                // INVARIANT: an approval lets one call through: it is used up
                // by the decision that relies on it, in the same event.
                Some(handoff) => {
                    if let Some(HandoffState { status: HandoffStatus::Approved { consumed, .. }, .. }) =
                        state.handoffs.iter_mut().find(|h| &h.call == handoff)
                    {
                        *consumed = true;
                    }
                    format!("allowed: a person approved it (handoff of call {handoff})")
                }
                None => "allowed".into(),
            };
            if allowed.handoff.is_some() {
                effects.push(open_handoff(state, call));
            }
            state.push_history(
                HistoryEntry { call: call.id.clone(), tool: call.tool.clone(), event: "allow", summary },
                limit,
            );
            effects
        }
        Decision::Block(_) => {
            state.blocked_calls += 1;
            let summary = first_reason();
            state.push_history(
                HistoryEntry { call: call.id.clone(), tool: call.tool.clone(), event: "block", summary },
                limit,
            );
            vec![Effect::CallRefused { call: call.id.clone() }]
        }
        Decision::Escalate(escalation) => {
            state.escalations += 1;
            // INVARIANT: an investigation ends when one of its calls is
            // escalated: a human takes the concern over.
            if state.scope.is_some() && state.ending.is_none() {
                state.ending = Some(Ending::Escalated {
                    reasons: escalation.reasons.clone(),
                    urgency: escalation.urgency.clone(),
                    recommended_action: escalation.recommended_action.clone(),
                });
            }
            let summary = first_reason();
            state.push_history(
                HistoryEntry { call: call.id.clone(), tool: call.tool.clone(), event: "escalate", summary },
                limit,
            );
            vec![Effect::CallRefused { call: call.id.clone() }, open_handoff(state, call)]
        }
    }
}

/// Clears the facts an allowed call of `tool` makes stale (`clears`): every
/// instance goes, and the calls already allowed and awaiting their results
/// may establish none of them, since they may have run before this call (a
/// test run started before an edit does not vouch for the edited code). The
/// call's own result comes after it and is not affected. With
/// `clears_when`, only calls for which it holds clear; one that cannot be
/// evaluated clears (a stale fact costs a re-run, a kept one a bypass).
fn clear(workflow: &Workflow, state: &mut SessionState, tool: &Tool, call: &ToolCall) -> Vec<Effect> {
    let mut effects = Vec::new();
    if tool.clears.is_empty() {
        return effects;
    }
    if let Some(when) = &tool.clears_when {
        let bindings = Bindings {
            context: call.context.as_ref().unwrap_or(&serde_json::Value::Null),
            ..Bindings::plain(&call.args, &Value::Null, InCase::alone(state))
        };
        let mut evaluator = Evaluator::new(bindings, workflow.limits.evaluation_steps_max);
        if evaluator.evaluate_bool(when.expr()) == Ok(false) {
            return effects;
        }
    }
    for &fact in &tool.clears {
        let Some(decl) = workflow.fact(fact) else { continue };
        let removed = match state.facts.get_mut(fact.0) {
            Some(FactInstances::Single(slot)) => usize::from(slot.take().is_some()),
            Some(FactInstances::Keyed(map)) => std::mem::take(Arc::make_mut(map)).len(),
            None => 0,
        };
        state.fact_count = state.fact_count.saturating_sub(removed);
        for pending in state.pending.values_mut() {
            if !pending.stale.contains(&fact) {
                pending.stale.push(fact);
            }
        }
        if removed > 0 {
            effects.push(Effect::FactCleared { fact: decl.name.to_string(), by: call.id.clone() });
        }
    }
    effects
}

/// Holds the call's amounts against the aggregates it feeds, from the
/// moment it is allowed: two refunds allowed in one batch both count
/// before either result is back.
fn reserve(
    workflow: &Workflow,
    state: &mut SessionState,
    tool: &Tool,
    args: &serde_json::Value,
) -> Vec<(usize, Option<String>, f64)> {
    let mut reservations = Vec::new();
    for (index, aggregate) in workflow.aggregates.iter().enumerate() {
        if aggregate.tool != tool.id {
            continue;
        }
        let mut evaluator = Evaluator::new(
            Bindings::plain(args, &Value::Null, InCase::alone(state)),
            workflow.limits.evaluation_steps_max,
        );
        // decide() blocks calls whose amount is not a finite number.
        let amount = evaluator
            .evaluate(aggregate.sum.expr())
            .ok()
            .and_then(|v| v.as_f64())
            .filter(|v| v.is_finite())
            .unwrap_or(0.0);
        // INVARIANT: `decide` blocks a call whose key cannot be computed, and
        // rules read keys through the same `key_text`, so an allowed call's
        // key is always here. A call allowed without one (a journal written
        // before keys were checked) counts in the total only: no rule can
        // read an uncomputable key, so no per-key limit reads it as 0.
        let key = aggregate.by.as_ref().and_then(|by| evaluator.key_text(by.expr()).ok()).map(|k| k.into_owned());
        if let Some(totals) = state.aggregates.get_mut(index) {
            totals.total += amount;
            if let Some(key) = &key {
                *totals.by_key.entry(key.clone()).or_insert(0.0) += amount;
            }
        }
        reservations.push((index, key, amount));
    }
    reservations
}

fn release(state: &mut SessionState, reservations: &[(usize, Option<String>, f64)]) {
    for (index, key, amount) in reservations {
        if let Some(totals) = state.aggregates.get_mut(*index) {
            totals.total -= amount;
            if let Some(key) = key
                && let Some(by) = totals.by_key.get_mut(key)
            {
                *by -= amount;
            }
        }
    }
}

fn recorded(
    workflow: &Workflow,
    state: &mut SessionState,
    call: &CallId,
    // `None`: the result is over `result_bytes_max`.
    result_value: Option<&Value>,
    outcome: ToolOutcome,
) -> Vec<Effect> {
    let Some(pending) = state.pending.remove(call) else {
        return vec![Effect::ResultIgnored { call: call.clone() }];
    };
    let Some(tool) = workflow.tools.get(pending.tool.0) else {
        return Vec::new();
    };
    let limit = workflow.limits.history_entries_max;
    let history = |event: &'static str, summary: String| HistoryEntry {
        call: call.clone(),
        tool: tool.name.clone(),
        event,
        summary,
    };
    if outcome == ToolOutcome::Failed {
        release(state, &pending.reservations);
        state.push_history(history("failed", "the tool reported an error".into()), limit);
        return vec![Effect::CallFailed { call: call.clone() }];
    }
    let withheld = match result_value {
        None => Some(vec![Reason {
            rule_id: "tollgate.limits.result_bytes_max".into(),
            message: format!("the result is over the limit of {} bytes", workflow.limits.result_bytes_max),
        }]),
        Some(value) => result_check_failures(workflow, state, tool, &pending.args, value),
    };
    if let Some(reasons) = withheld {
        state.blocked_calls += 1;
        let first = reasons.first().map(|r| r.message.clone()).unwrap_or_default();
        state.push_history(history("withheld", first), limit);
        return vec![Effect::ResultWithheld { call: call.clone(), reasons }];
    }
    let result_value = result_value.unwrap_or(&Value::Null);
    let mut effects = Vec::new();
    for mapping in tool.establishes.iter().chain(&tool.updates) {
        // INVARIANT: a fact cleared after this call was allowed is not
        // written by its result: the call may have run before the clearing
        // one (see `clear`).
        if pending.stale.contains(&mapping.fact) {
            let fact = workflow.fact(mapping.fact).map_or_else(String::new, |d| d.name.to_string());
            let reason = "a call allowed after this one cleared it, so this result may be out of date".to_owned();
            effects.push(Effect::FactNotRecorded { fact, reason });
            continue;
        }
        let is_update = tool.updates.iter().any(|u| std::ptr::eq(u, mapping));
        effects.extend(if is_update {
            update(workflow, state, mapping, &pending.args, result_value)
        } else {
            establish(workflow, state, mapping, &pending.args, result_value)
        });
    }
    state.count_result(&tool.name);
    state.push_history(history("result", "result recorded".into()), limit);
    effects
}

fn result_check_failures(
    workflow: &Workflow,
    state: &SessionState,
    tool: &Tool,
    args: &serde_json::Value,
    result: &Value,
) -> Option<Vec<Reason>> {
    if tool.result_checks.is_empty() {
        return None;
    }
    let mut facts = Vec::with_capacity(tool.gates.len());
    for gate in &tool.gates {
        let key = gate_key(workflow, state, gate, args).ok().flatten();
        match state.fact(gate.fact, key.as_deref()) {
            Some(value) => facts.push(value),
            None => {
                return Some(vec![Reason {
                    rule_id: gate.id.clone(),
                    message: format!("the result cannot be checked: {} is no longer established", gate.text),
                }]);
            }
        }
    }
    let mut evaluator = Evaluator::new(
        Bindings {
            args,
            result,
            facts: &facts,
            session: InCase::alone(state),
            now_ms: None,
            context: &serde_json::Value::Null,
        },
        workflow.limits.evaluation_steps_max,
    );
    let mut reasons = Vec::new();
    for check in &tool.result_checks {
        match evaluator.evaluate_bool(check.rule.expr()) {
            Ok(true) => {}
            Ok(false) => {
                reasons.push(Reason { rule_id: check.id.clone(), message: check.message.render(&mut evaluator) })
            }
            Err(error) => reasons.push(Reason {
                rule_id: check.id.clone(),
                message: format!(
                    "result check {} could not be evaluated, so the result is withheld: {error}",
                    check.id
                ),
            }),
        }
    }
    (!reasons.is_empty()).then_some(reasons)
}

/// Evaluates a mapping's condition and fields against the result.
/// (Compilation lets `args` appear only in `when` and an establish's key
/// field; `field_args` is what the fields see: an update's see none.)
fn map_fields(
    workflow: &Workflow,
    state: &SessionState,
    mapping: &Mapping,
    args: &serde_json::Value,
    field_args: &serde_json::Value,
    result: &Value,
) -> Result<Option<Map>, String> {
    if let Some(when) = &mapping.when {
        let mut evaluator =
            Evaluator::new(Bindings::plain(args, result, InCase::alone(state)), workflow.limits.evaluation_steps_max);
        match evaluator.evaluate_bool(when.expr()) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(error) => return Err(format!("its condition {} failed: {error}", when.source())),
        }
    }
    let mut evaluator =
        Evaluator::new(Bindings::plain(field_args, result, InCase::alone(state)), workflow.limits.evaluation_steps_max);
    let decl = workflow.fact(mapping.fact);
    let mut fields = Map::new();
    for (name, rule) in &mapping.fields {
        let value = evaluator
            .evaluate(rule.expr())
            .map_err(|error| format!("field {name} = {} failed: {error}", rule.source()))?;
        let kind = decl.and_then(|d| d.fields.get(name)).copied().unwrap_or(FieldType::Any);
        let value = coerce(value, kind, rule.computes()).map_err(|error| format!("field {name}: {error}"))?;
        fields.insert(Arc::from(name.as_str()), value);
    }
    Ok(Some(fields))
}

fn establish(
    workflow: &Workflow,
    state: &mut SessionState,
    mapping: &Mapping,
    args: &serde_json::Value,
    result: &Value,
) -> Option<Effect> {
    let decl = workflow.fact(mapping.fact)?;
    let not_recorded = |reason: String| Some(Effect::FactNotRecorded { fact: decl.name.to_string(), reason });
    let fields = match map_fields(workflow, state, mapping, args, args, result) {
        Ok(Some(fields)) => fields,
        Ok(None) => return None,
        Err(reason) => return not_recorded(reason),
    };
    let key = match decl.key_field.as_deref() {
        None => None,
        Some(field) => match fields.get(field).map(Value::key) {
            Some(Ok(key)) => Some(key),
            Some(Err(why)) => return not_recorded(format!("its key field {field}: {why}")),
            None => return not_recorded(format!("its key field {field} is missing")),
        },
    };
    put(workflow, state, mapping.fact, key, Value::Map(Arc::new(fields)))
}

/// Stores a fact instance under the session's rules: the facts limit, and
/// identity facts written once.
fn put(
    workflow: &Workflow,
    state: &mut SessionState,
    fact: FactId,
    key: Option<String>,
    value: Value,
) -> Option<Effect> {
    let decl = workflow.fact(fact)?;
    let not_recorded = |reason: String| Some(Effect::FactNotRecorded { fact: decl.name.to_string(), reason });
    let existing = state.fact(fact, key.as_deref()).cloned();
    if existing.is_none() && state.fact_count >= workflow.limits.facts_max {
        return not_recorded(format!("the session holds {} facts, the limit", workflow.limits.facts_max));
    }
    if decl.identity
        && let Some(existing) = &existing
    {
        if existing == &value {
            return None;
        }
        // INVARIANT: an identity fact, once established (or inherited by an
        // investigation), never changes in this session: a later lookup
        // cannot swap the verified customer.
        return not_recorded(format!("{} is already established for this session and cannot change", decl.name));
    }
    let inserted = insert(state, fact, key.clone(), value);
    if existing.is_none() && inserted {
        state.fact_count += 1;
        Some(Effect::FactEstablished { fact: decl.name.to_string(), key })
    } else {
        Some(Effect::FactUpdated { fact: decl.name.to_string(), key, fields: decl.fields.keys().cloned().collect() })
    }
}

fn update(
    workflow: &Workflow,
    state: &mut SessionState,
    mapping: &Mapping,
    args: &serde_json::Value,
    result: &Value,
) -> Option<Effect> {
    let decl = workflow.fact(mapping.fact)?;
    let not_recorded = |reason: String| Some(Effect::FactNotRecorded { fact: decl.name.to_string(), reason });
    let key = match &mapping.key {
        Some(rule) => {
            let mut evaluator = Evaluator::new(
                Bindings::plain(args, result, InCase::alone(state)),
                workflow.limits.evaluation_steps_max,
            );
            match evaluator.key_text(rule.expr()) {
                Ok(key) => Some(key.into_owned()),
                Err(error) => return not_recorded(format!("its key {} failed: {error}", rule.source())),
            }
        }
        None => None,
    };
    let Some(Value::Map(existing)) = state.fact(mapping.fact, key.as_deref()) else {
        // An update never creates a fact: partial fields would make one.
        return None;
    };
    let changes = match map_fields(workflow, state, mapping, args, &NO_ARGS, result) {
        Ok(Some(fields)) => fields,
        Ok(None) => return None,
        Err(reason) => return not_recorded(reason),
    };
    if decl.identity {
        return not_recorded(format!("{} cannot change once established", decl.name));
    }
    let mut merged = existing.as_ref().clone();
    let names: Vec<String> = changes.keys().map(|k| k.to_string()).collect();
    merged.extend(changes);
    insert(state, mapping.fact, key.clone(), Value::Map(Arc::new(merged)));
    Some(Effect::FactUpdated { fact: decl.name.to_string(), key, fields: names })
}

/// Stores an instance; returns whether the slot matched the fact's shape.
fn insert(state: &mut SessionState, fact: FactId, key: Option<String>, value: Value) -> bool {
    match (state.facts.get_mut(fact.0), key) {
        (Some(FactInstances::Single(slot)), None) => {
            *slot = Some(value);
            true
        }
        (Some(FactInstances::Keyed(map)), Some(key)) => {
            Arc::make_mut(map).insert(Arc::from(key), value);
            true
        }
        _ => false,
    }
}

/// Converts a result value to a declared field type, or says why not.
fn coerce(value: Value, kind: FieldType, computed: bool) -> Result<Value, String> {
    let mismatch = |value: &Value| Err(format!("expected {}, got {}", kind.name(), value.type_name()));
    // Facts hold what JSON holds (a checkpoint is JSON), so a fact restored
    // from a checkpoint equals the one a replay derives: a computed timestamp
    // or duration is kept as the text `string()` gives it, a uint as an int,
    // a non-finite double as null. (Values read as they are from JSON need
    // no walk.)
    let value = if computed && value.changes_through_json() { Value::from_json(&value.to_json()) } else { value };
    match (kind, value) {
        (FieldType::Any, value) => Ok(value),
        (FieldType::String, value @ Value::String(_)) => Ok(value),
        (FieldType::Int, value @ Value::Int(_)) => Ok(value),
        (FieldType::Int, Value::UInt(u)) => i64::try_from(u).map(Value::Int).map_err(|_| "integer overflow".into()),
        (FieldType::Int, Value::Double(d)) if d.fract() == 0.0 && d.abs() < 9.0e15 => Ok(Value::Int(d as i64)),
        (FieldType::Double, value @ (Value::Int(_) | Value::UInt(_) | Value::Double(_))) => {
            Ok(Value::Double(value.as_f64().unwrap_or(f64::NAN)))
        }
        (FieldType::Bool, value @ Value::Bool(_)) => Ok(value),
        (FieldType::List, value @ Value::List(_)) => Ok(value),
        (FieldType::Map, value @ Value::Map(_)) => Ok(value),
        (_, value) => mismatch(&value),
    }
}
