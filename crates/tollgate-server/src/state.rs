//! What every request shares: the engine, the workflows this server runs,
//! and its limits.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use tollgate_engine::{Engine, WorkflowHandle};

/// The limits of a server, each named with its unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body accepted.
    pub body_bytes_max: usize,
    /// Longest an agent may wait for a handoff's outcome in one request.
    pub wait_seconds_max: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { body_bytes_max: 1024 * 1024, wait_seconds_max: 60 }
    }
}

/// The server's shared state: cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    engine: Arc<Engine>,
    /// Workflows by name: the newest version registered under each name.
    workflows: RwLock<BTreeMap<String, WorkflowHandle>>,
    limits: Limits,
}

impl AppState {
    /// State over `engine`, running `workflows`, within `limits`.
    pub fn new(engine: Arc<Engine>, workflows: Vec<WorkflowHandle>, limits: Limits) -> AppState {
        let state = AppState(Arc::new(Inner { engine, workflows: RwLock::new(BTreeMap::new()), limits }));
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
