//! Handoffs as durable work items. An escalation opens one (the core folds
//! it into the session's state); the queue row the store keeps for people
//! to find it is written in the same transaction as the decision. People
//! act on it through the group commit like any call: each action is checked
//! against the handoff's state, journaled in its session with the
//! reviewer's identity, audited, and moves the queue row, in one commit.
//! An approval is used up by the decision that relies on it, in the commit
//! of that decision.

use crate::error::{Conflict, Missing};
use crate::journal::{HumanActed, Record};
use crate::sessions::{Cached, Loaded, append, cached, checkpoint_due};
use crate::{Engine, Error, check_id};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::Duration;
use tollgate_core::human::{self, HandoffStatus, HumanAction, Refusal};
use tollgate_core::{CallId, Decision, Event, SessionState, ToolCall, Workflow, apply};
use tollgate_store::{HandoffQuery, HandoffRow, SessionInfo, SessionTx};

/// A handoff as people see it in the queue.
#[derive(Clone, Debug, PartialEq)]
pub struct Handoff {
    /// Its id (global: it names the session and the call).
    pub id: String,
    /// The tenant of its session.
    pub tenant: String,
    /// The session.
    pub session: String,
    /// The call that opened it.
    pub call_id: String,
    /// That call's tool.
    pub tool: String,
    /// `open`, `claimed`, `approved`, `denied`, `resolved` or `expired`.
    pub status: String,
    /// How soon, as the workflow names it.
    pub urgency: String,
    /// The urgency's rank (higher: more urgent).
    pub urgency_rank: i64,
    /// The verified customer, if the session established one.
    pub customer_id: Option<String>,
    /// Who holds the claim, or decided it.
    pub claimed_by: Option<String>,
    /// The call that ran on its approval, once one did.
    pub consumed_by: Option<String>,
    /// When it was opened (ms since the Unix epoch).
    pub created_ms: i64,
    /// When it last moved.
    pub updated_ms: i64,
    /// When it expires if nobody decides it, or (approved) when its approval ends.
    pub expires_ms: i64,
    /// Everything a person sees: the handoff (customer, summary, root cause,
    /// recommended action, urgency, facts, timeline), the call, the reasons,
    /// the case, and what people did.
    pub body: Json,
}

impl Handoff {
    /// Whether a person has decided it, or it expired: the agent waiting on
    /// it can go on.
    pub fn is_settled(&self) -> bool {
        !matches!(self.status.as_str(), "open" | "claimed")
    }

    fn from_row(row: HandoffRow) -> Handoff {
        Handoff {
            body: serde_json::from_str(&row.body).unwrap_or(Json::Null),
            id: row.id,
            tenant: row.tenant,
            session: row.session_id,
            call_id: row.call_id,
            tool: row.tool,
            status: row.status,
            urgency: row.urgency,
            urgency_rank: row.urgency_rank,
            customer_id: row.customer_id,
            claimed_by: row.claimed_by,
            consumed_by: row.consumed_by,
            created_ms: row.created_ms,
            updated_ms: row.updated_ms,
            expires_ms: row.expires_ms,
        }
    }
}

/// Which handoffs to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandoffFilter {
    /// Only these statuses (empty: all).
    pub statuses: Vec<String>,
    /// Only those opened at or after this time (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    /// At most this many (1 to 1,000).
    pub limit: i64,
}

/// Handoffs waiting for a person, of one urgency ([`Engine::waiting_handoffs`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// The urgency, as the workflows name it.
    pub urgency: String,
    /// How many are open or claimed.
    pub count: i64,
    /// How long the oldest has waited, in ms.
    pub oldest_waited_ms: i64,
}

/// The longest an approval may last: a week.
pub const APPROVAL_MAX_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Longest reviewer name, denial reason or resolution note accepted, in bytes.
const HUMAN_TEXT_MAX: usize = 4 * 1024;

/// The global id of the handoff the escalation of `call` in `session` opened.
pub fn handoff_id(session: &str, call: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(session.as_bytes());
    hasher.update([0]);
    hasher.update(call.as_bytes());
    format!("h_{}", &hex::encode(hasher.finalize())[..24])
}

