//! Checkpoints: a session state as JSON and back. A checkpoint is a cached
//! fold of the session's journal, so loading a session does not replay every
//! event; it must decode to exactly the state the replay gives (the engine's
//! tests check that). The format is versioned and tied to one workflow by
//! name and version; anything that does not fit is an error, never a
//! half-restored state.

use crate::call::{CallId, HistoryEntry};
use crate::decision::Reason;
use crate::human::{HandoffState, HandoffStatus};
use crate::investigation::{Ending, Opened, Scope};
use crate::state::{AggregateState, FactInstances, PendingCall, SessionState};
use crate::value::Value;
use crate::workflow::{FactId, Workflow};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// The checkpoint format this build writes and reads. (v2 added the
/// session's handoffs; a checkpoint of an older format is a stale cache:
/// the engine folds the journal instead, see [`is_current_checkpoint`].)
pub const CHECKPOINT_FORMAT: &str = "tollgate.checkpoint/v2";

/// Whether a checkpoint document is of the format this build writes. One of
/// an earlier format is no error (the journal it caches is intact), just of
/// no use: the session is folded from its journal instead.
pub fn is_current_checkpoint(document: &serde_json::Value) -> bool {
    document.get("format").and_then(serde_json::Value::as_str) == Some(CHECKPOINT_FORMAT)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Checkpoint {
    format: String,
    workflow: String,
    workflow_version: u32,
    /// Per declared fact, in declaration order: `null` or the instance for a
    /// single fact, an object of instances by key for a keyed one.
    facts: Vec<serde_json::Value>,
    pending: Vec<Pending>,
    blocked_calls: i64,
    allowed_calls: i64,
    escalations: i64,
    calls_by_tool: BTreeMap<String, i64>,
    aggregates: Vec<Aggregate>,
    history: Vec<History>,
    /// An investigation's concern and tool subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<CheckpointScope>,
    /// How an investigation ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ending: Option<CheckpointEnding>,
    /// A parent's investigations, in order: (concern id, session, concern).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    investigations: Vec<(String, String, String)>,
    /// The handoffs the session's escalations opened, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    handoffs: Vec<CheckpointHandoff>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointHandoff {
    call: String,
    tool: String,
    args_hash: String,
    opened_ms: Option<i64>,
    status: CheckpointHandoffStatus,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "status", rename_all = "snake_case")]
enum CheckpointHandoffStatus {
    Open,
    Claimed { reviewer: String },
    Approved { reviewer: String, expires_ms: i64, consumed: bool },
    Denied { reviewer: String, reason: String },
    Resolved { reviewer: String, note: String },
    Expired,
}

impl From<&HandoffStatus> for CheckpointHandoffStatus {
    fn from(status: &HandoffStatus) -> CheckpointHandoffStatus {
        match status.clone() {
            HandoffStatus::Open => CheckpointHandoffStatus::Open,
            HandoffStatus::Claimed { reviewer } => CheckpointHandoffStatus::Claimed { reviewer },
            HandoffStatus::Approved { reviewer, expires_ms, consumed } => {
                CheckpointHandoffStatus::Approved { reviewer, expires_ms, consumed }
            }
            HandoffStatus::Denied { reviewer, reason } => CheckpointHandoffStatus::Denied { reviewer, reason },
            HandoffStatus::Resolved { reviewer, note } => CheckpointHandoffStatus::Resolved { reviewer, note },
            HandoffStatus::Expired => CheckpointHandoffStatus::Expired,
        }
    }
}

impl From<CheckpointHandoffStatus> for HandoffStatus {
    fn from(status: CheckpointHandoffStatus) -> HandoffStatus {
        match status {
            CheckpointHandoffStatus::Open => HandoffStatus::Open,
            CheckpointHandoffStatus::Claimed { reviewer } => HandoffStatus::Claimed { reviewer },
            CheckpointHandoffStatus::Approved { reviewer, expires_ms, consumed } => {
                HandoffStatus::Approved { reviewer, expires_ms, consumed }
            }
            CheckpointHandoffStatus::Denied { reviewer, reason } => HandoffStatus::Denied { reviewer, reason },
            CheckpointHandoffStatus::Resolved { reviewer, note } => HandoffStatus::Resolved { reviewer, note },
            CheckpointHandoffStatus::Expired => HandoffStatus::Expired,
        }
    }
}

/// [`Checkpoint`], borrowed from the state: the same fields in the same
/// order, so `to_checkpoint_text` writes the document `to_checkpoint` makes.
#[derive(Serialize)]
struct CheckpointRef<'a> {
    format: &'a str,
    workflow: &'a str,
    workflow_version: u32,
    facts: Vec<FactsRef<'a>>,
    pending: Vec<PendingRef<'a>>,
    blocked_calls: i64,
    allowed_calls: i64,
    escalations: i64,
    calls_by_tool: &'a BTreeMap<String, i64>,
    aggregates: &'a [AggregateState],
    history: Vec<HistoryRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a CheckpointScope>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ending: Option<&'a CheckpointEnding>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    investigations: &'a [(String, String, String)],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    handoffs: &'a [CheckpointHandoff],
}

