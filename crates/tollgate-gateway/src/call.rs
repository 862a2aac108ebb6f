//! One `tools/call`: the session it belongs to, the engine's decision, the
//! forwarded call with its idempotency key, the result recorded before the
//! client sees it. Every failure on the way is a refusal (`isError`) with a
//! reason; nothing is let through undecided (shadow mode forwards, and
//! reports).

use crate::server::{Connection, Route, Transport};
use crate::{Mode, WouldBlock};
use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, CallToolResult, CancelledNotificationParam,
    ClientRequest, RequestMetaObject, ServerResult,
};
use rmcp::service::PeerRequestOptions;
use rmcp::service::RequestContext;
use serde_json::{Value as Json, json};
use tollgate_core::{Decision, Effect, ToolCall, ToolOutcome};
use tollgate_protocol::mcp::{Content, ToolResult};

/// The request metadata key a client names its session with.
pub const SESSION_META: &str = "tollgate.dev/session";
/// The request metadata key a client names its call id with (to re-send a
/// call after a disconnect and get its recorded decision back).
pub const CALL_META: &str = "tollgate.dev/call";
/// The request metadata key the idempotency key is forwarded under.
pub const IDEMPOTENCY_META: &str = "tollgate.dev/idempotency-key";
/// The HTTP header a client may name its session with instead.
pub const SESSION_HEADER: &str = "tollgate-session";

/// Decides, forwards and records one call; always answers with a result.
pub(crate) async fn call(
    connection: &Connection,
    request: CallToolRequestParams,
    context: RequestContext<RoleServer>,
) -> CallToolResult {
    let gateway = &connection.gateway;
    let exposed = request.name.to_string();
    // rmcp hands the request's `_meta` over in the context.
    let mut request = request;
    if request.meta.is_none() {
        request.meta = Some(context.meta.clone());
    }
    let session = match session_key(connection, request.meta.as_ref(), &context) {
        Ok(session) => session,
        Err(message) => return text_error(&message),
    };
    if let Err(message) = ensure_session(connection, &session).await {
        return text_error(&message);
    }
    let call_id = match request.meta.as_ref().and_then(|m| m.get(CALL_META)) {
        Some(Json::String(id)) => id.clone(),
        Some(_) => return text_error(&format!("_meta[\"{CALL_META}\"] must be a string")),
        None => gateway.next_call_id(),
    };
    let mut route = gateway.route(&exposed);
    if route.is_none() {
        // A tool the client was not shown may be one an upstream added
        // since: read the lists again, once.
        let _ = gateway.refresh_tools().await;
        route = gateway.route(&exposed);
    }
    let declared = route.as_ref().and_then(|r| r.workflow_tool.clone());
    if let Some(route) = &route
        && declared.is_none()
        && gateway.options.undeclared == crate::Undeclared::Allow
    {
        // Nothing in the workflow to decide it by: forwarded as asked.
        return forward(connection, route, &request, None, &context).await.unwrap_or_else(|failure| failure.result);
    }
    let args = Json::Object(request.arguments.clone().unwrap_or_default());
    // A tool no workflow declares is decided too (the engine refuses it as
    // unknown), so the refusal is journaled and audited like any other.
    let tool = declared.clone().unwrap_or_else(|| exposed.clone());
    let decided = gateway.engine.decide(&session, &ToolCall::new(call_id.as_str(), tool, args)).await;
    let decision = match decided {
        Ok(decided) => decided.decision,
        Err(error) => {
            let message = format!("Tollgate could not decide this call, so it was not run: {error}");
            if gateway.options.mode == Mode::Shadow {
                gateway.shadow.decided();
                gateway.shadow.would_block(would(&session, &call_id, &exposed, "error", vec![error.to_string()]));
                return match &route {
                    Some(route) => {
                        forward(connection, route, &request, None, &context).await.unwrap_or_else(|f| f.result)
                    }
                    None => text_error(&message),
                };
            }
            return text_error(&message);
        }
    };
    if gateway.options.mode == Mode::Shadow {
        return shadow(connection, route.as_ref(), &request, &session, &call_id, &decision, &context).await;
    }
    match &decision {
        Decision::Allow(allowed) => {
            let Some(route) = route else {
                let message = format!("no upstream offers the tool {exposed}; nothing was run");
                record(connection, &session, &call_id, &json!({"error": message}), ToolOutcome::Failed).await;
                return text_error(&message);
            };
            let key = allowed.idempotency_key.clone();
            let result = match forward(connection, &route, &request, key.as_deref(), &context).await {
                Ok(result) => result,
                Err(failure) => {
                    if !failure.in_doubt {
                        let text = first_text(&failure.result);
                        record(connection, &session, &call_id, &json!({"error": text}), ToolOutcome::Failed).await;
                    }
                    return failure.result;
                }
            };
            deliver(connection, &session, &call_id, result).await
        }
        Decision::Block(_) => refusal(&decision, None),
        Decision::Escalate(_) => {
            let handoff = tollgate_engine::handoff_id(&session, &call_id);
            refusal(&decision, Some(&handoff))
        }
    }
}

