//! Tollgate's durable store: sessions, their journals and checkpoints, the
//! workflows they run under, and the hash-chained audit log.
//!
//! One interface, two backends: SQLite (embedded default: one file, WAL,
//! `synchronous=FULL`, so a commit is on disk when it returns) and
//! PostgreSQL (several Tollgate processes share one database). Both run the
//! same migrations and the same conformance suite (`tests/store/`).
//!
//! Everything that changes a session happens inside a [`SessionTx`]: it
//! locks the session (PostgreSQL: `SELECT … FOR UPDATE` on its row; SQLite:
//! `BEGIN IMMEDIATE`, the database's writer lock), so decisions on one
//! session are serialised across processes, and its journal entries, audit
//! records and checkpoint commit together or not at all. On SQLite a
//! transaction runs on a direct connection of its own (`native.rs`:
//! rusqlite, the same SQLite library), not through sqlx's per-connection
//! worker thread; sqlx's pool serves migrations and plain reads.

mod audit;
mod audit_postgres;
mod audit_sqlite;
mod batch;
mod handoffs;
mod native;
mod packed;
mod schema;
#[cfg(feature = "testing")]
pub mod testing;
mod tokens;
mod tx;

pub use audit::{AuditHead, AuditProblem, AuditRecord, HeadSigner, VerifyReport, record_hash, verify_records};
pub use handoffs::{HandoffQuery, HandoffRow, WaitingHandoffs};
pub use schema::SCHEMA_VERSION;
pub use tokens::TokenRow;
pub use tx::SessionTx;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgPool, Postgres, Row, SqlitePool, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// What can go wrong with the store. Every variant says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database URL or path cannot be used.
    #[error("cannot use database '{url}': {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why.
        reason: String,
    },
    /// The database cannot be opened or reached.
    #[error("cannot open database '{url}': {reason}")]
    Open {
        /// The URL as given.
        url: String,
        /// Why.
        reason: String,
    },
    /// The database was written by a newer Tollgate.
    #[error(
        "the database has schema version {found}, newer than this Tollgate's {supported}; upgrade Tollgate (nothing was changed)"
    )]
    NewerSchema {
        /// The database's schema version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// No session with this id.
    #[error("no session '{0}'")]
    NoSession(String),
    /// A session with this id exists already.
    #[error("session '{0}' exists already")]
    SessionExists(String),
    /// Stored data does not have the shape this build writes.
    #[error("stored data is damaged: {0}")]
    Damaged(String),
    /// The database could not be read (outside sqlx: `audit verify` on SQLite).
    #[error("{0}")]
    Read(String),
    /// A write asked of a transaction that only reads.
    #[error("{0}")]
    ReadOnly(String),
    /// Text holding a NUL character, refused before it reaches the
    /// database (PostgreSQL cannot store one; SQLite's C interface would
    /// cut the text there).
    #[error("{0} holds a NUL character, which cannot be stored")]
    Nul(String),
    /// The database reported an error (disk full, connection lost, ...).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// SQLite reported an error in a transaction (disk full, ...).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Refuses `text` (named `what`) if it holds a NUL character.
pub(crate) fn refuse_nul(what: &str, text: &str) -> Result<(), Error> {
    if text.as_bytes().contains(&0) { Err(Error::Nul(what.to_owned())) } else { Ok(()) }
}

impl Error {
    /// Whether the database itself failed (as opposed to a refusal such as
    /// a missing session): a transaction it happened in is broken. Match on
    /// this rather than on the variants, which differ by backend.
    pub fn is_database(&self) -> bool {
        matches!(self, Error::Database(_) | Error::Sqlite(_))
    }
}

/// A session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's id.
    pub id: String,
    /// SHA-256 of the workflow text the session runs under.
    pub workflow_hash: String,
    /// The workflow's name.
    pub workflow_name: String,
    /// The workflow's version.
    pub workflow_version: i64,
    /// The parent session, for investigations.
    pub parent_id: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// The sequence number of the last journal entry (0: none yet).
    pub last_seq: i64,
    /// The tenant the session belongs to.
    pub tenant: String,
}

