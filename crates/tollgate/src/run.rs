//! `tollgate run`: a scripted session in, a decision transcript out.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use tollgate_core::SessionState;
use tollgate_protocol::script::{Step, run_step};

/// Where a scripted session goes: nowhere (in memory), or a store.
pub struct Durable {
    /// The database URL or SQLite path.
    pub db: String,
    /// The session to run in (created if it does not exist).
    pub session: String,
}

pub fn run(workflow_path: &Path, script_path: &Path, durable: Option<Durable>) -> Result<ExitCode> {
    let (workflow_text, workflow) = crate::validate::load(workflow_path)?;
    let text = crate::input::read(script_path, "the script", crate::input::SCRIPT_BYTES_MAX)?;
    let mut steps = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let json: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: malformed JSON", script_path.display(), number + 1))?;
        match Step::from_json(&json) {
            Ok(step) => steps.push(step),
            Err(message) => bail!("{}:{}: {message}", script_path.display(), number + 1),
        }
    }
    if let Some(durable) = durable {
        let file = workflow_path.display().to_string();
        return crate::runtime()?.block_on(run_durable(&workflow_text, &file, &steps, &durable));
    }
    let mut state = SessionState::new(&workflow);
    for step in &steps {
        out!("{}", run_step(&workflow, &mut state, step));
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the steps through the engine: every decision and result is durable
/// before the next step. Running the same script again on the same session
/// continues it: calls decided before get their recorded decisions back and
/// results recorded before count once, so a run killed at any point and
/// started again ends where one uninterrupted run ends.
async fn run_durable(text: &str, file: &str, steps: &[Step], durable: &Durable) -> Result<ExitCode> {
    let engine = crate::audit::open_writer(&durable.db).await?;
    let handle = engine.register_workflow(text, file).await?;
    match engine.session(&durable.session).await? {
        Some(info) if info.workflow_hash != handle.hash => {
            bail!("session {} runs under another version of the workflow ({})", durable.session, info.workflow_hash)
        }
        Some(_) => {}
        None => {
            engine.create_session(&handle, &durable.session, None).await?;
        }
    }
    for step in steps {
        let line = match step {
            Step::Call(call) => {
                let decided = engine.decide(&durable.session, call).await?;
                let mut line =
                    serde_json::json!({"call": call.id.as_str(), "tool": call.tool, "decision": decided.json()});
                if decided.replayed
                    && let Some(object) = line.as_object_mut()
                {
                    object.insert("replayed".into(), serde_json::Value::Bool(true));
                }
                line
            }
            Step::Result { call, result, outcome } => {
                let recorded = engine.record_result(&durable.session, call.as_str(), result, *outcome).await?;
                serde_json::json!({
                    "result": call.as_str(),
                    "recorded": recorded.recorded,
                    "effects": recorded.effects.iter().map(tollgate_protocol::effect_json).collect::<Vec<_>>(),
                    "note": recorded.note,
                })
            }
        };
        // A closed pipe (`| head`) ends the output, not the run's durability.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
    engine.close().await;
    Ok(ExitCode::SUCCESS)
}
