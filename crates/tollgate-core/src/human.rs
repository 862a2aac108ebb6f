//! The human half of an escalation: each escalated call opens a handoff in
//! its session, and what people do with it (claim, approve, deny, resolve)
//! and its expiry are events of the session like any other. A decision
//! reads them: an approval lets the identical call through once, a denial
//! blocks it with the reviewer's reason, a handoff awaiting a person blocks
//! the same call from opening another.
//!
//! A handoff is known in its session by the call that escalated; the
//! engine gives it a global id. An approval is bound to that session, the
//! tool, the exact arguments (a SHA-256 of their JSON), the session's
//! workflow and an expiry on the session clock.

use crate::call::CallId;
use sha2::{Digest, Sha256};

/// Where a handoff stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandoffStatus {
    /// Waiting for a person.
    Open,
    /// A person took it; only they may decide it.
    Claimed {
        /// Who.
        reviewer: String,
    },
    /// The identical call may run once, until `expires_ms`.
    Approved {
        /// Who approved.
        reviewer: String,
        /// Session clock (milliseconds since the Unix epoch) after which the
        /// approval no longer covers the call.
        expires_ms: i64,
        /// Whether the approved call has run (an approval is used once).
        consumed: bool,
    },
    /// The call must not run; the agent is told why.
    Denied {
        /// Who denied.
        reviewer: String,
        /// Why, in the reviewer's words.
        reason: String,
    },
    /// A person dealt with the case another way.
    Resolved {
        /// Who.
        reviewer: String,
        /// What they did.
        note: String,
    },
    /// Nobody acted on it in time.
    Expired,
}

impl HandoffStatus {
    /// `open`, `claimed`, `approved`, `denied`, `resolved` or `expired`.
    pub fn as_str(&self) -> &'static str {
        match self {
            HandoffStatus::Open => "open",
            HandoffStatus::Claimed { .. } => "claimed",
            HandoffStatus::Approved { .. } => "approved",
            HandoffStatus::Denied { .. } => "denied",
            HandoffStatus::Resolved { .. } => "resolved",
            HandoffStatus::Expired => "expired",
        }
    }

    /// Whether a person may still act on it.
    pub fn is_waiting(&self) -> bool {
        matches!(self, HandoffStatus::Open | HandoffStatus::Claimed { .. })
    }
}

/// A handoff as its session holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandoffState {
    /// The call that escalated (or the handoff tool's call).
    pub call: CallId,
    /// Its tool.
    pub tool: String,
    /// SHA-256 of its arguments' JSON, hex.
    pub args_hash: String,
    /// Session clock when it was opened (`None`: the call had no clock).
    pub opened_ms: Option<i64>,
    /// Where it stands.
    pub status: HandoffStatus,
}

/// What a person (or the clock) does to a handoff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HumanAction {
    /// Take it: nobody else may decide it now.
    Claim {
        /// Who.
        reviewer: String,
    },
    /// Give a claim back: it waits for anyone again.
    Release {
        /// Who (the one holding the claim).
        reviewer: String,
    },
    /// Let the identical call run once, until `expires_ms`.
    Approve {
        /// Who (the one holding the claim).
        reviewer: String,
        /// Session clock after which the approval no longer covers the call.
        expires_ms: i64,
    },
    /// The call must not run.
    Deny {
        /// Who (the one holding the claim).
        reviewer: String,
        /// Why.
        reason: String,
    },
    /// Dealt with another way.
    Resolve {
        /// Who (the one holding the claim).
        reviewer: String,
        /// What was done.
        note: String,
    },
    /// Nobody acted in time.
    Expire,
}

impl HumanAction {
    /// `claim`, `release`, `approve`, `deny`, `resolve` or `expire`.
    pub fn as_str(&self) -> &'static str {
        match self {
            HumanAction::Claim { .. } => "claim",
            HumanAction::Release { .. } => "release",
            HumanAction::Approve { .. } => "approve",
            HumanAction::Deny { .. } => "deny",
            HumanAction::Resolve { .. } => "resolve",
            HumanAction::Expire => "expire",
        }
    }

    /// The person acting (`None` for the clock).
    pub fn reviewer(&self) -> Option<&str> {
        match self {
            HumanAction::Claim { reviewer }
            | HumanAction::Release { reviewer }
            | HumanAction::Approve { reviewer, .. }
            | HumanAction::Deny { reviewer, .. }
            | HumanAction::Resolve { reviewer, .. } => Some(reviewer),
            HumanAction::Expire => None,
        }
    }
}

/// Why an action cannot be taken on a handoff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The session has no handoff for that call.
    NoHandoff,
    /// Someone else holds the claim.
    ClaimedByAnother(String),
    /// Deciding needs the claim first.
    NotClaimed,
    /// It was decided, resolved or expired already.
    Ended(&'static str),
    /// An approval must end after it is given.
    ExpiryInThePast,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NoHandoff => f.write_str("the session has no handoff for that call"),
            Refusal::ClaimedByAnother(reviewer) => write!(f, "the handoff is claimed by {reviewer}"),
            Refusal::NotClaimed => f.write_str("claim the handoff before deciding it"),
            Refusal::Ended(status) => write!(f, "the handoff is {status} already"),
            Refusal::ExpiryInThePast => f.write_str("an approval must expire after it is given"),
        }
    }
}