/// The queue row of a handoff a decision opens (an escalation, or a handoff
/// tool's call that runs), or `None` if the decision opens none.
pub(crate) fn opened(
    workflow: &Workflow,
    info: &SessionInfo,
    state: &SessionState,
    call: &ToolCall,
    decision: &Decision,
    now_ms: i64,
) -> Option<HandoffRow> {
    let (handoff, reasons) = match decision {
        Decision::Escalate(escalation) => (&escalation.handoff, decision.reasons()),
        Decision::Allow(allowed) => (allowed.handoff.as_deref()?, decision.reasons()),
        Decision::Block(_) => return None,
    };
    let levels: Vec<&str> = match workflow.handoff() {
        Some(spec) => spec.urgency_levels().iter().map(String::as_str).collect(),
        None => vec!["low", "normal", "high", "critical"],
    };
    let urgency_rank = levels.iter().position(|level| *level == handoff.urgency).map_or(0, |p| p as i64);
    let body = json!({
        "handoff": tollgate_protocol::Handoff::from(handoff),
        "reasons": reasons.iter().map(tollgate_protocol::Reason::from).collect::<Vec<_>>(),
        "call": {"id": call.id.as_str(), "tool": call.tool, "args": call.args},
        "workflow": {"name": workflow.name(), "version": workflow.version(), "hash": info.workflow_hash},
        "case": case_of(state, info),
        "actions": [],
    });
    Some(HandoffRow {
        id: handoff_id(&info.id, call.id.as_str()),
        tenant: info.tenant.clone(),
        session_id: info.id.clone(),
        call_id: call.id.to_string(),
        tool: call.tool.clone(),
        status: HandoffStatus::Open.as_str().to_owned(),
        urgency: handoff.urgency.clone(),
        urgency_rank,
        // From a tool result: its control characters (a NUL, say) are shown,
        // not stored as they are in a column people search and sort by.
        customer_id: handoff.customer_id.as_deref().map(printable),
        claimed_by: None,
        consumed_by: None,
        created_ms: now_ms,
        updated_ms: now_ms,
        expires_ms: call.now_ms.unwrap_or(now_ms).saturating_add(workflow.handoff_expires_after_ms()),
        body: body.to_string(),
    })
}

/// `text` with each control character replaced by U+FFFD.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect()
}

/// Where the session stands in its case: a parent's investigations, or an
/// investigation's concern and parent (`null` outside a case).
fn case_of(state: &SessionState, info: &SessionInfo) -> Json {
    if let (Some(parent), Some(concern)) = (&info.parent_id, state.concern()) {
        return json!({"parent": parent, "concern": concern});
    }
    if state.investigations().is_empty() {
        return Json::Null;
    }
    json!({
        "investigations": state.investigations().iter().map(|o| json!({
            "concern_id": o.concern_id, "session": o.session, "concern": o.concern,
        })).collect::<Vec<_>>(),
    })
}

/// Appends what was done to a row's body, so the queue shows who did what.
fn with_action(row: &mut HandoffRow, acted: &HumanActed) {
    let mut body: Json = serde_json::from_str(&row.body).unwrap_or_else(|_| json!({}));
    if let Some(actions) = body.get_mut("actions").and_then(Json::as_array_mut) {
        actions.push(serde_json::to_value(acted).unwrap_or(Json::Null));
    } else if let Some(object) = body.as_object_mut() {
        object.insert("actions".into(), json!([acted]));
    }
    row.body = body.to_string();
}

/// The engine error for an action a handoff's state does not allow.
fn refused(id: &str, refusal: Refusal) -> Error {
    match refusal {
        Refusal::NoHandoff => Error::NotFound { what: Missing::Handoff, id: id.to_owned() },
        Refusal::ExpiryInThePast => Error::bad_request(format!("handoff {id}: {refusal}")),
        other => Conflict::Handoff(format!("handoff {id}: {other}")).into(),
    }
}

/// Refuses a person's text that is empty, too long or holds control
/// characters (a NUL would not even reach PostgreSQL).
fn check_text(what: &str, text: &str) -> Result<(), Error> {
    if text.trim().is_empty() || text.len() > HUMAN_TEXT_MAX || text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::bad_request(format!(
            "{what} must be 1 to {HUMAN_TEXT_MAX} bytes of text without control characters"
        )));
    }
    Ok(())
}

impl Engine {
    /// One handoff.
    pub async fn handoff(&self, id: &str) -> Result<Option<Handoff>, Error> {
        check_id("handoff", id)?;
        Ok(self.store.handoff(id).await?.map(Handoff::from_row))
    }

