//! The engine's calls that change sessions, and the group commit they go
//! through. `decide`, `record_result`, `record_and_decide` and the
//! investigation calls queue a job and wait; concurrent jobs queue while one
//! transaction is being written, and the caller that takes the lock next
//! commits the whole queue (up to [`GROUP_MAX`]) in one transaction, running
//! each job (`calls.rs`, `investigations.rs`) under its sessions' locks.
//! Every caller hears its answer only after that commit. A database error
//! fails the whole group (nothing of it is stored); a bad call fails alone.

use crate::calls::CallDecision;
use crate::calls::Recorded;
use crate::handoffs::Handoff;
use crate::investigations::{Concern, Investigation};
use crate::sessions::{CACHED_SESSIONS_MAX, Cached};
use crate::{Engine, Error, check_id};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::PoisonError;
use tollgate_core::human::HumanAction;
use tollgate_core::{ToolCall, ToolOutcome};
use tollgate_store::SessionTx;

/// A call or result waiting to be committed with its group.
pub(crate) enum Job {
    Decide { session: String, call: ToolCall },
    Record { session: String, call_id: String, result: Json, outcome: ToolOutcome },
    Open { parent: String, concerns: Vec<Concern> },
    Conclude { session: String, outcome: String },
    Join { parent: String },
    Human { session: String, call: String, handoff: String, action: HumanAction },
}

impl Job {
    fn session(&self) -> &str {
        match self {
            Job::Decide { session, .. }
            | Job::Record { session, .. }
            | Job::Conclude { session, .. }
            | Job::Human { session, .. } => session,
            Job::Open { parent, .. } | Job::Join { parent } => parent,
        }
    }
}

/// A job's answer.
pub(crate) enum Reply {
    Decided(CallDecision),
    Recorded(Recorded),
    Opened(Vec<Investigation>),
    Concluded,
    Joined(tollgate_core::Join),
    Human(Handoff),
}

pub(crate) struct Queued {
    job: Job,
    /// The tenant the caller acts for (`None`: the engine's own caller, who
    /// may touch every tenant's sessions): a job on another tenant's session
    /// is refused as if the session did not exist.
    tenant: Option<String>,
    reply: tokio::sync::oneshot::Sender<Result<Reply, Error>>,
}

/// Calls committed in one transaction at most.
pub(crate) const GROUP_MAX: usize = 512;

/// Why a group's callers hear nothing: it was abandoned.
fn abandoned() -> Error {
    Error::storage("the group this call was in was abandoned; nothing of it was stored")
}

/// The engine answered a job with another job's kind of answer: a bug, said
/// as a storage error so the caller retries rather than acts.
fn mismatched(what: &str) -> Error {
    Error::storage(format!("the engine answered {what} with something else; nothing was acted on"))
}

/// A group that failed to commit: nothing of it was stored.
fn not_committed(message: &str) -> Error {
    Error::storage(format!("the call could not be committed, so nothing of it was stored: {message}"))
}

impl Engine {
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
    pub async fn decide(&self, session: &str, call: &ToolCall) -> Result<CallDecision, Error> {
        self.decide_as(None, session, call).await
    }

