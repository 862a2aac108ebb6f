//! `tollgate demo --scenario multi-concern`: "refund order #W1001, my new
//! address is 1 Main St, and I was charged twice on order #W1002". The
//! agent verifies the customer once, opens one investigation per concern,
//! runs them as concurrent tokio tasks against a built-in backend with
//! simulated tool latency, and joins them: the double charge needs a human,
//! so the joined handoff shows the whole case.

use crate::demo_backend::Backend;
use crate::paint::Paint;
use anyhow::{Result, bail};
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_core::{Decision, FindingStatus, ToolCall, ToolOutcome};
use tollgate_engine::{Concern, Engine};

/// The multi-concern workflow, built into the binary.
pub const MULTI_CONCERN: &str = include_str!("../../../examples/multi-concern.toml");

/// One concern's branch: its id, text, tools, and the agent's calls.
struct Branch {
    id: &'static str,
    concern: &'static str,
    tools: &'static [&'static str],
    calls: Vec<(&'static str, Json)>,
    outcome: &'static str,
}

fn branches() -> Vec<Branch> {
    vec![
        Branch {
            id: "refund",
            concern: "refund $80 on order #W1001",
            tools: &["lookup_order", "process_refund"],
            calls: vec![
                ("lookup_order", json!({"order_id": "#W1001"})),
                ("process_refund", json!({"order_id": "#W1001", "amount": 80})),
                ("lookup_order", json!({"order_id": "#W1001"})),
            ],
            outcome: "refunded $80 on order #W1001",
        },
        Branch {
            id: "address",
            concern: "my new address is 1 Main St, Springfield 12345",
            tools: &["get_customer", "update_address"],
            calls: vec![
                ("get_customer", json!({"email": "alice@example.com", "zip": "94107"})),
                ("update_address", json!({"street": "1 Main St", "city": "Springfield", "zip": "12345"})),
                // A lookup that answers with another customer: the inherited identity does not move.
                ("get_customer", json!({"email": "mallory@example.com", "zip": "10001"})),
            ],
            outcome: "shipping address changed to 1 Main St, Springfield 12345",
        },
        Branch {
            id: "charge",
            concern: "I was charged twice on order #W1002",
            tools: &["lookup_charges", "lookup_order", "reverse_duplicate_charge"],
            calls: vec![
                ("lookup_charges", json!({"order_id": "#W1002"})),
                ("lookup_order", json!({"order_id": "#W1002"})),
                ("reverse_duplicate_charge", json!({"order_id": "#W1002"})),
            ],
            outcome: "duplicate charge reversed",
        },
    ]
}

/// How to run the scenario.
pub struct Options {
    /// The parent session: continued if it exists, else started
    /// (`case-<time>` when none is given).
    pub session: Option<String>,
    /// What one simulated tool call costs.
    pub latency: Duration,
    /// Print a `step ...` line as each step is committed (for crash tests
    /// that kill the process at a chosen point).
    pub progress: Progress,
}

/// Whether committed steps are announced as they happen.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Only the story, once it is done.
    Quiet,
    /// A `step <session> <what>` line per committed step, as it commits.
    Lines,
}

/// The default simulated tool latency.
pub const TOOL_LATENCY: Duration = Duration::from_millis(50);

/// Runs the scenario into the store at `db`. Running it again with the same
/// store and session continues where it stopped: every step has a stable
/// call id, so what was decided gets its recorded decision back, results
/// recorded count once, calls in doubt are re-driven with their idempotency
/// keys (the backend does not repeat them), investigations opened are not
/// opened again, an ended one is not concluded again, and the join happens
/// once.
pub fn run(paint: Paint, db: &str, options: &Options) -> Result<ExitCode> {
    crate::runtime()?.block_on(run_stored(paint, db, options))
}

/// What one run needs at every step.
struct Steps {
    engine: Arc<Engine>,
    backend: Backend,
    progress: Progress,
}

impl Steps {
    fn announce(&self, session: &str, what: &str) {
        if self.progress == Progress::Lines {
            println!("step {session} {what}");
        }
    }

