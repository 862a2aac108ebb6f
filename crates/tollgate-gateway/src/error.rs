//! The gateway's errors while starting and serving (a call's failures are
//! refusals, not errors: see `call.rs`).

/// What can stop the gateway from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An `--upstream` argument that is not `NAME=COMMAND` or `NAME=URL`.
    #[error("upstream {spec:?}: {message}")]
    BadUpstream {
        /// The argument as given.
        spec: String,
        /// What is wrong with it.
        message: String,
    },
    /// An upstream could not be started, reached or initialised.
    #[error("upstream {name}: {message}")]
    Upstream {
        /// The upstream's name.
        name: String,
        /// What failed.
        message: String,
    },
    /// The engine refused (a workflow, a store).
    #[error(transparent)]
    Engine(#[from] tollgate_engine::Error),
    /// Binding or serving a socket, or the standard streams.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}
