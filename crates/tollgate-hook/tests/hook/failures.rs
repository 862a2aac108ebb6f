//! One test per way the hook can fail: each ends as a refusal the model can
//! read, in time, never as an allow or a crash the client would take as a
//! pass.

use crate::common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tollgate_hook::{Client, Error, Kind};

fn find_user(session: &str) -> serde_json::Value {
    pre(session, "toolu_1", "mcp__retail__find_user_id_by_email", json!({"email": "a@b.c"}))
}

#[test]
fn malformed_input_is_refused() {
    let scratch = Scratch::new("malformed");
    let options = scratch.retail();
    assert_failed_closed(&send_bytes(&options, b"{\"session_id\": \"s\", \"hook_event_na".to_vec()), "malformed JSON");
    assert_failed_closed(&send_bytes(&options, vec![0xff, 0xfe, 0x00]), "malformed JSON");
    assert_failed_closed(&send_bytes(&options, Vec::new()), "malformed JSON");
    // A tool event without its call id is no event.
    let mut event = find_user("s");
    event.as_object_mut().unwrap().remove("tool_use_id");
    assert_failed_closed(&send(&options, &event), "does not decode");
    // An id the store refuses is refused too, not let through.
    assert_failed_closed(&send(&options, &find_user("bad session id!")), "is not 1 to 128 characters");
}

#[test]
fn oversized_input_is_refused() {
    let scratch = Scratch::new("oversized");
    let mut options = scratch.retail();
    options.stdin_bytes_max = 1024;
    let event = pre("s", "toolu_1", "mcp__retail__find_user_id_by_email", json!({"email": "a".repeat(2000)}));
    assert_failed_closed(&send(&options, &event), "over the limit of 1024 bytes");
    // Within the limit, the same kind of event is decided.
    assert_eq!(permission(&send(&options, &find_user("s"))), "allow");
}

#[test]
fn an_unknown_event_is_refused() {
    let scratch = Scratch::new("unknown");
    let options = scratch.retail();
    let event = json!({"session_id": "s", "hook_event_name": "PermissionRequest", "tool_name": "Bash",
                       "tool_input": {"command": "ls"}});
    assert_failed_closed(&send(&options, &event), "unknown event \"PermissionRequest\"");
    assert_failed_closed(&send(&options, &json!({"session_id": "s"})), "no hook_event_name");
}

#[test]
fn a_missing_or_invalid_workflow_is_refused() {
    let scratch = Scratch::new("workflow");
    let mut options = scratch.retail();
    options.workflow = scratch.dir.join("missing.toml");
    assert_failed_closed(&send(&options, &find_user("s")), "cannot read");
    std::fs::write(&options.workflow, "[workflow]\nname = \"x\"\nversion = 1\n[tools.a]\nrequires = [\"nope\"]\n")
        .unwrap();
    assert_failed_closed(&send(&options, &find_user("s")), "does not compile");
}

#[test]
fn a_corrupt_store_is_refused() {
    let scratch = Scratch::new("corrupt");
    let options = scratch.retail();
    authenticate(&options, "s");
    // The database file overwritten with garbage (its WAL removed).
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", options.db));
    }
    std::fs::write(&options.db, vec![0x5a; 8192]).unwrap();
    assert_failed_closed(&send(&options, &find_user("s")), "the store could not be used");
}

#[test]
fn an_unreachable_store_is_refused() {
    let scratch = Scratch::new("unreachable");
    let mut options = scratch.retail();
    options.db = scratch.dir.join("no/such/dir/hook.db").display().to_string();
    assert_failed_closed(&send(&options, &find_user("s")), "the store could not be used");
    // A PostgreSQL server nobody listens for (port 1), within the deadline.
    options.db = "postgres://tollgate@127.0.0.1:1/none".into();
    options.deadline = Duration::from_secs(3);
    let started = Instant::now();
    let answer = send(&options, &find_user("s"));
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    assert_failed_closed(&answer, "");
}

#[test]
fn a_locked_store_is_refused_by_the_deadline() {
    let scratch = Scratch::new("locked");
    let mut options = scratch.retail();
    authenticate(&options, "s");
    // Another process's write transaction holds SQLite's write lock.
    let holder = rusqlite::Connection::open(&options.db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    options.deadline = Duration::from_millis(700);
    let started = Instant::now();
    let answer = send(&options, &pre("s", "toolu_2", "mcp__retail__get_order_details", json!({"order_id": "#W1"})));
    let took = started.elapsed();
    assert_failed_closed(&answer, "before the hook's deadline");
    assert!(took >= Duration::from_millis(650) && took < Duration::from_millis(1500), "{took:?}");
    holder.execute_batch("ROLLBACK").unwrap();
    // With the lock gone the same call is decided.
    options.deadline = Duration::from_secs(10);
    let answer = send(&options, &pre("s", "toolu_2", "mcp__retail__get_order_details", json!({"order_id": "#W1"})));
    assert_eq!(permission(&answer), "allow", "{answer:?}");
}

#[test]
fn a_panic_is_a_refusal_shaped_for_the_event() {
    let far = Instant::now() + Duration::from_secs(10);
    let answer = tollgate_hook::within(Client::ClaudeCode, far, |_| panic!("a bug in the hook"));
    assert_failed_closed(&answer, "a bug in the hook");
    // After the event is read, a panic answering a PostToolUse withholds the output.
    let answer = tollgate_hook::within(Client::ClaudeCode, far, |kind| {
        kind.set(Kind::Post);
        panic!("a bug while recording")
    });
    let json: serde_json::Value = serde_json::from_str(&answer.stdout).unwrap();
    let replaced = json["hookSpecificOutput"]["updatedToolOutput"].as_str().unwrap();
    assert!(replaced.contains("withheld") && replaced.contains("a bug while recording"), "{replaced}");
    let answer = tollgate_hook::within(Client::Codex, far, |kind| {
        kind.set(Kind::Post);
        Err(Error::Internal("no".into()))
    });
    let json: serde_json::Value = serde_json::from_str(&answer.stdout).unwrap();
    assert_eq!(json["decision"], "block");
}

#[test]
fn work_past_the_deadline_is_a_refusal_at_the_deadline() {
    let (_keep, never) = std::sync::mpsc::channel::<()>();
    let started = Instant::now();
    let answer = tollgate_hook::within(Client::ClaudeCode, started + Duration::from_millis(300), move |_| {
        // Blocks until the test ends: work that hangs.
        let _ = never.recv();
        Ok(tollgate_hook::Answer { stdout: "allow".into(), stderr: String::new(), exit_code: 0 })
    });
    let took = started.elapsed();
    assert_failed_closed(&answer, "before the hook's deadline");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(800), "{took:?}");
}
