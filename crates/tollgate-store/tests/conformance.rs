//! The store's conformance suite: every test runs against SQLite and against
//! the real PostgreSQL server (a fresh schema each), and both must behave the
//! same.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

use std::future::Future;
use tollgate_store::testing::{postgres_schema_url, sqlite_url};
use tollgate_store::{AuditHead, Error, NewAudit, NewEntry, NewSession, SCHEMA_VERSION, Store, StoredWorkflow};

/// Runs `test` on a fresh SQLite store and a fresh PostgreSQL store.
async fn on_both<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let sqlite = Store::open(&sqlite_url().unwrap()).await.unwrap();
    test(sqlite).await;
    if let Some(url) = postgres_schema_url().await {
        let postgres = Store::open(&url).await.unwrap();
        test(postgres).await;
    }
}

async fn with_session(store: &Store, id: &str) {
    store
        .put_workflow(&StoredWorkflow { hash: "h1".into(), name: "w".into(), version: 1, text: "[workflow]".into() })
        .await
        .unwrap();
    store
        .create_session(&NewSession {
            id: id.into(),
            workflow_hash: "h1".into(),
            workflow_name: "w".into(),
            workflow_version: 1,
            parent_id: None,
            created_ms: 1_000,
        })
        .await
        .unwrap();
}

fn entry(kind: &str, call: Option<&str>, body: &str) -> NewEntry {
    NewEntry { kind: kind.into(), call_id: call.map(str::to_owned), body: body.into(), at_ms: 5 }
}

fn audit(body: &str) -> NewAudit {
    NewAudit { kind: "decision.allow".into(), body: body.into(), at_ms: 7 }
}

/// Runs raw SQL on the store's database (to damage it on purpose).
async fn raw(store: &Store, sql: &str) {
    tollgate_store::testing::execute(store, sql).await.unwrap();
}

#[tokio::test]
async fn sessions_are_created_once_and_listed() {
    on_both(|store| async move {
        with_session(&store, "s1").await;
        let again = store
            .create_session(&NewSession {
                id: "s1".into(),
                workflow_hash: "h1".into(),
                workflow_name: "w".into(),
                workflow_version: 1,
                parent_id: None,
                created_ms: 2_000,
            })
            .await;
        assert!(matches!(again, Err(Error::SessionExists(_))), "{} {again:?}", store.backend());
        let info = store.session("s1").await.unwrap().unwrap();
        assert_eq!((info.created_ms, info.last_seq, info.workflow_version), (1_000, 0, 1));
        assert_eq!(store.sessions(10).await.unwrap().len(), 1);
        assert!(store.session("nope").await.unwrap().is_none());
        assert!(matches!(store.lock_session("nope").await, Err(Error::NoSession(_))));
        assert_eq!(store.workflow("h1").await.unwrap().unwrap().text, "[workflow]");
    })
    .await;
}