    /// Decides `call` and, if allowed, runs it and records its result,
    /// unless a run before this one did: a replayed allowed call is run only
    /// if it is in doubt (`in_doubt`), and then under its idempotency key.
    async fn step(&self, session: &str, call: &ToolCall, in_doubt: &BTreeSet<String>) -> Result<Step> {
        let decided = self.engine.decide(session, call).await?;
        if !decided.replayed {
            self.announce(session, &format!("decided {} {}", call.id, decided.decision.verdict().as_str()));
        }
        let key = match &decided.decision {
            Decision::Allow(allowed) => allowed.idempotency_key.clone(),
            _ => return Ok(Step { decision: decided.decision, replayed: decided.replayed, result: None }),
        };
        if decided.replayed && !in_doubt.contains(call.id.as_str()) {
            return Ok(Step { decision: decided.decision, replayed: true, result: None });
        }
        let (result, outcome) = match self.backend.call(&call.tool, &call.args, key.as_deref()).await {
            Ok(result) => (result, ToolOutcome::Succeeded),
            Err(error) => (json!(error), ToolOutcome::Failed),
        };
        let recorded = self.engine.record_result(session, call.id.as_str(), &result, outcome).await?;
        if recorded.recorded {
            self.announce(session, &format!("recorded {}", call.id));
        }
        let effects: Vec<String> =
            recorded.effects.iter().map(|e| tollgate_protocol::effect_json(e).to_string()).collect();
        Ok(Step { decision: decided.decision, replayed: decided.replayed, result: Some((result, effects)) })
    }
}

/// What a step did in this run.
struct Step {
    decision: Decision,
    /// Decided in an earlier run.
    replayed: bool,
    /// The tool's answer and the effects of recording it, if it ran in this run.
    result: Option<(Json, Vec<String>)>,
}

fn before_restart(paint: Paint, replayed: bool) -> String {
    if replayed { format!(" {}", paint.dim("(decided before the restart)")) } else { String::new() }
}

