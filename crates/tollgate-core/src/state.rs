//! Session state: the fold of a session's events. It holds the facts
//! established from results, the calls allowed but not yet answered, the
//! counters rules read, and a short history for handoffs.

use crate::call::{CallId, HistoryEntry};
use crate::human::HandoffState;
use crate::investigation::{Ending, Opened, Scope};
use crate::value::{Map, Value};
use crate::workflow::{FactId, ToolId, Workflow};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// The instances of one declared fact.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FactInstances {
    /// A fact held once per session (the verified customer).
    Single(Option<Value>),
    /// A keyed fact (orders by id). Shared, so rules can read all instances
    /// (`facts.order`) as a map without copying it.
    Keyed(Arc<Map>),
}

/// An allowed call whose result has not been recorded yet.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PendingCall {
    pub tool: ToolId,
    pub args: serde_json::Value,
    /// Amounts this call holds against aggregates: (aggregate, key, amount).
    pub reservations: Vec<(usize, Option<String>, f64)>,
    /// Facts a call allowed after this one cleared (`clears`): this call's
    /// result establishes and updates none of them.
    pub stale: Vec<FactId>,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub(crate) struct AggregateState {
    pub total: f64,
    pub by_key: BTreeMap<String, f64>,
}

/// The state of one session under one workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionState {
    pub(crate) facts: Vec<FactInstances>,
    pub(crate) fact_count: usize,
    pub(crate) pending: BTreeMap<CallId, PendingCall>,
    pub(crate) blocked_calls: i64,
    pub(crate) allowed_calls: i64,
    pub(crate) escalations: i64,
    pub(crate) calls_by_tool: BTreeMap<String, i64>,
    pub(crate) aggregates: Vec<AggregateState>,
    pub(crate) history: VecDeque<Arc<HistoryEntry>>,
    /// For an investigation: its concern and tool subset.
    pub(crate) scope: Option<Scope>,
    /// For an investigation: how it ended (`None` while it runs).
    pub(crate) ending: Option<Ending>,
    /// For a parent: the investigations it opened, in order.
    pub(crate) investigations: Vec<Opened>,
    /// The handoffs its escalations opened, oldest first, and where each stands.
    pub(crate) handoffs: Vec<HandoffState>,
}

impl SessionState {
    /// The empty state of a new session.
    pub fn new(workflow: &Workflow) -> SessionState {
        SessionState {
            facts: workflow
                .facts
                .iter()
                .map(|f| {
                    if f.key_field.is_some() {
                        FactInstances::Keyed(Arc::default())
                    } else {
                        FactInstances::Single(None)
                    }
                })
                .collect(),
            fact_count: 0,
            pending: BTreeMap::new(),
            blocked_calls: 0,
            allowed_calls: 0,
            escalations: 0,
            calls_by_tool: BTreeMap::new(),
            aggregates: vec![AggregateState::default(); workflow.aggregates.len()],
            history: VecDeque::new(),
            scope: None,
            ending: None,
            investigations: Vec::new(),
            handoffs: Vec::new(),
        }
    }

    /// The instance of a fact: `key` for keyed facts, `None` for single ones.
    pub fn fact(&self, fact: FactId, key: Option<&str>) -> Option<&Value> {
        match (self.facts.get(fact.0)?, key) {
            (FactInstances::Single(value), None) => value.as_ref(),
            (FactInstances::Keyed(map), Some(key)) => map.get(key),
            _ => None,
        }
    }

    /// Every fact instance, as (fact name, key, fields), in a stable order.
    pub fn facts<'a>(&'a self, workflow: &'a Workflow) -> Vec<(&'a str, Option<&'a str>, &'a Value)> {
        let mut out = Vec::new();
        for (decl, instances) in workflow.facts.iter().zip(&self.facts) {
            match instances {
                FactInstances::Single(Some(value)) => out.push((decl.name.as_ref(), None, value)),
                FactInstances::Single(None) => {}
                FactInstances::Keyed(map) => {
                    out.extend(map.iter().map(|(k, v)| (decl.name.as_ref(), Some(k.as_ref()), v)));
                }
            }
        }
        out
    }

    /// The handoffs the session's escalations opened, oldest first.
    pub fn handoffs(&self) -> &[HandoffState] {
        &self.handoffs
    }
    /// The handoff the escalation of call `call` opened.
    pub fn handoff(&self, call: &CallId) -> Option<&HandoffState> {
        self.handoffs.iter().find(|h| &h.call == call)
    }
    /// Calls blocked so far (including withheld results).
    pub fn blocked_calls(&self) -> i64 {
        self.blocked_calls
    }
    /// Calls allowed so far.
    pub fn allowed_calls(&self) -> i64 {
        self.allowed_calls
    }
    /// Calls escalated so far.
    pub fn escalations(&self) -> i64 {
        self.escalations
    }
    /// Recorded results per tool, as a CEL map.
    /// Built when a rule reads it (rarely), not on every recorded result.
    pub(crate) fn calls_by_tool(&self) -> Value {
        Value::Map(Arc::new(self.calls_by_tool.iter().map(|(k, v)| (Arc::from(k.as_str()), Value::Int(*v))).collect()))
    }
    /// Calls allowed whose results are not recorded yet.
    pub fn pending_calls(&self) -> impl Iterator<Item = &CallId> {
        self.pending.keys()
    }
    /// Recent history, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.history.iter().map(|entry| entry.as_ref())
    }
    /// The session-wide total of an aggregate (reserved plus recorded).
    pub fn aggregate_total(&self, index: usize) -> f64 {
        self.aggregates.get(index).map_or(0.0, |a| a.total)
    }
    /// An aggregate's total for one key.
    pub fn aggregate_by(&self, index: usize, key: &str) -> f64 {
        self.aggregates.get(index).and_then(|a| a.by_key.get(key)).copied().unwrap_or(0.0)
    }

    pub(crate) fn push_history(&mut self, entry: HistoryEntry, limit: usize) {
        if limit == 0 {
            return;
        }
        while self.history.len() >= limit {
            self.history.pop_front();
        }
        self.history.push_back(Arc::new(entry));
    }

    pub(crate) fn count_result(&mut self, tool: &str) {
        match self.calls_by_tool.get_mut(tool) {
            Some(count) => *count += 1,
            None => {
                self.calls_by_tool.insert(tool.to_owned(), 1);
            }
        }
    }
}

// What the session knows of its place in a case (see `investigation`).
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
                FactInstances::Single(Some(value)) => Some((decl.name.to_string(), value.to_json())),
                _ => None,
            })
            .collect()
    }
}
