//! A handoff's page: the five fields first, then everything behind them,
//! and beside them the actions the person may take now.

use super::pages::text;
use super::security::Person;
use super::views::{self, Chrome, relative, render, status_label, utc};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value as Json;
use tollgate_engine::Handoff;
use tollgate_engine::journal::Record;

/// What a person typed into a form, kept when the form is refused.
#[derive(Clone, Debug, Default)]
pub(crate) struct Typed {
    pub reason: String,
    pub note: String,
    pub minutes: i64,
}

/// One action's form: whether it is shown, and if it cannot be used, why.
pub(crate) struct Control {
    pub shown: bool,
    pub why_not: Option<String>,
}

impl Control {
    fn usable() -> Control {
        Control { shown: true, why_not: None }
    }

    fn disabled(why: impl Into<String>) -> Control {
        Control { shown: true, why_not: Some(why.into()) }
    }

    fn hidden() -> Control {
        Control { shown: false, why_not: None }
    }

    pub fn disabled_attr(&self) -> bool {
        self.why_not.is_some()
    }
}

/// The side panel's forms.
pub(crate) struct Panel {
    pub claim: Control,
    pub release: Control,
    pub decide: Control,
    /// How it was settled, once it is.
    pub settled: Option<String>,
}

/// The approval lengths offered: minutes and label (15 minutes to 3 days).
pub(crate) const APPROVAL_CHOICES: [(i64, &str); 6] =
    [(15, "15 minutes"), (60, "1 hour"), (240, "4 hours"), (1440, "1 day"), (2880, "2 days"), (4320, "3 days")];

