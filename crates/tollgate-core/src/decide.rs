//! `decide`: the pure decision on one tool call. Stages run in order —
//! admission, schema, gates, checks, escalation — and the first stage that
//! fails decides, reporting every reason it found. Any evaluation error is a
//! block that names the rule; nothing fails open.

use crate::call::ToolCall;
use crate::case::{Case, InCase, NO_CASE};
use crate::decision::{Allowed, Decision, Missing, Reason, Stage};
use crate::expr::{Bindings, Evaluator};
use crate::handoff;
use crate::human::{self, Coverage};
use crate::investigation::Ending;
use crate::limits::json_bytes;
use crate::state::SessionState;
use crate::value::Value;
use crate::workflow::{EscalationRule, Gate, Tool, Undeclared, Workflow};

/// Decides one tool call against the session's current state.
pub fn decide(workflow: &Workflow, state: &SessionState, call: &ToolCall) -> Decision {
    decide_in_case(workflow, state, &NO_CASE, call)
}

/// Decides one tool call of a session that is part of a case (a parent
/// and its investigations): rules read the case's aggregates
/// (`case.<aggregate>`, `case_<aggregate>(key)`), and a call to a tool that
/// closes the case is blocked while investigations run.
pub fn decide_in_case(workflow: &Workflow, state: &SessionState, case: &Case, call: &ToolCall) -> Decision {
    let Some(tool) = workflow.tool(&call.tool) else {
        // The workflow's choice (`[tool_names] undeclared`): an undeclared
        // tool it allows is journaled like any call but gated by nothing.
        if workflow.tool_names().undeclared() == Undeclared::Allow {
            return Decision::Allow(Allowed::plain(None));
        }
        let known: Vec<&str> = workflow.tools.iter().map(|t| t.name.as_str()).collect();
        return Decision::block(
            Stage::Admission,
            vec![Reason {
                rule_id: "tollgate.unknown_tool".into(),
                message: format!("unknown tool '{}'; this workflow allows: {}", call.tool, known.join(", ")),
            }],
            Vec::new(),
        );
    };
    if let Some(blocked) = investigation_admission(state, case, tool) {
        return blocked;
    }
    if let Some(blocked) = admission(workflow, state, tool, call) {
        return blocked;
    }
    if let Some(blocked) = schema(tool, &call.args) {
        return blocked;
    }
    let args = &call.args;
    let facts = match bind_gates(workflow, state, tool, args) {
        Ok(facts) => facts,
        Err(blocked) => return blocked,
    };
    let mut evaluator = Evaluator::new(
        Bindings {
            args,
            result: &Value::Null,
            facts: &facts,
            session: InCase::new(state, case),
            now_ms: call.now_ms,
            context: call.context.as_ref().unwrap_or(&serde_json::Value::Null),
        },
        workflow.limits.evaluation_steps_max,
    );
    if let Some(blocked) = gate_conditions(tool, &mut evaluator) {
        return blocked;
    }
    if let Some(blocked) = checks(workflow, tool, &mut evaluator) {
        return blocked;
    }
    let key = || tool.side_effect.then(|| idempotency_key(tool, call));
    if tool.is_handoff {
        return match handoff::requested(workflow, state, call) {
            // Declared to run: the call goes through, its handoff to the queue.
            Decision::Escalate(escalation) if workflow.handoff.as_ref().is_some_and(|h| h.tool_runs) => {
                Decision::Allow(Allowed { handoff: Some(Box::new(escalation.handoff)), ..Allowed::plain(key()) })
            }
            other => other,
        };
    }
    match escalations(tool, &mut evaluator) {
        Ok(None) => Decision::Allow(Allowed::plain(key())),
        Ok(Some(matched)) => human_decision(workflow, state, tool, call, key).unwrap_or_else(|note| {
            let mut decision = handoff::escalate(workflow, state, call, matched, &mut evaluator);
            if let (Decision::Escalate(escalation), Some(note)) = (&mut decision, note) {
                escalation.reasons.push(Reason { rule_id: "tollgate.handoff.not_covered".into(), message: note });
            }
            decision
        }),
        Err(blocked) => blocked,
    }
}

