//! One event through the engine: the session is the client's `session_id`
//! (a subagent's calls carry its parent's, so they are gated in the same
//! session), created under the workflow file's current text when it is
//! new. Every decision is the engine's, journaled and audited before the
//! answer is given.

use crate::answer::{self, Answer};
use crate::{Error, Options};
use std::sync::Arc;
use tollgate_core::{Decision, Effect, ToolCall, ToolOutcome, Workflow};
use tollgate_engine::{AuditKey, Conflict, Engine, workflow_hash};
use tollgate_protocol::hook::{Common, HookAnswer, HookEvent, ToolUse};

/// The longest workflow file read, in bytes (the core refuses longer ones
/// with a clearer message; this only bounds the read).
const WORKFLOW_READ_BYTES_MAX: u64 = 8 * 1024 * 1024;

/// Answers one event.
pub(crate) fn handle(options: &Options, event: HookEvent) -> Result<Answer, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Error::Internal(format!("the runtime would not start ({error})")))?;
    runtime.block_on(handle_async(options, event))
}

async fn handle_async(options: &Options, event: HookEvent) -> Result<Answer, Error> {
    let text = read_workflow(options)?;
    let engine = open(options).await?;
    let outcome = match &event {
        HookEvent::PreToolUse(call) => pre(options, &engine, &text, call).await,
        HookEvent::PostToolUse(ran) => {
            let result = crate::result_json(&ran.tool_response);
            post(options, &engine, &text, &ran.call, &result, ToolOutcome::Succeeded).await
        }
        HookEvent::PostToolUseFailure(failed) => {
            let result = serde_json::json!({ "error": failed.error });
            post(options, &engine, &text, &failed.call, &result, ToolOutcome::Failed).await
        }
        HookEvent::SessionStart(common) => {
            session(&engine, &text, options, &common.session_id).await.map(|_| Answer::json(&HookAnswer::none()))
        }
        HookEvent::SessionEnd(_) | HookEvent::SubagentStart(_) | HookEvent::SubagentStop(_) => {
            Ok(Answer::json(&HookAnswer::none()))
        }
    };
    engine.close().await;
    outcome
}

fn read_workflow(options: &Options) -> Result<String, Error> {
    use std::io::Read;
    let file = std::fs::File::open(&options.workflow)
        .map_err(|error| Error::Workflow(format!("cannot read {} ({error})", options.workflow.display())))?;
    let mut text = String::new();
    file.take(WORKFLOW_READ_BYTES_MAX)
        .read_to_string(&mut text)
        .map_err(|error| Error::Workflow(format!("cannot read {} ({error})", options.workflow.display())))?;
    Ok(text)
}

async fn open(options: &Options) -> Result<Engine, Error> {
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

/// The session's workflow, compiled from the file's current text: a new
/// session is created under it; an existing one must run under the very
/// same text (by SHA-256), or the event is refused.
async fn session(engine: &Engine, text: &str, options: &Options, id: &str) -> Result<Arc<Workflow>, Error> {
    let hash = workflow_hash(text);
    let file = options.workflow.display().to_string();
    let stored = engine.session(id).await?;
    let stored = match stored {
        Some(info) => info,
        None => {
            let handle = engine.register_workflow(text, &file).await.map_err(workflow_error)?;
            match engine.create_session(&handle, id, None).await {
                Ok(_) => return Ok(handle.workflow),
                // Another hook process of the same session created it first.
                Err(tollgate_engine::Error::Conflict(Conflict::SessionExists(_))) => {
                    engine.session(id).await?.ok_or_else(|| Error::Internal(format!("session {id} vanished")))?
                }
                Err(error) => return Err(error.into()),
            }
        }
    };
    if stored.workflow_hash != hash {
        return Err(Error::WorkflowChanged { session: id.to_owned(), stored: stored.workflow_hash });
    }
    engine.workflow(&hash).await.map_err(workflow_error)
}

/// A workflow the engine cannot compile is the workflow's problem.
fn workflow_error(error: tollgate_engine::Error) -> Error {
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

async fn pre(options: &Options, engine: &Engine, text: &str, call: &ToolUse) -> Result<Answer, Error> {
    let Common { session_id, .. } = &call.common;
    let workflow = session(engine, text, options, session_id).await?;
    let decided = engine.decide(session_id, &call_of(&workflow, call)).await?;
    let handoff = matches!(decided.decision, Decision::Escalate(_))
        .then(|| tollgate_engine::handoff_id(session_id, &call.tool_use_id));
    Ok(answer::decided(options.client, &decided.decision, handoff.as_deref()))
}

async fn post(
    options: &Options,
    engine: &Engine,
    text: &str,
    call: &ToolUse,
    result: &serde_json::Value,
    outcome: ToolOutcome,
) -> Result<Answer, Error> {
    let session_id = &call.common.session_id;
    session(engine, text, options, session_id).await?;
    let recorded = engine.record_result(session_id, &call.tool_use_id, result, outcome).await?;
    let withheld = recorded.effects.iter().find_map(|effect| match effect {
        Effect::ResultWithheld { reasons, .. } => Some(reasons),
        _ => None,
    });
    Ok(match withheld {
        Some(reasons) => {
            let lines: Vec<String> = reasons.iter().map(|r| format!("- {} [{}]", r.message, r.rule_id)).collect();
            let text = format!("Tollgate withheld this tool's output:\n{}", lines.join("\n"));
            Answer::json(&HookAnswer::withhold(options.client, &text))
        }
        None => Answer::json(&HookAnswer::none()),
    })
}
