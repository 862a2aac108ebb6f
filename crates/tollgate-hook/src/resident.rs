//! The resident process: one per (user, workflow file, store), holding the
//! compiled workflow and one engine, answering hook processes over its
//! socket so they need not compile the workflow and open the store each.
//!
//! It answers only under the text the asking hook process read (by
//! SHA-256): when the file's text is not the one it holds, it reads the
//! file again; if that is still not the text the hook read, it says so
//! ("stale") and the hook decides itself. So it never decides under
//! anything but the file's current text. Every event goes through the same
//! `gate::dispatch` as in a hook process, journaled and audited the same.
//! It leaves after `idle` without a request, when its workflow file or its
//! SQLite store is gone, and reopens the store when the file under its path
//! is no longer the one it opened.

use crate::gate::{self, Current};
use crate::socket::{self, Place, Reply, Request};
use crate::{Client, Error, Kind, Options, event};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;
use tollgate_engine::{Engine, WorkflowHandle, workflow_hash};

/// How often a resident checks that its files are still there.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(2);

/// Serves `options` (its client is unused: each request names its own)
/// until `idle` passes without a request. Returns at once, `Ok`, if
/// another resident serves the same place. `ready` is called with the
/// socket's path once it listens.
pub fn serve(options: Options, idle: Duration, ready: impl FnOnce(&Path)) -> Result<(), Error> {
    // Out of the client's session and process group: a client that kills
    // its hook's group on exit does not take the resident with it.
    let _ = nix::unistd::setsid();
    let place = socket::place(&options)?;
    let Some(lock) = lock(&place)? else {
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| Error::Internal(format!("the runtime would not start ({error})")))?;
    let outcome = runtime.block_on(run(options, idle, &place, ready));
    // Whoever finds the socket gone from here on starts another resident,
    // which may take the lock once this one lets go of it.
    drop(lock);
    outcome
}

/// Takes the place's lock, or `None` when another resident holds it.
fn lock(place: &Place) -> Result<Option<nix::fcntl::Flock<std::fs::File>>, Error> {
    use nix::fcntl::{Flock, FlockArg};
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&place.lock)
        .map_err(|error| Error::Resident(format!("cannot open {} ({error})", place.lock.display())))?;
    let mut held = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(held) => held,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(None),
        Err((_, error)) => return Err(Error::Resident(format!("cannot lock {} ({error})", place.lock.display()))),
    };
    // Who holds it, for people and tests.
    let _ = held.set_len(0);
    let _ = writeln!(held, "{}", std::process::id());
    Ok(Some(held))
}

/// What the resident holds.
struct Resident {
    options: Options,
    /// The store and the workflow it answers under.
    state: Mutex<State>,
    /// Requests being answered.
    busy: AtomicUsize,
}

struct State {
    engine: Arc<Engine>,
    /// Which file the store was opened on.
    opened: Option<FileId>,
    /// The workflow registered in that store, if any yet.
    held: Option<Arc<Held>>,
}

struct Held {
    text: String,
    handle: WorkflowHandle,
}

/// An SQLite file's identity: a file replaced or wrecked under the same
/// path is another store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    device: u64,
    inode: u64,
    shm_inode: Option<u64>,
    header_ok: bool,
}

fn file_id(db: &str) -> Option<FileId> {
    use std::io::Read;
    if db.contains("://") {
        return None;
    }
    let path = db.strip_prefix("sqlite:").unwrap_or(db);
    let meta = std::fs::metadata(path).ok()?;
    let shm_inode = std::fs::metadata(format!("{path}-shm")).ok().map(|meta| meta.ino());
    let mut header = [0u8; 16];
    let header_ok = std::fs::File::open(path).and_then(|mut file| file.read_exact(&mut header)).is_ok()
        && &header == b"SQLite format 3\0";
    Some(FileId { device: meta.dev(), inode: meta.ino(), shm_inode, header_ok })
}

