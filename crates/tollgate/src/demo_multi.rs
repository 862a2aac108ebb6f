//! `tollgate demo --scenario multi-concern`: "refund order #W1001, my new
//! address is 1 Main St, and I was charged twice on order #W1002". The
//! agent verifies the customer once, opens one investigation per concern,
//! runs them as concurrent tokio tasks against a built-in backend with
//! simulated tool latency, and joins them: the double charge needs a human,
//! so the joined handoff shows the whole case.

use crate::paint::Paint;
use anyhow::{Result, bail};
use serde_json::{Value as Json, json};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_core::{Decision, FindingStatus, ToolCall, ToolOutcome};
use tollgate_engine::{Concern, Engine};

/// The multi-concern workflow, built into the binary.
pub const MULTI_CONCERN: &str = include_str!("../../../examples/multi-concern.toml");

/// What one simulated tool call costs (the backend sleeps this long).
const TOOL_LATENCY: Duration = Duration::from_millis(50);

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

/// The built-in backend: stateless answers after a simulated latency.
async fn run_tool(tool: &str, args: &Json) -> Result<Json, String> {
    tokio::time::sleep(TOOL_LATENCY).await;
    let text = |name: &str| args.get(name).and_then(Json::as_str).unwrap_or_default().to_owned();
    match tool {
        "get_customer" if text("email") == "alice@example.com" => {
            Ok(json!({"verified": true, "customer_id": "c_42", "email": "alice@example.com", "tier": "gold"}))
        }
        "get_customer" => Ok(json!({"verified": true, "customer_id": "c_77", "email": text("email"), "tier": "basic"})),
        "lookup_order" => {
            let total = if text("order_id") == "#W1002" { 45.0 } else { 120.0 };
            Ok(json!({"order_id": text("order_id"), "customer_id": "c_42", "total": total, "status": "delivered"}))
        }
        "process_refund" => Ok(json!({"refund_id": "rf_1001", "order_status": "delivered"})),
        "update_address" => Ok(json!({"updated": true})),
        "lookup_charges" => {
            Ok(json!({"order_id": text("order_id"), "customer_id": "c_42", "count": 2, "amount": 45.0}))
        }
        "reply_to_customer" => Ok(json!({"sent": true})),
        other => Err(format!("the demo backend has no tool '{other}'")),
    }
}

/// Runs the scenario into the store at `db`, as session `session` (a new
/// one, `case-<time>`, if none is given).
pub fn run(paint: Paint, db: &str) -> Result<ExitCode> {
    crate::runtime()?.block_on(run_stored(paint, db))
}

async fn run_stored(paint: Paint, db: &str) -> Result<ExitCode> {
    let engine = Arc::new(Engine::open(db).await?);
    let handle = engine.register_workflow(MULTI_CONCERN, "examples/multi-concern.toml").await?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let parent = format!("case-{stamp}");
    engine.create_session(&handle, &parent, None).await?;
    println!("{}", paint.bold("Tollgate demo: a multi-concern request, investigated in parallel"));
    println!(
        "{}",
        paint
            .dim("customer: \"Refund $80 on #W1001, my new address is 1 Main St, and I was charged twice on #W1002.\"")
    );
    println!();
    let verify = ToolCall::new("verify", "get_customer", json!({"email": "alice@example.com", "zip": "94107"}));
    let decided = engine.decide(&parent, &verify).await?.decision;
    println!("parent  agent → get_customer: {}", verdict_line(paint, &decided));
    let result = run_tool(&verify.tool, &verify.args).await.map_err(anyhow::Error::msg)?;
    engine.record_result(&parent, "verify", &result, ToolOutcome::Succeeded).await?;
    let concerns: Vec<Concern> = branches()
        .iter()
        .map(|b| Concern {
            id: b.id.to_owned(),
            concern: b.concern.to_owned(),
            tools: Some(b.tools.iter().map(|t| (*t).to_owned()).collect()),
        })
        .collect();
    let opened = engine.open_investigations(&parent, &concerns).await?;
    println!(
        "parent  opened {} investigations: {}",
        opened.len(),
        opened.iter().map(|o| o.session.as_str()).collect::<Vec<_>>().join(", ")
    );
    let early = ToolCall::new("reply-early", "reply_to_customer", json!({"message": "All done!"}));
    println!(
        "parent  agent → reply_to_customer: {}",
        verdict_line(paint, &engine.decide(&parent, &early).await?.decision)
    );

    let started = Instant::now();
    let mut tasks = Vec::new();
    for (branch, investigation) in branches().into_iter().zip(&opened) {
        let engine = Arc::clone(&engine);
        let session = investigation.session.clone();
        tasks.push(tokio::spawn(async move { run_branch(&engine, &session, branch, paint, started).await }));
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

    let join = engine.join(&parent).await?;
    println!();
    println!("{}", paint.bold("join (in the order the concerns were opened):"));
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
    let reply = ToolCall::new(
        "reply",
        "reply_to_customer",
        json!({"message": "Refund and address change done; a colleague will reverse the double charge."}),
    );
    println!();
    println!(
        "parent  agent → reply_to_customer: {}",
        verdict_line(paint, &engine.decide(&parent, &reply).await?.decision)
    );
    println!("{}", paint.dim(&format!("stored as session {parent} and its investigations in {db}")));
    let sum_ms: u128 = timelines.iter().map(|(_, _, elapsed)| *elapsed).sum();
    let slowest_ms = timelines.iter().map(|(_, _, elapsed)| *elapsed).max().unwrap_or(0);
    println!("slowest branch: {slowest_ms} ms");
    engine.store().close().await;
    println!("parallel wall time: {wall_ms} ms; sum of branches: {sum_ms} ms");
    Ok(ExitCode::SUCCESS)
}

/// Runs one investigation: each call decided, allowed ones run against the
/// backend and their results recorded; concluded unless a call escalated.
/// Returns the branch's id, timeline and elapsed milliseconds.
async fn run_branch(
    engine: &Engine,
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
    let mut escalated = false;
    for (index, (tool, args)) in branch.calls.into_iter().enumerate() {
        let call = ToolCall::new(format!("{}-{}", branch.id, index + 1), tool, args);
        let decision = engine.decide(session, &call).await?.decision;
        stamp(&mut lines, format!("agent → {tool} {}: {}", call.args, verdict_line(paint, &decision)));
        match decision {
            Decision::Allow(_) => {
                let (result, outcome) = match run_tool(tool, &call.args).await {
                    Ok(result) => (result, ToolOutcome::Succeeded),
                    Err(error) => (json!(error), ToolOutcome::Failed),
                };
                let recorded = engine.record_result(session, call.id.as_str(), &result, outcome).await?;
                let effects: Vec<String> = recorded.effects.iter().map(|e| e.to_json().to_string()).collect();
                stamp(&mut lines, format!("tool  ← {result} {}", paint.dim(&effects.join(" "))));
            }
            Decision::Escalate(escalation) => {
                // Filing the handoff with the desk takes a tool's time too.
                tokio::time::sleep(TOOL_LATENCY).await;
                stamp(&mut lines, format!("handed to a human: {}", escalation.recommended_action));
                escalated = true;
                break;
            }
            Decision::Block(_) => {}
        }
    }
    if !escalated {
        engine.conclude(session, branch.outcome).await?;
        stamp(&mut lines, format!("concluded: {}", branch.outcome));
    }
    let elapsed = begun.elapsed().as_millis();
    if lines.is_empty() {
        bail!("branch {} did nothing", branch.id);
    }
    Ok((branch.id, lines, elapsed))
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
