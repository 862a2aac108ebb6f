//! `tollgate hook`: Claude Code, the Claude Agent SDK (the same CLI) and the
//! Codex CLI gated where they already run. The client starts one process per
//! hook event, writes the event (JSON) on its standard input and reads the
//! answer on its standard output. This crate turns one event into one
//! answer through the engine: a `PreToolUse` is decided (and journaled and
//! audited) in the session named by the client's `session_id`, a
//! `PostToolUse` records the tool's response as the call's result (a failed
//! result check withholds it from the model), a `PostToolUseFailure`
//! records the failure.
//!
//! Both clients let a call through when a hook crashes, exits with another
//! code than 0 or 2, or is late. So [`answer`] never fails: every internal
//! failure (unreadable or oversized input, an unknown event, a missing or
//! invalid workflow, a store that is locked, corrupt or unreachable, a
//! panic, the deadline passing) is an answer that refuses the call with a
//! reason the model can read, given before the deadline (a watchdog: the
//! work runs on a thread of its own and is abandoned when time is up).
//!
//! A process per event would compile the workflow and open the store per
//! event, so by default a hook process hands the event to a [`resident`]
//! process over a local socket ([`socket`]), starting one when there is
//! none and deciding that event itself meanwhile. The resident answers only
//! under the workflow text the hook process read; a resident that is hung,
//! dead mid-answer or garbled is a refusal, never a pass.
//!
//! The wire shapes are `tollgate_protocol::hook`'s. Session state lives in
//! the store (the resident holds only a compiled workflow and open
//! connections), this crate prints nothing (the binary prints the
//! [`Answer`]), and knows nothing of the decision logic (the engine's and
//! the core's).

mod answer;
mod client;
mod event;
mod gate;
mod guard;
pub mod install;
pub mod resident;
mod result;
pub mod socket;

pub use answer::Answer;
pub use event::Kind;
pub use guard::{KindSlot, within};
pub use result::result_json;

use std::path::PathBuf;
use std::time::{Duration, Instant};
pub use tollgate_protocol::hook::Client;

/// The default deadline of one hook process, start to answer.
pub const DEADLINE_DEFAULT: Duration = Duration::from_secs(5);
/// The most a hook event may weigh on standard input, by default.
pub const STDIN_BYTES_MAX: usize = 8 * 1024 * 1024;

/// How to answer events.
#[derive(Clone, Debug)]
pub struct Options {
    /// The workflow file; its current text decides (a session started under
    /// other text is refused, never decided under stale rules).
    pub workflow: PathBuf,
    /// The store: an SQLite path or a `postgres://` URL.
    pub db: String,
    /// Whose protocol to answer in.
    pub client: Client,
    /// The answer is given within this time of the process's start.
    pub deadline: Duration,
    /// Input larger than this is refused.
    pub stdin_bytes_max: usize,
    /// The file of the key signing the audit head, if any.
    pub audit_key_file: Option<PathBuf>,
    /// Whether to ask a resident process.
    pub resident: Resident,
}

/// Whether a hook process asks a resident process to answer.
#[derive(Clone, Debug)]
pub enum Resident {
    /// Never: this process decides (compiling the workflow, opening the
    /// store).
    Off,
    /// Ask it; when there is none, decide here and start one.
    Auto(Spawn),
    /// Only the resident may answer: none listening, or one holding another
    /// text, is a refusal (for tests and diagnosis).
    Required,
}

/// How to start a resident process.
#[derive(Clone, Debug)]
pub struct Spawn {
    /// The program and its first arguments; `--workflow`, `--db` and
    /// `--idle-ms` are added.
    pub command: Vec<std::ffi::OsString>,
    /// It leaves after this long without a request.
    pub idle: Duration,
}

/// How long a resident process waits for a request before it leaves, by
/// default.
pub const IDLE_DEFAULT: Duration = Duration::from_secs(600);

