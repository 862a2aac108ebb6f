//! Handoffs: compiled from the session, never taken on the model's word.
//! An escalation whose handoff lacks a required field is itself blocked.

use crate::call::ToolCall;
use crate::case::InCase;
use crate::decision::{Decision, Escalation, FactSnapshot, Handoff, Reason, Stage};
use crate::expr::Evaluator;
use crate::state::{FactInstances, SessionState};
use crate::value::{Value, compact_json};
use crate::workflow::{EscalationRule, Workflow};

/// The escalation for matched escalation rules.
pub(crate) fn escalate(
    workflow: &Workflow,
    state: &SessionState,
    call: &ToolCall,
    matched: Vec<&EscalationRule>,
    evaluator: &mut Evaluator<'_, InCase<'_>>,
) -> Decision {
    let reasons: Vec<Reason> = matched
        .iter()
        .map(|rule| Reason { rule_id: rule.id.clone(), message: rule.reason.render(evaluator) })
        .collect();
    // The most urgent rule leads; ties go to the first written.
    let lead =
        matched.iter().copied().reduce(|best, rule| if rule.urgency.rank > best.urgency.rank { rule } else { best });
    let Some(lead) = lead else {
        return Decision::block(Stage::Escalation, Vec::new(), Vec::new());
    };
    let recommended_action = lead.recommended_action.render(evaluator);
    let mut root_cause = String::with_capacity(256);
    root_cause.push_str(&call.tool);
    root_cause.push_str(" called with ");
    root_cause.push_str(&compact_json(&call.args));
    root_cause.push_str(": ");
    for (index, reason) in reasons.iter().enumerate() {
        if index > 0 {
            root_cause.push_str("; ");
        }
        root_cause.push_str(&reason.message);
        root_cause.push_str(" (");
        root_cause.push_str(&reason.rule_id);
        root_cause.push(')');
    }
    let handoff = Handoff {
        customer_id: verified_customer_id(workflow, state),
        conversation_summary: match call.summary.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            // The agent's words, then what the session shows: the human
            // reads both, and the record does not rest on the model's.
            Some(agent) => format!("{agent} (from the session: {})", summarise(workflow, state)),
            None => summarise(workflow, state),
        },
        root_cause,
        recommended_action: recommended_action.clone(),
        urgency: lead.urgency.name.clone(),
        facts: fact_snapshots(workflow, state),
        timeline: state.history.iter().cloned().collect(),
        pending_calls: state.pending.keys().cloned().collect(),
    };
    complete(workflow, Escalation { reasons, urgency: lead.urgency.name.clone(), recommended_action, handoff })
}

/// The escalation the agent asks for by calling the handoff tool. Its
/// arguments supply the summary, root cause and recommended action; the
/// customer comes from the session, and a contradicting id is refused.
pub(crate) fn requested(workflow: &Workflow, state: &SessionState, call: &ToolCall) -> Decision {
    let text = |name: &str| {
        call.args.get(name).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
    };
    let verified = verified_customer_id(workflow, state);
    if let (Some(claimed), Some(verified)) = (text("customer_id"), &verified)
        && &claimed != verified
    {
        return Decision::block(
            Stage::Escalation,
            vec![Reason {
                rule_id: "handoff.customer_id".into(),
                message: format!(
                    "the handoff names customer {claimed}, but the verified customer is {verified}; hand off the verified customer's case"
                ),
            }],
            Vec::new(),
        );
    }
    let levels = workflow.handoff.as_ref().map(|h| h.urgency_levels.as_slice()).unwrap_or_default();
    let urgency = text("urgency").unwrap_or_default();
    if !urgency.is_empty() && !levels.iter().any(|l| l == &urgency) {
        return Decision::block(
            Stage::Escalation,
            vec![Reason {
                rule_id: "handoff.urgency".into(),
                message: format!("urgency '{urgency}' is not one of {}", levels.join(", ")),
            }],
            Vec::new(),
        );
    }
    let recommended_action = text("recommended_action").unwrap_or_default();
    let agent_summary = text("conversation_summary").unwrap_or_default();
    let handoff = Handoff {
        customer_id: verified.or_else(|| text("customer_id").filter(|_| !has_identity_fact(workflow))),
        conversation_summary: agent_summary,
        root_cause: text("root_cause").unwrap_or_default(),
        recommended_action: recommended_action.clone(),
        urgency: urgency.clone(),
        facts: fact_snapshots(workflow, state),
        timeline: state.history.iter().cloned().collect(),
        pending_calls: state.pending.keys().cloned().collect(),
    };
    complete(
        workflow,
        Escalation {
            reasons: vec![Reason {
                rule_id: format!("{}.requested", call.tool),
                message: "the agent asked for a human to take over".into(),
            }],
            urgency,
            recommended_action,
            handoff,
        },
    )
}

