//! `tollgate validate`: every problem with file, line and column, or a
//! one-screen summary of a valid workflow with its static bypass analysis.

use anyhow::{Result, anyhow};
use std::path::Path;
use std::process::ExitCode;
use tollgate_core::Workflow;

/// Reads and compiles a workflow; problems become one error listing them all.
pub fn load(path: &Path) -> Result<(String, Workflow)> {
    let text = crate::input::read(path, "the workflow", crate::input::WORKFLOW_BYTES_MAX)?;
    let workflow = tollgate_core::compile(&text, &path.display().to_string()).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow!("the workflow has {} problem(s):\n{}", problems.len(), lines.join("\n"))
    })?;
    if let Some(problem) = tollgate_core::workflow_name_problem(workflow.name()) {
        return Err(anyhow!("the workflow has 1 problem(s):\n{}: {problem}", path.display()));
    }
    Ok((text, workflow))
}

pub fn run(files: &[std::path::PathBuf]) -> Result<ExitCode> {
    let mut failed = false;
    for path in files {
        let text = match crate::input::read(path, "the workflow", crate::input::WORKFLOW_BYTES_MAX) {
            Ok(text) => text,
            Err(error) => {
                out!("{}: cannot read the file: {error}", path.display());
                failed = true;
                continue;
            }
        };
        match tollgate_core::compile(&text, &path.display().to_string()) {
            Ok(workflow) if let Some(problem) = tollgate_core::workflow_name_problem(workflow.name()) => {
                failed = true;
                out!("{}: {problem}", path.display());
                out!("{}: 1 problem(s)", path.display());
            }
            Ok(workflow) => {
                out!("{}", summary(&workflow).trim_end_matches('\n'));
                for warning in workflow.warnings() {
                    out!("{}:{}:{}: warning: {}", warning.file, warning.line, warning.column, warning.message);
                }
            }
            Err(problems) => {
                failed = true;
                for problem in &problems {
                    out!("{problem}");
                }
                out!("{}: {} problem(s)", path.display(), problems.len());
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn summary(workflow: &Workflow) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!("workflow {} v{}: valid", workflow.name(), workflow.version()));
    if let Some(description) = workflow.description() {
        line(format!("  {description}"));
    }
    line(String::new());
    line("facts:".into());
    for fact in workflow.facts() {
        let fields: Vec<String> = fact.fields().iter().map(|(n, t)| format!("{n}: {}", t.name())).collect();
        let shape = match fact.key_field() {
            Some(key) => format!("keyed by {key}"),
            None => "once per session".into(),
        };
        let identity = if fact.is_identity() { ", identity" } else { "" };
        line(format!("  {:<16} {shape}{identity}; {}", fact.name(), fields.join(", ")));
    }
    if !workflow.aggregates().is_empty() {
        line("aggregates:".into());
        for aggregate in workflow.aggregates() {
            line(format!("  {:<16} {}", aggregate.name(), aggregate.description().unwrap_or("")));
        }
    }
    line("tools:".into());
    for tool in workflow.tools() {
        let gates: Vec<&str> = tool.gates().iter().map(|g| g.text()).collect();
        let mut traits = Vec::new();
        if tool.is_side_effect() {
            traits.push("side effect".to_owned());
        }
        if tool.is_handoff() {
            traits.push("handoff".to_owned());
        }
        traits.push(format!("{} check(s)", tool.checks().len()));
        traits.push(format!("{} escalation rule(s)", tool.escalations().len()));
        if !tool.result_checks().is_empty() {
            traits.push(format!("{} result check(s)", tool.result_checks().len()));
        }
        let requires =
            if gates.is_empty() { "no prerequisites".to_owned() } else { format!("requires {}", gates.join(", ")) };
        line(format!("  {:<18} {requires}; {}", tool.name(), traits.join(", ")));
    }
    let names = workflow.tool_names();
    let undeclared = match names.undeclared() {
        tollgate_core::workflow::Undeclared::Deny => "denied",
        tollgate_core::workflow::Undeclared::Allow => "allowed (journaled, gated by nothing)",
    };
    line(format!("undeclared tools: {undeclared} (tool_names.undeclared = \"{}\")", names.undeclared().as_str()));
    if !names.prefixes().is_empty() || !names.table().is_empty() {
        let table: Vec<String> = names.table().iter().map(|(client, tool)| format!("{client} -> {tool}")).collect();
        line(format!(
            "client tool names: prefixes stripped {}; table {}",
            if names.prefixes().is_empty() { "none".to_owned() } else { names.prefixes().join(", ") },
            if table.is_empty() { "none".to_owned() } else { table.join(", ") }
        ));
    }
    line("static bypass analysis (facts every path to the tool must establish):".into());
    for guarded in workflow.analysis().guarded() {
        line(format!("  {:<18} {}", guarded.tool, guarded.must_establish.join(", ")));
    }
    if !workflow.invariants().is_empty() {
        line(format!("invariants (checked by tollgate attack, never by decisions): {}", workflow.invariants().len()));
    }
    if let Some(handoff) = workflow.handoff() {
        line(format!(
            "handoff: requires {}; urgency levels {}",
            handoff.required().join(", "),
            handoff.urgency_levels().join(" < ")
        ));
    }
    out
}
