//! The in-memory backend (`Engine.in_memory()`): the same decision core,
//! with sessions held in this process only. Nothing is journaled, audited or
//! kept: it is for tests and for measuring what the binding itself costs
//! (durable off). A re-sent call id still gets its first decision back.

use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tollgate_core::{CallId, Decision, Event, SessionState, ToolCall, ToolOutcome, Workflow, apply, decide};

/// A session held in memory.
struct Session {
    workflow: Arc<Workflow>,
    workflow_hash: String,
    state: SessionState,
    /// Every call decided, by id: its tool, arguments and decision.
    decided: HashMap<String, (String, Json, Decision)>,
    /// Every result recorded, by call id: how it ended, and the result.
    results: HashMap<String, (&'static str, Json)>,
}

/// Sessions and workflows in memory.
#[derive(Default)]
pub(crate) struct Memory {
    workflows: Mutex<HashMap<String, Arc<Workflow>>>,
    sessions: Mutex<HashMap<String, Session>>,
}

/// What the in-memory backend refuses.
pub(crate) enum Refusal {
    NotFound(String),
    Conflict(String),
}

impl Memory {
    pub(crate) fn add_workflow(&self, hash: &str, workflow: Arc<Workflow>) {
        self.workflows.lock().unwrap_or_else(PoisonError::into_inner).insert(hash.to_owned(), workflow);
    }

    pub(crate) fn create_session(&self, hash: &str, id: &str) -> Result<Arc<Workflow>, Refusal> {
        let workflow = self
            .workflows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(hash)
            .cloned()
            .ok_or_else(|| Refusal::NotFound(format!("no stored workflow with hash '{hash}'")))?;
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.contains_key(id) {
            return Err(Refusal::Conflict(format!("session '{id}' exists already")));
        }
        let state = SessionState::new(&workflow);
        let session = Session {
            workflow: Arc::clone(&workflow),
            workflow_hash: hash.to_owned(),
            state,
            decided: HashMap::new(),
            results: HashMap::new(),
        };
        sessions.insert(id.to_owned(), session);
        Ok(workflow)
    }

    /// The workflow of session `id`, with its hash.
    pub(crate) fn workflow_of(&self, id: &str) -> Option<(Arc<Workflow>, String)> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.get(id).map(|s| (Arc::clone(&s.workflow), s.workflow_hash.clone()))
    }

    /// Decides `call` and folds the decision in; a call id decided before
    /// gets its decision back (`true`), or a block if the call differs.
    pub(crate) fn decide(&self, session: &str, call: &ToolCall) -> Result<(Decision, bool), Refusal> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = sessions.get_mut(session).ok_or_else(|| Refusal::NotFound(format!("no session '{session}'")))?;
        if let Some((tool, args, decision)) = entry.decided.get(call.id.as_str()) {
            if *tool == call.tool && *args == call.args {
                return Ok((decision.clone(), true));
            }
            return Err(Refusal::Conflict(format!(
                "call id {} was already used for another call; send this one with a new id",
                call.id
            )));
        }
        let mut decision = decide(&entry.workflow, &entry.state, call);
        if let Decision::Allow(allowed) = &mut decision
            && let Some(key) = &mut allowed.idempotency_key
        {
            *key = format!("{session}/{key}");
        }
        apply(&entry.workflow, &mut entry.state, Event::Decided { call, decision: &decision });
        entry.decided.insert(call.id.to_string(), (call.tool.clone(), call.args.clone(), decision.clone()));
        Ok((decision, false))
    }

    /// Records a result; returns the effects (JSON) and whether anything changed.
    pub(crate) fn record(
        &self,
        session: &str,
        call_id: &str,
        result: &Json,
        outcome: ToolOutcome,
    ) -> Result<Vec<Json>, Refusal> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = sessions.get_mut(session).ok_or_else(|| Refusal::NotFound(format!("no session '{session}'")))?;
        let call = CallId::new(call_id);
        let effects = apply(&entry.workflow, &mut entry.state, Event::ResultRecorded { call: &call, result, outcome });
        let ended = effects.iter().find_map(|effect| match effect {
            tollgate_core::Effect::ResultWithheld { .. } => Some("withheld"),
            tollgate_core::Effect::CallFailed { .. } => Some("failed"),
            _ => None,
        });
        let allowed = matches!(entry.decided.get(call_id), Some((_, _, Decision::Allow(_))));
        if allowed && !entry.results.contains_key(call_id) {
            entry.results.insert(call_id.to_owned(), (ended.unwrap_or("succeeded"), result.clone()));
        }
        Ok(effects.iter().map(tollgate_protocol::effect_json).collect())
    }

    /// The calls allowed whose results were never recorded: (id, tool, key).
    pub(crate) fn in_doubt(&self, session: &str) -> Result<Vec<(String, String, Option<String>)>, Refusal> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = sessions.get(session).ok_or_else(|| Refusal::NotFound(format!("no session '{session}'")))?;
        let mut calls: Vec<(String, String, Option<String>)> = entry
            .state
            .pending_calls()
            .filter_map(|id| {
                let (tool, _, decision) = entry.decided.get(id.as_str())?;
                let key = match decision {
                    Decision::Allow(allowed) => allowed.idempotency_key.clone(),
                    _ => None,
                };
                Some((id.to_string(), tool.clone(), key))
            })
            .collect();
        calls.sort();
        Ok(calls)
    }
}

impl Memory {
    /// The result recorded for `call_id`: how it ended and the result.
    pub(crate) fn recorded_result(
        &self,
        session: &str,
        call_id: &str,
    ) -> Result<Option<(&'static str, Json)>, Refusal> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = sessions.get(session).ok_or_else(|| Refusal::NotFound(format!("no session '{session}'")))?;
        Ok(entry.results.get(call_id).cloned())
    }
}
