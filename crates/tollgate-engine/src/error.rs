//! What can go wrong in the engine, by what happened, so every surface maps
//! an error in one match: an HTTP status, a hook's deny, an MCP error.
//! Bad input is an error here, never a panic.

/// An engine error. Its variants say what happened; [`Error::kind`] says
/// what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What the caller sent cannot be accepted: an id that is not one, a
    /// workflow that does not compile, text over a limit, an investigation
    /// request that makes no sense. Sent again unchanged, it fails again.
    #[error("{message}")]
    BadRequest {
        /// What is wrong, as one sentence the caller can act on.
        message: String,
    },
    /// What the request names does not exist.
    #[error("no {what} '{id}'")]
    NotFound {
        /// What kind of thing was looked for.
        what: Missing,
        /// The id it was looked for by.
        id: String,
    },
    /// The request clashes with what is stored (a session id taken, an
    /// investigation opened with other text, investigations still running).
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// Stored data does not decode, or does not replay to the decisions it
    /// records: the journal was altered, or the session was written under a
    /// different workflow. Nothing was changed.
    #[error("session {session} does not replay at journal entry {seq}: {message}")]
    Diverged {
        /// The session.
        session: String,
        /// The journal entry.
        seq: i64,
        /// What differs.
        message: String,
    },
    /// Stored data does not have the shape this build writes (outside a
    /// session's journal: a stored row the store itself cannot read).
    #[error("stored data is damaged: {message}")]
    Damaged {
        /// What is damaged.
        message: String,
    },
    /// The store failed or could not be reached (a database error, a lost
    /// connection, a full disk): nothing of the call's group was stored, and
    /// sending it again with the same id is safe.
    #[error("{message}")]
    Storage {
        /// What the store reported.
        message: String,
        /// Whether the store itself failed (as opposed to refusing to open a
        /// database it cannot use, such as one of a newer schema).
        database: bool,
    },
}

/// What a [`Error::NotFound`] looked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// A session.
    Session,
    /// A stored workflow, by hash.
    Workflow,
    /// A handoff.
    Handoff,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Missing::Session => "session",
            Missing::Workflow => "stored workflow with hash",
            Missing::Handoff => "handoff",
        })
    }
}

/// A request that clashes with what is stored.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// A session with this id exists already.
    #[error("session '{0}' exists already")]
    SessionExists(String),
    /// The join of a parent whose investigations have not all ended.
    #[error("session {parent} cannot be joined: investigations still running: {}", running.join(", "))]
    Running {
        /// The parent session.
        parent: String,
        /// The concern ids still running, in the order they were opened.
        running: Vec<String>,
    },
    /// An action a handoff's state does not allow (claimed by another,
    /// decided already, not claimed first).
    #[error("{0}")]
    Handoff(String),
    /// A state change the session's current state does not allow (an
    /// investigation concluded twice, a concern opened again with other
    /// text).
    #[error("{0}")]
    State(String),
}

/// What the caller can do about an [`Error`]: the one thing a surface maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Fix the request (HTTP 400/422).
    BadRequest,
    /// Name something that exists (HTTP 404).
    NotFound,
    /// Look at the current state first (HTTP 409).
    Conflict,
    /// Stored data is damaged; a person must look (HTTP 500).
    Damaged,
    /// Try again later (HTTP 503).
    Unavailable,
}

impl Error {
    /// What the caller can do about this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::BadRequest { .. } => ErrorKind::BadRequest,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Diverged { .. } | Error::Damaged { .. } => ErrorKind::Damaged,
            Error::Storage { .. } => ErrorKind::Unavailable,
        }
    }

    /// Whether the store itself failed (a transaction it happened in is
    /// broken), as opposed to a refusal.
    pub fn is_database(&self) -> bool {
        matches!(self, Error::Storage { database: true, .. })
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Error {
        Error::BadRequest { message: message.into() }
    }

    pub(crate) fn no_session(id: &str) -> Error {
        Error::NotFound { what: Missing::Session, id: id.to_owned() }
    }

    pub(crate) fn storage(message: impl Into<String>) -> Error {
        Error::Storage { message: message.into(), database: true }
    }

    pub(crate) fn diverged(session: &str, seq: i64, message: impl Into<String>) -> Error {
        Error::Diverged { session: session.to_owned(), seq, message: message.into() }
    }
}

impl From<tollgate_store::Error> for Error {
    fn from(error: tollgate_store::Error) -> Error {
        use tollgate_store::Error as Store;
        let error_text = |e: &tollgate_store::Error| e.to_string();
        match error {
            Store::NoSession(id) => Error::no_session(&id),
            Store::SessionExists(id) => Error::Conflict(Conflict::SessionExists(id)),
            Store::Damaged(message) => Error::Damaged { message },
            nul @ Store::Nul(_) => Error::bad_request(error_text(&nul)),
            other => {
                let database = other.is_database();
                Error::Storage { message: other.to_string(), database }
            }
        }
    }
}
