//! The journal's records: one typed enum, the only place their kinds are
//! spelt, decoded strictly.
//!
//! The store keeps a record as its kind (a column) and its body (JSON text).
//! A kind names one body shape forever: the kind is the record's version, so
//! a changed shape gets a new kind (`decision/2`, say) and the old one stays
//! decodable. A body that does not decode as its kind, an unknown kind, a
//! missing field or an unknown one is [`Error::Diverged`], never a default:
//! a damaged record must not widen what a session may do (an opening whose
//! tool list is lost must not replay as "every tool allowed").
//!
//! Field order in the body structs is alphabetical: the text they write is
//! the text the earlier, untyped writer wrote (`serde_json` sorts an
//! object's keys), so stored records and new ones read alike.

use crate::error::Error;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value as Json;
use tollgate_core::human::HumanAction;
use tollgate_core::{CallId, ToolCall, ToolOutcome, Verdict};

/// The kind of a journal record, as the store's `kind` column holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A call decided (allowed, blocked or escalated).
    Decision,
    /// An allowed call's result recorded.
    Result,
    /// A call refused before it reached the workflow (a bad or reused id,
    /// arguments over the limit): it does not change the session's state.
    Refused,
    /// The first record of an investigation: its concern, tools and the
    /// identity facts it inherits.
    Opened,
    /// A parent opened investigations.
    Investigations,
    /// An investigation concluded with an outcome.
    Concluded,
    /// A parent's investigations joined.
    Joined,
    /// A person (or the clock) acted on a handoff of the session.
    Human,
}

impl Kind {
    /// Every kind, in the order they are documented.
    pub const ALL: [Kind; 8] = [
        Kind::Decision,
        Kind::Result,
        Kind::Refused,
        Kind::Opened,
        Kind::Investigations,
        Kind::Concluded,
        Kind::Joined,
        Kind::Human,
    ];

    /// The kind's name, as stored and as the audit log names the event.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Decision => "decision",
            Kind::Result => "result",
            Kind::Refused => "refused",
            Kind::Opened => "opened",
            Kind::Investigations => "investigations",
            Kind::Concluded => "concluded",
            Kind::Joined => "joined",
            Kind::Human => "human",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record of a session's journal.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A call and its decision.
    Decision(Decided),
    /// An allowed call's result.
    Result(ResultRecorded),
    /// A call refused before the workflow saw it.
    Refused(Refused),
    /// An investigation's first record.
    Opened(InvestigationOpened),
    /// Investigations a parent opened.
    Investigations(InvestigationsOpened),
    /// An investigation's conclusion.
    Concluded(Concluded),
    /// A parent's join, as the join's JSON.
    Joined(Json),
    /// A person's (or the clock's) action on a handoff.
    Human(HumanActed),
}

/// `human`: what a person (or the clock) did to a handoff of the session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HumanActed {
    /// `claim`, `release`, `approve`, `deny`, `resolve` or `expire`.
    pub action: String,
    /// The call whose handoff it is.
    pub call: String,
    /// For an approval: until when (session clock, ms) it covers the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    /// The handoff's id.
    pub handoff: String,
    /// For a resolution: what was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When, on the session clock (ms since the Unix epoch).
    pub now_ms: i64,
    /// For a denial: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who (absent for the clock's expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
}

impl HumanActed {
    /// The record of `action` on the handoff `handoff` of call `call`.
    pub fn new(handoff: &str, call: &str, action: &HumanAction, now_ms: i64) -> HumanActed {
        let (mut expires_ms, mut note, mut reason) = (None, None, None);
        match action {
            HumanAction::Approve { expires_ms: until, .. } => expires_ms = Some(*until),
            HumanAction::Deny { reason: why, .. } => reason = Some(why.clone()),
            HumanAction::Resolve { note: what, .. } => note = Some(what.clone()),
            HumanAction::Claim { .. } | HumanAction::Release { .. } | HumanAction::Expire => {}
        }
        HumanActed {
            action: action.as_str().to_owned(),
            call: call.to_owned(),
            expires_ms,
            handoff: handoff.to_owned(),
            note,
            now_ms,
            reason,
            reviewer: action.reviewer().map(str::to_owned),
        }
    }

