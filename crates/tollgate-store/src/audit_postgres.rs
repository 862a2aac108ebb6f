//! PostgreSQL's audit verify: the records read in packed chunks, several
//! at once on connections of their own, each importing the snapshot the
//! verify's lead transaction exported (see `Store::verify_audit`).

use crate::{Error, audit};
use sqlx::Row;

/// Feeds every record to `verifier`, read in the snapshot `snapshot`, until
/// the log ends or it finds a problem (PostgreSQL; see [`Store::verify_audit`]).
pub(crate) async fn feed(pool: &sqlx::PgPool, snapshot: &str, verifier: &mut audit::Verifier) -> Result<(), Error> {
    let mut reading: std::collections::VecDeque<(i64, tokio::task::JoinHandle<_>)> = std::collections::VecDeque::new();
    let mut next_start = 0;
    loop {
        while reading.len() < audit::CHUNKS_AHEAD {
            let read = tokio::spawn(packed_audit(pool.clone(), snapshot.to_owned(), next_start));
            reading.push_back((next_start, read));
            next_start += audit::PACKED_RECORDS_MAX;
        }
        let Some((_, read)) = reading.pop_front() else { break };
        let chunk = read.await.map_err(|e| Error::Damaged(format!("reading the audit log failed: {e}")))??;
        let Some((last, packed)) = chunk else { break };
        if reading.front().is_some_and(|(start, _)| *start != last) {
            finish_reads(reading.drain(..)).await;
            next_start = last;
        }
        if audit::feed_packed(verifier, &packed)? {
            break;
        }
    }
    finish_reads(reading.drain(..)).await;
    Ok(())
}

/// Lets reads ahead that are no longer wanted end, their results unused.
/// Not aborted: a read cancelled between `BEGIN` and its transaction's
/// guard would hand its connection back to the pool inside an open
/// read-only transaction, and the next writer on it would fail.
async fn finish_reads(
    reads: impl Iterator<Item = (i64, tokio::task::JoinHandle<Result<Option<(i64, String)>, Error>>)>,
) {
    for (_, read) in reads {
        let _unused = read.await;
    }
}

/// The audit records after `after`, packed (`audit::SELECT_PACKED`), with
/// the last one's number, read in the exported snapshot `snapshot`.
async fn packed_audit(pool: sqlx::PgPool, snapshot: String, after: i64) -> Result<Option<(i64, String)>, Error> {
    let mut tx = pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
    let import = format!("SET TRANSACTION SNAPSHOT '{snapshot}'");
    sqlx::query(sqlx::AssertSqlSafe(import)).execute(&mut *tx).await?;
    let row = sqlx::query(audit::SELECT_PACKED).bind(after).bind(audit::PACKED_RECORDS_MAX).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(match (row.try_get::<Option<i64>, _>("last")?, row.try_get::<Option<String>, _>("packed")?) {
        (Some(last), Some(packed)) => Some((last, packed)),
        _ => None,
    })
}
