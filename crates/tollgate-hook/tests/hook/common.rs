//! A scratch directory with the τ²-retail workflow and a store, and hook
//! events as the clients send them.

use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tollgate_hook::{Answer, Client, Options};

/// A directory removed when dropped.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("tollgate-hook-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    /// Options over the τ²-retail workflow (copied here) and a store here.
    pub fn retail(&self) -> Options {
        let workflow = self.dir.join("tau2-retail.toml");
        std::fs::copy(retail_workflow(), &workflow).unwrap();
        Options {
            workflow,
            db: self.dir.join("hook.db").display().to_string(),
            client: Client::ClaudeCode,
            deadline: Duration::from_secs(10),
            stdin_bytes_max: tollgate_hook::STDIN_BYTES_MAX,
            audit_key_file: None,
            resident: tollgate_hook::Resident::Off,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn retail_workflow() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tau2-retail.toml")
}

/// Answers one event (JSON) with `options`.
pub fn send(options: &Options, event: &Json) -> Answer {
    send_bytes(options, event.to_string().into_bytes())
}

pub fn send_bytes(options: &Options, bytes: Vec<u8>) -> Answer {
    tollgate_hook::answer(options.clone(), Instant::now(), std::io::Cursor::new(bytes))
}

pub fn pre(session: &str, id: &str, tool: &str, input: Json) -> Json {
    json!({"session_id": session, "transcript_path": "/t.jsonl", "cwd": "/w", "permission_mode": "default",
           "hook_event_name": "PreToolUse", "tool_name": tool, "tool_input": input, "tool_use_id": id})
}

pub fn post(session: &str, id: &str, tool: &str, input: Json, response: Json) -> Json {
    let mut event = pre(session, id, tool, input);
    event["hook_event_name"] = json!("PostToolUse");
    event["tool_response"] = response;
    event
}

/// The decision of a PreToolUse answer: "allow", "deny", or "" (none).
pub fn permission(answer: &Answer) -> String {
    let json: Json = serde_json::from_str(&answer.stdout).unwrap_or(Json::Null);
    json["hookSpecificOutput"]["permissionDecision"].as_str().unwrap_or_default().to_owned()
}

pub fn reason(answer: &Answer) -> String {
    let json: Json = serde_json::from_str(&answer.stdout).unwrap_or(Json::Null);
    json["hookSpecificOutput"]["permissionDecisionReason"].as_str().unwrap_or_default().to_owned()
}

/// A refusal because something failed: a deny on stdout, exit 2 with the
/// reason on stderr, naming `what`.
pub fn assert_failed_closed(answer: &Answer, what: &str) {
    assert_eq!(answer.exit_code, 2, "{answer:?}");
    assert_eq!(permission(answer), "deny", "{answer:?}");
    assert!(answer.stderr.contains(what), "expected {what:?} in {answer:?}");
    assert!(answer.stderr.contains("Tollgate blocked this call"), "{answer:?}");
}

pub const USER: &str = "sara_doe_496";

pub fn order(id: &str, user: &str, status: &str) -> Json {
    json!({"order_id": id, "user_id": user, "status": status, "items": [], "payment_history": []})
}

/// Authenticates `USER` in `session` (a find by email, allowed, and its result).
pub fn authenticate(options: &Options, session: &str) {
    let input = json!({"email": "sara@example.com"});
    let answer = send(options, &pre(session, "toolu_auth", "mcp__retail__find_user_id_by_email", input.clone()));
    assert_eq!(permission(&answer), "allow", "{answer:?}");
    let answer = send(options, &post(session, "toolu_auth", "mcp__retail__find_user_id_by_email", input, json!(USER)));
    assert_eq!(answer.stdout, "{}", "{answer:?}");
}
