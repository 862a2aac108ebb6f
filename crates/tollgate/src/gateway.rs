//! `tollgate gateway`: the MCP gateway in front of upstream MCP servers,
//! over stdio (what desktop clients spawn) or streamable HTTP (`--listen`).
//! Standard output is the protocol on stdio: everything this command says
//! goes to standard error.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tollgate_gateway::{Mode, Options, Undeclared, UpstreamSpec};

/// What `tollgate gateway` is told on its command line.
pub struct Args {
    pub workflow: PathBuf,
    pub upstreams: Vec<String>,
    pub db: String,
    pub listen: Option<String>,
    pub shadow: bool,
    pub allow_undeclared: bool,
    pub session: Option<String>,
    pub call_timeout_seconds: u64,
}

pub fn gateway(args: Args) -> Result<ExitCode> {
    let text = crate::input::read(&args.workflow, "the workflow", crate::input::WORKFLOW_BYTES_MAX)?;
    let upstreams = args.upstreams.iter().map(|spec| spec.parse::<UpstreamSpec>()).collect::<Result<Vec<_>, _>>()?;
    let options = Options {
        mode: if args.shadow { Mode::Shadow } else { Mode::Enforce },
        undeclared: if args.allow_undeclared { Undeclared::Allow } else { Undeclared::Refuse },
        call_timeout: Duration::from_secs(args.call_timeout_seconds.max(1)),
        stdio_session: args.session.clone(),
        ..Options::default()
    };
    let listen = match &args.listen {
        Some(listen) => Some(
            listen
                .parse::<std::net::SocketAddr>()
                .with_context(|| format!("--listen '{listen}' is not an address and port such as 127.0.0.1:8090"))?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let mut engine = tollgate_engine::Engine::open(&args.db).await?;
        if let Some(key) = crate::audit::key_from_env()? {
            engine = engine.with_audit_key(key);
        }
        let engine = Arc::new(engine);
        let workflow = engine.register_workflow(&text, &args.workflow.display().to_string()).await?;
        let gateway = tollgate_gateway::connect(Arc::clone(&engine), workflow, &upstreams, options).await?;
        match listen {
            None => {
                eprintln!("tollgate: gateway on stdio (session {})", gateway.stdio_session());
                tollgate_gateway::serve_stdio(Arc::clone(&gateway)).await?;
            }
            Some(addr) => {
                let listener =
                    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
                let bound = listener.local_addr()?;
                eprintln!("tollgate: gateway on http://{bound}/mcp");
                tollgate_gateway::serve_http(Arc::clone(&gateway), listener, crate::serve::stop_signal()).await?;
            }
        }
        if args.shadow {
            eprint!("{}", gateway.shadow_report());
        }
        engine.close().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `tollgate bench gateway`: prints the medians and p99s of both paths.
pub fn bench(db: Option<String>, clients: usize, calls: usize, rounds: usize) -> Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("tollgate-bench-gateway-{}", std::process::id()));
    let db = match db {
        Some(db) => db,
        None => {
            std::fs::create_dir_all(&dir)?;
            dir.join("bench.db").display().to_string()
        }
    };
    let options = tollgate_gateway::bench::BenchOptions {
        db,
        clients: clients.max(1),
        calls: calls.max(1),
        rounds: rounds.max(1),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let figures = runtime.block_on(tollgate_gateway::bench::run(&options)).map_err(anyhow::Error::msg)?;
    let _ = std::fs::remove_dir_all(&dir);
    out!(
        "tools/call over streamable HTTP on loopback, {} concurrent clients, {} calls a path",
        options.clients,
        figures.gateway.calls
    );
    out!(
        "  straight to the upstream   median {:>8.0} µs   p99 {:>8.0} µs",
        figures.direct.median_us,
        figures.direct.p99_us
    );
    out!(
        "  through the gateway        median {:>8.0} µs   p99 {:>8.0} µs",
        figures.gateway.median_us,
        figures.gateway.p99_us
    );
    out!(
        "  the gateway adds           median {:>8.0} µs   p99 {:>8.0} µs",
        figures.gateway.median_us - figures.direct.median_us,
        figures.gateway.p99_us - figures.direct.p99_us
    );
    if let (Some(direct), Some(gateway)) = (figures.direct.cpu_us_per_call, figures.gateway.cpu_us_per_call) {
        out!(
            "  CPU per call (clients, gateway and upstream together): straight {direct:.0} µs, through the \
             gateway {gateway:.0} µs"
        );
    }
    out!("  decisions and results per durable commit: {:.1}", figures.per_commit);
    Ok(ExitCode::SUCCESS)
}

/// `tollgate init --from-mcp`: the drafted workflow on standard output, or
/// in a new file.
pub fn init(spec: &str, output: Option<&std::path::Path>) -> Result<ExitCode> {
    let spec: UpstreamSpec = spec.parse()?;
    if let Some(path) = output
        && path.exists()
    {
        anyhow::bail!("{} exists; an existing file is never overwritten", path.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let text = runtime.block_on(tollgate_gateway::draft_workflow(&spec))?;
    match output {
        Some(path) => {
            use std::io::Write as _;
            let mut file =
                std::fs::OpenOptions::new().write(true).create_new(true).open(path).with_context(|| {
                    format!("cannot create {} (an existing file is never overwritten)", path.display())
                })?;
            file.write_all(text.as_bytes())?;
            eprintln!("tollgate: drafted {}; check it with tollgate validate", path.display());
        }
        None => out!("{}", text.trim_end()),
    }
    Ok(ExitCode::SUCCESS)
}