async fn run_stored(paint: Paint, db: &str, options: &Options) -> Result<ExitCode> {
    let engine = Arc::new(Engine::open(db).await?);
    let handle = engine.register_workflow(MULTI_CONCERN, "examples/multi-concern.toml").await?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let parent = options.session.clone().unwrap_or_else(|| format!("case-{stamp}"));
    let resumed = match engine.session(&parent).await? {
        Some(info) if info.workflow_hash != handle.hash => {
            bail!("session {parent} exists under another workflow; pick another --session")
        }
        Some(_) => true,
        None => {
            engine.create_session(&handle, &parent, None).await?;
            false
        }
    };
    let steps = Steps {
        engine: Arc::clone(&engine),
        backend: Backend::open(db, options.latency, options.progress)?,
        progress: options.progress,
    };
    println!("{}", paint.bold("Tollgate demo: a multi-concern request, investigated in parallel"));
    println!(
        "{}",
        paint
            .dim("customer: \"Refund $80 on #W1001, my new address is 1 Main St, and I was charged twice on #W1002.\"")
    );
    if resumed {
        println!("{}", paint.dim(&format!("continuing session {parent} where it stopped")));
    }
    println!();
    let parent_resume = engine.resume(&parent).await?;
    let opened_before = !parent_resume.state.investigations().is_empty();
    let parent_in_doubt: BTreeSet<String> = parent_resume.in_doubt.into_iter().map(|d| d.call_id).collect();
    let verify = ToolCall::new("verify", "get_customer", json!({"email": "alice@example.com", "zip": "94107"}));
    let verified = steps.step(&parent, &verify, &parent_in_doubt).await?;
    println!(
        "parent  agent → get_customer: {}{}",
        verdict_line(paint, &verified.decision),
        before_restart(paint, verified.replayed)
    );
    let concerns: Vec<Concern> = branches()
        .iter()
        .map(|b| Concern {
            id: b.id.to_owned(),
            concern: b.concern.to_owned(),
            tools: Some(b.tools.iter().map(|t| (*t).to_owned()).collect()),
        })
        .collect();
    let opened = engine.open_investigations(&parent, &concerns).await?;
    if !opened_before {
        steps.announce(&parent, "opened");
    }
    println!(
        "parent  opened {} investigations: {}",
        opened.len(),
        opened.iter().map(|o| o.session.as_str()).collect::<Vec<_>>().join(", ")
    );
    let early = ToolCall::new("reply-early", "reply_to_customer", json!({"message": "All done!"}));
    let replied_early = steps.step(&parent, &early, &parent_in_doubt).await?;
    println!(
        "parent  agent → reply_to_customer: {}{}",
        verdict_line(paint, &replied_early.decision),
        before_restart(paint, replied_early.replayed)
    );

    let steps = Arc::new(steps);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (branch, investigation) in branches().into_iter().zip(&opened) {
        let steps = Arc::clone(&steps);
        let session = investigation.session.clone();
        tasks.push(tokio::spawn(async move { run_branch(&steps, &session, branch, paint, started).await }));
    }
    let mut timelines = Vec::new();
    for task in tasks {
        timelines.push(task.await??);
    }
    let wall_ms = started.elapsed().as_millis();
    for (id, lines, elapsed) in &timelines {
        println!();
        println!("{}", paint.bold(&format!("branch {id} ({elapsed} ms)")));
        for line in lines {
            println!("  {line}");
        }
    }

    let (join, joined_before) = join_once(&engine, &parent).await?;
    if !joined_before {
        steps.announce(&parent, "joined");
    }
    println!();
    let heading = if joined_before {
        "join (made before the restart; in the order the concerns were opened):"
    } else {
        "join (in the order the concerns were opened):"
    };
    println!("{}", paint.bold(heading));
    print_join(paint, &join);
    let reply = ToolCall::new(
        "reply",
        "reply_to_customer",
        json!({"message": "Refund and address change done; a colleague will reverse the double charge."}),
    );
    let replied = steps.step(&parent, &reply, &parent_in_doubt).await?;
    println!();
    println!(
        "parent  agent → reply_to_customer: {}{}",
        verdict_line(paint, &replied.decision),
        before_restart(paint, replied.replayed)
    );
    println!("{}", paint.dim(&format!("stored as session {parent} and its investigations in {db}")));
    let sum_ms: u128 = timelines.iter().map(|(_, _, elapsed)| *elapsed).sum();
    let slowest_ms = timelines.iter().map(|(_, _, elapsed)| *elapsed).max().unwrap_or(0);
    println!("slowest branch: {slowest_ms} ms");
    engine.close().await;
    println!("parallel wall time: {wall_ms} ms; sum of branches: {sum_ms} ms");
    Ok(ExitCode::SUCCESS)
}

/// Joins the parent's investigations, and says whether a run before this
/// one had joined them already (`Engine::join` gives that join back and
/// journals nothing a second time).
async fn join_once(engine: &Engine, parent: &str) -> Result<(tollgate_core::Join, bool)> {
    let joined_before = engine
        .journal(parent)
        .await?
        .iter()
        .any(|entry| matches!(entry.record, tollgate_engine::journal::Record::Joined(_)));
    Ok((engine.join(parent).await?, joined_before))
}

fn print_join(paint: Paint, join: &tollgate_core::Join) {
    for finding in &join.findings {
        let status = match finding.status {
            FindingStatus::Resolved => paint.green("resolved"),
            FindingStatus::Escalated => paint.yellow("escalated"),
        };
        println!("  {} [{status}] {}: {}", finding.concern_id, finding.concern, finding.outcome);
    }
    if let Some(handoff) = &join.handoff {
        println!();
        println!("{}", paint.bold("joined handoff to a human (every concern):"));
        println!("  customer_id: {}", handoff.customer_id.as_deref().unwrap_or("-"));
        println!("  urgency:     {}", handoff.urgency);
        for finding in &handoff.concerns {
            println!("  concern {} ({}): {}", finding.concern_id, finding.status.as_str(), finding.concern);
            println!("    outcome:  {}", finding.outcome);
            if let Some(action) = &finding.recommended_action {
                println!("    action:   {action}");
            }
            println!("    facts:    {}", finding.facts.iter().map(|f| f.line()).collect::<Vec<_>>().join("; "));
            println!("    calls:    {}", finding.calls.iter().map(|c| c.line()).collect::<Vec<_>>().join("; "));
            if !finding.blocks.is_empty() {
                println!("    blocks:   {}", finding.blocks.iter().map(|c| c.line()).collect::<Vec<_>>().join("; "));
            }
        }
    }
}

