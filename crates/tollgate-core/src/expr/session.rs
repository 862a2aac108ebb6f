//! What a rule reads of the session it is evaluated in, defined here so the
//! evaluator does not depend on how session state is stored: the session
//! state (with its case) implements [`Session`] from above.
//!
//! The evaluator is generic over the implementation, so every read is a
//! direct, inlinable call: no dynamic dispatch on the decision path.

use crate::value::{Map, Value};
use std::sync::Arc;

/// The session data a rule can read: counters, facts by declaration index,
/// aggregates by declaration index, and the other sessions of its case.
pub(crate) trait Session {
    /// Calls blocked so far (`session.blocked_calls`).
    fn blocked_calls(&self) -> i64;
    /// Calls allowed so far (`session.allowed_calls`).
    fn allowed_calls(&self) -> i64;
    /// Calls escalated so far (`session.escalations`).
    fn escalations(&self) -> i64;
    /// Recorded results per tool as a map `tool -> count` (`session.calls`).
    fn calls_by_tool(&self) -> Value;
    /// The instances of the fact declared at `id`; `None` if there is none.
    fn fact(&self, id: usize) -> Option<Fact<'_>>;
    /// The session-wide total of the aggregate declared at `index`.
    fn aggregate_total(&self, index: usize) -> f64;
    /// The session's total of the aggregate declared at `index` for `key`.
    fn aggregate_by(&self, index: usize, key: &str) -> f64;
    /// The total of aggregate `index` over the other sessions of the case
    /// (`case.<name>` adds this session's own).
    fn case_total(&self, index: usize) -> f64;
    /// The total of aggregate `index` for `key` over the other sessions of
    /// the case.
    fn case_by(&self, index: usize, key: &str) -> f64;
}

/// The instances of one declared fact, as a rule reads them.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fact<'a> {
    /// A fact held once per session, if it is established.
    Single(Option<&'a Value>),
    /// A keyed fact's instances by key (shared, so reading them all as a map
    /// copies nothing).
    Keyed(&'a Arc<Map>),
}

/// No session at all: no facts, counters at zero, no case. What a rule
/// evaluated on its own reads ([`super::evaluate_standalone`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NoSession;

impl Session for NoSession {
    fn blocked_calls(&self) -> i64 {
        0
    }
    fn allowed_calls(&self) -> i64 {
        0
    }
    fn escalations(&self) -> i64 {
        0
    }
    fn calls_by_tool(&self) -> Value {
        Value::Map(Arc::default())
    }
    fn fact(&self, _id: usize) -> Option<Fact<'_>> {
        None
    }
    fn aggregate_total(&self, _index: usize) -> f64 {
        0.0
    }
    fn aggregate_by(&self, _index: usize, _key: &str) -> f64 {
        0.0
    }
    fn case_total(&self, _index: usize) -> f64 {
        0.0
    }
    fn case_by(&self, _index: usize, _key: &str) -> f64 {
        0.0
    }
}
