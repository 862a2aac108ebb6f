//! `tollgate hook` as the clients run it: one process per event, the event
//! on standard input; hook processes of one session at the same time share
//! it through the store; a store wrecked mid-session is a refusal with exit
//! 2; `hook install | uninstall` edit a project's settings.json.

use crate::common::{root, stdout, text};
use serde_json::{Value as Json, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("tollgate-hook-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn db(&self) -> String {
        self.0.join("hook.db").display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn retail() -> PathBuf {
    root().join("examples/tau2-retail.toml")
}

/// `tollgate hook` started with the event's standard input still open.
fn start(db: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["hook", "--workflow", retail().to_str().unwrap(), "--db", db])
        .env_remove("TOLLGATE_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(mut child: Child, event: &Json) -> Output {
    child.stdin.take().unwrap().write_all(event.to_string().as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

pub fn hook(db: &str, event: &Json) -> Output {
    finish(start(db), event)
}

pub fn event(name: &str, session: &str, id: &str, tool: &str, input: Json) -> Json {
    json!({"session_id": session, "hook_event_name": name, "tool_name": format!("mcp__retail__{tool}"),
           "tool_input": input, "tool_use_id": id, "cwd": "/w", "permission_mode": "default"})
}

pub fn decision(output: &Output) -> String {
    let json: Json = serde_json::from_slice(&output.stdout).unwrap_or(Json::Null);
    json["hookSpecificOutput"]["permissionDecision"].as_str().unwrap_or("none").to_owned()
}

/// Authenticates a user and reads their pending order #W1 in `session`.
fn authenticated_with_order(db: &str, session: &str) {
    let email = json!({"email": "sara@example.com"});
    assert_eq!(
        decision(&hook(db, &event("PreToolUse", session, "t1", "find_user_id_by_email", email.clone()))),
        "allow"
    );
    let mut post = event("PostToolUse", session, "t1", "find_user_id_by_email", email);
    post["tool_response"] = json!("sara_doe_496");
    assert_eq!(stdout(&hook(db, &post)), "{}");
    let read = json!({"order_id": "#W1"});
    assert_eq!(decision(&hook(db, &event("PreToolUse", session, "t2", "get_order_details", read.clone()))), "allow");
    let mut post = event("PostToolUse", session, "t2", "get_order_details", read);
    let order =
        json!({"order_id": "#W1", "user_id": "sara_doe_496", "status": "pending", "items": [], "payment_history": []});
    post["tool_response"] = json!(order.to_string());
    assert_eq!(stdout(&hook(db, &post)), "{}");
}

#[test]
fn concurrent_hook_processes_of_one_session_share_it_through_the_store() {
    let scratch = Scratch::new("concurrent");
    let db = scratch.db();
    authenticated_with_order(&db, "par-1");
    // Eight processes of one session at once (a turn's parallel calls,
    // subagents side by side), each cancelling the order with its own call
    // id: the workflow lets one call await its result at a time, so exactly
    // one is allowed, whatever order they commit in.
    let mut children: Vec<Child> = (0..8).map(|_| start(&db)).collect();
    // Every process has started and waits for its event; they get them
    // one after another as fast as the pipes take them, then all are awaited.
    let cancel = json!({"order_id": "#W1", "reason": "no longer needed"});
    for (i, child) in children.iter_mut().enumerate() {
        let event = event("PreToolUse", "par-1", &format!("c{i}"), "cancel_pending_order", cancel.clone());
        child.stdin.take().unwrap().write_all(event.to_string().as_bytes()).unwrap();
    }
    let outputs: Vec<Output> = children.into_iter().map(|child| child.wait_with_output().unwrap()).collect();
    let decisions: Vec<String> = outputs.iter().map(decision).collect();
    assert_eq!(decisions.iter().filter(|d| *d == "allow").count(), 1, "{decisions:?}");
    assert_eq!(decisions.iter().filter(|d| *d == "deny").count(), 7, "{decisions:?}");
    for output in &outputs {
        assert_eq!(output.status.code(), Some(0), "{}", text(output));
    }
    // Each was journaled once: the session shows eight decisions after the first four.
    let shown = crate::common::tollgate(&["sessions", "show", "par-1", "--db", &db]);
    let cancels = stdout(&shown).matches("cancel_pending_order").count();
    assert!(cancels >= 8, "{}", text(&shown));
}

#[test]
fn a_store_wrecked_mid_session_is_a_refusal_with_exit_2() {
    let scratch = Scratch::new("wrecked");
    let db = scratch.db();
    authenticated_with_order(&db, "wreck-1");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{db}{suffix}"));
    }
    std::fs::write(&db, vec![0x5a; 8192]).unwrap();
    let cancel = json!({"order_id": "#W1", "reason": "no longer needed"});
    let output = hook(&db, &event("PreToolUse", "wreck-1", "t3", "cancel_pending_order", cancel));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert_eq!(decision(&output), "deny");
    assert!(String::from_utf8_lossy(&output.stderr).contains("Tollgate blocked this call: it could not be checked"));
    // No --workflow at all: refused the same way.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["hook", "--db", &db])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!((output.status.code(), decision(&output).as_str()), (Some(2), "deny"), "{}", text(&output));
}

#[test]
fn install_merges_into_the_project_settings_and_uninstall_removes_only_its_own() {
    let scratch = Scratch::new("install");
    let settings = scratch.0.join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let theirs = json!({"model": "opus", "hooks": {"PreToolUse": [{"matcher": "Bash",
        "hooks": [{"type": "command", "command": "./lint.sh"}]}]}});
    std::fs::write(&settings, theirs.to_string()).unwrap();
    let dir = scratch.0.to_str().unwrap();
    let db = scratch.db();
    let output = crate::common::tollgate(&[
        "hook",
        "install",
        "--project",
        "--dir",
        dir,
        "--workflow",
        "examples/tau2-retail.toml",
        "--db",
        &db,
        "--deadline-ms",
        "4000",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let installed: Json = serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    assert_eq!(installed["model"], "opus");
    let ours = &installed["hooks"]["PreToolUse"][1]["hooks"][0];
    assert_eq!(ours["onFailure"], "block");
    assert_eq!(ours["timeout"], 9);
    let command = ours["command"].as_str().unwrap();
    assert!(command.contains(" hook --workflow ") && command.contains("--deadline-ms 4000"), "{command}");
    assert!(command.contains(&Path::new(&db).display().to_string()), "{command}");
    assert!(installed["hooks"]["PostToolUse"].is_array() && installed["hooks"]["PostToolUseFailure"].is_array());
    // The installed command line answers an event (run by a shell, as the client does).
    let mut shell =
        Command::new("sh").args(["-c", command]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let email = event("PreToolUse", "inst-1", "t1", "find_user_id_by_email", json!({"email": "a@b.c"}));
    shell.stdin.take().unwrap().write_all(email.to_string().as_bytes()).unwrap();
    assert_eq!(decision(&shell.wait_with_output().unwrap()), "allow");
    let output = crate::common::tollgate(&["hook", "uninstall", "--project", "--dir", dir]);
    assert!(output.status.success(), "{}", text(&output));
    let left: Json = serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    assert_eq!(left, theirs);
    // A workflow that does not compile is not installed.
    let output = crate::common::tollgate(&["hook", "install", "--dir", dir, "--workflow", "Cargo.toml"]);
    assert!(!output.status.success());
    assert_eq!(serde_json::from_str::<Json>(&std::fs::read_to_string(&settings).unwrap()).unwrap(), theirs);
}
