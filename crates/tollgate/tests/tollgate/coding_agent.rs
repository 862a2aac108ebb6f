//! `examples/coding-agent.toml` enforced on the real Claude Code CLI (bundled
//! in the claude-agent-sdk wheel, in `.ci/venv`), run headless in a temporary
//! git project with `tollgate hook` on every tool (matcher `*`) in its
//! `.claude/settings.json`, against the loopback Messages-API stub playing a
//! scripted coding agent (`tests/clients/coding_stub.py`). No network: a
//! temporary HOME and CLAUDE_CONFIG_DIR, ANTHROPIC_BASE_URL at the stub; the
//! git remote is a bare repository beside the project. The stub checks each
//! tool_result the CLI sends back and the world (the file, the remote's head,
//! what must not have been written or deleted) and logs the checks; the test
//! asserts all of them were made and held, and reads the decisions back from
//! the store.

use crate::common::root;
use serde_json::{Value as Json, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every check the scripted agent makes, in the order it plays them.
const CHECKS: &[&str] = &[
    "read: contains 'version one'",
    "edit-1: file-contains 'version two'",
    "commit-1: not-contains 'Tollgate'",
    "push-untested: contains 'Tollgate blocked this call'",
    "push-untested: contains 'tests-before-push'",
    "push-untested: remote-head-is-not 'edit one'",
    "test-1: contains 'all tests passed'",
    "edit-2: file-contains 'version three'",
    "commit-2: not-contains 'Tollgate'",
    "push-stale: contains 'Tollgate blocked this call'",
    "push-stale: contains 'tests-before-push'",
    "push-stale: remote-head-is-not 'edit two'",
    "test-2: contains 'all tests passed'",
    "push: not-contains 'Tollgate'",
    "push: remote-head 'edit two'",
    "write-outside: contains 'Tollgate blocked this call'",
    "write-outside: contains 'write-inside-project'",
    "rm-rf: contains 'Tollgate handed this call to a person'",
    "rm-rf: contains 'destructive-files'",
    "rm-rf: contains 'handoff h_'",
    "rm-rf: contains \"reviewers' queue\"",
];

fn venv() -> Option<PathBuf> {
    let venv = root().join(".ci/venv");
    if !claude(&venv).exists() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{} is missing under CI=true", claude(&venv).display());
        eprintln!("skipping: {} is missing (run .ci/python)", claude(&venv).display());
        return None;
    }
    Some(venv)
}

fn claude(venv: &Path) -> PathBuf {
    venv.join("lib/python3.11/site-packages/claude_agent_sdk/_bundled/claude")
}

fn run(program: &str, args: &[&str], dir: &Path) {
    let status = Command::new(program).args(args).current_dir(dir).env("HOME", dir).status().unwrap();
    assert!(status.success(), "{program} {args:?} failed in {}", dir.display());
}

