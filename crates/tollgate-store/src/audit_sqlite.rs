//! `audit verify` on SQLite, read straight from the file: one read-only
//! connection of its own (rusqlite, on the same SQLite library as sqlx)
//! steps through the records in one snapshot on one thread and hands them
//! over in chunks to the thread that hashes them. Through sqlx every row
//! (or every packed chunk) crosses between threads on its own and is
//! copied on the way; here a row's texts are copied once, into a chunk's
//! buffer that is reused.
//!
//! The head is read in the same snapshot as the records, so a log being
//! written meanwhile is checked exactly as it stood at that moment.

use crate::Error;
use crate::audit::{AuditHead, RecordRef, Verifier, VerifyReport};
use rusqlite::types::ValueRef;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// Records handed from the reading thread to the hashing one at a time.
const CHUNK_RECORDS: usize = 1024;

/// How much of the file the reading connection maps into memory.
const MMAP_BYTES: i64 = 1 << 30;

/// Chunks read ahead of the hashing.
const CHUNKS_AHEAD: usize = 4;

/// Records read, their six texts in one buffer.
#[derive(Default)]
struct Chunk {
    text: String,
    rows: Vec<Row>,
    /// The row after the last one, if it is not what the store writes (a
    /// number that is no integer, a text that is none): its number where
    /// it has one, and what is wrong.
    bad: Option<(Option<i64>, String)>,
}

/// One record of a chunk: its numbers and where each of its texts ends in
/// the chunk's buffer (`session_id, kind, body, prev_hash, session_prev_hash, hash`).
struct Row {
    seq: i64,
    session_seq: i64,
    at_ms: i64,
    ends: [usize; 6],
}

const SELECT_HEAD: &str = "SELECT seq, hash, signer, signature FROM tollgate_audit_head WHERE id = 1";
const SELECT_RECORDS: &str = "SELECT seq, session_seq, at_ms, session_id, kind, body, prev_hash, \
                              session_prev_hash, hash FROM tollgate_audit ORDER BY seq";

fn read_error(error: rusqlite::Error) -> Error {
    Error::Read(format!("the audit log cannot be read: {error}"))
}

/// Checks the audit log of the SQLite database at `path` (see
/// [`crate::Store::verify_audit`]). Blocks: run it off the async threads.
pub(crate) fn verify(path: &Path) -> Result<VerifyReport, Error> {
    use rusqlite::OpenFlags;
    let connection = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(read_error)?;
    connection.busy_timeout(Duration::from_secs(30)).map_err(read_error)?;
    // Pages read through a memory map, not copied by read() calls.
    connection.pragma_update(None, "mmap_size", MMAP_BYTES).map_err(read_error)?;
    // A deferred transaction: its first read fixes the snapshot every later read sees.
    connection.execute_batch("BEGIN").map_err(read_error)?;
    let head = connection
        .query_row(SELECT_HEAD, [], |row| {
            Ok(AuditHead { seq: row.get(0)?, hash: row.get(1)?, signer: row.get(2)?, signature: row.get(3)? })
        })
        .map_err(read_error)?;
    let (send, chunks) = mpsc::sync_channel::<Chunk>(CHUNKS_AHEAD);
    let (give_back, spare) = mpsc::channel::<Chunk>();
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || read(&connection, &send, &spare));
        let mut verifier = Verifier::default();
        for chunk in chunks.iter() {
            if feed(&mut verifier, &chunk) {
                break;
            }
            // The reader may have finished already; the chunk is then simply dropped.
            let _ = give_back.send(chunk);
        }
        // Dropping the receiver stops a reader still reading (its next send fails).
        drop(chunks);
        let read = reader.join();
        // A problem found stands, whatever the reading did after it.
        if !verifier.failed() {
            match read {
                Ok(result) => result.map_err(read_error)?,
                Err(_) => return Err(Error::Read("the thread reading the audit log failed".to_owned())),
            }
        }
        Ok(verifier.finish(&head))
    })
}

/// Feeds a chunk's records to `verifier`; true once it found a problem.
fn feed(verifier: &mut Verifier, chunk: &Chunk) -> bool {
    let text = chunk.text.as_str();
    let mut start = 0;
    for row in &chunk.rows {
        let mut texts = [""; 6];
        for (slot, end) in texts.iter_mut().zip(row.ends) {
            *slot = text.get(start..end).unwrap_or_default();
            start = end;
        }
        let [session_id, kind, body, prev_hash, session_prev_hash, hash] = texts;
        let record = RecordRef {
            seq: row.seq,
            session_id,
            session_seq: row.session_seq,
            kind,
            body,
            at_ms: row.at_ms,
            prev_hash,
            session_prev_hash,
            hash,
        };
        if verifier.feed_one(&record) {
            return true;
        }
    }
    if let Some((seq, message)) = &chunk.bad {
        verifier.fail(*seq, message.clone());
        return true;
    }
    false
}

/// Reads every record in order into chunks sent to `send`, taking emptied
/// chunks back from `spare`. Stops early, without error, when the hashing
/// side hangs up (it found a problem).
fn read(
    connection: &rusqlite::Connection,
    send: &mpsc::SyncSender<Chunk>,
    spare: &mpsc::Receiver<Chunk>,
) -> Result<(), rusqlite::Error> {
    let mut statement = connection.prepare(SELECT_RECORDS)?;
    let mut rows = statement.query([])?;
    let mut chunk = Chunk::default();
    while let Some(row) = rows.next()? {
        let number = |index: usize| match row.get_ref(index) {
            Ok(ValueRef::Integer(n)) => Some(n),
            _ => None,
        };
        let seq = number(0);
        let (Some(seq), Some(session_seq), Some(at_ms)) = (seq, number(1), number(2)) else {
            chunk.bad = Some((seq, format!("record {} was altered: a number in it is not an integer", show(seq))));
            break;
        };
        let mut ends = [0; 6];
        let mut whole = true;
        for (column, end) in (3..9).zip(&mut ends) {
            match row.get_ref(column) {
                Ok(ValueRef::Text(bytes)) => match std::str::from_utf8(bytes) {
                    Ok(text) => chunk.text.push_str(text),
                    Err(_) => whole = false,
                },
                _ => whole = false,
            }
            *end = chunk.text.len();
        }
        if !whole {
            chunk.bad = Some((Some(seq), format!("record {seq} was altered: a text in it is missing or not text")));
            break;
        }
        chunk.rows.push(Row { seq, session_seq, at_ms, ends });
        if chunk.rows.len() == CHUNK_RECORDS {
            if send.send(chunk).is_err() {
                return Ok(());
            }
            chunk = spare.try_recv().unwrap_or_default();
            chunk.text.clear();
            chunk.rows.clear();
            chunk.bad = None;
        }
    }
    if !chunk.rows.is_empty() || chunk.bad.is_some() {
        let _ = send.send(chunk);
    }
    Ok(())
}

fn show(seq: Option<i64>) -> String {
    seq.map_or_else(|| "(no number)".to_owned(), |n| n.to_string())
}