    /// A tenant's handoffs, most urgent first, oldest first within an urgency.
    pub async fn handoffs(&self, tenant: &str, filter: &HandoffFilter) -> Result<Vec<Handoff>, Error> {
        check_id("tenant", tenant)?;
        const STATUSES: [&str; 6] = ["open", "claimed", "approved", "denied", "resolved", "expired"];
        if let Some(unknown) = filter.statuses.iter().find(|s| !STATUSES.contains(&s.as_str())) {
            return Err(Error::bad_request(format!("no handoff status {unknown:?} (known: {})", STATUSES.join(", "))));
        }
        let query = HandoffQuery {
            tenant: tenant.to_owned(),
            statuses: filter.statuses.clone(),
            since_ms: filter.since_ms,
            limit: filter.limit.clamp(1, 1_000),
        };
        Ok(self.store.handoffs(&query).await?.into_iter().map(Handoff::from_row).collect())
    }

    /// Acts on handoff `id` as the engine's own caller (any tenant).
    pub async fn act(&self, id: &str, action: HumanAction) -> Result<Handoff, Error> {
        self.act_as(None, id, action).await
    }

    pub(crate) async fn act_as(&self, tenant: Option<&str>, id: &str, action: HumanAction) -> Result<Handoff, Error> {
        check_id("handoff", id)?;
        if let Some(reviewer) = action.reviewer() {
            check_text("a reviewer", reviewer)?;
        }
        match &action {
            HumanAction::Deny { reason, .. } => check_text("a denial's reason", reason)?,
            HumanAction::Resolve { note, .. } => check_text("a resolution's note", note)?,
            HumanAction::Approve { expires_ms, .. }
                if *expires_ms > self.clock.now_ms().saturating_add(APPROVAL_MAX_MS) =>
            {
                return Err(Error::bad_request("an approval may last a week at most"));
            }
            _ => {}
        }
        let not_found = || Error::NotFound { what: Missing::Handoff, id: id.to_owned() };
        let row = self.store.handoff(id).await?.ok_or_else(not_found)?;
        if tenant.is_some_and(|tenant| tenant != row.tenant) {
            return Err(not_found());
        }
        self.submit_human(tenant, &row.session_id, &row.call_id, id, action).await
    }

    /// Expires handoffs still waiting for a person past their time, oldest
    /// first, at most `limit`; how many it expired. Each expiry is journaled
    /// and audited like a person's action (with no reviewer).
    pub async fn expire_overdue(&self, limit: i64) -> Result<usize, Error> {
        Ok(self.expire_overdue_handoffs(limit).await?.len())
    }

    /// Handoffs of every tenant waiting for a person (open or claimed), by
    /// urgency: how many, and how long the oldest has waited (ms, on the
    /// engine's clock). For operators' metrics; it names no tenant.
    pub async fn waiting_handoffs(&self) -> Result<Vec<Waiting>, Error> {
        let now = self.clock.now_ms();
        Ok(self
            .store
            .waiting_handoffs()
            .await?
            .into_iter()
            .map(|w| Waiting {
                urgency: w.urgency,
                count: w.count,
                oldest_waited_ms: now.saturating_sub(w.oldest_created_ms).max(0),
            })
            .collect())
    }

