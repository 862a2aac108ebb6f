//! Running the server: open the store, register the workflows, bind the
//! listener ([`Bound::bind`], so a caller learns the port before serving),
//! then serve until `shutdown` resolves ([`Bound::run`]). Meanwhile a sweep
//! expires overdue handoffs and the webhook announces handoff events. On
//! shutdown: no new connections, open event streams and long-polls end,
//! requests in flight finish, the webhook's queue is given a moment to
//! drain, and the store is closed.

use crate::desk::Desk;
use crate::state::{Announcer, AppState, Limits};
use crate::webhook::{Webhook, WebhookConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tollgate_engine::{AuditKey, Engine, WorkflowHandle};

/// A workflow file the server runs.
#[derive(Clone, Debug)]
pub struct WorkflowSource {
    /// Where it was read from (shown in its problems).
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

/// Everything `tollgate serve` is told.
pub struct Config {
    /// The workflows to run.
    pub workflows: Vec<WorkflowSource>,
    /// The store: an SQLite file or a `postgres://` URL.
    pub db: String,
    /// Where to listen (`127.0.0.1:0`: any free port).
    pub listen: SocketAddr,
    /// The limits.
    pub limits: Limits,
    /// Where to announce handoff events, if anywhere.
    pub webhook: Option<WebhookConfig>,
    /// The key the audit log's head is signed with, if any.
    pub audit_key: Option<AuditKey>,
    /// How often overdue handoffs are expired.
    pub expiry_sweep_every: Duration,
    /// The desk's CSRF key (replicas behind one address must share one:
    /// [`Desk::from_secret`]); `None` draws one at start.
    pub desk: Option<Desk>,
    /// The ExtMcp policy service for agentgateway, on a listener of its own.
    pub extmcp: Option<ExtMcpConfig>,
}

/// Where and how `tollgate serve` answers agentgateway's ExtMcp checks.
#[derive(Clone, Debug)]
pub struct ExtMcpConfig {
    /// Where the gRPC service listens (h2c).
    pub listen: SocketAddr,
    /// The workflow new sessions run under: a registered workflow's name or
    /// hash; `None` when exactly one is registered.
    pub workflow: Option<String>,
    /// How sessions are found.
    pub options: tollgate_extmcp::Options,
}

impl Config {
    /// A config with the default limits, no webhook, no audit key, and an
    /// expiry sweep every 5 seconds.
    pub fn new(workflows: Vec<WorkflowSource>, db: impl Into<String>, listen: SocketAddr) -> Config {
        Config {
            workflows,
            db: db.into(),
            listen,
            limits: Limits::default(),
            webhook: None,
            audit_key: None,
            expiry_sweep_every: Duration::from_secs(5),
            desk: None,
            extmcp: None,
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened, or a workflow does not compile.
    #[error(transparent)]
    Engine(#[from] tollgate_engine::Error),
    /// The ExtMcp service names no workflow it can run.
    #[error("the ExtMcp service: {0}")]
    ExtMcp(String),
    /// The listener could not be bound, or failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// Where.
        addr: String,
        /// What failed.
        source: std::io::Error,
    },
}

/// A server bound to its address, not yet serving.
pub struct Bound {
    listener: tokio::net::TcpListener,
    state: AppState,
    engine: Arc<Engine>,
    webhook: Option<Webhook>,
    sweep_every: Duration,
    desk: Desk,
    extmcp: Option<(tokio::net::TcpListener, Arc<tollgate_extmcp::Policy>)>,
}

/// How many overdue handoffs one sweep expires at most.
const SWEEP_BATCH: i64 = 100;

/// How long the webhook's queue may drain at shutdown.
const WEBHOOK_DRAIN: Duration = Duration::from_secs(5);

impl Bound {
    /// Opens the store, registers the workflows and binds the listener.
    pub async fn bind(config: Config) -> Result<Bound, ServeError> {
        let mut engine = Engine::open(&config.db).await?;
        if let Some(key) = config.audit_key {
            engine = engine.with_audit_key(key);
        }
        let engine = Arc::new(engine);
        let mut workflows = Vec::new();
        for source in &config.workflows {
            workflows.push(engine.register_workflow(&source.text, &source.path.display().to_string()).await?);
        }
        let webhook = config.webhook.map(Webhook::start);
        let announcer = webhook.as_ref().map(|w| Arc::new(w.clone()) as Arc<dyn Announcer>);
        let state = AppState::with_announcer(Arc::clone(&engine), workflows.clone(), config.limits, announcer);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Listen { addr: config.listen.to_string(), source })?;
        let desk = config.desk.unwrap_or_default();
        let extmcp = match config.extmcp {
            None => None,
            Some(extmcp) => {
                let workflow = extmcp_workflow(&workflows, extmcp.workflow.as_deref())?;
                let policy = tollgate_extmcp::Policy::new(Arc::clone(&engine), workflow, extmcp.options);
                let listener = tokio::net::TcpListener::bind(extmcp.listen)
                    .await
                    .map_err(|source| ServeError::Listen { addr: extmcp.listen.to_string(), source })?;
                Some((listener, Arc::new(policy)))
            }
        };
        Ok(Bound { listener, state, engine, webhook, sweep_every: config.expiry_sweep_every, desk, extmcp })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener.local_addr().map_err(|source| ServeError::Listen { addr: "the listener".into(), source })
    }

    /// The address the ExtMcp service listens on, if it runs.
    pub fn extmcp_addr(&self) -> Result<Option<SocketAddr>, ServeError> {
        match &self.extmcp {
            None => Ok(None),
            Some((listener, _)) => listener
                .local_addr()
                .map(Some)
                .map_err(|source| ServeError::Listen { addr: "the ExtMcp listener".into(), source }),
        }
    }

    /// The server's state (tests reach the engine through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops gracefully.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let Bound { listener, state, engine, webhook, sweep_every, desk, extmcp } = self;
        let addr = listener.local_addr().map_or_else(|_| "the listener".to_owned(), |a| a.to_string());
        let sweep = tokio::spawn(sweep(state.clone(), sweep_every));
        let extmcp = extmcp.map(|(listener, policy)| {
            let stopping = state.clone();
            tokio::spawn(async move {
                let stop = async move { stopping.shutting_down().await };
                if let Err(error) = tollgate_extmcp::serve(policy, listener, stop).await {
                    eprintln!("tollgate serve: {error}");
                }
            })
        });
        let router = crate::router_and_document_with(state.clone(), desk).0;
        let stopping = state.clone();
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                // Event streams and long-polls end, so the connections drain.
                stopping.begin_shutdown();
            })
            .await;
        state.begin_shutdown();
        let _ = sweep.await;
        if let Some(extmcp) = extmcp {
            let _ = extmcp.await;
        }
        if let Some(webhook) = webhook {
            webhook.stop(WEBHOOK_DRAIN).await;
        }
        engine.close().await;
        served.map_err(|source| ServeError::Listen { addr, source })
    }
}

