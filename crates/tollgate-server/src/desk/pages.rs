//! The pages people read: the queue (and its rows alone, for live pages),
//! a session's journal in words, the audit state.

use super::security::Person;
use super::views::{self, Chrome, relative, render, status_label, utc};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use tollgate_engine::{Handoff, HandoffFilter, Role};

pub(crate) use super::handoff::handoff;
pub(crate) use super::journal::session;

/// Most handoffs the queue shows at once.
const QUEUE_ROWS_MAX: i64 = 500;

/// The statuses a person can filter by: a name, its label, the stored statuses.
const STATUSES: [(&str, &str, &[&str]); 8] = [
    ("waiting", "Waiting or claimed", &["open", "claimed"]),
    ("open", "Waiting, unclaimed", &["open"]),
    ("claimed", "Claimed", &["claimed"]),
    ("approved", "Approved", &["approved"]),
    ("denied", "Denied", &["denied"]),
    ("resolved", "Resolved", &["resolved"]),
    ("expired", "Expired", &["expired"]),
    ("all", "All", &[]),
];

/// The urgencies a person can filter by (the reference workflow's levels).
const URGENCIES: [&str; 5] = ["all", "critical", "high", "normal", "low"];

/// The queue's filter, as the query string carries it.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct Filter {
    /// One of [`STATUSES`]' names (default `waiting`).
    pub status: Option<String>,
    /// An urgency, or `all` (the default).
    pub urgency: Option<String>,
    /// A handoff just acted on, to say how it stands now.
    pub done: Option<String>,
    /// For the event stream: the hash of what the page shows.
    pub since: Option<String>,
}

impl Filter {
    fn status(&self) -> &str {
        self.status.as_deref().filter(|s| !s.is_empty()).unwrap_or("waiting")
    }

    fn urgency(&self) -> &str {
        self.urgency.as_deref().filter(|s| !s.is_empty()).unwrap_or("all")
    }

    /// The filter as a query string (for the rows and events addresses).
    fn query(&self) -> String {
        format!("status={}&urgency={}", super::security::encode(self.status()), super::security::encode(self.urgency()))
    }
}

/// One row of the queue.
pub(crate) struct Row {
    pub id: String,
    pub customer: String,
    pub urgency: String,
    pub status: String,
    pub status_label: &'static str,
    pub claimed_by: Option<String>,
    pub what: String,
    pub age: String,
    pub opened_utc: String,
}

/// `GET /desk`.
#[derive(Template)]
#[template(path = "desk/queue.html")]
struct QueuePage {
    chrome: Chrome,
    statuses: Vec<(&'static str, &'static str, bool)>,
    urgencies: Vec<(&'static str, bool)>,
    rows: Vec<Row>,
    empty: String,
    notice: Option<String>,
    hash: String,
    query: String,
}

/// `GET /desk/queue/rows`.
#[derive(Template)]
#[template(path = "desk/rows.html")]
struct RowsFragment {
    rows: Vec<Row>,
    empty: String,
}

/// The handoffs `filter` selects for `person`, in queue order (most urgent
/// first, oldest first within an urgency), or `None` for a filter that
/// names no status.
pub(crate) async fn select(
    state: &AppState,
    person: &Person,
    filter: &Filter,
) -> Result<Option<Vec<Handoff>>, tollgate_engine::Error> {
    let Some((_, _, statuses)) = STATUSES.iter().find(|(name, _, _)| *name == filter.status()) else {
        return Ok(None);
    };
    let selected = HandoffFilter {
        statuses: statuses.iter().map(|s| (*s).to_owned()).collect(),
        since_ms: None,
        limit: QUEUE_ROWS_MAX,
    };
    let mut handoffs = person.caller.engine(state).handoffs(&selected).await?;
    let urgency = filter.urgency();
    if urgency != "all" {
        handoffs.retain(|handoff| handoff.urgency == urgency);
    }
    Ok(Some(handoffs))
}

/// A short hash of what a queue shows (not the ages, which move on their
/// own): a live page is told to fetch its rows again when it changes.
pub(crate) fn fingerprint(handoffs: &[Handoff]) -> String {
    let mut hasher = Sha256::new();
    for handoff in handoffs {
        let claimed = handoff.claimed_by.as_deref().unwrap_or("");
        hasher.update(format!("{}|{}|{claimed}|{}\n", handoff.id, handoff.status, handoff.updated_ms));
    }
    hex::encode(hasher.finalize()).get(..16).unwrap_or_default().to_owned()
}

/// A string field of a handoff's body.
pub(crate) fn text<'b>(body: &'b Json, pointer: &str) -> &'b str {
    body.pointer(pointer).and_then(Json::as_str).unwrap_or("")
}

fn rows_of(handoffs: &[Handoff]) -> Vec<Row> {
    let now = views::now_ms();
    handoffs
        .iter()
        .map(|handoff| Row {
            id: handoff.id.clone(),
            customer: handoff.customer_id.clone().unwrap_or_else(|| "no verified customer".to_owned()),
            urgency: handoff.urgency.clone(),
            status: handoff.status.clone(),
            status_label: status_label(&handoff.status),
            claimed_by: handoff.claimed_by.clone(),
            what: match text(&handoff.body, "/handoff/recommended_action") {
                "" => handoff.tool.clone(),
                action => action.to_owned(),
            },
            age: relative(handoff.created_ms, now),
            opened_utc: utc(handoff.created_ms),
        })
        .collect()
}

