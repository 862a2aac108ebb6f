//! `tollgate._native.Engine`: the engine over an SQLite file or a
//! PostgreSQL URL (or, `in_memory`, the core alone), driven from Python.
//!
//! Each engine owns a small tokio runtime; every call blocks on it with the
//! GIL released, so Python threads deciding on different sessions run in
//! parallel and share the engine's group commit. All that is stored goes
//! through `tollgate_engine` (journal, audit, handoffs), so `tollgate
//! sessions`, `tollgate audit verify` and the desk read what Python wrote.

use crate::convert::{to_json, to_py};
use crate::decision::Decision;
use crate::errors::{BadRequest, Conflict, NotFound, from_engine, kind_name};
use crate::memory::{Memory, Refusal};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::{Value as Json, json};
use std::sync::Arc;
use std::time::Duration;
use tollgate_core::human::HumanAction;
use tollgate_core::{ToolCall, ToolOutcome};
use tollgate_engine::journal::Record;
use tollgate_engine::{AuditKey, Concern, Handoff, HandoffFilter, SessionInfo, WorkflowHandle, handoff_id};

enum Backend {
    Durable { engine: Arc<tollgate_engine::Engine>, runtime: tokio::runtime::Runtime },
    Memory(Memory),
}

/// The engine.
#[pyclass(frozen, module = "tollgate._native")]
pub struct Engine {
    backend: Backend,
    tenant: String,
}

fn refusal(error: Refusal) -> PyErr {
    match error {
        Refusal::NotFound(message) => NotFound::new_err(message),
        Refusal::Conflict(message) => Conflict::new_err(message),
    }
}

fn in_memory_lacks(what: &str) -> PyErr {
    BadRequest::new_err(format!("an in-memory engine keeps no {what}; open one over a store"))
}

fn session_json(info: &SessionInfo) -> Json {
    json!({
        "id": info.id,
        "workflow": info.workflow_name,
        "workflow_version": info.workflow_version,
        "workflow_hash": info.workflow_hash,
        "parent": info.parent_id,
        "created_ms": info.created_ms,
        "journal_entries": info.last_seq,
        "tenant": info.tenant,
    })
}

fn handoff_json(handoff: &Handoff) -> Json {
    json!({
        "id": handoff.id,
        "session": handoff.session,
        "call_id": handoff.call_id,
        "tool": handoff.tool,
        "status": handoff.status,
        "urgency": handoff.urgency,
        "customer_id": handoff.customer_id,
        "claimed_by": handoff.claimed_by,
        "consumed_by": handoff.consumed_by,
        "created_ms": handoff.created_ms,
        "updated_ms": handoff.updated_ms,
        "expires_ms": handoff.expires_ms,
        "body": handoff.body,
    })
}

/// The handoff a decision opened, if any.
fn opened_handoff(session: &str, call: &str, decision: &tollgate_core::Decision) -> Option<String> {
    let opens = match decision {
        tollgate_core::Decision::Escalate(_) => true,
        tollgate_core::Decision::Allow(allowed) => allowed.handoff.is_some(),
        tollgate_core::Decision::Block(_) => false,
    };
    opens.then(|| handoff_id(session, call))
}

impl Engine {
    fn durable(&self) -> Option<(&tollgate_engine::Engine, &tokio::runtime::Runtime)> {
        match &self.backend {
            Backend::Durable { engine, runtime } => Some((engine, runtime)),
            Backend::Memory(_) => None,
        }
    }

    /// Runs `job` on the durable engine as this tenant, with the GIL
    /// released; an in-memory engine refuses it (it keeps no `what`).
    fn run<T, F>(&self, py: Python<'_>, what: &str, job: F) -> PyResult<T>
    where
        T: Send,
        F: for<'e> AsyncFnOnce(
                &'e tollgate_engine::Engine,
                tollgate_engine::Tenant<'e>,
            ) -> Result<T, tollgate_engine::Error>
            + Send,
    {
        let (engine, runtime) = self.durable().ok_or_else(|| in_memory_lacks(what))?;
        let tenant = self.tenant.as_str();
        py.detach(|| runtime.block_on(job(engine, engine.for_tenant(tenant)))).map_err(|e| from_engine(&e))
    }
}

