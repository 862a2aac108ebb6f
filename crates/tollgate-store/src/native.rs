//! SQLite transactions on connections of their own (rusqlite, on the same
//! SQLite library as sqlx), not through sqlx's connection worker.
//!
//! sqlx runs every SQLite statement on a worker thread of the connection and
//! hands the answer back through a channel: a round trip of two thread
//! switches per statement, which took as long as the commit's fsync on a
//! 2-core machine (a raw single-row commit through sqlx cost about 2.5× the
//! same commit made directly). Here a transaction's reads are direct calls
//! on the caller's thread (in-memory pages: microseconds), and its writes and
//! `COMMIT` (the fsync) run together on one blocking thread
//! ([`NativeTx::commit`]), so the async threads are never held by the disk.
//!
//! Writers take turns: in this process on an async mutex (no thread blocks
//! on another's transaction); across processes on SQLite's writer lock,
//! `BEGIN IMMEDIATE`, retried without blocking while another process holds
//! it ([`Native::begin_write`]).

use crate::Error;
use crate::batch::Bind;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a writer waits for another process's write transaction (as
/// sqlx's connections are configured: SQLite's `busy_timeout`).
const BUSY_WAIT: Duration = Duration::from_secs(30);

/// Idle connections kept for reuse.
const IDLE_MAX: usize = 8;

/// Connections open at once, at most (as many transactions; more wait).
const OPEN_MAX: usize = 16;

/// Prepared statements kept per connection: the multi-row statements come in
/// power-of-two row counts (`batch.rs`), a few dozen texts in all.
const STATEMENT_CACHE: usize = 256;

/// The SQLite file's direct connections.
pub(crate) struct Native {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Held by this process's write transaction, if one is open.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// One permit a connection in use ([`OPEN_MAX`]).
    open: Arc<tokio::sync::Semaphore>,
    /// Commits block the calling thread in place ([`crate::Store::commit_in_place`]).
    in_place: AtomicBool,
    /// Closed: no new transactions, connections given back are closed.
    closed: AtomicBool,
}

/// What a transaction holds besides its connection, released when it ends.
struct Held {
    /// This process's writer turn (write transactions only).
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// SQLite's "database is locked", for a wait that ran out in this process.
fn busy(message: &str) -> Error {
    let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY);
    Error::Sqlite(rusqlite::Error::SqliteFailure(code, Some(message.to_owned())))
}

impl std::fmt::Debug for Native {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Native").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Native {
    pub(crate) fn new(path: PathBuf) -> Native {
        Native {
            path,
            idle: Mutex::new(Vec::new()),
            writer: Arc::new(tokio::sync::Mutex::new(())),
            open: Arc::new(tokio::sync::Semaphore::new(OPEN_MAX)),
            in_place: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn set_in_place(&self, yes: bool) {
        self.in_place.store(yes, Ordering::Relaxed);
    }

    /// A connection permit, waiting until `deadline` at most; refused once closed.
    async fn permit(&self, deadline: tokio::time::Instant) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(Error::Database(sqlx::Error::PoolClosed));
        }
        match tokio::time::timeout_at(deadline, Arc::clone(&self.open).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(Error::Database(sqlx::Error::PoolClosed)),
            Err(_) => Err(busy("no database connection came free in time")),
        }
    }

