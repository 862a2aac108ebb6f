//! The audit log: an untouched log verifies; every kind of tampering is
//! named at its record; a live log is verified as it stood; chaining takes
//! the head's lock last.

use crate::common::*;
use tollgate_store::testing::{postgres_schema_url, sqlite_url};
use tollgate_store::{NewAudit, Store};

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