    /// The action, as the core folds it; `None` if the record does not
    /// name one completely (a damaged record).
    pub fn action(&self) -> Option<HumanAction> {
        let reviewer = || self.reviewer.clone();
        Some(match self.action.as_str() {
            "claim" => HumanAction::Claim { reviewer: reviewer()? },
            "release" => HumanAction::Release { reviewer: reviewer()? },
            "approve" => HumanAction::Approve { reviewer: reviewer()?, expires_ms: self.expires_ms? },
            "deny" => HumanAction::Deny { reviewer: reviewer()?, reason: self.reason.clone()? },
            "resolve" => HumanAction::Resolve { reviewer: reviewer()?, note: self.note.clone()? },
            "expire" => HumanAction::Expire,
            _ => return None,
        })
    }
}

/// A call as journaled with its decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRecord {
    /// The arguments.
    pub args: Json,
    /// The call id.
    pub id: String,
    /// The session clock the call was decided at (absent in journals
    /// written before calls carried a clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now_ms: Option<i64>,
    /// The agent's summary of the conversation, if it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What the client said about the call (`context` in rules), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Json>,
    /// The tool.
    pub tool: String,
}

impl CallRecord {
    /// The call to decide again.
    pub fn to_call(&self) -> ToolCall {
        let mut call = ToolCall::new(self.id.as_str(), self.tool.as_str(), self.args.clone());
        call.now_ms = self.now_ms;
        call.summary = self.summary.clone();
        call.context = self.context.clone();
        call
    }
}

/// `decision`: a call and the decision made on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decided {
    /// The call.
    pub call: CallRecord,
    /// The case's totals and running investigations the call was decided
    /// with (absent outside a case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<Json>,
    /// The decision (`tollgate.decision/v1`).
    pub decision: Json,
}

impl Decided {
    /// The verdict the record says was given.
    pub fn verdict(&self) -> Option<Verdict> {
        match self.decision.get("verdict").and_then(Json::as_str)? {
            "allow" => Some(Verdict::Allow),
            "block" => Some(Verdict::Block),
            "escalate" => Some(Verdict::Escalate),
            _ => None,
        }
    }

    /// The case's totals and running investigations the call was decided
    /// with (none outside a case); `session` and `seq` place an error.
    pub(crate) fn case(&self, session: &str, seq: i64) -> Result<tollgate_core::Case, Error> {
        match &self.case {
            None => Ok(tollgate_core::Case::default()),
            Some(case) => {
                tollgate_core::Case::from_json(case).map_err(|message| Error::diverged(session, seq, message))
            }
        }
    }

    /// The idempotency key of an allowed side effect.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.decision.get("idempotency_key").and_then(Json::as_str)
    }
}

/// How a tool call ended, as journaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The tool did its work.
    Succeeded,
    /// The tool reported an error.
    Failed,
}

impl From<ToolOutcome> for Outcome {
    fn from(outcome: ToolOutcome) -> Outcome {
        match outcome {
            ToolOutcome::Succeeded => Outcome::Succeeded,
            ToolOutcome::Failed => Outcome::Failed,
        }
    }
}

impl From<Outcome> for ToolOutcome {
    fn from(outcome: Outcome) -> ToolOutcome {
        match outcome {
            Outcome::Succeeded => ToolOutcome::Succeeded,
            Outcome::Failed => ToolOutcome::Failed,
        }
    }
}

/// `result`: an allowed call's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultRecorded {
    /// The call it answers.
    pub call: String,
    /// How the tool ended.
    pub outcome: Outcome,
    /// The result (null when it was over the workflow's limit).
    #[serde(deserialize_with = "present")]
    pub result: Option<Json>,
    /// The result's size as JSON, when it was over the limit and so not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_bytes: Option<usize>,
}

impl ResultRecorded {
    /// The call's id.
    pub fn call_id(&self) -> CallId {
        CallId::new(self.call.as_str())
    }
}

/// A refused call as journaled: each part as it came, or
/// `{"omitted_bytes": n}` where it was over its limit and not stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefusedCall {
    /// The arguments.
    pub args: Json,
    /// The call id.
    pub id: Json,
    /// The tool.
    pub tool: Json,
}

