//! One event through the engine: the session is the client's `session_id`
//! (a subagent's calls carry its parent's, so they are gated in the same
//! session), created under the workflow file's current text when it is
//! new. Every decision is the engine's, journaled and audited before the
//! answer is given.

use crate::answer::{self, Answer};
use crate::{Client, Error, Options};
use std::sync::Arc;
use tollgate_core::{Decision, Effect, ToolCall, ToolOutcome, Workflow};
use tollgate_engine::{AuditKey, Conflict, DEFAULT_TENANT, Engine, Tenant, WorkflowHandle, workflow_hash};
use tollgate_protocol::hook::{Common, HookAnswer, HookEvent, ToolUse};

/// The longest workflow file read, in bytes (the core refuses longer ones
/// with a clearer message; this only bounds the read).
const WORKFLOW_READ_BYTES_MAX: u64 = 8 * 1024 * 1024;

/// The workflow an event is decided under: the file's current text, and
/// (in the resident process) its compiled form registered already.
pub(crate) struct Current<'a> {
    /// The file's text, as read for this event.
    pub text: &'a str,
    /// Its SHA-256, hex.
    pub hash: String,
    /// The file, as named in messages.
    pub file: String,
    /// The compiled text, stored already; `None` compiles it when a session
    /// is created.
    pub registered: Option<&'a WorkflowHandle>,
}

impl<'a> Current<'a> {
    /// The text read from `options.workflow`, not compiled yet.
    pub(crate) fn read(options: &Options, text: &'a str) -> Current<'a> {
        Current { text, hash: workflow_hash(text), file: options.workflow.display().to_string(), registered: None }
    }
}

/// Answers one event in this process: the store opened, the event decided,
/// the store closed.
pub(crate) fn handle(options: &Options, event: HookEvent, text: &str) -> Result<Answer, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Error::Internal(format!("the runtime would not start ({error})")))?;
    runtime.block_on(async {
        let engine = open(options).await?;
        let outcome = dispatch(options.client, &engine, &Current::read(options, text), &event).await;
        engine.close().await;
        outcome
    })
}

/// Answers one event through `engine`: the one path every decision takes,
/// in a hook process or in the resident one (their sessions are the
/// default tenant's).
pub(crate) async fn dispatch(
    client: Client,
    engine: &Engine,
    current: &Current<'_>,
    event: &HookEvent,
) -> Result<Answer, Error> {
    dispatch_as(client, engine, DEFAULT_TENANT, current, event).await
}

/// [`dispatch`] in `tenant`'s sessions (`tollgate serve`'s HTTP hook: the
/// tenant its token acts for).
pub(crate) async fn dispatch_as(
    client: Client,
    engine: &Engine,
    tenant: &str,
    current: &Current<'_>,
    event: &HookEvent,
) -> Result<Answer, Error> {
    let engine = Scoped { engine, tenant: engine.for_tenant(tenant) };
    let engine = &engine;
    match event {
        HookEvent::PreToolUse(call) => pre(client, engine, current, call).await,
        HookEvent::PostToolUse(ran) => {
            let result = crate::result_json(&ran.tool_response);
            post(client, engine, current, &ran.call, &result, ToolOutcome::Succeeded).await
        }
        HookEvent::PostToolUseFailure(failed) => {
            let result = serde_json::json!({ "error": failed.error });
            post(client, engine, current, &failed.call, &result, ToolOutcome::Failed).await
        }
        HookEvent::SessionStart(common) => {
            session(engine, current, &common.session_id).await.map(|_| Answer::json(&HookAnswer::none()))
        }
        HookEvent::SessionEnd(_) | HookEvent::SubagentStart(_) | HookEvent::SubagentStop(_) => {
            Ok(Answer::json(&HookAnswer::none()))
        }
    }
}

/// The workflow file's text (at most [`WORKFLOW_READ_BYTES_MAX`] bytes).
pub(crate) fn read_workflow(options: &Options) -> Result<String, Error> {
    use std::io::Read;
    let file = std::fs::File::open(&options.workflow)
        .map_err(|error| Error::Workflow(format!("cannot read {} ({error})", options.workflow.display())))?;
    let mut text = String::new();
    file.take(WORKFLOW_READ_BYTES_MAX)
        .read_to_string(&mut text)
        .map_err(|error| Error::Workflow(format!("cannot read {} ({error})", options.workflow.display())))?;
    Ok(text)
}

/// The engine over the store `options` name, signing with its audit key.
pub(crate) async fn open(options: &Options) -> Result<Engine, Error> {
    let key = match &options.audit_key_file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| Error::Internal(format!("cannot read the audit key file ({error})")))?;
            Some(AuditKey::from_hex(text.trim())?)
        }
    };
    let engine = Engine::open(&options.db).await?;
    Ok(match key {
        None => engine,
        Some(key) => engine.with_audit_key(key),
    })
}

