//! The audit log: every decision and every human action, as records that
//! each carry the SHA-256 of the record before them, globally and within
//! their session. Altering, removing, inserting or reordering a stored
//! record breaks a chain, and [`Verifier`] names the first record where it
//! breaks.

use crate::{NewAudit, StoreError, TxInner, on_tx};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::HashMap;

/// The hash the first record of each chain points back to.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the global chain, from 1.
    pub seq: i64,
    /// The session the record belongs to.
    pub session_id: String,
    /// Position in the session's chain, from 1.
    pub session_seq: i64,
    /// `decision`, `result`, ...
    pub kind: String,
    /// The record, as JSON text.
    pub body: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Hash of the record before this one in the global chain.
    pub prev_hash: String,
    /// Hash of the record before this one in the session's chain.
    pub session_prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// Where the global chain ends, as the store last wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditHead {
    /// The last record's sequence number (0: empty log).
    pub seq: i64,
    /// The last record's hash.
    pub hash: String,
}

/// The first place a chain breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditProblem {
    /// The record where the chain breaks (for records removed from the end,
    /// the first one missing).
    pub seq: i64,
    /// Its session, where known.
    pub session_id: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The outcome of checking the whole log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked before the first problem (all of them if none).
    pub records: u64,
    /// Sessions seen.
    pub sessions: usize,
    /// The first problem, if any.
    pub problem: Option<AuditProblem>,
}

/// The SHA-256 of a record's content and both links (everything but its
/// own `hash` field), hex. Text fields are length-prefixed, so no two
/// different records hash the same bytes.
pub fn record_hash(record: &AuditRecord) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"tollgate.audit/v1\n");
    for number in [record.seq, record.session_seq, record.at_ms] {
        hasher.update(number.to_le_bytes());
    }
    for text in [&record.session_id, &record.kind, &record.body, &record.prev_hash, &record.session_prev_hash] {
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    hex::encode(hasher.finalize())
}

pub(crate) fn record_from_row<R: Row>(row: &R) -> Result<AuditRecord, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        session_id: row.try_get("session_id")?,
        session_seq: row.try_get("session_seq")?,
        kind: row.try_get("kind")?,
        body: row.try_get("body")?,
        at_ms: row.try_get("at_ms")?,
        prev_hash: row.try_get("prev_hash")?,
        session_prev_hash: row.try_get("session_prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Chains `audits` for session `id` onto both chains: `head` is where the
/// global chain ends and `session` where the session's chain ends; both move
/// past the records made. (The caller read the head under lock, writes the
/// records and the head back at commit.)
pub(crate) fn chain(
    id: &str,
    head: &mut (i64, String),
    session: &mut (i64, String),
    audits: &[NewAudit],
    out: &mut Vec<AuditRecord>,
) {
    for audit in audits {
        let mut record = AuditRecord {
            seq: head.0 + 1,
            session_id: id.to_owned(),
            session_seq: session.0 + 1,
            kind: audit.kind.clone(),
            body: audit.body.clone(),
            at_ms: audit.at_ms,
            prev_hash: std::mem::take(&mut head.1),
            session_prev_hash: std::mem::take(&mut session.1),
            hash: String::new(),
        };
        record.hash = record_hash(&record);
        *head = (record.seq, record.hash.clone());
        *session = (record.session_seq, record.hash.clone());
        out.push(record);
    }
}

/// Reads the global chain's head, locking its row until the transaction
/// ends (SQLite's writer lock covers it already).
pub(crate) async fn read_head(tx: &mut TxInner) -> Result<(i64, String), StoreError> {
    let sql = match tx {
        TxInner::Sqlite(_) => "SELECT seq, hash FROM tollgate_audit_head WHERE id = 1",
        TxInner::Postgres(_) => "SELECT seq, hash FROM tollgate_audit_head WHERE id = 1 FOR UPDATE",
    };
    let head = on_tx!(&mut *tx, c => {
        let row = sqlx::query(sql).fetch_one(&mut **c).await?;
        (row.try_get("seq")?, row.try_get("hash")?)
    });
    Ok(head)
}

/// Checks records fed in global order, stopping at the first problem.
#[derive(Default)]
pub(crate) struct Verifier {
    checked: u64,
    last_seq: i64,
    last_hash: Option<String>,
    sessions: HashMap<String, (i64, String)>,
    problem: Option<AuditProblem>,
}

impl Verifier {
    /// Checks a batch; true once a problem is found.
    pub(crate) fn feed(&mut self, records: &[AuditRecord]) -> bool {
        for record in records {
            if let Some(message) = self.check(record) {
                // A gap names the first record missing, anything else the record itself.
                let seq = if record.seq > self.last_seq + 1 { self.last_seq + 1 } else { record.seq };
                self.problem = Some(AuditProblem { seq, session_id: Some(record.session_id.clone()), message });
                return true;
            }
            self.checked += 1;
            self.last_seq = record.seq;
            self.last_hash = Some(record.hash.clone());
            self.sessions.insert(record.session_id.clone(), (record.session_seq, record.hash.clone()));
        }
        false
    }

    fn check(&self, record: &AuditRecord) -> Option<String> {
        let expected = self.last_seq + 1;
        if record.seq != expected {
            return Some(format!(
                "record {expected} is missing: the log goes from record {} to record {}",
                self.last_seq, record.seq
            ));
        }
        let previous = self.last_hash.as_deref().unwrap_or(GENESIS);
        if record.prev_hash != previous {
            return Some(format!(
                "record {} does not follow record {}: a record was removed, inserted or reordered here",
                record.seq, self.last_seq
            ));
        }
        if record_hash(record) != record.hash {
            return Some(format!("record {} was altered: its content does not match its hash", record.seq));
        }
        let (session_seq, session_hash) =
            self.sessions.get(&record.session_id).map_or((0, GENESIS), |(s, h)| (*s, h.as_str()));
        if record.session_seq != session_seq + 1 || record.session_prev_hash != session_hash {
            return Some(format!(
                "record {} breaks session {}'s chain: expected its record {} after {}",
                record.seq,
                record.session_id,
                session_seq + 1,
                if session_seq == 0 { "the start".to_owned() } else { format!("record {session_seq}") }
            ));
        }
        None
    }

    /// The report, checking the end of the log against the stored head.
    pub(crate) fn finish(self, head: &AuditHead) -> VerifyReport {
        let mut problem = self.problem;
        if problem.is_none() {
            let last_hash = self.last_hash.as_deref().unwrap_or(GENESIS);
            if head.seq != self.last_seq || head.hash != last_hash {
                problem = Some(AuditProblem {
                    seq: self.last_seq + 1,
                    session_id: None,
                    message: format!(
                        "the log ends at record {} but its head says record {}: records were removed from the end",
                        self.last_seq, head.seq
                    ),
                });
            }
        }
        VerifyReport { records: self.checked, sessions: self.sessions.len(), problem }
    }
}

/// Checks a complete log held in memory (what `audit verify` does with a
/// database, for exported records).
pub fn verify_records(records: &[AuditRecord], head: &AuditHead) -> VerifyReport {
    let mut verifier = Verifier::default();
    verifier.feed(records);
    verifier.finish(head)
}
