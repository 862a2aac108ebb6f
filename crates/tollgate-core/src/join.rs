//! The join of a parent's investigations: one finding per concern, in the
//! order they were opened, and, when any of them escalated, the handoff of
//! the whole case, compiled from the children's states (the engine loads
//! them under the case's lock).

use crate::call::HistoryEntry;
use crate::decision::FactSnapshot;
use crate::handoff::{fact_snapshots, verified_customer_id};
use crate::investigation::{Ending, Opened};
use crate::state::SessionState;
use crate::workflow::Workflow;

use std::sync::Arc;

/// Whether a finding's investigation was resolved or escalated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindingStatus {
    /// Concluded by the agent.
    Resolved,
    /// Handed to a human.
    Escalated,
}

impl FindingStatus {
    /// `resolved` or `escalated`.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Resolved => "resolved",
            FindingStatus::Escalated => "escalated",
        }
    }
}

/// What one investigation found.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The concern's id.
    pub concern_id: String,
    /// The child session.
    pub session: String,
    /// The concern, in the agent's words.
    pub concern: String,
    /// Resolved or escalated.
    pub status: FindingStatus,
    /// The outcome (resolved) or the escalation's reason (escalated).
    pub outcome: String,
    /// For an escalated concern: its urgency and recommended action.
    pub urgency: Option<String>,
    /// For an escalated concern: what the human should do.
    pub recommended_action: Option<String>,
    /// The rules behind the escalation.
    pub rule_ids: Vec<String>,
    /// Every fact the investigation held (inherited identity included).
    pub facts: Vec<FactSnapshot>,
    /// Its calls, oldest first (as far as the session's history goes).
    pub calls: Vec<Arc<HistoryEntry>>,
    /// Its blocked or withheld calls, oldest first.
    pub blocks: Vec<Arc<HistoryEntry>>,
}

/// The handoff of a case in which an investigation escalated: every concern,
/// so the human sees the whole case.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinedHandoff {
    /// The verified customer (inherited by every investigation).
    pub customer_id: Option<String>,
    /// The highest urgency among the escalated concerns.
    pub urgency: String,
    /// One line per concern: its status and outcome or reason.
    pub summary: String,
    /// Every concern's finding, in the order the concerns were opened.
    pub concerns: Vec<Finding>,
}

/// The join of a parent's investigations.
#[derive(Clone, Debug, PartialEq)]
pub struct Join {
    /// Every finding, in the order the concerns were opened.
    pub findings: Vec<Finding>,
    /// Present when any investigation escalated.
    pub handoff: Option<JoinedHandoff>,
}

/// Joins the investigations of a parent: `children` are the opened
/// investigations with their states, in the order they were opened. Fails
/// with the concern ids that have not ended.
pub fn join(
    workflow: &Workflow,
    parent: &SessionState,
    children: &[(&Opened, &SessionState)],
) -> Result<Join, Vec<String>> {
    let running: Vec<String> =
        children.iter().filter(|(_, state)| state.ending.is_none()).map(|(o, _)| o.concern_id.clone()).collect();
    if !running.is_empty() {
        return Err(running);
    }
    let levels = workflow.handoff.as_ref().map(|h| h.urgency_levels.as_slice()).unwrap_or_default();
    let rank = |urgency: &str| levels.iter().position(|l| l == urgency).unwrap_or(0);
    let mut findings = Vec::with_capacity(children.len());
    for (opened, state) in children {
        let calls: Vec<Arc<HistoryEntry>> = state.history.iter().cloned().collect();
        let blocks = calls.iter().filter(|h| matches!(h.event, "block" | "withheld")).cloned().collect();
        let facts = fact_snapshots(workflow, state);
        let base = |status, outcome: String| Finding {
            concern_id: opened.concern_id.clone(),
            session: opened.session.clone(),
            concern: opened.concern.clone(),
            status,
            outcome,
            urgency: None,
            recommended_action: None,
            rule_ids: Vec::new(),
            facts: facts.clone(),
            calls: calls.clone(),
            blocks: Vec::new(),
        };
        let mut finding = match &state.ending {
            Some(Ending::Escalated { reasons, urgency, recommended_action }) => Finding {
                urgency: Some(urgency.clone()),
                recommended_action: Some(recommended_action.clone()),
                rule_ids: reasons.iter().map(|r| r.rule_id.clone()).collect(),
                ..base(
                    FindingStatus::Escalated,
                    reasons.iter().map(|r| r.message.as_str()).collect::<Vec<_>>().join("; "),
                )
            },
            Some(Ending::Resolved { outcome }) => base(FindingStatus::Resolved, outcome.clone()),
            // Not reached: a running investigation fails the join above.
            None => base(FindingStatus::Resolved, String::new()),
        };
        finding.blocks = blocks;
        findings.push(finding);
    }
    let escalated: Vec<&Finding> = findings.iter().filter(|f| f.status == FindingStatus::Escalated).collect();
    let handoff = (!escalated.is_empty()).then(|| {
        let urgency = escalated
            .iter()
            .filter_map(|f| f.urgency.as_deref())
            .max_by_key(|u| rank(u))
            .unwrap_or_default()
            .to_owned();
        let summary = findings
            .iter()
            .map(|f| format!("{} ({}): {}: {}", f.concern_id, f.concern, f.status.as_str(), f.outcome))
            .collect::<Vec<_>>()
            .join("\n");
        JoinedHandoff {
            customer_id: verified_customer_id(workflow, parent),
            urgency,
            summary,
            concerns: findings.clone(),
        }
    });
    Ok(Join { findings, handoff })
}
