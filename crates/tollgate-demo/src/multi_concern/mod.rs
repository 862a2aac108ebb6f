//! The multi-concern case: "refund order #W1001, my new address is 1 Main
//! St, and I was charged twice on order #W1002". The agent verifies the
//! customer once, opens one investigation per concern, runs them as
//! concurrent tokio tasks against a simulated backend with tool latency, and
//! joins them: the double charge needs a human, so the joined handoff shows
//! the whole case.
//!
//! Resumable: every step has a stable call id, so a run with the same store
//! and session continues where one stopped (killed, say). What was decided
//! gets its recorded decision back, results recorded count once, calls in
//! doubt are re-driven with their idempotency keys (the backend's ledger
//! does not repeat them), investigations opened are not opened again, an
//! ended one is not concluded again, and the join happens once.

mod backend;
mod events;

pub use backend::ledger_path;
pub use events::{Attempt, Case, Entry, Event, Happened, Origin, Phase, Progress, Start, Step, Timeline};

use crate::{Error, MULTI_CONCERN, Observer};
use backend::Backend;
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_core::{Decision, Effect, Join, ToolCall, ToolOutcome};
use tollgate_engine::{Concern, Engine, Investigation};

/// The default simulated tool latency.
pub const TOOL_LATENCY: Duration = Duration::from_millis(50);

/// How to run the case.
#[derive(Clone, Debug)]
pub struct Options {
    /// The parent session: continued if it exists, else started
    /// (`case-<time>` when none is given).
    pub session: Option<String>,
    /// What one simulated tool call costs.
    pub latency: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options { session: None, latency: TOOL_LATENCY }
    }
}

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

/// Runs the case into the store at `db`, continuing the parent session if
/// it exists (see the module's documentation). `observer` hears each step
/// as it happens; it is shared with the investigations' tasks, hence the
/// `Arc`.
pub async fn run(db: &str, options: &Options, observer: Arc<dyn Observer<Event>>) -> Result<Case, Error> {
    let engine = Arc::new(Engine::open(db).await?);
    let handle = engine.register_workflow(MULTI_CONCERN, "examples/multi-concern.toml").await?;
    let parent = options.session.clone().unwrap_or_else(|| crate::stamped("case"));
    let start = match engine.session(&parent).await? {
        Some(info) if info.workflow_hash != handle.hash => return Err(Error::OtherWorkflow { session: parent }),
        Some(_) => Start::Continued,
        None => {
            engine.create_session(&handle, &parent, None).await?;
            Start::New
        }
    };
    let backend = Backend::open(db, options.latency, Arc::clone(&observer))?;
    let steps = Arc::new(Steps { engine: Arc::clone(&engine), backend, observer });
    steps.observer.event(Event::Started { parent: parent.clone(), start });

    let parent_resume = engine.resume(&parent).await?;
    let opened_before = !parent_resume.state.investigations().is_empty();
    let parent_in_doubt: BTreeSet<String> = parent_resume.in_doubt.into_iter().map(|d| d.call_id).collect();
    let verify = ToolCall::new("verify", "get_customer", json!({"email": "alice@example.com", "zip": "94107"}));
    steps.parent_step(&parent, Phase::BeforeFanOut, &verify, &parent_in_doubt).await?;
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
        steps.progress(&parent, Step::Opened);
    }
    steps.observer.event(Event::Opened { sessions: opened.iter().map(|o| o.session.clone()).collect() });
    let early = ToolCall::new("reply-early", "reply_to_customer", json!({"message": "All done!"}));
    steps.parent_step(&parent, Phase::BeforeFanOut, &early, &parent_in_doubt).await?;

    let (timelines, wall_ms) = fan_out(&steps, &opened).await?;
    let branches_sum_ms = timelines.iter().map(|t| t.elapsed_ms).sum();
    let slowest_branch_ms = timelines.iter().map(|t| t.elapsed_ms).max().unwrap_or(0);
    for timeline in timelines {
        steps.observer.event(Event::Branch(timeline));
    }

    let (join, origin) = join_once(&engine, &parent).await?;
    if origin == Origin::ThisRun {
        steps.progress(&parent, Step::Joined);
    }
    steps.observer.event(Event::Joined { join: join.clone(), origin });
    let reply = ToolCall::new(
        "reply",
        "reply_to_customer",
        json!({"message": "Refund and address change done; a colleague will reverse the double charge."}),
    );
    steps.parent_step(&parent, Phase::AfterJoin, &reply, &parent_in_doubt).await?;
    engine.close().await;
    Ok(Case { parent, join, wall_ms, branches_sum_ms, slowest_branch_ms })
}

/// Runs each investigation as a task of its own, all at once, and waits for
/// them: their timelines in the order the concerns were opened, and the
/// wall time they took together.
async fn fan_out(steps: &Arc<Steps>, opened: &[Investigation]) -> Result<(Vec<Timeline>, u128), Error> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (branch, investigation) in branches().into_iter().zip(opened) {
        let steps = Arc::clone(steps);
        let session = investigation.session.clone();
        let task = tokio::spawn(async move { run_branch(&steps, session, branch, started).await });
        tasks.push((investigation.session.clone(), task));
    }
    let mut timelines = Vec::new();
    for (session, task) in tasks {
        timelines.push(task.await.map_err(|source| Error::Branch { session, source })??);
    }
    Ok((timelines, started.elapsed().as_millis()))
}

