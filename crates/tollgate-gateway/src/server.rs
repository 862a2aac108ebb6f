//! The gateway as an MCP server: its state shared by every client, the
//! handler each connection (or, on the newest protocol, each request) gets,
//! and serving it over stdio or streamable HTTP.

#![expect(
    deprecated,
    reason = "logging, sampling, elicitation, roots and resource subscriptions are deprecated by the newest \
              protocol; older clients and servers use them, and the gateway relays them as they are"
)]

use crate::downstream::Downstream;
use crate::shadow::Shadow;
use crate::upstream::{self, Upstream, UpstreamSpec};
use crate::{Error, Mode, Options, ShadowReport, Undeclared, names};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult, ErrorData, GetPromptRequestParams,
    GetPromptResponse, Implementation, InitializeRequestParams, InitializeResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, SetLevelRequestParams,
    SubscribeRequestParams, Tool, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tollgate_engine::{Engine, WorkflowHandle};

/// Where a client-facing tool goes.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    /// Index into the gateway's upstreams.
    pub(crate) upstream: usize,
    /// The tool's name at the upstream.
    pub(crate) tool: String,
    /// The workflow tool that decides it (`None`: undeclared).
    pub(crate) workflow_tool: Option<String>,
}

#[derive(Default)]
pub(crate) struct Tools {
    pub(crate) routes: HashMap<String, Route>,
    pub(crate) listed: Vec<Tool>,
}

/// The gateway: the engine, the workflow, the upstreams, and what it knows
/// of their tools. Shared by every client connection.
pub struct Gateway {
    pub(crate) engine: Arc<Engine>,
    pub(crate) workflow: WorkflowHandle,
    pub(crate) options: Options,
    pub(crate) upstreams: Vec<Upstream>,
    pub(crate) tools: RwLock<Tools>,
    pub(crate) downstream: Arc<Downstream>,
    pub(crate) shadow: Shadow,
    /// Sessions known to exist (created or found) in this process.
    pub(crate) sessions: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Call ids are `{call_prefix}-{n}`: unique across restarts of a session.
    pub(crate) call_prefix: String,
    pub(crate) calls: AtomicU64,
    pub(crate) stdio_session: String,
    capabilities: ServerCapabilities,
}

impl Gateway {
    pub(crate) async fn connect(
        engine: Arc<Engine>,
        workflow: WorkflowHandle,
        specs: &[UpstreamSpec],
        options: Options,
    ) -> Result<Arc<Gateway>, Error> {
        let downstream = Arc::new(Downstream::default());
        let mut upstreams = Vec::with_capacity(specs.len());
        for spec in specs {
            match upstream::connect(spec, Arc::clone(&downstream)).await {
                Ok(connected) => upstreams.push(connected),
                Err(error) => {
                    for connected in &upstreams {
                        connected.close().await;
                    }
                    return Err(error);
                }
            }
        }
        let capabilities = merged_capabilities(&upstreams);
        let started_ms = engine.now_ms();
        let stdio_session =
            options.stdio_session.clone().unwrap_or_else(|| format!("mcp-{}-{started_ms}", std::process::id()));
        let gateway = Gateway {
            engine,
            workflow,
            options,
            upstreams,
            tools: RwLock::new(Tools::default()),
            downstream,
            shadow: Shadow::default(),
            sessions: std::sync::Mutex::new(std::collections::HashSet::new()),
            call_prefix: format!("g{started_ms}.{}", std::process::id()),
            calls: AtomicU64::new(0),
            stdio_session,
            capabilities,
        };
        gateway.refresh_tools().await.map_err(|message| Error::Upstream { name: "tools/list".into(), message })?;
        Ok(Arc::new(gateway))
    }

    /// The session a stdio client's calls go to when it names none.
    pub fn stdio_session(&self) -> &str {
        &self.stdio_session
    }

    /// What shadow mode saw so far.
    pub fn shadow_report(&self) -> ShadowReport {
        self.shadow.report()
    }

    /// Closes every upstream (child processes are stopped).
    pub async fn close(&self) {
        for upstream in &self.upstreams {
            upstream.close().await;
        }
    }

