//! Tollgate's runtime: durable sessions over the pure decision core.
//!
//! Every session has a journal in the store. [`Engine::decide`] locks the
//! session (across processes), loads its state from the checkpoint plus the
//! journal after it, asks the core for a decision, and writes the decision
//! and its audit record (and, every [`CHECKPOINT_EVERY`] entries, a new
//! checkpoint) in one transaction before it returns: nobody acts on a
//! decision that is not on disk. [`Engine::record_result`] folds a tool's
//! result in the same way.
//!
//! Exactly once: a side-effecting call that is allowed carries an
//! idempotency key (`session/tool:call`). A call re-sent with the same id
//! and arguments gets its original decision back; a result recorded twice
//! changes nothing the second time; [`Engine::resume`] lists the calls that
//! were allowed but whose results never arrived (in doubt), with their keys,
//! so the caller re-drives them rather than running them anew.
//!
//! The engine owns the journal's record types (`journal.rs`, decoded
//! strictly) and its own views of sessions and the audit log; it hands out
//! none of the store's types and never the store itself. It knows no SQL
//! (the store does) and no wire format of a surface (HTTP, hooks, MCP).
//!
//! Its jobs, one module each: errors (`error.rs`), the clock (`clock.rs`),
//! group commit (`group.rs`), the journal (`journal.rs`), sessions and
//! their state (`sessions.rs`), calls and results (`calls.rs`),
//! investigations (`investigations.rs`), the audit log (`audit.rs`).

mod audit;
mod calls;
mod clock;
mod error;
mod group;
mod handoffs;
mod investigations;
pub mod journal;
mod sessions;
mod tenant;
mod tokens;

pub use audit::{AuditKey, AuditProblem, AuditRecord, AuditReport, AuditVerifyKey, SignedHead};
pub use calls::{CallDecision, Recorded};
pub use clock::Clock;
pub use error::{Conflict, Error, ErrorKind, Missing};
pub use handoffs::{APPROVAL_MAX_MS, Handoff, HandoffFilter, Waiting, handoff_id};
pub use investigations::{Concern, Investigation};
pub use sessions::{CHECKPOINT_EVERY, InDoubt, JOURNAL_PAGE_MAX, Resume, SessionInfo};
pub use tenant::{AUDIT_SCAN_MAX, AuditPage, Tenant};
pub use tokens::{Role, Token};
pub use tollgate_core::human::HumanAction;
use tollgate_store::Store;

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tollgate_core::Workflow;
use tollgate_store::StoredWorkflow;

/// A stored, compiled workflow.
#[derive(Clone, Debug)]
pub struct WorkflowHandle {
    /// SHA-256 of the workflow text, hex: what sessions refer to.
    pub hash: String,
    /// The compiled workflow.
    pub workflow: Arc<Workflow>,
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
    sessions: Mutex<HashMap<String, sessions::Cached>>,
    /// Calls and results waiting for the next group commit.
    queue: Mutex<Vec<group::Queued>>,
    /// Held by the caller that is committing a group.
    leader: tokio::sync::Mutex<()>,
    /// Groups committed, and the calls and results in them.
    groups: std::sync::atomic::AtomicU64,
    grouped: std::sync::atomic::AtomicU64,
    /// Set by a job that moves a handoff; the group's commit then wakes
    /// whoever waits on [`Engine::wait_for_handoff`].
    handoffs_moved: std::sync::atomic::AtomicBool,
    handoffs_changed: tokio::sync::Notify,
}

/// The tenant of sessions created without one (the CLI's, and every
/// session stored before tenants existed).
pub const DEFAULT_TENANT: &str = "default";

/// Longest session or call id accepted.
pub(crate) const ID_MAX: usize = 128;

/// Refuses an id from outside that is not 1 to [`ID_MAX`] characters of
/// letters, digits and `- _ . : # @`.
pub(crate) fn check_id(what: &str, id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= ID_MAX
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '#' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
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
            handoffs_moved: std::sync::atomic::AtomicBool::new(false),
            handoffs_changed: tokio::sync::Notify::new(),
        }
    }

    /// Opens the store at `url` (an SQLite file, created if missing, or a
    /// `postgres://` URL) and an engine over it.
    pub async fn open(url: &str) -> Result<Engine, Error> {
        Ok(Engine::new(Store::open(url).await?))
    }

    /// Opens the store at `url` only if it holds data already: a missing
    /// SQLite file is an error, not a new empty store (which would, say,
    /// verify as intact).
    pub async fn open_existing(url: &str) -> Result<Engine, Error> {
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        let remote = url.starts_with("postgres://") || url.starts_with("postgresql://");
        if !remote && !std::path::Path::new(path).exists() {
            return Err(Error::Storage { message: format!("no store at {url}"), database: false });
        }
        Engine::open(url).await
    }

    /// The same engine on another clock.
    pub fn with_clock(mut self, clock: Clock) -> Engine {
        self.clock = clock;
        self
    }

    /// The time now on the engine's clock (ms since the Unix epoch): what a
    /// surface bases an approval's expiry on, so it agrees with the time the
    /// engine decides at.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Closes the store: connections are closed and no new transaction
    /// starts (a call after this fails with a storage error).
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// SQLite: commit in place on the calling thread instead of handing the
    /// commit to the blocking pool (see `Store::commit_in_place`); for
    /// benchmarks on a multi-threaded runtime. Off by default.
    pub fn commit_in_place(&self, yes: bool) {
        self.store.commit_in_place(yes);
    }

    /// Compiles a workflow and stores its text, so sessions under it can be
    /// reloaded in any process.
    pub async fn register_workflow(&self, text: &str, file: &str) -> Result<WorkflowHandle, Error> {
        let workflow = compile(text, file)?;
        if let Some(problem) = tollgate_core::workflow_name_problem(workflow.name()) {
            return Err(Error::bad_request(format!("the workflow does not compile:\n{file}: {problem}")));
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
    pub async fn workflow(&self, hash: &str) -> Result<Arc<Workflow>, Error> {
        if let Some(workflow) = self.cache().get(hash) {
            return Ok(Arc::clone(workflow));
        }
        let stored = self
            .store
            .workflow(hash)
            .await?
            .ok_or_else(|| Error::NotFound { what: Missing::Workflow, id: hash.to_owned() })?;
        let workflow = Arc::new(compile(&stored.text, &stored.name)?);
        self.cache().insert(hash.to_owned(), Arc::clone(&workflow));
        Ok(workflow)
    }
}

/// Compiles a workflow's text; its problems, one a line, are a bad request.
fn compile(text: &str, file: &str) -> Result<Workflow, Error> {
    tollgate_core::compile(text, file).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        Error::bad_request(format!("the workflow does not compile:\n{}", lines.join("\n")))
    })
}