/// `refused`: a call refused before the workflow saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refused {
    /// The call.
    pub call: RefusedCall,
    /// The block (`tollgate.decision/v1`).
    pub decision: Json,
}

/// `opened`: an investigation's first record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvestigationOpened {
    /// The concern, in the agent's words.
    pub concern: String,
    /// The concern's id.
    pub concern_id: String,
    /// The identity facts inherited from the parent: (fact name, fields).
    pub inherited: Vec<(String, Json)>,
    /// The parent session.
    pub parent: String,
    /// The tools the investigation may call; `null` (present) means every
    /// tool. A record without the field does not decode.
    #[serde(deserialize_with = "present")]
    pub tools: Option<Vec<String>>,
}

/// One investigation in an [`InvestigationsOpened`] record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenedConcern {
    /// The concern, in the agent's words.
    pub concern: String,
    /// The concern's id.
    pub concern_id: String,
    /// The child session.
    pub session: String,
    /// The tools it may call (`null`: every tool).
    #[serde(deserialize_with = "present")]
    pub tools: Option<Vec<String>>,
}

/// `investigations`: investigations a parent opened, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvestigationsOpened {
    /// The investigations.
    pub opened: Vec<OpenedConcern>,
}

/// `concluded`: an investigation's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concluded {
    /// The outcome, in the agent's words.
    pub outcome: String,
}

/// An optional field that must be present (`null` is `None`; a missing
/// field fails to decode, unlike serde's default for `Option`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(deserializer)
}

impl Record {
    /// The record's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Record::Decision(_) => Kind::Decision,
            Record::Result(_) => Kind::Result,
            Record::Refused(_) => Kind::Refused,
            Record::Opened(_) => Kind::Opened,
            Record::Investigations(_) => Kind::Investigations,
            Record::Concluded(_) => Kind::Concluded,
            Record::Joined(_) => Kind::Joined,
            Record::Human(_) => Kind::Human,
        }
    }

    /// What the store indexes the record by (its `call_id` column): the
    /// call of a decision or result; for a join, `join:<n>`, n the number
    /// of investigations joined (a join of the same ones is found again).
    pub fn index_key(&self) -> Option<String> {
        match self {
            Record::Decision(decided) => Some(decided.call.id.clone()),
            Record::Result(result) => Some(result.call.clone()),
            Record::Joined(join) => Some(join_key(joined_count(join))),
            _ => None,
        }
    }

    /// The event the audit log names this record by: the kind, and for a
    /// decision its verdict (`decision.allow`, `decision.block`,
    /// `decision.escalate`).
    pub fn audit_event(&self) -> String {
        match self {
            Record::Decision(decided) => match decided.decision.get("verdict").and_then(Json::as_str) {
                Some(verdict) => format!("{}.{verdict}", Kind::Decision),
                None => Kind::Decision.to_string(),
            },
            Record::Human(acted) => format!("{}.{}", Kind::Human, acted.action),
            other => other.kind().to_string(),
        }
    }

    /// The body as JSON text, as stored.
    pub fn body(&self) -> String {
        // Serialising these types cannot fail: every map key is a string.
        let text = match self {
            Record::Decision(body) => serde_json::to_string(body),
            Record::Result(body) => serde_json::to_string(body),
            Record::Refused(body) => serde_json::to_string(body),
            Record::Opened(body) => serde_json::to_string(body),
            Record::Investigations(body) => serde_json::to_string(body),
            Record::Concluded(body) => serde_json::to_string(body),
            Record::Joined(body) => serde_json::to_string(body),
            Record::Human(body) => serde_json::to_string(body),
        };
        text.unwrap_or_default()
    }

    /// Decodes a stored record strictly; `session` and `seq` place an error.
    pub fn decode(kind: &str, body: &str, session: &str, seq: i64) -> Result<Record, Error> {
        let Some(kind) = Kind::parse(kind) else {
            return Err(Error::diverged(session, seq, format!("the journal holds a record of unknown kind {kind:?}")));
        };
        let damaged = |error: serde_json::Error| {
            Error::diverged(session, seq, format!("the {kind} record does not decode: {error}"))
        };
        Ok(match kind {
            Kind::Decision => Record::Decision(serde_json::from_str(body).map_err(damaged)?),
            Kind::Result => Record::Result(serde_json::from_str(body).map_err(damaged)?),
            Kind::Refused => Record::Refused(serde_json::from_str(body).map_err(damaged)?),
            Kind::Opened => Record::Opened(serde_json::from_str(body).map_err(damaged)?),
            Kind::Investigations => Record::Investigations(serde_json::from_str(body).map_err(damaged)?),
            Kind::Concluded => Record::Concluded(serde_json::from_str(body).map_err(damaged)?),
            Kind::Human => {
                let acted: HumanActed = serde_json::from_str(body).map_err(damaged)?;
                if acted.action().is_none() {
                    return Err(Error::diverged(session, seq, "the human record does not name a whole action"));
                }
                Record::Human(acted)
            }
            Kind::Joined => {
                let join: Json = serde_json::from_str(body).map_err(damaged)?;
                if !join.get("findings").is_some_and(Json::is_array) || join.get("handoff").is_none() {
                    return Err(Error::diverged(session, seq, "the joined record has no findings or handoff"));
                }
                Record::Joined(join)
            }
        })
    }
}

