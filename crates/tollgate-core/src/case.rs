//! The case of a session: a parent and the investigations it opened. What
//! a decision knows beyond its own session (the other sessions' aggregate
//! totals, the investigations still running) is a [`Case`], read by the
//! engine under the case's lock and journalled with the decision.
//!
//! A session and its case together are what rules read: [`InCase`] is the
//! view the evaluator's [`Session`] trait asks for, provided from here so
//! that `expr` knows nothing of how session state is stored.

use crate::expr::{Fact, Session};
use crate::state::{AggregateState, FactInstances, SessionState};
use crate::value::Value;
use crate::workflow::Workflow;
use serde_json::json;
use std::collections::BTreeMap;

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

/// A session as its rules read it: its own state and the rest of its case.
/// Two references, copied into each evaluation; every read is a field of
/// one of them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InCase<'a> {
    state: &'a SessionState,
    case: &'a Case,
}

impl<'a> InCase<'a> {
    /// A session in `case`.
    #[inline]
    pub(crate) fn new(state: &'a SessionState, case: &'a Case) -> InCase<'a> {
        InCase { state, case }
    }

    /// A session on its own (or read as if it were: results, fact mappings
    /// and aggregate amounts do not read the case).
    #[inline]
    pub(crate) fn alone(state: &'a SessionState) -> InCase<'a> {
        InCase { state, case: &NO_CASE }
    }
}

// Each read is a field or two; `#[inline]` lets the evaluator (generic over
// `Session`, so compiled wherever it is used) inline them across codegen
// units. Without it `tollgate bench decide` measured about 2% slower.
impl Session for InCase<'_> {
    #[inline]
    fn blocked_calls(&self) -> i64 {
        self.state.blocked_calls
    }
    #[inline]
    fn allowed_calls(&self) -> i64 {
        self.state.allowed_calls
    }
    #[inline]
    fn escalations(&self) -> i64 {
        self.state.escalations
    }
    #[inline]
    fn calls_by_tool(&self) -> Value {
        self.state.calls_by_tool()
    }
    #[inline]
    fn fact(&self, id: usize) -> Option<Fact<'_>> {
        Some(match self.state.facts.get(id)? {
            FactInstances::Single(value) => Fact::Single(value.as_ref()),
            FactInstances::Keyed(instances) => Fact::Keyed(instances),
        })
    }
    #[inline]
    fn aggregate_total(&self, index: usize) -> f64 {
        self.state.aggregate_total(index)
    }
    #[inline]
    fn aggregate_by(&self, index: usize, key: &str) -> f64 {
        self.state.aggregate_by(index, key)
    }
    #[inline]
    fn case_total(&self, index: usize) -> f64 {
        self.case.total(index)
    }
    #[inline]
    fn case_by(&self, index: usize, key: &str) -> f64 {
        self.case.by(index, key)
    }
}
