//! Deciding calls and recording results, durably: the public entry points
//! queue a job for the group commit (`group.rs`); the jobs run here inside
//! the group's transaction, under the session's lock.

use crate::journal::{Decided, Outcome, Record, Refused, RefusedCall, ResultRecorded, render_decision};
use crate::sessions::{Cached, Loaded, append, append_rendered, cached, checkpoint_due, fold, with_session_key};
use crate::{Engine, Error, ID_MAX, check_id};
use serde_json::{Value as Json, json};
use std::collections::HashMap;
use tollgate_core::{CallId, Decision, Event, ToolCall, ToolOutcome, Workflow, apply, decide_in_case, json_bytes};
use tollgate_protocol::decision_json;
use tollgate_store::SessionTx;

/// Arguments of a refused call larger than this are recorded by size only.
const ARGS_KEPT_MAX: usize = 16 * 1024;

/// A decision as the engine returns it.
#[derive(Clone, Debug)]
pub struct CallDecision {
    /// The decision (for allowed side effects, the key is `session/tool:call`).
    pub decision: Decision,
    /// True if this call id was decided before with the same tool and
    /// arguments and this is that original decision, not a new one.
    pub replayed: bool,
}

impl CallDecision {
    /// The decision as JSON (`tollgate.decision/v1`), made when asked.
    pub fn json(&self) -> Json {
        decision_json(&self.decision)
    }
}

/// What recording a result did.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    /// False if nothing changed: the call was never allowed, or its result
    /// was recorded before (a result counts once).
    pub recorded: bool,
    /// The effects on the session (facts established or updated, a result
    /// withheld, ...); `tollgate_protocol::effect_json` gives their JSON form.
    pub effects: Vec<tollgate_core::Effect>,
    /// Why nothing changed, when `recorded` is false.
    pub note: Option<String>,
}

impl Engine {
    pub(crate) async fn decide_in(
        &self,
        tx: &mut SessionTx,
        overlay: &mut HashMap<String, Cached>,
        session: &str,
        call: &ToolCall,
    ) -> Result<CallDecision, Error> {
        tx.lock(session).await?;
        let Loaded { workflow, mut state, info, checkpoint_seq } =
            self.load_locked(tx, session, Some(&mut *overlay)).await?;
        // The session clock: the call's own (a replay of a recorded trace),
        // else the engine's. Rules read it as `now`; it is journaled with the
        // call, so replaying the journal decides at the same time.
        // (`timed` gives every queued call one when it is submitted.)
        let now = call.now_ms.unwrap_or_else(|| self.clock.now_ms());
        // A bad call id, or one already used for another call, is refused
        // without touching the state; the same call sent again gets its
        // original decision back.
        let args_max = workflow.limits().args_bytes_max;
        let refused = if let Err(error) = check_id("call", call.id.as_str()) {
            Some(refusal("tollgate.call_id", error.to_string()))
        } else if call.tool.len() > ID_MAX {
            Some(refusal("tollgate.unknown_tool", format!("a tool name of {} bytes is not a tool", call.tool.len())))
        } else if json_bytes(&call.args) > args_max {
            // Refused here rather than by the core, so the oversized
            // arguments are never stored.
            let message = format!("the arguments are over the limit of {args_max} bytes");
            Some(refusal("tollgate.limits.args_bytes_max", message))
        } else if let Some(earlier) = self.find_decision(tx, session, call.id.as_str()).await? {
            let (seq, recorded) = earlier;
            if recorded.call.tool == call.tool && recorded.call.args == call.args {
                // Re-derived as it was made: at the clock recorded with it.
                let decision = original_decision(tx, &workflow, session, seq, &recorded).await?;
                overlay.insert(session.to_owned(), cached(&info, info.last_seq, checkpoint_seq, state));
                return Ok(CallDecision { decision, replayed: true });
            }
            Some(refusal(
                "tollgate.call_id_reused",
                format!("call id {} was already used for another call; send this one with a new id", call.id),
            ))
        } else {
            // Likewise the agent's summary: refused, never stored. (Not a
            // rule of the core: a journal holding a longer one, written
            // before the limit, must still replay.)
            call.summary
                .as_deref()
                .and_then(|summary| over_text_limit(&workflow, "the conversation summary", summary))
                .map(|message| refusal("tollgate.limits.text_bytes_max", message))
        };
        if let Some(decision) = refused {
            let record = Record::Refused(Refused { call: refused_call(call), decision: decision_json(&decision) });
            let seq = append(tx, session, &record, now, None).await?;
            overlay.insert(session.to_owned(), cached(&info, seq, checkpoint_seq, state));
            return Ok(CallDecision { decision, replayed: false });
        }
        let case = self.case_of(tx, overlay, &workflow, &info, &state).await?;
        let decision = with_session_key(decide_in_case(&workflow, &state, &case, call), session);
        apply(&workflow, &mut state, Event::Decided { call, decision: &decision });
        self.handoffs_of_decision(tx, &workflow, &info, &state, call, &decision).await?;
        // The call with its clock and the agent's summary (an escalation's
        // handoff quotes it, so a replay needs it too), and the case totals
        // and running investigations it was decided with, so a replay
        // decides it the same way.
        let case = (!case.is_empty()).then(|| case.to_json());
        let record = render_decision(call, now, case.as_ref(), &decision);
        let checkpoint = checkpoint_due(&info, checkpoint_seq).then(|| state.to_checkpoint_text(&workflow));
        let seq = append_rendered(tx, session, record, now, checkpoint.as_deref()).await?;
        let checkpoint_seq = if checkpoint.is_some() { seq } else { checkpoint_seq };
        overlay.insert(session.to_owned(), cached(&info, seq, checkpoint_seq, state));
        Ok(CallDecision { decision, replayed: false })
    }

