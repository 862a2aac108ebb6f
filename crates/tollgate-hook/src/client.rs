//! The hook process's side of the resident: ask it, and start it when it is
//! absent. Absent (no socket, or nobody listening) is not an answer: the
//! hook process decides itself and starts a resident for the next event.
//! Anything else that goes wrong once someone listens (another user on the
//! socket, a broken or garbled reply, silence until the deadline) is an
//! error, so a refusal: the resident may have decided and journaled the
//! call already, so it is never decided a second time here.

use crate::socket::{self, Place, Reply, Request};
use crate::{Answer, Error, Options};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

/// What came of asking.
pub(crate) enum Asked {
    /// The resident's answer.
    Answered(Answer),
    /// The resident holds another text of the workflow (the file changed
    /// again while it read it): decide here.
    Stale,
    /// Nobody listens: decide here (and start one).
    Absent,
}

/// Asks the resident at `place` to answer `event` under the workflow text
/// whose SHA-256 is `workflow_sha256`, within `deadline`.
pub(crate) fn ask(
    options: &Options,
    place: &Place,
    workflow_sha256: &str,
    event: &[u8],
    deadline: Instant,
) -> Result<Asked, Error> {
    let mut stream = match UnixStream::connect(&place.socket) {
        Ok(stream) => stream,
        Err(error) if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            return Ok(Asked::Absent);
        }
        Err(error) => return Err(broken(&error)),
    };
    let ours = nix::unistd::getuid().as_raw();
    let theirs = socket::peer_uid(&stream)?;
    if theirs != ours {
        return Err(Error::Resident(format!("the process on its socket runs as uid {theirs}, not {ours}")));
    }
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Error::Resident("no time was left to ask it".into()));
    }
    // The watchdog answers at the deadline (and says why); these only keep
    // this thread from outliving it for long.
    let timeout = left + std::time::Duration::from_secs(1);
    stream.set_read_timeout(Some(timeout)).map_err(|error| broken(&error))?;
    stream.set_write_timeout(Some(timeout)).map_err(|error| broken(&error))?;
    let request = Request {
        version: socket::VERSION,
        workflow_sha256: workflow_sha256.to_owned(),
        client: options.client.into(),
        deadline_unix_ms: socket::unix_ms().saturating_add(u64::try_from(left.as_millis()).unwrap_or(u64::MAX)),
        event: String::from_utf8_lossy(event).into_owned(),
    };
    let bytes = serde_json::to_vec(&request).map_err(|error| Error::Internal(error.to_string()))?;
    stream.write_all(&bytes).map_err(|error| broken(&error))?;
    stream.shutdown(std::net::Shutdown::Write).map_err(|error| broken(&error))?;
    let limit = socket::message_bytes_max(options);
    let mut reply = Vec::new();
    (&mut stream)
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut reply)
        .map_err(|error| broken(&error))?;
    if reply.len() > limit {
        return Err(Error::Resident(format!("its reply is over the limit of {limit} bytes")));
    }
    match serde_json::from_slice::<Reply>(&reply) {
        Ok(Reply::Answer { version: socket::VERSION, stdout, stderr, exit_code: exit_code @ (0 | 2) }) => {
            Ok(Asked::Answered(Answer { stdout, stderr, exit_code }))
        }
        Ok(Reply::Stale { version: socket::VERSION }) => Ok(Asked::Stale),
        Ok(_) => Err(Error::Resident("its reply is not one this hook understands".into())),
        Err(_) if reply.is_empty() => Err(Error::Resident("it closed the connection without a reply".into())),
        Err(error) => Err(Error::Resident(format!("its reply is garbled ({error})"))),
    }
}

fn broken(error: &std::io::Error) -> Error {
    Error::Resident(format!("the exchange with it failed ({error})"))
}

/// Starts a resident for `options` in the background: `command` plus
/// `--workflow`, `--db` (both absolute) and `--idle-ms`, its standard
/// streams on /dev/null so it holds nothing of the client's open. Not
/// waited for: if several hook processes start one at once, all but one
/// find the place locked and exit.
pub(crate) fn spawn(options: &Options, spawn: &crate::Spawn) {
    let Some((program, args)) = spawn.command.split_first() else {
        return;
    };
    let Ok(workflow) = std::fs::canonicalize(&options.workflow) else {
        return;
    };
    let idle_ms = u64::try_from(spawn.idle.as_millis()).unwrap_or(u64::MAX);
    // A resident that cannot start costs only speed: this event is decided
    // here either way.
    let _ = std::process::Command::new(program)
        .args(args)
        .arg("--workflow")
        .arg(workflow)
        .arg("--db")
        .arg(socket::store_url(&options.db))
        .arg("--idle-ms")
        .arg(idle_ms.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