/// The engine as one tenant's hooks use it: sessions, decisions and results
/// the tenant's; workflows the engine's.
struct Scoped<'e> {
    engine: &'e Engine,
    tenant: Tenant<'e>,
}

/// The session's workflow, the file's current text: a new session is
/// created under it; an existing one must run under the very same text (by
/// SHA-256), or the event is refused. Another tenant's session is none of
/// this tenant's: creating it again is refused.
async fn session(scoped: &Scoped<'_>, current: &Current<'_>, id: &str) -> Result<Arc<Workflow>, Error> {
    let (engine, tenant) = (scoped.engine, &scoped.tenant);
    let stored = tenant.session(id).await?;
    let stored = match stored {
        Some(info) => info,
        None => {
            let registered;
            let handle = match current.registered {
                Some(handle) => handle,
                None => {
                    registered = engine.register_workflow(current.text, &current.file).await.map_err(workflow_error)?;
                    &registered
                }
            };
            match tenant.create_session(handle, id, None).await {
                Ok(_) => return Ok(Arc::clone(&handle.workflow)),
                // Another hook process of the same session created it first.
                Err(tollgate_engine::Error::Conflict(Conflict::SessionExists(_))) => tenant
                    .session(id)
                    .await?
                    .ok_or_else(|| Error::Internal(format!("session {id} exists, but not for this tenant")))?,
                Err(error) => return Err(error.into()),
            }
        }
    };
    if stored.workflow_hash != current.hash {
        return Err(Error::WorkflowChanged { session: id.to_owned(), stored: stored.workflow_hash });
    }
    engine.workflow(&current.hash).await.map_err(workflow_error)
}

/// A workflow the engine cannot compile is the workflow's problem.
pub(crate) fn workflow_error(error: tollgate_engine::Error) -> Error {
    match error {
        tollgate_engine::Error::BadRequest { message } => Error::Workflow(message),
        other => Error::Engine(other),
    }
}

/// The call as the engine sees it: the workflow's tool name for the
/// client's, the call id the client gave, and what the client (not the
/// model) says about where it runs, which rules read as `context`: the
/// event's `cwd`, the project directory Claude Code gives its hooks
/// (`CLAUDE_PROJECT_DIR`, where the session started; the model's shell
/// cannot change it), and the subagent.
fn call_of(workflow: &Workflow, call: &ToolUse) -> ToolCall {
    let common = &call.common;
    let mut context = serde_json::Map::new();
    let project_dir = std::env::var("CLAUDE_PROJECT_DIR").ok().filter(|dir| !dir.is_empty());
    let fields = [
        ("cwd", common.cwd.clone()),
        ("project_dir", project_dir),
        ("agent_id", common.agent_id.clone()),
        ("agent_type", common.agent_type.clone()),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            context.insert(name.to_owned(), serde_json::Value::String(value));
        }
    }
    ToolCall::new(call.tool_use_id.as_str(), workflow.resolve_tool_name(&call.tool_name), call.tool_input.clone())
        .with_context(serde_json::Value::Object(context))
}

async fn pre(client: Client, engine: &Scoped<'_>, current: &Current<'_>, call: &ToolUse) -> Result<Answer, Error> {
    let Common { session_id, .. } = &call.common;
    let workflow = session(engine, current, session_id).await?;
    let decided = engine.tenant.decide(session_id, &call_of(&workflow, call)).await?;
    let handoff = matches!(decided.decision, Decision::Escalate(_))
        .then(|| tollgate_engine::handoff_id(session_id, &call.tool_use_id));
    Ok(answer::decided(client, &decided.decision, handoff.as_deref()))
}

async fn post(
    client: Client,
    engine: &Scoped<'_>,
    current: &Current<'_>,
    call: &ToolUse,
    result: &serde_json::Value,
    outcome: ToolOutcome,
) -> Result<Answer, Error> {
    let session_id = &call.common.session_id;
    session(engine, current, session_id).await?;
    let recorded = engine.tenant.record_result(session_id, &call.tool_use_id, result, outcome).await?;
    let withheld = recorded.effects.iter().find_map(|effect| match effect {
        Effect::ResultWithheld { reasons, .. } => Some(reasons),
        _ => None,
    });
    Ok(match withheld {
        Some(reasons) => {
            let lines: Vec<String> = reasons.iter().map(|r| format!("- {} [{}]", r.message, r.rule_id)).collect();
            let text = format!("Tollgate withheld this tool's output:\n{}", lines.join("\n"));
            Answer::json(&HookAnswer::withhold(client, &text))
        }
        None => Answer::json(&HookAnswer::none()),
    })
}
