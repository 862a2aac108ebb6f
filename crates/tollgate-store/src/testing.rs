//! Databases for tests: a fresh SQLite file, and a fresh schema on the
//! PostgreSQL server the machine runs (`TOLLGATE_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`). Without a reachable server a
//! test says so and skips its PostgreSQL half, except under `CI=true`,
//! where that is a failure.

use sqlx::Connection;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// The PostgreSQL server tests use.
pub fn postgres_url() -> String {
    std::env::var("TOLLGATE_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A new, empty directory under the system's temporary directory.
pub fn temp_dir(prefix: &str) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The URL of a new SQLite file in a new temporary directory.
pub fn sqlite_url() -> std::io::Result<String> {
    Ok(temp_dir("tollgate_test")?.join("tollgate.db").display().to_string())
}

/// The URL of a new, empty schema on the test PostgreSQL server, or `None`
/// (after saying why on stderr) if the server cannot be reached outside CI.
///
/// # Panics
/// Under `CI=true`, when the server cannot be reached: tests must fail there, not skip.
#[allow(clippy::panic)]
pub async fn postgres_schema_url() -> Option<String> {
    let base = postgres_url();
    let mut conn = match sqlx::PgConnection::connect(&base).await {
        Ok(conn) => conn,
        Err(error) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL at {base} is unreachable under CI=true: {error}");
            }
            eprintln!("skipping the PostgreSQL half: {base} is unreachable ({error})");
            return None;
        }
    };
    drop_abandoned_schemas(&mut conn).await;
    let schema = unique("tg").to_ascii_lowercase();
    let create = format!("CREATE SCHEMA {schema}");
    if let Err(error) = sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut conn).await {
        panic!("cannot create schema {schema}: {error}");
    }
    let separator = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{separator}options=-c%20search_path%3D{schema}"))
}

/// Drops the schemas of earlier test processes on this machine that have
/// exited (`tg_<pid>_…` whose pid is gone), so the shared database does not
/// fill up with them.
async fn drop_abandoned_schemas(conn: &mut sqlx::PgConnection) {
    let Ok(rows) = sqlx::query_scalar::<_, String>("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tg\\_%'")
        .fetch_all(&mut *conn)
        .await
    else {
        return;
    };
    for schema in rows {
        let pid = schema.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        let ours = schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !alive && ours && pid.is_some() {
            let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            // Another test process may drop it at the same moment; that is fine.
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut *conn).await;
        }
    }
}

/// Runs one SQL statement on the store's own pool, as a person with write
/// access to the database could: what tampering tests do to the audit log.
pub async fn execute(store: &crate::Store, sql: &str) -> Result<u64, crate::Error> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    let affected = match store.backend_ref() {
        crate::Backend::Sqlite(sqlite) => sqlx::query(sql).execute(&sqlite.pool).await?.rows_affected(),
        crate::Backend::Postgres(pool) => sqlx::query(sql).execute(pool).await?.rows_affected(),
    };
    Ok(affected)
}

/// The first column of the first row of one SQL query on the store's own
/// pool, as text (`SHOW synchronous_commit`, say).
pub async fn fetch_text(store: &crate::Store, sql: &str) -> Result<Option<String>, crate::Error> {
    use sqlx::Row;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    let row = match store.backend_ref() {
        crate::Backend::Sqlite(sqlite) => sqlx::query(sql).fetch_optional(&sqlite.pool).await?,
        crate::Backend::Postgres(pool) => {
            let row = sqlx::query(sql).fetch_optional(pool).await?;
            return Ok(row.map(|row| row.try_get::<String, _>(0)).transpose()?);
        }
    };
    Ok(row.map(|row| row.try_get::<String, _>(0)).transpose()?)
}