#[tokio::test]
async fn a_committed_append_is_kept_and_a_dropped_one_leaves_nothing() {
    on_both(|store| async move {
        with_session(&store, "s1").await;
        let mut tx = store.lock_session("s1").await.unwrap();
        let last = tx
            .append(
                "s1",
                &[entry("decision", Some("c1"), "{\"a\":1}"), entry("result", Some("c1"), "{}")],
                &[],
                Some("{\"cp\":1}"),
            )
            .await
            .unwrap();
        assert_eq!(last, 2);
        tx.commit().await.unwrap();

        let mut tx = store.lock_session("s1").await.unwrap();
        tx.append("s1", &[entry("decision", Some("c2"), "{}")], &[audit("{}")], Some("{\"cp\":2}")).await.unwrap();
        drop(tx); // no commit: rolled back

        let journal = store.journal("s1").await.unwrap();
        assert_eq!(journal.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2], "{}", store.backend());
        assert_eq!(journal[0].call_id.as_deref(), Some("c1"));
        assert_eq!(store.session("s1").await.unwrap().unwrap().last_seq, 2);
        let checkpoint = store.checkpoint("s1").await.unwrap().unwrap();
        assert_eq!((checkpoint.seq, checkpoint.state.as_str()), (2, "{\"cp\":1}"));
        assert_eq!(store.audit_head().await.unwrap().seq, 0);

        let mut tx = store.lock_session("s1").await.unwrap();
        assert_eq!(tx.find_call("s1", "c1", "result").await.unwrap().unwrap().seq, 2);
        assert!(tx.find_call("s1", "c2", "decision").await.unwrap().is_none());
        assert_eq!(tx.journal_after("s1", 1).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn concurrent_appends_to_one_session_are_serialised() {
    on_both(|store| async move {
        with_session(&store, "s1").await;
        let mut tasks = Vec::new();
        for worker in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..10 {
                    let mut tx = store.lock_session("s1").await.unwrap();
                    // Read, then write what was read: lost updates would show.
                    let before = tx.info().unwrap().last_seq;
                    let body = format!("{{\"after\":{before}}}");
                    let call = format!("w{worker}-{n}");
                    tx.append("s1", &[entry("decision", Some(&call), &body)], &[audit(&body)], None).await.unwrap();
                    tx.commit().await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let journal = store.journal("s1").await.unwrap();
        assert_eq!(journal.len(), 80, "{}", store.backend());
        for e in &journal {
            assert_eq!(e.body, format!("{{\"after\":{}}}", e.seq - 1), "entry {} saw a stale session", e.seq);
        }
        let report = store.verify_audit().await.unwrap();
        assert_eq!((report.records, report.problem), (80, None));
    })
    .await;
}

/// Two sessions, three records each, interleaved.
async fn six_records(store: &Store) {
    with_session(store, "s1").await;
    store
        .create_session(&NewSession {
            id: "s2".into(),
            workflow_hash: "h1".into(),
            workflow_name: "w".into(),
            workflow_version: 1,
            parent_id: Some("s1".into()),
            created_ms: 1_001,
        })
        .await
        .unwrap();
    for n in 0..3 {
        for session in ["s1", "s2"] {
            let mut tx = store.lock_session(session).await.unwrap();
            tx.append(session, &[], &[audit(&format!("{{\"n\":{n}}}"))], None).await.unwrap();
            tx.commit().await.unwrap();
        }
    }
}

#[tokio::test]
async fn an_untouched_audit_log_verifies() {
    on_both(|store| async move {
        six_records(&store).await;
        let report = store.verify_audit().await.unwrap();
        assert_eq!((report.records, report.sessions, report.problem), (6, 2, None), "{}", store.backend());
        let records = store.audit_records(0, 100).await.unwrap();
        assert_eq!(records.iter().map(|r| r.session_seq).collect::<Vec<_>>(), vec![1, 1, 2, 2, 3, 3]);
        assert_eq!(tollgate_store::verify_records(&records, &store.audit_head().await.unwrap()).problem, None);
    })
    .await;
}

#[tokio::test]
async fn verify_names_the_first_altered_removed_inserted_or_reordered_record() {
    // (damage, the record verify must name, a word its message must contain)
    let cases: [(&str, i64, &str); 6] = [
        ("UPDATE tollgate_audit SET body = '{\"n\":9}' WHERE seq = 3", 3, "altered"),
        ("DELETE FROM tollgate_audit WHERE seq = 4", 4, "missing"),
        ("DELETE FROM tollgate_audit WHERE seq = 6", 6, "removed from the end"),
        (
            // Swap the contents of records 2 and 3, keeping their positions.
            "UPDATE tollgate_audit SET session_id = CASE seq WHEN 2 THEN 's1' ELSE 's2' END, \
             prev_hash = CASE seq WHEN 2 THEN (SELECT prev_hash FROM tollgate_audit WHERE seq = 3) \
             ELSE (SELECT prev_hash FROM tollgate_audit WHERE seq = 2) END WHERE seq IN (2, 3)",
            2,
            "does not follow",
        ),
        (
            // A forged record appended at the end, chained correctly to the last one.
            "INSERT INTO tollgate_audit SELECT 7, session_id, session_seq + 1, kind, body, at_ms, hash, hash, \
             'f00d' FROM tollgate_audit WHERE seq = 6",
            7,
            "altered",
        ),
        (
            // Everything shifted up by one to make room for a forged first record.
            "UPDATE tollgate_audit SET seq = seq + 10",
            1,
            "missing",
        ),
    ];
    for (damage, seq, word) in cases {
        on_both(|store| async move {
            six_records(&store).await;
            raw(&store, damage).await;
            let report = store.verify_audit().await.unwrap();
            let problem = report.problem.unwrap_or_else(|| panic!("{}: not caught: {damage}", store.backend()));
            assert_eq!(problem.seq, seq, "{}: {damage}: {problem:?}", store.backend());
            assert!(problem.message.contains(word), "{damage}: {problem:?}");
        })
        .await;
    }
}

/// A record appended behind the store's back with a correct hash and both
/// links right (anyone can compute SHA-256) is still caught: the head the
/// store keeps does not reach it.
#[tokio::test]
async fn verify_catches_a_correctly_hashed_record_appended_past_the_head() {
    on_both(|store| async move {
        six_records(&store).await;
        let last = store.audit_records(0, 100).await.unwrap().pop().unwrap();
        let mut forged = tollgate_store::AuditRecord {
            seq: last.seq + 1,
            session_id: last.session_id.clone(),
            session_seq: last.session_seq + 1,
            kind: "decision.allow".into(),
            body: "{\"forged\":true}".into(),
            at_ms: last.at_ms,
            prev_hash: last.hash.clone(),
            session_prev_hash: last.hash.clone(),
            hash: String::new(),
        };
        forged.hash = tollgate_store::record_hash(&forged);
        raw(
            &store,
            &format!(
                "INSERT INTO tollgate_audit VALUES ({}, '{}', {}, '{}', '{}', {}, '{}', '{}', '{}')",
                forged.seq,
                forged.session_id,
                forged.session_seq,
                forged.kind,
                forged.body,
                forged.at_ms,
                forged.prev_hash,
                forged.session_prev_hash,
                forged.hash
            ),
        )
        .await;
        let report = store.verify_audit().await.unwrap();
        let problem = report.problem.unwrap_or_else(|| panic!("{}: a forged append passed", store.backend()));
        assert_eq!(problem.seq, 7, "{problem:?}");
        assert!(problem.message.contains("past its head"), "{problem:?}");
    })
    .await;
}

/// Verifying a log that is being written: records committed while it is
/// read are not mistaken for records added behind the store's back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_of_a_log_being_written_reports_no_problem() {
    on_both(|store| async move {
        with_session(&store, "s1").await;
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..300 {
                    let mut tx = store.lock_session("s1").await.unwrap();
                    tx.append("s1", &[], &[audit(&format!("{{\"n\":{n}}}")), audit("{}")], None).await.unwrap();
                    tx.commit().await.unwrap();
                }
                600
            })
        };
        let (mut seen, mut verified) = (0, 0);
        while !writer.is_finished() {
            let report = store.verify_audit().await.unwrap();
            assert_eq!(report.problem, None, "{}", store.backend());
            assert!(report.records >= seen);
            seen = report.records;
            verified += 1;
        }
        let written = writer.await.unwrap();
        assert!(verified > 0);
        assert_eq!(store.verify_audit().await.unwrap().records, written);
    })
    .await;
}

