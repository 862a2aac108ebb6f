//! `tollgate run`: a scripted session in, a decision transcript out.

use anyhow::{Context, Result, bail};
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use tollgate_core::SessionState;
use tollgate_core::script::{Step, run_step};

pub fn run(workflow_path: &Path, script_path: &Path) -> Result<ExitCode> {
    let workflow = crate::validate::load(workflow_path)?;
    let text = if script_path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read the script from standard input")?;
        text
    } else {
        std::fs::read_to_string(script_path).with_context(|| format!("cannot read {}", script_path.display()))?
    };
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
    let mut state = SessionState::new(&workflow);
    for step in &steps {
        println!("{}", run_step(&workflow, &mut state, step));
    }
    Ok(ExitCode::SUCCESS)
}
