//! What people do to a handoff: plain form POSTs, each checked (same
//! origin, the sign-in's CSRF token, a reviewer's role) before the engine
//! is asked; a success redirects, a refusal shows the page again with the
//! refusal in words and what was typed kept.

use super::Desk;
use super::handoff::{Typed, page};
use super::security::{Person, same_origin};
use super::views::{self, Chrome, render, status_label};
use crate::state::AppState;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;
use tollgate_engine::{ErrorKind, Handoff, HumanAction};

/// Shortest and longest approval a person may give, in minutes.
const APPROVAL_MINUTES: std::ops::RangeInclusive<i64> = 15..=3 * 24 * 60;

/// A handoff action's form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    minutes: Option<String>,
}

/// The refusal of a form that does not come from this sign-in's desk
/// pages, or `None` for one that does.
pub(crate) fn refuse_form(desk: &Desk, headers: &HeaderMap, person: &Person, csrf: &str) -> Option<Response> {
    if !same_origin(headers) {
        return Some(views::problem(
            StatusCode::FORBIDDEN,
            Chrome::of(person),
            "Refused",
            "This form was sent from another site; nothing was done.",
        ));
    }
    if !desk.csrf_matches(&person.cookie, csrf) {
        return Some(views::problem(
            StatusCode::FORBIDDEN,
            Chrome::of(person),
            "Refused",
            "This form is out of date or was not made by the desk for you; nothing was done. Open the page again \
             and send it from there.",
        ));
    }
    None
}

/// Why an action the engine refused was refused, in words, from how the
/// handoff stands now.
fn refusal_words(handoff: &Handoff, me: &str, fallback: String) -> String {
    match (handoff.status.as_str(), handoff.claimed_by.as_deref()) {
        ("claimed", Some(holder)) if holder != me => {
            format!("{holder} claimed this handoff before you; only they can decide or release it now.")
        }
        ("open", _) => "Nobody holds this handoff now: claim it before deciding it.".to_owned(),
        (status, who) if handoff.is_settled() => format!(
            "This handoff was {} by {} already; nothing more can be done with it.",
            status_label(status).to_lowercase(),
            who.unwrap_or("the clock")
        ),
        _ => fallback,
    }
}

/// `POST /desk/handoffs/{id}/{action}`.
pub(crate) async fn act(
    State(state): State<AppState>,
    axum::Extension(desk): axum::Extension<Arc<Desk>>,
    headers: HeaderMap,
    person: Person,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = refuse_form(&desk, &headers, &person, &form.csrf) {
        return refused;
    }
    let chrome = || Chrome::of(&person);
    if !person.may_act() {
        let why = "Admins may look at handoffs but not act on them; nothing was done.";
        return views::problem(StatusCode::FORBIDDEN, chrome(), "Read-only", why);
    }
    let tenant = person.caller.engine(&state);
    let handoff = match tenant.handoff(&id).await {
        Ok(Some(handoff)) => handoff,
        Ok(None) => return views::not_found(chrome()),
        Err(error) => return views::engine_error(chrome(), &error),
    };
    let minutes = form.minutes.as_deref().map(|m| m.trim().parse::<i64>().unwrap_or(-1));
    let typed = Typed { reason: form.reason.clone(), note: form.note.clone(), minutes: minutes.unwrap_or(0) };
    let refuse = async |status: StatusCode, words: String, handoff: &Handoff, typed: Typed| {
        render(status, &page(&state, &person, handoff, Some(words), typed).await)
    };
    let reviewer = person.caller.name.clone();
    let human = match action.as_str() {
        "claim" => HumanAction::Claim { reviewer },
        "release" => HumanAction::Release { reviewer },
        "approve" => match minutes.unwrap_or(60) {
            minutes if APPROVAL_MINUTES.contains(&minutes) => {
                HumanAction::Approve { reviewer, expires_ms: views::now_ms().saturating_add(minutes * 60_000) }
            }
            _ => {
                let words = "An approval lasts from 15 minutes to 3 days; choose one of the lengths offered.";
                return refuse(StatusCode::UNPROCESSABLE_ENTITY, words.to_owned(), &handoff, typed).await;
            }
        },
        "deny" if form.reason.trim().is_empty() => {
            let words = "Write why it is denied: the agent is told exactly that.";
            return refuse(StatusCode::UNPROCESSABLE_ENTITY, words.to_owned(), &handoff, typed).await;
        }
        "deny" => HumanAction::Deny { reviewer, reason: form.reason.trim().to_owned() },
        "resolve" if form.note.trim().is_empty() => {
            let words = "Write what was done instead: the note is kept with the handoff.";
            return refuse(StatusCode::UNPROCESSABLE_ENTITY, words.to_owned(), &handoff, typed).await;
        }
        "resolve" => HumanAction::Resolve { reviewer, note: form.note.trim().to_owned() },
        _ => return views::not_found(chrome()),
    };
    match tenant.act(&id, human).await {
        Ok(_) if action == "claim" => Redirect::to(&format!("/desk/handoffs/{id}")).into_response(),
        Ok(_) => Redirect::to(&format!("/desk?done={id}")).into_response(),
        Err(error) if matches!(error.kind(), ErrorKind::Conflict | ErrorKind::BadRequest) => {
            let status =
                if error.kind() == ErrorKind::Conflict { StatusCode::CONFLICT } else { StatusCode::BAD_REQUEST };
            let now = match tenant.handoff(&id).await {
                Ok(Some(now)) => now,
                _ => handoff,
            };
            let words = refusal_words(&now, &person.caller.name, format!("{error}; nothing was done."));
            refuse(status, words, &now, typed).await
        }
        Err(error) => views::engine_error(chrome(), &error),
    }
}
