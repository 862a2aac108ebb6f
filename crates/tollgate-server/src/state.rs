//! What every request shares: the engine, the workflows this server runs,
//! its limits, the token cache, the rate limiter, the shutdown signal and
//! where handoff events are announced.

use crate::limits::RateLimiter;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tollgate_engine::{Engine, Handoff, Token, WorkflowHandle};

/// The limits of a server, each named with its unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Largest request body accepted (413 beyond it).
    pub body_bytes_max: usize,
    /// Longest an agent may wait for a handoff's outcome in one request
    /// (`?wait=`); also kept under `request_seconds_max`.
    pub wait_seconds_max: u64,
    /// Longest a request may take before it is answered with a 503 problem
    /// (the work it started still completes; a retry gets its result). An
    /// event stream is not cut once its headers are sent.
    pub request_seconds_max: u64,
    /// Requests per second each token may make on this replica (0: no limit).
    pub rate_per_second: f64,
    /// Requests a token may make at once after being idle.
    pub rate_burst: f64,
    /// How long a token once found valid is trusted without asking the store
    /// again: a revoked token stops working within this time on every
    /// replica. 0: the store is asked on every request.
    pub token_cache_seconds: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body_bytes_max: 1024 * 1024,
            wait_seconds_max: 25,
            request_seconds_max: 30,
            rate_per_second: 50.0,
            rate_burst: 100.0,
            token_cache_seconds: 1,
        }
    }
}

/// Something that hears of handoffs as they are opened, decided or expired
/// (the webhook). It must not block: it is called on the request's path.
pub trait Announcer: Send + Sync {
    /// `event` (`handoff.opened`, `handoff.claimed`, ..., `handoff.expired`)
    /// happened to `handoff`.
    fn announce(&self, event: &str, handoff: &Handoff);
}

/// The server's shared state: cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    engine: Arc<Engine>,
    /// Workflows by name: the newest version registered under each name.
    workflows: RwLock<BTreeMap<String, WorkflowHandle>>,
    limits: Limits,
    /// Tokens found valid, by the SHA-256 of the token, with when.
    tokens: Mutex<HashMap<[u8; 32], (Instant, Token)>>,
    rate: RateLimiter,
    shutdown: tokio::sync::watch::Sender<bool>,
    announcer: Option<Arc<dyn Announcer>>,
}

/// Most tokens the cache holds; past it, it starts afresh.
const TOKEN_CACHE_MAX: usize = 10_000;

impl AppState {
    /// State over `engine`, running `workflows`, within `limits`.
    pub fn new(engine: Arc<Engine>, workflows: Vec<WorkflowHandle>, limits: Limits) -> AppState {
        AppState::with_announcer(engine, workflows, limits, None)
    }

    /// [`AppState::new`], announcing handoff events to `announcer`.
    pub fn with_announcer(
        engine: Arc<Engine>,
        workflows: Vec<WorkflowHandle>,
        limits: Limits,
        announcer: Option<Arc<dyn Announcer>>,
    ) -> AppState {
        let rate = RateLimiter::new(limits.rate_per_second, limits.rate_burst);
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let state = AppState(Arc::new(Inner {
            engine,
            workflows: RwLock::new(BTreeMap::new()),
            limits,
            tokens: Mutex::new(HashMap::new()),
            rate,
            shutdown,
            announcer,
        }));
        for workflow in workflows {
            state.add_workflow(workflow);
        }
        state
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.0.engine
    }

    /// The engine, shared.
    pub fn engine_arc(&self) -> Arc<Engine> {
        Arc::clone(&self.0.engine)
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }

    /// The rate limiter.
    pub(crate) fn rate(&self) -> &RateLimiter {
        &self.0.rate
    }

    /// Tells long-polls and event streams to end: the server is stopping.
    pub fn begin_shutdown(&self) {
        self.0.shutdown.send_replace(true);
    }

    /// Resolves once [`AppState::begin_shutdown`] was called.
    pub async fn shutting_down(&self) {
        let mut receiver = self.0.shutdown.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        let _ = receiver.wait_for(|stopping| *stopping).await;
    }

    /// Whether anyone listens for handoff events.
    pub(crate) fn announces(&self) -> bool {
        self.0.announcer.is_some()
    }

    /// Announces `event` on `handoff`, if anyone listens.
    pub(crate) fn announce(&self, event: &str, handoff: &Handoff) {
        if let Some(announcer) = &self.0.announcer {
            announcer.announce(event, handoff);
        }
    }

    /// A valid token found in the cache, if it was checked within the cache's time.
    pub(crate) fn cached_token(&self, digest: &[u8; 32]) -> Option<Token> {
        let seconds = self.0.limits.token_cache_seconds;
        if seconds == 0 {
            return None;
        }
        let tokens = self.0.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, token) = tokens.get(digest)?;
        (at.elapsed() < Duration::from_secs(seconds)).then(|| token.clone())
    }

    /// Remembers a token the store found valid.
    pub(crate) fn cache_token(&self, digest: [u8; 32], token: Token) {
        if self.0.limits.token_cache_seconds == 0 {
            return;
        }
        let mut tokens = self.0.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if tokens.len() >= TOKEN_CACHE_MAX {
            tokens.clear();
        }
        tokens.insert(digest, (Instant::now(), token));
    }

    /// Runs `workflow` under its name from now on (a newer version of a name
    /// replaces an older one; sessions keep the one they started with).
    pub fn add_workflow(&self, workflow: WorkflowHandle) {
        let mut workflows = self.0.workflows.write().unwrap_or_else(PoisonError::into_inner);
        let name = workflow.workflow.name().to_owned();
        let newer = workflows.get(&name).is_none_or(|known| known.workflow.version() <= workflow.workflow.version());
        if newer {
            workflows.insert(name, workflow);
        }
    }

    /// A workflow this server runs, by name or by the hash of its text.
    pub fn workflow(&self, name_or_hash: &str) -> Option<WorkflowHandle> {
        let workflows = self.0.workflows.read().unwrap_or_else(PoisonError::into_inner);
        workflows.get(name_or_hash).or_else(|| workflows.values().find(|w| w.hash == name_or_hash)).cloned()
    }

    /// Every workflow this server runs, by name.
    pub fn workflows(&self) -> Vec<WorkflowHandle> {
        self.0.workflows.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }
}
