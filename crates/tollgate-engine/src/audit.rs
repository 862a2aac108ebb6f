//! The audit log as the engine shows it: verified as a whole, and read back
//! record by record for export. The store chains and checks the records;
//! these are the engine's own views of them, so no surface depends on the
//! store's types.

use crate::{Engine, Error};

/// The outcome of checking the whole audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// Records checked before the first problem (all of them if none).
    pub records: u64,
    /// Sessions seen.
    pub sessions: usize,
    /// The first problem, if any.
    pub problem: Option<AuditProblem>,
}

/// Where the audit log's chains break.
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

/// One audit record, as stored and chained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the global chain, from 1.
    pub seq: i64,
    /// The session the record belongs to.
    pub session_id: String,
    /// Position in the session's chain, from 1.
    pub session_seq: i64,
    /// The event: a journal record's kind (`decision.allow`, `result`, ...).
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

impl Engine {
    /// Checks the whole audit log: every record's hash, both chains (global
    /// and per session), and that its end is the head the store wrote.
    pub async fn verify_audit(&self) -> Result<AuditReport, Error> {
        let report = self.store.verify_audit().await?;
        Ok(AuditReport {
            records: report.records,
            sessions: report.sessions,
            problem: report.problem.map(|p| AuditProblem { seq: p.seq, session_id: p.session_id, message: p.message }),
        })
    }

    /// Up to `limit` audit records with a number above `after`, in order.
    pub async fn audit_records(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>, Error> {
        let records = self.store.audit_records(after, limit).await?;
        Ok(records
            .into_iter()
            .map(|r| AuditRecord {
                seq: r.seq,
                session_id: r.session_id,
                session_seq: r.session_seq,
                kind: r.kind,
                body: r.body,
                at_ms: r.at_ms,
                prev_hash: r.prev_hash,
                session_prev_hash: r.session_prev_hash,
                hash: r.hash,
            })
            .collect())
    }
}
