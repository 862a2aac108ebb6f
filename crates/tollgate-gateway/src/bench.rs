//! What the gateway adds to a `tools/call`: the same call timed straight to
//! an upstream and through the gateway, in one run, over streamable HTTP on
//! loopback, with concurrent clients and every decision durable in the
//! store given. The upstream is an rmcp server in this process answering
//! an `echo` tool; the gateway runs in this process too, on its own port.
//! With the latencies it reports the CPU time this process spent per call on
//! each path (clients, gateway and upstream together, Linux only) and how
//! many decisions and results each durable commit carried.

use crate::{Options, UpstreamSpec};
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpClientTransport, StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServerHandler, ServiceExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_engine::Engine;

/// The workflow the benchmark decides by: one open tool.
const WORKFLOW: &str = r#"
[workflow]
name = "bench-gateway"
version = 1

[tools.echo]
description = "Echoes its text."
args = { type = "object", required = ["text"], properties = { text = { type = "string" } } }
"#;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The store (an SQLite path or a postgres:// URL).
    pub db: String,
    /// Concurrent clients, each with its own session.
    pub clients: usize,
    /// Calls each client makes per round, per path.
    pub calls: usize,
    /// Rounds; the paths alternate within each.
    pub rounds: usize,
}

/// Latencies of one path, in microseconds.
#[derive(Clone, Debug)]
pub struct Latency {
    /// Calls timed.
    pub calls: usize,
    /// Median.
    pub median_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// CPU time of this process (every client, the gateway and the
    /// upstream) per call while the path was timed; `None` where the
    /// process's CPU time cannot be read (not Linux).
    pub cpu_us_per_call: Option<f64>,
}

/// The figures of one run.
#[derive(Clone, Debug)]
pub struct Figures {
    /// Straight to the upstream.
    pub direct: Latency,
    /// Through the gateway (decided, forwarded, recorded).
    pub gateway: Latency,
    /// Decisions and results per durable commit (the engine's group commit).
    pub per_commit: f64,
}

