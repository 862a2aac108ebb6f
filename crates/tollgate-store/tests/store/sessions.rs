//! Sessions, journals and transactions: appends kept or rolled back whole,
//! serialised across writers, sessions and calls read in one go.

use crate::common::*;
use tollgate_store::testing::sqlite_url;
use tollgate_store::{Error, NewAudit, NewEntry, NewSession, Store};

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
                tenant: "default".into(),
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
