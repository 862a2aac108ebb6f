//! The resident process's socket: where it is, who may speak on it, and
//! what is said. The socket lives in a directory only this user can enter
//! (0700, checked before use), is named after what it decides with (the
//! user, the workflow file, the store, the audit key), and both ends check
//! that the other runs as the same user. One request, one reply, each a
//! JSON document ended by closing the writing half.

use crate::{Answer, Client, Error, Options};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where the sockets are, when set (tests, benchmarks); else
/// `$XDG_RUNTIME_DIR/tollgate`, else `/tmp/tollgate-<uid>`.
pub const RUNTIME_DIR_ENV: &str = "TOLLGATE_HOOK_RUNTIME_DIR";

/// The longest request or reply read, in bytes: an event at its limit and
/// room for the rest.
pub(crate) fn message_bytes_max(options: &Options) -> usize {
    options.stdin_bytes_max.saturating_add(64 * 1024)
}

/// The files of one resident process.
#[derive(Clone, Debug)]
pub struct Place {
    /// The socket it listens on.
    pub socket: PathBuf,
    /// Held (flock) while it lives, so only one serves a place; holds its
    /// process id.
    pub lock: PathBuf,
}

/// The place of the resident serving `options` (the directory created if
/// missing): refused unless the directory is this user's alone.
pub fn place(options: &Options) -> Result<Place, Error> {
    let dir = private_dir()?;
    let name = key(options)?;
    Ok(Place { socket: dir.join(format!("{name}.sock")), lock: dir.join(format!("{name}.lock")) })
}

fn private_dir() -> Result<PathBuf, Error> {
    let uid = nix::unistd::getuid();
    let dir = match std::env::var_os(RUNTIME_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("tollgate"),
            _ => std::env::temp_dir().join(format!("tollgate-{uid}")),
        },
    };
    let unusable = |why: String| Error::Resident(format!("{} cannot hold the socket: {why}", dir.display()));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(unusable(error.to_string())),
    }
    // Not followed if it is a link: the directory itself must be ours.
    let meta = std::fs::symlink_metadata(&dir).map_err(|error| unusable(error.to_string()))?;
    if !meta.is_dir() {
        return Err(unusable("it is not a directory".into()));
    }
    if meta.uid() != uid.as_raw() {
        return Err(unusable(format!("it belongs to uid {}", meta.uid())));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(unusable(format!("others may enter it (mode {:o})", meta.permissions().mode() & 0o777)));
    }
    Ok(dir)
}

/// What names a resident: the user, the workflow file (canonical), the
/// store (an SQLite path made absolute) and the audit key's file. SHA-256,
/// the first 32 hex digits (socket paths are short).
fn key(options: &Options) -> Result<String, Error> {
    let workflow = std::fs::canonicalize(&options.workflow)
        .map_err(|error| Error::Workflow(format!("cannot read {} ({error})", options.workflow.display())))?;
    let key = format!(
        "{}\n{}\n{}\n{}",
        nix::unistd::getuid(),
        workflow.display(),
        store_url(&options.db),
        options.audit_key_file.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default()
    );
    let hash = tollgate_engine::workflow_hash(&key);
    Ok(hash.chars().take(32).collect())
}

/// The store as the resident opens it: a `postgres://` URL as it is, an
/// SQLite path made absolute (the resident may run elsewhere).
pub fn store_url(db: &str) -> String {
    if db.contains("://") || db.starts_with("sqlite:") || Path::new(db).is_absolute() {
        return db.to_owned();
    }
    match std::env::current_dir() {
        Ok(dir) => dir.join(db).display().to_string(),
        Err(_) => db.to_owned(),
    }
}

/// What a hook process asks the resident.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    /// The format of the exchange.
    pub version: u32,
    /// SHA-256 of the workflow file's text as the hook process read it: the
    /// resident answers only under this very text.
    pub workflow_sha256: String,
    /// Whose protocol to answer in.
    pub client: WireClient,
    /// When the hook process stops waiting, in ms since the Unix epoch: no
    /// work starts after it (nobody would read the answer, and a call
    /// journaled as allowed that the client was told is refused would hold
    /// its place as pending).
    pub deadline_unix_ms: u64,
    /// The event, as read on the hook's standard input.
    pub event: String,
}

/// The exchange's format.
pub(crate) const VERSION: u32 = 1;

/// [`Client`] on the socket.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WireClient {
    Claude,
    Codex,
}

impl From<Client> for WireClient {
    fn from(client: Client) -> WireClient {
        match client {
            Client::ClaudeCode => WireClient::Claude,
            Client::Codex => WireClient::Codex,
        }
    }
}

impl From<WireClient> for Client {
    fn from(client: WireClient) -> Client {
        match client {
            WireClient::Claude => Client::ClaudeCode,
            WireClient::Codex => Client::Codex,
        }
    }
}

/// What the resident answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Reply {
    /// The hook's answer, to print as it is.
    Answer {
        /// The format of the exchange.
        version: u32,
        /// Standard output.
        stdout: String,
        /// Standard error.
        stderr: String,
        /// The exit code (0 or 2).
        exit_code: u8,
    },
    /// The workflow file's text is not the one the hook process read (it
    /// changed again): the hook process decides itself.
    Stale {
        /// The format of the exchange.
        version: u32,
    },
}

impl Reply {
    pub(crate) fn answer(answer: Answer) -> Reply {
        Reply::Answer { version: VERSION, stdout: answer.stdout, stderr: answer.stderr, exit_code: answer.exit_code }
    }
}

/// The time now, in ms since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The user on the other end of a connected socket.
pub(crate) fn peer_uid(stream: &impl std::os::fd::AsFd) -> Result<u32, Error> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(stream, PeerCredentials)
        .map(|credentials| credentials.uid())
        .map_err(|error| Error::Resident(format!("cannot tell who is on the other end of the socket ({error})")))
}