/// Runs one investigation from where it stands: each call decided (or its
/// recorded decision taken back), allowed ones run against the backend and
/// their results recorded unless that happened before; concluded unless a
/// call escalated or it ended in an earlier run. Returns the branch's id,
/// timeline and elapsed milliseconds.
async fn run_branch(
    steps: &Steps,
    session: &str,
    branch: Branch,
    paint: Paint,
    started: Instant,
) -> Result<(&'static str, Vec<String>, u128)> {
    let begun = Instant::now();
    let mut lines = Vec::new();
    let stamp = |lines: &mut Vec<String>, text: String| {
        lines.push(format!("{:>5} ms  {text}", started.elapsed().as_millis()));
    };
    let resume = steps.engine.resume(session).await?;
    if let Some(ending) = resume.state.ending() {
        stamp(&mut lines, format!("ended before the restart: {}", ending_line(ending)));
        return Ok((branch.id, lines, begun.elapsed().as_millis()));
    }
    let in_doubt: BTreeSet<String> = resume.in_doubt.into_iter().map(|d| d.call_id).collect();
    let mut escalated = false;
    for (index, (tool, args)) in branch.calls.into_iter().enumerate() {
        let call = ToolCall::new(format!("{}-{}", branch.id, index + 1), tool, args);
        let step = steps.step(session, &call, &in_doubt).await?;
        stamp(
            &mut lines,
            format!(
                "agent → {tool} {}: {}{}",
                call.args,
                verdict_line(paint, &step.decision),
                before_restart(paint, step.replayed)
            ),
        );
        if let Some((result, effects)) = &step.result {
            let again = if in_doubt.contains(call.id.as_str()) {
                " (in doubt after the restart, re-driven with its key)"
            } else {
                ""
            };
            stamp(&mut lines, format!("tool  ← {result} {}{again}", paint.dim(&effects.join(" "))));
        }
        if let Decision::Escalate(escalation) = &step.decision {
            if !step.replayed {
                // Filing the handoff with the desk takes a tool's time too.
                tokio::time::sleep(steps.backend.latency()).await;
            }
            stamp(&mut lines, format!("handed to a human: {}", escalation.recommended_action));
            escalated = true;
            break;
        }
    }
    if !escalated {
        steps.engine.conclude(session, branch.outcome).await?;
        steps.announce(session, "concluded");
        stamp(&mut lines, format!("concluded: {}", branch.outcome));
    }
    let elapsed = begun.elapsed().as_millis();
    if lines.is_empty() {
        bail!("branch {} did nothing", branch.id);
    }
    Ok((branch.id, lines, elapsed))
}

fn ending_line(ending: &tollgate_core::Ending) -> String {
    match ending {
        tollgate_core::Ending::Resolved { outcome } => format!("concluded: {outcome}"),
        tollgate_core::Ending::Escalated { recommended_action, .. } => {
            format!("handed to a human: {recommended_action}")
        }
    }
}

fn verdict_line(paint: Paint, decision: &Decision) -> String {
    match decision {
        Decision::Allow(_) => paint.green("ALLOW"),
        Decision::Block(blocked) => format!(
            "{} {}",
            paint.red("BLOCK"),
            blocked.reasons.iter().map(|r| format!("{} [{}]", r.message, r.rule_id)).collect::<Vec<_>>().join("; ")
        ),
        Decision::Escalate(escalation) => format!(
            "{} {}",
            paint.yellow("ESCALATE"),
            escalation.reasons.iter().map(|r| format!("{} [{}]", r.message, r.rule_id)).collect::<Vec<_>>().join("; ")
        ),
    }
}