    /// An idle connection, or a new one (the file exists and its schema is
    /// current: sqlx opened and migrated it).
    fn connection(&self) -> Result<Connection, Error> {
        if let Some(connection) = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop() {
            return Ok(connection);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let connection = Connection::open_with_flags(&self.path, flags)?;
        connection.busy_timeout(BUSY_WAIT)?;
        // As sqlx's connections: a commit has reached the disk when it
        // returns (the file is in WAL mode already: sqlx set it on open).
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(connection)
    }

    /// Takes back a connection no longer in a transaction; one still in a
    /// transaction (a `ROLLBACK` that failed) is closed, never reused.
    fn give_back(&self, connection: Connection) {
        if !connection.is_autocommit() || self.closed.load(Ordering::Relaxed) {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_MAX {
            idle.push(connection);
        }
    }

    /// Closes the idle connections (those in use close when their
    /// transactions end).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.open.close();
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Opens a write transaction: this process's writer turn, then SQLite's
    /// writer lock (`BEGIN IMMEDIATE`). While another process holds it, the
    /// attempt is repeated on a timer (the async thread is free meanwhile),
    /// for at most [`BUSY_WAIT`] in all (this process's turn included).
    pub(crate) async fn begin_write(self: &Arc<Self>) -> Result<NativeTx, Error> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + BUSY_WAIT;
        let Ok(turn) = tokio::time::timeout_at(deadline, Arc::clone(&self.writer).lock_owned()).await else {
            return Err(busy("another write transaction of this process held the database too long"));
        };
        let permit = self.permit(deadline).await?;
        let connection = self.connection()?;
        let held = Held { _turn: Some(turn), _permit: permit };
        let mut tx = NativeTx { connection: Some(connection), native: Arc::clone(self), held: Some(held) };
        until_free(&mut tx, started, |connection| run(connection, "BEGIN IMMEDIATE")).await?;
        Ok(tx)
    }

    /// Opens a read transaction: its first read fixes the snapshot every
    /// later read sees; it locks nothing and waits for no writer (WAL).
    pub(crate) async fn begin_read(self: &Arc<Self>) -> Result<NativeTx, Error> {
        let started = Instant::now();
        let permit = self.permit(tokio::time::Instant::now() + BUSY_WAIT).await?;
        let connection = self.connection()?;
        let held = Held { _turn: None, _permit: permit };
        let mut tx = NativeTx { connection: Some(connection), native: Arc::clone(self), held: Some(held) };
        // The snapshot is fixed here, by a first read: the one read that can
        // find the database busy (a WAL being recovered after a crash) is
        // waited for on the timer, not in SQLite's busy handler on this thread.
        until_free(&mut tx, started, |connection| {
            run(connection, "BEGIN")?;
            let read =
                connection.prepare_cached("SELECT seq FROM tollgate_audit_head WHERE id = 1").and_then(|mut s| {
                    let mut rows = s.raw_query();
                    rows.next().map(drop)
                });
            if read.is_err() {
                let _ = connection.execute_batch("ROLLBACK");
            }
            read
        })
        .await?;
        Ok(tx)
    }
}

/// Runs `attempt` on `tx`'s connection with SQLite's busy timeout off, and
/// again on a timer while it finds the database busy (another process's
/// writer lock, a WAL being recovered), until [`BUSY_WAIT`] after `started`:
/// the async thread is free meanwhile.
async fn until_free(
    tx: &mut NativeTx,
    started: Instant,
    mut attempt: impl FnMut(&Connection) -> rusqlite::Result<()>,
) -> Result<(), Error> {
    tx.connection()?.busy_timeout(Duration::ZERO)?;
    let mut pause = Duration::from_micros(100);
    let done = loop {
        match attempt(tx.connection()?) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && started.elapsed() < BUSY_WAIT =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            other => break other,
        }
    };
    tx.connection()?.busy_timeout(BUSY_WAIT)?;
    Ok(done?)
}

/// An open transaction on a direct connection. Dropped without
/// [`NativeTx::commit`], it is rolled back.
pub(crate) struct NativeTx {
    /// `None` once committed.
    connection: Option<Connection>,
    native: Arc<Native>,
    /// Released when the transaction has ended (for a commit: once COMMIT returned).
    held: Option<Held>,
}

impl NativeTx {
    fn connection(&mut self) -> Result<&mut Connection, Error> {
        self.connection.as_mut().ok_or_else(|| Error::Read("the transaction has ended".to_owned()))
    }