#[tokio::test]
async fn reopening_keeps_everything_and_a_newer_schema_is_refused_untouched() {
    let url = sqlite_url().unwrap();
    let store = Store::open(&url).await.unwrap();
    six_records(&store).await;
    store.close().await;
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.verify_audit().await.unwrap().records, 6);
    raw(&store, &format!("UPDATE tollgate_meta SET value = '{}' WHERE key = 'schema_version'", SCHEMA_VERSION + 1))
        .await;
    store.close().await;
    match Store::open(&url).await {
        Err(Error::NewerSchema { found, .. }) => assert_eq!(found, SCHEMA_VERSION + 1),
        other => panic!("a newer schema must be refused: {other:?}"),
    }
    if let Some(pg) = postgres_schema_url().await {
        let store = Store::open(&pg).await.unwrap();
        six_records(&store).await;
        raw(&store, &format!("UPDATE tollgate_meta SET value = '{}' WHERE key = 'schema_version'", SCHEMA_VERSION + 1))
            .await;
        assert!(matches!(Store::open(&pg).await, Err(Error::NewerSchema { .. })));
        assert_eq!(store.journal("s1").await.unwrap().len(), 0);
        assert_eq!(store.verify_audit().await.unwrap().records, 6, "refusing must leave the data intact");
    }
}