/// A record as it is written: its kind, the event the audit log names it by,
/// what the store indexes it by, and its body's text.
pub(crate) struct Rendered {
    pub(crate) kind: Kind,
    pub(crate) audit_event: String,
    pub(crate) index_key: Option<String>,
    pub(crate) body: String,
}

impl Record {
    /// The record as it is written.
    pub(crate) fn render(&self) -> Rendered {
        Rendered { kind: self.kind(), audit_event: self.audit_event(), index_key: self.index_key(), body: self.body() }
    }
}

/// A call as a decision record holds it, borrowed: written straight from the
/// call (the hot path of every decision), the same text [`CallRecord`] reads.
#[derive(Serialize)]
struct CallRef<'a> {
    args: &'a Json,
    id: &'a str,
    now_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a Json>,
    tool: &'a str,
}

/// A decision record, borrowed (see [`CallRef`]); read back as [`Decided`].
#[derive(Serialize)]
struct DecidedRef<'a> {
    call: CallRef<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    case: Option<&'a Json>,
    decision: &'a tollgate_protocol::Decision,
}

/// The record of `call`'s decision, decided at `now_ms` in `case` (none
/// outside one), written without building its JSON tree first.
pub(crate) fn render_decision(
    call: &ToolCall,
    now_ms: i64,
    case: Option<&Json>,
    decision: &tollgate_core::Decision,
) -> Rendered {
    let wire = tollgate_protocol::Decision::from(decision);
    let body = DecidedRef {
        call: CallRef {
            args: &call.args,
            id: call.id.as_str(),
            now_ms,
            summary: call.summary.as_deref(),
            context: call.context.as_ref(),
            tool: &call.tool,
        },
        case,
        decision: &wire,
    };
    Rendered {
        kind: Kind::Decision,
        audit_event: format!("{}.{}", Kind::Decision, decision.verdict().as_str()),
        index_key: Some(call.id.to_string()),
        // Serialising these types cannot fail: every map key is a string.
        body: serde_json::to_string(&body).unwrap_or_default(),
    }
}

/// A journal record with its place in the session's journal.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Position in the session's journal, from 1.
    pub seq: i64,
    /// When it was written, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The record.
    pub record: Record,
}

impl Entry {
    /// Decodes a stored entry strictly.
    pub(crate) fn decode(session: &str, stored: &tollgate_store::JournalEntry) -> Result<Entry, Error> {
        let record = Record::decode(&stored.kind, &stored.body, session, stored.seq)?;
        if record.index_key().as_deref() != stored.call_id.as_deref() {
            return Err(Error::diverged(
                session,
                stored.seq,
                format!("the {} record's call id is not the one it is indexed by", record.kind()),
            ));
        }
        Ok(Entry { seq: stored.seq, at_ms: stored.at_ms, record })
    }
}

/// The index key of a join of `n` investigations.
pub(crate) fn join_key(n: usize) -> String {
    format!("join:{n}")
}

/// How many investigations a join record joined.
fn joined_count(join: &Json) -> usize {
    join.get("findings").and_then(Json::as_array).map_or(0, Vec::len)
}
