//! `GET /desk/events`: a live queue page's event stream. Once a second it
//! checks the token again and hashes what the page would show; it sends
//! `changed` (the hash only, never case data) when that moved, `paused`
//! when the store cannot be read, and `signed-out`, as its last event, once
//! the token stops working.

use super::pages::{Filter, fingerprint, select};
use super::security::Person;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use std::convert::Infallible;
use std::time::Duration;
use tollgate_engine::Role;

/// How often the stream looks again.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Where a stream stands between checks.
struct Watch {
    state: AppState,
    person: Person,
    filter: Filter,
    /// The hash the page shows.
    shown: Option<String>,
    paused: bool,
    ended: bool,
    ticks: tokio::time::Interval,
}

/// What one check finds.
enum Found {
    Same,
    Changed(String),
    Paused,
    SignedOut,
}

impl Watch {
    async fn check(&self) -> Found {
        match self.state.engine().authenticate(&self.person.cookie).await {
            Ok(Some(token)) if matches!(token.role, Role::Reviewer | Role::Admin) => {}
            Ok(_) => return Found::SignedOut,
            Err(_) => return Found::Paused,
        }
        match select(&self.state, &self.person, &self.filter).await {
            Ok(Some(handoffs)) => {
                let hash = fingerprint(&handoffs);
                if self.shown.as_deref() == Some(hash.as_str()) { Found::Same } else { Found::Changed(hash) }
            }
            // A filter that names no status shows nothing, and never changes.
            Ok(None) => Found::Same,
            Err(_) => Found::Paused,
        }
    }

    /// The next event, after as many checks as it takes.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Watch)> {
        if self.ended {
            return None;
        }
        loop {
            self.ticks.tick().await;
            match self.check().await {
                Found::Same => self.paused = false,
                Found::Changed(hash) => {
                    self.paused = false;
                    let event = Event::default().event("changed").data(&hash);
                    self.shown = Some(hash);
                    return Some((Ok(event), self));
                }
                Found::Paused if self.paused => {}
                Found::Paused => {
                    self.paused = true;
                    return Some((Ok(Event::default().event("paused").data("the store cannot be read")), self));
                }
                Found::SignedOut => {
                    self.ended = true;
                    return Some((Ok(Event::default().event("signed-out").data("/desk/sign-in?why=revoked")), self));
                }
            }
        }
    }
}

/// `GET /desk/events?status=..&urgency=..&since=HASH`.
pub(crate) async fn stream(
    State(state): State<AppState>,
    person: Person,
    Query(filter): Query<Filter>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shown = filter.since.clone().filter(|since| !since.is_empty());
    let watch = Watch { state, person, filter, shown, paused: false, ended: false, ticks };
    Sse::new(futures_util::stream::unfold(watch, Watch::next)).keep_alive(KeepAlive::default())
}