/// What a person already decided about a call that needs one: the newest
/// handoff of the same tool and arguments in this session. `Err`: nobody
/// decided it (escalate), with why an approval of the tool does not cover
/// it, if one exists.
fn human_decision(
    workflow: &Workflow,
    state: &SessionState,
    tool: &Tool,
    call: &ToolCall,
    key: impl Fn() -> Option<String>,
) -> Result<Decision, Option<String>> {
    // Most sessions hold no handoff of this tool: nothing to hash then.
    if !state.handoffs.iter().any(|h| h.tool == tool.name) {
        return Err(None);
    }
    let hash = human::args_hash(&call.args);
    let block = |rule: &str, message: String| {
        Decision::block(Stage::Escalation, vec![Reason { rule_id: rule.into(), message }], Vec::new())
    };
    match human::coverage(&state.handoffs, &tool.name, &hash, call.now_ms, workflow.handoff_expires_after_ms()) {
        Coverage::Uncovered { note } => Err(note),
        Coverage::Approved { handoff } => {
            Ok(Decision::Allow(Allowed { approved_by: Some(handoff.clone()), ..Allowed::plain(key()) }))
        }
        Coverage::Waiting { handoff, status } => Ok(block(
            "tollgate.handoff.waiting",
            format!(
                "this call waits for a person: the handoff of call {handoff} is {}; wait for its outcome instead of \
                 calling again",
                status.as_str()
            ),
        )),
        Coverage::Denied { handoff, reviewer, reason } => Ok(block(
            "tollgate.handoff.denied",
            format!("{reviewer} denied this call (handoff of call {handoff}): {reason}"),
        )),
        Coverage::Resolved { handoff, reviewer, note } => Ok(block(
            "tollgate.handoff.resolved",
            format!("{reviewer} dealt with this call another way (handoff of call {handoff}): {note}"),
        )),
    }
}

/// The key a side-effecting call runs under: the same call id always maps
/// to the same key, so a re-driven call cannot repeat its effect.
fn idempotency_key(tool: &Tool, call: &ToolCall) -> String {
    let mut key = String::with_capacity(tool.name.len() + 1 + call.id.as_str().len());
    key.push_str(&tool.name);
    key.push(':');
    key.push_str(call.id.as_str());
    key
}

/// An investigation calls only its concern's tools and nothing once it has
/// ended; a parent does not close the case while an investigation runs.
fn investigation_admission(state: &SessionState, case: &Case, tool: &Tool) -> Option<Decision> {
    let reason = if let Some(ending) = state.ending() {
        let how = match ending {
            Ending::Resolved { .. } => "was concluded",
            Ending::Escalated { .. } => "was handed to a human",
        };
        Some(Reason {
            rule_id: "tollgate.investigation.ended".into(),
            message: format!("this investigation {how}; it takes no more calls ({} refused)", tool.name),
        })
    } else if let Some(tools) = state.concern_tools()
        && !tools.iter().any(|t| t == &tool.name)
    {
        Some(Reason {
            rule_id: "tollgate.investigation.tool_out_of_scope".into(),
            message: format!(
                "{} is outside this investigation's tools ({}); its concern: {}",
                tool.name,
                tools.join(", "),
                state.concern().unwrap_or_default()
            ),
        })
    } else if tool.closes_case && !case.running().is_empty() {
        Some(Reason {
            rule_id: "tollgate.investigations.running".into(),
            message: format!(
                "{} closes the case, but investigations are still running: {}; conclude or join them first",
                tool.name,
                case.running().join(", ")
            ),
        })
    } else {
        None
    };
    reason.map(|reason| Decision::block(Stage::Admission, vec![reason], Vec::new()))
}

