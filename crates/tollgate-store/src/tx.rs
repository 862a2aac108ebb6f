//! [`SessionTx`]: one transaction over locked sessions. Appends are chained
//! and numbered in memory and written at [`SessionTx::commit`] as a few
//! multi-row statements (`batch.rs`); reads inside the transaction see them
//! as if they were written already.

use crate::audit::{self, AuditRecord};
use crate::batch::{self, Bind, Placeholders, Shape, bind_all};
use crate::{
    Checkpoint, Error, JournalEntry, NewAudit, NewEntry, SELECT_CHECKPOINT, SELECT_JOURNAL_AFTER, SessionInfo, TxInner,
    checkpoint_row, journal_entry, session_info,
};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};

/// An open transaction and the session it currently works on. Dropping it
/// without [`SessionTx::commit`] rolls everything back. It knows the
/// session's row as locked, so appending needs no second look.
///
/// Appends are kept in memory until `commit`, which writes them all, so a
/// database error in any of them (a full disk, a broken constraint) is
/// reported by `commit` and nothing of the transaction is kept.
pub struct SessionTx {
    inner: TxInner,
    /// Sessions locked in this transaction, as changed since (their rows
    /// are written back once, at commit).
    sessions: HashMap<String, Locked>,
    /// The session the calls work on.
    current: Option<String>,
    /// What was appended, to be written at commit.
    pending: Pending,
    /// For (session, call id) pairs looked up in one go: every journal entry
    /// of that call, stored or appended since, in order. Complete while the
    /// transaction lasts, because the sessions are locked.
    calls: HashMap<String, HashMap<String, Vec<JournalEntry>>>,
    /// A snapshot to read ([`crate::Store::snapshot`]): nothing is locked
    /// and nothing may be appended.
    read_only: bool,
    /// Signs the audit head at commit, if the store has a signer.
    signer: Option<std::sync::Arc<dyn crate::HeadSigner>>,
}

/// The row of a session a transaction works on, as locked and as changed since.
struct Locked {
    info: SessionInfo,
    /// The session's audit chain: its last record's number and hash.
    audit: (i64, String),
    /// Whether the row must be written back at commit.
    dirty: bool,
}

/// Appends not yet written.
#[derive(Default)]
struct Pending {
    /// Journal entries, with their session.
    journal: Vec<(String, JournalEntry)>,
    /// Audit records with their session, in global order, not yet chained:
    /// they are chained at commit, after every session lock of the
    /// transaction is taken, so the audit head's lock (PostgreSQL: its row)
    /// is always the last one a transaction takes and two transactions can
    /// never wait for each other's locks in a cycle.
    audit: Vec<(String, NewAudit)>,
    /// The newest checkpoint of each session: (seq, state).
    checkpoints: BTreeMap<String, (i64, String)>,
    /// Handoff rows to write, in order (a later one of an id replaces an earlier).
    handoffs: Vec<crate::handoffs::HandoffRow>,
}

impl SessionTx {
    pub(crate) fn new(inner: TxInner) -> SessionTx {
        SessionTx {
            inner,
            sessions: HashMap::new(),
            current: None,
            pending: Pending::default(),
            calls: HashMap::new(),
            read_only: false,
            signer: None,
        }
    }

    pub(crate) fn signed_by(mut self, signer: Option<std::sync::Arc<dyn crate::HeadSigner>>) -> SessionTx {
        self.signer = signer;
        self
    }

    /// A transaction that only reads, from one consistent snapshot, and
    /// locks nothing (see [`crate::Store::snapshot`]).
    pub(crate) fn snapshot(inner: TxInner) -> SessionTx {
        SessionTx { read_only: true, ..SessionTx::new(inner) }
    }

    pub(crate) fn read_only(&self) -> bool {
        self.read_only
    }

    /// Whether session `id` is locked in this transaction.
    pub(crate) fn holds(&self, id: &str) -> bool {
        self.sessions.contains_key(id)
    }

    pub(crate) fn queue_handoff(&mut self, row: crate::handoffs::HandoffRow) {
        self.pending.handoffs.push(row);
    }

    pub(crate) fn put_handoffs(&self) -> &[crate::handoffs::HandoffRow] {
        &self.pending.handoffs
    }