#[derive(Template)]
#[template(path = "desk/handoff.html")]
pub(crate) struct HandoffPage {
    pub chrome: Chrome,
    pub id: String,
    pub session: String,
    pub status: String,
    pub status_label: &'static str,
    pub urgency: String,
    pub customer: String,
    pub recommended: String,
    pub root_cause: String,
    pub summary: String,
    pub facts: Vec<String>,
    pub timeline: Vec<(usize, String)>,
    pub agent_said: Option<String>,
    pub tool: String,
    pub call_id: String,
    pub args: String,
    pub reasons: Vec<(String, String)>,
    pub parent: Option<(String, String)>,
    pub investigations: Vec<(String, String, String)>,
    pub actions: Vec<(String, String)>,
    pub claimed_by: Option<String>,
    pub opened: String,
    pub opened_utc: String,
    pub expires: String,
    pub expires_utc: String,
    pub panel: Panel,
    pub refusal: Option<String>,
    pub typed: Typed,
    pub choices: Vec<(i64, &'static str, bool)>,
}

fn strings(body: &Json, pointer: &str) -> Vec<String> {
    body.pointer(pointer)
        .and_then(Json::as_array)
        .map(|items| items.iter().filter_map(Json::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn panel(handoff: &Handoff, person: &Person) -> Panel {
    let me = person.caller.name.as_str();
    let holder = handoff.claimed_by.as_deref();
    if handoff.is_settled() {
        return Panel {
            claim: Control::hidden(),
            release: Control::hidden(),
            decide: Control::hidden(),
            settled: Some(format!(
                "{} by {}; nothing more can be done with it here.",
                status_label(&handoff.status),
                holder.unwrap_or("the clock")
            )),
        };
    }
    if !person.may_act() {
        let why = "Admins may look at handoffs but not act on them; sign in with a reviewer's token to act.";
        return Panel {
            claim: Control::disabled(why),
            release: Control::hidden(),
            decide: Control::disabled(why),
            settled: None,
        };
    }
    match holder {
        None => Panel {
            claim: Control::usable(),
            release: Control::hidden(),
            decide: Control::disabled("Claim it first: only the person holding a handoff decides it."),
            settled: None,
        },
        Some(holder) if holder == me => {
            Panel { claim: Control::hidden(), release: Control::usable(), decide: Control::usable(), settled: None }
        }
        Some(holder) => Panel {
            claim: Control::disabled(format!("{holder} holds this handoff; only they can decide or release it.")),
            release: Control::hidden(),
            decide: Control::disabled(format!("{holder} holds this handoff; only they can decide or release it.")),
            settled: None,
        },
    }
}

/// The words of an action on the handoff's "who did what" list.
fn action_line(action: &Json) -> (String, String) {
    let who = action.get("reviewer").and_then(Json::as_str).unwrap_or("The clock");
    let at = action.get("now_ms").and_then(Json::as_i64).map(utc).unwrap_or_default();
    let text = match action.get("action").and_then(Json::as_str).unwrap_or("") {
        "claim" => format!("{who} claimed it"),
        "release" => format!("{who} released it"),
        "approve" => format!(
            "{who} approved it, until {}",
            action.get("expires_ms").and_then(Json::as_i64).map(utc).unwrap_or_default()
        ),
        "deny" => format!("{who} denied it: “{}”", action.get("reason").and_then(Json::as_str).unwrap_or("")),
        "resolve" => format!("{who} resolved it: “{}”", action.get("note").and_then(Json::as_str).unwrap_or("")),
        "expire" => "It expired: nobody decided it in time".to_owned(),
        other => format!("{who}: {other}"),
    };
    (at, text)
}

/// The page of `handoff` as `person` sees it, with a refusal to show and
/// what they typed, if a form was just refused.
pub(crate) async fn page(
    state: &AppState,
    person: &Person,
    handoff: &Handoff,
    refusal: Option<String>,
    typed: Typed,
) -> HandoffPage {
    let body = &handoff.body;
    let now = views::now_ms();
    // What the agent said: the summary it sent with the call that escalated.
    let journal = person.caller.engine(state).journal(&handoff.session).await.unwrap_or_default();
    let agent_said = journal.iter().find_map(|entry| match &entry.record {
        Record::Decision(decided) if decided.call.id == handoff.call_id => decided.call.summary.clone(),
        _ => None,
    });
    let args = body
        .pointer("/call/args")
        .map_or_else(String::new, |args| serde_json::to_string_pretty(args).unwrap_or_else(|_| args.to_string()));
    let reasons = body
        .get("reasons")
        .and_then(Json::as_array)
        .map(|reasons| {
            reasons.iter().map(|r| (text(r, "/rule_id").to_owned(), text(r, "/message").to_owned())).collect()
        })
        .unwrap_or_default();
    let parent = body
        .pointer("/case/parent")
        .and_then(Json::as_str)
        .map(|parent| (parent.to_owned(), text(body, "/case/concern").to_owned()));
    let investigations = body
        .pointer("/case/investigations")
        .and_then(Json::as_array)
        .map(|list| {
            list.iter()
                .map(|o| {
                    (text(o, "/session").to_owned(), text(o, "/concern_id").to_owned(), text(o, "/concern").to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let actions = body.get("actions").and_then(Json::as_array).map(|a| a.iter().map(action_line).collect());
    let minutes = if typed.minutes > 0 { typed.minutes } else { 60 };
    HandoffPage {
        chrome: Chrome::of(person),
        id: handoff.id.clone(),
        session: handoff.session.clone(),
        status: handoff.status.clone(),
        status_label: status_label(&handoff.status),
        urgency: handoff.urgency.clone(),
        customer: handoff.customer_id.clone().unwrap_or_else(|| "no verified customer".to_owned()),
        recommended: text(body, "/handoff/recommended_action").to_owned(),
        root_cause: text(body, "/handoff/root_cause").to_owned(),
        summary: text(body, "/handoff/conversation_summary").to_owned(),
        facts: strings(body, "/handoff/facts"),
        timeline: strings(body, "/handoff/timeline").into_iter().enumerate().map(|(i, line)| (i + 1, line)).collect(),
        agent_said,
        tool: handoff.tool.clone(),
        call_id: handoff.call_id.clone(),
        args,
        reasons,
        parent,
        investigations,
        actions: actions.unwrap_or_default(),
        claimed_by: handoff.claimed_by.clone(),
        opened: relative(handoff.created_ms, now),
        opened_utc: utc(handoff.created_ms),
        expires: relative(handoff.expires_ms, now),
        expires_utc: utc(handoff.expires_ms),
        panel: panel(handoff, person),
        refusal,
        typed: Typed { minutes, ..typed },
        choices: APPROVAL_CHOICES.iter().map(|(m, label)| (*m, *label, *m == minutes)).collect(),
    }
}

/// `GET /desk/handoffs/{id}`.
pub(crate) async fn handoff(State(state): State<AppState>, person: Person, Path(id): Path<String>) -> Response {
    match person.caller.engine(&state).handoff(&id).await {
        Ok(Some(handoff)) => render(StatusCode::OK, &page(&state, &person, &handoff, None, Typed::default()).await),
        Ok(None) => views::not_found(Chrome::of(&person)),
        Err(error) => views::engine_error(Chrome::of(&person), &error),
    }
}
