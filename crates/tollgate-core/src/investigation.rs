//! Investigations: child sessions opened for the concerns of one
//! multi-concern request, and their join. The core holds what a session
//! knows about its case (the concern it investigates, how it ended, the
//! investigations it opened) and compiles the join from the children's
//! states; the engine loads those states, under the case's lock.

use crate::call::HistoryEntry;
use crate::decision::{FactSnapshot, Reason};
use crate::handoff::{fact_snapshots, verified_customer_id};
use crate::state::{AggregateState, SessionState};
use crate::workflow::Workflow;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a child session investigates: set by its first journal entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Scope {
    pub concern: String,
    /// The tools the investigation may call; `None`: every tool.
    pub tools: Option<Vec<String>>,
}

/// How an investigation ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Ending {
    /// The agent concluded it with an outcome.
    Resolved {
        /// The outcome, in the agent's words.
        outcome: String,
    },
    /// One of its calls was escalated: a human takes this concern over.
    Escalated {
        /// The escalation's reasons (rule and sentence).
        reasons: Vec<Reason>,
        /// The escalation's urgency.
        urgency: String,
        /// What the human should do.
        recommended_action: String,
    },
}

/// One investigation a parent session opened: its concern id, its session.
#[derive(Clone, Debug, PartialEq)]
pub struct Opened {
    /// The concern's id, as the agent named it (`refund-a`).
    pub concern_id: String,
    /// The child session's id (`{parent}:{concern id}`).
    pub session: String,
    /// The concern, in the agent's words.
    pub concern: String,
}

/// What a decision knows about the rest of its case, beyond its own
/// session: the aggregates of every other session of the case (the parent
/// and the sibling investigations, not this one) and, for a parent, which
/// investigations are still running. The engine reads it under the case's
/// lock and journals it with the decision, so a replay decides the same.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Case {
    pub(crate) others: Vec<AggregateState>,
    pub(crate) running: Vec<String>,
}

/// No case: a session on its own.
pub(crate) static NO_CASE: Case = Case { others: Vec::new(), running: Vec::new() };

impl Case {
    /// The case of a session whose other sessions hold `others` (their
    /// states, under the same workflow) and whose investigations `running`
    /// (concern ids, in the order they were opened) have not ended.
    pub fn from_sessions<'a>(
        workflow: &Workflow,
        others: impl IntoIterator<Item = &'a SessionState>,
        running: Vec<String>,
    ) -> Case {
        let mut totals = vec![AggregateState::default(); workflow.aggregates.len()];
        for state in others {
            for (total, theirs) in totals.iter_mut().zip(&state.aggregates) {
                total.total += theirs.total;
                for (key, amount) in &theirs.by_key {
                    *total.by_key.entry(key.clone()).or_insert(0.0) += amount;
                }
            }
        }
        Case { others: totals, running }
    }

    /// Whether the session is on its own (nothing to journal).
    pub fn is_empty(&self) -> bool {
        self.running.is_empty() && self.others.iter().all(|a| a.total == 0.0 && a.by_key.is_empty())
    }

    /// The investigations still running (concern ids).
    pub fn running(&self) -> &[String] {
        &self.running
    }

    /// The other sessions' total of aggregate `index`.
    pub(crate) fn total(&self, index: usize) -> f64 {
        self.others.get(index).map_or(0.0, |a| a.total)
    }

    /// The other sessions' total of aggregate `index` for one key.
    pub(crate) fn by(&self, index: usize, key: &str) -> f64 {
        self.others.get(index).and_then(|a| a.by_key.get(key)).copied().unwrap_or(0.0)
    }

    /// The case as JSON, for the journal (`Case::from_json` reads it back).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "aggregates": self.others.iter().map(|a| json!({"total": a.total, "by_key": a.by_key})).collect::<Vec<_>>(),
            "running": self.running,
        })
    }

    /// Reads a case written by [`Case::to_json`]; `null` is no case.
    pub fn from_json(value: &serde_json::Value) -> Result<Case, String> {
        if value.is_null() {
            return Ok(Case::default());
        }
        let bad = || format!("malformed case totals: {value}");
        let mut others = Vec::new();
        for aggregate in value.get("aggregates").and_then(|a| a.as_array()).ok_or_else(bad)? {
            let total = aggregate.get("total").and_then(serde_json::Value::as_f64).ok_or_else(bad)?;
            let mut by_key = BTreeMap::new();
            for (key, amount) in aggregate.get("by_key").and_then(|b| b.as_object()).ok_or_else(bad)? {
                by_key.insert(key.clone(), amount.as_f64().ok_or_else(bad)?);
            }
            others.push(AggregateState { total, by_key });
        }
        let running = value
            .get("running")
            .and_then(|r| r.as_array())
            .ok_or_else(bad)?
            .iter()
            .map(|r| r.as_str().map(str::to_owned).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Case { others, running })
    }
}

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

impl SessionState {
    /// The investigations this session opened, in the order it opened them.
    pub fn investigations(&self) -> &[Opened] {
        &self.investigations
    }
    /// The concern this session investigates, if it is an investigation.
    pub fn concern(&self) -> Option<&str> {
        self.scope.as_ref().map(|s| s.concern.as_str())
    }
    /// The tools this investigation may call (`None`: every tool).
    pub fn concern_tools(&self) -> Option<&[String]> {
        self.scope.as_ref().and_then(|s| s.tools.as_deref())
    }
    /// How this investigation ended; `None` while it runs.
    pub fn ending(&self) -> Option<&Ending> {
        self.ending.as_ref()
    }
    /// The session's identity facts (the verified customer), as (fact name,
    /// fields as JSON): what an investigation it opens inherits.
    pub fn identity_facts(&self, workflow: &Workflow) -> Vec<(String, serde_json::Value)> {
        workflow
            .facts
            .iter()
            .zip(&self.facts)
            .filter(|(decl, _)| decl.identity)
            .filter_map(|(decl, instances)| match instances {
                crate::state::FactInstances::Single(Some(value)) => Some((decl.name.to_string(), value.to_json())),
                _ => None,
            })
            .collect()
    }
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

impl Finding {
    /// The finding as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "concern_id": self.concern_id,
            "session": self.session,
            "concern": self.concern,
            "status": self.status.as_str(),
            "outcome": self.outcome,
            "urgency": self.urgency,
            "recommended_action": self.recommended_action,
            "rule_ids": self.rule_ids,
            "facts": self.facts.iter().map(FactSnapshot::line).collect::<Vec<_>>(),
            "calls": self.calls.iter().map(|c| c.line()).collect::<Vec<_>>(),
            "blocks": self.blocks.iter().map(|c| c.line()).collect::<Vec<_>>(),
        })
    }
}

impl Join {
    /// The join as JSON (what is audited).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "findings": self.findings.iter().map(Finding::to_json).collect::<Vec<_>>(),
            "handoff": self.handoff.as_ref().map(|h| json!({
                "customer_id": h.customer_id,
                "urgency": h.urgency,
                "summary": h.summary,
                "concerns": h.concerns.iter().map(Finding::to_json).collect::<Vec<_>>(),
            })),
        })
    }
}