#[pymethods]
impl Engine {
    /// An engine over `db` (an SQLite file, created if missing, or a
    /// `postgres://` URL), or `None` for an in-memory engine (nothing kept).
    /// `audit_key_hex` signs the audit head, as `$TOLLGATE_AUDIT_KEY_FILE`
    /// does for the CLI.
    #[new]
    #[pyo3(signature = (db, tenant = "default".to_owned(), audit_key_hex = None))]
    fn new(py: Python<'_>, db: Option<String>, tenant: String, audit_key_hex: Option<String>) -> PyResult<Engine> {
        let Some(db) = db else {
            return Ok(Engine { backend: Backend::Memory(Memory::default()), tenant });
        };
        let key = audit_key_hex.map(|hex| AuditKey::from_hex(hex.trim())).transpose().map_err(|e| from_engine(&e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tollgate")
            .enable_all()
            .build()
            .map_err(|e| crate::errors::Unavailable::new_err(format!("cannot start the engine's runtime: {e}")))?;
        let engine = py.detach(|| runtime.block_on(tollgate_engine::Engine::open(&db))).map_err(|e| from_engine(&e))?;
        let engine = match key {
            Some(key) => engine.with_audit_key(key),
            None => engine,
        };
        Ok(Engine { backend: Backend::Durable { engine: Arc::new(engine), runtime }, tenant })
    }

    /// `sqlite`, `postgres` or `memory`.
    #[getter]
    fn backend(&self) -> &'static str {
        match &self.backend {
            Backend::Durable { engine, .. } => engine.backend(),
            Backend::Memory(_) => "memory",
        }
    }

    /// The tenant this engine acts for.
    #[getter]
    fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The engine's clock, ms since the Unix epoch.
    fn now_ms(&self) -> i64 {
        match &self.backend {
            Backend::Durable { engine, .. } => engine.now_ms(),
            Backend::Memory(_) => tollgate_engine::Clock::System.now_ms(),
        }
    }

    /// Compiles and stores a workflow; returns (hash, name, version).
    fn register_workflow(&self, py: Python<'_>, text: String, file: String) -> PyResult<(String, String, i64)> {
        let handle = match &self.backend {
            Backend::Durable { engine, runtime } => {
                py.detach(|| runtime.block_on(engine.register_workflow(&text, &file))).map_err(|e| from_engine(&e))?
            }
            Backend::Memory(memory) => {
                let workflow = tollgate_core::compile(&text, &file).map_err(|problems| {
                    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    BadRequest::new_err(format!("the workflow does not compile:\n{}", lines.join("\n")))
                })?;
                let hash = tollgate_engine::workflow_hash(&text);
                let workflow = Arc::new(workflow);
                memory.add_workflow(&hash, Arc::clone(&workflow));
                WorkflowHandle { hash, workflow }
            }
        };
        Ok((handle.hash.clone(), handle.workflow.name().to_owned(), i64::from(handle.workflow.version())))
    }

    /// Creates session `id` under the workflow stored as `workflow_hash`
    /// (an investigation of `parent`, if given); returns the session.
    #[pyo3(signature = (workflow_hash, id, parent = None))]
    fn create_session<'py>(
        &self,
        py: Python<'py>,
        workflow_hash: String,
        id: String,
        parent: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let info = match &self.backend {
            Backend::Memory(memory) => {
                let workflow = memory.create_session(&workflow_hash, &id).map_err(refusal)?;
                json!({"id": id, "workflow": workflow.name(), "workflow_version": workflow.version(),
                       "workflow_hash": workflow_hash, "parent": parent, "journal_entries": 0, "tenant": self.tenant})
            }
            Backend::Durable { .. } => {
                let info = self.run(py, "sessions", async |engine, t| {
                    let workflow =
                        WorkflowHandle { workflow: engine.workflow(&workflow_hash).await?, hash: workflow_hash };
                    t.create_session(&workflow, &id, parent.as_deref()).await
                })?;
                session_json(&info)
            }
        };
        to_py(py, &info)
    }