/// Blocks an escalation whose handoff lacks a required field.
fn complete(workflow: &Workflow, escalation: Escalation) -> Decision {
    let required = workflow.handoff.as_ref().map(|h| h.required.as_slice()).unwrap_or_default();
    let handoff = &escalation.handoff;
    let mut reasons = Vec::new();
    for field in required {
        let present = match field.as_str() {
            "customer_id" => handoff.customer_id.as_deref().is_some_and(|s| !s.is_empty()),
            "conversation_summary" => !handoff.conversation_summary.trim().is_empty(),
            "root_cause" => !handoff.root_cause.trim().is_empty(),
            "recommended_action" => !handoff.recommended_action.trim().is_empty(),
            "urgency" => !handoff.urgency.trim().is_empty(),
            _ => false,
        };
        if !present {
            let hint = match field.as_str() {
                "customer_id" => "verify the customer first, so the handoff can name them",
                _ => "supply it in the handoff call's arguments",
            };
            reasons.push(Reason {
                rule_id: format!("handoff.{field}"),
                message: format!("the escalation is blocked: handoff field '{field}' is missing or empty; {hint}"),
            });
        }
    }
    if reasons.is_empty() {
        Decision::Escalate(Box::new(escalation))
    } else {
        Decision::block(Stage::Escalation, reasons, Vec::new())
    }
}

fn has_identity_fact(workflow: &Workflow) -> bool {
    workflow.facts.iter().any(|f| f.identity)
}

/// The id of the verified customer: the `id` field (or key) of the first
/// identity fact that is established.
pub(crate) fn verified_customer_id(workflow: &Workflow, state: &SessionState) -> Option<String> {
    workflow.facts.iter().enumerate().filter(|(_, f)| f.identity).find_map(|(index, decl)| {
        let field = decl.key_field.as_deref().unwrap_or("id");
        match state.facts.get(index)? {
            FactInstances::Single(Some(value)) => value.field(field).map(|v| v.to_key_text()),
            FactInstances::Keyed(map) => map.keys().next().map(|k| k.to_string()),
            FactInstances::Single(None) => None,
        }
    })
}

/// A compact account of the session so far, compiled from its state.
fn summarise(workflow: &Workflow, state: &SessionState) -> String {
    use std::fmt::Write;
    let mut summary = String::with_capacity(256);
    // Writing to a String cannot fail.
    let _ = write!(
        summary,
        "{} call(s) allowed, {} blocked, {} escalated before this one",
        state.allowed_calls, state.blocked_calls, state.escalations
    );
    for (index, (name, key, value)) in state.facts(workflow).into_iter().enumerate() {
        summary.push_str(if index == 0 { "; established: " } else { ", " });
        summary.push_str(name);
        if let Some(id) = key.map(Value::from).as_ref().or_else(|| value.field("id")) {
            summary.push(' ');
            id.write_key_text(&mut summary);
        }
    }
    let mut refused: Vec<&str> = Vec::new();
    for entry in state.history.iter().filter(|h| matches!(h.event, "block" | "withheld")) {
        if !refused.contains(&entry.summary.as_str()) {
            summary.push_str(if refused.is_empty() { "; refused because: " } else { "; " });
            summary.push_str(&entry.summary);
            refused.push(&entry.summary);
        }
    }
    summary
}

pub(crate) fn fact_snapshots(workflow: &Workflow, state: &SessionState) -> Vec<FactSnapshot> {
    let mut out = Vec::new();
    for (decl, instances) in workflow.facts.iter().zip(&state.facts) {
        match instances {
            FactInstances::Single(Some(value)) => {
                out.push(FactSnapshot { fact: decl.name.clone(), key: None, fields: value.clone() })
            }
            FactInstances::Single(None) => {}
            FactInstances::Keyed(map) => out.extend(map.iter().map(|(key, value)| FactSnapshot {
                fact: decl.name.clone(),
                key: Some(key.clone()),
                fields: value.clone(),
            })),
        }
    }
    out
}
