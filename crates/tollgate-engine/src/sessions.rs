//! Sessions: creating them, loading their state (the engine's cache, else
//! checkpoint plus journal tail), folding a journal, appending a record, and
//! the read-only views (state, replay, resume, the journal).

use crate::journal::{Entry, Record};
use crate::{DEFAULT_TENANT, Engine, Error, WorkflowHandle, check_id};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use tollgate_core::{Decision, Event, Opened, SessionState, Workflow, apply, decide_in_case};
use tollgate_protocol::decision_json;
use tollgate_store::{JournalEntry, NewAudit, NewEntry, NewSession, SessionTx};

/// A session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's id.
    pub id: String,
    /// SHA-256 of the workflow text the session runs under.
    pub workflow_hash: String,
    /// The workflow's name.
    pub workflow_name: String,
    /// The workflow's version.
    pub workflow_version: i64,
    /// The parent session, for investigations.
    pub parent_id: Option<String>,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// The number of the last journal entry (0: none yet).
    pub last_seq: i64,
    /// The tenant it belongs to.
    pub tenant: String,
}

impl From<tollgate_store::SessionInfo> for SessionInfo {
    fn from(row: tollgate_store::SessionInfo) -> SessionInfo {
        SessionInfo {
            id: row.id,
            workflow_hash: row.workflow_hash,
            workflow_name: row.workflow_name,
            workflow_version: row.workflow_version,
            parent_id: row.parent_id,
            created_ms: row.created_ms,
            last_seq: row.last_seq,
            tenant: row.tenant,
        }
    }
}

/// A call that was allowed but whose result was never recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InDoubt {
    /// The call's id.
    pub call_id: String,
    /// The tool.
    pub tool: String,
    /// The key to re-drive it with (side effects only).
    pub idempotency_key: Option<String>,
}

/// Where a session stands, to continue it.
#[derive(Clone, Debug)]
pub struct Resume {
    /// The session.
    pub session: SessionInfo,
    /// Its current state (checkpoint plus journal tail).
    pub state: SessionState,
    /// Its workflow.
    pub workflow: Arc<Workflow>,
    /// Calls allowed whose results were never recorded, oldest first.
    pub in_doubt: Vec<InDoubt>,
}

/// A session's state as this engine last committed it.
pub(crate) struct Cached {
    last_seq: i64,
    checkpoint_seq: i64,
    workflow_hash: String,
    pub(crate) state: SessionState,
}

impl Cached {
    /// Whether this is the state of `row` as stored now: its journal ends
    /// where the cached state does, under the same workflow.
    pub(crate) fn is_current(&self, row: &tollgate_store::SessionInfo) -> bool {
        self.last_seq == row.last_seq && self.workflow_hash == row.workflow_hash
    }
}

/// Sessions kept in the engine's cache at most; beyond, it starts afresh.
pub(crate) const CACHED_SESSIONS_MAX: usize = 10_000;

/// A session loaded under its lock.
pub(crate) struct Loaded {
    pub(crate) workflow: Arc<Workflow>,
    pub(crate) state: SessionState,
    pub(crate) info: tollgate_store::SessionInfo,
    /// The journal entry the checkpoint folds in (0: no checkpoint).
    pub(crate) checkpoint_seq: i64,
}

/// A checkpoint is written once the journal has grown this many entries past
/// the last one, so loading a session folds at most this many (each a
/// decision of a few microseconds) and a step does not rewrite the whole
/// state every time.
pub const CHECKPOINT_EVERY: i64 = 16;

/// Most journal entries one page holds ([`Engine::journal_page`]).
pub const JOURNAL_PAGE_MAX: i64 = 10_000;

/// Whether the entry about to be appended (after `info.last_seq`) should
/// carry a checkpoint.
pub(crate) fn checkpoint_due(info: &tollgate_store::SessionInfo, checkpoint_seq: i64) -> bool {
    info.last_seq + 1 - checkpoint_seq >= CHECKPOINT_EVERY
}

/// A session's state as committed at journal entry `last_seq`.
pub(crate) fn cached(
    info: &tollgate_store::SessionInfo,
    last_seq: i64,
    checkpoint_seq: i64,
    state: SessionState,
) -> Cached {
    Cached { last_seq, checkpoint_seq, workflow_hash: info.workflow_hash.clone(), state }
}

