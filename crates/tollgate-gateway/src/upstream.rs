//! Upstream MCP servers: parsing `NAME=COMMAND` / `NAME=URL`, connecting
//! (a child process over stdio, or streamable HTTP), and the client half
//! that relays what an upstream sends of its own accord (progress, logging,
//! list changes, sampling, elicitation, roots) to the gateway's clients.

#![expect(
    deprecated,
    reason = "logging, sampling, elicitation, roots and resource subscriptions are deprecated by the newest \
              protocol; older clients and servers use them, and the gateway relays them as they are"
)]

use crate::Error;
use crate::downstream::Downstream;
use rmcp::model::{
    ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
    ElicitResult, ErrorData, Implementation, ListRootsResult, LoggingMessageNotificationParam,
    ProgressNotificationParam, ProtocolVersion, ResourceUpdatedNotificationParam,
};
use rmcp::service::{NotificationContext, Peer, RequestContext, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use std::sync::Arc;

/// One `--upstream` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamSpec {
    /// Its name: the namespace of its tools when there are several.
    pub name: String,
    /// How to reach it.
    pub target: Target,
}

/// Where an upstream is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A command started as a child process, spoken to over its standard
    /// streams: the program and its arguments (split on whitespace).
    Command(Vec<String>),
    /// A streamable HTTP endpoint.
    Url(String),
}

impl std::str::FromStr for UpstreamSpec {
    type Err = Error;

    /// `NAME=COMMAND ARGS...` or `NAME=http://...`: a name of letters,
    /// digits, `-` and `_` (no `__`, which separates namespaces).
    fn from_str(spec: &str) -> Result<UpstreamSpec, Error> {
        let bad = |message: &str| Error::BadUpstream { spec: spec.to_owned(), message: message.to_owned() };
        let (name, rest) = spec.split_once('=').ok_or_else(|| bad("expected NAME=COMMAND or NAME=URL"))?;
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !name.contains("__");
        if !name_ok {
            return Err(bad("the name must be 1 to 64 letters, digits, - or _ (and no __)"));
        }
        let rest = rest.trim();
        let target = if rest.starts_with("http://") || rest.starts_with("https://") {
            Target::Url(rest.to_owned())
        } else {
            let words: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
            if words.is_empty() {
                return Err(bad("no command after NAME="));
            }
            Target::Command(words)
        };
        Ok(UpstreamSpec { name: name.to_owned(), target })
    }
}

/// The gateway's client of one upstream.
#[derive(Clone)]
pub(crate) struct UpstreamClient {
    name: String,
    downstream: Arc<Downstream>,
}

/// A connected upstream.
pub(crate) struct Upstream {
    pub(crate) name: String,
    pub(crate) peer: Peer<RoleClient>,
    /// Keeps the connection (and the child process) alive; closed on drop.
    pub(crate) running: tokio::sync::Mutex<Option<RunningService<RoleClient, UpstreamClient>>>,
}

impl Upstream {
    /// Closes the connection (a child process is stopped).
    pub(crate) async fn close(&self) {
        if let Some(running) = self.running.lock().await.take() {
            let _ = running.cancel().await;
        }
    }
}

/// Connects to `spec`: starts the command or opens the URL, and initialises.
pub(crate) async fn connect(spec: &UpstreamSpec, downstream: Arc<Downstream>) -> Result<Upstream, Error> {
    let failed = |message: String| Error::Upstream { name: spec.name.clone(), message };
    let client = UpstreamClient { name: spec.name.clone(), downstream };
    let running = match &spec.target {
        Target::Command(words) => {
            let Some((program, args)) = words.split_first() else {
                return Err(failed("no command".to_owned()));
            };
            let mut command = tokio::process::Command::new(program);
            command.args(args);
            let (transport, _stderr) = rmcp::transport::TokioChildProcess::builder(command)
                .stderr(std::process::Stdio::inherit())
                .spawn()
                .map_err(|e| failed(format!("cannot start {program}: {e}")))?;
            client.serve(transport).await.map_err(|e| failed(format!("cannot initialise: {e}")))?
        }
        Target::Url(url) => {
            let mut config =
                rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url.as_str());
            // As many calls in flight as the gateway's clients make.
            config.max_concurrent_requests = 256;
            let transport =
                rmcp::transport::StreamableHttpClientTransport::with_client(reqwest::Client::default(), config);
            client.serve(transport).await.map_err(|e| failed(format!("cannot initialise {url}: {e}")))?
        }
    };
    let peer = running.peer().clone();
    Ok(Upstream { name: spec.name.clone(), peer, running: tokio::sync::Mutex::new(Some(running)) })
}

impl ClientHandler for UpstreamClient {
    fn get_info(&self) -> ClientConfig {
        // Sampling, elicitation and roots are declared so an upstream may
        // ask for them; the gateway relays each to its client.
        let capabilities: ClientCapabilities = serde_json::from_value(
            serde_json::json!({"sampling": {}, "elicitation": {}, "roots": {"listChanged": true}}),
        )
        .unwrap_or_default();
        ClientConfig::new(capabilities, Implementation::new("tollgate-gateway", env!("CARGO_PKG_VERSION")))
            .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let peer = self.downstream.active(&self.name)?;
        peer.create_message(params).await.map_err(relayed)
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let peer = self.downstream.active(&self.name)?;
        peer.create_elicitation(params).await.map_err(relayed)
    }

    async fn list_roots(&self, _context: RequestContext<RoleClient>) -> Result<ListRootsResult, ErrorData> {
        let peer = self.downstream.active(&self.name)?;
        peer.list_roots().await.map_err(relayed)
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        self.downstream.progress(&self.name, params).await;
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.downstream.logging(params).await;
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.downstream.resource_updated(params).await;
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.downstream.list_changed(crate::downstream::Changed::Resources).await;
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.downstream.list_changed(crate::downstream::Changed::Tools).await;
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.downstream.list_changed(crate::downstream::Changed::Prompts).await;
    }
}

/// A client's failure to answer a relayed request, as the upstream hears it.
fn relayed(error: rmcp::ServiceError) -> ErrorData {
    match error {
        rmcp::ServiceError::McpError(error) => error,
        other => ErrorData::internal_error(format!("the gateway's client did not answer: {other}"), None),
    }
}
