//! The typed journal: a store written by the Tollgate before the journal had
//! a type still loads, replays and goes on; a damaged record of each kind is
//! refused on load (`Error::Diverged`), never read as a default.
//!
//! `fixtures/store-before-typed-journal.jsonl` holds every row of a store
//! written by that Tollgate (commit a3db2de): the multi-concern demo (a
//! parent and three investigations: every investigation kind), a refund
//! session long enough to hold a checkpoint and an escalation with the
//! agent's summary, and a session with a refused call.

use crate::common::on_both;
use serde_json::{Value as Json, json};
use tollgate_core::{ToolCall, ToolOutcome, Verdict};
use tollgate_engine::journal::{Kind, Record};
use tollgate_engine::{Engine, Error};
use tollgate_store::Store;

const FIXTURE: &str = include_str!("../fixtures/store-before-typed-journal.jsonl");

/// An SQL literal for a JSON value of the fixture.
fn literal(value: &Json) -> String {
    match value {
        Json::Null => "NULL".into(),
        Json::Number(number) => number.to_string(),
        Json::String(text) => format!("'{}'", text.replace('\'', "''")),
        other => panic!("no column holds {other}"),
    }
}

/// Copies every row of the fixture into the (new, migrated) store at `url`.
async fn load_fixture(url: &str) -> Store {
    let store = Store::open(url).await.unwrap();
    // A fresh store has its head row; the fixture's replaces it.
    tollgate_store::testing::execute(&store, "DELETE FROM tollgate_audit_head").await.unwrap();
    for line in FIXTURE.lines() {
        let item: Json = serde_json::from_str(line).unwrap();
        let table = item["table"].as_str().unwrap();
        let row = item["row"].as_object().unwrap();
        let columns: Vec<&str> = row.keys().map(String::as_str).collect();
        let values: Vec<String> = row.values().map(literal).collect();
        let sql = format!("INSERT INTO {table} ({}) VALUES ({})", columns.join(", "), values.join(", "));
        tollgate_store::testing::execute(&store, &sql).await.unwrap();
    }
    store
}

const SESSIONS: [&str; 6] = ["case", "case:address", "case:charge", "case:refund", "long", "scripted"];

#[tokio::test]
async fn a_store_written_before_the_typed_journal_replays_and_goes_on() {
    on_both(|url| async move {
        let store = load_fixture(&url).await;
        let engine = Engine::open(&url).await.unwrap();
        let mut kinds = std::collections::BTreeSet::new();
        for session in SESSIONS {
            let journal = engine.journal(session).await.unwrap();
            kinds.extend(journal.iter().map(|entry| entry.record.kind().as_str()));
            let (_, state) = engine.state(session).await.unwrap();
            let (_, replayed) = engine.replay(session).await.unwrap();
            assert_eq!(state, replayed, "{session}: checkpoint + tail == replay");
        }
        // Every kind the Tollgate before wrote (people's actions came after).
        let every: std::collections::BTreeSet<&str> =
            Kind::ALL.iter().filter(|kind| **kind != Kind::Human).map(|kind| kind.as_str()).collect();
        assert_eq!(kinds, every, "the fixture holds a record of every kind");
        assert_eq!(engine.verify_audit().await.unwrap().problem, None);

        // The long session goes on: its calls in doubt are the ones never
        // answered, a re-sent call gets its recorded decision back, a new one
        // is decided on the stored state and the audit log still verifies.
        let resume = engine.resume("long").await.unwrap();
        let in_doubt: Vec<&str> = resume.in_doubt.iter().map(|d| d.call_id.as_str()).collect();
        assert_eq!(in_doubt, ["r1", "r3", "r5", "r7", "r9"]);
        assert_eq!(resume.in_doubt[0].idempotency_key.as_deref(), Some("long/process_refund:r1"));
        let resent = ToolCall::new("r0", "process_refund", json!({"order_id": "#W1", "amount": 10.0}));
        assert!(engine.decide("long", &resent).await.unwrap().replayed);
        engine.record_result("long", "r1", &json!({"refund_id": "rf1"}), ToolOutcome::Succeeded).await.unwrap();
        let next = ToolCall::new("r10", "process_refund", json!({"order_id": "#W1", "amount": 10.0}));
        assert_eq!(engine.decide("long", &next).await.unwrap().decision.verdict(), Verdict::Allow);
        let (_, state) = engine.state("long").await.unwrap();
        assert_eq!(state, engine.replay("long").await.unwrap().1);
        // The case was joined once; joining again writes nothing.
        let before = engine.journal("case").await.unwrap().len();
        engine.join("case").await.unwrap();
        let after = engine.journal("case").await.unwrap();
        let written: Vec<String> = after.iter().skip(before).map(|e| format!("{:?}", e.record)).collect();
        let earlier: Vec<String> =
            after.iter().filter(|e| e.record.kind() == Kind::Joined).map(|e| format!("{:?}", e.record)).collect();
        assert_eq!(after.len(), before, "joining again wrote {written:?}; the joins stored: {earlier:?}");
        assert_eq!(engine.verify_audit().await.unwrap().problem, None);
        engine.close().await;
        store.close().await;
    })
    .await;
}

