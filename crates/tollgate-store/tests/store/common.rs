//! What the store's tests share: both backends, a session, entries and records.

use std::future::Future;
use tollgate_store::testing::{postgres_schema_url, sqlite_url};
use tollgate_store::{NewAudit, NewEntry, NewSession, Store, StoredWorkflow};

/// Runs `test` on a fresh SQLite store and a fresh PostgreSQL store.
pub async fn on_both<F, Fut>(test: F)
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

pub async fn with_session(store: &Store, id: &str) {
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
            tenant: "default".into(),
        })
        .await
        .unwrap();
}

pub fn entry(kind: &str, call: Option<&str>, body: &str) -> NewEntry {
    NewEntry { kind: kind.into(), call_id: call.map(str::to_owned), body: body.into(), at_ms: 5 }
}

pub fn audit(body: &str) -> NewAudit {
    NewAudit { kind: "decision.allow".into(), body: body.into(), at_ms: 7 }
}

/// Runs raw SQL on the store's database (to damage it on purpose).
pub async fn raw(store: &Store, sql: &str) {
    tollgate_store::testing::execute(store, sql).await.unwrap();
}

/// Two sessions, three records each, interleaved.
pub async fn six_records(store: &Store) {
    with_session(store, "s1").await;
    store
        .create_session(&NewSession {
            id: "s2".into(),
            workflow_hash: "h1".into(),
            workflow_name: "w".into(),
            workflow_version: 1,
            parent_id: Some("s1".into()),
            created_ms: 1_001,
            tenant: "default".into(),
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

/// The `sql` SQLite keeps for the audit table, and the schema version.
pub fn audit_table_and_version(path: &str) -> (String, String) {
    let db = rusqlite::Connection::open(path).unwrap();
    let sql = db.query_row("SELECT sql FROM sqlite_master WHERE name = 'tollgate_audit'", [], |r| r.get(0)).unwrap();
    let version =
        db.query_row("SELECT value FROM tollgate_meta WHERE key = 'schema_version'", [], |r| r.get(0)).unwrap();
    (sql, version)
}