/// Appends one record to `session` (the transaction's current session) with
/// its audit record: named by the record's event, with the record's very
/// body, so everything a session's state is folded from (results included)
/// is in the hash chain. Returns the entry's number.
pub(crate) async fn append(
    tx: &mut SessionTx,
    session: &str,
    record: &Record,
    at_ms: i64,
    checkpoint: Option<&str>,
) -> Result<i64, Error> {
    append_rendered(tx, session, record.render(), at_ms, checkpoint).await
}

/// [`append`] of a record already written out.
pub(crate) async fn append_rendered(
    tx: &mut SessionTx,
    session: &str,
    record: crate::journal::Rendered,
    at_ms: i64,
    checkpoint: Option<&str>,
) -> Result<i64, Error> {
    let audit = NewAudit { kind: record.audit_event, body: record.body.clone(), at_ms };
    let entry = NewEntry { kind: record.kind.as_str().to_owned(), call_id: record.index_key, body: record.body, at_ms };
    Ok(tx.append(session, &[entry], &[audit], checkpoint).await?)
}

/// Folds journal entries into a state, decoding each strictly and
/// re-deciding each recorded call, checking the decision is the one recorded.
pub(crate) fn fold(
    workflow: &Workflow,
    session: &str,
    state: &mut SessionState,
    entries: &[JournalEntry],
) -> Result<(), Error> {
    for stored in entries {
        let entry = Entry::decode(session, stored)?;
        match &entry.record {
            Record::Decision(decided) => {
                let call = decided.call.to_call();
                let case = decided.case(session, entry.seq)?;
                let decision = with_session_key(decide_in_case(workflow, state, &case, &call), session);
                if decision_json(&decision) != decided.decision {
                    return Err(Error::diverged(
                        session,
                        entry.seq,
                        format!("the workflow now decides call {} differently from the journal's record", call.id),
                    ));
                }
                apply(workflow, state, Event::Decided { call: &call, decision: &decision });
            }
            Record::Result(result) => {
                let call = result.call_id();
                let outcome = result.outcome.into();
                let event = match (&result.result_bytes, outcome) {
                    (Some(_), tollgate_core::ToolOutcome::Succeeded) => Event::ResultTooLarge { call: &call },
                    _ => Event::ResultRecorded {
                        call: &call,
                        result: result.result.as_ref().unwrap_or(&Json::Null),
                        outcome,
                    },
                };
                apply(workflow, state, event);
            }
            Record::Opened(_) | Record::Investigations(_) | Record::Concluded(_) => {
                fold_investigation(workflow, state, &entry.record);
            }
            Record::Human(acted) => {
                // Decoding checked the action is whole.
                if let Some(action) = acted.action() {
                    let call = tollgate_core::CallId::new(acted.call.as_str());
                    apply(workflow, state, Event::Human { call: &call, action: &action, now_ms: acted.now_ms });
                }
            }
            // Refused calls (bad or reused ids) and joins never touch the state.
            Record::Refused(_) | Record::Joined(_) => {}
        }
    }
    Ok(())
}

impl Engine {
    /// Starts a session under a registered workflow. A session with a
    /// `parent` is one of its investigations: its id must be
    /// `{parent}:{concern}`, and the parent a session of the same workflow
    /// that is no investigation itself (the case a decision reads, and the
    /// order sessions are locked in, follow from that).
    pub async fn create_session(
        &self,
        workflow: &WorkflowHandle,
        id: &str,
        parent: Option<&str>,
    ) -> Result<SessionInfo, Error> {
        self.create_session_for(DEFAULT_TENANT, workflow, id, parent).await
    }

    /// [`Engine::create_session`] for a tenant: the session, its handoffs and
    /// its investigations belong to it. An investigation's parent must be
    /// the tenant's too.
    pub async fn create_session_for(
        &self,
        tenant: &str,
        workflow: &WorkflowHandle,
        id: &str,
        parent: Option<&str>,
    ) -> Result<SessionInfo, Error> {
        check_id("session", id)?;
        check_id("tenant", tenant)?;
        if let Some(parent) = parent {
            let named = id.rsplit_once(':').is_some_and(|(prefix, concern)| prefix == parent && !concern.is_empty());
            let info = self.store.session(parent).await?;
            let fits = info
                .as_ref()
                .is_some_and(|p| p.parent_id.is_none() && p.workflow_hash == workflow.hash && p.tenant == tenant);
            if !named || !fits {
                return Err(Error::bad_request(format!(
                    "session {id} cannot be an investigation of {parent}: its id must be {parent}:<concern>, \
                     and {parent} a session of the same workflow that is no investigation itself"
                )));
            }
        }
        self.store
            .create_session(&NewSession {
                id: id.to_owned(),
                workflow_hash: workflow.hash.clone(),
                workflow_name: workflow.workflow.name().to_owned(),
                workflow_version: i64::from(workflow.workflow.version()),
                parent_id: parent.map(str::to_owned),
                created_ms: self.clock.now_ms(),
                tenant: tenant.to_owned(),
            })
            .await?;
        self.session(id).await?.ok_or_else(|| Error::no_session(id))
    }