#[tokio::test]
async fn a_corrupt_file_or_a_bad_url_is_a_clear_error_and_nothing_is_written() {
    let dir = tollgate_store::testing::temp_dir("tollgate_corrupt").unwrap();
    let path = dir.join("tollgate.db");
    let garbage = b"this is not an SQLite database, but it is somebody's data".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    let error = Store::open(&path.display().to_string()).await.unwrap_err();
    assert!(matches!(error, Error::Open { .. }), "{error:?}");
    assert!(error.to_string().contains("tollgate.db"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "the file must be left as it was");

    for url in ["postgres://nobody@127.0.0.1:1/none", "mysql://localhost/db", ""] {
        let error = Store::open(url).await.unwrap_err();
        assert!(matches!(error, Error::Open { .. } | Error::BadUrl { .. }), "{url}: {error:?}");
    }
    let head = AuditHead { seq: 0, hash: "0".repeat(64) };
    assert_eq!(tollgate_store::verify_records(&[], &head).problem, None);
}

#[tokio::test]
async fn a_transaction_whose_batch_write_fails_keeps_nothing_of_any_session() {
    on_both(|store| async move {
        six_records(&store).await;
        // A stray journal row where s1's next append will go: the batch insert at commit breaks the key.
        raw(&store, "INSERT INTO tollgate_journal (session_id, seq, kind, call_id, body, at_ms) VALUES ('s1', 2, 'x', NULL, '{}', 0)")
            .await;
        let mut tx = store.begin().await.unwrap();
        tx.lock_all(&["s2", "s1"]).await.unwrap();
        tx.lock("s2").await.unwrap();
        tx.append("s2", &[entry("decision", Some("c9"), "{}")], &[audit("{\"s\":2}")], Some("{\"cp\":2}")).await.unwrap();
        tx.lock("s1").await.unwrap();
        tx.append("s1", &[entry("decision", Some("c1"), "{}"), entry("result", Some("c1"), "{}")], &[audit("{}")], None)
            .await
            .unwrap();
        // Reads inside the transaction see what was appended, before it is written.
        assert_eq!(tx.find_call("s1", "c1", "result").await.unwrap().unwrap().seq, 2);
        assert_eq!(tx.journal_after("s2", 0).await.unwrap().len(), 1);
        assert_eq!(tx.checkpoint("s2").await.unwrap().unwrap().state, "{\"cp\":2}");
        assert!(tx.commit().await.is_err(), "{}: the broken batch must fail the commit", store.backend());
        assert_eq!(store.journal("s2").await.unwrap().len(), 0, "{}", store.backend());
        assert!(store.checkpoint("s2").await.unwrap().is_none());
        assert_eq!(store.session("s1").await.unwrap().unwrap().last_seq, 0);
        assert_eq!(store.audit_head().await.unwrap().seq, 6);
        assert_eq!(store.verify_audit().await.unwrap().problem, None);
    })
    .await;
}

#[tokio::test]
async fn appends_beyond_one_statements_bind_limit_are_written_whole_and_verify() {
    on_both(|store| async move {
        with_session(&store, "s1").await;
        // 9 values an audit record, 6 a journal entry: 5,000 of each is more
        // than one statement holds on either backend.
        let entries: Vec<NewEntry> =
            (0..5_000).map(|n| entry("decision", Some(&format!("c{n}")), &format!("{{\"n\":{n}}}"))).collect();
        let audits: Vec<NewAudit> = (0..5_000).map(|n| audit(&format!("{{\"n\":{n}}}"))).collect();
        let mut tx = store.lock_session("s1").await.unwrap();
        assert_eq!(tx.append("s1", &entries, &audits, Some("{}")).await.unwrap(), 5_000);
        tx.commit().await.unwrap();
        let journal = store.journal("s1").await.unwrap();
        assert_eq!(journal.len(), 5_000, "{}", store.backend());
        assert!(journal.iter().enumerate().all(|(n, e)| e.body == format!("{{\"n\":{n}}}")));
        let report = store.verify_audit().await.unwrap();
        assert_eq!((report.records, report.problem), (5_000, None), "{}", store.backend());
        // Found by one lookup of many calls, and by a lookup of one.
        let mut tx = store.lock_session("s1").await.unwrap();
        let pairs: Vec<(String, String)> = (0..3_000).map(|n| ("s1".to_owned(), format!("c{n}"))).collect();
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(s, c)| (s.as_str(), c.as_str())).collect();
        tx.prefetch_calls(&pairs).await.unwrap();
        assert_eq!(tx.find_call("s1", "c2999", "decision").await.unwrap().unwrap().seq, 3_000);
        assert_eq!(tx.find_call("s1", "c4999", "decision").await.unwrap().unwrap().seq, 5_000);
        assert!(tx.find_call("s1", "c1", "result").await.unwrap().is_none());
    })
    .await;
}