/// The first record of `kind` in the fixture: its session and number.
fn first_of(kind: &str) -> (String, i64) {
    FIXTURE
        .lines()
        .map(|line| serde_json::from_str::<Json>(line).unwrap())
        .find(|item| item["table"] == "tollgate_journal" && item["row"]["kind"] == kind)
        .map(|item| (item["row"]["session_id"].as_str().unwrap().to_owned(), item["row"]["seq"].as_i64().unwrap()))
        .unwrap_or_else(|| panic!("no {kind} record in the fixture"))
}

/// Rewrites one stored journal record, as someone with write access could.
async fn rewrite(store: &Store, session: &str, seq: i64, kind: &str, body: &str) {
    let sql = format!(
        "UPDATE tollgate_journal SET kind = {}, body = {} WHERE session_id = {} AND seq = {seq}",
        literal(&json!(kind)),
        literal(&json!(body)),
        literal(&json!(session))
    );
    assert_eq!(tollgate_store::testing::execute(store, &sql).await.unwrap(), 1);
}

/// The stored body of a record.
async fn body_of(store: &Store, session: &str, seq: i64) -> Json {
    let entry = store.journal(session).await.unwrap().into_iter().find(|e| e.seq == seq).unwrap();
    serde_json::from_str(&entry.body).unwrap()
}

#[tokio::test]
async fn a_damaged_record_of_each_kind_is_refused_on_load() {
    // Each kind, and what is lost from it: a field it cannot do without.
    let damages: [(Kind, &str); 7] = [
        (Kind::Decision, "/call/tool"),
        (Kind::Result, "/outcome"),
        (Kind::Refused, "/decision"),
        // The case of the report: an opening whose tool list is lost must not
        // replay as "every tool allowed".
        (Kind::Opened, "/tools"),
        (Kind::Investigations, "/opened/0/session"),
        (Kind::Concluded, "/outcome"),
        (Kind::Joined, "/findings"),
    ];
    on_both(|url| async move {
        for (kind, lost) in damages {
            let store = load_fixture(&url).await;
            let (session, seq) = first_of(kind.as_str());
            let mut body = body_of(&store, &session, seq).await;
            let (parent, field) = lost.rsplit_once('/').unwrap();
            let removed = match body.pointer_mut(parent).unwrap() {
                Json::Object(object) => object.remove(field),
                _ => None,
            };
            assert!(removed.is_some(), "{kind}: {lost} is in the record");
            rewrite(&store, &session, seq, kind.as_str(), &body.to_string()).await;
            let engine = Engine::open(&url).await.unwrap();
            for (what, outcome) in [
                ("replay", engine.replay(&session).await.map(|_| ())),
                ("journal", engine.journal(&session).await.map(|_| ())),
            ] {
                match outcome {
                    Err(Error::Diverged { seq: at, ref message, .. }) => {
                        assert_eq!(at, seq, "{kind} {what}: {message}");
                        assert!(message.contains(kind.as_str()), "{kind} {what}: {message}");
                    }
                    other => panic!("{kind} without {lost}: {what} gave {other:?}"),
                }
            }
            engine.close().await;
            store.close().await;
            reset(&url).await;
        }
        // A kind no Tollgate writes, and a field none writes, are refused too.
        for (kind, extra) in [("decided", None), ("decision", Some("granted"))] {
            let store = load_fixture(&url).await;
            let (session, seq) = first_of("decision");
            let mut body = body_of(&store, &session, seq).await;
            if let Some(extra) = extra {
                body[extra] = json!(true);
            }
            rewrite(&store, &session, seq, kind, &body.to_string()).await;
            let engine = Engine::open(&url).await.unwrap();
            let error = engine.replay(&session).await.unwrap_err();
            assert!(matches!(error, Error::Diverged { seq: at, .. } if at == seq), "{kind} {extra:?}: {error}");
            engine.close().await;
            store.close().await;
            reset(&url).await;
        }
        // And an intact copy replays: the refusals above are the damage's.
        let store = load_fixture(&url).await;
        let engine = Engine::open(&url).await.unwrap();
        for session in SESSIONS {
            engine.replay(session).await.unwrap();
            let journal = engine.journal(session).await.unwrap();
            assert!(journal.iter().all(|entry| !matches!(entry.record, Record::Joined(ref j) if !j.is_object())));
        }
        engine.close().await;
        store.close().await;
    })
    .await;
}

/// Empties the store's tables so the fixture can be loaded again.
async fn reset(url: &str) {
    let store = Store::open(url).await.unwrap();
    for table in
        ["tollgate_audit", "tollgate_checkpoints", "tollgate_journal", "tollgate_sessions", "tollgate_workflows"]
    {
        // Children before parents: a session's parent row goes last.
        let sql = if table == "tollgate_sessions" {
            "DELETE FROM tollgate_sessions WHERE parent_id IS NOT NULL".to_owned()
        } else {
            format!("DELETE FROM {table}")
        };
        tollgate_store::testing::execute(&store, &sql).await.unwrap();
        if table == "tollgate_sessions" {
            tollgate_store::testing::execute(&store, "DELETE FROM tollgate_sessions").await.unwrap();
        }
    }
    store.close().await;
}
