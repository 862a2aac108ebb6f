//! Tollgate's runtime: durable sessions over the pure decision core.
//!
//! Every session has a journal in the store. [`Engine::decide`] locks the
//! session (across processes), loads its state from the checkpoint plus the
//! journal after it, asks the core for a decision, and writes the decision
//! and its audit record (and, every [`CHECKPOINT_EVERY`] entries, a new
//! checkpoint) in one transaction before it returns: nobody acts on a
//! decision that is not on disk.
//! [`Engine::record_result`] folds a tool's result in the same way.
//!
//! Exactly once: a side-effecting call that is allowed carries an
//! idempotency key (`session/tool:call`). A call re-sent with the same id
//! and arguments gets its original decision back; a result recorded twice
//! changes nothing the second time; [`Engine::resume`] lists the calls that
//! were allowed but whose results never arrived (in doubt), with their keys,
//! so the caller re-drives them rather than running them anew.

use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tollgate_core::{
    CallId, Case, Decision, Event, SessionState, ToolCall, ToolOutcome, Verdict, Workflow, apply, decide_in_case,
    json_bytes,
};

mod investigations;
pub use investigations::{Concern, Investigation};
use tollgate_store::{JournalEntry, NewAudit, NewEntry, NewSession, SessionTx, Store, StoreError, StoredWorkflow};

pub use tollgate_store::{AuditProblem, AuditRecord, SessionInfo, VerifyReport};

/// What can go wrong in the engine. Bad input is an error here, never a panic.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed (see its message).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The workflow text does not compile.
    #[error("the workflow does not compile:\n{0}")]
    Workflow(String),
    /// No workflow with this hash is stored.
    #[error("no stored workflow with hash {0}")]
    UnknownWorkflow(String),
    /// An id from outside is not acceptable.
    #[error("{0}")]
    BadId(String),
    /// The group of calls this one was committed with failed (a database
    /// error, a lost connection): nothing of the group was stored.
    #[error("the call could not be committed, so nothing of it was stored: {0}")]
    Commit(String),
    /// An investigation request that cannot be carried out (nested
    /// investigations, an unknown tool in a subset, concluding a session
    /// that is no investigation or has ended).
    #[error("{0}")]
    Investigation(String),
    /// The join of a parent whose investigations have not all ended.
    #[error("session {parent} cannot be joined: investigations still running: {}", running.join(", "))]
    Running {
        /// The parent session.
        parent: String,
        /// The concern ids still running, in the order they were opened.
        running: Vec<String>,
    },
    /// The journal does not replay to the decisions it records: the session
    /// was written under a different workflow or the journal was altered.
    #[error("session {session} does not replay at journal entry {seq}: {message}")]
    Diverged {
        /// The session.
        session: String,
        /// The journal entry.
        seq: i64,
        /// What differs.
        message: String,
    },
}

/// Where the engine's time comes from. Decisions record it; the core never reads a clock.
#[derive(Clone, Debug)]
pub enum Clock {
    /// The system clock.
    System,
    /// A fixed time, in milliseconds since the Unix epoch (replays, tests).
    Fixed(i64),
}

impl Clock {
    fn now_ms(&self) -> i64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Clock::Fixed(ms) => *ms,
        }
    }
}

/// A stored, compiled workflow.
#[derive(Clone, Debug)]
pub struct WorkflowHandle {
    /// SHA-256 of the workflow text, hex: what sessions refer to.
    pub hash: String,
    /// The compiled workflow.
    pub workflow: Arc<Workflow>,
}

/// A decision as the engine returns it.
#[derive(Clone, Debug)]
pub struct CallDecision {
    /// The decision (for allowed side effects, the key is `session/tool:call`).
    pub decision: Decision,
    /// The decision as JSON (`tollgate.decision/v1`).
    pub json: Json,
    /// True if this call id was decided before with the same tool and
    /// arguments and this is that original decision, not a new one.
    pub replayed: bool,
}

/// What recording a result did.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    /// False if nothing changed: the call was never allowed, or its result
    /// was recorded before (a result counts once).
    pub recorded: bool,
    /// The effects on the session (facts established or updated, a result
    /// withheld, ...); `Effect::to_json` gives their JSON form.
    pub effects: Vec<tollgate_core::Effect>,
    /// Why nothing changed, when `recorded` is false.
    pub note: Option<String>,
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

/// The runtime over one store.
pub struct Engine {
    store: Store,
    clock: Clock,
    workflows: Mutex<HashMap<String, Arc<Workflow>>>,
    /// The state of sessions this engine wrote last, by id. Used only while
    /// the session's stored `last_seq` (read under its lock) still equals the
    /// cached one: any write by another process makes it stale, and the
    /// session is loaded from the store again.
    sessions: Mutex<HashMap<String, Cached>>,
    /// Calls and results waiting for the next group commit.
    queue: Mutex<Vec<Queued>>,
    /// Held by the caller that is committing a group.
    leader: tokio::sync::Mutex<()>,
    /// Groups committed, and the calls and results in them.
    groups: std::sync::atomic::AtomicU64,
    grouped: std::sync::atomic::AtomicU64,
}