/// Locking a group's sessions and looking up its calls in one go leaves the
/// transaction as the separate calls would: every session locked, every
/// call known, the chains continued where they ended; a session that does
/// not exist is refused when it is locked.
#[tokio::test]
async fn sessions_and_calls_read_in_one_go_behave_as_read_apart() {
    on_both(|store| async move {
        six_records(&store).await;
        let mut tx = store.lock_session("s1").await.unwrap();
        tx.append("s1", &[entry("decision", Some("c1"), "{}")], &[audit("{}")], None).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let pairs = [("s1", "c1"), ("s2", "c1"), ("ghost", "c1"), ("s1", "c2")];
        tx.lock_and_prefetch(&["s2", "s1", "ghost", "s1"], &pairs).await.unwrap();
        assert_eq!(tx.find_call("s1", "c1", "decision").await.unwrap().unwrap().seq, 1);
        assert!(tx.find_call("s2", "c1", "decision").await.unwrap().is_none());
        assert!(matches!(tx.lock("ghost").await, Err(Error::NoSession(_))), "{}", store.backend());
        for session in ["s2", "s1"] {
            tx.lock(session).await.unwrap();
            tx.append(session, &[entry("decision", Some("c2"), "{}")], &[audit("{}")], None).await.unwrap();
        }
        tx.commit().await.unwrap();
        let report = store.verify_audit().await.unwrap();
        assert_eq!((report.records, report.problem), (9, None), "{}", store.backend());
        assert_eq!(store.journal("s1").await.unwrap().len(), 2);
    })
    .await;
}

/// Verify reads chunks ahead, guessing where each starts from a log without
/// gaps; a gap or a reordering past the first chunk must still be named.
#[tokio::test]
async fn verify_names_a_gap_or_a_swap_deep_in_a_log_read_in_chunks() {
    let cases = [
        ("DELETE FROM tollgate_audit WHERE seq = 1025", 1025, "missing"),
        ("DELETE FROM tollgate_audit WHERE seq = 2500", 2500, "missing"),
        ("DELETE FROM tollgate_audit WHERE seq BETWEEN 1000 AND 3100", 1000, "missing"),
        (
            "UPDATE tollgate_audit SET seq = 99999 WHERE seq = 2049; \
             UPDATE tollgate_audit SET seq = 2049 WHERE seq = 2050; \
             UPDATE tollgate_audit SET seq = 2050 WHERE seq = 99999",
            2049,
            "does not follow",
        ),
        ("DELETE FROM tollgate_audit WHERE seq > 3000", 3001, "removed from the end"),
    ];
    for (damage, seq, message) in cases {
        on_both(|store| async move {
            with_session(&store, "s1").await;
            let audits: Vec<NewAudit> = (0..3_300).map(|n| audit(&format!("{{\"n\":{n}}}"))).collect();
            let mut tx = store.lock_session("s1").await.unwrap();
            tx.append("s1", &[], &audits, None).await.unwrap();
            tx.commit().await.unwrap();
            for statement in damage.split("; ") {
                raw(&store, statement).await;
            }
            let problem = store.verify_audit().await.unwrap().problem.unwrap();
            assert_eq!(problem.seq, seq, "{damage} on {}: {problem:?}", store.backend());
            assert!(problem.message.contains(message), "{damage}: {problem:?}");
        })
        .await;
    }
}

/// SQLite stores whatever type a value has: a number replaced by text or a
/// text by a blob is named as an altered record, not a failure to read.
#[tokio::test]
async fn verify_on_sqlite_names_a_record_whose_values_changed_type() {
    let cases = [
        ("UPDATE tollgate_audit SET at_ms = 'seven' WHERE seq = 3", 3, "altered"),
        ("UPDATE tollgate_audit SET session_seq = 2.5 WHERE seq = 4", 4, "altered"),
        ("UPDATE tollgate_audit SET body = CAST(body AS BLOB) WHERE seq = 2", 2, "altered"),
        // A gap before such a record is named first.
        ("DELETE FROM tollgate_audit WHERE seq = 3; UPDATE tollgate_audit SET at_ms = 'x' WHERE seq = 4", 3, "missing"),
    ];
    for (damage, seq, word) in cases {
        let store = Store::open(&sqlite_url().unwrap()).await.unwrap();
        six_records(&store).await;
        for statement in damage.split("; ") {
            raw(&store, statement).await;
        }
        let problem = store.verify_audit().await.unwrap().problem.unwrap_or_else(|| panic!("not caught: {damage}"));
        assert_eq!(problem.seq, seq, "{damage}: {problem:?}");
        assert!(problem.message.contains(word), "{damage}: {problem:?}");
    }
}