/// The workflow the ExtMcp service runs new sessions under.
fn extmcp_workflow(workflows: &[WorkflowHandle], wanted: Option<&str>) -> Result<WorkflowHandle, ServeError> {
    let found: Vec<&WorkflowHandle> = match wanted {
        None => workflows.iter().collect(),
        Some(wanted) => workflows.iter().filter(|w| w.hash == wanted || w.workflow.name() == wanted).collect(),
    };
    match (found.as_slice(), wanted) {
        ([only], _) => Ok((*only).clone()),
        ([], Some(wanted)) => Err(ServeError::ExtMcp(format!("no workflow named {wanted} is served (--workflow)"))),
        ([], None) => Err(ServeError::ExtMcp("it needs a workflow (--workflow)".into())),
        (_, _) => Err(ServeError::ExtMcp(
            "several workflows are served: name the one for the gateway's sessions (--extmcp-workflow NAME)".into(),
        )),
    }
}

/// Runs the server of `config` until `shutdown` resolves.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
    Bound::bind(config).await?.run(shutdown).await
}

/// Expires overdue handoffs every `every` until the server stops, counting
/// and announcing each.
async fn sweep(state: AppState, every: Duration) {
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(100)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = state.shutting_down() => return,
        }
        match state.engine().expire_overdue_handoffs(SWEEP_BATCH).await {
            Ok(expired) => {
                for handoff in &expired {
                    crate::metrics::handoff(&handoff.status);
                    state.announce("handoff.expired", handoff);
                }
            }
            Err(error) => eprintln!("tollgate serve: expiring overdue handoffs failed: {error}"),
        }
    }
}