#[derive(Clone)]
struct Echo;

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        let capabilities: ServerCapabilities =
            serde_json::from_value(serde_json::json!({"tools": {}})).unwrap_or_default();
        ServerConfig::new(capabilities)
    }

    async fn list_tools(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, rmcp::ErrorData> {
        let tool: rmcp::model::Tool = serde_json::from_value(serde_json::json!({
            "name": "echo",
            "description": "Echoes its text.",
            "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
        }))
        .map_err(|e| rmcp::ErrorData::internal_error(e.to_string(), None))?;
        Ok(rmcp::model::ListToolsResult::with_all_items(vec![tool]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, rmcp::ErrorData> {
        let text = request.arguments.and_then(|a| a.get("text").cloned()).unwrap_or_default().to_string();
        Ok(rmcp::model::CallToolResponse::Complete(CallToolResult::success(vec![ContentBlock::text(text)])))
    }
}

async fn serve<S: ServerHandler + Clone + Send + 'static>(handler: S) -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let router = axum::Router::new().nest_service("/mcp", service);
    // As the servers MCP upstreams run on do (Node's http, uvicorn): hyper
    // leaves Nagle on, and rmcp answers a request of a protocol session in
    // two writes (an SSE priming event, then the result), so without this
    // each forwarded call waits for the gateway's delayed ACK (~40 ms).
    let listener = axum::serve::ListenerExt::tap_io(listener, crate::server::no_delay);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!("http://{addr}/mcp"))
}

type Client = rmcp::service::RunningService<rmcp::RoleClient, ()>;

async fn client(url: &str) -> Result<Client, String> {
    let transport = StreamableHttpClientTransport::from_uri(url.to_owned());
    ().serve(transport).await.map_err(|e| format!("cannot connect to {url}: {e}"))
}

/// Runs the benchmark: the upstream and the gateway in this process, then
/// rounds in which every client times `calls` calls straight, then through
/// the gateway (alternating which goes first).
pub async fn run(options: &BenchOptions) -> Result<Figures, String> {
    let upstream = serve(Echo).await?;
    let engine = Arc::new(Engine::open(&options.db).await.map_err(|e| e.to_string())?);
    let workflow = engine.register_workflow(WORKFLOW, "bench-gateway.toml").await.map_err(|e| e.to_string())?;
    let spec: UpstreamSpec = format!("echo={upstream}").parse().map_err(|e: crate::Error| e.to_string())?;
    let gateway =
        crate::connect(Arc::clone(&engine), workflow, &[spec], Options::default()).await.map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let gateway_url = format!("http://{}/mcp", listener.local_addr().map_err(|e| e.to_string())?);
    tokio::spawn(crate::serve_http(gateway, listener, std::future::pending()));

    let mut direct = Timed::default();
    let mut through = Timed::default();
    let mut clients = Vec::new();
    for index in 0..options.clients {
        clients.push((index, client(&upstream).await?, client(&gateway_url).await?));
    }
    let clients = Arc::new(clients);
    for round in 0..options.rounds {
        let order = if round % 2 == 0 { [false, true] } else { [true, false] };
        for via_gateway in order {
            let cpu_before = cpu_us();
            let timings = timed(&clients, options.calls, via_gateway, round).await?;
            let path = if via_gateway { &mut through } else { &mut direct };
            path.cpu_us = match (cpu_before, cpu_us(), path.cpu_us) {
                (Some(before), Some(after), Some(sum)) => Some(sum + after.saturating_sub(before)),
                _ => None,
            };
            path.timings.extend(timings);
        }
    }
    let (commits, committed) = engine.commit_stats();
    engine.close().await;
    Ok(Figures {
        direct: latency(direct),
        gateway: latency(through),
        per_commit: committed as f64 / commits.max(1) as f64,
    })
}

/// One path's timings and the CPU time spent meanwhile.
struct Timed {
    timings: Vec<Duration>,
    cpu_us: Option<u64>,
}

impl Default for Timed {
    fn default() -> Timed {
        Timed { timings: Vec::new(), cpu_us: Some(0) }
    }
}

/// This process's CPU time so far (user and system, every thread), in
/// microseconds, from `/proc/self/stat` (in clock ticks, taken as 100 a
/// second, Linux's `USER_HZ`).
fn cpu_us() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after it are plain.
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) * 10_000)
}

async fn timed(
    clients: &Arc<Vec<(usize, Client, Client)>>,
    calls: usize,
    via_gateway: bool,
    round: usize,
) -> Result<Vec<Duration>, String> {
    let mut tasks = Vec::new();
    for slot in 0..clients.len() {
        let clients = Arc::clone(clients);
        tasks.push(tokio::spawn(async move {
            let Some((index, direct, gateway)) = clients.get(slot) else { return Err("no client".to_owned()) };
            let peer = if via_gateway { gateway.peer() } else { direct.peer() };
            let mut timings = Vec::with_capacity(calls);
            for call in 0..calls {
                let mut params = CallToolRequestParams::new("echo");
                params.arguments = serde_json::json!({"text": format!("r{round} c{call}")}).as_object().cloned();
                let mut meta = rmcp::model::RequestMetaObject::default();
                meta.insert("tollgate.dev/session".into(), serde_json::json!(format!("bench-{index}")));
                params.meta = Some(meta);
                let started = Instant::now();
                let result = peer.call_tool(params).await.map_err(|e| e.to_string())?;
                timings.push(started.elapsed());
                if result.is_error == Some(true) {
                    return Err(format!("a benchmark call failed: {:?}", result.content));
                }
            }
            Ok(timings)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok(all)
}

fn latency(timed: Timed) -> Latency {
    let mut timings = timed.timings;
    timings.sort();
    let at = |q: f64| -> f64 {
        let index = ((timings.len() as f64 - 1.0) * q).round() as usize;
        timings.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    let cpu_us_per_call = timed.cpu_us.map(|cpu| cpu as f64 / timings.len().max(1) as f64);
    Latency { calls: timings.len(), median_us: at(0.5), p99_us: at(0.99), cpu_us_per_call }
}