async fn run(options: Options, idle: Duration, place: &Place, ready: impl FnOnce(&Path)) -> Result<(), Error> {
    let engine = gate::open(&options).await?;
    let opened = file_id(&options.db);
    let state = State { engine: Arc::new(engine), opened, held: None };
    let resident = Arc::new(Resident { options, state: Mutex::new(state), busy: AtomicUsize::new(0) });
    // Compiled before the first request, if the file reads and compiles.
    if let Ok(text) = gate::read_workflow(&resident.options) {
        let _ = resident.ready(&workflow_hash(&text)).await;
    }
    // A socket left by a resident that died: the lock says nobody serves it.
    let _ = std::fs::remove_file(&place.socket);
    let listener = UnixListener::bind(&place.socket)
        .map_err(|error| Error::Resident(format!("cannot listen on {} ({error})", place.socket.display())))?;
    ready(&place.socket);
    let mut last = Instant::now();
    loop {
        let tick = tokio::time::sleep(HOUSEKEEPING_EVERY.min(idle));
        tokio::select! {
            accepted = listener.accept() => {
                last = Instant::now();
                if let Ok((stream, _)) = accepted {
                    resident.busy.fetch_add(1, Ordering::SeqCst);
                    let resident = Arc::clone(&resident);
                    tokio::spawn(async move {
                        resident.connection(stream).await;
                        resident.busy.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            }
            () = tick => {
                let busy = resident.busy.load(Ordering::SeqCst) > 0;
                if busy {
                    last = Instant::now();
                }
                if !busy && (last.elapsed() >= idle || resident.orphaned()) {
                    break;
                }
            }
        }
    }
    // New hook processes find no socket and start another resident; those
    // that connected already are still answered.
    let _ = std::fs::remove_file(&place.socket);
    while let Ok(Ok((stream, _))) = tokio::time::timeout(Duration::ZERO, listener.accept()).await {
        resident.busy.fetch_add(1, Ordering::SeqCst);
        resident.connection(stream).await;
        resident.busy.fetch_sub(1, Ordering::SeqCst);
    }
    let engine = Arc::clone(&resident.state.lock().await.engine);
    engine.close().await;
    Ok(())
}

impl Resident {
    /// Its workflow file or its SQLite store is gone: nobody can mean it.
    fn orphaned(&self) -> bool {
        let db = &self.options.db;
        !self.options.workflow.exists()
            || (!db.contains("://") && !Path::new(db.strip_prefix("sqlite:").unwrap_or(db)).exists())
    }

    /// One connection: the request read, answered, the reply written.
    /// Nothing is written if the request cannot be read: the hook process
    /// takes a closed connection for a refusal.
    async fn connection(&self, mut stream: UnixStream) {
        let ours = nix::unistd::getuid().as_raw();
        match stream.peer_cred() {
            Ok(peer) if peer.uid() == ours => {}
            _ => return,
        }
        let limit = socket::message_bytes_max(&self.options);
        let mut bytes = Vec::new();
        let mut limited = (&mut stream).take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1));
        if limited.read_to_end(&mut bytes).await.is_err() || bytes.len() > limit {
            return;
        }
        let Ok(request) = serde_json::from_slice::<Request>(&bytes) else {
            return;
        };
        if request.version != socket::VERSION {
            return;
        }
        let reply = self.reply(request).await;
        if let Ok(bytes) = serde_json::to_vec(&reply) {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
    }

    async fn reply(&self, request: Request) -> Reply {
        let client = Client::from(request.client);
        let event = match event::parse(request.event.as_bytes()) {
            Ok(event) => event,
            Err(error) => return Reply::answer(crate::answer::refusal(client, Kind::Unknown, &error.to_string())),
        };
        let kind = event::kind_of(&event);
        let (engine, held) = match self.ready(&request.workflow_sha256).await {
            Ok(Some(ready)) => ready,
            Ok(None) => return Reply::Stale { version: socket::VERSION },
            Err(error) => return Reply::answer(crate::answer::refusal(client, kind, &error.to_string())),
        };
        let current = Current {
            text: &held.text,
            hash: held.handle.hash.clone(),
            file: self.options.workflow.display().to_string(),
            registered: Some(&held.handle),
        };
        let answered = gate::dispatch(client, &engine, &current, &event);
        // Past the hook's deadline nobody reads the answer: no work starts,
        // and work under way stops (an open transaction rolls back) rather
        // than decide unheard.
        let left = request.deadline_unix_ms.saturating_sub(socket::unix_ms());
        if left == 0 {
            return Reply::answer(crate::answer::refusal(
                client,
                kind,
                "the hook's deadline passed before the resident Tollgate process could start",
            ));
        }
        let answer = match tokio::time::timeout(Duration::from_millis(left), answered).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => crate::answer::refusal(client, kind, &error.to_string()),
            Err(_) => crate::answer::refusal(client, kind, "the resident Tollgate process could not decide in time"),
        };
        Reply::answer(answer)
    }

    /// The engine and the workflow compiled from the text whose hash is
    /// `hash`, registered in its store; `None` if the file's text is
    /// another. The store is reopened first if its file is no longer the
    /// one opened (replaced, or wrecked in place): a hook process would open
    /// what is there now, and so does the resident.
    async fn ready(&self, hash: &str) -> Result<Option<(Arc<Engine>, Arc<Held>)>, Error> {
        let mut state = self.state.lock().await;
        let now = file_id(&self.options.db);
        if now != state.opened {
            let engine = Arc::new(gate::open(&self.options).await?);
            state.engine.close().await;
            *state = State { engine, opened: now, held: None };
        }
        if let Some(held) = state.held.as_ref().filter(|held| held.handle.hash == hash) {
            return Ok(Some((Arc::clone(&state.engine), Arc::clone(held))));
        }
        let text = gate::read_workflow(&self.options)?;
        if workflow_hash(&text) != hash {
            return Ok(None);
        }
        let file = self.options.workflow.display().to_string();
        let handle = state.engine.register_workflow(&text, &file).await.map_err(gate::workflow_error)?;
        let held = Arc::new(Held { text, handle });
        state.held = Some(Arc::clone(&held));
        Ok(Some((Arc::clone(&state.engine), held)))
    }
}
