//! The protocol's messages (`proto/ext_mcp.proto`), declared by hand with
//! prost's derive: the two methods need no generated code and the build no
//! `protoc`. The tests' gRPC client is generated from the `.proto` file, so
//! the two cannot drift apart unnoticed.

use prost_types::Struct;

/// A request the gateway is about to send upstream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct McpRequest {
    /// The backends it goes to (an older gateway sends one name, which
    /// reads the same).
    #[prost(string, repeated, tag = "1")]
    pub service_names: Vec<String>,
    /// The JSON-RPC method.
    #[prost(string, tag = "2")]
    pub method: String,
    /// Values the gateway's configuration computes per request.
    #[prost(message, optional, tag = "3")]
    pub metadata_context: Option<Struct>,
    /// The JSON-RPC params: a `google.protobuf.Struct` on the wire, read
    /// as bytes so that JSON text (what some gateway versions send) is
    /// understood too (see [`crate::json::object_of`]).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub mcp_request: Option<Vec<u8>>,
    /// The client's HTTP headers.
    #[prost(message, repeated, tag = "5")]
    pub headers: Vec<McpHeader>,
}

/// One HTTP header.
#[derive(Clone, PartialEq, prost::Message)]
pub struct McpHeader {
    /// Its name.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Its value, as sent.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// An upstream's answer the gateway is about to deliver.
#[derive(Clone, PartialEq, prost::Message)]
pub struct McpResponse {
    /// The backends it came from.
    #[prost(string, repeated, tag = "1")]
    pub service_names: Vec<String>,
    /// The method of the request it answers.
    #[prost(string, tag = "2")]
    pub method: String,
    /// Values the gateway's configuration computes per request.
    #[prost(message, optional, tag = "3")]
    pub metadata_context: Option<Struct>,
    /// The JSON-RPC result (bytes for the same reason as the request's).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub mcp_response: Option<Vec<u8>>,
}

/// The answer to `CheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct McpRequestResult {
    /// Pass, mutate or refuse.
    #[prost(oneof = "Verdict", tags = "1, 2, 3")]
    pub result: Option<Verdict>,
    /// Values the gateway keeps with the request.
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<Struct>,
}

/// The answer to `CheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct McpResponseResult {
    /// Pass, mutate or refuse.
    #[prost(oneof = "Verdict", tags = "1, 2, 3")]
    pub result: Option<Verdict>,
}

/// What becomes of the message.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Verdict {
    /// Unchanged.
    #[prost(message, tag = "1")]
    Pass(Pass),
    /// Replaced by this object.
    #[prost(message, tag = "2")]
    Mutated(Struct),
    /// Refused.
    #[prost(message, tag = "3")]
    Error(AuthorizationError),
}

/// Let through unchanged.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Pass {}

/// A refusal.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthorizationError {
    /// Which kind ([`Code`]).
    #[prost(enumeration = "Code", tag = "1")]
    pub code: i32,
    /// The words the client reads.
    #[prost(string, tag = "2")]
    pub reason: String,
    /// The JSON-RPC error's data.
    #[prost(message, optional, tag = "3")]
    pub mcp_error: Option<Struct>,
}

/// A refusal's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Code {
    /// Unknown.
    Unknown = 0,
    /// Not allowed: a workflow's refusal, a bad token.
    PermissionDenied = 1,
    /// Over a limit.
    ResourceExhausted = 2,
    /// The request itself is wrong (no session, no tool name).
    Invalid = 3,
}
