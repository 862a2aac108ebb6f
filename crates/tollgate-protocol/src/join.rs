//! The join of a case's investigations as it is shown and journaled: every
//! finding in the order the concerns were opened, and the joined handoff
//! when one of them escalated.

use serde::{Deserialize, Serialize};
use tollgate_core::{FactSnapshot, HistoryEntry};

/// The join of a parent's investigations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// Every investigation's finding, in the order the concerns were opened.
    pub findings: Vec<Finding>,
    /// The case's handoff, when an investigation escalated.
    pub handoff: Option<JoinedHandoff>,
}

/// What one investigation found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// The concern's id.
    pub concern_id: String,
    /// The child session.
    pub session: String,
    /// The concern, in the agent's words.
    pub concern: String,
    /// `resolved` or `escalated`.
    pub status: String,
    /// The outcome (resolved) or the escalation's reason (escalated).
    pub outcome: String,
    /// For an escalated concern: its urgency.
    pub urgency: Option<String>,
    /// For an escalated concern: what the human should do.
    pub recommended_action: Option<String>,
    /// The rules behind the escalation.
    pub rule_ids: Vec<String>,
    /// Every fact the investigation held, one line each.
    pub facts: Vec<String>,
    /// Its calls, one line each, oldest first.
    pub calls: Vec<String>,
    /// Its blocked or withheld calls, one line each, oldest first.
    pub blocks: Vec<String>,
}

/// The handoff of a case: every concern, so the human sees the whole case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JoinedHandoff {
    /// The verified customer.
    pub customer_id: Option<String>,
    /// The highest urgency among the escalated concerns.
    pub urgency: String,
    /// One line per concern: its status and outcome or reason.
    pub summary: String,
    /// Every concern's finding.
    pub concerns: Vec<Finding>,
}

impl From<&tollgate_core::Finding> for Finding {
    fn from(finding: &tollgate_core::Finding) -> Finding {
        let lines = |entries: &[std::sync::Arc<HistoryEntry>]| entries.iter().map(|e| e.line()).collect();
        Finding {
            concern_id: finding.concern_id.clone(),
            session: finding.session.clone(),
            concern: finding.concern.clone(),
            status: finding.status.as_str().to_owned(),
            outcome: finding.outcome.clone(),
            urgency: finding.urgency.clone(),
            recommended_action: finding.recommended_action.clone(),
            rule_ids: finding.rule_ids.clone(),
            facts: finding.facts.iter().map(FactSnapshot::line).collect(),
            calls: lines(&finding.calls),
            blocks: lines(&finding.blocks),
        }
    }
}

impl From<&tollgate_core::Join> for Join {
    fn from(join: &tollgate_core::Join) -> Join {
        Join {
            findings: join.findings.iter().map(Finding::from).collect(),
            handoff: join.handoff.as_ref().map(|h| JoinedHandoff {
                customer_id: h.customer_id.clone(),
                urgency: h.urgency.clone(),
                summary: h.summary.clone(),
                concerns: h.concerns.iter().map(Finding::from).collect(),
            }),
        }
    }
}

/// The join as JSON, as it is journaled and shown.
pub fn join_json(join: &tollgate_core::Join) -> serde_json::Value {
    crate::decision::to_value(&Join::from(join))
}