/// SQLite: a write transaction waiting for another process's writer lock
/// waits on a timer, not on the thread: on a single-threaded runtime other
/// work (here a snapshot read) goes on meanwhile, and the writer goes on
/// once the lock is released.
#[tokio::test]
async fn a_writer_waiting_for_another_process_leaves_the_thread_free() {
    let url = sqlite_url().unwrap();
    let store = Store::open(&url).await.unwrap();
    with_session(&store, "s1").await;
    // Another process's write transaction, as SQLite sees it: a connection of its own.
    let other = rusqlite::Connection::open(&url).unwrap();
    other.execute_batch("BEGIN IMMEDIATE; INSERT INTO tollgate_meta VALUES ('other', 'x')").unwrap();
    let writer = tokio::spawn({
        let store = store.clone();
        async move {
            let mut tx = store.lock_session("s1").await?;
            tx.append("s1", &[entry("decision", Some("c1"), "{}")], &[audit("{}")], None).await?;
            tx.commit().await
        }
    });
    // The writer has tried (and found the lock taken) by the time this task runs again.
    tokio::task::yield_now().await;
    for _ in 0..3 {
        let snapshot = store.snapshot("s1").await.unwrap();
        assert_eq!(snapshot.info().unwrap().last_seq, 0);
        drop(snapshot);
        tokio::task::yield_now().await;
    }
    assert!(!writer.is_finished(), "the writer went on while another held the lock");
    other.execute_batch("COMMIT").unwrap();
    writer.await.unwrap().unwrap();
    assert_eq!(store.session("s1").await.unwrap().unwrap().last_seq, 1);
    assert_eq!(store.verify_audit().await.unwrap().problem, None);
}

/// A closed store starts no transaction (SQLite's direct connections as
/// sqlx's pools), and what it stored is there when the file is opened again.
#[tokio::test]
async fn a_closed_store_refuses_new_transactions() {
    on_both(|store| async move {
        with_session(&store, "s1").await;
        let mut tx = store.lock_session("s1").await.unwrap();
        tx.append("s1", &[entry("decision", Some("c1"), "{}")], &[audit("{}")], None).await.unwrap();
        tx.commit().await.unwrap();
        store.close().await;
        assert!(store.begin().await.is_err(), "{}", store.backend());
        assert!(store.snapshot("s1").await.is_err(), "{}", store.backend());
    })
    .await;
}

/// The `sql` SQLite keeps for the audit table, and the schema version.
fn audit_table_and_version(path: &str) -> (String, String) {
    let db = rusqlite::Connection::open(path).unwrap();
    let sql = db.query_row("SELECT sql FROM sqlite_master WHERE name = 'tollgate_audit'", [], |r| r.get(0)).unwrap();
    let version =
        db.query_row("SELECT value FROM tollgate_meta WHERE key = 'schema_version'", [], |r| r.get(0)).unwrap();
    (sql, version)
}

