//! Migrations: they ship with the code and run when a store is opened.
//! Each step runs once, in order, inside one transaction that also records
//! the new version; several processes opening one database at once take
//! turns (PostgreSQL: an advisory lock; SQLite: the writer lock).

use crate::{Error, Store, audit};
use sqlx::Row;

/// The newest schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 4;

/// One migration: its statements on both backends, then SQLite's own.
struct Migration {
    both: &'static [&'static str],
    sqlite: &'static [&'static str],
}

/// Migrations; `MIGRATIONS[n]` takes the schema from version n to n+1.
const MIGRATIONS: &[Migration] = &[
    Migration { both: V1, sqlite: &[] },
    // SQLite: the audit log keyed by its table's own row id. A `BIGINT
    // PRIMARY KEY` is a second B-tree beside the table: every record written
    // dirtied one more page (the commit's fsync grows with its pages), and
    // verify read every record through it. The records are copied in order
    // of their numbers, unchanged. (PostgreSQL: nothing to do.)
    Migration {
        both: &[],
        sqlite: &[
            "CREATE TABLE tollgate_audit_v2 (
                seq INTEGER PRIMARY KEY,
                session_id TEXT NOT NULL,
                session_seq BIGINT NOT NULL,
                kind TEXT NOT NULL,
                body TEXT NOT NULL,
                at_ms BIGINT NOT NULL,
                prev_hash TEXT NOT NULL,
                session_prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL
            )",
            "INSERT INTO tollgate_audit_v2 (seq, session_id, session_seq, kind, body, at_ms, prev_hash, \
             session_prev_hash, hash) SELECT seq, session_id, session_seq, kind, body, at_ms, prev_hash, \
             session_prev_hash, hash FROM tollgate_audit ORDER BY seq",
            "DROP TABLE tollgate_audit",
            "ALTER TABLE tollgate_audit_v2 RENAME TO tollgate_audit",
        ],
    },
    // Handoffs as work items and who may do what: every session belongs to
    // a tenant (sessions from before belong to `default`); the handoff queue
    // is an index of the handoffs the journals hold, kept in the same
    // transactions; API tokens are stored by the SHA-256 of their secret.
    Migration { both: V3, sqlite: &[] },
    // The audit head signed with a key the database does not hold (by the
    // writers that have it): who signed it and the signature.
    Migration {
        both: &[
            "ALTER TABLE tollgate_audit_head ADD COLUMN signer TEXT",
            "ALTER TABLE tollgate_audit_head ADD COLUMN signature TEXT",
        ],
        sqlite: &[],
    },
];

/// Version 3, the same SQL on both backends.
const V3: &[&str] = &[
    "ALTER TABLE tollgate_sessions ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'",
    "CREATE TABLE tollgate_handoffs (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        session_id TEXT NOT NULL REFERENCES tollgate_sessions (id),
        call_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        status TEXT NOT NULL,
        urgency TEXT NOT NULL,
        urgency_rank BIGINT NOT NULL,
        customer_id TEXT,
        claimed_by TEXT,
        consumed_by TEXT,
        created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL,
        body TEXT NOT NULL
    )",
    "CREATE INDEX tollgate_handoffs_queue ON tollgate_handoffs (tenant, status, urgency_rank, created_ms)",
    "CREATE UNIQUE INDEX tollgate_handoffs_call ON tollgate_handoffs (session_id, call_id)",
    "CREATE TABLE tollgate_tokens (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        role TEXT NOT NULL,
        name TEXT NOT NULL,
        secret_hash TEXT NOT NULL UNIQUE,
        created_ms BIGINT NOT NULL,
        revoked_ms BIGINT
    )",
];

/// Version 1, the same SQL on both backends.
const V1: &[&str] = &[
    "CREATE TABLE tollgate_workflows (
        hash TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version BIGINT NOT NULL,
        text TEXT NOT NULL
    )",
    "CREATE TABLE tollgate_sessions (
        id TEXT PRIMARY KEY,
        workflow_hash TEXT NOT NULL REFERENCES tollgate_workflows (hash),
        workflow_name TEXT NOT NULL,
        workflow_version BIGINT NOT NULL,
        parent_id TEXT REFERENCES tollgate_sessions (id),
        created_ms BIGINT NOT NULL,
        last_seq BIGINT NOT NULL,
        audit_seq BIGINT NOT NULL,
        audit_hash TEXT NOT NULL
    )",
    "CREATE TABLE tollgate_journal (
        session_id TEXT NOT NULL REFERENCES tollgate_sessions (id),
        seq BIGINT NOT NULL,
        kind TEXT NOT NULL,
        call_id TEXT,
        body TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        PRIMARY KEY (session_id, seq)
    )",
    "CREATE INDEX tollgate_journal_call ON tollgate_journal (session_id, call_id, kind)",
    "CREATE TABLE tollgate_checkpoints (
        session_id TEXT PRIMARY KEY REFERENCES tollgate_sessions (id),
        seq BIGINT NOT NULL,
        state TEXT NOT NULL
    )",
    "CREATE TABLE tollgate_audit (
        seq BIGINT PRIMARY KEY,
        session_id TEXT NOT NULL,
        session_seq BIGINT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        prev_hash TEXT NOT NULL,
        session_prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )",
    "CREATE TABLE tollgate_audit_head (
        id BIGINT PRIMARY KEY,
        seq BIGINT NOT NULL,
        hash TEXT NOT NULL
    )",
];

/// Runs the missing steps inside the open transaction `$tx`, then commits.
macro_rules! run_migrations {
    ($tx:ident, $sqlite:expr) => {{
        sqlx::query("CREATE TABLE IF NOT EXISTS tollgate_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            .execute(&mut *$tx)
            .await?;
        let row = sqlx::query("SELECT value FROM tollgate_meta WHERE key = 'schema_version'")
            .fetch_optional(&mut *$tx)
            .await?;
        let version = match row {
            None => 0,
            Some(row) => parse_version(row.try_get("value")?)?,
        };
        if version > SCHEMA_VERSION {
            return Err(Error::NewerSchema { found: version, supported: SCHEMA_VERSION });
        }
        for (from, migration) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
            let own: &[&str] = if $sqlite { migration.sqlite } else { &[] };
            for step in migration.both.iter().chain(own) {
                sqlx::query(*step).execute(&mut *$tx).await?;
            }
            if from == 0 {
                sqlx::query("INSERT INTO tollgate_audit_head (id, seq, hash) VALUES (1, 0, $1)")
                    .bind(audit::GENESIS)
                    .execute(&mut *$tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO tollgate_meta (key, value) VALUES ('schema_version', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind((from + 1).to_string())
            .execute(&mut *$tx)
            .await?;
        }
        $tx.commit().await?;
    }};
}

/// Brings the schema to [`SCHEMA_VERSION`]; refuses a newer one untouched.
pub(crate) async fn migrate(store: &Store) -> Result<(), Error> {
    match store.backend_ref() {
        crate::Backend::Sqlite(crate::SqliteStore { pool, .. }) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            run_migrations!(tx, true);
        }
        crate::Backend::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            // One migrating process at a time; the lock ends with the transaction.
            sqlx::query("SELECT pg_advisory_xact_lock(7461726)").execute(&mut *tx).await?;
            run_migrations!(tx, false);
        }
    }
    Ok(())
}

fn parse_version(text: String) -> Result<i64, Error> {
    text.parse().map_err(|_| Error::Damaged(format!("schema version '{text}' is not a number")))
}
