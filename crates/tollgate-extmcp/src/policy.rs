//! The decisions behind the two methods. `CheckRequest` on a `tools/call`
//! decides the call in its session and answers pass (with the idempotency
//! key added to the params' `_meta`) or a refusal in words; `CheckResponse`
//! records the upstream's result and withholds it when a result check says
//! so. Every other method passes: the workflow gates tool calls.
//!
//! Everything that goes wrong is a refusal inside a well-formed answer, not
//! a gRPC error: a gateway configured to fail open on errors still refuses.

use crate::json::{object_of, text_field, to_struct};
use crate::wire::{
    AuthorizationError, Code, McpHeader, McpRequest, McpRequestResult, McpResponse, McpResponseResult, Pass, Verdict,
};
use serde_json::{Map, Value as Json, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tollgate_core::{Decision, Effect, ToolCall, ToolOutcome};
use tollgate_engine::{Engine, Role, Tenant, WorkflowHandle};
use tollgate_protocol::mcp::{ToolResult, result_value, withheld};

/// The metadata-context key (and request-metadata key) naming the call a
/// response answers; `CheckRequest` returns it in its metadata.
pub const CALL_KEY: &str = "tollgate_call";
/// The request-metadata key naming the session (returned beside the call).
pub const SESSION_RETURNED: &str = "tollgate_session";
/// The HTTP header a client may name its session with.
pub const SESSION_HEADER: &str = "tollgate-session";
/// The params' `_meta` key a client may name its call id with.
pub const CALL_META: &str = "tollgate.dev/call";
/// The params' `_meta` key the idempotency key is forwarded under.
pub const IDEMPOTENCY_META: &str = "tollgate.dev/idempotency-key";

/// How sessions are found.
#[derive(Clone, Debug)]
pub struct Options {
    /// The metadata-context key holding the session id (the gateway's
    /// configuration computes it, e.g. from a JWT claim or a header).
    pub session_key: String,
}

impl Default for Options {
    fn default() -> Options {
        Options { session_key: "tollgate_session".to_owned() }
    }
}

/// Sessions known to exist under the workflow, per tenant; forgotten in
/// bulk past this many.
const KNOWN_SESSIONS_MAX: usize = 100_000;

/// The policy service's state: the engine, the workflow new sessions run
/// under, and where call ids come from.
pub struct Policy {
    engine: Arc<Engine>,
    workflow: WorkflowHandle,
    options: Options,
    call_prefix: String,
    calls: AtomicU64,
    known: Mutex<HashSet<(String, String)>>,
}

/// A refusal on its way out: the code and the words.
struct Refusal {
    code: Code,
    reason: String,
    data: Option<Map<String, Json>>,
}

impl Refusal {
    fn denied(reason: impl Into<String>) -> Refusal {
        Refusal { code: Code::PermissionDenied, reason: reason.into(), data: None }
    }

    fn invalid(reason: impl Into<String>) -> Refusal {
        Refusal { code: Code::Invalid, reason: reason.into(), data: None }
    }

    fn verdict(self) -> Verdict {
        Verdict::Error(AuthorizationError {
            code: self.code as i32,
            reason: self.reason,
            mcp_error: self.data.as_ref().map(to_struct),
        })
    }
}

impl Policy {
    /// A policy deciding under `workflow`; call ids start with a prefix
    /// drawn at random, so replicas sharing a store never collide.
    pub fn new(engine: Arc<Engine>, workflow: WorkflowHandle, options: Options) -> Policy {
        let mut seed = [0u8; 6];
        // A failed draw leaves zeros; the process id and clock still differ.
        let _ = getrandom::fill(&mut seed);
        let call_prefix = format!("x{}.{}", hex::encode(seed), std::process::id());
        Policy { engine, workflow, options, call_prefix, calls: AtomicU64::new(0), known: Mutex::new(HashSet::new()) }
    }

    /// `CheckRequest`: a `tools/call` decided; anything else passes.
    pub async fn check_request(&self, token: Option<&str>, request: McpRequest) -> McpRequestResult {
        if request.method != "tools/call" {
            return McpRequestResult { result: Some(Verdict::Pass(Pass {})), metadata: None };
        }
        match self.decide(token, &request).await {
            Ok((verdict, metadata)) => McpRequestResult { result: Some(verdict), metadata: Some(to_struct(&metadata)) },
            Err(refusal) => McpRequestResult { result: Some(refusal.verdict()), metadata: None },
        }
    }

    /// `CheckResponse`: a `tools/call` result recorded (and withheld when a
    /// result check fails); anything else passes.
    pub async fn check_response(&self, token: Option<&str>, response: McpResponse) -> McpResponseResult {
        if response.method != "tools/call" {
            return McpResponseResult { result: Some(Verdict::Pass(Pass {})) };
        }
        let verdict = self.record(token, &response).await.unwrap_or_else(Refusal::verdict);
        McpResponseResult { result: Some(verdict) }
    }

    /// The tenant an agent token acts for.
    async fn tenant(&self, token: Option<&str>) -> Result<String, Refusal> {
        let Some(token) = token else {
            return Err(Refusal::denied(
                "Tollgate refused this call: the policy request carries no token (authorization: Bearer tg_...)",
            ));
        };
        let found =
            self.engine.authenticate(token).await.map_err(|error| {
                Refusal::denied(format!("Tollgate could not check the token, so it refused: {error}"))
            })?;
        match found {
            Some(token) if token.role == Role::Agent => Ok(token.tenant),
            Some(token) => Err(Refusal::denied(format!(
                "Tollgate refused this call: the token is a {} token; the gateway needs an agent token",
                token.role
            ))),
            None => Err(Refusal::denied("Tollgate refused this call: the token is unknown or revoked")),
        }
    }

    /// The session a message belongs to: the metadata context's session
    /// key, else the `tollgate-session` header, else the client's MCP
    /// session header.
    fn session_of(&self, context: Option<&prost_types::Struct>, headers: &[McpHeader]) -> Result<String, Refusal> {
        if let Some(session) = text_field(context, &self.options.session_key) {
            return Ok(session.to_owned());
        }
        let header = |name: &str| headers.iter().find(|h| h.key.eq_ignore_ascii_case(name));
        if let Some(found) = header(SESSION_HEADER) {
            return String::from_utf8(found.value.clone()).map_err(|_| {
                Refusal::invalid(format!("Tollgate refused this call: the {SESSION_HEADER} header is not text"))
            });
        }
        if let Some(found) = header("mcp-session-id") {
            let id: String = String::from_utf8_lossy(&found.value)
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(100)
                .collect();
            if !id.is_empty() {
                return Ok(format!("mcp-{id}"));
            }
        }
        Err(Refusal::invalid(format!(
            "Tollgate refused this call: it names no session. Configure the gateway's metadata context key \
             \"{}\" (or send the {SESSION_HEADER} header)",
            self.options.session_key
        )))
    }

    /// The session exists under the workflow (created on first sight) and
    /// is the tenant's.
    async fn ensure_session(&self, tenant: &Tenant<'_>, session: &str) -> Result<(), Refusal> {
        let key = (tenant.name().to_owned(), session.to_owned());
        if self.known.lock().unwrap_or_else(PoisonError::into_inner).contains(&key) {
            return Ok(());
        }
        let refused =
            |e: tollgate_engine::Error| Refusal::denied(format!("Tollgate refused this call: session {session}: {e}"));
        let info = match tenant.session(session).await.map_err(refused)? {
            Some(info) => info,
            None => match tenant.create_session(&self.workflow, session, None).await {
                Ok(info) => info,
                // Created meanwhile by another request (or replica): read it.
                Err(error) => tenant.session(session).await.map_err(refused)?.ok_or_else(|| refused(error))?,
            },
        };
        if info.workflow_hash != self.workflow.hash {
            return Err(Refusal::denied(format!(
                "Tollgate refused this call: session {session} runs under another workflow ({} v{})",
                info.workflow_name, info.workflow_version
            )));
        }
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if known.len() >= KNOWN_SESSIONS_MAX {
            known.clear();
        }
        known.insert(key);
        Ok(())
    }

    async fn decide(&self, token: Option<&str>, request: &McpRequest) -> Result<(Verdict, Map<String, Json>), Refusal> {
        let tenant = self.tenant(token).await?;
        let tenant = self.engine.for_tenant(&tenant);
        let session = self.session_of(request.metadata_context.as_ref(), &request.headers)?;
        let mut params = params_of(request.mcp_request.as_deref())?;
        let Some(Json::String(name)) = params.get("name") else {
            return Err(Refusal::invalid("Tollgate refused this call: tools/call names no tool (params.name)"));
        };
        let name = name.clone();
        let args = match params.get("arguments") {
            None | Some(Json::Null) => Json::Object(Map::new()),
            Some(Json::Object(args)) => Json::Object(args.clone()),
            Some(_) => return Err(Refusal::invalid("Tollgate refused this call: params.arguments is not an object")),
        };
        let meta = match params.get("_meta") {
            None | Some(Json::Null) => Map::new(),
            Some(Json::Object(meta)) => meta.clone(),
            Some(_) => return Err(Refusal::invalid("Tollgate refused this call: params._meta is not an object")),
        };
        let call_id = match meta.get(CALL_META) {
            Some(Json::String(id)) => id.clone(),
            Some(_) => {
                return Err(Refusal::invalid(format!(
                    "Tollgate refused this call: _meta[\"{CALL_META}\"] is not text"
                )));
            }
            None => format!("{}-{}", self.call_prefix, self.calls.fetch_add(1, Ordering::Relaxed) + 1),
        };
        self.ensure_session(&tenant, &session).await?;
        let tool = self.workflow.workflow.resolve_tool_name(&name).to_owned();
        let decided = tenant.decide(&session, &ToolCall::new(call_id.as_str(), tool, args)).await.map_err(|error| {
            Refusal::denied(format!("Tollgate could not decide this call, so it was not run: {error}"))
        })?;
        let returned: Map<String, Json> =
            [(SESSION_RETURNED.to_owned(), json!(session)), (CALL_KEY.to_owned(), json!(call_id))]
                .into_iter()
                .collect();
        match &decided.decision {
            Decision::Allow(allowed) => match &allowed.idempotency_key {
                Some(key) => {
                    let mut meta = meta;
                    meta.remove(CALL_META);
                    meta.insert(IDEMPOTENCY_META.to_owned(), json!(key));
                    params.insert("_meta".to_owned(), Json::Object(meta));
                    Ok((Verdict::Mutated(to_struct(&params)), returned))
                }
                None => Ok((Verdict::Pass(Pass {}), returned)),
            },
            Decision::Block(_) | Decision::Escalate(_) => {
                let handoff = matches!(decided.decision, Decision::Escalate(_))
                    .then(|| tollgate_engine::handoff_id(&session, &call_id));
                let wire = tollgate_protocol::decision::Decision::from(&decided.decision);
                let refused = ToolResult::refused(&wire, handoff.as_deref());
                Err(Refusal {
                    code: Code::PermissionDenied,
                    reason: first_text(&refused),
                    data: refused.meta.and_then(|meta| match meta {
                        Json::Object(meta) => Some(meta),
                        _ => None,
                    }),
                })
            }
        }
    }

    async fn record(&self, token: Option<&str>, response: &McpResponse) -> Result<Verdict, Refusal> {
        let withhold =
            |why: String| Refusal::denied(format!("Tollgate withheld this call's result (the call ran): {why}"));
        let tenant = self.tenant(token).await?;
        let tenant = self.engine.for_tenant(&tenant);
        let session = self.session_of(response.metadata_context.as_ref(), &[])?;
        let body = response.mcp_response.as_deref().map(object_of).transpose().map_err(withhold)?.unwrap_or_default();
        // A whole JSON-RPC message, or its result alone.
        let (result, failed_message) = if body.contains_key("jsonrpc") {
            match (body.get("result"), body.get("error")) {
                (Some(Json::Object(result)), _) => (Json::Object(result.clone()), None),
                (_, Some(error)) => (json!({"error": error}), Some(())),
                _ => return Err(withhold("the upstream's message holds neither a result nor an error".into())),
            }
        } else {
            (Json::Object(body), None)
        };
        let call_id = match text_field(response.metadata_context.as_ref(), CALL_KEY) {
            Some(call) => call.to_owned(),
            None => self.only_pending_call(&tenant, &session).await.map_err(withhold)?,
        };
        let (value, failed) = if failed_message.is_some() { (result, true) } else { result_value(&result) };
        let outcome = if failed { ToolOutcome::Failed } else { ToolOutcome::Succeeded };
        let recorded = tenant
            .record_result(&session, &call_id, &value, outcome)
            .await
            .map_err(|error| withhold(format!("Tollgate could not record it ({error})")))?;
        let reasons = recorded.effects.iter().find_map(|effect| match effect {
            Effect::ResultWithheld { reasons, .. } => {
                Some(reasons.iter().map(|r| r.message.clone()).collect::<Vec<_>>())
            }
            _ => None,
        });
        match reasons {
            None => Ok(Verdict::Pass(Pass {})),
            Some(reasons) => match serde_json::to_value(withheld(&reasons)) {
                Ok(Json::Object(replacement)) => Ok(Verdict::Mutated(to_struct(&replacement))),
                _ => Err(withhold(reasons.join("; "))),
            },
        }
    }

    /// The one call of the session still awaiting its result, when the
    /// gateway does not say which call a response answers.
    async fn only_pending_call(&self, tenant: &Tenant<'_>, session: &str) -> Result<String, String> {
        let (_, state) = tenant.state(session).await.map_err(|error| format!("session {session}: {error}"))?;
        let pending: Vec<String> = state.pending_calls().map(|call| call.as_str().to_owned()).collect();
        match pending.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(format!("session {session} has no call awaiting a result")),
            _ => Err(format!(
                "session {session} has {} calls awaiting results and the gateway did not say which this is \
                 (configure the metadata context key \"{CALL_KEY}\" as mcpGuardrails.{CALL_KEY})",
                pending.len()
            )),
        }
    }
}

/// A `tools/call`'s params: the payload itself, or a whole JSON-RPC
/// request's `params`.
fn params_of(payload: Option<&[u8]>) -> Result<Map<String, Json>, Refusal> {
    let refused = |why: String| Refusal::invalid(format!("Tollgate refused this call: {why}"));
    let object = object_of(payload.unwrap_or_default()).map_err(refused)?;
    if object.contains_key("jsonrpc") && object.contains_key("method") {
        return match object.get("params") {
            Some(Json::Object(params)) => Ok(params.clone()),
            _ => Err(refused("the request holds no params object".into())),
        };
    }
    Ok(object)
}

fn first_text(result: &ToolResult) -> String {
    result
        .content
        .iter()
        .map(|content| match content {
            tollgate_protocol::mcp::Content::Text { text } => text.as_str(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