fn admission(workflow: &Workflow, state: &SessionState, tool: &Tool, call: &ToolCall) -> Option<Decision> {
    let limits = &workflow.limits;
    let mut reasons = Vec::new();
    let size = json_bytes(&call.args);
    if size > limits.args_bytes_max {
        reasons.push(Reason {
            rule_id: "tollgate.limits.args_bytes_max".into(),
            message: format!("the arguments are about {size} bytes, over the limit of {} bytes", limits.args_bytes_max),
        });
    }
    // What the client says about the call is journaled with it: bounded
    // like the arguments.
    let context_size = call.context.as_ref().map_or(0, json_bytes);
    if context_size > limits.args_bytes_max {
        reasons.push(Reason {
            rule_id: "tollgate.limits.args_bytes_max".into(),
            message: format!(
                "the call's context is about {context_size} bytes, over the limit of {} bytes",
                limits.args_bytes_max
            ),
        });
    }
    if state.pending.len() >= limits.pending_calls_max {
        reasons.push(Reason {
            rule_id: "tollgate.limits.pending_calls_max".into(),
            message: format!(
                "{} allowed calls still await their results; record them before calling {}",
                state.pending.len(),
                tool.name
            ),
        });
    }
    if state.pending.contains_key(&call.id) {
        reasons.push(Reason {
            rule_id: "tollgate.duplicate_call_id".into(),
            message: format!("call id '{}' is already allowed and awaiting its result; use a new id", call.id),
        });
    }
    (!reasons.is_empty()).then(|| Decision::block(Stage::Admission, reasons, Vec::new()))
}

fn schema(tool: &Tool, args: &serde_json::Value) -> Option<Decision> {
    let schema = tool.schema.as_ref()?;
    if schema.validator.is_valid(args) {
        return None;
    }
    let reasons = schema
        .validator
        .iter_errors(args)
        .map(|error| {
            let path = error.instance_path().to_string();
            Reason {
                rule_id: format!("{}.args", tool.name),
                message: if path.is_empty() {
                    format!("arguments: {error}")
                } else {
                    format!("argument {path}: {error}")
                },
            }
        })
        .collect();
    Some(Decision::block(Stage::Schema, reasons, Vec::new()))
}

/// Finds the fact instance each gate names. Missing ones are reported with
/// what the agent should do, and a pending call that may supply them.
fn bind_gates<'s>(
    workflow: &Workflow,
    state: &'s SessionState,
    tool: &Tool,
    args: &serde_json::Value,
) -> Result<Vec<&'s Value>, Decision> {
    let mut facts = Vec::with_capacity(tool.gates.len());
    let mut reasons = Vec::new();
    let mut missing = Vec::new();
    for gate in &tool.gates {
        let key = match gate_key(workflow, state, gate, args) {
            Ok(key) => key,
            Err(message) => {
                reasons.push(Reason { rule_id: gate.id.clone(), message });
                continue;
            }
        };
        match state.fact(gate.fact, key.as_deref()) {
            Some(value) => facts.push(value),
            None => {
                let need = missing_fact(workflow, state, tool, gate, key.map(|k| k.into_owned()));
                reasons.push(Reason { rule_id: gate.id.clone(), message: need.action.clone() });
                missing.push(need);
            }
        }
    }
    if reasons.is_empty() { Ok(facts) } else { Err(Decision::block(Stage::Gates, reasons, missing)) }
}

pub(crate) fn gate_key<'a>(
    workflow: &Workflow,
    state: &'a SessionState,
    gate: &Gate,
    args: &'a serde_json::Value,
) -> Result<Option<std::borrow::Cow<'a, str>>, String> {
    let Some(rule) = &gate.key else { return Ok(None) };
    let mut evaluator =
        Evaluator::new(Bindings::plain(args, &Value::Null, InCase::alone(state)), workflow.limits.evaluation_steps_max);
    evaluator
        .key_text(rule.expr())
        .map(Some)
        .map_err(|error| format!("gate {} cannot find its key {}: {error}", gate.text, rule.source()))
}

fn missing_fact(workflow: &Workflow, state: &SessionState, tool: &Tool, gate: &Gate, key: Option<String>) -> Missing {
    let decl = workflow.fact(gate.fact);
    let fact_name = decl.map_or("?", |d| d.name.as_ref()).to_owned();
    let establishers: Vec<&str> = decl
        .map(|d| d.established_by.iter().filter_map(|t| workflow.tools.get(t.0)).map(|t| t.name.as_str()).collect())
        .unwrap_or_default();
    // A pending call may supply the fact if its tool establishes it and, for
    // a keyed fact, its arguments name the key we need.
    let pending = state.pending.iter().find(|(_, p)| {
        decl.is_some_and(|d| d.established_by.contains(&p.tool))
            && key.as_deref().is_none_or(|key| mentions(&p.args, key))
    });
    let action = match (pending, decl.and_then(|d| d.missing.as_deref())) {
        (Some((id, p)), _) => format!(
            "wait for the result of {} (call {id}) before calling {}: a prerequisite counts only once its result is recorded",
            workflow.tools.get(p.tool.0).map_or("?", |t| t.name.as_str()),
            tool.name
        ),
        (None, Some(text)) => text.replace("{key}", key.as_deref().unwrap_or("")),
        (None, None) => match &key {
            Some(key) => format!("look up {fact_name} {key} with {} first", establishers.join(" or ")),
            None => format!("establish {fact_name} with {} first", establishers.join(" or ")),
        },
    };
    Missing { fact: fact_name, key, action, pending_call: pending.map(|(id, _)| id.clone()) }
}