/// One fact's instances as a checkpoint holds them: `null` or the instance
/// for a single fact, an object of instances by key for a keyed one.
struct FactsRef<'a>(&'a FactInstances);

impl Serialize for FactsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            FactInstances::Single(None) => serializer.serialize_unit(),
            FactInstances::Single(Some(value)) => value.serialize(serializer),
            FactInstances::Keyed(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (key, value) in map.iter() {
                    out.serialize_entry(key.as_ref(), value)?;
                }
                out.end()
            }
        }
    }
}

#[derive(Serialize)]
struct PendingRef<'a> {
    call: &'a str,
    tool: &'a str,
    args: &'a serde_json::Value,
    reservations: &'a [(usize, Option<String>, f64)],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stale: Vec<&'a str>,
}

#[derive(Serialize)]
struct HistoryRef<'a> {
    call: &'a str,
    tool: &'a str,
    event: &'a str,
    summary: &'a str,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointScope {
    concern: String,
    tools: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "status", rename_all = "snake_case")]
enum CheckpointEnding {
    Resolved { outcome: String },
    Escalated { reasons: Vec<(String, String)>, urgency: String, recommended_action: String },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pending {
    call: String,
    tool: String,
    args: serde_json::Value,
    reservations: Vec<(usize, Option<String>, f64)>,
    /// Facts cleared after the call was allowed, by name (absent: none).
    #[serde(default)]
    stale: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Aggregate {
    total: f64,
    by_key: BTreeMap<String, f64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct History {
    call: String,
    tool: String,
    event: String,
    summary: String,
}

/// The history events a state can hold (`HistoryEntry::event`).
const EVENTS: [&str; 6] = ["allow", "block", "escalate", "result", "failed", "withheld"];

impl SessionState {
    /// The state as a checkpoint document.
    pub fn to_checkpoint(&self, workflow: &Workflow) -> serde_json::Value {
        self.with_checkpoint(workflow, |checkpoint| serde_json::to_value(checkpoint).unwrap_or(serde_json::Value::Null))
    }

    /// The state as checkpoint text: the document [`SessionState::to_checkpoint`]
    /// makes, written out straight from the state, nothing copied and no JSON
    /// tree built on the way (a checkpoint is written on every sixteenth step
    /// of a session).
    pub fn to_checkpoint_text(&self, workflow: &Workflow) -> String {
        self.with_checkpoint(workflow, |checkpoint| serde_json::to_string(checkpoint).unwrap_or_default())
    }

    /// Runs `write` on the state's checkpoint, borrowed from the state (but
    /// for the rarely large parts: scope, ending, investigations, handoffs).
    fn with_checkpoint<R>(&self, workflow: &Workflow, write: impl FnOnce(&CheckpointRef<'_>) -> R) -> R {
        let scope = self.scope.as_ref().map(|s| CheckpointScope { concern: s.concern.clone(), tools: s.tools.clone() });
        let ending = self.ending.as_ref().map(|e| match e {
            Ending::Resolved { outcome } => CheckpointEnding::Resolved { outcome: outcome.clone() },
            Ending::Escalated { reasons, urgency, recommended_action } => CheckpointEnding::Escalated {
                reasons: reasons.iter().map(|r| (r.rule_id.clone(), r.message.clone())).collect(),
                urgency: urgency.clone(),
                recommended_action: recommended_action.clone(),
            },
        });
        let investigations: Vec<(String, String, String)> =
            self.investigations.iter().map(|o| (o.concern_id.clone(), o.session.clone(), o.concern.clone())).collect();
        let handoffs: Vec<CheckpointHandoff> = self
            .handoffs
            .iter()
            .map(|h| CheckpointHandoff {
                call: h.call.as_str().to_owned(),
                tool: h.tool.clone(),
                args_hash: h.args_hash.clone(),
                opened_ms: h.opened_ms,
                status: CheckpointHandoffStatus::from(&h.status),
            })
            .collect();
        let checkpoint = CheckpointRef {
            format: CHECKPOINT_FORMAT,
            workflow: &workflow.name,
            workflow_version: workflow.version,
            facts: self.facts.iter().map(FactsRef).collect(),
            pending: self
                .pending
                .iter()
                .map(|(call, pending)| PendingRef {
                    call: call.as_str(),
                    tool: workflow.tools.get(pending.tool.0).map_or("", |t| t.name.as_str()),
                    args: &pending.args,
                    reservations: &pending.reservations,
                    stale: pending.stale.iter().filter_map(|f| workflow.fact(*f)).map(|d| d.name.as_ref()).collect(),
                })
                .collect(),
            blocked_calls: self.blocked_calls,
            allowed_calls: self.allowed_calls,
            escalations: self.escalations,
            calls_by_tool: &self.calls_by_tool,
            aggregates: &self.aggregates,
            history: self
                .history
                .iter()
                .map(|h| HistoryRef { call: h.call.as_str(), tool: &h.tool, event: h.event, summary: &h.summary })
                .collect(),
            scope: scope.as_ref(),
            ending: ending.as_ref(),
            investigations: &investigations,
            handoffs: &handoffs,
        };
        write(&checkpoint)
    }

    /// Restores a state from a checkpoint written for `workflow`.
    pub fn from_checkpoint(workflow: &Workflow, document: &serde_json::Value) -> Result<SessionState, String> {
        let checkpoint = Checkpoint::deserialize(document).map_err(|e| format!("malformed checkpoint: {e}"))?;
        if checkpoint.format != CHECKPOINT_FORMAT {
            return Err(format!("checkpoint format '{}' is not {CHECKPOINT_FORMAT}", checkpoint.format));
        }
        if checkpoint.workflow != workflow.name || checkpoint.workflow_version != workflow.version {
            return Err(format!(
                "the checkpoint is for workflow {} v{}, not {} v{}",
                checkpoint.workflow, checkpoint.workflow_version, workflow.name, workflow.version
            ));
        }
        if checkpoint.facts.len() != workflow.facts.len() || checkpoint.aggregates.len() != workflow.aggregates.len() {
            return Err("the checkpoint's facts or aggregates do not match the workflow's".into());
        }
        let mut facts = Vec::with_capacity(workflow.facts.len());
        let mut fact_count = 0;
        for (decl, json) in workflow.facts.iter().zip(&checkpoint.facts) {
            facts.push(match (decl.key_field.is_some(), json) {
                (false, serde_json::Value::Null) => FactInstances::Single(None),
                (false, instance @ serde_json::Value::Object(_)) => {
                    fact_count += 1;
                    FactInstances::Single(Some(Value::from_json(instance)))
                }
                (true, serde_json::Value::Object(map)) => {
                    fact_count += map.len();
                    FactInstances::Keyed(Arc::new(
                        map.iter().map(|(k, v)| (Arc::from(k.as_str()), Value::from_json(v))).collect(),
                    ))
                }
                _ => return Err(format!("the checkpoint's instances of fact '{}' have the wrong shape", decl.name)),
            });
        }
        let mut pending = BTreeMap::new();
        for p in checkpoint.pending {
            let tool = workflow
                .tool_index
                .get(&p.tool)
                .copied()
                .ok_or_else(|| format!("the checkpoint has a pending call to unknown tool '{}'", p.tool))?;
            let mut stale = Vec::with_capacity(p.stale.len());
            for name in &p.stale {
                let index =
                    workflow.facts.iter().position(|f| f.name.as_ref() == name.as_str()).ok_or_else(|| {
                        format!("the checkpoint's pending call {} names unknown fact '{name}'", p.call)
                    })?;
                stale.push(FactId(index));
            }
            pending
                .insert(CallId::new(p.call), PendingCall { tool, args: p.args, reservations: p.reservations, stale });
        }
        let mut history = VecDeque::with_capacity(checkpoint.history.len());
        for h in checkpoint.history {
            let event = EVENTS
                .iter()
                .find(|e| **e == h.event)
                .ok_or_else(|| format!("the checkpoint's history has an unknown event '{}'", h.event))?;
            history.push_back(Arc::new(HistoryEntry {
                call: CallId::new(h.call),
                tool: h.tool,
                event,
                summary: h.summary,
            }));
        }
        Ok(SessionState {
            facts,
            fact_count,
            pending,
            blocked_calls: checkpoint.blocked_calls,
            allowed_calls: checkpoint.allowed_calls,
            escalations: checkpoint.escalations,
            calls_by_tool: checkpoint.calls_by_tool,
            aggregates: checkpoint
                .aggregates
                .into_iter()
                .map(|a| AggregateState { total: a.total, by_key: a.by_key })
                .collect(),
            history,
            scope: checkpoint.scope.map(|s| Scope { concern: s.concern, tools: s.tools }),
            ending: checkpoint.ending.map(|e| match e {
                CheckpointEnding::Resolved { outcome } => Ending::Resolved { outcome },
                CheckpointEnding::Escalated { reasons, urgency, recommended_action } => Ending::Escalated {
                    reasons: reasons.into_iter().map(|(rule_id, message)| Reason { rule_id, message }).collect(),
                    urgency,
                    recommended_action,
                },
            }),
            investigations: checkpoint
                .investigations
                .into_iter()
                .map(|(concern_id, session, concern)| Opened { concern_id, session, concern })
                .collect(),
            handoffs: checkpoint
                .handoffs
                .into_iter()
                .map(|h| HandoffState {
                    call: CallId::new(h.call),
                    tool: h.tool,
                    args_hash: h.args_hash,
                    opened_ms: h.opened_ms,
                    status: h.status.into(),
                })
                .collect(),
        })
    }
}
