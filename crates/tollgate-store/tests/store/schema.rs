//! Opening stores: migrations, newer schemas refused, bad files and URLs,
//! closed stores, durable commits on PostgreSQL.

use crate::common::*;
use tollgate_store::testing::{postgres_schema_url, sqlite_url};
use tollgate_store::{AuditHead, Error, SCHEMA_VERSION, Store};

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
    let head = AuditHead::unsigned(0, "0".repeat(64));
    assert_eq!(tollgate_store::verify_records(&[], &head).problem, None);
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
    // Back to schema 1 by hand: the audit table as version 1 made it, and
    // none of version 3's tenants, handoff queue or tokens, nor version 4's
    // signed head.
    let db = rusqlite::Connection::open(&url).unwrap();
    db.execute_batch(
        "BEGIN;
         DROP TABLE tollgate_handoffs;
         DROP TABLE tollgate_tokens;
         ALTER TABLE tollgate_sessions DROP COLUMN tenant;
         ALTER TABLE tollgate_audit_head DROP COLUMN signer;
         ALTER TABLE tollgate_audit_head DROP COLUMN signature;
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
    // Sessions from before tenants belong to the default one.
    assert_eq!(store.session("s1").await.unwrap().unwrap().tenant, "default");
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