/// Whether a top-level string argument equals `key`.
fn mentions(args: &serde_json::Value, key: &str) -> bool {
    args.as_object().is_some_and(|object| object.values().any(|v| v.as_str() == Some(key)))
}

fn gate_conditions(tool: &Tool, evaluator: &mut Evaluator<'_, InCase<'_>>) -> Option<Decision> {
    let mut reasons = Vec::new();
    for gate in &tool.gates {
        let Some(condition) = &gate.condition else { continue };
        let failure = match evaluator.evaluate_bool(condition.expr()) {
            Ok(true) => continue,
            Ok(false) => match &gate.message {
                Some(message) => message.render(evaluator),
                None => format!("{} does not meet {}", gate.text, condition.source()),
            },
            Err(error) => format!("gate {} could not be evaluated: {error}", gate.text),
        };
        reasons.push(Reason { rule_id: gate.id.clone(), message: failure });
    }
    (!reasons.is_empty()).then(|| Decision::block(Stage::Gates, reasons, Vec::new()))
}

fn checks(workflow: &Workflow, tool: &Tool, evaluator: &mut Evaluator<'_, InCase<'_>>) -> Option<Decision> {
    let mut reasons = Vec::new();
    for check in &tool.checks {
        match evaluator.evaluate_bool(check.rule.expr()) {
            Ok(true) => {}
            Ok(false) => reasons.push(Reason { rule_id: check.id.clone(), message: check.message.render(evaluator) }),
            Err(error) => reasons.push(Reason {
                rule_id: check.id.clone(),
                message: format!("rule {} could not be evaluated, so the call is blocked: {error}", check.id),
            }),
        }
    }
    // An aggregate this call feeds must be computable, amount and key, or
    // the limit it guards could be bypassed: an amount reserved under no key
    // is one a rule reading the key never sees.
    for aggregate in workflow.aggregates.iter().filter(|a| a.tool == tool.id) {
        let sum = evaluator.evaluate(aggregate.sum.expr());
        if !matches!(sum, Ok(ref v) if v.as_f64().is_some_and(f64::is_finite)) {
            reasons.push(Reason {
                rule_id: format!("aggregate.{}", aggregate.name),
                message: format!(
                    "the amount for '{}' ({}) is not a finite number",
                    aggregate.name,
                    aggregate.sum.source()
                ),
            });
        }
        if let Some(by) = &aggregate.by
            && let Err(error) = evaluator.key_text(by.expr())
        {
            reasons.push(Reason {
                rule_id: format!("aggregate.{}", aggregate.name),
                message: format!(
                    "the key for '{}' ({}) cannot be computed, so the call is blocked: {error}",
                    aggregate.name,
                    by.source()
                ),
            });
        }
    }
    (!reasons.is_empty()).then(|| Decision::block(Stage::Checks, reasons, Vec::new()))
}

/// The escalation rules that match, or a block if one cannot be evaluated.
fn escalations<'t>(
    tool: &'t Tool,
    evaluator: &mut Evaluator<'_, InCase<'_>>,
) -> Result<Option<Vec<&'t EscalationRule>>, Decision> {
    let mut matched = Vec::new();
    let mut errors = Vec::new();
    for rule in &tool.escalations {
        match evaluator.evaluate_bool(rule.rule.expr()) {
            Ok(true) => matched.push(rule),
            Ok(false) => {}
            Err(error) => errors.push(Reason {
                rule_id: rule.id.clone(),
                message: format!("escalation rule {} could not be evaluated, so the call is blocked: {error}", rule.id),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(Decision::block(Stage::Escalation, errors, Vec::new()));
    }
    Ok((!matched.is_empty()).then_some(matched))
}
