//! What the desk's templates are given: the page chrome, times in words and
//! pages for errors. Templates live in `templates/desk/`; askama escapes
//! everything they print.

use super::assets;
use super::security::Person;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use std::time::{SystemTime, UNIX_EPOCH};
use tollgate_engine::Role;

/// What every page around its content shows: assets, who is signed in.
pub(crate) struct Chrome {
    pub css: &'static str,
    pub js: &'static str,
    pub icon: &'static str,
    /// Who is signed in and as what (`None` on the sign-in page).
    pub who: Option<(String, &'static str)>,
    /// The CSRF token of their forms (empty when nobody is signed in).
    pub csrf: String,
    /// Whether they may only look.
    pub read_only: bool,
}

impl Chrome {
    /// The chrome of a page nobody is signed in to.
    pub fn anonymous() -> Chrome {
        Chrome {
            css: assets::address("desk.css"),
            js: assets::address("desk.js"),
            icon: assets::address("icon.svg"),
            who: None,
            csrf: String::new(),
            read_only: true,
        }
    }

    /// The chrome of `person`'s pages.
    pub fn of(person: &Person) -> Chrome {
        let role = match person.caller.role {
            Role::Admin => "admin, read-only",
            Role::Reviewer => "reviewer",
            Role::Agent => "agent",
        };
        Chrome {
            who: Some((person.caller.name.clone(), role)),
            csrf: person.csrf.clone(),
            read_only: !person.may_act(),
            ..Chrome::anonymous()
        }
    }
}

/// A page for a problem: what happened, in a sentence.
#[derive(Template)]
#[template(path = "desk/problem.html")]
pub(crate) struct ProblemPage {
    pub chrome: Chrome,
    pub title: String,
    pub message: String,
}

/// Renders `page` with `status`; a template that fails to render is a 500
/// that says nothing of why (it is logged).
pub(crate) fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            eprintln!("tollgate serve: a desk page failed to render: {error}");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be shown").into_response()
        }
    }
}

/// A problem page.
pub(crate) fn problem(status: StatusCode, chrome: Chrome, title: &str, message: impl Into<String>) -> Response {
    render(status, &ProblemPage { chrome, title: title.to_owned(), message: message.into() })
}

/// The page for a store that cannot be read.
pub(crate) fn unavailable() -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        Chrome::anonymous(),
        "The store cannot be read",
        "The desk cannot reach its store just now; nothing was changed. Try again in a moment.",
    )
}

/// The page for an engine error: what the person can do about it.
pub(crate) fn engine_error(chrome: Chrome, error: &tollgate_engine::Error) -> Response {
    use tollgate_engine::ErrorKind;
    match error.kind() {
        ErrorKind::NotFound => not_found(chrome),
        ErrorKind::BadRequest => {
            problem(StatusCode::BAD_REQUEST, chrome, "That cannot be done", format!("{error}; nothing was changed."))
        }
        ErrorKind::Conflict => problem(StatusCode::CONFLICT, chrome, "That cannot be done now", error.to_string()),
        ErrorKind::Unavailable => unavailable(),
        ErrorKind::Damaged => {
            eprintln!("tollgate serve: stored data is damaged: {error}");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                chrome,
                "Stored data is damaged",
                "This session's stored records do not replay; a person must look at the audit log.",
            )
        }
    }
}

/// The page for something that is not there (or is another tenant's).
pub(crate) fn not_found(chrome: Chrome) -> Response {
    problem(StatusCode::NOT_FOUND, chrome, "Not found", "There is nothing here, or it is not yours to see.")
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `ms` as a UTC time: `2026-01-01 09:30:00 UTC`.
pub(crate) fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "an unknown time".to_owned())
}

/// How long ago `ms` was, from `now_ms`, in words (`4 min ago`; `in 2 h`
/// for a time still to come).
pub(crate) fn relative(ms: i64, now_ms: i64) -> String {
    let seconds = (now_ms - ms) / 1000;
    let span = seconds.abs();
    let words = if span < 45 {
        return if seconds >= 0 { "just now".to_owned() } else { "in a moment".to_owned() };
    } else if span < 90 * 60 {
        format!("{} min", (span + 30) / 60)
    } else if span < 36 * 3600 {
        format!("{} h", (span + 1800) / 3600)
    } else {
        format!("{} days", (span + 43_200) / 86_400)
    };
    if seconds >= 0 { format!("{words} ago") } else { format!("in {words}") }
}

/// A handoff status as a person reads it.
pub(crate) fn status_label(status: &str) -> &'static str {
    match status {
        "open" => "Waiting",
        "claimed" => "Claimed",
        "approved" => "Approved",
        "denied" => "Denied",
        "resolved" => "Resolved",
        "expired" => "Expired",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_words() {
        assert_eq!(relative(0, 10_000), "just now");
        assert_eq!(relative(0, 5 * 60_000), "5 min ago");
        assert_eq!(relative(0, 3 * 3_600_000), "3 h ago");
        assert_eq!(relative(0, 3 * 86_400_000), "3 days ago");
        assert_eq!(relative(15 * 60_000, 0), "in 15 min");
        assert_eq!(utc(1_767_225_600_000), "2026-01-01 00:00:00 UTC");
    }
}