/// The session a call belongs to: the client's `_meta` names it, else the
/// `Tollgate-Session` header, else the HTTP transport's own session, else
/// (stdio) the process's session. An HTTP request naming none is refused.
fn session_key(
    connection: &Connection,
    meta: Option<&RequestMetaObject>,
    context: &RequestContext<RoleServer>,
) -> Result<String, String> {
    match meta.and_then(|m| m.get(SESSION_META)) {
        Some(Json::String(session)) => return Ok(session.clone()),
        Some(_) => return Err(format!("Tollgate refused this call: _meta[\"{SESSION_META}\"] must be a string")),
        None => {}
    }
    if let Some(parts) = context.extensions.get::<axum::http::request::Parts>() {
        if let Some(value) = parts.headers.get(SESSION_HEADER) {
            return value
                .to_str()
                .map(str::to_owned)
                .map_err(|_| format!("Tollgate refused this call: the {SESSION_HEADER} header is not text"));
        }
        if let Some(value) = parts.headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            let id: String = value.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(100).collect();
            return Ok(format!("mcp-{id}"));
        }
    }
    match connection.transport {
        Transport::Stdio => Ok(connection.gateway.stdio_session().to_owned()),
        Transport::Http => Err(format!(
            "Tollgate refused this call: it names no session. Send _meta[\"{SESSION_META}\"] or the \
             {SESSION_HEADER} header (the newest protocol has no session of its own)"
        )),
    }
}

/// Creates the session on its first call (or finds it, under this
/// workflow).
async fn ensure_session(connection: &Connection, session: &str) -> Result<(), String> {
    let gateway = &connection.gateway;
    if gateway.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(session) {
        return Ok(());
    }
    let refused = |e: tollgate_engine::Error| format!("Tollgate refused this call: session {session}: {e}");
    let engine = gateway.engine.for_tenant(&gateway.options.tenant);
    let info = match engine.session(session).await.map_err(refused)? {
        Some(info) => info,
        None => match engine.create_session(&gateway.workflow, session, None).await {
            Ok(info) => info,
            // Another request created it meanwhile.
            Err(error) => engine.session(session).await.map_err(refused)?.ok_or_else(|| refused(error))?,
        },
    };
    if info.workflow_hash != gateway.workflow.hash {
        return Err(format!(
            "Tollgate refused this call: session {session} runs under another workflow ({} v{})",
            info.workflow_name, info.workflow_version
        ));
    }
    gateway.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(session.to_owned());
    Ok(())
}

/// Why a forwarded call has no result, with the error result to answer.
pub(crate) struct Failure {
    result: CallToolResult,
    /// The client cancelled or went away while the upstream ran it: its
    /// outcome is unknown, so nothing is recorded (the call stays in doubt,
    /// for `tollgate sessions resume`). Otherwise the call failed and is
    /// recorded as failed.
    in_doubt: bool,
}

impl Failure {
    fn failed(message: &str) -> Failure {
        Failure { result: text_error(message), in_doubt: false }
    }
}