    pub(crate) fn inner_mut(&mut self) -> &mut TxInner {
        &mut self.inner
    }

    /// Locks session `id` (PostgreSQL: its row, until the transaction ends;
    /// SQLite: the writer lock is held already) and makes it the session the
    /// following calls work on.
    pub async fn lock(&mut self, id: &str) -> Result<(), Error> {
        if !self.sessions.contains_key(id) {
            self.lock_all(&[id]).await?;
        }
        if !self.sessions.contains_key(id) {
            return Err(Error::NoSession(id.to_owned()));
        }
        self.current = Some(id.to_owned());
        Ok(())
    }

    /// Locks the sessions `ids` that exist, in one statement per few
    /// thousand ids; ids with no session are left out (a later
    /// [`SessionTx::lock`] of one says so). PostgreSQL locks the rows in byte
    /// order of their ids, so two transactions locking overlapping groups
    /// this way cannot deadlock. Does not change the current session.
    pub async fn lock_all(&mut self, ids: &[&str]) -> Result<(), Error> {
        let mut ids: Vec<&str> = ids.iter().copied().filter(|id| !self.sessions.contains_key(*id)).collect();
        ids.sort_unstable();
        ids.dedup();
        let c = match &mut self.inner {
            TxInner::Sqlite(c) => {
                // A prepared statement a row: microseconds each, no round trip.
                for id in ids {
                    if let Some(locked) = c.row(SQLITE_SESSION, &[Bind::Text(id)], native_locked)? {
                        self.sessions.insert(locked.info.id.clone(), locked);
                    }
                }
                return Ok(());
            }
            TxInner::Postgres(c) => c,
        };
        let shape = if self.read_only { Shape::ReadSessions } else { Shape::LockSessions };
        for statement in batch::statements(shape, &ids, |id, binds| binds.push(Bind::Text(id))) {
            let sql = statement.sql_with(Placeholders::Numbered { next: 1 });
            let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), statement.binds())
                .fetch_all(&mut **c)
                .await?
                .iter()
                .map(|row| -> Result<Locked, sqlx::Error> {
                    Ok(Locked {
                        info: session_info(row)?,
                        audit: (row.try_get("audit_seq")?, row.try_get("audit_hash")?),
                        dirty: false,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            for locked in rows {
                self.sessions.insert(locked.info.id.clone(), locked);
            }
        }
        Ok(())
    }

    /// Looks up the journal entries of many (session, call id) pairs in one
    /// go, so that [`SessionTx::find_call`] answers them without a query
    /// each. Only for sessions locked in this transaction (an unlocked
    /// session could gain entries meanwhile); other pairs are skipped.
    pub async fn prefetch_calls(&mut self, pairs: &[(&str, &str)]) -> Result<(), Error> {
        let mut wanted: Vec<(&str, &str)> = pairs
            .iter()
            .copied()
            .filter(|(id, call)| {
                self.sessions.contains_key(*id) && !self.calls.get(*id).is_some_and(|calls| calls.contains_key(*call))
            })
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut found: Vec<(String, JournalEntry)> = Vec::new();
        match &mut self.inner {
            TxInner::Sqlite(c) => {
                for (id, call) in &wanted {
                    let entries = c.rows(SQLITE_CALL, &[Bind::Text(id), Bind::Text(call)], native_entry)?;
                    found.extend(entries.into_iter().map(|entry| ((*id).to_owned(), entry)));
                }
            }
            TxInner::Postgres(c) => {
                let statements = batch::statements(Shape::Calls, &wanted, |(id, call), binds| {
                    binds.extend([Bind::Text(id), Bind::Text(call)]);
                });
                for statement in statements {
                    let sql = sqlx::AssertSqlSafe(statement.sql_with(Placeholders::Numbered { next: 1 }));
                    let rows = bind_all!(sqlx::query(sql), statement.binds()).fetch_all(&mut **c).await?;
                    for row in &rows {
                        found.push((row.try_get("session_id")?, journal_entry(row)?));
                    }
                }
            }
        }
        self.absorb_calls(&wanted, found);
        Ok(())
    }

    /// Locks the sessions `ids` ([`SessionTx::lock_all`]) and looks up the
    /// calls `pairs` ([`SessionTx::prefetch_calls`]). Not for snapshots.
    pub async fn lock_and_prefetch(&mut self, ids: &[&str], pairs: &[(&str, &str)]) -> Result<(), Error> {
        if self.read_only {
            return Err(Error::ReadOnly("a snapshot locks nothing".to_owned()));
        }
        self.lock_all(ids).await?;
        self.prefetch_calls(pairs).await
    }

    /// Takes in the entries `found` for the (session, call) pairs `wanted`,
    /// whose lists are complete from now on.
    fn absorb_calls(&mut self, wanted: &[(&str, &str)], mut found: Vec<(String, JournalEntry)>) {
        found.sort_by_key(|(_, entry)| entry.seq);
        for (id, call) in wanted {
            self.calls.entry((*id).to_owned()).or_default().insert((*call).to_owned(), Vec::new());
        }
        // Stored entries come before appended ones: appends follow the stored last_seq.
        let appended = self.pending.journal.iter().map(|(id, entry)| (id, entry));
        for (id, entry) in found.iter().map(|(id, entry)| (id, entry)).chain(appended) {
            if let Some(call) = &entry.call_id
                && let Some(entries) = self.calls.get_mut(id).and_then(|calls| calls.get_mut(call))
                && !entries.iter().any(|known| known.seq == entry.seq)
            {
                entries.push(entry.clone());
            }
        }
    }

    /// The session `id`, if it is the one the calls work on.
    fn locked(&mut self, id: &str) -> Result<&mut Locked, Error> {
        match (&self.current, self.sessions.get_mut(id)) {
            (Some(current), Some(locked)) if current == id => Ok(locked),
            _ => Err(Error::NoSession(format!("{id} (not the session locked in this transaction)"))),
        }
    }

    /// Session `id` as this transaction holds it (locked, or read in a
    /// snapshot), if it does; does not change the current session.
    pub fn held(&self, id: &str) -> Option<&SessionInfo> {
        self.sessions.get(id).map(|locked| &locked.info)
    }

    /// The locked session as it is now.
    pub fn info(&self) -> Result<&SessionInfo, Error> {
        self.current
            .as_ref()
            .and_then(|id| self.sessions.get(id))
            .map(|l| &l.info)
            .ok_or_else(|| Error::NoSession("(none locked in this transaction)".to_owned()))
    }

    /// The session's checkpoint (the newest, appended in this transaction or stored).
    pub async fn checkpoint(&mut self, id: &str) -> Result<Option<Checkpoint>, Error> {
        if let Some((seq, state)) = self.pending.checkpoints.get(id) {
            return Ok(Some(Checkpoint { seq: *seq, state: state.clone() }));
        }
        match &mut self.inner {
            TxInner::Sqlite(c) => c.row(SELECT_CHECKPOINT, &[Bind::Text(id)], |row| {
                Ok(Checkpoint { seq: row.get(0)?, state: row.get(1)? })
            }),
            TxInner::Postgres(c) => {
                let row = sqlx::query(SELECT_CHECKPOINT).bind(id).fetch_optional(&mut **c).await?;
                Ok(row.map(|row| checkpoint_row(&row)).transpose()?)
            }
        }
    }

    /// Journal entries after `seq`, in order (stored, then appended in this transaction).
    pub async fn journal_after(&mut self, id: &str, seq: i64) -> Result<Vec<JournalEntry>, Error> {
        let mut rows = match &mut self.inner {
            TxInner::Sqlite(c) => c.rows(SELECT_JOURNAL_AFTER, &[Bind::Text(id), Bind::Int(seq)], native_entry)?,
            TxInner::Postgres(c) => {
                let rows = sqlx::query(SELECT_JOURNAL_AFTER).bind(id).bind(seq).fetch_all(&mut **c).await?;
                rows.iter().map(journal_entry).collect::<Result<Vec<_>, _>>()?
            }
        };
        let appended = self.pending.journal.iter().filter(|(session, entry)| session == id && entry.seq > seq);
        rows.extend(appended.map(|(_, entry)| entry.clone()));
        Ok(rows)
    }

    /// The first journal entry of `kind` for call `call_id`, if any.
    pub async fn find_call(&mut self, id: &str, call_id: &str, kind: &str) -> Result<Option<JournalEntry>, Error> {
        if let Some(entries) = self.calls.get(id).and_then(|calls| calls.get(call_id)) {
            return Ok(entries.iter().find(|entry| entry.kind == kind).cloned());
        }
        const SQL: &str = "SELECT seq, kind, call_id, body, at_ms FROM tollgate_journal \
                           WHERE session_id = $1 AND call_id = $2 AND kind = $3 ORDER BY seq LIMIT 1";
        let row = match &mut self.inner {
            TxInner::Sqlite(c) => {
                // The first by `seq`, picked here: with `ORDER BY seq` SQLite
                // walks the session's journal by its primary key instead of
                // searching the call index.
                const SQLITE: &str = "SELECT seq, kind, call_id, body, at_ms FROM tollgate_journal \
                                      WHERE session_id = ?1 AND call_id = ?2 AND kind = ?3";
                let entries = c.rows(SQLITE, &[Bind::Text(id), Bind::Text(call_id), Bind::Text(kind)], native_entry)?;
                entries.into_iter().min_by_key(|entry| entry.seq)
            }
            TxInner::Postgres(c) => {
                let row = sqlx::query(SQL).bind(id).bind(call_id).bind(kind).fetch_optional(&mut **c).await?;
                row.map(|row| journal_entry(&row)).transpose()?
            }
        };
        if let Some(stored) = row {
            return Ok(Some(stored));
        }
        let appended =
            self.pending.journal.iter().find(|(session, entry)| {
                session == id && entry.kind == kind && entry.call_id.as_deref() == Some(call_id)
            });
        Ok(appended.map(|(_, entry)| entry.clone()))
    }

    /// Appends journal entries after the session's last one and audit
    /// records (chained into both chains at commit), and replaces the
    /// checkpoint if one is given. Returns the sequence number of the last
    /// entry appended. Nothing is written before [`SessionTx::commit`].
    pub async fn append(
        &mut self,
        id: &str,
        entries: &[NewEntry],
        audits: &[NewAudit],
        checkpoint: Option<&str>,
    ) -> Result<i64, Error> {
        if self.read_only {
            return Err(Error::ReadOnly(format!("session {id} was read from a snapshot; nothing can be appended")));
        }
        // Checked before anything is buffered: one bad write fails here, alone,
        // not the whole transaction at commit.
        for new in entries {
            crate::refuse_nul("a journal entry", &new.body)?;
            crate::refuse_nul("a journal entry's kind", &new.kind)?;
            crate::refuse_nul("a journal entry's call id", new.call_id.as_deref().unwrap_or_default())?;
        }
        for audit in audits {
            crate::refuse_nul("an audit record", &audit.body)?;
            crate::refuse_nul("an audit record's kind", &audit.kind)?;
        }
        let locked = self.locked(id)?;
        let mut seq = locked.info.last_seq;
        for new in entries {
            seq += 1;
            let entry = JournalEntry {
                seq,
                kind: new.kind.clone(),
                call_id: new.call_id.clone(),
                body: new.body.clone(),
                at_ms: new.at_ms,
            };
            if let Some(call) = &entry.call_id
                && let Some(known) = self.calls.get_mut(id).and_then(|calls| calls.get_mut(call))
            {
                known.push(entry.clone());
            }
            self.pending.journal.push((id.to_owned(), entry));
        }
        self.pending.audit.extend(audits.iter().map(|audit| (id.to_owned(), audit.clone())));
        if let Some(state) = checkpoint {
            self.pending.checkpoints.insert(id.to_owned(), (seq, state.to_owned()));
        }
        let locked = self.locked(id)?;
        locked.info.last_seq = seq;
        locked.dirty = true;
        Ok(seq)
    }

    /// Chains the audit records appended (locking the audit head: the last
    /// lock the transaction takes), writes everything appended, the changed
    /// session rows and the head, then commits: everything appended is
    /// durable when this returns.
    /// (SQLite: writes and `COMMIT` on one blocking thread, `native.rs`.)
    pub async fn commit(self) -> Result<(), Error> {
        let SessionTx { mut inner, mut sessions, pending, signer, .. } = self;
        let Pending { journal, audit: unchained, checkpoints, handoffs } = pending;
        // INVARIANT: the audit head is locked here, after every session row
        // this transaction locks, never in between (see `Pending::audit`).
        let mut head = None;
        let mut audit = Vec::with_capacity(unchained.len());
        if !unchained.is_empty() {
            let mut chain_head = audit::read_head(&mut inner).await?;
            for (id, record) in &unchained {
                let Some(locked) = sessions.get_mut(id) else {
                    return Err(Error::NoSession(format!("{id} (an audit record for a session not locked)")));
                };
                audit::chain(id, &mut chain_head, &mut locked.audit, std::slice::from_ref(record), &mut audit);
            }
            // Signed here, once per commit, with the key the database does
            // not hold; an unsigned head (no signer) clears the signature.
            let signature = signer.map(|s| (s.signer(), s.sign(chain_head.0, &chain_head.1)));
            head = Some((chain_head, signature));
        }
        let mut dirty: Vec<Locked> = sessions.into_values().filter(|l| l.dirty).collect();
        dirty.sort_unstable_by(|a, b| a.info.id.cmp(&b.info.id));
        let written = Written { journal, audit, checkpoints: checkpoints.into_iter().collect(), dirty, head, handoffs };
        match inner {
            TxInner::Sqlite(tx) => tx.commit(move |writer| written.write_sqlite(writer)).await,
            TxInner::Postgres(mut tx) => {
                batch::execute_postgres(&mut tx, &written.statements()).await?;
                for row in &written.handoffs {
                    let statement = sqlx::query(crate::handoffs::UPSERT);
                    bind_all!(statement, &crate::handoffs::binds(row)).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    }
}

/// What a transaction writes at commit.
struct Written {
    journal: Vec<(String, JournalEntry)>,
    audit: Vec<AuditRecord>,
    /// (session, (seq, state)), one per session.
    checkpoints: Vec<(String, (i64, String))>,
    /// Changed session rows, in id order.
    dirty: Vec<Locked>,
    /// The new head, and who signed it with what.
    head: Option<NewHead>,
    /// Handoff rows, in order.
    handoffs: Vec<crate::handoffs::HandoffRow>,
}

impl Written {
    /// The multi-row statements that write it: journal entries, audit
    /// records, checkpoints, the changed session rows and the audit head.
    fn statements(&self) -> Vec<batch::Statement<'_>> {
        let mut statements = batch::statements(Shape::Journal, &self.journal, |e, b| b.extend(journal_binds(e)));
        statements.extend(batch::statements(Shape::Audit, &self.audit, |r, b| b.extend(audit_binds(r))));
        statements
            .extend(batch::statements(Shape::Checkpoints, &self.checkpoints, |c, b| b.extend(checkpoint_binds(c))));
        statements.extend(batch::statements(Shape::Sessions, &self.dirty, |l, b| b.extend(session_binds(l))));
        statements.extend(batch::statements(Shape::Head, self.head.as_slice(), |h, b| b.extend(head_binds(h))));
        statements
    }

    /// Writes it on SQLite: one prepared statement a row. On a direct
    /// connection a statement costs no round trip, and these short ones
    /// cost less than the multi-row forms (`UPDATE … FROM (VALUES …)`
    /// above all).
    fn write_sqlite(&self, writer: &mut crate::native::Writer<'_>) -> Result<(), Error> {
        const JOURNAL: &str = "INSERT INTO tollgate_journal (session_id, seq, kind, call_id, body, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
        const AUDIT: &str = "INSERT INTO tollgate_audit (seq, session_id, session_seq, kind, body, at_ms, prev_hash, \
                             session_prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
        const CHECKPOINT: &str = "INSERT INTO tollgate_checkpoints (session_id, seq, state) VALUES (?1, ?2, ?3) \
                                  ON CONFLICT (session_id) DO UPDATE SET seq = excluded.seq, state = excluded.state";
        const SESSION: &str =
            "UPDATE tollgate_sessions SET last_seq = ?2, audit_seq = ?3, audit_hash = ?4 WHERE id = ?1";
        const HEAD: &str =
            "UPDATE tollgate_audit_head SET seq = ?1, hash = ?2, signer = ?3, signature = ?4 WHERE id = 1";
        for e in &self.journal {
            writer.execute(JOURNAL, &journal_binds(e))?;
        }
        for r in &self.audit {
            writer.execute(AUDIT, &audit_binds(r))?;
        }
        for c in &self.checkpoints {
            writer.execute(CHECKPOINT, &checkpoint_binds(c))?;
        }
        for l in &self.dirty {
            writer.execute(SESSION, &session_binds(l))?;
        }
        if let Some(h) = &self.head {
            writer.execute(HEAD, &head_binds(h))?;
        }
        let upsert = crate::handoffs::UPSERT.replace('$', "?");
        for row in &self.handoffs {
            writer.execute(&upsert, &crate::handoffs::binds(row))?;
        }
        Ok(())
    }
}

// A written row's values, in the column order of its statements (the
// multi-row ones of `batch.rs` and SQLite's one-row ones alike).

/// A journal entry's values, with its session.
fn journal_binds((id, e): &(String, JournalEntry)) -> [Bind<'_>; 6] {
    let call = Bind::OptionalText(e.call_id.as_deref());
    [Bind::Text(id), Bind::Int(e.seq), Bind::Text(&e.kind), call, Bind::Text(&e.body), Bind::Int(e.at_ms)]
}

/// A checkpoint's values: session, seq, state.
fn checkpoint_binds((id, (seq, state)): &(String, (i64, String))) -> [Bind<'_>; 3] {
    [Bind::Text(id), Bind::Int(*seq), Bind::Text(state)]
}

/// A changed session row's values: id, last seq, audit chain position.
fn session_binds(l: &Locked) -> [Bind<'_>; 4] {
    [Bind::Text(&l.info.id), Bind::Int(l.info.last_seq), Bind::Int(l.audit.0), Bind::Text(&l.audit.1)]
}

/// A head written at commit: (seq, hash), and (signer, signature) if signed.
type NewHead = ((i64, String), Option<(String, String)>);

/// The audit head's values: seq, hash, signer, signature.
fn head_binds(((seq, hash), signed): &NewHead) -> [Bind<'_>; 4] {
    let (signer, signature) = match signed {
        Some((signer, signature)) => (Some(signer.as_str()), Some(signature.as_str())),
        None => (None, None),
    };
    [Bind::Int(*seq), Bind::Text(hash), Bind::OptionalText(signer), Bind::OptionalText(signature)]
}

/// An audit record's values, in its table's column order.
fn audit_binds(r: &AuditRecord) -> [Bind<'_>; 9] {
    [
        Bind::Int(r.seq),
        Bind::Text(&r.session_id),
        Bind::Int(r.session_seq),
        Bind::Text(&r.kind),
        Bind::Text(&r.body),
        Bind::Int(r.at_ms),
        Bind::Text(&r.prev_hash),
        Bind::Text(&r.session_prev_hash),
        Bind::Text(&r.hash),
    ]
}

/// A session's row (SQLite, direct connection).
const SQLITE_SESSION: &str = "SELECT id, workflow_hash, workflow_name, workflow_version, parent_id, created_ms, \
                              last_seq, audit_seq, audit_hash, tenant FROM tollgate_sessions WHERE id = ?1";

/// A call's journal entries (SQLite, direct connection), found through the
/// call index. Not `ORDER BY seq`: SQLite would then walk the session's
/// whole journal in the primary key's order instead (the entries are sorted
/// after, `absorb_calls`).
const SQLITE_CALL: &str = "SELECT seq, kind, call_id, body, at_ms FROM tollgate_journal \
                           WHERE session_id = ?1 AND call_id = ?2";

/// A session's row as read by [`SQLITE_SESSION`].
fn native_locked(row: &rusqlite::Row<'_>) -> rusqlite::Result<Locked> {
    Ok(Locked {
        info: SessionInfo {
            id: row.get(0)?,
            workflow_hash: row.get(1)?,
            workflow_name: row.get(2)?,
            workflow_version: row.get(3)?,
            parent_id: row.get(4)?,
            created_ms: row.get(5)?,
            last_seq: row.get(6)?,
            tenant: row.get(9)?,
        },
        audit: (row.get(7)?, row.get(8)?),
        dirty: false,
    })
}

/// A journal entry as read by [`crate::SELECT_JOURNAL_AFTER`] and the like
/// (SQLite, direct connection).
fn native_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<JournalEntry> {
    Ok(JournalEntry {
        seq: row.get(0)?,
        kind: row.get(1)?,
        call_id: row.get(2)?,
        body: row.get(3)?,
        at_ms: row.get(4)?,
    })
}