/// A session to create.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// The session's id (unique).
    pub id: String,
    /// SHA-256 of the workflow text (stored with [`Store::put_workflow`]).
    pub workflow_hash: String,
    /// The workflow's name.
    pub workflow_name: String,
    /// The workflow's version.
    pub workflow_version: i64,
    /// The parent session, for investigations.
    pub parent_id: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// The tenant the session belongs to.
    pub tenant: String,
}

/// One entry of a session's journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    /// Position in the session's journal, from 1.
    pub seq: i64,
    /// What happened: `decision`, `result`, ...
    pub kind: String,
    /// The tool call it concerns, if any.
    pub call_id: Option<String>,
    /// The event, as JSON text.
    pub body: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
}

/// A journal entry to append (its sequence number is assigned on append).
#[derive(Clone, Debug)]
pub struct NewEntry {
    /// What happened.
    pub kind: String,
    /// The tool call it concerns, if any.
    pub call_id: Option<String>,
    /// The event, as JSON text.
    pub body: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
}

/// An audit record to append; the store chains it.
#[derive(Clone, Debug)]
pub struct NewAudit {
    /// `decision`, `result`, `handoff.resolved`, ...
    pub kind: String,
    /// The record, as JSON text.
    pub body: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
}

/// A cached fold of a session's journal up to `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last journal entry folded in.
    pub seq: i64,
    /// The state, as JSON text.
    pub state: String,
}

/// A workflow as stored: its text, so a session can be reloaded under the
/// very workflow it ran with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredWorkflow {
    /// SHA-256 of `text`, hex.
    pub hash: String,
    /// The workflow's name.
    pub name: String,
    /// The workflow's version.
    pub version: i64,
    /// The workflow file's text.
    pub text: String,
}

/// The store: one database, SQLite or PostgreSQL. Which one, and how it is
/// reached, is the store's own business: callers see the same operations.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    location: Arc<Location>,
    /// Signs the audit head at every commit that moves it, if set.
    signer: Arc<std::sync::RwLock<Option<Arc<dyn HeadSigner>>>>,
}

/// The database behind a [`Store`].
#[derive(Clone, Debug)]
pub(crate) enum Backend {
    /// An SQLite file.
    Sqlite(SqliteStore),
    /// A PostgreSQL database.
    Postgres(PgPool),
}

/// Where a store's data lives, for tools that measure or copy it beside the
/// store (a benchmark's raw commit on the same file or server).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL URL, as given to [`Store::open`].
    Postgres(String),
}

/// An SQLite store: sqlx's pool (migrations, reads outside transactions)
/// and the direct connections its transactions run on (`native.rs`).
#[derive(Clone, Debug)]
pub(crate) struct SqliteStore {
    pub(crate) pool: SqlitePool,
    native: Arc<native::Native>,
}

/// `SELECT` of a session's columns, followed by `$rest`.
macro_rules! select_sessions {
    ($rest:literal) => {
        concat!(
            "SELECT id, workflow_hash, workflow_name, workflow_version, parent_id, created_ms, last_seq, audit_seq, \
             audit_hash, tenant FROM tollgate_sessions",
            $rest
        )
    };
}

/// `SELECT` of a session's columns.
pub(crate) const SELECT_SESSIONS: &str = select_sessions!("");

