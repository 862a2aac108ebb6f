//! The decision as it goes over the wire: `tollgate.decision/v1`, the JSON
//! an agent, a transcript, the journal and every surface show. The core's
//! [`tollgate_core::Decision`] is converted here, once, for all of them.

use serde::{Deserialize, Serialize};
use tollgate_core::{CallId, FactSnapshot, HistoryEntry};

/// A decision, `tollgate.decision/v1`: `{"verdict": "allow" | "block" |
/// "escalate", ...}` with only the fields its verdict has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "verdict", rename_all = "lowercase", deny_unknown_fields)]
pub enum Decision {
    /// The call may run.
    Allow {
        /// For a side effect: the key the tool must be run under, so a retry
        /// never repeats the effect.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<String>,
        /// The call (of this session) whose handoff a person approved, when
        /// this call runs on that approval (used up by it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approved_by: Option<String>,
        /// The handoff tool's call runs, and this handoff goes to the queue.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handoff: Option<Handoff>,
    },
    /// The call may not run.
    Block {
        /// The first stage that failed: `admission`, `schema`, `gates`,
        /// `checks` or `escalation`.
        stage: String,
        /// Every reason found in that stage.
        reasons: Vec<Reason>,
        /// Missing prerequisites, with what to do about each.
        missing: Vec<Missing>,
    },
    /// The call does not run; a human takes over.
    Escalate {
        /// The escalation rules that matched.
        reasons: Vec<Reason>,
        /// How soon.
        urgency: String,
        /// What the human should do.
        recommended_action: String,
        /// What the human receives.
        handoff: Handoff,
    },
}

/// Why a call was blocked or escalated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// The rule's id.
    pub rule_id: String,
    /// What is wrong, phrased for the agent.
    pub message: String,
}

/// A prerequisite the call lacks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Missing {
    /// The fact.
    pub fact: String,
    /// The instance, for keyed facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What the agent should do.
    pub action: String,
    /// A call already allowed that may establish it once its result is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_call: Option<String>,
}

/// What a human receives when a call escalates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    /// The verified customer's id, if the session established one.
    pub customer_id: Option<String>,
    /// What happened in the conversation.
    pub conversation_summary: String,
    /// Why the case is with a human.
    pub root_cause: String,
    /// What the human should do.
    pub recommended_action: String,
    /// How soon.
    pub urgency: String,
    /// Every fact the session held, one line each.
    pub facts: Vec<String>,
    /// Recent calls with their outcomes, oldest first, one line each.
    pub timeline: Vec<String>,
    /// Calls allowed whose results are still outstanding.
    pub pending_calls: Vec<String>,
}

impl From<&tollgate_core::Reason> for Reason {
    fn from(reason: &tollgate_core::Reason) -> Reason {
        Reason { rule_id: reason.rule_id.clone(), message: reason.message.clone() }
    }
}

impl From<&tollgate_core::Handoff> for Handoff {
    fn from(handoff: &tollgate_core::Handoff) -> Handoff {
        Handoff {
            customer_id: handoff.customer_id.clone(),
            conversation_summary: handoff.conversation_summary.clone(),
            root_cause: handoff.root_cause.clone(),
            recommended_action: handoff.recommended_action.clone(),
            urgency: handoff.urgency.clone(),
            facts: handoff.facts.iter().map(FactSnapshot::line).collect(),
            timeline: handoff.timeline.iter().map(|entry| HistoryEntry::line(entry)).collect(),
            pending_calls: handoff.pending_calls.iter().map(|call| CallId::as_str(call).to_owned()).collect(),
        }
    }
}

impl From<&tollgate_core::Decision> for Decision {
    fn from(decision: &tollgate_core::Decision) -> Decision {
        use tollgate_core::Decision as Core;
        let reasons = || decision.reasons().iter().map(Reason::from).collect();
        match decision {
            Core::Allow(allowed) => Decision::Allow {
                idempotency_key: allowed.idempotency_key.clone(),
                approved_by: allowed.approved_by.as_ref().map(|call| call.as_str().to_owned()),
                handoff: allowed.handoff.as_deref().map(Handoff::from),
            },
            Core::Block(blocked) => Decision::Block {
                stage: blocked.stage.as_str().to_owned(),
                reasons: reasons(),
                missing: blocked
                    .missing
                    .iter()
                    .map(|m| Missing {
                        fact: m.fact.clone(),
                        key: m.key.clone(),
                        action: m.action.clone(),
                        pending_call: m.pending_call.as_ref().map(|call| call.as_str().to_owned()),
                    })
                    .collect(),
            },
            Core::Escalate(escalation) => Decision::Escalate {
                reasons: reasons(),
                urgency: escalation.urgency.clone(),
                recommended_action: escalation.recommended_action.clone(),
                handoff: Handoff::from(&escalation.handoff),
            },
        }
    }
}

/// The decision as JSON, `tollgate.decision/v1`: the one conversion every
/// surface, transcript and the journal use. Keys come out sorted (a
/// `serde_json` object), so the text is the same wherever it is printed.
pub fn decision_json(decision: &tollgate_core::Decision) -> serde_json::Value {
    to_value(&Decision::from(decision))
}

/// Serialises a wire type to a JSON value. These types hold only strings,
/// numbers, lists and string-keyed maps, so this cannot fail; a failure
/// would be a bug, shown as null rather than a panic.
pub(crate) fn to_value<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
