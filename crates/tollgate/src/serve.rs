//! `tollgate serve`: the HTTP API agents call and the handoff desk people
//! work in, over one store, until SIGINT or SIGTERM (then it stops
//! gracefully: open event streams end, requests in flight finish, the store
//! is closed).

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tollgate_server::{Bound, Config, WebhookConfig, WorkflowSource};

/// What `tollgate serve` is told on its command line.
pub struct Args {
    pub workflows: Vec<PathBuf>,
    pub db: String,
    pub listen: String,
    pub webhook_url: Option<String>,
    pub webhook_secret_file: Option<PathBuf>,
    pub desk_key_file: Option<PathBuf>,
    pub extmcp_listen: Option<String>,
    pub extmcp_workflow: Option<String>,
    pub extmcp_session_key: String,
}

/// Reads the workflows and the keys, binds, says where it listens (on
/// standard error, one line, so a supervisor or a test learns a port chosen
/// by the system), then serves until asked to stop.
pub fn serve(args: Args) -> Result<ExitCode> {
    let mut workflows = Vec::with_capacity(args.workflows.len());
    for path in &args.workflows {
        let text = crate::input::read(path, "the workflow", crate::input::WORKFLOW_BYTES_MAX)?;
        workflows.push(WorkflowSource { path: path.clone(), text });
    }
    let listen: SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("--listen '{}' is not an address and port such as 127.0.0.1:8080", args.listen))?;
    let mut config = Config::new(workflows, args.db, listen);
    config.audit_key = crate::audit::key_from_env()?;
    config.webhook = match (args.webhook_url.as_deref(), args.webhook_secret_file.as_deref()) {
        (None, None) => None,
        (Some(url), Some(secret)) => Some(webhook(url, secret)?),
        (Some(_), None) => anyhow::bail!("--webhook-url needs --webhook-secret-file: every announcement is signed"),
        (None, Some(_)) => anyhow::bail!("--webhook-secret-file needs --webhook-url"),
    };
    if let Some(path) = &args.desk_key_file {
        let secret = crate::input::read(path, "the desk key file", crate::input::SMALL_BYTES_MAX)?;
        let desk = tollgate_server::desk::Desk::from_secret(secret.trim().as_bytes())
            .with_context(|| format!("the desk key file {}", path.display()))?;
        config.desk = Some(desk);
    }
    if let Some(listen) = &args.extmcp_listen {
        let listen: SocketAddr = listen
            .parse()
            .with_context(|| format!("--extmcp-listen '{listen}' is not an address and port such as 127.0.0.1:9000"))?;
        config.extmcp = Some(tollgate_server::ExtMcpConfig {
            listen,
            workflow: args.extmcp_workflow.clone(),
            options: tollgate_extmcp::Options { session_key: args.extmcp_session_key.clone() },
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let bound = Bound::bind(config).await?;
        let addr = bound.local_addr()?;
        eprintln!("tollgate: serving on http://{addr} (API /v1, desk /desk, OpenAPI /openapi.json)");
        if let Some(extmcp) = bound.extmcp_addr()? {
            eprintln!("tollgate: ExtMcp policy service on {extmcp} (gRPC, h2c)");
        }
        bound.run(stop_signal()).await?;
        eprintln!("tollgate: stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn webhook(url: &str, secret: &Path) -> Result<WebhookConfig> {
    WebhookConfig::from_secret_file(url, secret).with_context(|| format!("the webhook {url}"))
}

/// Resolves at the first SIGINT or SIGTERM (Ctrl-C alone elsewhere). A
/// signal handler that cannot be installed stops the server at once rather
/// than leave it unstoppable.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            eprintln!("tollgate: cannot listen for SIGTERM and SIGINT; stopping");
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
