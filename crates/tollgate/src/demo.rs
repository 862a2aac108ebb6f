//! `tollgate demo`: prints the support-refunds story
//! (`tollgate_demo::support_refunds`) as it happens, coloured when asked.

use crate::paint::Paint;
use anyhow::Result;
use std::process::ExitCode;
use tollgate_core::{Decision, Effect};
use tollgate_demo::support_refunds::{self, Event, Options};

/// The reference workflow; the benchmarks take it from here.
pub use tollgate_demo::SUPPORT_REFUNDS;

/// Runs the story into the store at `db`, printing each step as it happens:
/// the session, its decisions and audit records stay in the store, as
/// session `demo-<time>`.
pub fn run(paint: Paint, db: &str) -> Result<ExitCode> {
    let print = move |event: Event| print_event(paint, event);
    let story = crate::runtime()?.block_on(support_refunds::run(db, &Options::default(), &print))?;
    let tally = story.tally;
    out!();
    out!(
        "{}",
        paint.bold(&format!("{} allowed, {} blocked, {} escalated", tally.allowed, tally.blocked, tally.escalated))
    );
    let session = story.session;
    out!(
        "{}",
        paint.dim(&format!(
            "stored as session {session} in {db}: `tollgate sessions show {session} --db {db}`, `tollgate audit verify --db {db}`"
        ))
    );
    Ok(ExitCode::SUCCESS)
}

fn print_event(paint: Paint, event: Event) {
    match event {
        Event::Started { workflow, version, .. } => {
            out!("{}", paint.bold(&format!("Tollgate demo: workflow {workflow} v{version}")));
        }
        Event::Scene { number, said, call } => {
            out!();
            out!("{}", paint.dim(&format!("{number:>2}  customer: \"{said}\"")));
            out!("    agent → {} {}", paint.bold(&call.tool), call.args);
        }
        Event::Decided(decision) => print_decision(paint, &decision),
        Event::Answered { result, .. } => out!("    tool  ← {result}"),
        Event::Recorded(effects) => print_effects(paint, effects),
    }
}

fn print_effects(paint: Paint, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::FactEstablished { fact, key } => {
                out!("    {}", paint.green(&format!("fact established: {fact}{}", key_text(&key))));
            }
            Effect::FactUpdated { fact, key, fields } => {
                out!("    {}", paint.green(&format!("fact updated: {fact}{} ({})", key_text(&key), fields.join(", "))));
            }
            Effect::ResultWithheld { reasons, .. } => {
                out!("    {} the agent does not see this result", paint.red("WITHHELD"));
                for reason in reasons {
                    out!("      - {}  {}", reason.message, paint.dim(&format!("[{}]", reason.rule_id)));
                }
            }
            other => out!("    {}", paint.dim(&format!("{other:?}"))),
        }
    }
}

fn key_text(key: &Option<String>) -> String {
    key.as_ref().map(|k| format!("[{k}]")).unwrap_or_default()
}

fn print_decision(paint: Paint, decision: &Decision) {
    match decision {
        Decision::Allow(allowed) => {
            let key = allowed
                .idempotency_key
                .as_ref()
                .map(|k| paint.dim(&format!(" (idempotency key {k})")))
                .unwrap_or_default();
            out!("    {}{key}", paint.green("ALLOW"));
        }
        Decision::Block(blocked) => {
            out!("    {} at stage {}", paint.red("BLOCK"), blocked.stage.as_str());
            for reason in &blocked.reasons {
                out!("      - {}  {}", reason.message, paint.dim(&format!("[{}]", reason.rule_id)));
            }
        }
        Decision::Escalate(escalation) => {
            out!("    {} urgency {}", paint.yellow("ESCALATE"), escalation.urgency);
            for reason in &escalation.reasons {
                out!("      - {}  {}", reason.message, paint.dim(&format!("[{}]", reason.rule_id)));
            }
            let handoff = &escalation.handoff;
            out!("    {}", paint.bold("handoff to a human:"));
            out!("      customer_id:          {}", handoff.customer_id.as_deref().unwrap_or("-"));
            out!("      urgency:              {}", handoff.urgency);
            out!("      root_cause:           {}", handoff.root_cause);
            out!("      recommended_action:   {}", handoff.recommended_action);
            out!("      conversation_summary: {}", handoff.conversation_summary);
            out!("      facts:");
            for fact in &handoff.facts {
                out!("        {}", fact.line());
            }
            out!("      timeline:");
            for entry in &handoff.timeline {
                out!("        {}", entry.line());
            }
        }
    }
}