/// What one run needs at every step.
struct Steps {
    engine: Arc<Engine>,
    backend: Backend,
    observer: Arc<dyn Observer<Event>>,
}

/// What a step did in this run.
struct Stepped {
    decision: Decision,
    origin: Origin,
    /// The tool's answer and the effects of recording it, if it ran in this run.
    result: Option<(Json, Vec<Effect>)>,
}

impl Steps {
    fn progress(&self, session: &str, step: Step) {
        self.observer.event(Event::Progress(Progress { session: session.to_owned(), step }));
    }

    /// Decides `call` and, if allowed, runs it and records its result,
    /// unless a run before this one did: a replayed allowed call is run only
    /// if it is in doubt (`in_doubt`), and then under its idempotency key.
    async fn step(&self, session: &str, call: &ToolCall, in_doubt: &BTreeSet<String>) -> Result<Stepped, Error> {
        let decided = self.engine.decide(session, call).await?;
        let origin = if decided.replayed { Origin::BeforeRestart } else { Origin::ThisRun };
        if origin == Origin::ThisRun {
            let verdict = decided.decision.verdict();
            self.progress(session, Step::Decided { call_id: call.id.as_str().to_owned(), verdict });
        }
        let key = match &decided.decision {
            Decision::Allow(allowed) => allowed.idempotency_key.clone(),
            _ => return Ok(Stepped { decision: decided.decision, origin, result: None }),
        };
        if origin == Origin::BeforeRestart && !in_doubt.contains(call.id.as_str()) {
            return Ok(Stepped { decision: decided.decision, origin, result: None });
        }
        let (result, outcome) = match self.backend.call(&call.tool, &call.args, key.as_deref()).await {
            Ok(result) => (result, ToolOutcome::Succeeded),
            Err(error) => (json!(error), ToolOutcome::Failed),
        };
        let recorded = self.engine.record_result(session, call.id.as_str(), &result, outcome).await?;
        if recorded.recorded {
            self.progress(session, Step::Recorded { call_id: call.id.as_str().to_owned() });
        }
        Ok(Stepped { decision: decided.decision, origin, result: Some((result, recorded.effects)) })
    }

    /// A step of the parent session, told to the observer once it is done.
    async fn parent_step(
        &self,
        parent: &str,
        phase: Phase,
        call: &ToolCall,
        in_doubt: &BTreeSet<String>,
    ) -> Result<(), Error> {
        let stepped = self.step(parent, call, in_doubt).await?;
        self.observer.event(Event::ParentCalled {
            phase,
            tool: call.tool.clone(),
            decision: stepped.decision,
            origin: stepped.origin,
        });
        Ok(())
    }
}

/// Joins the parent's investigations, and says whether a run before this
/// one had joined them already (`Engine::join` gives that join back and
/// journals nothing a second time).
async fn join_once(engine: &Engine, parent: &str) -> Result<(Join, Origin), Error> {
    let joined_before = engine
        .journal(parent)
        .await?
        .iter()
        .any(|entry| matches!(entry.record, tollgate_engine::journal::Record::Joined(_)));
    let origin = if joined_before { Origin::BeforeRestart } else { Origin::ThisRun };
    Ok((engine.join(parent).await?, origin))
}

/// Runs one investigation from where it stands: each call decided (or its
/// recorded decision taken back), allowed ones run against the backend and
/// their results recorded unless that happened before; concluded unless a
/// call escalated or it ended in an earlier run.
async fn run_branch(steps: &Steps, session: String, branch: Branch, started: Instant) -> Result<Timeline, Error> {
    let begun = Instant::now();
    let mut entries = Vec::new();
    let mut stamp = |happened: Happened| entries.push(Entry { at_ms: started.elapsed().as_millis(), happened });
    let resume = steps.engine.resume(&session).await?;
    if let Some(ending) = resume.state.ending() {
        stamp(Happened::EndedBefore(ending.clone()));
    } else {
        let in_doubt: BTreeSet<String> = resume.in_doubt.into_iter().map(|d| d.call_id).collect();
        let mut escalated = false;
        for (index, (tool, args)) in branch.calls.into_iter().enumerate() {
            let call = ToolCall::new(format!("{}-{}", branch.id, index + 1), tool, args);
            let step = steps.step(&session, &call, &in_doubt).await?;
            let attempt = if in_doubt.contains(call.id.as_str()) { Attempt::ReDriven } else { Attempt::First };
            let escalation = match &step.decision {
                Decision::Escalate(escalation) => Some(escalation.recommended_action.clone()),
                _ => None,
            };
            stamp(Happened::Called { call, decision: step.decision, origin: step.origin });
            if let Some((result, effects)) = step.result {
                stamp(Happened::Answered { result, effects, attempt });
            }
            if let Some(recommended_action) = escalation {
                if step.origin == Origin::ThisRun {
                    // Filing the handoff with the desk takes a tool's time too.
                    tokio::time::sleep(steps.backend.latency()).await;
                }
                stamp(Happened::HandedOver { recommended_action });
                escalated = true;
                break;
            }
        }
        if !escalated {
            steps.engine.conclude(&session, branch.outcome).await?;
            steps.progress(&session, Step::Concluded);
            stamp(Happened::Concluded { outcome: branch.outcome.to_owned() });
        }
    }
    let elapsed_ms = begun.elapsed().as_millis();
    Ok(Timeline { concern_id: branch.id.to_owned(), session, elapsed_ms, entries })
}
