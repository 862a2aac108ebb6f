//! The gRPC service: the two unary methods routed by path (what generated
//! code would do), each through tonic's protobuf codec, and the server that
//! runs them over h2c on a TCP listener until told to stop.

use crate::policy::Policy;
use crate::wire::{McpRequest, McpRequestResult, McpResponse, McpResponseResult};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tonic::server::{Grpc, NamedService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

/// The service's full name, as the protocol's package and service give it.
pub const SERVICE_NAME: &str = "agentgateway.dev.ext_mcp.ExtMcp";

/// The largest message accepted (a tools/call with its arguments, or a
/// result); larger ones are refused by the codec.
const MESSAGE_BYTES_MAX: usize = 4 * 1024 * 1024;

/// How long one check may take before the gateway hears "refused".
const CHECK_DEADLINE: Duration = Duration::from_secs(10);

/// The ExtMcp service over a [`Policy`].
#[derive(Clone)]
pub struct ExtMcp {
    policy: Arc<Policy>,
}

impl ExtMcp {
    /// The service deciding with `policy`.
    pub fn new(policy: Arc<Policy>) -> ExtMcp {
        ExtMcp { policy }
    }
}

impl NamedService for ExtMcp {
    const NAME: &'static str = SERVICE_NAME;
}

/// The bearer token of a request's metadata.
fn token<T>(request: &Request<T>) -> Option<String> {
    let value = request.metadata().get("authorization")?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(|token| token.trim().to_owned())
}

/// A check that overruns its deadline is a refusal in words, not a gRPC
/// error a gateway might be configured to pass.
fn late(method: &str) -> String {
    format!("Tollgate did not decide within {} s ({method}), so it refused", CHECK_DEADLINE.as_secs())
}

struct CheckRequest(Arc<Policy>);

impl Service<Request<McpRequest>> for CheckRequest {
    type Response = Response<McpRequestResult>;
    type Error = Status;
    type Future = BoxFuture<Self::Response, Status>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<McpRequest>) -> Self::Future {
        let policy = Arc::clone(&self.0);
        Box::pin(async move {
            let token = token(&request);
            let checked =
                tokio::time::timeout(CHECK_DEADLINE, policy.check_request(token.as_deref(), request.into_inner()));
            Ok(Response::new(checked.await.unwrap_or_else(|_| crate::refused_request(&late("CheckRequest")))))
        })
    }
}

struct CheckResponse(Arc<Policy>);

impl Service<Request<McpResponse>> for CheckResponse {
    type Response = Response<McpResponseResult>;
    type Error = Status;
    type Future = BoxFuture<Self::Response, Status>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<McpResponse>) -> Self::Future {
        let policy = Arc::clone(&self.0);
        Box::pin(async move {
            let token = token(&request);
            let checked =
                tokio::time::timeout(CHECK_DEADLINE, policy.check_response(token.as_deref(), request.into_inner()));
            Ok(Response::new(checked.await.unwrap_or_else(|_| crate::refused_response(&late("CheckResponse")))))
        })
    }
}

impl<B> Service<http::Request<B>> for ExtMcp
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let policy = Arc::clone(&self.policy);
        let path = request.uri().path().to_owned();
        Box::pin(async move {
            let answer = if path == format!("/{SERVICE_NAME}/CheckRequest") {
                let codec = ProstCodec::<McpRequestResult, McpRequest>::default();
                let mut grpc = Grpc::new(codec).max_decoding_message_size(MESSAGE_BYTES_MAX);
                grpc.unary(CheckRequest(policy), request).await
            } else if path == format!("/{SERVICE_NAME}/CheckResponse") {
                let codec = ProstCodec::<McpResponseResult, McpResponse>::default();
                let mut grpc = Grpc::new(codec).max_decoding_message_size(MESSAGE_BYTES_MAX);
                grpc.unary(CheckResponse(policy), request).await
            } else {
                Status::unimplemented(format!("{path} is not a method of {SERVICE_NAME}")).into_http()
            };
            Ok(answer)
        })
    }
}

/// Why the service stopped.
#[derive(Debug, thiserror::Error)]
#[error("the ExtMcp service on {addr}: {message}")]
pub struct ServeError {
    /// Where it listened.
    pub addr: String,
    /// What failed.
    pub message: String,
}

/// Serves `policy` on `listener` until `shutdown` resolves.
pub async fn serve(
    policy: Arc<Policy>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let addr = listener.local_addr().map_or_else(|_| "its listener".to_owned(), |a: SocketAddr| a.to_string());
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .serve_with_incoming_shutdown(ExtMcp::new(policy), incoming, shutdown)
        .await
        .map_err(|error| ServeError { addr, message: error.to_string() })
}