    /// Reads every upstream's tools and rebuilds the table: names, routes,
    /// and the listed tools (undeclared ones left out unless allowed;
    /// every tool listed in shadow mode, which refuses nothing).
    pub(crate) async fn refresh_tools(&self) -> Result<(), String> {
        let mut tools = Tools::default();
        let workflow = &self.workflow.workflow;
        for (index, upstream) in self.upstreams.iter().enumerate() {
            let listed = upstream
                .peer
                .list_all_tools()
                .await
                .map_err(|e| format!("upstream {} did not list its tools: {e}", upstream.name))?;
            for mut tool in listed {
                let exposed = names::exposed_name(&upstream.name, &tool.name, self.upstreams.len());
                let workflow_tool = names::workflow_tool_name(workflow, &exposed).map(str::to_owned);
                let listed = workflow_tool.is_some()
                    || self.options.undeclared == Undeclared::Allow
                    || self.options.mode == Mode::Shadow;
                tools.routes.insert(
                    exposed.clone(),
                    Route { upstream: index, tool: tool.name.to_string(), workflow_tool: workflow_tool.clone() },
                );
                if !listed {
                    continue;
                }
                if let Some(prerequisites) =
                    workflow_tool.as_deref().and_then(|name| names::describe_prerequisites(workflow, name))
                {
                    let description = match tool.description.as_deref() {
                        Some(text) if !text.is_empty() => format!("{text}\n\n{prerequisites}"),
                        _ => prerequisites,
                    };
                    tool.description = Some(description.into());
                }
                tool.name = exposed.into();
                tools.listed.push(tool);
            }
        }
        *self.tools.write().unwrap_or_else(std::sync::PoisonError::into_inner) = tools;
        Ok(())
    }

    pub(crate) fn route(&self, exposed: &str) -> Option<Route> {
        self.tools.read().unwrap_or_else(std::sync::PoisonError::into_inner).routes.get(exposed).cloned()
    }

    fn listed_tools(&self) -> Vec<Tool> {
        self.tools.read().unwrap_or_else(std::sync::PoisonError::into_inner).listed.clone()
    }

    /// The upstream that serves prompts, resources or completion: the first
    /// that declares the capability.
    fn upstream_with(&self, has: impl Fn(&ServerCapabilities) -> bool) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.peer.peer_info().is_some_and(|info| has(&info.capabilities)))
    }

    pub(crate) fn next_call_id(&self) -> String {
        format!("{}-{}", self.call_prefix, self.calls.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// Every upstream's capabilities, merged; tools always.
fn merged_capabilities(upstreams: &[Upstream]) -> ServerCapabilities {
    let mut merged = serde_json::Map::new();
    for upstream in upstreams {
        let Some(info) = upstream.peer.peer_info() else { continue };
        if let Ok(serde_json::Value::Object(capabilities)) = serde_json::to_value(&info.capabilities) {
            for (key, value) in capabilities {
                merged.entry(key).or_insert(value);
            }
        }
    }
    merged.insert("tools".into(), serde_json::json!({"listChanged": true}));
    // Tasks (an extension) are not relayed: a tools/call is answered whole.
    merged.remove("extensions");
    merged.remove("experimental");
    serde_json::from_value(serde_json::Value::Object(merged)).unwrap_or_default()
}

/// How a client reaches the gateway: it decides where a call's session key
/// comes from when the client names none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Stdio,
    Http,
}

/// The handler of one client connection (or one request, statelessly).
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) transport: Transport,
}

fn not_offered(what: &str) -> ErrorData {
    ErrorData::new(rmcp::model::ErrorCode::METHOD_NOT_FOUND, format!("no upstream of this gateway offers {what}"), None)
}

fn upstream_error(upstream: &str, error: rmcp::ServiceError) -> ErrorData {
    match error {
        rmcp::ServiceError::McpError(error) => error,
        other => ErrorData::internal_error(format!("upstream {upstream} failed: {other}"), None),
    }
}

impl Connection {
    /// Forwards one request to an upstream, cancelled if the client cancels.
    async fn forward<T>(
        &self,
        context: &RequestContext<RoleServer>,
        upstream: &Upstream,
        request: impl std::future::Future<Output = Result<T, rmcp::ServiceError>>,
    ) -> Result<T, ErrorData> {
        self.gateway.downstream.request(&context.peer);
        let answer = tokio::select! {
            answer = request => answer.map_err(|e| upstream_error(&upstream.name, e)),
            () = context.ct.cancelled() => Err(ErrorData::internal_error("the request was cancelled", None)),
        };
        answer
    }
}

