//! `tollgate demo --scenario multi-concern`: prints the multi-concern case
//! (`tollgate_demo::multi_concern`) as it happens, coloured when asked, with
//! a `step <session> <what>` line per committed step under `--progress`.

use crate::paint::Paint;
use anyhow::Result;
use std::process::ExitCode;
use std::sync::Arc;
use tollgate_core::{Decision, Ending, FindingStatus, Join};
use tollgate_demo::multi_concern::{self, Attempt, Event, Happened, Options, Origin, Phase, Progress, Start, Step};

/// Whether committed steps are announced as they happen.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Steps {
    /// Only the story.
    Quiet,
    /// A `step <session> <what>` line per committed step, as it commits
    /// (what crash tests kill the process on).
    Lines,
}

/// Runs the case into the store at `db`, continuing `options.session` if it
/// exists, printing each step as it happens.
pub fn run(paint: Paint, db: &str, options: &Options, steps: Steps) -> Result<ExitCode> {
    let print = Arc::new(move |event: Event| print_event(paint, steps, event));
    let case = crate::runtime()?.block_on(multi_concern::run(db, options, print)).map_err(|error| match error {
        tollgate_demo::Error::OtherWorkflow { session } => {
            anyhow::anyhow!("session {session} exists under another workflow; pick another --session")
        }
        other => other.into(),
    })?;
    out!("{}", paint.dim(&format!("stored as session {} and its investigations in {db}", case.parent)));
    out!("slowest branch: {} ms", case.slowest_branch_ms);
    out!("parallel wall time: {} ms; sum of branches: {} ms", case.wall_ms, case.branches_sum_ms);
    Ok(ExitCode::SUCCESS)
}

fn print_event(paint: Paint, steps: Steps, event: Event) {
    match event {
        Event::Started { parent, start } => {
            out!("{}", paint.bold("Tollgate demo: a multi-concern request, investigated in parallel"));
            out!(
                "{}",
                paint.dim(
                    "customer: \"Refund $80 on #W1001, my new address is 1 Main St, and I was charged twice on #W1002.\""
                )
            );
            if start == Start::Continued {
                out!("{}", paint.dim(&format!("continuing session {parent} where it stopped")));
            }
            out!();
        }
        Event::ParentCalled { phase, tool, decision, origin } => {
            if phase == Phase::AfterJoin {
                out!();
            }
            out!("parent  agent → {tool}: {}{}", verdict_line(paint, &decision), before_restart(paint, origin));
        }
        Event::Opened { sessions } => {
            out!("parent  opened {} investigations: {}", sessions.len(), sessions.join(", "));
        }
        Event::Progress(progress) if steps == Steps::Lines => out!("{}", step_line(&progress)),
        Event::Progress(_) => {}
        Event::Branch(timeline) => {
            out!();
            out!("{}", paint.bold(&format!("branch {} ({} ms)", timeline.concern_id, timeline.elapsed_ms)));
            for entry in &timeline.entries {
                out!("  {:>5} ms  {}", entry.at_ms, happened_line(paint, &entry.happened));
            }
        }
        Event::Joined { join, origin } => {
            out!();
            let heading = match origin {
                Origin::BeforeRestart => "join (made before the restart; in the order the concerns were opened):",
                Origin::ThisRun => "join (in the order the concerns were opened):",
            };
            out!("{}", paint.bold(heading));
            print_join(paint, &join);
        }
    }
}

fn step_line(progress: &Progress) -> String {
    let what = match &progress.step {
        Step::Decided { call_id, verdict } => format!("decided {call_id} {}", verdict.as_str()),
        Step::Executed { key } => format!("executed {key}"),
        Step::Recorded { call_id } => format!("recorded {call_id}"),
        Step::Opened => "opened".to_owned(),
        Step::Concluded => "concluded".to_owned(),
        Step::Joined => "joined".to_owned(),
    };
    format!("step {} {what}", progress.session)
}

fn happened_line(paint: Paint, happened: &Happened) -> String {
    match happened {
        Happened::EndedBefore(ending) => format!("ended before the restart: {}", ending_line(ending)),
        Happened::Called { call, decision, origin } => format!(
            "agent → {} {}: {}{}",
            call.tool,
            call.args,
            verdict_line(paint, decision),
            before_restart(paint, *origin)
        ),
        Happened::Answered { result, effects, attempt } => {
            let effects: Vec<String> = effects.iter().map(|e| tollgate_protocol::effect_json(e).to_string()).collect();
            let again = match attempt {
                Attempt::ReDriven => " (in doubt after the restart, re-driven with its key)",
                Attempt::First => "",
            };
            format!("tool  ← {result} {}{again}", paint.dim(&effects.join(" ")))
        }
        Happened::HandedOver { recommended_action } => format!("handed to a human: {recommended_action}"),
        Happened::Concluded { outcome } => format!("concluded: {outcome}"),
    }
}

fn before_restart(paint: Paint, origin: Origin) -> String {
    match origin {
        Origin::BeforeRestart => format!(" {}", paint.dim("(decided before the restart)")),
        Origin::ThisRun => String::new(),
    }
}

fn print_join(paint: Paint, join: &Join) {
    for finding in &join.findings {
        let status = match finding.status {
            FindingStatus::Resolved => paint.green("resolved"),
            FindingStatus::Escalated => paint.yellow("escalated"),
        };
        out!("  {} [{status}] {}: {}", finding.concern_id, finding.concern, finding.outcome);
    }
    if let Some(handoff) = &join.handoff {
        out!();
        out!("{}", paint.bold("joined handoff to a human (every concern):"));
        out!("  customer_id: {}", handoff.customer_id.as_deref().unwrap_or("-"));
        out!("  urgency:     {}", handoff.urgency);
        for finding in &handoff.concerns {
            out!("  concern {} ({}): {}", finding.concern_id, finding.status.as_str(), finding.concern);
            out!("    outcome:  {}", finding.outcome);
            if let Some(action) = &finding.recommended_action {
                out!("    action:   {action}");
            }
            out!("    facts:    {}", finding.facts.iter().map(|f| f.line()).collect::<Vec<_>>().join("; "));
            out!("    calls:    {}", finding.calls.iter().map(|c| c.line()).collect::<Vec<_>>().join("; "));
            if !finding.blocks.is_empty() {
                out!("    blocks:   {}", finding.blocks.iter().map(|c| c.line()).collect::<Vec<_>>().join("; "));
            }
        }
    }
}

fn ending_line(ending: &Ending) -> String {
    match ending {
        Ending::Resolved { outcome } => format!("concluded: {outcome}"),
        Ending::Escalated { recommended_action, .. } => format!("handed to a human: {recommended_action}"),
    }
}

fn verdict_line(paint: Paint, decision: &Decision) -> String {
    let reasons = |reasons: &[tollgate_core::Reason]| {
        reasons.iter().map(|r| format!("{} [{}]", r.message, r.rule_id)).collect::<Vec<_>>().join("; ")
    };
    match decision {
        Decision::Allow(_) => paint.green("ALLOW"),
        Decision::Block(blocked) => format!("{} {}", paint.red("BLOCK"), reasons(&blocked.reasons)),
        Decision::Escalate(escalation) => format!("{} {}", paint.yellow("ESCALATE"), reasons(&escalation.reasons)),
    }
}
