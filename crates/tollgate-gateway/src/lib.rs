//! Tollgate's MCP gateway: an MCP server (stdio or streamable HTTP) in front
//! of one or more upstream MCP servers (child processes over stdio, or
//! streamable HTTP URLs), on the `rmcp` crate.
//!
//! `tools/list` shows the upstreams' tools the workflow declares (namespaced
//! `upstream__tool` when there are several upstreams), each guarded tool's
//! description carrying its prerequisites. Every `tools/call` is decided by
//! the engine first, durably and audited: a block or an escalation comes back
//! as a tool result with `isError` and the reasons (the shape is
//! `tollgate_protocol::mcp::ToolResult`); an allowed call is forwarded with its
//! idempotency key in `_meta`, and the upstream's answer is recorded as the
//! call's result before the client sees it (a failing result check withholds
//! it). Everything else (resources, prompts, completion, logging, progress,
//! cancellation, list-changed notifications, and sampling, elicitation and
//! roots asked by an upstream) passes through.
//!
//! The gateway holds no state of its own beyond connections: sessions,
//! decisions and results live in the engine's store. Any internal failure
//! (an engine or store error, an upstream that dies or times out, a result
//! that cannot be recorded) is a refusal the agent can read, never a pass.
//!
//! This crate must not know SQL, HTTP routes of the API, or the decision
//! logic (the engine's and the core's).

pub mod bench;
mod call;
mod downstream;
mod draft;
mod error;
mod names;
mod server;
mod shadow;
pub mod upstream;

pub use call::{CALL_META, IDEMPOTENCY_META, SESSION_HEADER, SESSION_META, result_value};
pub use draft::{draft, draft_workflow};
pub use error::Error;
pub use names::{describe_prerequisites, workflow_tool_name};
pub use shadow::{ShadowReport, WouldBlock};
pub use upstream::UpstreamSpec;

use std::sync::Arc;
use std::time::Duration;
use tollgate_engine::{Engine, WorkflowHandle};

/// Whether the gateway enforces its decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Blocked and escalated calls are not forwarded.
    Enforce,
    /// Every call is decided and audited, and forwarded whatever the
    /// decision; what would have been refused is reported.
    Shadow,
}

/// How tools the workflow does not declare are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undeclared {
    /// Left out of `tools/list`, refused on `tools/call` (the default).
    Refuse,
    /// Listed and forwarded without a decision (nothing to decide them by).
    Allow,
}

/// What the gateway is set up with.
#[derive(Clone, Debug)]
pub struct Options {
    /// Enforce or shadow.
    pub mode: Mode,
    /// Tools the workflow does not declare.
    pub undeclared: Undeclared,
    /// How long a forwarded call may take before it is recorded as failed.
    pub call_timeout: Duration,
    /// The session of a stdio client that names none (one per process by
    /// default: `mcp-{pid}-{start ms}`).
    pub stdio_session: Option<String>,
    /// The tenant sessions are created for.
    pub tenant: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mode: Mode::Enforce,
            undeclared: Undeclared::Refuse,
            call_timeout: Duration::from_secs(120),
            stdio_session: None,
            tenant: tollgate_engine::DEFAULT_TENANT.to_owned(),
        }
    }
}

pub use server::{Gateway, serve_http, serve_stdio};

/// Builds a gateway: registers the workflow, connects every upstream and
/// reads its tools. An upstream that cannot be reached is an error (the
/// gateway does not start half-blind).
pub async fn connect(
    engine: Arc<Engine>,
    workflow: WorkflowHandle,
    upstreams: &[UpstreamSpec],
    options: Options,
) -> Result<Arc<Gateway>, Error> {
    Gateway::connect(engine, workflow, upstreams, options).await
}