/// The status `action` takes `handoff` to at session clock `now_ms`, or why
/// it cannot: claims are exclusive, decisions need the claim, nothing moves
/// an ended handoff, and expiry takes only a handoff still waiting.
pub fn transition(handoff: &HandoffState, action: &HumanAction, now_ms: i64) -> Result<HandoffStatus, Refusal> {
    use HandoffStatus as S;
    use HumanAction as A;
    let holder = match &handoff.status {
        S::Open => None,
        S::Claimed { reviewer } => Some(reviewer.as_str()),
        ended => return Err(Refusal::Ended(ended.as_str())),
    };
    let claimed_by_actor = |reviewer: &str| match holder {
        Some(holder) if holder == reviewer => Ok(()),
        Some(holder) => Err(Refusal::ClaimedByAnother(holder.to_owned())),
        None => Err(Refusal::NotClaimed),
    };
    match action {
        A::Claim { reviewer } => match holder {
            Some(holder) if holder != reviewer => Err(Refusal::ClaimedByAnother(holder.to_owned())),
            _ => Ok(S::Claimed { reviewer: reviewer.clone() }),
        },
        A::Release { reviewer } => claimed_by_actor(reviewer).map(|()| S::Open),
        A::Approve { reviewer, expires_ms } => {
            claimed_by_actor(reviewer)?;
            if *expires_ms <= now_ms {
                return Err(Refusal::ExpiryInThePast);
            }
            Ok(S::Approved { reviewer: reviewer.clone(), expires_ms: *expires_ms, consumed: false })
        }
        A::Deny { reviewer, reason } => {
            claimed_by_actor(reviewer).map(|()| S::Denied { reviewer: reviewer.clone(), reason: reason.clone() })
        }
        A::Resolve { reviewer, note } => {
            claimed_by_actor(reviewer).map(|()| S::Resolved { reviewer: reviewer.clone(), note: note.clone() })
        }
        A::Expire => Ok(S::Expired),
    }
}

/// SHA-256 of the arguments' JSON text (keys sorted), hex: what an approval
/// is bound to. `800` and `800.0` are different arguments.
pub fn args_hash(args: &serde_json::Value) -> String {
    let text = serde_json::to_string(args).unwrap_or_default();
    hex_digest(&Sha256::digest(text.as_bytes()))
}

fn hex_digest(bytes: &[u8]) -> String {
    let digit = |nibble: u8| char::from_digit(u32::from(nibble), 16).unwrap_or('0');
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(digit(byte >> 4));
        out.push(digit(byte & 0x0f));
    }
    out
}

/// What the session's handoffs say about a call that needs a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Coverage<'s> {
    /// No handoff of this call (tool and arguments) decides it: escalate.
    /// `note`: why an approval of this tool does not cover it, if one
    /// exists (other arguments, expired, used).
    Uncovered { note: Option<String> },
    /// An approval covers it: allow it once.
    Approved { handoff: &'s CallId },
    /// A handoff of this very call waits for a person.
    Waiting { handoff: &'s CallId, status: &'s HandoffStatus },
    /// A person refused it.
    Denied { handoff: &'s CallId, reviewer: &'s str, reason: &'s str },
    /// A person dealt with it another way.
    Resolved { handoff: &'s CallId, reviewer: &'s str, note: &'s str },
}

/// How the handoffs of a session cover a call of `tool` with arguments
/// hashed `hash`, at session clock `now_ms`: the newest handoff of the same
/// call decides. A handoff waiting past `expires_after_ms` counts as
/// expired; an approval without a clock to check it against covers nothing.
pub(crate) fn coverage<'s>(
    handoffs: &'s [HandoffState],
    tool: &str,
    hash: &str,
    now_ms: Option<i64>,
    expires_after_ms: i64,
) -> Coverage<'s> {
    let same = handoffs.iter().rev().find(|h| h.tool == tool && h.args_hash == hash);
    let note = |why: String| Coverage::Uncovered { note: Some(why) };
    match same {
        Some(h) => match &h.status {
            HandoffStatus::Open | HandoffStatus::Claimed { .. } => {
                let overdue = matches!((h.opened_ms, now_ms), (Some(opened), Some(now)) if now > opened.saturating_add(expires_after_ms));
                if overdue {
                    note(format!("handoff of call {} waited past its expiry; a new one is opened", h.call))
                } else {
                    Coverage::Waiting { handoff: &h.call, status: &h.status }
                }
            }
            HandoffStatus::Approved { expires_ms, consumed: false, .. } => match now_ms {
                Some(now) if now <= *expires_ms => Coverage::Approved { handoff: &h.call },
                Some(_) => note(format!(
                    "the approval of the handoff of call {} expired (at {} ms); a new one is needed",
                    h.call, expires_ms
                )),
                None => note(format!(
                    "the approval of the handoff of call {} cannot be checked: the call has no clock",
                    h.call
                )),
            },
            HandoffStatus::Approved { consumed: true, .. } => {
                note(format!("the approval of the handoff of call {} was used once already", h.call))
            }
            HandoffStatus::Denied { reviewer, reason } => Coverage::Denied { handoff: &h.call, reviewer, reason },
            HandoffStatus::Resolved { reviewer, note } => Coverage::Resolved { handoff: &h.call, reviewer, note },
            HandoffStatus::Expired => note(format!("the handoff of call {} expired unanswered", h.call)),
        },
        None => {
            let other = handoffs
                .iter()
                .rev()
                .find(|h| h.tool == tool && matches!(h.status, HandoffStatus::Approved { consumed: false, .. }));
            Coverage::Uncovered {
                note: other.map(|h| {
                    format!("the approval of the handoff of call {} covers {} with other arguments", h.call, h.tool)
                }),
            }
        }
    }
}