#[test]
fn claude_code_is_held_to_the_coding_agent_workflow() {
    let Some(venv) = venv() else { return };
    let dir = std::env::temp_dir().join(format!("tollgate-claude-coding-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let proj = dir.join("proj");
    let remote = dir.join("remote.git");
    let outside = dir.join("outside.txt");
    std::fs::create_dir_all(proj.join(".claude")).unwrap();
    std::fs::create_dir_all(proj.join("build")).unwrap();
    std::fs::create_dir_all(dir.join("home/.claude")).unwrap();
    // The project: a git repository with a file, a test script and a build
    // directory, its remote a bare repository beside it.
    std::fs::write(proj.join("app.txt"), "version one\n").unwrap();
    std::fs::write(proj.join("build/keep.txt"), "built\n").unwrap();
    std::fs::write(proj.join("test.sh"), "#!/bin/sh\ngrep -q '^version' app.txt && echo 'all tests passed'\n").unwrap();
    run("chmod", &["+x", "test.sh"], &proj);
    run("git", &["init", "-q", "--bare", "-b", "main", remote.to_str().unwrap()], &dir);
    run("git", &["init", "-q", "-b", "main"], &proj);
    run("git", &["config", "user.email", "dev@example.invalid"], &proj);
    run("git", &["config", "user.name", "Dev"], &proj);
    run("git", &["remote", "add", "origin", remote.to_str().unwrap()], &proj);
    std::fs::write(proj.join(".gitignore"), "build/\n.claude/\n").unwrap();
    run("git", &["add", "-A"], &proj);
    run("git", &["commit", "-qm", "start"], &proj);
    run("git", &["push", "-q", "origin", "main"], &proj);

    let tollgate_db = dir.join("tollgate.db");
    let command = format!(
        "{} hook --workflow {} --db {}",
        env!("CARGO_BIN_EXE_tollgate"),
        root().join("examples/coding-agent.toml").display(),
        tollgate_db.display()
    );
    // Every tool, as `tollgate hook install` registers it.
    let entry = json!([{"matcher": "*", "hooks": [{"type": "command", "command": command, "timeout": 30,
                                                   "onFailure": "block"}]}]);
    let settings = json!({"hooks": {"PreToolUse": entry, "PostToolUse": entry, "PostToolUseFailure": entry}});
    std::fs::write(proj.join(".claude/settings.json"), settings.to_string()).unwrap();

    let log = dir.join("stub.log");
    let python = venv.join("bin/python");
    let mut stub = Command::new(&python)
        .arg(root().join("crates/tollgate/tests/clients/coding_stub.py"))
        .args(["--log", log.to_str().unwrap(), "--project", proj.to_str().unwrap()])
        .args(["--remote", remote.to_str().unwrap(), "--outside", outside.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(stub.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("the stub said {line:?}")).to_owned();

    let output = Command::new("timeout")
        .arg("300")
        .arg(claude(&venv))
        .args(["-p", "TOLLGATE-SCENARIO improve app.txt and push it", "--output-format", "stream-json", "--verbose"])
        .current_dir(&proj)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir.join("home"))
        .env("CLAUDE_CONFIG_DIR", dir.join("home/.claude"))
        .env("ANTHROPIC_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("ANTHROPIC_API_KEY", "sk-ant-stub")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .output()
        .unwrap();
    let _ = stub.kill();
    let _ = stub.wait();

    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let entries: Vec<Json> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let context = || format!("{text}\n--- client stdout:\n{}", String::from_utf8_lossy(&output.stdout));
    for entry in entries.iter().filter(|e| e.get("check").is_some()) {
        assert_eq!(entry["ok"], true, "check failed: {entry}\n{}", context());
    }
    for check in CHECKS {
        assert!(entries.iter().any(|e| e["check"] == *check), "check {check:?} was never made\n{}", context());
    }
    assert!(entries.iter().any(|e| e["event"] == "final" && e["text"] == "SCENARIO-DONE"), "{}", context());
    assert!(output.status.success(), "{}", context());
    // Nothing escaped: the file outside was not written, the build is there.
    assert!(!outside.exists());
    assert!(proj.join("build/keep.txt").exists());

    // The store holds the session's decisions: both refused pushes by the
    // rule, the escalation's handoff open in the queue.
    let sessions = crate::common::tollgate(&["sessions", "list", "--db", tollgate_db.to_str().unwrap()]);
    let listed = String::from_utf8_lossy(&sessions.stdout).to_string();
    let session = listed
        .lines()
        .find_map(|l| l.split_whitespace().next().filter(|id| id.len() > 30))
        .unwrap_or_else(|| panic!("no session in the store: {listed}{}", String::from_utf8_lossy(&sessions.stderr)));
    let shown = crate::common::tollgate(&["sessions", "show", session, "--db", tollgate_db.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert_eq!(shown.matches("tests-before-push").count(), 2, "{shown}");
    assert!(shown.contains("destructive-files"), "{shown}");
    assert!(shown.contains("write-inside-project"), "{shown}");

    // Claude Code's transcript of the session, replayed: the same decisions,
    // the project rules included (the transcript records each call's
    // working directory and where the session started).
    let workflow = root().join("examples/coding-agent.toml").display().to_string();
    let (live, _) = crate::claude_code::assert_replay_agrees(&dir.join("home"), &tollgate_db, &workflow, &dir);
    assert!(live.values().filter(|(verdict, _)| verdict == "block").count() >= 3, "{live:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
