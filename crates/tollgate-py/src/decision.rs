//! The decision object Python code gets from `decide`: allowed, blocked
//! with reasons, or escalated with its handoff. One type for both backends:
//! the in-process one builds it from the engine's decision, the remote one
//! from the server's answer (`Decision.from_json`), both through the wire
//! type `tollgate.decision/v1`, so the two cannot disagree.
//!
//! A failure to decide (the store unreachable, arguments that are not JSON)
//! is a decision too: a block at stage `error`, rule `tollgate.error.<kind>`,
//! carrying the exception in `error`. Nothing fails open.

use crate::convert::{to_json, to_py};
use crate::errors::{BadRequest, by_kind_name};
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::sync::OnceLock;
use tollgate_core::Verdict;
use tollgate_protocol::Decision as Wire;
use tollgate_protocol::api::CallDecision as WireCall;

/// A reason of a block or an escalation: the rule and its message.
#[pyclass(frozen, module = "tollgate._native", get_all)]
#[derive(Clone)]
pub struct Reason {
    /// The rule's id (`R-AUTH`, `tollgate.handoff.denied`, ...).
    pub rule_id: String,
    /// The rule's message, phrased for the agent to act on.
    pub message: String,
}

#[pymethods]
impl Reason {
    fn __repr__(&self) -> String {
        format!("Reason(rule_id={:?}, message={:?})", self.rule_id, self.message)
    }
}

/// A call's decision.
#[pyclass(frozen, module = "tollgate._native")]
pub struct Decision {
    call_id: String,
    tool: String,
    /// The engine's decision, kept as it came: converted to the wire type
    /// only when a getter needs more than the verdict, so a decision the
    /// caller only tests costs no conversion.
    core: Option<tollgate_core::Decision>,
    converted: OnceLock<Wire>,
    replayed: bool,
    handoff_id: Option<String>,
    /// A failure to decide: the error's kind name and message.
    error: Option<(String, String)>,
}

impl Decision {
    /// The engine's decision of `call_id`.
    pub(crate) fn decided(
        call_id: String,
        tool: String,
        decision: tollgate_core::Decision,
        replayed: bool,
        handoff_id: Option<String>,
    ) -> Decision {
        Decision { call_id, tool, core: Some(decision), converted: OnceLock::new(), replayed, handoff_id, error: None }
    }

    /// A decision already in the wire type.
    fn from_wire(call_id: String, tool: String, wire: Wire, replayed: bool, handoff_id: Option<String>) -> Decision {
        Decision { call_id, tool, core: None, converted: OnceLock::from(wire), replayed, handoff_id, error: None }
    }

    /// The decision in the wire type (`tollgate.decision/v1`).
    fn wire(&self) -> &Wire {
        self.converted.get_or_init(|| match &self.core {
            Some(core) => Wire::from(core),
            // INVARIANT: a decision without `core` is made with `converted` set.
            None => Wire::Block { stage: "error".to_owned(), reasons: Vec::new(), missing: Vec::new() },
        })
    }

    fn verdict_of(&self) -> Verdict {
        match &self.core {
            Some(core) => core.verdict(),
            None => match self.wire() {
                Wire::Allow { .. } => Verdict::Allow,
                Wire::Block { .. } => Verdict::Block,
                Wire::Escalate { .. } => Verdict::Escalate,
            },
        }
    }

    /// The block that stands for a failure to decide.
    pub(crate) fn failed(call_id: String, tool: String, kind: &str, message: String) -> Decision {
        let wire = Wire::Block {
            stage: "error".to_owned(),
            reasons: vec![tollgate_protocol::Reason {
                rule_id: format!("tollgate.error.{kind}"),
                message: format!("the call could not be decided, so it must not run: {message}"),
            }],
            missing: Vec::new(),
        };
        let mut failed = Decision::from_wire(call_id, tool, wire, false, None);
        failed.error = Some((kind.to_owned(), message));
        failed
    }

    fn reasons_wire(&self) -> &[tollgate_protocol::Reason] {
        match self.wire() {
            Wire::Allow { .. } => &[],
            Wire::Block { reasons, .. } | Wire::Escalate { reasons, .. } => reasons,
        }
    }
}

#[pymethods]
impl Decision {
    /// The server's answer to a call (`POST /v1/sessions/{id}/calls`), as a
    /// decision; `tool` is the call's tool. An answer that is not one is a
    /// `BadRequest`.
    #[staticmethod]
    fn from_json(answer: &Bound<'_, PyAny>, tool: String) -> PyResult<Decision> {
        let answer: WireCall = serde_json::from_value(to_json(answer)?)
            .map_err(|e| BadRequest::new_err(format!("the server's answer is not a decision: {e}")))?;
        Ok(Decision::from_wire(answer.call, tool, answer.decision, answer.replayed, answer.handoff))
    }

    /// The block that stands for a failure to decide `call_id` (`kind` as in
    /// `TollgateError.kind`: `unavailable`, `bad_request`, ...).
    #[staticmethod]
    fn failure(call_id: String, tool: String, kind: String, message: String) -> Decision {
        Decision::failed(call_id, tool, &kind, message)
    }

    /// The call's id.
    #[getter]
    fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The call's tool.
    #[getter]
    fn tool(&self) -> &str {
        &self.tool
    }

