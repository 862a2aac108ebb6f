//! A session's page: its journal in words, one line per entry, with links to
//! the handoffs it opened and the sessions of its case.

use super::security::Person;
use super::views::{self, Chrome, render, utc};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value as Json;
use tollgate_engine::handoff_id;
use tollgate_engine::journal::{Entry, Outcome, Record};

/// One journal entry in words.
pub(crate) struct Line {
    pub seq: i64,
    pub at: String,
    pub text: String,
    /// Where it leads: (address, label).
    pub links: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "desk/session.html")]
struct SessionPage {
    chrome: Chrome,
    id: String,
    workflow: String,
    parent: Option<String>,
    lines: Vec<Line>,
}

/// The reasons of a journaled decision, joined.
fn reasons(decision: &Json) -> String {
    let messages: Vec<&str> = decision
        .get("reasons")
        .and_then(Json::as_array)
        .map(|reasons| reasons.iter().filter_map(|r| r.get("message").and_then(Json::as_str)).collect())
        .unwrap_or_default();
    messages.join("; ")
}

fn line(session: &str, entry: &Entry) -> Line {
    let mut links = Vec::new();
    let text = match &entry.record {
        Record::Decision(decided) => {
            let call = &decided.call;
            match decided.decision.get("verdict").and_then(Json::as_str).unwrap_or("") {
                "allow" => {
                    if decided.decision.get("handoff").is_some_and(|h| !h.is_null()) {
                        links.push((format!("/desk/handoffs/{}", handoff_id(session, &call.id)), "handoff".into()));
                    }
                    match decided.decision.get("approved_by").and_then(Json::as_str) {
                        Some(by) => format!("{} ({}) allowed on the approval of call {by}", call.tool, call.id),
                        None => format!("{} ({}) allowed", call.tool, call.id),
                    }
                }
                "escalate" => {
                    links.push((format!("/desk/handoffs/{}", handoff_id(session, &call.id)), "handoff".into()));
                    format!("{} ({}) handed to a person: {}", call.tool, call.id, reasons(&decided.decision))
                }
                _ => format!("{} ({}) blocked: {}", call.tool, call.id, reasons(&decided.decision)),
            }
        }
        Record::Result(result) => match result.outcome {
            Outcome::Succeeded => format!("Result of {} recorded", result.call),
            Outcome::Failed => format!("{} failed (the tool reported an error)", result.call),
        },
        Record::Refused(refused) => {
            format!("A call was refused before the workflow saw it: {}", reasons(&refused.decision))
        }
        Record::Opened(opened) => {
            links.push((format!("/desk/sessions/{}", opened.parent), "parent".into()));
            format!("Investigation {} opened by {}: “{}”", opened.concern_id, opened.parent, opened.concern)
        }
        Record::Investigations(opened) => {
            for o in &opened.opened {
                links.push((format!("/desk/sessions/{}", o.session), o.concern_id.clone()));
            }
            let names: Vec<&str> = opened.opened.iter().map(|o| o.concern.as_str()).collect();
            format!("{} investigations opened: {}", opened.opened.len(), names.join("; "))
        }
        Record::Concluded(concluded) => format!("Concluded: “{}”", concluded.outcome),
        Record::Joined(_) => "The investigations were joined".to_owned(),
        Record::Human(acted) => {
            links.push((format!("/desk/handoffs/{}", acted.handoff), "handoff".into()));
            let who = acted.reviewer.as_deref().unwrap_or("The clock");
            match acted.action.as_str() {
                "claim" => format!("{who} claimed the handoff of {}", acted.call),
                "release" => format!("{who} released the handoff of {}", acted.call),
                "approve" => {
                    format!("{who} approved {} until {}", acted.call, acted.expires_ms.map(utc).unwrap_or_default())
                }
                "deny" => format!("{who} denied {}: “{}”", acted.call, acted.reason.as_deref().unwrap_or("")),
                "resolve" => format!("{who} resolved {}: “{}”", acted.call, acted.note.as_deref().unwrap_or("")),
                "expire" => format!("The handoff of {} expired", acted.call),
                other => format!("{who}: {other} on {}", acted.call),
            }
        }
    };
    Line { seq: entry.seq, at: utc(entry.at_ms), text, links }
}

/// `GET /desk/sessions/{id}`.
pub(crate) async fn session(State(state): State<AppState>, person: Person, Path(id): Path<String>) -> Response {
    let chrome = Chrome::of(&person);
    let tenant = person.caller.engine(&state);
    let info = match tenant.session(&id).await {
        Ok(Some(info)) => info,
        Ok(None) => return views::not_found(chrome),
        Err(error) => return views::engine_error(chrome, &error),
    };
    let journal = match tenant.journal(&id).await {
        Ok(journal) => journal,
        Err(error) => return views::engine_error(chrome, &error),
    };
    let page = SessionPage {
        chrome,
        workflow: format!("{} v{}", info.workflow_name, info.workflow_version),
        parent: info.parent_id.clone(),
        lines: journal.iter().map(|entry| line(&id, entry)).collect(),
        id,
    };
    render(StatusCode::OK, &page)
}
