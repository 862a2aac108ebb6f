//! The audit log: every decision and every human action, as records that
//! each carry the SHA-256 of the record before them, globally and within
//! their session. Altering, removing, inserting or reordering a stored
//! record breaks a chain, and [`Verifier`] names the first record where it
//! breaks.

use crate::{Error, NewAudit, TxInner};
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
    /// Who signed this head ([`HeadSigner::signer`]), if it is signed.
    pub signer: Option<String>,
    /// The signature of this head ([`HeadSigner::sign`]), if it is signed.
    pub signature: Option<String>,
}

impl AuditHead {
    /// An unsigned head.
    pub fn unsigned(seq: i64, hash: String) -> AuditHead {
        AuditHead { seq, hash, signer: None, signature: None }
    }
}

/// Signs the audit log's head at every commit that moves it, with a key the
/// database does not hold: a writer who rewrites the log and recomputes
/// every hash cannot sign the head it ends at (`audit verify --key`).
pub trait HeadSigner: Send + Sync + std::fmt::Debug {
    /// Who signs (a public key, say), stored beside the signature.
    fn signer(&self) -> String;
    /// The signature of the head (`seq`, `hash`).
    fn sign(&self, seq: i64, hash: &str) -> String;
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
    /// The head the log was checked against, as read in the same snapshot
    /// (with its signature, for a caller holding the key to check).
    pub head: AuditHead,
}

/// The SHA-256 of a record's content and both links (everything but its
/// own `hash` field), hex. Text fields are length-prefixed, so no two
/// different records hash the same bytes.
pub fn record_hash(record: &AuditRecord) -> String {
    // Through a fixed buffer: `hex::encode` builds its string a char at a time.
    let mut text = [0u8; 64];
    let digest = digest(&RecordRef::of(record));
    match hex::encode_to_slice(digest, &mut text) {
        Ok(()) => String::from_utf8_lossy(&text).into_owned(),
        Err(_) => hex::encode(digest),
    }
}

/// The SHA-256 of a record (see [`record_hash`]), as bytes.
fn digest(record: &RecordRef<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"tollgate.audit/v1\n");
    for number in [record.seq, record.session_seq, record.at_ms] {
        hasher.update(number.to_le_bytes());
    }
    for text in [record.session_id, record.kind, record.body, record.prev_hash, record.session_prev_hash] {
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    hasher.finalize().into()
}

/// An audit record borrowed from wherever it was read (a row, a chunk of
/// packed records), so checking one allocates nothing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordRef<'a> {
    pub(crate) seq: i64,
    pub(crate) session_id: &'a str,
    pub(crate) session_seq: i64,
    pub(crate) kind: &'a str,
    pub(crate) body: &'a str,
    pub(crate) at_ms: i64,
    pub(crate) prev_hash: &'a str,
    pub(crate) session_prev_hash: &'a str,
    pub(crate) hash: &'a str,
}