    pub(crate) async fn decide_as(
        &self,
        tenant: Option<&str>,
        session: &str,
        call: &ToolCall,
    ) -> Result<CallDecision, Error> {
        check_id("session", session)?;
        match self.submit(tenant, Job::Decide { session: session.to_owned(), call: self.timed(call) }).await? {
            Reply::Decided(decided) => Ok(decided),
            _ => Err(mismatched("a decision")),
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
    ) -> Result<Recorded, Error> {
        self.record_result_as(None, session, call_id, result, outcome).await
    }

    pub(crate) async fn record_result_as(
        &self,
        tenant: Option<&str>,
        session: &str,
        call_id: &str,
        result: &Json,
        outcome: ToolOutcome,
    ) -> Result<Recorded, Error> {
        check_id("session", session)?;
        // No call was ever decided under an id that is not one: refused here,
        // before anything is queued or stored.
        check_id("call", call_id)?;
        let job =
            Job::Record { session: session.to_owned(), call_id: call_id.to_owned(), result: result.clone(), outcome };
        match self.submit(tenant, job).await? {
            Reply::Recorded(recorded) => Ok(recorded),
            _ => Err(mismatched("a result")),
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
    ) -> Result<(Recorded, CallDecision), Error> {
        self.record_and_decide_as(None, session, call_id, result, outcome, next).await
    }

    pub(crate) async fn record_and_decide_as(
        &self,
        tenant: Option<&str>,
        session: &str,
        call_id: &str,
        result: &Json,
        outcome: ToolOutcome,
        next: &ToolCall,
    ) -> Result<(Recorded, CallDecision), Error> {
        check_id("session", session)?;
        // As `record_result`: no call was ever decided under an id that is not one.
        check_id("call", call_id)?;
        let jobs = vec![
            Job::Record { session: session.to_owned(), call_id: call_id.to_owned(), result: result.clone(), outcome },
            Job::Decide { session: session.to_owned(), call: self.timed(next) },
        ];
        let mut answers = self.submit_all(tenant, jobs).await.into_iter();
        match (answers.next(), answers.next()) {
            (Some(Ok(Reply::Recorded(recorded))), Some(Ok(Reply::Decided(decided)))) => Ok((recorded, decided)),
            (Some(Err(error)), _) | (_, Some(Err(error))) => Err(error),
            _ => Err(mismatched("a result and a decision")),
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

    /// Opens one investigation (child session) per concern of `parent`, in
    /// this order: each child inherits the parent's identity facts
    /// (journaled as its first entry, so they are write-once there too) and
    /// is limited to its concern's tools. The opening is journaled and
    /// audited in the parent and in each child, in one commit. Opening a
    /// concern again with the same text returns it as it is (a re-run after
    /// a crash); with other text it is refused.
    pub async fn open_investigations(&self, parent: &str, concerns: &[Concern]) -> Result<Vec<Investigation>, Error> {
        self.open_investigations_as(None, parent, concerns).await
    }

    pub(crate) async fn open_investigations_as(
        &self,
        tenant: Option<&str>,
        parent: &str,
        concerns: &[Concern],
    ) -> Result<Vec<Investigation>, Error> {
        self.prepare_opening(tenant, parent, concerns).await?;
        match self.submit(tenant, Job::Open { parent: parent.to_owned(), concerns: concerns.to_vec() }).await? {
            Reply::Opened(opened) => Ok(opened),
            _ => Err(Error::storage("the engine answered an opening with something else; nothing was acted on")),
        }
    }

    /// Ends an investigation with its outcome (resolved), journaled and
    /// audited. An investigation that ended (concluded, or escalated by one
    /// of its calls) cannot be concluded again.
    pub async fn conclude(&self, session: &str, outcome: &str) -> Result<(), Error> {
        self.conclude_as(None, session, outcome).await
    }

    pub(crate) async fn conclude_as(&self, tenant: Option<&str>, session: &str, outcome: &str) -> Result<(), Error> {
        check_id("session", session)?;
        let job = Job::Conclude { session: session.to_owned(), outcome: outcome.to_owned() };
        match self.submit(tenant, job).await? {
            Reply::Concluded => Ok(()),
            _ => Err(Error::storage("the engine answered a conclusion with something else; nothing was acted on")),
        }
    }

    /// Joins the investigations of `parent`: every finding in the order the
    /// concerns were opened, and, if any escalated, a handoff with every
    /// concern. Fails with [`Error::Running`] while any has not
    /// ended. The join is journaled and audited in the parent once: joining
    /// the same investigations again gives the same join back and writes
    /// nothing.
    pub async fn join(&self, parent: &str) -> Result<tollgate_core::Join, Error> {
        self.join_as(None, parent).await
    }

    pub(crate) async fn join_as(&self, tenant: Option<&str>, parent: &str) -> Result<tollgate_core::Join, Error> {
        check_id("session", parent)?;
        match self.submit(tenant, Job::Join { parent: parent.to_owned() }).await? {
            Reply::Joined(join) => Ok(join),
            _ => Err(Error::storage("the engine answered a join with something else; nothing was acted on")),
        }
    }

    /// A person's (or the clock's) action on handoff `handoff` (of call
    /// `call` in `session`), committed with its journal entry and audit
    /// record through the group.
    pub(crate) async fn submit_human(
        &self,
        tenant: Option<&str>,
        session: &str,
        call: &str,
        handoff: &str,
        action: HumanAction,
    ) -> Result<Handoff, Error> {
        let job =
            Job::Human { session: session.to_owned(), call: call.to_owned(), handoff: handoff.to_owned(), action };
        match self.submit(tenant, job).await? {
            Reply::Human(handoff) => Ok(handoff),
            _ => Err(mismatched("an action on a handoff")),
        }
    }

    /// Queues a job and waits for its answer, committing the queue itself
    /// when no one else is (leader and followers).
    ///
    /// If the leader's caller goes away mid-group (its future dropped), the
    /// group's other callers get a storage error; the group may or may
    /// not have been committed. Sending the same call again with the same id
    /// is always safe: it gets the recorded decision back if there is one.
    pub(crate) async fn submit(&self, tenant: Option<&str>, job: Job) -> Result<Reply, Error> {
        self.submit_all(tenant, vec![job]).await.pop().unwrap_or_else(|| Err(not_committed("no answer")))
    }

    /// Queues jobs together (in this order, so they land in one group unless
    /// the queue already holds a full group) and waits for every answer.
    pub(crate) async fn submit_all(&self, tenant: Option<&str>, jobs: Vec<Job>) -> Vec<Result<Reply, Error>> {
        let mut receivers = Vec::with_capacity(jobs.len());
        {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            for job in jobs {
                let (sender, receiver) = tokio::sync::oneshot::channel();
                queue.push(Queued { job, tenant: tenant.map(str::to_owned), reply: sender });
                receivers.push(receiver);
            }
        }
        let mut answers: Vec<Option<Result<Reply, Error>>> = receivers.iter().map(|_| None).collect();
        let collect = |receivers: &mut [tokio::sync::oneshot::Receiver<Result<Reply, Error>>],
                       answers: &mut [Option<Result<Reply, Error>>]| {
            for (receiver, answer) in receivers.iter_mut().zip(answers.iter_mut()) {
                if answer.is_none() {
                    *answer = match receiver.try_recv() {
                        Ok(reply) => Some(reply),
                        Err(tokio::sync::oneshot::error::TryRecvError::Empty) => None,
                        Err(tokio::sync::oneshot::error::TryRecvError::Closed) => Some(Err(abandoned())),
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
                        *answer = Some(reply.unwrap_or_else(|_| Err(abandoned())));
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
        answers.into_iter().map(|a| a.unwrap_or_else(|| Err(not_committed("no answer")))).collect()
    }

    /// Runs a group of jobs in one transaction and answers each.
    async fn commit_group(&self, jobs: Vec<Queued>) {
        let fail_all = |jobs: Vec<Queued>, message: String| {
            for queued in jobs {
                let _ = queued.reply.send(Err(not_committed(&message)));
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
                Job::Conclude { session, .. } | Job::Human { session, .. } => (session.as_str(), ""),
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
            let outcome = self.run_job(&mut tx, &mut overlay, &queued).await;
            if let Err(error) = &outcome
                && error.is_database()
            {
                // The transaction is broken: nothing of the group is kept.
                let message = error.to_string();
                senders.push(queued.reply);
                for sender in senders {
                    let _ = sender.send(Err(not_committed(&message)));
                }
                return;
            }
            answers.push(outcome);
            senders.push(queued.reply);
        }
        if let Err(error) = tx.commit().await {
            let message = error.to_string();
            for sender in senders {
                let _ = sender.send(Err(not_committed(&message)));
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
        if self.handoffs_moved.swap(false, std::sync::atomic::Ordering::Relaxed) {
            self.handoffs_changed.notify_waiters();
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
        queued: &Queued,
    ) -> Result<Reply, Error> {
        let job = &queued.job;
        // INVARIANT: a caller acting for a tenant reaches that tenant's
        // sessions only; another's is answered as no session at all, so its
        // existence is not revealed. Read under the session's lock, with the
        // row the job is about to read anyway.
        if let Some(tenant) = &queued.tenant {
            tx.lock(job.session()).await.map_err(|_| Error::no_session(job.session()))?;
            if &tx.info()?.tenant != tenant {
                return Err(Error::no_session(job.session()));
            }
        }
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
            Job::Human { session, call, handoff, action } => {
                self.human_in(tx, overlay, session, call, handoff, action).await.map(Reply::Human)
            }
        }
    }
}