    /// One session, if it exists.
    pub async fn session(&self, id: &str) -> Result<Option<SessionInfo>, Error> {
        Ok(self.store.session(id).await?.map(SessionInfo::from))
    }

    /// Sessions, newest first, at most `limit`.
    pub async fn sessions(&self, limit: i64) -> Result<Vec<SessionInfo>, Error> {
        Ok(self.store.sessions(limit).await?.into_iter().map(SessionInfo::from).collect())
    }

    /// A session's whole journal, in order, each record decoded strictly.
    pub async fn journal(&self, session: &str) -> Result<Vec<Entry>, Error> {
        let stored = self.store.journal(session).await?;
        stored.iter().map(|entry| Entry::decode(session, entry)).collect()
    }

    /// Up to `limit` (1 to 10,000) entries of the session's journal
    /// numbered above `after`, in order: the journal read a page at a time.
    pub async fn journal_page(&self, session: &str, after: i64, limit: i64) -> Result<Vec<Entry>, Error> {
        let stored = self.store.journal_page(session, after.max(0), limit.clamp(1, JOURNAL_PAGE_MAX)).await?;
        stored.iter().map(|entry| Entry::decode(session, entry)).collect()
    }

    /// The session's current state as stored: its checkpoint plus the
    /// journal after it (never the engine's cache), read from one snapshot
    /// without holding up writers.
    pub async fn state(&self, session: &str) -> Result<(Arc<Workflow>, SessionState), Error> {
        let mut tx = self.store.snapshot(session).await?;
        let Loaded { workflow, state, .. } = self.load_locked(&mut tx, session, None).await?;
        drop(tx);
        Ok((workflow, state))
    }

    /// The session's state folded from its whole journal, ignoring the
    /// checkpoint: what the checkpoint must equal.
    pub async fn replay(&self, session: &str) -> Result<(Arc<Workflow>, SessionState), Error> {
        let info = self.store.session(session).await?.ok_or_else(|| Error::no_session(session))?;
        let workflow = self.workflow(&info.workflow_hash).await?;
        let journal = self.store.journal(session).await?;
        let mut state = SessionState::new(&workflow);
        fold(&workflow, session, &mut state, &journal)?;
        Ok((workflow, state))
    }

    /// The session as it stood just before call `call` was decided, and the
    /// call as it was recorded (its arguments and clock): what `tollgate
    /// explain` evaluates the call's rules against. Folded from the journal,
    /// like [`Engine::replay`].
    pub async fn state_before(
        &self,
        session: &str,
        call: &str,
    ) -> Result<(Arc<Workflow>, SessionState, tollgate_core::ToolCall), Error> {
        let info = self.store.session(session).await?.ok_or_else(|| Error::no_session(session))?;
        let workflow = self.workflow(&info.workflow_hash).await?;
        let journal = self.store.journal(session).await?;
        let mut found = None;
        for (index, stored) in journal.iter().enumerate() {
            if stored.call_id.as_deref() == Some(call)
                && let Record::Decision(decided) = Entry::decode(session, stored)?.record
            {
                found = Some((index, decided.call.to_call()));
                break;
            }
        }
        let Some((index, recorded)) = found else {
            return Err(Error::bad_request(format!("session {session} has no decided call {call}")));
        };
        let mut state = SessionState::new(&workflow);
        fold(&workflow, session, &mut state, journal.get(..index).unwrap_or_default())?;
        Ok((workflow, state, recorded))
    }

    /// Where a session stands: its state and the calls in doubt, read from
    /// one snapshot (a resume never waits for, nor holds up, the session's
    /// writers in this process or another).
    pub async fn resume(&self, session: &str) -> Result<Resume, Error> {
        check_id("session", session)?;
        let mut tx = self.store.snapshot(session).await?;
        let Loaded { workflow, state, info, .. } = self.load_locked(&mut tx, session, None).await?;
        let mut in_doubt = Vec::new();
        for call in state.pending_calls() {
            let Some((seq, decided)) = self.find_decision(&mut tx, session, call.as_str()).await? else { continue };
            let idempotency_key = decided.idempotency_key().map(str::to_owned);
            in_doubt.push((seq, InDoubt { call_id: call.to_string(), tool: decided.call.tool, idempotency_key }));
        }
        drop(tx);
        in_doubt.sort_by_key(|(seq, _)| *seq);
        Ok(Resume { session: info.into(), state, workflow, in_doubt: in_doubt.into_iter().map(|(_, d)| d).collect() })
    }