impl<'a> RecordRef<'a> {
    fn of(record: &'a AuditRecord) -> RecordRef<'a> {
        RecordRef {
            seq: record.seq,
            session_id: &record.session_id,
            session_seq: record.session_seq,
            kind: &record.kind,
            body: &record.body,
            at_ms: record.at_ms,
            prev_hash: &record.prev_hash,
            session_prev_hash: &record.session_prev_hash,
            hash: &record.hash,
        }
    }
}

/// Whether `hex_text` is the lowercase hex of `digest`: the digest is
/// encoded on the stack and compared as bytes (decoding the stored text
/// byte by byte was a tenth of what verifying cost).
fn hex_matches(hex_text: &str, digest: &[u8; 32]) -> bool {
    let digit = |n: u8| if n < 10 { b'0' + n } else { b'a' + (n - 10) };
    let mut encoded = [0u8; 64];
    for (pair, byte) in encoded.chunks_exact_mut(2).zip(digest) {
        if let [high, low] = pair {
            *high = digit(byte >> 4);
            *low = digit(byte & 0x0f);
        }
    }
    hex_text.as_bytes() == encoded
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
pub(crate) async fn read_head(tx: &mut TxInner) -> Result<(i64, String), Error> {
    match tx {
        TxInner::Sqlite(c) => c
            .row("SELECT seq, hash FROM tollgate_audit_head WHERE id = 1", &[], |row| Ok((row.get(0)?, row.get(1)?)))?
            .ok_or_else(|| Error::Damaged("the audit log's head row is missing".to_owned())),
        TxInner::Postgres(c) => {
            let row = sqlx::query("SELECT seq, hash FROM tollgate_audit_head WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut **c)
                .await?;
            Ok((row.try_get("seq")?, row.try_get("hash")?))
        }
    }
}

/// Checks records fed in global order, stopping at the first problem.
#[derive(Default)]
pub(crate) struct Verifier {
    checked: u64,
    last_seq: i64,
    /// The last record's hash (empty before the first).
    last_hash: String,
    /// Each session's last record: its number in the session and its hash.
    sessions: HashMap<String, (i64, String)>,
    problem: Option<AuditProblem>,
}

impl Verifier {
    /// Records a problem found outside the chain checks (a record that
    /// cannot be read as one): at `seq`, or the record after the last one
    /// checked when it has no number.
    pub(crate) fn fail(&mut self, seq: Option<i64>, message: String) {
        if self.problem.is_some() {
            return;
        }
        let expected = self.last_seq + 1;
        self.problem = Some(match seq {
            // A gap before it is the first thing wrong.
            Some(seq) if seq > expected => AuditProblem {
                seq: expected,
                session_id: None,
                message: format!(
                    "record {expected} is missing: the log goes from record {} to record {seq}",
                    self.last_seq
                ),
            },
            _ => AuditProblem { seq: seq.unwrap_or(expected), session_id: None, message },
        });
    }

    /// Whether a problem was found.
    pub(crate) fn failed(&self) -> bool {
        self.problem.is_some()
    }

    /// Checks a batch; true once a problem is found.
    pub(crate) fn feed(&mut self, records: &[AuditRecord]) -> bool {
        records.iter().any(|record| self.feed_one(&RecordRef::of(record)))
    }

    /// Checks one record; true once a problem is found.
    pub(crate) fn feed_one(&mut self, record: &RecordRef<'_>) -> bool {
        if self.problem.is_some() {
            return true;
        }
        if let Some(message) = self.check(record) {
            // A gap names the first record missing, anything else the record itself.
            let seq = if record.seq > self.last_seq + 1 { self.last_seq + 1 } else { record.seq };
            self.problem = Some(AuditProblem { seq, session_id: Some(record.session_id.to_owned()), message });
            return true;
        }
        self.checked += 1;
        self.last_seq = record.seq;
        self.last_hash.clear();
        self.last_hash.push_str(record.hash);
        // Reuses the session's entry (and its string) once it exists.
        match self.sessions.get_mut(record.session_id) {
            Some((seq, hash)) => {
                *seq = record.session_seq;
                hash.clear();
                hash.push_str(record.hash);
            }
            None => {
                self.sessions.insert(record.session_id.to_owned(), (record.session_seq, record.hash.to_owned()));
            }
        }
        false
    }

    fn check(&self, record: &RecordRef<'_>) -> Option<String> {
        let expected = self.last_seq + 1;
        if record.seq != expected {
            return Some(format!(
                "record {expected} is missing: the log goes from record {} to record {}",
                self.last_seq, record.seq
            ));
        }
        let previous = if self.last_seq == 0 { GENESIS } else { self.last_hash.as_str() };
        if record.prev_hash != previous {
            return Some(format!(
                "record {} does not follow record {}: a record was removed, inserted or reordered here",
                record.seq, self.last_seq
            ));
        }
        if !hex_matches(record.hash, &digest(record)) {
            return Some(format!("record {} was altered: its content does not match its hash", record.seq));
        }
        let (session_seq, session_hash) =
            self.sessions.get(record.session_id).map_or((0, GENESIS), |(s, h)| (*s, h.as_str()));
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
            let last_hash = if self.last_seq == 0 { GENESIS } else { self.last_hash.as_str() };
            if head.seq > self.last_seq {
                problem = Some(AuditProblem {
                    seq: self.last_seq + 1,
                    session_id: None,
                    message: format!(
                        "the log ends at record {} but its head says record {}: records were removed from the end",
                        self.last_seq, head.seq
                    ),
                });
            } else if head.seq < self.last_seq {
                problem = Some(AuditProblem {
                    seq: head.seq + 1,
                    session_id: None,
                    message: format!(
                        "the log goes on to record {} past its head, record {}: records {} to {} were not written \
                         by the store (appended behind its back)",
                        self.last_seq,
                        head.seq,
                        head.seq + 1,
                        self.last_seq
                    ),
                });
            } else if head.hash != last_hash {
                problem = Some(AuditProblem {
                    seq: self.last_seq,
                    session_id: None,
                    message: format!(
                        "record {} is not the one the head names (its hash differs): the end of the log was replaced",
                        self.last_seq
                    ),
                });
            }
        }
        VerifyReport { records: self.checked, sessions: self.sessions.len(), problem, head: head.clone() }
    }
}

/// Checks a complete log held in memory (what `audit verify` does with a
/// database, for exported records).
pub fn verify_records(records: &[AuditRecord], head: &AuditHead) -> VerifyReport {
    let mut verifier = Verifier::default();
    verifier.feed(records);
    verifier.finish(head)
}

/// Records a packed chunk holds at most. Small enough that a chunk's
/// buffers are reused by the allocator rather than mapped fresh each time
/// (at 8,192, page faults took a third of verifying).
pub(crate) const PACKED_RECORDS_MAX: i64 = 1024;

/// Packed chunks read at once while one is hashed (each on a connection of its own).
pub(crate) const CHUNKS_AHEAD: usize = 3;

/// One row for up to [`PACKED_RECORDS_MAX`] records after `$1`: the last
/// one's number and all of them packed into one text, each as
/// `seq,session_seq,at_ms,<six byte lengths>:` followed by its six text
/// fields. One row instead of one per record: the drivers' per-row cost
/// (SQLite: a copied value per column and a hand-over between threads for
/// every row) was most of what verifying cost. PostgreSQL only: SQLite's
/// log is read straight from the file (`audit_sqlite.rs`).
macro_rules! select_packed {
    ($format:literal) => {
        concat!(
            "SELECT max(seq) AS last, string_agg(format('",
            $format,
            "', seq, session_seq, at_ms, octet_length(session_id), octet_length(kind), octet_length(body), \
             octet_length(prev_hash), octet_length(session_prev_hash), octet_length(hash), session_id, kind, body, \
             prev_hash, session_prev_hash, hash), '') AS packed \
             FROM (SELECT * FROM tollgate_audit WHERE seq > $1 ORDER BY seq LIMIT $2) AS chunk"
        )
    };
}

/// The packing query (see [`select_packed!`]).
pub(crate) const SELECT_PACKED: &str = select_packed!("%s,%s,%s,%s,%s,%s,%s,%s,%s:%s%s%s%s%s%s");

/// Feeds the records packed by [`SELECT_PACKED`] to `verifier`, in order of
/// their numbers; true once it found a problem. The aggregate is not asked
/// to keep the chunk's order (sorting inside `string_agg` was most of what
/// reading cost): the records come back in it in practice, which is checked,
/// and sorted here when they do not.
pub(crate) fn feed_packed(verifier: &mut Verifier, packed: &str) -> Result<bool, Error> {
    let mut records = unpack(packed)?;
    if !records.is_sorted_by_key(|r| r.seq) {
        records.sort_by_key(|r| r.seq);
    }
    for record in &records {
        if verifier.feed_one(record) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The records of a packed chunk, borrowed from it (`packed::records`: nine
/// numbers, the last six the lengths of six texts, none of which is NULL).
fn unpack(packed: &str) -> Result<Vec<RecordRef<'_>>, Error> {
    let damaged = || Error::Damaged("an audit record cannot be read back (packed chunk malformed)".to_owned());
    let rows = crate::packed::records::<9, 6>(packed).map_err(|_| damaged())?;
    rows.into_iter()
        .map(|([seq, session_seq, at_ms, ..], texts)| {
            let [Some(session_id), Some(kind), Some(body), Some(prev_hash), Some(session_prev_hash), Some(hash)] =
                texts
            else {
                return Err(damaged());
            };
            Ok(RecordRef { seq, session_id, session_seq, kind, body, at_ms, prev_hash, session_prev_hash, hash })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests fail by panicking

    use super::*;

    /// A chunk packed the way `SELECT_PACKED` packs it.
    fn packed(records: &[AuditRecord]) -> String {
        records
            .iter()
            .map(|r| {
                format!(
                    "{},{},{},{},{},{},{},{},{}:{}{}{}{}{}{}",
                    r.seq,
                    r.session_seq,
                    r.at_ms,
                    r.session_id.len(),
                    r.kind.len(),
                    r.body.len(),
                    r.prev_hash.len(),
                    r.session_prev_hash.len(),
                    r.hash.len(),
                    r.session_id,
                    r.kind,
                    r.body,
                    r.prev_hash,
                    r.session_prev_hash,
                    r.hash
                )
            })
            .collect()
    }

    fn records() -> Vec<AuditRecord> {
        let mut head = (0, GENESIS.to_owned());
        let (mut a, mut b) = ((0, GENESIS.to_owned()), (0, GENESIS.to_owned()));
        let mut out = Vec::new();
        let audit = |n: i64| NewAudit { kind: "decision.allow".into(), body: format!("{{\"n\":{n}}}"), at_ms: n };
        for n in 0..6 {
            let session = if n % 2 == 0 { &mut a } else { &mut b };
            chain(if n % 2 == 0 { "a" } else { "b" }, &mut head, session, &[audit(n)], &mut out);
        }
        out
    }

    #[test]
    fn only_the_lowercase_hex_of_the_digest_matches() {
        let digest: [u8; 32] = std::array::from_fn(|n| (n * 37 + 11) as u8);
        let hex = hex::encode(digest);
        assert!(hex_matches(&hex, &digest));
        assert!(!hex_matches(&hex.to_ascii_uppercase(), &digest));
        assert!(!hex_matches(&hex[..62], &digest));
        assert!(!hex_matches(&format!("{hex}00"), &digest));
        let mut other = digest;
        other[31] ^= 1;
        assert!(!hex_matches(&hex, &other));
    }

    #[test]
    fn a_packed_chunk_verifies_in_whatever_order_the_database_returned_it() {
        let records = records();
        let mut shuffled = records.clone();
        shuffled.swap(0, 4);
        shuffled.swap(1, 5);
        for chunk in [packed(&records), packed(&shuffled)] {
            let mut verifier = Verifier::default();
            assert!(!feed_packed(&mut verifier, &chunk).unwrap());
            let head = AuditHead::unsigned(6, records[5].hash.clone());
            let report = verifier.finish(&head);
            assert!(report.problem.is_none(), "{report:?}");
            assert_eq!(report.records, 6);
        }
        // A record whose number was altered is still caught.
        let mut altered = records;
        altered[2].seq = 9;
        let mut verifier = Verifier::default();
        assert!(feed_packed(&mut verifier, &packed(&altered)).unwrap());
    }
}