/// What went wrong inside the hook; each one ends as a refusal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Standard input could not be read, or is over the limit.
    #[error("the hook event could not be read: {0}")]
    Input(String),
    /// The input is not a hook event this hook knows.
    #[error("the hook event is not one Tollgate can answer: {0}")]
    Event(String),
    /// The workflow file is missing, unreadable or does not compile.
    #[error("the workflow cannot be used: {0}")]
    Workflow(String),
    /// The session runs under another text of the workflow.
    #[error(
        "session {session} started under another version of the workflow (its SHA-256 {stored}); the workflow \
         file changed since, and a session is never decided under rules it did not start with: start a new session"
    )]
    WorkflowChanged {
        /// The session.
        session: String,
        /// The hash of the text it runs under.
        stored: String,
    },
    /// The engine refused or failed (store locked, corrupt, unreachable; a
    /// bad id; a journal that does not replay).
    #[error("the store could not be used: {0}")]
    Engine(#[from] tollgate_engine::Error),
    /// A resident process listens but gave no usable answer (another user's,
    /// hung, dead mid-answer, garbled), or none may be used.
    #[error("the resident Tollgate process gave no usable answer: {0}")]
    Resident(String),
    /// Something else of the machinery (a runtime that would not start).
    #[error("{0}")]
    Internal(String),
}

/// Answers one hook event read from `input`, within `options.deadline` of
/// `started` (the process's start). Never fails and never panics: whatever
/// goes wrong is a refusal shaped for the event (or, before the event is
/// known, for a tool call).
pub fn answer(options: Options, started: Instant, input: impl std::io::Read + Send + 'static) -> Answer {
    let client = options.client;
    let deadline = started + options.deadline;
    guard::within(client, deadline, move |kind| {
        let bytes = event::read(input, options.stdin_bytes_max)?;
        let event = event::parse(&bytes)?;
        kind.set(event::kind_of(&event));
        let text = gate::read_workflow(&options)?;
        let spawn = match &options.resident {
            Resident::Off => None,
            resident => {
                let hash = tollgate_engine::workflow_hash(&text);
                match asked(&options, &hash, &bytes, deadline)? {
                    client::Asked::Answered(answer) => return Ok(answer),
                    client::Asked::Stale | client::Asked::Absent if matches!(resident, Resident::Required) => {
                        return Err(Error::Resident("none answered under the workflow file's current text".into()));
                    }
                    client::Asked::Stale => None,
                    client::Asked::Absent => match resident {
                        Resident::Auto(spawn) => Some(spawn),
                        Resident::Off | Resident::Required => None,
                    },
                }
            }
        };
        // Started before deciding, so it is ready sooner; this event is
        // decided here, whatever the resident does.
        if let Some(spawn) = spawn {
            client::spawn(&options, spawn);
        }
        gate::handle(&options, event, &text)
    })
}

/// Asks the resident. A place that cannot be used (a directory others may
/// enter) means deciding here and starting none (it could not start).
fn asked(options: &Options, hash: &str, event: &[u8], deadline: Instant) -> Result<client::Asked, Error> {
    match socket::place(options) {
        Ok(place) => client::ask(options, &place, hash, event, deadline),
        Err(_) if matches!(options.resident, Resident::Auto(_)) => Ok(client::Asked::Stale),
        Err(error) => Err(error),
    }
}

/// Answers one hook event `tollgate serve` received over HTTP (Claude Code's
/// `type: "http"` hooks), in `tenant`'s sessions, under a workflow the server
/// serves. The same decisions, journal and audit as a hook process; whatever
/// goes wrong is the refusal shaped for the event (the server sends it with
/// 200: Claude Code lets a call through on any other status).
pub async fn answer_served(
    client: Client,
    engine: &tollgate_engine::Engine,
    tenant: &str,
    workflow: &tollgate_engine::WorkflowHandle,
    event: &[u8],
) -> Answer {
    let parsed = match event::parse(event) {
        Ok(parsed) => parsed,
        Err(error) => return answer::refusal(client, Kind::Unknown, &error.to_string()),
    };
    let kind = event::kind_of(&parsed);
    let current = gate::Current {
        text: "",
        hash: workflow.hash.clone(),
        file: workflow.workflow.name().to_owned(),
        registered: Some(workflow),
    };
    match gate::dispatch_as(client, engine, tenant, &current, &parsed).await {
        Ok(answer) => answer,
        Err(error) => answer::refusal(client, kind, &error.to_string()),
    }
}

/// The refusal for `event` (read as far as it can be) when `what` kept it
/// from being answered: the shape its kind takes.
pub fn refusal_for(client: Client, event: &[u8], what: &str) -> Answer {
    let kind = event::parse(event).map_or(Kind::Unknown, |parsed| event::kind_of(&parsed));
    answer::refusal(client, kind, what)
}