    /// [`Engine::expire_overdue`], returning the handoffs it expired (as
    /// they are after expiring), for whoever announces them.
    pub async fn expire_overdue_handoffs(&self, limit: i64) -> Result<Vec<Handoff>, Error> {
        let now = self.clock.now_ms();
        let mut expired = Vec::new();
        for row in self.store.overdue_handoffs(now, limit).await? {
            match self.submit_human(None, &row.session_id, &row.call_id, &row.id, HumanAction::Expire).await {
                Ok(handoff) => expired.push(handoff),
                // Decided or expired meanwhile (another replica): nothing to do.
                Err(Error::Conflict(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(expired)
    }

    /// Waits until handoff `id` is settled (decided, resolved or expired)
    /// or `timeout` passes, and returns it as it is then. Changes committed
    /// by this engine wake it at once; another process's are seen within
    /// `poll`.
    pub async fn wait_for_handoff(&self, id: &str, timeout: Duration, poll: Duration) -> Result<Handoff, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Listen before reading: a change committed in between still wakes us.
            let changed = self.handoffs_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let handoff =
                self.handoff(id).await?.ok_or_else(|| Error::NotFound { what: Missing::Handoff, id: id.to_owned() })?;
            let now = tokio::time::Instant::now();
            if handoff.is_settled() || now >= deadline {
                return Ok(handoff);
            }
            let wake = deadline.min(now + poll);
            tokio::select! {
                () = &mut changed => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// The job of an action on a handoff, inside a group's transaction.
    pub(crate) async fn human_in(
        &self,
        tx: &mut SessionTx,
        overlay: &mut HashMap<String, Cached>,
        session: &str,
        call: &str,
        id: &str,
        action: &HumanAction,
    ) -> Result<Handoff, Error> {
        tx.lock(session).await?;
        let Loaded { workflow, mut state, info, checkpoint_seq } =
            self.load_locked(tx, session, Some(&mut *overlay)).await?;
        let now = self.clock.now_ms();
        let call_id = CallId::new(call);
        let checked = match state.handoff(&call_id) {
            None => Err(refused(id, Refusal::NoHandoff)),
            Some(handoff) => {
                let overdue = handoff
                    .opened_ms
                    .is_some_and(|opened| now > opened.saturating_add(workflow.handoff_expires_after_ms()));
                if matches!(action, HumanAction::Expire) && !overdue {
                    Err(Conflict::Handoff(format!("handoff {id} is not overdue")).into())
                } else if overdue && !matches!(action, HumanAction::Expire) && handoff.status.is_waiting() {
                    Err(Conflict::Handoff(format!("handoff {id} waited past its expiry; it can no longer be taken"))
                        .into())
                } else {
                    human::transition(handoff, action, now).map(|_| ()).map_err(|refusal| refused(id, refusal))
                }
            }
        };
        if let Err(error) = checked {
            overlay.insert(session.to_owned(), cached(&info, info.last_seq, checkpoint_seq, state));
            return Err(error);
        }
        apply(&workflow, &mut state, Event::Human { call: &call_id, action, now_ms: now });
        let acted = HumanActed::new(id, call, action, now);
        let record = Record::Human(acted.clone());
        let checkpoint = checkpoint_due(&info, checkpoint_seq).then(|| state.to_checkpoint_text(&workflow));
        let seq = append(tx, session, &record, now, checkpoint.as_deref()).await?;
        let checkpoint_seq = if checkpoint.is_some() { seq } else { checkpoint_seq };
        let mut row =
            tx.handoff(id).await?.ok_or_else(|| Error::NotFound { what: Missing::Handoff, id: id.to_owned() })?;
        if let Some(handoff) = state.handoff(&call_id) {
            row.status = handoff.status.as_str().to_owned();
            match &handoff.status {
                HandoffStatus::Open => row.claimed_by = None,
                HandoffStatus::Claimed { reviewer }
                | HandoffStatus::Denied { reviewer, .. }
                | HandoffStatus::Resolved { reviewer, .. } => row.claimed_by = Some(reviewer.clone()),
                HandoffStatus::Approved { reviewer, expires_ms, .. } => {
                    row.claimed_by = Some(reviewer.clone());
                    row.expires_ms = *expires_ms;
                }
                HandoffStatus::Expired => {}
            }
        }
        row.updated_ms = now;
        with_action(&mut row, &acted);
        tx.put_handoff(row.clone())?;
        self.handoffs_moved.store(true, std::sync::atomic::Ordering::Relaxed);
        overlay.insert(session.to_owned(), cached(&info, seq, checkpoint_seq, state));
        Ok(Handoff::from_row(row))
    }

    /// Puts the queue rows a decision moves into its transaction: the
    /// handoff it opens, or the one whose approval it uses up.
    pub(crate) async fn handoffs_of_decision(
        &self,
        tx: &mut SessionTx,
        workflow: &Workflow,
        info: &SessionInfo,
        state: &SessionState,
        call: &ToolCall,
        decision: &Decision,
    ) -> Result<(), Error> {
        let now_ms = call.now_ms.unwrap_or_else(|| self.clock.now_ms());
        if let Some(row) = opened(workflow, info, state, call, decision, now_ms) {
            tx.put_handoff(row)?;
            self.handoffs_moved.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let Decision::Allow(allowed) = decision
            && let Some(approved) = &allowed.approved_by
            && let Some(mut row) = tx.handoff(&handoff_id(&info.id, approved.as_str())).await?
        {
            row.consumed_by = Some(call.id.to_string());
            row.updated_ms = now_ms;
            tx.put_handoff(row)?;
            self.handoffs_moved.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}