    /// The first row of `sql` with `binds`, each column read by `read`.
    pub(crate) fn row<T>(
        &mut self,
        sql: &str,
        binds: &[Bind<'_>],
        read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, Error> {
        let mut statement = self.connection()?.prepare_cached(sql)?;
        bind(&mut statement, binds)?;
        let mut rows = statement.raw_query();
        Ok(match rows.next()? {
            Some(row) => Some(read(row)?),
            None => None,
        })
    }

    /// Every row of `sql` with `binds`, each read by `read`.
    pub(crate) fn rows<T>(
        &mut self,
        sql: &str,
        binds: &[Bind<'_>],
        mut read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, Error> {
        let mut statement = self.connection()?.prepare_cached(sql)?;
        bind(&mut statement, binds)?;
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(read(row)?);
        }
        Ok(out)
    }

    /// Runs `write` (the transaction's statements, through the
    /// [`Writer`] it is given) and commits, on a blocking thread: everything
    /// written is on disk when this returns. On any error nothing is kept.
    pub(crate) async fn commit<F>(mut self, write: F) -> Result<(), Error>
    where
        F: FnOnce(&mut Writer<'_>) -> Result<(), Error> + Send + 'static,
    {
        let connection = self.connection.take();
        let native = Arc::clone(&self.native);
        // The writer turn and the connection's permit go with the commit and
        // are released when it has ended, even if this future is dropped
        // while the commit runs on the blocking pool.
        let held = self.held.take();
        let run = move || {
            let _held = held;
            let Some(connection) = connection else {
                return Err(Error::Read("the transaction has ended".to_owned()));
            };
            let outcome = write(&mut Writer { connection: &connection })
                .and_then(|()| run(&connection, "COMMIT").map_err(Error::from));
            if !connection.is_autocommit() {
                // A failed write or COMMIT: nothing of it is kept. (A COMMIT
                // that failed for a full disk was rolled back by SQLite
                // already; this one then fails, and `give_back` closes the
                // connection if it is somehow still in a transaction.)
                let _ = connection.execute_batch("ROLLBACK");
            }
            native.give_back(connection);
            outcome
        };
        // By default the commit is handed to the blocking pool. When asked
        // to ([`crate::Store::commit_in_place`]) and on a multi-threaded
        // runtime, this thread blocks in place instead (its other tasks move
        // to another thread): no hand-over to wait for, a smaller step.
        let in_place = self.native.in_place.load(Ordering::Relaxed)
            && tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let done = if in_place { Ok(tokio::task::block_in_place(run)) } else { tokio::task::spawn_blocking(run).await };
        done.map_err(|e| Error::Read(format!("the commit's thread failed: {e}")))?
    }
}

impl Drop for NativeTx {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            if !connection.is_autocommit() {
                let _ = connection.execute_batch("ROLLBACK");
            }
            self.native.give_back(connection);
        }
    }
}

/// Runs a transaction's write statements ([`NativeTx::commit`]).
pub(crate) struct Writer<'c> {
    connection: &'c Connection,
}

impl Writer<'_> {
    /// Runs `sql` with `binds` (prepared once per connection).
    pub(crate) fn execute(&mut self, sql: &str, binds: &[Bind<'_>]) -> Result<(), Error> {
        let mut statement = self.connection.prepare_cached(sql)?;
        bind(&mut statement, binds)?;
        statement.raw_execute()?;
        Ok(())
    }
}

/// Runs a statement of no values and no rows, prepared once per connection
/// (`execute_batch` would parse it every time).
fn run(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.raw_execute().map(drop)
}

fn bind(statement: &mut rusqlite::CachedStatement<'_>, binds: &[Bind<'_>]) -> Result<(), Error> {
    for (index, value) in binds.iter().enumerate() {
        let index = index + 1;
        match *value {
            Bind::Text(text) => statement.raw_bind_parameter(index, text)?,
            Bind::OptionalText(text) => statement.raw_bind_parameter(index, text)?,
            Bind::Int(n) => statement.raw_bind_parameter(index, n)?,
        }
    }
    Ok(())
}