    /// `allow`, `block` or `escalate`.
    #[getter]
    fn verdict(&self) -> &'static str {
        self.verdict_of().as_str()
    }

    /// Whether the call may run.
    #[getter]
    fn allowed(&self) -> bool {
        self.verdict_of() == Verdict::Allow
    }

    /// Whether the call was refused (a failure to decide included).
    #[getter]
    fn blocked(&self) -> bool {
        self.verdict_of() == Verdict::Block
    }

    /// Whether the call went to a person (it does not run; a handoff opened).
    #[getter]
    fn escalated(&self) -> bool {
        self.verdict_of() == Verdict::Escalate
    }

    /// True if this call id was decided before and this is that decision.
    #[getter]
    fn replayed(&self) -> bool {
        self.replayed
    }

    /// The reasons of a block or an escalation.
    #[getter]
    fn reasons(&self) -> Vec<Reason> {
        self.reasons_wire().iter().map(|r| Reason { rule_id: r.rule_id.clone(), message: r.message.clone() }).collect()
    }

    /// The rule ids of the reasons.
    #[getter]
    fn rule_ids(&self) -> Vec<String> {
        self.reasons_wire().iter().map(|r| r.rule_id.clone()).collect()
    }

    /// A block's stage (`schema`, `gates`, `checks`, `error`, ...).
    #[getter]
    fn stage(&self) -> Option<&str> {
        match self.wire() {
            Wire::Block { stage, .. } => Some(stage),
            _ => None,
        }
    }

    /// What a blocked call is missing, each with the action that provides it.
    #[getter]
    fn missing<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        if let Wire::Block { missing, .. } = self.wire() {
            for item in missing {
                list.append(to_py(py, &serde_json::to_value(item).unwrap_or_default())?)?;
            }
        }
        Ok(list)
    }

    /// The id of the handoff the decision opened (an escalation, or an
    /// allowed handoff tool's call).
    #[getter]
    fn handoff_id(&self) -> Option<&str> {
        self.handoff_id.as_deref()
    }

    /// An allowed side effect's idempotency key: run the tool with it, so a
    /// call re-driven after a crash is not done twice.
    #[getter]
    fn idempotency_key(&self) -> Option<&str> {
        match self.wire() {
            Wire::Allow { idempotency_key, .. } => idempotency_key.as_deref(),
            _ => None,
        }
    }

    /// The call whose escalation a person approved, if this allow rests on it.
    #[getter]
    fn approved_by(&self) -> Option<&str> {
        match self.wire() {
            Wire::Allow { approved_by, .. } => approved_by.as_deref(),
            _ => None,
        }
    }

    /// An escalation's urgency.
    #[getter]
    fn urgency(&self) -> Option<&str> {
        match self.wire() {
            Wire::Escalate { urgency, .. } => Some(urgency),
            _ => None,
        }
    }

    /// An escalation's recommended action.
    #[getter]
    fn recommended_action(&self) -> Option<&str> {
        match self.wire() {
            Wire::Escalate { recommended_action, .. } => Some(recommended_action),
            _ => None,
        }
    }

    /// The handoff compiled for a person (customer, summary, root cause,
    /// recommended action, urgency, facts, timeline), if one was opened.
    #[getter]
    fn handoff<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let handoff = match self.wire() {
            Wire::Escalate { handoff, .. } => Some(handoff),
            Wire::Allow { handoff, .. } => handoff.as_ref(),
            Wire::Block { .. } => None,
        };
        handoff.map(|h| to_py(py, &serde_json::to_value(h).unwrap_or_default())).transpose()
    }

    /// For a failure to decide, the exception it stands for; else None.
    #[getter]
    fn error(&self) -> Option<PyErr> {
        self.error.as_ref().map(|(kind, message)| by_kind_name(kind, message.clone()))
    }

    /// What to tell the agent: empty for an allow; a block's reasons (each
    /// says what to do first); an escalation's reasons and that a person decides.
    #[getter]
    fn message(&self) -> String {
        let reasons: Vec<String> =
            self.reasons_wire().iter().map(|r| format!("{} ({})", r.message, r.rule_id)).collect();
        match self.wire() {
            Wire::Allow { .. } => String::new(),
            // A missing prerequisite's reason already says what to do first.
            Wire::Block { .. } => {
                format!("Tollgate blocked {}: {}. The call did not run.", self.tool, reasons.join("; "))
            }
            Wire::Escalate { .. } => format!(
                "Tollgate escalated {} to a person (handoff {}): {}. The call did not run; a reviewer decides.",
                self.tool,
                self.handoff_id.as_deref().unwrap_or("?"),
                reasons.join("; ")
            ),
        }
    }

    /// The decision as the server answers it: `{call, decision, replayed,
    /// handoff?}` with the decision in `tollgate.decision/v1`.
    fn to_json<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let answer = WireCall {
            call: self.call_id.clone(),
            decision: self.wire().clone(),
            replayed: self.replayed,
            handoff: self.handoff_id.clone(),
        };
        to_py(py, &serde_json::to_value(&answer).unwrap_or_default())
    }

    fn __bool__(&self) -> bool {
        self.allowed()
    }

    fn __repr__(&self) -> String {
        format!(
            "Decision(call_id={:?}, tool={:?}, verdict={:?}, rule_ids={:?})",
            self.call_id,
            self.tool,
            self.verdict(),
            self.rule_ids()
        )
    }
}
