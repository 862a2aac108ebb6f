//! What can stop a demo scenario. A tool that fails is no error here: its
//! failure is the tool's answer, recorded in the session like any result.

use std::path::PathBuf;

/// A demo scenario could not go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine refused or failed a step (the store, an id, a conflict).
    #[error(transparent)]
    Engine(#[from] tollgate_engine::Error),
    /// The session to continue runs under another workflow than the
    /// scenario's, so it is not this scenario's session.
    #[error("session {session} exists under another workflow")]
    OtherWorkflow {
        /// The session.
        session: String,
    },
    /// The backend's ledger of side effects cannot be opened.
    #[error("cannot open the demo backend's ledger {}", path.display())]
    Ledger {
        /// Where the ledger is.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The backend's ledger holds a line that is no record of a side effect
    /// (other than a last line a crash cut short): rather than guess which
    /// side effects ran, the demo stops.
    #[error("the demo backend's ledger {} is damaged at line {line}: {why}", path.display())]
    DamagedLedger {
        /// Where the ledger is.
        path: PathBuf,
        /// The damaged line's number, from 1.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// An investigation's task ended without an answer (it panicked or was
    /// cancelled).
    #[error("investigation {session} stopped before it finished")]
    Branch {
        /// The investigation's session.
        session: String,
        /// What the runtime said.
        #[source]
        source: tokio::task::JoinError,
    },
}
