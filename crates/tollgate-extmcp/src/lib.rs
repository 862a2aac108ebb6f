//! Tollgate as the external MCP policy service of agentgateway (its
//! `ExtMcp` gRPC protocol, `proto/ext_mcp.proto`), for teams that already
//! run that gateway: the gateway asks before each `tools/call` goes upstream
//! (`CheckRequest`) and again with the upstream's result (`CheckResponse`);
//! Tollgate decides the call in its session, with the same workflow,
//! journal, audit and handoffs as every other surface, and records the
//! result. Replicas share one PostgreSQL like `tollgate serve`'s.
//!
//! Fail closed: every refusal (a workflow's, a bad token, no session, a
//! store that cannot be reached, a check past its deadline) is an
//! `AuthorizationError` inside a well-formed answer, so even a gateway
//! configured to fail open refuses; only an unreachable service is left to
//! the gateway's `failureMode`, which must be `failClosed` (docs/extmcp.md).

pub mod json;
pub mod policy;
pub mod service;
pub mod wire;

pub use policy::{Options, Policy};
pub use service::{ExtMcp, SERVICE_NAME, ServeError, serve};

use wire::{AuthorizationError, Code, McpRequestResult, McpResponseResult, Verdict};

fn refusal(reason: &str) -> Verdict {
    Verdict::Error(AuthorizationError {
        code: Code::PermissionDenied as i32,
        reason: reason.to_owned(),
        mcp_error: None,
    })
}

/// A `CheckRequest` answer refusing with `reason`.
pub(crate) fn refused_request(reason: &str) -> McpRequestResult {
    McpRequestResult { result: Some(refusal(reason)), metadata: None }
}

/// A `CheckResponse` answer refusing with `reason`.
pub(crate) fn refused_response(reason: &str) -> McpResponseResult {
    McpResponseResult { result: Some(refusal(reason)) }
}
