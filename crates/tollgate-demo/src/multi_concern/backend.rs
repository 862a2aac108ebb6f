//! The multi-concern case's simulated tool backend, with a ledger of the
//! side effects it has carried out.
//!
//! A real payment or CRM API that honours idempotency keys remembers, on its
//! own side, which keys it has executed: a retry with a known key gets the
//! first answer back and changes nothing. The ledger plays that part. It is
//! a JSON-lines file next to the store (`<db>.side-effects.jsonl`), written
//! and synced *before* the tool answers, and deliberately not derived from
//! the journal: the dangerous window of a crash is exactly when the side
//! effect has happened and the journal does not know it yet (allowed, result
//! never recorded), so only a record kept by the backend itself can show
//! that a re-driven call did not run twice.
//!
//! Each line is `{"key", "tool", "args", "result"}` for an execution, or
//! `{"key", "repeat": true}` for a request answered from the ledger.

use super::{Event, Progress, Step};
use crate::{Error, Observer};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The simulated backend: answers after `latency`; side effects run once per key.
pub(crate) struct Backend {
    latency: Duration,
    /// Told of each side effect the moment it is executed and on the ledger.
    observer: Arc<dyn Observer<Event>>,
    ledger: Mutex<Ledger>,
}

struct Ledger {
    file: std::fs::File,
    /// Executed keys and the answer they got.
    done: BTreeMap<String, Json>,
}

/// Where the ledger of the store at `db` lives: beside a SQLite file, or in
/// the working directory for a PostgreSQL URL.
pub fn ledger_path(db: &str) -> PathBuf {
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        return PathBuf::from("tollgate-demo.side-effects.jsonl");
    }
    let file = db.strip_prefix("sqlite://").or_else(|| db.strip_prefix("sqlite:")).unwrap_or(db);
    let file = file.split('?').next().unwrap_or(file);
    PathBuf::from(format!("{file}.side-effects.jsonl"))
}

impl Backend {
    /// Opens (or starts) the ledger of the store at `db`.
    pub(crate) fn open(db: &str, latency: Duration, observer: Arc<dyn Observer<Event>>) -> Result<Backend, Error> {
        let path = ledger_path(db);
        let mut done = BTreeMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            done = read_ledger(&path, &text)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| Error::Ledger { path: path.clone(), source })?;
        Ok(Backend { latency, observer, ledger: Mutex::new(Ledger { file, done }) })
    }

    /// What one call costs.
    pub(crate) fn latency(&self) -> Duration {
        self.latency
    }

    /// Runs `tool`; `Err` is a tool failure, with its message. With an
    /// idempotency key (a side effect), a key executed before gets its first
    /// answer back and nothing runs again; a new key is executed and written
    /// to the ledger before the answer comes back.
    pub(crate) async fn call(&self, tool: &str, args: &Json, key: Option<&str>) -> Result<Json, String> {
        let Some(key) = key else {
            tokio::time::sleep(self.latency).await;
            return answer(tool, args);
        };
        let (result, executed) = {
            let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
            match ledger.done.get(key).cloned() {
                Some(result) => {
                    ledger.write(&json!({"key": key, "repeat": true}))?;
                    (result, false)
                }
                None => {
                    let result = answer(tool, args)?;
                    ledger.write(&json!({"key": key, "tool": tool, "args": args, "result": result}))?;
                    ledger.done.insert(key.to_owned(), result.clone());
                    (result, true)
                }
            }
        };
        if executed {
            let session = key.split_once('/').map_or(key, |(session, _)| session);
            self.observer.event(Event::Progress(Progress {
                session: session.to_owned(),
                step: Step::Executed { key: key.to_owned() },
            }));
        }
        // The answer travels back after the effect: a crash in this window
        // leaves an executed side effect whose result the journal lacks.
        tokio::time::sleep(self.latency).await;
        Ok(result)
    }
}

impl Ledger {
    fn write(&mut self, line: &Json) -> Result<(), String> {
        let mut text = line.to_string();
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| format!("the demo backend cannot write its ledger: {e}"))
    }
}

/// The backend's answers: fixed data for the story's customer and orders.
fn answer(tool: &str, args: &Json) -> Result<Json, String> {
    let text = |name: &str| args.get(name).and_then(Json::as_str).unwrap_or_default().to_owned();
    match tool {
        "get_customer" if text("email") == "alice@example.com" => {
            Ok(json!({"verified": true, "customer_id": "c_42", "email": "alice@example.com", "tier": "gold"}))
        }
        "get_customer" => Ok(json!({"verified": true, "customer_id": "c_77", "email": text("email"), "tier": "basic"})),
        "lookup_order" => {
            let total = if text("order_id") == "#W1002" { 45.0 } else { 120.0 };
            Ok(json!({"order_id": text("order_id"), "customer_id": "c_42", "total": total, "status": "delivered"}))
        }
        "process_refund" => Ok(json!({"refund_id": "rf_1001", "order_status": "delivered"})),
        "update_address" => Ok(json!({"updated": true})),
        "lookup_charges" => {
            Ok(json!({"order_id": text("order_id"), "customer_id": "c_42", "count": 2, "amount": 45.0}))
        }
        "reply_to_customer" => Ok(json!({"sent": true})),
        other => Err(format!("the demo backend has no tool '{other}'")),
    }
}

/// The side effects a ledger records, by key. Each line is a run
/// (`key`, `tool`, `args`, `result`) or a repeat answered from the ledger
/// (`key`, `repeat: true`); a last line without its newline was cut short by
/// a crash (the tool never answered it) and is no run. Anything else is
/// damage, refused.
fn read_ledger(path: &std::path::Path, text: &str) -> Result<BTreeMap<String, Json>, Error> {
    let mut done = BTreeMap::new();
    let lines: Vec<&str> = text.split('\n').collect();
    for (index, line) in lines.iter().enumerate() {
        let last = index + 1 == lines.len();
        if line.is_empty() && last {
            break;
        }
        let damaged =
            |why: &str| Error::DamagedLedger { path: path.to_path_buf(), line: index + 1, why: why.to_owned() };
        let record: Json = match serde_json::from_str(line) {
            Ok(record) => record,
            Err(_) if last => break,
            Err(error) => return Err(damaged(&error.to_string())),
        };
        let Some(key) = record.get("key").and_then(Json::as_str) else { return Err(damaged("no key")) };
        match (record.get("result"), record.get("repeat")) {
            (Some(result), None) => {
                done.insert(key.to_owned(), result.clone());
            }
            (None, Some(Json::Bool(true))) => {}
            _ => return Err(damaged("neither a run with its result nor a repeat")),
        }
    }
    Ok(done)
}