/// Runs `$body` with `$c` bound to the backend's executor.
macro_rules! on_pool {
    ($store:expr, $c:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite(SqliteStore { pool: $c, .. }) => $body,
            Backend::Postgres($c) => $body,
        }
    };
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema
    /// up to date. `url` is a `postgres://` / `postgresql://` URL, or an
    /// SQLite file as a path or `sqlite:` URL.
    pub async fn open(url: &str) -> Result<Store, Error> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| Error::BadUrl { url: url.to_owned(), reason: e.to_string() })?;
            // One direct connection first: a wrong host, port or database is
            // reported at once instead of after the pool's retries time out.
            let mut probe = sqlx::PgConnection::connect_with(&options)
                .await
                .map_err(|e| Error::Open { url: url.to_owned(), reason: e.to_string() })?;
            let durable = durability(&mut probe).await;
            drop(probe.close().await);
            if let Some(reason) = durable.map_err(|e| Error::Open { url: url.to_owned(), reason: e.to_string() })? {
                return Err(Error::Open { url: url.to_owned(), reason });
            }
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                // A decision is heard only once it is on disk: every
                // connection commits synchronously, whatever the server's,
                // role's or URL's default (`synchronous_commit = off` would
                // acknowledge a commit a crash can still lose).
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        sqlx::query("SET synchronous_commit TO on").execute(&mut *conn).await?;
                        Ok(())
                    })
                })
                .connect_with(options)
                .await
                .map_err(|e| Error::Open { url: url.to_owned(), reason: e.to_string() })?;
            (Backend::Postgres(pool), Location::Postgres(url.to_owned()))
        } else {
            let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
            if path.is_empty() || path.contains("://") {
                return Err(Error::BadUrl {
                    url: url.to_owned(),
                    reason: "expected a postgres:// URL or the path of an SQLite file".to_owned(),
                });
            }
            let options = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a commit has reached the disk when it returns, WAL or not.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                // No ping before each transaction: a file has no connection
                // to go stale, and the ping is a round trip to sqlx's worker
                // thread (two thread switches) on every commit.
                .test_before_acquire(false)
                // A transaction whose COMMIT failed because SQLite ended it
                // itself (a full disk: SQLITE_FULL rolls back) cannot be
                // rolled back again, so sqlx keeps counting it as open and
                // refuses every later BEGIN on that connection. Such a
                // connection is closed when it comes back, not reused. (A
                // transaction merely dropped is rolled back by the
                // connection's worker before its next command: the round
                // trip lets that happen first.)
                .after_release(|conn, _| {
                    Box::pin(async move {
                        use sqlx::Connection;
                        if !conn.is_in_transaction() {
                            return Ok(true);
                        }
                        sqlx::query("SELECT 1").execute(&mut *conn).await?;
                        Ok(!conn.is_in_transaction())
                    })
                })
                .connect_with(options)
                .await
                .map_err(|e| open_error(url, &e))?;
            let native = Arc::new(native::Native::new(pool.connect_options().get_filename().to_owned()));
            let path = pool.connect_options().get_filename().to_owned();
            (Backend::Sqlite(SqliteStore { pool, native }), Location::Sqlite(path))
        };
        let (backend, location) = store;
        let store = Store { backend, location: Arc::new(location), signer: Arc::default() };
        schema::migrate(&store).await.map_err(|e| match e {
            Error::Database(db) => open_error(url, &db),
            other => other,
        })?;
        Ok(store)
    }

    /// SQLite: whether a commit blocks the calling thread in place
    /// (`tokio::task::block_in_place`) instead of being handed to the
    /// blocking pool and awaited. In place saves the hand-over (about a
    /// third of an engine step on a 2-core machine) but needs the
    /// multi-threaded runtime and no `LocalSet` around the call (tokio
    /// panics there); on another runtime it is ignored. Off by default.
    /// PostgreSQL: no effect.
    pub fn commit_in_place(&self, yes: bool) {
        if let Backend::Sqlite(sqlite) = &self.backend {
            sqlite.native.set_in_place(yes);
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Signs the audit head with `signer` at every commit that moves it, from
    /// now on, in every clone of this store.
    pub fn sign_heads(&self, signer: Arc<dyn HeadSigner>) {
        *self.signer.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(signer);
    }

    pub(crate) fn head_signer(&self) -> Option<Arc<dyn HeadSigner>> {
        self.signer.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Where the data lives: the SQLite file or the PostgreSQL URL.
    pub fn location(&self) -> &Location {
        &self.location
    }

    pub(crate) fn backend_ref(&self) -> &Backend {
        &self.backend
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        if let Backend::Sqlite(sqlite) = &self.backend {
            sqlite.native.close();
        }
        on_pool!(self, pool => pool.close().await)
    }

    /// Stores a workflow's text under its hash (a no-op if it is there).
    pub async fn put_workflow(&self, workflow: &StoredWorkflow) -> Result<(), Error> {
        refuse_nul("a workflow's name", &workflow.name)?;
        refuse_nul("a workflow's text", &workflow.text)?;
        const SQL: &str = "INSERT INTO tollgate_workflows (hash, name, version, text) VALUES ($1, $2, $3, $4) \
                           ON CONFLICT (hash) DO NOTHING";
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(&workflow.hash)
                .bind(&workflow.name)
                .bind(workflow.version)
                .bind(&workflow.text)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The workflow stored under `hash`.
    pub async fn workflow(&self, hash: &str) -> Result<Option<StoredWorkflow>, Error> {
        const SQL: &str = "SELECT hash, name, version, text FROM tollgate_workflows WHERE hash = $1";
        let row = on_pool!(self, pool => sqlx::query(SQL).bind(hash).fetch_optional(pool).await?
        .map(|row| -> Result<StoredWorkflow, sqlx::Error> {
            Ok(StoredWorkflow {
                hash: row.try_get("hash")?,
                name: row.try_get("name")?,
                version: row.try_get("version")?,
                text: row.try_get("text")?,
            })
        }));
        Ok(row.transpose()?)
    }

    /// Creates a session. Fails if the id is taken.
    pub async fn create_session(&self, session: &NewSession) -> Result<(), Error> {
        for (what, text) in [
            ("a session id", &session.id),
            ("a tenant", &session.tenant),
            ("a workflow's name", &session.workflow_name),
        ] {
            refuse_nul(what, text)?;
        }
        const SQL: &str = "INSERT INTO tollgate_sessions \
            (id, workflow_hash, workflow_name, workflow_version, parent_id, created_ms, last_seq, audit_seq, audit_hash, \
            tenant) VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7, $8) ON CONFLICT (id) DO NOTHING";
        let inserted = on_pool!(self, pool => sqlx::query(SQL)
            .bind(&session.id)
            .bind(&session.workflow_hash)
            .bind(&session.workflow_name)
            .bind(session.workflow_version)
            .bind(&session.parent_id)
            .bind(session.created_ms)
            .bind(audit::GENESIS)
            .bind(&session.tenant)
            .execute(pool)
            .await?
            .rows_affected());
        if inserted == 0 {
            return Err(Error::SessionExists(session.id.clone()));
        }
        Ok(())
    }

    /// One session.
    pub async fn session(&self, id: &str) -> Result<Option<SessionInfo>, Error> {
        let sql = select_sessions!(" WHERE id = $1");
        let row = on_pool!(self, pool => sqlx::query(sql).bind(id).fetch_optional(pool).await?
            .map(|row| session_info(&row)));
        Ok(row.transpose()?)
    }

    /// Sessions, newest first, at most `limit`.
    pub async fn sessions(&self, limit: i64) -> Result<Vec<SessionInfo>, Error> {
        let sql = select_sessions!(" ORDER BY created_ms DESC, id LIMIT $1");
        let rows = on_pool!(self, pool => sqlx::query(sql).bind(limit).fetch_all(pool).await?
            .iter().map(session_info).collect::<Result<Vec<_>, _>>());
        Ok(rows?)
    }

    /// A session's whole journal, in order.
    pub async fn journal(&self, id: &str) -> Result<Vec<JournalEntry>, Error> {
        let rows = on_pool!(self, pool => sqlx::query(SELECT_JOURNAL_AFTER).bind(id).bind(0i64).fetch_all(pool).await?
            .iter().map(journal_entry).collect::<Result<Vec<_>, _>>());
        Ok(rows?)
    }

    /// Up to `limit` entries of a session's journal numbered above `after`, in order.
    pub async fn journal_page(&self, id: &str, after: i64, limit: i64) -> Result<Vec<JournalEntry>, Error> {
        let rows = on_pool!(self, pool => sqlx::query(SELECT_JOURNAL_PAGE).bind(id).bind(after).bind(limit).fetch_all(pool).await?
            .iter().map(journal_entry).collect::<Result<Vec<_>, _>>());
        Ok(rows?)
    }

    /// A session's checkpoint, if one was written.
    pub async fn checkpoint(&self, id: &str) -> Result<Option<Checkpoint>, Error> {
        let row = on_pool!(self, pool => sqlx::query(SELECT_CHECKPOINT).bind(id).fetch_optional(pool).await?
            .map(|row| checkpoint_row(&row)));
        Ok(row.transpose()?)
    }

    /// Up to `limit` audit records with a sequence number above `after`, in order.
    pub async fn audit_records(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>, Error> {
        const SQL: &str = "SELECT seq, session_id, session_seq, kind, body, at_ms, prev_hash, session_prev_hash, hash \
                           FROM tollgate_audit WHERE seq > $1 ORDER BY seq LIMIT $2";
        let rows = on_pool!(self, pool => sqlx::query(SQL).bind(after).bind(limit).fetch_all(pool).await?
            .iter().map(audit::record_from_row).collect::<Result<Vec<_>, _>>());
        Ok(rows?)
    }

    /// The head of the global audit chain: the last record's sequence number and hash.
    pub async fn audit_head(&self) -> Result<AuditHead, Error> {
        const SQL: &str = "SELECT seq, hash, signer, signature FROM tollgate_audit_head WHERE id = 1";
        let head = on_pool!(self, pool => {
            let row = sqlx::query(SQL).fetch_one(pool).await?;
            AuditHead {
                seq: row.try_get("seq")?,
                hash: row.try_get("hash")?,
                signer: row.try_get("signer")?,
                signature: row.try_get("signature")?,
            }
        });
        Ok(head)
    }

    /// Checks the whole audit log: every record's hash, both chains (global
    /// and per session), and that its end is the head the store wrote
    /// (nothing removed from the end, nothing appended past it). The head
    /// and the records are read from one snapshot, so a log being written
    /// meanwhile is checked exactly as it stood at that moment.
    ///
    /// SQLite: read straight from the file in one read transaction, on a
    /// thread of its own while another hashes (`audit_sqlite.rs`).
    /// PostgreSQL: a `REPEATABLE READ` transaction exports its snapshot and
    /// reads the head; the records are read in packed chunks (one row each)
    /// on other connections that import that snapshot, [`audit::CHUNKS_AHEAD`]
    /// at once while the chunk before them is hashed. A chunk's start is its
    /// predecessor's last record, which an intact log numbers without gaps,
    /// so the next start is guessed as this one plus a chunk; when the guess
    /// is wrong (a gap, the end), the reads ahead are dropped and read again
    /// from where the chunk really ended.
    pub async fn verify_audit(&self) -> Result<VerifyReport, Error> {
        let pool = match &self.backend {
            Backend::Sqlite(SqliteStore { pool, .. }) => {
                let path = pool.connect_options().get_filename().to_owned();
                return tokio::task::spawn_blocking(move || audit_sqlite::verify(&path))
                    .await
                    .map_err(|e| Error::Read(format!("verifying the audit log failed: {e}")))?;
            }
            Backend::Postgres(pool) => pool,
        };
        let mut lead = pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
        let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()").fetch_one(&mut *lead).await?;
        // The snapshot's name goes into SQL text (SET TRANSACTION SNAPSHOT
        // takes no parameters): only the characters PostgreSQL names them with.
        if snapshot.is_empty() || !snapshot.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(Error::Damaged(format!("the server named its snapshot {snapshot:?}")));
        }
        let row = sqlx::query("SELECT seq, hash, signer, signature FROM tollgate_audit_head WHERE id = 1")
            .fetch_one(&mut *lead)
            .await?;
        let head = AuditHead {
            seq: row.try_get("seq")?,
            hash: row.try_get("hash")?,
            signer: row.try_get("signer")?,
            signature: row.try_get("signature")?,
        };
        let mut verifier = audit::Verifier::default();
        // The exporting transaction stays open while the chunks are read.
        audit_postgres::feed(pool, &snapshot, &mut verifier).await?;
        lead.commit().await?;
        Ok(verifier.finish(&head))
    }

    /// Locks session `id` for changes (waiting for any other holder, in this
    /// process or another) and opens the transaction its changes go in.
    pub async fn lock_session(&self, id: &str) -> Result<SessionTx, Error> {
        let mut tx = self.begin().await?;
        tx.lock(id).await?;
        Ok(tx)
    }

    /// Opens a transaction that reads session `id` (its row, checkpoint,
    /// journal, calls) from one consistent snapshot without locking it:
    /// writers in this process or another are not held up (SQLite: a
    /// deferred read transaction, never the writer lock; PostgreSQL:
    /// `REPEATABLE READ, READ ONLY`, no row lock). Appending to it is refused.
    pub async fn snapshot(&self, id: &str) -> Result<SessionTx, Error> {
        let inner = match &self.backend {
            Backend::Sqlite(sqlite) => TxInner::Sqlite(sqlite.native.begin_read().await?),
            Backend::Postgres(pool) => {
                TxInner::Postgres(pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?)
            }
        };
        let mut tx = SessionTx::snapshot(inner);
        tx.lock(id).await?;
        Ok(tx)
    }

    /// Opens a transaction in which several sessions can be locked and
    /// changed, committed together (group commit: one durable write for
    /// many decisions). On SQLite it holds the writer lock from the start.
    pub async fn begin(&self) -> Result<SessionTx, Error> {
        let inner = match &self.backend {
            Backend::Sqlite(sqlite) => TxInner::Sqlite(sqlite.native.begin_write().await?),
            Backend::Postgres(pool) => TxInner::Postgres(pool.begin().await?),
        };
        Ok(SessionTx::new(inner).signed_by(self.head_signer()))
    }
}

pub(crate) fn session_info<R: Row>(row: &R) -> Result<SessionInfo, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(SessionInfo {
        id: row.try_get("id")?,
        workflow_hash: row.try_get("workflow_hash")?,
        workflow_name: row.try_get("workflow_name")?,
        workflow_version: row.try_get("workflow_version")?,
        parent_id: row.try_get("parent_id")?,
        created_ms: row.try_get("created_ms")?,
        last_seq: row.try_get("last_seq")?,
        tenant: row.try_get("tenant")?,
    })
}

pub(crate) const SELECT_JOURNAL_AFTER: &str = "SELECT seq, kind, call_id, body, at_ms FROM tollgate_journal \
                                    WHERE session_id = $1 AND seq > $2 ORDER BY seq";
const SELECT_JOURNAL_PAGE: &str = "SELECT seq, kind, call_id, body, at_ms FROM tollgate_journal \
                                   WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
pub(crate) const SELECT_CHECKPOINT: &str = "SELECT seq, state FROM tollgate_checkpoints WHERE session_id = $1";

pub(crate) fn checkpoint_row<R: Row>(row: &R) -> Result<Checkpoint, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Checkpoint { seq: row.try_get("seq")?, state: row.try_get("state")? })
}

