//! The handoff queue and API tokens: rows written with the transaction that
//! puts them and nothing of a dropped one; a tenant's queue sorted most urgent
//! first, then oldest; a row put again moves; tokens found by their secret's
//! hash, listed by tenant and revoked once.

use crate::common::*;
use tollgate_store::{HandoffQuery, HandoffRow, TokenRow};

fn row(id: &str, tenant: &str, urgency: (&str, i64), created_ms: i64) -> HandoffRow {
    HandoffRow {
        id: id.into(),
        tenant: tenant.into(),
        session_id: "s1".into(),
        call_id: format!("call-{id}"),
        tool: "process_refund".into(),
        status: "open".into(),
        urgency: urgency.0.into(),
        urgency_rank: urgency.1,
        customer_id: Some("c_42".into()),
        claimed_by: None,
        consumed_by: None,
        created_ms,
        updated_ms: created_ms,
        expires_ms: created_ms + 1_000,
        body: "{\"handoff\":{}}".into(),
    }
}

fn query(tenant: &str, statuses: &[&str]) -> HandoffQuery {
    HandoffQuery {
        tenant: tenant.into(),
        statuses: statuses.iter().map(|s| (*s).to_owned()).collect(),
        since_ms: None,
        limit: 50,
    }
}

#[tokio::test]
async fn handoff_rows_are_written_with_their_transaction_and_listed_by_urgency_then_age() {
    on_both(|store| async move {
        with_session(&store, "s1").await;
        // A dropped transaction leaves no row.
        let mut tx = store.lock_session("s1").await.unwrap();
        tx.put_handoff(row("h0", "acme", ("high", 2), 5)).unwrap();
        drop(tx);
        assert_eq!(store.handoff("h0").await.unwrap(), None);

        let mut tx = store.lock_session("s1").await.unwrap();
        tx.put_handoff(row("h1", "acme", ("normal", 1), 10)).unwrap();
        tx.put_handoff(row("h2", "acme", ("critical", 3), 30)).unwrap();
        tx.put_handoff(row("h3", "acme", ("normal", 1), 5)).unwrap();
        tx.put_handoff(row("h4", "globex", ("critical", 3), 1)).unwrap();
        // Read back inside the transaction before it is written.
        assert_eq!(tx.handoff("h2").await.unwrap().map(|r| r.urgency_rank), Some(3));
        tx.commit().await.unwrap();
        let ids = |rows: Vec<HandoffRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(store.handoffs(&query("acme", &[])).await.unwrap()), ["h2", "h3", "h1"], "{}", store.backend());
        assert_eq!(ids(store.handoffs(&query("globex", &[])).await.unwrap()), ["h4"]);

        // Put again, it moves: claimed, then approved.
        let mut tx = store.lock_session("s1").await.unwrap();
        let mut claimed = row("h3", "acme", ("normal", 1), 5);
        claimed.status = "claimed".into();
        claimed.claimed_by = Some("ann".into());
        claimed.updated_ms = 40;
        tx.put_handoff(claimed.clone()).unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.handoff("h3").await.unwrap(), Some(claimed));
        assert_eq!(ids(store.handoffs(&query("acme", &["open"])).await.unwrap()), ["h2", "h1"]);
        assert_eq!(ids(store.handoffs(&query("acme", &["claimed", "approved"])).await.unwrap()), ["h3"]);
        let overdue = store.overdue_handoffs(1_011, 10).await.unwrap();
        assert_eq!(overdue.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["h4", "h3", "h1"]);

        // Only a locked session's rows, and never on a snapshot.
        let mut tx = store.begin().await.unwrap();
        assert!(tx.put_handoff(row("h5", "acme", ("low", 0), 1)).is_err());
        drop(tx);
        let mut snapshot = store.snapshot("s1").await.unwrap();
        assert!(matches!(
            snapshot.put_handoff(row("h5", "acme", ("low", 0), 1)),
            Err(tollgate_store::Error::ReadOnly(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn tokens_are_found_by_their_secrets_hash_and_revoked_once() {
    on_both(|store| async move {
        let token = |id: &str, tenant: &str, role: &str| TokenRow {
            id: id.into(),
            tenant: tenant.into(),
            role: role.into(),
            name: format!("{role} of {tenant}"),
            secret_hash: format!("hash-{id}"),
            created_ms: 1,
            revoked_ms: None,
        };
        store.put_token(&token("t1", "acme", "agent")).await.unwrap();
        store.put_token(&token("t2", "acme", "reviewer")).await.unwrap();
        store.put_token(&token("t3", "globex", "admin")).await.unwrap();
        assert!(store.put_token(&token("t1", "acme", "agent")).await.is_err(), "an id is used once");
        assert_eq!(store.token_by_secret("hash-t2").await.unwrap(), Some(token("t2", "acme", "reviewer")));
        assert_eq!(store.token_by_secret("hash-none").await.unwrap(), None);
        assert_eq!(store.tokens(Some("acme")).await.unwrap().len(), 2);
        assert_eq!(store.tokens(None).await.unwrap().len(), 3);
        assert!(store.revoke_token("t1", 50).await.unwrap());
        assert!(!store.revoke_token("t1", 60).await.unwrap(), "revoked once; the first time is kept");
        assert!(!store.revoke_token("nope", 60).await.unwrap());
        assert_eq!(store.token_by_secret("hash-t1").await.unwrap().and_then(|t| t.revoked_ms), Some(50));
    })
    .await;
}

/// A NUL is refused before it reaches the database, by the write that
/// carries it alone: the transaction goes on and commits the rest.
#[tokio::test]
async fn a_nul_is_refused_before_the_database_and_the_transaction_goes_on() {
    on_both(|store| async move {
        with_session(&store, "s1").await;
        let mut tx = store.lock_session("s1").await.unwrap();
        let mut bad = row("h1", "acme", ("high", 2), 5);
        bad.customer_id = Some("c\u{0}42".into());
        assert!(matches!(tx.put_handoff(bad), Err(tollgate_store::Error::Nul(_))));
        let refused = tx.append("s1", &[entry("decision", Some("c1"), "{\"a\":\"x\u{0}y\"}")], &[], None).await;
        assert!(matches!(refused, Err(tollgate_store::Error::Nul(_))), "{refused:?}");
        tx.append("s1", &[entry("decision", Some("c2"), "{}")], &[audit("{}")], None).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.journal("s1").await.unwrap().len(), 1, "{}", store.backend());
        assert_eq!(store.handoff("h1").await.unwrap(), None);
        let workflow =
            tollgate_store::StoredWorkflow { hash: "h2".into(), name: "w".into(), version: 1, text: "x\u{0}".into() };
        assert!(matches!(store.put_workflow(&workflow).await, Err(tollgate_store::Error::Nul(_))));
    })
    .await;
}
