//! The scenarios of `tollgate demo`, as a library. It owns the two stories
//! (the support-refunds story: one session with a blocked refund, a prompt
//! injection, another customer's order, refunds within and over the limit
//! and an $800 escalation; and the multi-concern case: a parent session
//! verifies the customer, opens one investigation per concern, runs them
//! concurrently and joins them), their simulated tool backends (the
//! multi-concern one keeps a ledger of the side effects it ran, per
//! idempotency key, so a call re-driven after a crash never runs twice), and
//! the built-in workflow texts they run under.
//!
//! A scenario runs through the engine into a store, tells its caller what
//! happens as typed events the moment they happen (an [`Observer`]), and
//! returns a typed result. It must not depend on terminal output or argument
//! parsing: it prints nothing, colours nothing and reads no flags; the
//! `tollgate` binary renders the events and owns the command line. The
//! scenarios are async functions the caller drives on its own tokio runtime.

mod error;
pub mod multi_concern;
pub mod support_refunds;

pub use error::Error;

/// The reference workflow (`examples/support-refunds.toml`), built in so the
/// demo needs no files.
pub const SUPPORT_REFUNDS: &str = include_str!("../../../examples/support-refunds.toml");

/// The multi-concern workflow (`examples/multi-concern.toml`), built in.
pub const MULTI_CONCERN: &str = include_str!("../../../examples/multi-concern.toml");

/// Hears a scenario's events, in the order they happen.
///
/// It is called synchronously at the moment each event happens (a progress
/// step right after its commit, before the scenario goes on), so a caller
/// that prints an event shows a step only once it is durable and before the
/// next one starts: a crash test that kills the process after a step's line
/// relies on that. It runs on the scenario's tasks, so keep it quick.
pub trait Observer<E>: Send + Sync {
    /// One event.
    fn event(&self, event: E);
}

impl<E, F> Observer<E> for F
where
    F: Fn(E) + Send + Sync,
{
    fn event(&self, event: E) {
        self(event);
    }
}

/// A session id for a run that names none: `<prefix>-<milliseconds since
/// the Unix epoch>`, so every run of the demo keeps a session of its own.
fn stamped(prefix: &str) -> String {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("{prefix}-{stamp}")
}
