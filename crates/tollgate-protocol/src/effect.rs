//! What recording an event did to a session, as transcripts and surfaces
//! show it: one small object per effect, named by what happened
//! (`{"established": "order", "key": "#W1"}`, `{"withheld": "c3", ...}`).

use crate::decision::Reason;
use serde::{Deserialize, Serialize};

/// One effect of an event on the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Effect {
    /// The call is allowed and awaits its result.
    Pending {
        /// The call.
        pending: String,
    },
    /// The call was blocked or escalated.
    Refused {
        /// The call.
        refused: String,
    },
    /// A new fact instance.
    Established {
        /// The fact.
        established: String,
        /// Its key, for keyed facts.
        key: Option<String>,
    },
    /// Fields of an existing fact changed.
    Updated {
        /// The fact.
        updated: String,
        /// Its key, for keyed facts.
        key: Option<String>,
        /// The fields written.
        fields: Vec<String>,
    },
    /// Every instance of a fact was removed by an allowed call of a tool
    /// that clears it.
    Cleared {
        /// The fact.
        cleared: String,
        /// The call that cleared it.
        by: String,
    },
    /// A mapping matched but its fact could not be recorded.
    NotRecorded {
        /// The fact.
        not_recorded: String,
        /// Why.
        reason: String,
    },
    /// The result failed a result check: the agent must not see it.
    Withheld {
        /// The call.
        withheld: String,
        /// The failed result checks.
        reasons: Vec<Reason>,
    },
    /// The tool failed; reserved amounts were released.
    Failed {
        /// The call.
        failed: String,
    },
    /// A result for a call not awaiting one: ignored.
    Ignored {
        /// The call.
        ignored: String,
    },
    /// A handoff moved: opened by an escalation, or acted on.
    HandoffChanged {
        /// The call whose handoff it is.
        handoff: String,
        /// Where it stands now.
        status: String,
    },
    /// An action a handoff's state does not allow: nothing moved.
    HandoffUnchanged {
        /// The call whose handoff it is.
        handoff: String,
        /// Why.
        unchanged: String,
    },
}

impl From<&tollgate_core::Effect> for Effect {
    fn from(effect: &tollgate_core::Effect) -> Effect {
        use tollgate_core::Effect as Core;
        match effect {
            Core::CallPending { call } => Effect::Pending { pending: call.to_string() },
            Core::CallRefused { call } => Effect::Refused { refused: call.to_string() },
            Core::FactEstablished { fact, key } => Effect::Established { established: fact.clone(), key: key.clone() },
            Core::FactUpdated { fact, key, fields } => {
                Effect::Updated { updated: fact.clone(), key: key.clone(), fields: fields.clone() }
            }
            Core::FactCleared { fact, by } => Effect::Cleared { cleared: fact.clone(), by: by.to_string() },
            Core::FactNotRecorded { fact, reason } => {
                Effect::NotRecorded { not_recorded: fact.clone(), reason: reason.clone() }
            }
            Core::ResultWithheld { call, reasons } => {
                Effect::Withheld { withheld: call.to_string(), reasons: reasons.iter().map(Reason::from).collect() }
            }
            Core::CallFailed { call } => Effect::Failed { failed: call.to_string() },
            Core::ResultIgnored { call } => Effect::Ignored { ignored: call.to_string() },
            Core::HandoffChanged { call, status } => {
                Effect::HandoffChanged { handoff: call.to_string(), status: (*status).to_owned() }
            }
            Core::HandoffUnchanged { call, reason } => {
                Effect::HandoffUnchanged { handoff: call.to_string(), unchanged: reason.clone() }
            }
        }
    }
}

/// The effect as JSON, as transcripts and the audit log show it.
pub fn effect_json(effect: &tollgate_core::Effect) -> serde_json::Value {
    crate::decision::to_value(&Effect::from(effect))
}