impl ServerHandler for Connection {
    fn get_info(&self) -> ServerConfig {
        InitializeResult::new(self.gateway.capabilities.clone())
            .with_server_info(Implementation::new("tollgate-gateway", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "Tool calls go through Tollgate (workflow {} v{}): a refused call comes back as an error result \
                 with the reasons and what to do first.",
                self.gateway.workflow.workflow.name(),
                self.gateway.workflow.workflow.version()
            ))
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        self.gateway.downstream.connected(&context.peer);
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.gateway.downstream.request(&context.peer);
        // Read afresh: a list an upstream changed is seen at once.
        if let Err(message) = self.gateway.refresh_tools().await {
            return Err(ErrorData::internal_error(message, None));
        }
        Ok(ListToolsResult::with_all_items(self.gateway.listed_tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let mut result = crate::call::call(self, request, context).await;
        // A result of the newest protocol names its type; the handler strips
        // it again for a client of an older one.
        if result.result_type.is_none() {
            result.result_type = Some(rmcp::model::ResultType::COMPLETE);
        }
        Ok(CallToolResponse::Complete(result))
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let upstream = self.gateway.upstream_with(|c| c.prompts.is_some()).ok_or_else(|| not_offered("prompts"))?;
        self.forward(&context, upstream, upstream.peer.list_prompts(request)).await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let upstream = self.gateway.upstream_with(|c| c.prompts.is_some()).ok_or_else(|| not_offered("prompts"))?;
        self.forward(&context, upstream, upstream.peer.get_prompt_once(request)).await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let upstream = self.gateway.upstream_with(|c| c.resources.is_some()).ok_or_else(|| not_offered("resources"))?;
        self.forward(&context, upstream, upstream.peer.list_resources(request)).await
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let upstream = self.gateway.upstream_with(|c| c.resources.is_some()).ok_or_else(|| not_offered("resources"))?;
        self.forward(&context, upstream, upstream.peer.list_resource_templates(request)).await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let upstream = self.gateway.upstream_with(|c| c.resources.is_some()).ok_or_else(|| not_offered("resources"))?;
        self.forward(&context, upstream, upstream.peer.read_resource_once(request)).await
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let upstream = self.gateway.upstream_with(|c| c.resources.is_some()).ok_or_else(|| not_offered("resources"))?;
        self.forward(&context, upstream, upstream.peer.subscribe(request)).await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let upstream = self.gateway.upstream_with(|c| c.resources.is_some()).ok_or_else(|| not_offered("resources"))?;
        self.forward(&context, upstream, upstream.peer.unsubscribe(request)).await
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let upstream =
            self.gateway.upstream_with(|c| c.completions.is_some()).ok_or_else(|| not_offered("completion"))?;
        self.forward(&context, upstream, upstream.peer.complete(request)).await
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // Every upstream that logs is told.
        let mut told = false;
        for upstream in &self.gateway.upstreams {
            if upstream.peer.peer_info().is_some_and(|info| info.capabilities.logging.is_some()) {
                self.forward(&context, upstream, upstream.peer.set_level(request.clone())).await?;
                told = true;
            }
        }
        if told { Ok(()) } else { Err(not_offered("logging")) }
    }
}

/// Serves one client over this process's standard input and output until it
/// closes them; then closes the upstreams.
pub async fn serve_stdio(gateway: Arc<Gateway>) -> Result<(), Error> {
    use rmcp::ServiceExt;
    let connection = Connection { gateway: Arc::clone(&gateway), transport: Transport::Stdio };
    let running = connection.serve(rmcp::transport::stdio()).await.map_err(|e| Error::Io {
        what: "serving on standard input and output".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let _ = running.waiting().await;
    gateway.close().await;
    Ok(())
}

/// Serves MCP's streamable HTTP at `/mcp` on `listener` until `stop`
/// resolves; then closes the upstreams.
pub async fn serve_http(
    gateway: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
    let config = StreamableHttpServerConfig::default();
    let cancel = config.cancellation_token.clone();
    let for_service = Arc::clone(&gateway);
    let service = StreamableHttpService::new(
        move || Ok(Connection { gateway: Arc::clone(&for_service), transport: Transport::Http }),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = axum::serve::ListenerExt::tap_io(listener, no_delay);
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            stop.await;
            cancel.cancel();
        })
        .await;
    gateway.close().await;
    served.map_err(|source| Error::Io { what: "serving streamable HTTP".into(), source })
}

/// Turns Nagle's algorithm off on an accepted connection (hyper leaves it
/// on). rmcp answers a request of a protocol session (the handshake's
/// versions) in two writes, an SSE priming event and then the result; with
/// Nagle on, the second can wait for the client's delayed ACK of the first
/// (up to 40 ms on Linux). Failing to set it only costs time.
pub(crate) fn no_delay(tcp: &mut tokio::net::TcpStream) {
    let _ = tcp.set_nodelay(true);
}