pub(crate) fn journal_entry<R: Row>(row: &R) -> Result<JournalEntry, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(JournalEntry {
        seq: row.try_get("seq")?,
        kind: row.try_get("kind")?,
        call_id: row.try_get("call_id")?,
        body: row.try_get("body")?,
        at_ms: row.try_get("at_ms")?,
    })
}

pub(crate) enum TxInner {
    Sqlite(native::NativeTx),
    Postgres(Transaction<'static, Postgres>),
}

/// A store that cannot be opened, saying what an SQLite I/O error or a full
/// database most likely means.
fn open_error(url: &str, error: &sqlx::Error) -> Error {
    // SQLite's primary result codes: 10 (an I/O error: no room even for the
    // WAL index, say) and 13 (database or disk is full).
    let code = error.as_database_error().and_then(|e| e.code()).and_then(|code| code.parse::<i64>().ok());
    let hint = match code.map(|code| code & 0xff) {
        Some(10 | 13) => " (the disk holding the database may be full, or not writable)",
        _ => "",
    };
    Error::Open { url: url.to_owned(), reason: format!("{error}{hint}") }
}

/// Why a PostgreSQL server's commits would not be durable, if they would
/// not: `fsync = off` (the server may lose committed data in a crash) is
/// refused; `synchronous_commit` is set on each connection of the store.
async fn durability(conn: &mut sqlx::PgConnection) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT current_setting('fsync') AS fsync").fetch_one(&mut *conn).await?;
    let fsync: String = row.try_get("fsync")?;
    Ok((fsync != "on").then(|| {
        format!(
            "the server runs with fsync = {fsync}, so a commit it acknowledges can be lost in a crash; \
             Tollgate needs durable commits (set fsync = on)"
        )
    }))
}