/// A session's state as this engine last committed it.
struct Cached {
    last_seq: i64,
    checkpoint_seq: i64,
    workflow_hash: String,
    state: SessionState,
}

/// Sessions kept in the engine's cache at most; beyond, it starts afresh.
const CACHED_SESSIONS_MAX: usize = 10_000;

/// Longest session or call id accepted.
const ID_MAX: usize = 128;

/// Arguments of a refused call larger than this are recorded by size only.
const ARGS_KEPT_MAX: usize = 16 * 1024;

fn check_id(what: &str, id: &str) -> Result<(), EngineError> {
    let ok = !id.is_empty()
        && id.len() <= ID_MAX
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '#' | '@'));
    if ok {
        Ok(())
    } else {
        Err(EngineError::BadId(format!(
            "{what} id {id:?} is not 1 to {ID_MAX} characters of letters, digits and - _ . : # @"
        )))
    }
}

/// SHA-256 of a workflow's text, hex.
pub fn workflow_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Engine {
    /// An engine over `store`, on the system clock.
    pub fn new(store: Store) -> Engine {
        Engine {
            store,
            clock: Clock::System,
            workflows: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            queue: Mutex::new(Vec::new()),
            leader: tokio::sync::Mutex::new(()),
            groups: std::sync::atomic::AtomicU64::new(0),
            grouped: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Opens the store at `url` (see [`Store::open`]).
    pub async fn open(url: &str) -> Result<Engine, EngineError> {
        Ok(Engine::new(Store::open(url).await?))
    }

    /// The same engine on another clock.
    pub fn with_clock(mut self, clock: Clock) -> Engine {
        self.clock = clock;
        self
    }

    /// Closes the store: connections are closed and no new transaction
    /// starts (a call after this fails with a storage error).
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Compiles a workflow and stores its text, so sessions under it can be
    /// reloaded in any process.
    pub async fn register_workflow(&self, text: &str, file: &str) -> Result<WorkflowHandle, EngineError> {
        let workflow = tollgate_core::compile(text, file).map_err(|problems| {
            EngineError::Workflow(problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
        })?;
        if let Some(problem) = tollgate_core::workflow_name_problem(workflow.name()) {
            return Err(EngineError::Workflow(format!("{file}: {problem}")));
        }
        let hash = workflow_hash(text);
        self.store
            .put_workflow(&StoredWorkflow {
                hash: hash.clone(),
                name: workflow.name().to_owned(),
                version: i64::from(workflow.version()),
                text: text.to_owned(),
            })
            .await?;
        let workflow = Arc::new(workflow);
        self.cache().insert(hash.clone(), Arc::clone(&workflow));
        Ok(WorkflowHandle { hash, workflow })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Workflow>>> {
        self.workflows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The compiled workflow stored under `hash`.
    pub async fn workflow(&self, hash: &str) -> Result<Arc<Workflow>, EngineError> {
        if let Some(workflow) = self.cache().get(hash) {
            return Ok(Arc::clone(workflow));
        }
        let stored = self.store.workflow(hash).await?.ok_or_else(|| EngineError::UnknownWorkflow(hash.to_owned()))?;
        let workflow = tollgate_core::compile(&stored.text, &stored.name).map_err(|problems| {
            EngineError::Workflow(problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
        })?;
        let workflow = Arc::new(workflow);
        self.cache().insert(hash.to_owned(), Arc::clone(&workflow));
        Ok(workflow)
    }

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
    ) -> Result<SessionInfo, EngineError> {
        check_id("session", id)?;
        if let Some(parent) = parent {
            let named = id.rsplit_once(':').is_some_and(|(prefix, concern)| prefix == parent && !concern.is_empty());
            let info = self.store.session(parent).await?;
            let fits = info.as_ref().is_some_and(|p| p.parent_id.is_none() && p.workflow_hash == workflow.hash);
            if !named || !fits {
                return Err(EngineError::Investigation(format!(
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
            })
            .await?;
        self.store.session(id).await?.ok_or_else(|| StoreError::NoSession(id.to_owned()).into())
    }

    /// Decides one tool call on a session, durably: when this returns, the
    /// decision and its audit record (and a checkpoint, when one is due) are
    /// committed. A call id decided before with the same tool and arguments
    /// gets its original decision back (`replayed`); with different ones, a
    /// block.
    ///
    /// Concurrent calls are committed in groups: while one transaction is
    /// being written, the calls that arrive queue up and the next
    /// transaction takes them all, so many decisions share one durable
    /// write. Each caller still hears its answer only after that commit.
    pub async fn decide(&self, session: &str, call: &ToolCall) -> Result<CallDecision, EngineError> {
        check_id("session", session)?;
        match self.submit(Job::Decide { session: session.to_owned(), call: self.timed(call) }).await? {
            Reply::Decided(decided) => Ok(decided),
            _ => Err(EngineError::Commit("the engine answered a decision with something else".into())),
        }
    }

    /// Records the result of an allowed call: result checks run, facts are
    /// derived, a checkpoint is written when due, all committed before this
    /// returns (in a group, as [`Engine::decide`]). A result for a call that
    /// was not allowed, or recorded before, changes nothing.
    pub async fn record_result(
        &self,
        session: &str,
        call_id: &str,
        result: &Json,
        outcome: ToolOutcome,
    ) -> Result<Recorded, EngineError> {
        check_id("session", session)?;
        // No call was ever decided under an id that is not one: refused here,
        // before anything is queued or stored.
        check_id("call", call_id)?;
        let job =
            Job::Record { session: session.to_owned(), call_id: call_id.to_owned(), result: result.clone(), outcome };
        match self.submit(job).await? {
            Reply::Recorded(recorded) => Ok(recorded),
            _ => Err(EngineError::Commit("the engine answered a result with something else".into())),
        }
    }

    /// Records the result of the session's last allowed call and decides
    /// its next call, in one commit: what an agent loop does between two
    /// tool calls (a `PostToolUse` then a `PreToolUse`). Exactly
    /// [`Engine::record_result`] followed by [`Engine::decide`] (the next
    /// call is decided on the state with the result folded in), with one
    /// durable write instead of two. If the process dies before the commit,
    /// neither is stored: the earlier call is reported in doubt with its
    /// idempotency key, and the next call was never decided.
    pub async fn record_and_decide(
        &self,
        session: &str,
        call_id: &str,
        result: &Json,
        outcome: ToolOutcome,
        next: &ToolCall,
    ) -> Result<(Recorded, CallDecision), EngineError> {
        check_id("session", session)?;
        // As `record_result`: no call was ever decided under an id that is not one.
        check_id("call", call_id)?;
        let jobs = vec![
            Job::Record { session: session.to_owned(), call_id: call_id.to_owned(), result: result.clone(), outcome },
            Job::Decide { session: session.to_owned(), call: self.timed(next) },
        ];
        let mut answers = self.submit_all(jobs).await.into_iter();
        match (answers.next(), answers.next()) {
            (Some(Ok(Reply::Recorded(recorded))), Some(Ok(Reply::Decided(decided)))) => Ok((recorded, decided)),
            (Some(Err(error)), _) | (_, Some(Err(error))) => Err(error),
            _ => Err(EngineError::Commit("the engine answered out of order".into())),
        }
    }

    /// The call as it is queued: with the engine's clock when it brings none.
    fn timed(&self, call: &ToolCall) -> ToolCall {
        let mut call = call.clone();
        if call.now_ms.is_none() {
            call.now_ms = Some(self.clock.now_ms());
        }
        call
    }

    /// Queues a job and waits for its answer, committing the queue itself
    /// when no one else is (leader and followers).
    ///
    /// If the leader's caller goes away mid-group (its future dropped), the
    /// group's other callers get `EngineError::Commit`; the group may or may
    /// not have been committed. Sending the same call again with the same id
    /// is always safe: it gets the recorded decision back if there is one.
    async fn submit(&self, job: Job) -> Result<Reply, EngineError> {
        self.submit_all(vec![job]).await.pop().unwrap_or_else(|| Err(EngineError::Commit("no answer".into())))
    }

    /// Queues jobs together (in this order, so they land in one group unless
    /// the queue already holds a full group) and waits for every answer.
    async fn submit_all(&self, jobs: Vec<Job>) -> Vec<Result<Reply, EngineError>> {
        let mut receivers = Vec::with_capacity(jobs.len());
        {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            for job in jobs {
                let (sender, receiver) = tokio::sync::oneshot::channel();
                queue.push(Queued { job, reply: sender });
                receivers.push(receiver);
            }
        }
        let mut answers: Vec<Option<Result<Reply, EngineError>>> = receivers.iter().map(|_| None).collect();
        let collect = |receivers: &mut [tokio::sync::oneshot::Receiver<Result<Reply, EngineError>>],
                       answers: &mut [Option<Result<Reply, EngineError>>]| {
            for (receiver, answer) in receivers.iter_mut().zip(answers.iter_mut()) {
                if answer.is_none() {
                    *answer = match receiver.try_recv() {
                        Ok(reply) => Some(reply),
                        Err(tokio::sync::oneshot::error::TryRecvError::Empty) => None,
                        Err(tokio::sync::oneshot::error::TryRecvError::Closed) => Some(Err(EngineError::Commit(
                            "the group this call was in was abandoned; nothing of it was stored".into(),
                        ))),
                    };
                }
            }
            answers.iter().all(Option::is_some)
        };
        loop {
            if collect(&mut receivers, &mut answers) {
                break;
            }
            // Wait for the next answer missing or for the turn to commit the
            // queue, whichever comes first: a caller whose group was just
            // committed by another hears its answer at once, rather than
            // after waiting its turn behind the next group's commit.
            let Some(waiting) = answers.iter().position(Option::is_none) else { break };
            let Some(receiver) = receivers.get_mut(waiting) else { break };
            tokio::select! {
                biased;
                reply = receiver => {
                    if let Some(answer) = answers.get_mut(waiting) {
                        *answer = Some(reply.unwrap_or_else(|_| Err(EngineError::Commit(
                            "the group this call was in was abandoned; nothing of it was stored".into(),
                        ))));
                    }
                }
                leader = self.leader.lock() => {
                    if collect(&mut receivers, &mut answers) {
                        break;
                    }
                    let jobs: Vec<Queued> = {
                        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                        let take = queue.len().min(GROUP_MAX);
                        queue.drain(..take).collect()
                    };
                    if !jobs.is_empty() {
                        self.commit_group(jobs).await;
                    }
                    drop(leader);
                }
            }
        }
        answers.into_iter().map(|a| a.unwrap_or_else(|| Err(EngineError::Commit("no answer".into())))).collect()
    }

    /// Runs a group of jobs in one transaction and answers each.
    async fn commit_group(&self, jobs: Vec<Queued>) {
        let fail_all = |jobs: Vec<Queued>, message: String| {
            for queued in jobs {
                let _ = queued.reply.send(Err(EngineError::Commit(message.clone())));
            }
        };
        let mut tx = match self.store.begin().await {
            Ok(tx) => tx,
            Err(error) => return fail_all(jobs, error.to_string()),
        };
        // Lock the group's sessions (PostgreSQL: in id order, so two
        // processes' groups never wait for each other in a cycle) and look
        // up the group's call ids, so a job asks the database nothing when
        // its session is cached (SQLite: both and the audit head in one
        // statement).
        // An investigation's decisions read its case (the parent and the
        // siblings) under the parent's lock: `{parent}:{concern}` sorts
        // after `{parent}`, so locking both in one sorted statement keeps
        // parents before children across processes. An opening locks its
        // children with the group too: every session lock is taken before
        // the audit head's (PostgreSQL: the head row is locked at the first
        // append), so no two groups can wait for each other's locks.
        let children: Vec<String> = jobs
            .iter()
            .flat_map(|q| match &q.job {
                Job::Open { parent, concerns } => concerns.iter().map(|c| format!("{parent}:{}", c.id)).collect(),
                _ => Vec::new(),
            })
            .collect();
        let ids: Vec<&str> = jobs
            .iter()
            .flat_map(|q| {
                let session = q.job.session();
                std::iter::once(session).chain(session.rsplit_once(':').map(|(parent, _)| parent))
            })
            .chain(children.iter().map(String::as_str))
            .collect();
        let calls: Vec<(&str, &str)> = jobs
            .iter()
            .map(|q| match &q.job {
                Job::Decide { session, call } => (session.as_str(), call.id.as_str()),
                Job::Record { session, call_id, .. } => (session.as_str(), call_id.as_str()),
                Job::Open { parent, .. } | Job::Join { parent } => (parent.as_str(), ""),
                Job::Conclude { session, .. } => (session.as_str(), ""),
            })
            .filter(|(_, call)| check_id("call", call).is_ok())
            .collect();
        if let Err(error) = tx.lock_and_prefetch(&ids, &calls).await {
            return fail_all(jobs, error.to_string());
        }
        let mut overlay: HashMap<String, Cached> = HashMap::new();
        let mut answers = Vec::with_capacity(jobs.len());
        let mut senders = Vec::with_capacity(jobs.len());
        for queued in jobs {
            let outcome = self.run_job(&mut tx, &mut overlay, &queued.job).await;
            if let Err(EngineError::Store(error)) = &outcome
                && error.is_database()
            {
                // The transaction is broken: nothing of the group is kept.
                let message = error.to_string();
                senders.push(queued.reply);
                for sender in senders {
                    let _ = sender.send(Err(EngineError::Commit(message.clone())));
                }
                return;
            }
            answers.push(outcome);
            senders.push(queued.reply);
        }
        if let Err(error) = tx.commit().await {
            let message = error.to_string();
            for sender in senders {
                let _ = sender.send(Err(EngineError::Commit(message.clone())));
            }
            return;
        }
        {
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            if sessions.len() + overlay.len() > CACHED_SESSIONS_MAX {
                sessions.clear();
            }
            sessions.extend(overlay);
        }
        self.groups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.grouped.fetch_add(senders.len() as u64, std::sync::atomic::Ordering::Relaxed);
        for (sender, answer) in senders.into_iter().zip(answers) {
            let _ = sender.send(answer);
        }
    }

    /// Group commits so far: (transactions committed, calls and results in them).
    pub fn commit_stats(&self) -> (u64, u64) {
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
        (load(&self.groups), load(&self.grouped))
    }

    /// One job inside a group's transaction. Its writes become visible to
    /// later jobs of the group (same transaction, and `overlay`); only
    /// database errors leave the transaction unusable.
    async fn run_job(
        &self,
        tx: &mut SessionTx,
        overlay: &mut HashMap<String, Cached>,
        job: &Job,
    ) -> Result<Reply, EngineError> {
        match job {
            Job::Decide { session, call } => self.decide_in(tx, overlay, session, call).await.map(Reply::Decided),
            Job::Record { session, call_id, result, outcome } => {
                self.record_in(tx, overlay, session, call_id, result, *outcome).await.map(Reply::Recorded)
            }
            Job::Open { parent, concerns } => self.open_in(tx, overlay, parent, concerns).await.map(Reply::Opened),
            Job::Conclude { session, outcome } => {
                self.conclude_in(tx, overlay, session, outcome).await.map(|()| Reply::Concluded)
            }
            Job::Join { parent } => self.join_in(tx, overlay, parent).await.map(Reply::Joined),
        }
    }

    async fn decide_in(
        &self,
        tx: &mut SessionTx,
        overlay: &mut HashMap<String, Cached>,
        session: &str,
        call: &ToolCall,
    ) -> Result<CallDecision, EngineError> {
        tx.lock(session).await?;
        let Loaded { workflow, mut state, info, checkpoint_seq } =
            self.load_locked(tx, session, Some(&mut *overlay)).await?;
        // The session clock: the call's own (a replay of a recorded trace),
        // else the engine's. Rules read it as `now`; it is journaled with the
        // call, so replaying the journal decides at the same time.
        // (`timed` gives every queued call one when it is submitted.)
        let now = call.now_ms.unwrap_or_else(|| self.clock.now_ms());
        // A bad call id, or one already used for another call, is refused
        // without touching the state; the same call sent again gets its
        // original decision back.
        let args_max = workflow.limits().args_bytes_max;
        let refused = if let Err(error) = check_id("call", call.id.as_str()) {
            Some(refusal("tollgate.call_id", error.to_string()))
        } else if call.tool.len() > ID_MAX {
            Some(refusal("tollgate.unknown_tool", format!("a tool name of {} bytes is not a tool", call.tool.len())))
        } else if json_bytes(&call.args) > args_max {
            // Refused here rather than by the core, so the oversized
            // arguments are never stored.
            let message = format!("the arguments are over the limit of {args_max} bytes");
            Some(refusal("tollgate.limits.args_bytes_max", message))
        } else if let Some(earlier) = tx.find_call(session, call.id.as_str(), "decision").await? {
            let body: Json = parse(&earlier.body, session, earlier.seq)?;
            if *at(&body, "/call/tool") == json!(call.tool) && *at(&body, "/call/args") == call.args {
                // Re-derived as it was made: at the clock recorded with it.
                let recorded = call_of(&body, session, earlier.seq)?;
                let decision = original_decision(tx, &workflow, session, &recorded, earlier.seq, &body).await?;
                overlay.insert(session.to_owned(), cached(&info, info.last_seq, checkpoint_seq, state));
                return Ok(CallDecision { json: at(&body, "/decision").clone(), decision, replayed: true });
            }
            Some(refusal(
                "tollgate.call_id_reused",
                format!("call id {} was already used for another call; send this one with a new id", call.id),
            ))
        } else {
            // Likewise the agent's summary: refused, never stored. (Not a
            // rule of the core: a journal holding a longer one, written
            // before the limit, must still replay.)
            call.summary
                .as_deref()
                .and_then(|summary| over_text_limit(&workflow, "the conversation summary", summary))
                .map(|message| refusal("tollgate.limits.text_bytes_max", message))
        };
        if let Some(decision) = refused {
            let seq = refuse(tx, session, call, &decision, now).await?;
            overlay.insert(session.to_owned(), cached(&info, seq, checkpoint_seq, state));
            return Ok(CallDecision { json: decision.to_json(), decision, replayed: false });
        }
        let case = self.case_of(tx, overlay, &workflow, &info, &state).await?;
        let decision = with_session_key(decide_in_case(&workflow, &state, &case, call), session);
        apply(&workflow, &mut state, Event::Decided { call, decision: &decision });
        let decision_json = decision.to_json();
        let mut body = json!({
            "call": {"id": call.id.as_str(), "tool": call.tool, "args": call.args, "now_ms": now},
            "decision": decision_json,
        });
        // The agent's summary, if it sent one: an escalation's handoff
        // quotes it, so a replay needs it too.
        if let (Some(summary), Some(call_body)) = (&call.summary, body.get_mut("call").and_then(Json::as_object_mut)) {
            call_body.insert("summary".into(), Json::String(summary.clone()));
        }
        // The case totals and running investigations this call was decided
        // with, so a replay decides it the same way.
        if !case.is_empty()
            && let Some(object) = body.as_object_mut()
        {
            object.insert("case".into(), case.to_json());
        }
        let text = body.to_string();
        let entry =
            NewEntry { kind: "decision".into(), call_id: Some(call.id.to_string()), body: text.clone(), at_ms: now };
        let audit = NewAudit { kind: format!("decision.{}", verdict_name(decision.verdict())), body: text, at_ms: now };
        let checkpoint = due(&info, checkpoint_seq).then(|| state.to_checkpoint(&workflow).to_string());
        let seq = tx.append(session, &[entry], &[audit], checkpoint.as_deref()).await?;
        let checkpoint_seq = if checkpoint.is_some() { seq } else { checkpoint_seq };
        overlay.insert(session.to_owned(), cached(&info, seq, checkpoint_seq, state));
        Ok(CallDecision { decision, json: decision_json, replayed: false })
    }

    async fn record_in(
        &self,
        tx: &mut SessionTx,
        overlay: &mut HashMap<String, Cached>,
        session: &str,
        call_id: &str,
        result: &Json,
        outcome: ToolOutcome,
    ) -> Result<Recorded, EngineError> {
        tx.lock(session).await?;
        let Loaded { workflow, mut state, info, checkpoint_seq } =
            self.load_locked(tx, session, Some(&mut *overlay)).await?;
        let call = CallId::new(call_id);
        let note = if tx.find_call(session, call_id, "result").await?.is_some() {
            Some(format!("the result of call {call_id} was recorded before; it counts once"))
        } else if !state.pending_calls().any(|pending| *pending == call) {
            Some(format!("call {call_id} is not an allowed call awaiting its result"))
        } else {
            None
        };
        if let Some(note) = note {
            overlay.insert(session.to_owned(), cached(&info, info.last_seq, checkpoint_seq, state));
            return Ok(unchanged(note));
        }
        let now = self.clock.now_ms();
        // A result over the workflow's limit is withheld by the core and
        // recorded by its size only, so it is never stored.
        let result_bytes = json_bytes(result);
        let oversized = result_bytes > workflow.limits().result_bytes_max;
        let event = if oversized {
            if outcome == ToolOutcome::Succeeded {
                Event::ResultTooLarge { call: &call }
            } else {
                Event::ResultRecorded { call: &call, result: &Json::Null, outcome }
            }
        } else {
            Event::ResultRecorded { call: &call, result, outcome }
        };
        let effects = apply(&workflow, &mut state, event);
        let effects_json: Vec<Json> = effects.iter().map(tollgate_core::Effect::to_json).collect();
        let body = if oversized {
            json!({"call": call_id, "result": null, "result_bytes": result_bytes, "outcome": outcome_name(outcome)})
        } else {
            json!({"call": call_id, "result": result, "outcome": outcome_name(outcome)})
        };
        let entry =
            NewEntry { kind: "result".into(), call_id: Some(call_id.to_owned()), body: body.to_string(), at_ms: now };
        let audit = NewAudit {
            kind: "result".into(),
            body: json!({"call": call_id, "outcome": outcome_name(outcome), "effects": effects_json}).to_string(),
            at_ms: now,
        };
        let checkpoint = due(&info, checkpoint_seq).then(|| state.to_checkpoint(&workflow).to_string());
        let seq = tx.append(session, &[entry], &[audit], checkpoint.as_deref()).await?;
        let checkpoint_seq = if checkpoint.is_some() { seq } else { checkpoint_seq };
        overlay.insert(session.to_owned(), cached(&info, seq, checkpoint_seq, state));
        Ok(Recorded { recorded: true, effects, note: None })
    }

    /// The session's current state as stored: its checkpoint plus the
    /// journal after it (never the engine's cache), read from one snapshot
    /// without holding up writers.
    pub async fn state(&self, session: &str) -> Result<(Arc<Workflow>, SessionState), EngineError> {
        let mut tx = self.store.snapshot(session).await?;
        let Loaded { workflow, state, .. } = self.load_locked(&mut tx, session, None).await?;
        drop(tx);
        Ok((workflow, state))
    }

    /// The session's state folded from its whole journal, ignoring the
    /// checkpoint: what the checkpoint must equal.
    pub async fn replay(&self, session: &str) -> Result<(Arc<Workflow>, SessionState), EngineError> {
        let info = self.store.session(session).await?.ok_or_else(|| StoreError::NoSession(session.to_owned()))?;
        let workflow = self.workflow(&info.workflow_hash).await?;
        let journal = self.store.journal(session).await?;
        let mut state = SessionState::new(&workflow);
        fold(&workflow, session, &mut state, &journal)?;
        Ok((workflow, state))
    }

    /// Where a session stands: its state and the calls in doubt, read from
    /// one snapshot (a resume never waits for, nor holds up, the session's
    /// writers in this process or another).
    pub async fn resume(&self, session: &str) -> Result<Resume, EngineError> {
        check_id("session", session)?;
        let mut tx = self.store.snapshot(session).await?;
        let Loaded { workflow, state, info, .. } = self.load_locked(&mut tx, session, None).await?;
        let mut in_doubt = Vec::new();
        for call in state.pending_calls() {
            let Some(entry) = tx.find_call(session, call.as_str(), "decision").await? else { continue };
            let body = parse(&entry.body, session, entry.seq)?;
            in_doubt.push((
                entry.seq,
                InDoubt {
                    call_id: call.to_string(),
                    tool: at(&body, "/call/tool").as_str().unwrap_or_default().to_owned(),
                    idempotency_key: at(&body, "/decision/idempotency_key").as_str().map(str::to_owned),
                },
            ));
        }
        drop(tx);
        in_doubt.sort_by_key(|(seq, _)| *seq);
        Ok(Resume { session: info, state, workflow, in_doubt: in_doubt.into_iter().map(|(_, d)| d).collect() })
    }

    /// Loads a locked session: its workflow, its state (taken out of the
    /// group's overlay or the engine's cache if `overlay` is given and the
    /// entry is current, else checkpoint plus the journal after it) and its
    /// row. A state taken out is put back into the overlay by the job once it
    /// has appended (or decided not to); if the job or its group fails, the
    /// session is simply loaded from the store next time.
    async fn load_locked(
        &self,
        tx: &mut SessionTx,
        session: &str,
        overlay: Option<&mut HashMap<String, Cached>>,
    ) -> Result<Loaded, EngineError> {
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
        let (mut state, after) = match tx.checkpoint(session).await? {
            Some(checkpoint) => {
                let document: Json = parse(&checkpoint.state, session, checkpoint.seq)?;
                let state = SessionState::from_checkpoint(&workflow, &document).map_err(|message| {
                    EngineError::Diverged { session: session.to_owned(), seq: checkpoint.seq, message }
                })?;
                (state, checkpoint.seq)
            }
            None => (SessionState::new(&workflow), 0),
        };
        let tail = tx.journal_after(session, after).await?;
        fold(&workflow, session, &mut state, &tail)?;
        Ok(Loaded { workflow, state, info, checkpoint_seq: after })
    }
}

/// A session's state as committed at journal entry `last_seq`.
fn cached(info: &SessionInfo, last_seq: i64, checkpoint_seq: i64, state: SessionState) -> Cached {
    Cached { last_seq, checkpoint_seq, workflow_hash: info.workflow_hash.clone(), state }
}

/// A block that the journal does not fold into the state (a bad or reused
/// call id): audited and recorded as `refused`. Returns the entry's number.
async fn refuse(
    tx: &mut SessionTx,
    session: &str,
    call: &ToolCall,
    decision: &Decision,
    now: i64,
) -> Result<i64, EngineError> {
    // What was refused, bounded: a call id or arguments over their limits
    // are recorded by size, not stored.
    let args_bytes = json_bytes(&call.args);
    let args = if args_bytes > ARGS_KEPT_MAX { json!({"omitted_bytes": args_bytes}) } else { call.args.clone() };
    let id = if call.id.as_str().len() > ID_MAX {
        json!({"omitted_bytes": call.id.as_str().len()})
    } else {
        json!(call.id.as_str())
    };
    let tool = if call.tool.len() > ID_MAX { json!({"omitted_bytes": call.tool.len()}) } else { json!(call.tool) };
    let body = json!({"call": {"id": id, "tool": tool, "args": args}, "decision": decision.to_json()}).to_string();
    let entry = NewEntry { kind: "refused".into(), call_id: None, body: body.clone(), at_ms: now };
    let audit = NewAudit { kind: "decision.block".into(), body, at_ms: now };
    Ok(tx.append(session, &[entry], &[audit], None).await?)
}

/// The decision recorded for a call at journal entry `seq`, re-derived
/// from the state the session had then and checked against the record.
async fn original_decision(
    tx: &mut SessionTx,
    workflow: &Workflow,
    session: &str,
    call: &ToolCall,
    seq: i64,
    body: &Json,
) -> Result<Decision, EngineError> {
    let before: Vec<JournalEntry> = tx.journal_after(session, 0).await?.into_iter().filter(|e| e.seq < seq).collect();
    let mut then = SessionState::new(workflow);
    fold(workflow, session, &mut then, &before)?;
    let case = case_in(body, session, seq)?;
    let decision = with_session_key(decide_in_case(workflow, &then, &case, call), session);
    if decision.to_json() != *at(body, "/decision") {
        return Err(EngineError::Diverged {
            session: session.to_owned(),
            seq,
            message: format!("the recorded decision of call {} does not replay", call.id),
        });
    }
    Ok(decision)
}

/// A call or result waiting to be committed with its group.
enum Job {
    Decide { session: String, call: ToolCall },
    Record { session: String, call_id: String, result: Json, outcome: ToolOutcome },
    Open { parent: String, concerns: Vec<Concern> },
    Conclude { session: String, outcome: String },
    Join { parent: String },
}

impl Job {
    fn session(&self) -> &str {
        match self {
            Job::Decide { session, .. } | Job::Record { session, .. } | Job::Conclude { session, .. } => session,
            Job::Open { parent, .. } | Job::Join { parent } => parent,
        }
    }
}

enum Reply {
    Decided(CallDecision),
    Recorded(Recorded),
    Opened(Vec<Investigation>),
    Concluded,
    Joined(tollgate_core::Join),
}

struct Queued {
    job: Job,
    reply: tokio::sync::oneshot::Sender<Result<Reply, EngineError>>,
}

/// Calls committed in one transaction at most.
const GROUP_MAX: usize = 512;

/// A session loaded under its lock.
struct Loaded {
    workflow: Arc<Workflow>,
    state: SessionState,
    info: SessionInfo,
    /// The journal entry the checkpoint folds in (0: no checkpoint).
    checkpoint_seq: i64,
}

/// A checkpoint is written once the journal has grown this many entries past
/// the last one, so loading a session folds at most this many (each a
/// decision of a few microseconds) and a step does not rewrite the whole
/// state every time.
pub const CHECKPOINT_EVERY: i64 = 16;

/// Whether the entry about to be appended (after `info.last_seq`) should
/// carry a checkpoint.
fn due(info: &SessionInfo, checkpoint_seq: i64) -> bool {
    info.last_seq + 1 - checkpoint_seq >= CHECKPOINT_EVERY
}

/// Folds journal entries into a state, re-deciding each recorded call and
/// checking the decision is the one recorded.
fn fold(
    workflow: &Workflow,
    session: &str,
    state: &mut SessionState,
    entries: &[JournalEntry],
) -> Result<(), EngineError> {
    for entry in entries {
        let body: Json = parse(&entry.body, session, entry.seq)?;
        match entry.kind.as_str() {
            "decision" => {
                let call = call_of(&body, session, entry.seq)?;
                let case = case_in(&body, session, entry.seq)?;
                let decision = with_session_key(decide_in_case(workflow, state, &case, &call), session);
                if decision.to_json() != *at(&body, "/decision") {
                    return Err(EngineError::Diverged {
                        session: session.to_owned(),
                        seq: entry.seq,
                        message: format!(
                            "the workflow now decides call {} differently from the journal's record",
                            call.id
                        ),
                    });
                }
                apply(workflow, state, Event::Decided { call: &call, decision: &decision });
            }
            "result" => {
                let call = CallId::new(at(&body, "/call").as_str().unwrap_or_default());
                let outcome =
                    if *at(&body, "/outcome") == "failed" { ToolOutcome::Failed } else { ToolOutcome::Succeeded };
                let event = if body.get("result_bytes").is_some() && outcome == ToolOutcome::Succeeded {
                    Event::ResultTooLarge { call: &call }
                } else {
                    Event::ResultRecorded { call: &call, result: at(&body, "/result"), outcome }
                };
                apply(workflow, state, event);
            }
            "opened" | "investigations" | "concluded" => investigations::fold_entry(workflow, state, entry, &body),
            // Refused calls (bad or reused ids) and joins never touch the state.
            _ => {}
        }
    }
    Ok(())
}

/// The case a journaled decision was made in (none if it was alone).
fn case_in(body: &Json, session: &str, seq: i64) -> Result<Case, EngineError> {
    Case::from_json(at(body, "/case")).map_err(|message| EngineError::Diverged {
        session: session.to_owned(),
        seq,
        message,
    })
}

fn call_of(body: &Json, session: &str, seq: i64) -> Result<ToolCall, EngineError> {
    let call = at(body, "/call");
    match (at(call, "/id").as_str(), at(call, "/tool").as_str()) {
        (Some(id), Some(tool)) => {
            let mut call_made = ToolCall::new(id, tool, at(call, "/args").clone());
            // Journals written before calls carried a clock have none.
            call_made.now_ms = at(call, "/now_ms").as_i64();
            call_made.summary = at(call, "/summary").as_str().map(str::to_owned);
            Ok(call_made)
        }
        _ => Err(EngineError::Diverged {
            session: session.to_owned(),
            seq,
            message: "the journal entry has no call".to_owned(),
        }),
    }
}

fn parse(text: &str, session: &str, seq: i64) -> Result<Json, EngineError> {
    serde_json::from_str(text).map_err(|e| EngineError::Diverged {
        session: session.to_owned(),
        seq,
        message: format!("stored JSON does not parse: {e}"),
    })
}

/// Gives an allowed side effect its store-wide key: `session/tool:call`.
fn with_session_key(mut decision: Decision, session: &str) -> Decision {
    if let Decision::Allow(allowed) = &mut decision
        && let Some(key) = &mut allowed.idempotency_key
    {
        *key = format!("{session}/{key}");
    }
    decision
}

/// Why `text`, free text from the agent (`what`), is refused, if it is
/// over the workflow's `text_bytes_max`.
fn over_text_limit(workflow: &Workflow, what: &str, text: &str) -> Option<String> {
    let max = workflow.limits().text_bytes_max;
    (text.len() > max)
        .then(|| format!("{what} is {} bytes, over the limit of {max} bytes; send a shorter one", text.len()))
}

fn refusal(rule: &str, message: String) -> Decision {
    Decision::Block(tollgate_core::Blocked {
        stage: tollgate_core::Stage::Admission,
        reasons: vec![tollgate_core::Reason { rule_id: rule.to_owned(), message }],
        missing: Vec::new(),
    })
}

fn unchanged(note: String) -> Recorded {
    Recorded { recorded: false, effects: Vec::new(), note: Some(note) }
}

fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Allow => "allow",
        Verdict::Block => "block",
        Verdict::Escalate => "escalate",
    }
}

fn outcome_name(outcome: ToolOutcome) -> &'static str {
    match outcome {
        ToolOutcome::Succeeded => "succeeded",
        ToolOutcome::Failed => "failed",
    }
}

/// The JSON at `pointer`, or null.
fn at<'a>(value: &'a Json, pointer: &str) -> &'a Json {
    static NULL: Json = Json::Null;
    value.pointer(pointer).unwrap_or(&NULL)
}