    /// Loads a locked session: its workflow, its state (taken out of the
    /// group's overlay or the engine's cache if `overlay` is given and the
    /// entry is current, else checkpoint plus the journal after it) and its
    /// row. A state taken out is put back into the overlay by the job once it
    /// has appended (or decided not to); if the job or its group fails, the
    /// session is simply loaded from the store next time.
    pub(crate) async fn load_locked(
        &self,
        tx: &mut SessionTx,
        session: &str,
        overlay: Option<&mut HashMap<String, Cached>>,
    ) -> Result<Loaded, Error> {
        let info = tx.info()?.clone();
        let workflow = self.workflow(&info.workflow_hash).await?;
        if let Some(overlay) = overlay {
            let entry = match overlay.remove(session) {
                Some(entry) => Some(entry),
                None => self.sessions.lock().unwrap_or_else(PoisonError::into_inner).remove(session),
            };
            // INVARIANT: the cached state is used only while the stored journal
            // (read under the session's lock) ends where the cache does.
            if let Some(entry) = entry.filter(|e| e.last_seq == info.last_seq && e.workflow_hash == info.workflow_hash)
            {
                return Ok(Loaded { workflow, state: entry.state, info, checkpoint_seq: entry.checkpoint_seq });
            }
        }
        let (state, checkpoint_seq) = load_stored(tx, &workflow, session).await?;
        Ok(Loaded { workflow, state, info, checkpoint_seq })
    }
}

/// A session's state from the store as this transaction sees it: checkpoint
/// plus the journal after it; with the checkpoint's entry number.
pub(crate) async fn load_stored(
    tx: &mut SessionTx,
    workflow: &Workflow,
    session: &str,
) -> Result<(SessionState, i64), Error> {
    let stored = match tx.checkpoint(session).await? {
        Some(checkpoint) => {
            let document: Json = serde_json::from_str(&checkpoint.state)
                .map_err(|e| Error::diverged(session, checkpoint.seq, format!("the checkpoint does not parse: {e}")))?;
            // One of an earlier format is a stale cache, not damage: the
            // journal it caches is folded instead (and the next checkpoint
            // written is of this format).
            tollgate_core::is_current_checkpoint(&document).then_some((checkpoint.seq, document))
        }
        None => None,
    };
    let (mut state, after) = match stored {
        Some((seq, document)) => {
            let state = SessionState::from_checkpoint(workflow, &document)
                .map_err(|message| Error::diverged(session, seq, message))?;
            (state, seq)
        }
        None => (SessionState::new(workflow), 0),
    };
    let tail = tx.journal_after(session, after).await?;
    fold(workflow, session, &mut state, &tail)?;
    Ok((state, after))
}

/// Gives an allowed side effect its store-wide key: `session/tool:call`.
pub(crate) fn with_session_key(mut decision: Decision, session: &str) -> Decision {
    if let Decision::Allow(allowed) = &mut decision
        && let Some(key) = &mut allowed.idempotency_key
    {
        *key = format!("{session}/{key}");
    }
    decision
}

/// Folds an investigation record of the journal into the state.
fn fold_investigation(workflow: &Workflow, state: &mut SessionState, record: &Record) {
    match record {
        Record::Opened(opened) => {
            apply(
                workflow,
                state,
                Event::InvestigationOpened {
                    concern: &opened.concern,
                    tools: opened.tools.as_deref(),
                    inherited: &opened.inherited,
                },
            );
        }
        Record::Investigations(investigations) => {
            let opened: Vec<Opened> = investigations
                .opened
                .iter()
                .map(|o| Opened {
                    concern_id: o.concern_id.clone(),
                    session: o.session.clone(),
                    concern: o.concern.clone(),
                })
                .collect();
            apply(workflow, state, Event::InvestigationsOpened { opened: &opened });
        }
        Record::Concluded(concluded) => {
            apply(workflow, state, Event::Concluded { outcome: &concluded.outcome });
        }
        Record::Decision(_) | Record::Result(_) | Record::Refused(_) | Record::Joined(_) | Record::Human(_) => {}
    }
}