    /// The decision recorded for `call_id` in this session, with its place.
    pub(crate) async fn find_decision(
        &self,
        tx: &mut SessionTx,
        session: &str,
        call_id: &str,
    ) -> Result<Option<(i64, Decided)>, Error> {
        let Some(stored) = tx.find_call(session, call_id, crate::journal::Kind::Decision.as_str()).await? else {
            return Ok(None);
        };
        match crate::journal::Entry::decode(session, &stored)?.record {
            Record::Decision(decided) => Ok(Some((stored.seq, decided))),
            other => {
                Err(Error::diverged(session, stored.seq, format!("a {} record is indexed as a decision", other.kind())))
            }
        }
    }

    pub(crate) async fn record_in(
        &self,
        tx: &mut SessionTx,
        overlay: &mut HashMap<String, Cached>,
        session: &str,
        call_id: &str,
        result: &Json,
        outcome: ToolOutcome,
    ) -> Result<Recorded, Error> {
        tx.lock(session).await?;
        let Loaded { workflow, mut state, info, checkpoint_seq } =
            self.load_locked(tx, session, Some(&mut *overlay)).await?;
        let call = CallId::new(call_id);
        let note = if tx.find_call(session, call_id, crate::journal::Kind::Result.as_str()).await?.is_some() {
            Some(format!("the result of call {call_id} was recorded before; it counts once"))
        } else if !state.pending_calls().any(|pending| *pending == call) {
            Some(format!("call {call_id} is not an allowed call awaiting its result"))
        } else {
            None
        };
        if let Some(note) = note {
            overlay.insert(session.to_owned(), cached(&info, info.last_seq, checkpoint_seq, state));
            return Ok(Recorded { recorded: false, effects: Vec::new(), note: Some(note) });
        }
        let now = self.clock.now_ms();
        // A result over the workflow's limit is withheld by the core and
        // recorded by its size only, so it is never stored.
        let result_bytes = json_bytes(result);
        let oversized = result_bytes > workflow.limits().result_bytes_max;
        let event = if oversized {
            if outcome == ToolOutcome::Succeeded {
                Event::ResultTooLarge { call: &call }
            } else {
                Event::ResultRecorded { call: &call, result: &Json::Null, outcome }
            }
        } else {
            Event::ResultRecorded { call: &call, result, outcome }
        };
        let effects = apply(&workflow, &mut state, event);
        let record = Record::Result(ResultRecorded {
            call: call_id.to_owned(),
            outcome: Outcome::from(outcome),
            result: (!oversized).then(|| result.clone()),
            result_bytes: oversized.then_some(result_bytes),
        });
        let checkpoint = checkpoint_due(&info, checkpoint_seq).then(|| state.to_checkpoint_text(&workflow));
        let seq = append(tx, session, &record, now, checkpoint.as_deref()).await?;
        let checkpoint_seq = if checkpoint.is_some() { seq } else { checkpoint_seq };
        overlay.insert(session.to_owned(), cached(&info, seq, checkpoint_seq, state));
        Ok(Recorded { recorded: true, effects, note: None })
    }
}

/// What was refused, bounded: a call id, tool name or arguments over their
/// limits are recorded by size, not stored.
fn refused_call(call: &ToolCall) -> RefusedCall {
    let omitted = |bytes: usize| json!({"omitted_bytes": bytes});
    let args_bytes = json_bytes(&call.args);
    RefusedCall {
        args: if args_bytes > ARGS_KEPT_MAX { omitted(args_bytes) } else { call.args.clone() },
        id: if call.id.as_str().len() > ID_MAX { omitted(call.id.as_str().len()) } else { json!(call.id.as_str()) },
        tool: if call.tool.len() > ID_MAX { omitted(call.tool.len()) } else { json!(call.tool) },
    }
}

/// The decision recorded for a call at journal entry `seq`, re-derived
/// from the state the session had then and checked against the record.
async fn original_decision(
    tx: &mut SessionTx,
    workflow: &Workflow,
    session: &str,
    seq: i64,
    recorded: &Decided,
) -> Result<Decision, Error> {
    let before: Vec<_> = tx.journal_after(session, 0).await?.into_iter().filter(|e| e.seq < seq).collect();
    let mut then = tollgate_core::SessionState::new(workflow);
    fold(workflow, session, &mut then, &before)?;
    let case = recorded.case(session, seq)?;
    let decision = with_session_key(decide_in_case(workflow, &then, &case, &recorded.call.to_call()), session);
    if decision_json(&decision) != recorded.decision {
        return Err(Error::diverged(
            session,
            seq,
            format!("the recorded decision of call {} does not replay", recorded.call.id),
        ));
    }
    Ok(decision)
}

/// Why `text`, free text from the agent (`what`), is refused, if it is
/// over the workflow's `text_bytes_max`.
pub(crate) fn over_text_limit(workflow: &Workflow, what: &str, text: &str) -> Option<String> {
    // As stored: inside a JSON string, escapes included.
    let max = workflow.limits().text_bytes_max;
    let bytes = tollgate_core::escaped_bytes(text);
    (bytes > max)
        .then(|| format!("{what} is {bytes} bytes as stored, over the limit of {max} bytes; send a shorter one"))
}

fn refusal(rule: &str, message: String) -> Decision {
    Decision::Block(tollgate_core::Blocked {
        stage: tollgate_core::Stage::Admission,
        reasons: vec![tollgate_core::Reason { rule_id: rule.to_owned(), message }],
        missing: Vec::new(),
    })
}