/// SQLite: a store written under schema 1 (its audit log keyed by a
/// `BIGINT PRIMARY KEY`, a second B-tree) opens migrated to the current
/// schema: every record kept as it was, in order, the log verifies, the
/// table is keyed by its row id, and writing goes on.
#[tokio::test]
async fn a_schema_1_store_is_migrated_keeping_every_record() {
    let url = sqlite_url().unwrap();
    let store = Store::open(&url).await.unwrap();
    six_records(&store).await;
    let before = store.audit_records(0, 100).await.unwrap();
    assert_eq!(before.len(), 6);
    store.close().await;
    // Back to schema 1 by hand: the audit table as version 1 made it.
    let db = rusqlite::Connection::open(&url).unwrap();
    db.execute_batch(
        "BEGIN;
         CREATE TABLE v1 (seq BIGINT PRIMARY KEY, session_id TEXT NOT NULL, session_seq BIGINT NOT NULL,
             kind TEXT NOT NULL, body TEXT NOT NULL, at_ms BIGINT NOT NULL, prev_hash TEXT NOT NULL,
             session_prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
         INSERT INTO v1 SELECT * FROM tollgate_audit;
         DROP TABLE tollgate_audit;
         ALTER TABLE v1 RENAME TO tollgate_audit;
         UPDATE tollgate_meta SET value = '1' WHERE key = 'schema_version';
         COMMIT;",
    )
    .unwrap();
    drop(db);
    let (sql, version) = audit_table_and_version(&url);
    assert!(sql.contains("seq BIGINT PRIMARY KEY"), "{sql}");
    assert_eq!(version, "1");

    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.audit_records(0, 100).await.unwrap(), before);
    assert_eq!(store.verify_audit().await.unwrap().problem, None);
    let mut tx = store.lock_session("s1").await.unwrap();
    tx.append("s1", &[], &[audit("{\"after\":\"migration\"}")], None).await.unwrap();
    tx.commit().await.unwrap();
    let report = store.verify_audit().await.unwrap();
    assert_eq!((report.records, report.problem), (7, None));
    store.close().await;
    let (sql, version) = audit_table_and_version(&url);
    assert!(sql.contains("seq INTEGER PRIMARY KEY"), "{sql}");
    assert_eq!(version, SCHEMA_VERSION.to_string());
}

/// Regression: on PostgreSQL the audit head's row used to be locked at a
/// transaction's first append, before the sessions it locked afterwards. Two
/// transactions each holding one session and reaching for the other's, one
/// of them holding the head, waited for each other in a cycle until the
/// server killed one ("deadlock detected"). The head is now locked at
/// commit, after every session lock, so both commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_transactions_crossing_sessions_and_the_audit_head_do_not_deadlock() {
    let Some(url) = postgres_schema_url().await else { return };
    let (first, second) = (Store::open(&url).await.unwrap(), Store::open(&url).await.unwrap());
    with_session(&first, "a").await;
    with_session(&first, "b").await;
    let (a_appended, wait_for_a) = tokio::sync::oneshot::channel::<()>();
    let (b_locked, wait_for_b) = tokio::sync::oneshot::channel::<()>();
    let one = tokio::spawn(async move {
        let mut tx = first.lock_session("a").await?;
        tx.append("a", &[entry("decision", Some("c1"), "{}")], &[audit("{\"a\":1}")], None).await?;
        a_appended.send(()).ok();
        wait_for_b.await.ok();
        // Waits for the other transaction's lock on b.
        tx.lock("b").await?;
        tx.append("b", &[entry("decision", Some("c2"), "{}")], &[audit("{\"b\":1}")], None).await?;
        tx.commit().await
    });
    let two = tokio::spawn(async move {
        wait_for_a.await.ok();
        let mut tx = second.lock_session("b").await?;
        b_locked.send(()).ok();
        tx.append("b", &[entry("decision", Some("c3"), "{}")], &[audit("{\"b\":2}")], None).await?;
        tx.commit().await
    });
    let (one, two) = (one.await.unwrap(), two.await.unwrap());
    assert!(one.is_ok() && two.is_ok(), "{one:?} {two:?}");
    let store = Store::open(&url).await.unwrap();
    let report = store.verify_audit().await.unwrap();
    assert_eq!((report.records, report.problem), (3, None));
    assert_eq!(store.journal("b").await.unwrap().len(), 2);
}

/// A connection that would acknowledge commits before they are on disk
/// (`synchronous_commit = off`, from the URL here; a role or server default
/// does the same) is not what the store commits on: its connections commit
/// synchronously whatever they were given.
#[tokio::test]
async fn postgres_commits_are_synchronous_whatever_the_connection_was_given() {
    let Some(url) = postgres_schema_url().await else { return };
    let asynchronous = format!("{url}%20-c%20synchronous_commit%3Doff");
    let plain = sqlx::PgPool::connect(&asynchronous).await.unwrap();
    let given: String = sqlx::query_scalar("SHOW synchronous_commit").fetch_one(&plain).await.unwrap();
    assert_eq!(given, "off", "the URL does turn it off for a plain connection");
    plain.close().await;
    let store = Store::open(&asynchronous).await.unwrap();
    for _ in 0..3 {
        let setting = tollgate_store::testing::fetch_text(&store, "SHOW synchronous_commit").await.unwrap();
        assert_eq!(setting.as_deref(), Some("on"));
    }
    store.close().await;
}
