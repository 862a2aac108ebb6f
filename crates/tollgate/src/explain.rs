//! `tollgate explain`: every rule of one call's tool, evaluated with the
//! values it read, for a call of a stored session or of a script.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::ExitCode;
use tollgate_core::{Event, SessionState, apply, decide};
use tollgate_protocol::script::Step;

/// Explains call `call` of stored session `session`, against the session as
/// it stood just before the call was decided.
pub async fn stored(db: &str, session: &str, call: &str) -> Result<ExitCode> {
    let engine = crate::state::open_existing(db).await?;
    let explained = engine.state_before(session, call).await;
    engine.close().await;
    let (workflow, state, recorded) = explained?;
    out!("session {session}, call {call} to {}", recorded.tool);
    out!("{}", tollgate_core::explain(&workflow, &state, &recorded).render().trim_end());
    Ok(ExitCode::SUCCESS)
}

/// Explains call `call` of a script, run in memory up to it.
pub fn script(workflow_path: &Path, script_path: &Path, call: &str) -> Result<ExitCode> {
    let (_, workflow) = crate::validate::load(workflow_path)?;
    let text = crate::input::read(script_path, "the script", crate::input::SCRIPT_BYTES_MAX)?;
    let mut state = SessionState::new(&workflow);
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let json: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: malformed JSON", script_path.display(), number + 1))?;
        let step =
            Step::from_json(&json).map_err(|m| anyhow::anyhow!("{}:{}: {m}", script_path.display(), number + 1))?;
        match &step {
            Step::Call(c) if c.id.as_str() == call => {
                out!("call {call} to {} (script line {})", c.tool, number + 1);
                out!("{}", tollgate_core::explain(&workflow, &state, c).render().trim_end());
                return Ok(ExitCode::SUCCESS);
            }
            Step::Call(c) => {
                let decision = decide(&workflow, &state, c);
                apply(&workflow, &mut state, Event::Decided { call: c, decision: &decision });
            }
            Step::Result { call: id, result, outcome } => {
                apply(&workflow, &mut state, Event::ResultRecorded { call: id, result, outcome: *outcome });
            }
        }
    }
    bail!("{} has no call {call}", script_path.display())
}