    /// Session `id` of this tenant, or None.
    fn session<'py>(&self, py: Python<'py>, id: String) -> PyResult<Option<Bound<'py, PyAny>>> {
        let info = match &self.backend {
            Backend::Memory(memory) => memory.workflow_of(&id).map(|(workflow, hash)| {
                json!({"id": id, "workflow": workflow.name(), "workflow_version": workflow.version(),
                       "workflow_hash": hash, "tenant": self.tenant})
            }),
            Backend::Durable { .. } => {
                self.run(py, "sessions", async |_, t| t.session(&id).await)?.as_ref().map(session_json)
            }
        };
        info.map(|info| to_py(py, &info)).transpose()
    }

    /// Decides a call, durably: the decision is on disk before this returns.
    /// Never raises for the engine's failures: those are blocks at stage
    /// `error` carrying the exception (`Decision.error`).
    #[pyo3(signature = (session, call_id, tool, args, summary = None))]
    fn decide(
        &self,
        py: Python<'_>,
        session: String,
        call_id: String,
        tool: String,
        args: &Bound<'_, PyAny>,
        summary: Option<String>,
    ) -> Decision {
        let args = match to_json(args) {
            Ok(Json::Object(args)) => Json::Object(args),
            Ok(_) => {
                return Decision::failed(call_id, tool, "bad_request", "a call's args must be an object".to_owned());
            }
            Err(error) => return Decision::failed(call_id, tool, "bad_request", error.value(py).to_string()),
        };
        let mut call = ToolCall::new(call_id.as_str(), tool.as_str(), args);
        if let Some(summary) = summary {
            call = call.with_summary(summary);
        }
        let decided = match &self.backend {
            Backend::Memory(memory) => memory.decide(&session, &call).map_err(|error| match error {
                Refusal::NotFound(message) => ("not_found", message),
                Refusal::Conflict(message) => ("conflict", message),
            }),
            Backend::Durable { engine, runtime } => {
                let tenant = engine.for_tenant(&self.tenant);
                py.detach(|| runtime.block_on(tenant.decide(&session, &call)))
                    .map(|decided| (decided.decision, decided.replayed))
                    .map_err(|error| (kind_name(error.kind()), error.to_string()))
            }
        };
        match decided {
            Ok((decision, replayed)) => {
                let handoff = opened_handoff(&session, &call_id, &decision);
                Decision::decided(call_id, tool, decision, replayed, handoff)
            }
            Err((kind, message)) => Decision::failed(call_id, tool, kind, message),
        }
    }

    /// Records an allowed call's result (or, with `error`, its failure);
    /// returns `{recorded, effects, note}`.
    #[pyo3(signature = (session, call_id, result, error = None))]
    fn record<'py>(
        &self,
        py: Python<'py>,
        session: String,
        call_id: String,
        result: &Bound<'py, PyAny>,
        error: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (value, outcome) = match error {
            Some(error) => (Json::String(error), ToolOutcome::Failed),
            None => (to_json(result)?, ToolOutcome::Succeeded),
        };
        let recorded = match &self.backend {
            Backend::Memory(memory) => {
                let effects = memory.record(&session, &call_id, &value, outcome).map_err(refusal)?;
                json!({"recorded": true, "effects": effects, "note": null})
            }
            Backend::Durable { .. } => {
                let recorded =
                    self.run(py, "results", async |_, t| t.record_result(&session, &call_id, &value, outcome).await)?;
                let effects: Vec<Json> = recorded.effects.iter().map(tollgate_protocol::effect_json).collect();
                json!({"recorded": recorded.recorded, "effects": effects, "note": recorded.note})
            }
        };
        to_py(py, &recorded)
    }

    /// The calls of `session` allowed whose results were never recorded,
    /// oldest first: `[{call_id, tool, idempotency_key}]`.
    fn in_doubt<'py>(&self, py: Python<'py>, session: String) -> PyResult<Bound<'py, PyAny>> {
        let calls: Vec<Json> = match &self.backend {
            Backend::Memory(memory) => memory
                .in_doubt(&session)
                .map_err(refusal)?
                .into_iter()
                .map(|(call_id, tool, key)| json!({"call_id": call_id, "tool": tool, "idempotency_key": key}))
                .collect(),
            Backend::Durable { .. } => self
                .run(py, "sessions", async |_, t| t.resume(&session).await)?
                .in_doubt
                .iter()
                .map(|d| json!({"call_id": d.call_id, "tool": d.tool, "idempotency_key": d.idempotency_key}))
                .collect(),
        };
        to_py(py, &Json::Array(calls))
    }

    /// The result recorded for `call_id`, if one was: `{outcome, result}`,
    /// the outcome `succeeded`, `failed`, `withheld` (a result check failed:
    /// never show it to the agent) or `unknown` (too long ago for the
    /// session's history to say whether it was withheld: treat as withheld).
    /// For a call re-sent after a crash or a graph resumed from a
    /// checkpoint: a call whose result is recorded is not run again.
    fn recorded_result<'py>(
        &self,
        py: Python<'py>,
        session: String,
        call_id: String,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let found = match &self.backend {
            Backend::Memory(memory) => memory.recorded_result(&session, &call_id).map_err(refusal)?,
            Backend::Durable { .. } => self.run(py, "results", async |_, t| {
                let journal = t.journal(&session).await?;
                let Some(result) = journal.into_iter().rev().find_map(|entry| match entry.record {
                    Record::Result(result) if result.call == call_id => Some(result),
                    _ => None,
                }) else {
                    return Ok(None);
                };
                let (_, state) = t.state(&session).await?;
                let ended = state
                    .history()
                    .filter(|h| h.call.as_str() == call_id && matches!(h.event, "result" | "failed" | "withheld"))
                    .last()
                    .map_or("unknown", |h| if h.event == "result" { "succeeded" } else { h.event });
                Ok(Some((ended, result.result.unwrap_or(Json::Null))))
            })?,
        };
        found.map(|(outcome, result)| to_py(py, &json!({"outcome": outcome, "result": result}))).transpose()
    }

    /// Opens one investigation per concern (`[{id, concern, tools?}]`);
    /// returns `[{concern_id, session, concern}]`.
    fn open_investigations<'py>(
        &self,
        py: Python<'py>,
        parent: String,
        concerns: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let concerns: Vec<tollgate_protocol::api::Concern> = serde_json::from_value(to_json(concerns)?)
            .map_err(|e| BadRequest::new_err(format!("concerns are a list of {{id, concern, tools?}}: {e}")))?;
        let concerns: Vec<Concern> =
            concerns.into_iter().map(|c| Concern { id: c.id, concern: c.concern, tools: c.tools }).collect();
        let opened = self.run(py, "investigations", async |_, t| t.open_investigations(&parent, &concerns).await)?;
        let opened: Vec<Json> = opened
            .iter()
            .map(|o| json!({"concern_id": o.concern_id, "session": o.session, "concern": o.concern}))
            .collect();
        to_py(py, &Json::Array(opened))
    }

    /// Ends an investigation with its outcome.
    fn conclude(&self, py: Python<'_>, session: String, outcome: String) -> PyResult<()> {
        self.run(py, "investigations", async |_, t| t.conclude(&session, &outcome).await)
    }

    /// Joins a parent's ended investigations: findings and, if one
    /// escalated, the joined handoff.
    fn join<'py>(&self, py: Python<'py>, parent: String) -> PyResult<Bound<'py, PyAny>> {
        let joined = self.run(py, "investigations", async |_, t| t.join(&parent).await)?;
        to_py(py, &tollgate_protocol::join_json(&joined))
    }

    /// Handoff `id` of this tenant, or None.
    fn handoff<'py>(&self, py: Python<'py>, id: String) -> PyResult<Option<Bound<'py, PyAny>>> {
        let handoff = self.run(py, "handoffs", async |_, t| t.handoff(&id).await)?;
        handoff.as_ref().map(|h| to_py(py, &handoff_json(h))).transpose()
    }

    /// This tenant's handoffs of the given statuses (all if empty), most
    /// urgent first, at most `limit`.
    #[pyo3(signature = (statuses = Vec::new(), limit = 100))]
    fn handoffs<'py>(&self, py: Python<'py>, statuses: Vec<String>, limit: i64) -> PyResult<Bound<'py, PyList>> {
        let filter = HandoffFilter { statuses, since_ms: None, limit: limit.clamp(1, 1_000) };
        let handoffs = self.run(py, "handoffs", async |_, t| t.handoffs(&filter).await)?;
        let list = PyList::empty(py);
        for handoff in &handoffs {
            list.append(to_py(py, &handoff_json(handoff))?)?;
        }
        Ok(list)
    }

    /// Waits until handoff `id` is settled or `timeout_seconds` pass, and
    /// returns it as it is then. This engine's changes wake it at once;
    /// another process's are seen within `poll_seconds`.
    #[pyo3(signature = (id, timeout_seconds, poll_seconds = 0.25))]
    fn wait_for_handoff<'py>(
        &self,
        py: Python<'py>,
        id: String,
        timeout_seconds: f64,
        poll_seconds: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let seconds = |s: f64| Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::from_secs(86_400));
        let (timeout, poll) = (seconds(timeout_seconds), seconds(poll_seconds.max(0.01)));
        let handoff = self.run(py, "handoffs", async |_, t| t.wait_for_handoff(&id, timeout, poll).await)?;
        to_py(py, &handoff_json(&handoff))
    }

    /// A reviewer's action on handoff `id`: `claim`, `release`, `approve`
    /// (`expires_in_seconds`), `deny` (`text`: the reason) or `resolve`
    /// (`text`: the note). Returns the handoff after it.
    #[pyo3(signature = (id, action, reviewer, text = None, expires_in_seconds = None))]
    fn act<'py>(
        &self,
        py: Python<'py>,
        id: String,
        action: &str,
        reviewer: String,
        text: Option<String>,
        expires_in_seconds: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let action = match action {
            "claim" => HumanAction::Claim { reviewer },
            "release" => HumanAction::Release { reviewer },
            "approve" => {
                let seconds = expires_in_seconds.unwrap_or(3_600);
                let ms = i64::try_from(seconds.saturating_mul(1_000)).unwrap_or(i64::MAX);
                HumanAction::Approve { reviewer, expires_ms: self.now_ms().saturating_add(ms) }
            }
            "deny" => HumanAction::Deny { reviewer, reason: text.unwrap_or_default() },
            "resolve" => HumanAction::Resolve { reviewer, note: text.unwrap_or_default() },
            other => return Err(BadRequest::new_err(format!("no handoff action {other:?}"))),
        };
        let handoff = self.run(py, "handoffs", async |_, t| t.act(&id, action).await)?;
        to_py(py, &handoff_json(&handoff))
    }

    /// Checks this tenant's view of the audit log: `{intact, records,
    /// problem}`.
    fn verify_audit<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let report = self.run(py, "audit log", async |_, t| t.verify_audit().await)?;
        let dict = PyDict::new(py);
        dict.set_item("intact", report.problem.is_none())?;
        dict.set_item("records", report.records)?;
        dict.set_item("head_seq", report.head.seq)?;
        let problem =
            report.problem.as_ref().map(|p| json!({"seq": p.seq, "session": p.session_id, "message": p.message}));
        dict.set_item("problem", to_py(py, &problem.unwrap_or(Json::Null))?)?;
        Ok(dict)
    }

    /// For the benchmark (`bench/bench_decide.py`): decides `count` calls of
    /// `tool` with `args` on `session` exactly as `decide` does, but from
    /// Rust (call ids `{prefix}{i}`), and returns each call's time in ns,
    /// so Python's own calls can be set beside the same work without the
    /// binding.
    fn bench_decide(
        &self,
        py: Python<'_>,
        session: String,
        tool: String,
        args: &Bound<'_, PyAny>,
        count: usize,
        prefix: String,
    ) -> PyResult<Vec<u64>> {
        let args = to_json(args)?;
        let mut times = Vec::with_capacity(count);
        for index in 0..count {
            let started = std::time::Instant::now();
            let call = ToolCall::new(format!("{prefix}{index}"), tool.as_str(), args.clone());
            let decided = match &self.backend {
                Backend::Memory(memory) => memory.decide(&session, &call).map(|(d, _)| d).map_err(refusal)?,
                Backend::Durable { engine, runtime } => {
                    let tenant = engine.for_tenant(&self.tenant);
                    py.detach(|| runtime.block_on(tenant.decide(&session, &call)))
                        .map_err(|e| from_engine(&e))?
                        .decision
                }
            };
            std::hint::black_box(&decided);
            times.push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
        Ok(times)
    }

    /// Closes the store (a durable engine); calls after this fail.
    fn close(&self, py: Python<'_>) {
        if let Some((engine, runtime)) = self.durable() {
            py.detach(|| runtime.block_on(engine.close()));
        }
    }
}