/// Sends the call upstream (with the idempotency key in `_meta`), bounded by
/// the call timeout and cancelled with the client's request.
async fn forward(
    connection: &Connection,
    route: &Route,
    request: &CallToolRequestParams,
    idempotency_key: Option<&str>,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, Failure> {
    let gateway = &connection.gateway;
    let Some(upstream) = gateway.upstreams.get(route.upstream) else {
        return Err(Failure::failed("the tool's upstream is gone; nothing was run"));
    };
    let mut params = CallToolRequestParams::new(route.tool.clone());
    params.arguments = request.arguments.clone();
    let mut meta = request.meta.clone().unwrap_or_default();
    // The client's protocol envelope (the newest protocol's per-request
    // lifecycle keys) belongs to its connection with the gateway, not to the
    // gateway's with the upstream; Tollgate's own keys stay here.
    meta.retain(|key, _| !key.starts_with("io.modelcontextprotocol/") && key != SESSION_META && key != CALL_META);
    if let Some(key) = idempotency_key {
        meta.insert(IDEMPOTENCY_META.to_owned(), json!(key));
    }
    let downstream_token = meta.get_progress_token();
    params.meta = (!meta.is_empty()).then_some(meta);
    gateway.downstream.request(&context.peer);
    let sent = upstream
        .peer
        .send_request_with_option(
            ClientRequest::CallToolRequest(CallToolRequest::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await;
    let handle = match sent {
        Ok(handle) => handle,
        Err(error) => {
            return Err(Failure::failed(&format!(
                "upstream {} cannot be reached ({error}); nothing was run, the call is recorded as failed",
                upstream.name
            )));
        }
    };
    // rmcp gives the upstream request a progress token of its own: the
    // upstream's progress is relayed under the client's token.
    let relay = downstream_token.map(|token| (handle.progress_token.clone(), token));
    if let Some((upstream_token, token)) = &relay {
        gateway.downstream.relay_progress(&upstream.name, upstream_token, &context.peer, token);
    }
    let (request_id, receiver) = (handle.id.clone(), handle.rx);
    let answer = tokio::select! {
        answer = tokio::time::timeout(gateway.options.call_timeout, receiver) => match answer {
            Ok(Ok(answer)) => Some(Ok(answer.and_then(call_response))),
            Ok(Err(_)) => Some(Ok(Err(rmcp::ServiceError::TransportClosed))),
            Err(elapsed) => Some(Err(elapsed)),
        },
        () = context.ct.cancelled() => None,
    };
    if let Some((upstream_token, _)) = &relay {
        gateway.downstream.progress_done(&upstream.name, upstream_token);
    }
    if !matches!(answer, Some(Ok(_))) {
        // Timed out or cancelled by the client: the upstream is told to stop.
        cancel_upstream(upstream, request_id).await;
    }
    match answer {
        Some(Ok(Ok(CallToolResponse::Complete(result)))) => Ok(result),
        Some(Ok(Ok(_))) => Err(Failure::failed(&format!(
            "upstream {} asked for more input or started a task, which the gateway does not relay; \
             the call is recorded as failed",
            upstream.name
        ))),
        Some(Ok(Err(error))) => Err(Failure::failed(&format!(
            "upstream {} failed on this call ({error}); the call is recorded as failed",
            upstream.name
        ))),
        Some(Err(_)) => Err(Failure::failed(&format!(
            "upstream {} did not answer within {} s; the call is recorded as failed",
            upstream.name,
            gateway.options.call_timeout.as_secs()
        ))),
        // The client cancelled or went away: the call stays allowed with no
        // result (in doubt), for `tollgate sessions resume` to find.
        None => Err(Failure {
            result: text_error("the call was cancelled by the client; its outcome is in doubt"),
            in_doubt: true,
        }),
    }
}

/// The answer to a `tools/call` as rmcp hands it over.
fn call_response(result: ServerResult) -> Result<CallToolResponse, rmcp::ServiceError> {
    match result {
        ServerResult::CallToolResult(result) => Ok(CallToolResponse::Complete(result)),
        ServerResult::InputRequiredResult(result) => Ok(CallToolResponse::InputRequired(result)),
        ServerResult::CreateTaskResult(result) => Ok(CallToolResponse::Task(result)),
        _ => Err(rmcp::ServiceError::UnexpectedResponse),
    }
}

async fn cancel_upstream(upstream: &crate::upstream::Upstream, request: rmcp::model::RequestId) {
    let params = json!({"requestId": request, "reason": "the gateway's client cancelled or the call timed out"});
    if let Ok(params) = serde_json::from_value::<CancelledNotificationParam>(params) {
        let _ = upstream.peer.notify_cancelled(params).await;
    }
}

/// Records an upstream's result and answers with it, or withholds it when a
/// result check fails or it cannot be recorded.
async fn deliver(connection: &Connection, session: &str, call_id: &str, result: CallToolResult) -> CallToolResult {
    let outcome = if result.is_error == Some(true) { ToolOutcome::Failed } else { ToolOutcome::Succeeded };
    let value = result_value(&result);
    let recorded = connection.gateway.engine.record_result(session, call_id, &value, outcome).await;
    match recorded {
        Ok(recorded) => match withheld(&recorded.effects) {
            Some(reasons) => withheld_result(&reasons),
            None => result,
        },
        Err(error) => text_error(&format!(
            "Tollgate could not record this call's result, so it is withheld (the call ran): {error}"
        )),
    }
}

async fn record(connection: &Connection, session: &str, call_id: &str, result: &Json, outcome: ToolOutcome) {
    // A failure to record a failure leaves the call in doubt, which
    // `sessions resume` reports; the client is told the call failed anyway.
    let _ = connection.gateway.engine.record_result(session, call_id, result, outcome).await;
}

/// Shadow mode: the decision is journaled; the call is forwarded whatever
/// it was, and a would-be refusal is reported.
async fn shadow(
    connection: &Connection,
    route: Option<&Route>,
    request: &CallToolRequestParams,
    session: &str,
    call_id: &str,
    decision: &Decision,
    context: &RequestContext<RoleServer>,
) -> CallToolResult {
    let gateway = &connection.gateway;
    let exposed = request.name.to_string();
    gateway.shadow.decided();
    let (verdict, reasons) = match decision {
        Decision::Allow(_) => ("allow", Vec::new()),
        Decision::Block(blocked) => ("block", blocked.reasons.iter().map(|r| r.message.clone()).collect()),
        Decision::Escalate(escalation) => ("escalate", escalation.reasons.iter().map(|r| r.message.clone()).collect()),
    };
    if verdict != "allow" {
        gateway.shadow.would_block(would(session, call_id, &exposed, verdict, reasons));
    }
    let Some(route) = route else { return text_error(&format!("no upstream offers the tool {exposed}")) };
    let key = match decision {
        Decision::Allow(allowed) => allowed.idempotency_key.clone(),
        _ => None,
    };
    match forward(connection, route, request, key.as_deref(), context).await {
        Ok(result) => {
            if verdict == "allow" {
                let outcome = if result.is_error == Some(true) { ToolOutcome::Failed } else { ToolOutcome::Succeeded };
                if let Ok(recorded) =
                    gateway.engine.record_result(session, call_id, &result_value(&result), outcome).await
                    && let Some(reasons) = withheld(&recorded.effects)
                {
                    gateway.shadow.would_block(would(session, call_id, &exposed, "withheld", reasons));
                }
            }
            result
        }
        Err(failure) => {
            if verdict == "allow" && !failure.in_doubt {
                let error = json!({"error": first_text(&failure.result)});
                record(connection, session, call_id, &error, ToolOutcome::Failed).await;
            }
            failure.result
        }
    }
}

fn would(session: &str, call: &str, tool: &str, verdict: &str, reasons: Vec<String>) -> WouldBlock {
    WouldBlock {
        session: session.to_owned(),
        call: call.to_owned(),
        tool: tool.to_owned(),
        verdict: verdict.to_owned(),
        reasons,
    }
}

/// The reasons a result check withheld the result, if one did.
fn withheld(effects: &[Effect]) -> Option<Vec<String>> {
    effects.iter().find_map(|effect| match effect {
        Effect::ResultWithheld { reasons, .. } => Some(reasons.iter().map(|r| r.message.clone()).collect()),
        _ => None,
    })
}

/// What a tool result is as the workflow reads it (`result`): the
/// structured content (a lone `result` field unwrapped, which is how SDKs
/// wrap a tool returning a bare value), else the text parsed as JSON, else
/// the text itself; an error result is `{"error": text}`.
pub fn result_value(result: &CallToolResult) -> Json {
    let text: String = result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|t| t.text.as_str()))
        .collect::<Vec<_>>()
        .join("\n");
    if result.is_error == Some(true) {
        return json!({"error": text});
    }
    if let Some(structured) = &result.structured_content {
        if let Json::Object(map) = structured
            && map.len() == 1
            && let Some(inner) = map.get("result")
        {
            return inner.clone();
        }
        return structured.clone();
    }
    serde_json::from_str(&text).unwrap_or(Json::String(text))
}

fn first_text(result: &CallToolResult) -> String {
    result.content.iter().find_map(|block| block.as_text().map(|t| t.text.clone())).unwrap_or_default()
}

/// A refusal as an MCP tool result (the protocol crate's shape).
fn refusal(decision: &Decision, handoff: Option<&str>) -> CallToolResult {
    let decision = tollgate_protocol::decision::Decision::from(decision);
    to_result(&ToolResult::refused(&decision, handoff))
}

fn withheld_result(reasons: &[String]) -> CallToolResult {
    to_result(&tollgate_protocol::mcp::withheld(reasons))
}

pub(crate) fn text_error(message: &str) -> CallToolResult {
    to_result(&ToolResult {
        content: vec![Content::Text { text: message.to_owned() }],
        structured_content: None,
        is_error: true,
        meta: None,
    })
}

fn to_result(result: &ToolResult) -> CallToolResult {
    serde_json::to_value(result)
        .ok()
        .and_then(|value| serde_json::from_value(value).ok())
        .unwrap_or_else(|| CallToolResult::error(vec![rmcp::model::ContentBlock::text("Tollgate refused this call")]))
}