fn empty_message(filter: &Filter) -> String {
    let which = match filter.urgency() {
        "all" => "handoffs".to_owned(),
        urgency => format!("{urgency} handoffs"),
    };
    match filter.status() {
        "waiting" => format!("No {which} waiting. New ones appear here live."),
        "open" => format!("No unclaimed {which} waiting. New ones appear here live."),
        "all" => format!("No {which} yet. New ones appear here live."),
        status => format!("No {which} {status}. New ones appear here live."),
    }
}

fn bad_filter(chrome: Chrome) -> Response {
    views::problem(
        StatusCode::BAD_REQUEST,
        chrome,
        "No such filter",
        "Filter by waiting, open, claimed, approved, denied, resolved, expired or all.",
    )
}

/// `GET /desk`: the queue.
pub(crate) async fn queue(State(state): State<AppState>, person: Person, Query(filter): Query<Filter>) -> Response {
    let chrome = Chrome::of(&person);
    let handoffs = match select(&state, &person, &filter).await {
        Ok(Some(handoffs)) => handoffs,
        Ok(None) => return bad_filter(chrome),
        Err(error) => return views::engine_error(chrome, &error),
    };
    let notice = match filter.done.as_deref() {
        Some(id) => person.caller.engine(&state).handoff(id).await.ok().flatten().map(|h| notice(&h)),
        None => None,
    };
    let page = QueuePage {
        statuses: STATUSES.iter().map(|(name, label, _)| (*name, *label, *name == filter.status())).collect(),
        urgencies: URGENCIES.iter().map(|u| (*u, *u == filter.urgency())).collect(),
        rows: rows_of(&handoffs),
        empty: empty_message(&filter),
        notice,
        hash: fingerprint(&handoffs),
        query: filter.query(),
        chrome,
    };
    render(StatusCode::OK, &page)
}

/// `GET /desk/queue/rows`: the queue's rows alone.
pub(crate) async fn rows(State(state): State<AppState>, person: Person, Query(filter): Query<Filter>) -> Response {
    match select(&state, &person, &filter).await {
        Ok(Some(handoffs)) => {
            render(StatusCode::OK, &RowsFragment { rows: rows_of(&handoffs), empty: empty_message(&filter) })
        }
        Ok(None) => bad_filter(Chrome::of(&person)),
        Err(error) => views::engine_error(Chrome::of(&person), &error),
    }
}

/// What a handoff just acted on now is, as the queue's notice says it.
fn notice(handoff: &Handoff) -> String {
    let who = handoff.claimed_by.as_deref().unwrap_or("Someone");
    let what = match &handoff.customer_id {
        Some(customer) => format!("{} for {customer}", handoff.tool),
        None => handoff.tool.clone(),
    };
    let last = |field: &str| {
        handoff
            .body
            .get("actions")
            .and_then(Json::as_array)
            .and_then(|actions| actions.iter().rev().find_map(|a| a.get(field).and_then(Json::as_str)))
            .unwrap_or("")
            .to_owned()
    };
    match handoff.status.as_str() {
        "approved" if handoff.consumed_by.is_some() => format!("{who} approved {what}; the agent's call has run."),
        "approved" => format!(
            "{who} approved {what}: the agent's identical call may run once, until {}.",
            utc(handoff.expires_ms)
        ),
        "denied" => format!("{who} denied {what}. The agent is told: “{}”", last("reason")),
        "resolved" => format!("{who} resolved {what}: {}", last("note")),
        "claimed" => format!("{who} holds {what}."),
        "expired" => format!("The handoff of {what} expired before anyone decided it."),
        _ => format!("The handoff of {what} was released: it waits for anyone again."),
    }
}

/// `GET /desk/audit`.
#[derive(Template)]
#[template(path = "desk/audit.html")]
struct AuditPage {
    chrome: Chrome,
    intact: bool,
    /// Counts and where it breaks: for admins only.
    detail: Option<AuditDetail>,
    checked: String,
}

struct AuditDetail {
    records: u64,
    sessions: usize,
    head: i64,
    problem: Option<String>,
}

/// `GET /desk/audit`: whether the audit log is intact.
pub(crate) async fn audit(
    State(state): State<AppState>,
    person: Person,
    axum::Extension(desk): axum::Extension<std::sync::Arc<super::Desk>>,
) -> Response {
    let chrome = Chrome::of(&person);
    let report = match desk.audit(&state).await {
        Ok(report) => report,
        Err(error) => return views::engine_error(chrome, &error),
    };
    let tenant = person.caller.engine(&state);
    let detail = if person.caller.role == Role::Admin {
        let problem = match &report.problem {
            None => None,
            Some(problem) => {
                // Another tenant's session is not named.
                let session = match &problem.session_id {
                    Some(id) if tenant.session(id).await.ok().flatten().is_some() => format!(", session {id}"),
                    _ => String::new(),
                };
                Some(format!("Record {}{session}: {}", problem.seq, problem.message))
            }
        };
        Some(AuditDetail { records: report.records, sessions: report.sessions, head: report.head.seq, problem })
    } else {
        None
    };
    let page = AuditPage { chrome, intact: report.problem.is_none(), detail, checked: utc(views::now_ms()) };
    render(StatusCode::OK, &page)
}

/// Any other desk address.
pub(crate) async fn not_found() -> Response {
    views::not_found(Chrome::anonymous())
}
