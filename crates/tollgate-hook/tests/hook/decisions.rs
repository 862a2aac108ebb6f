//! Events through the engine on the τ²-retail workflow: what each answer
//! says, that it is journaled, and that a session is shared by every event
//! that names it (subagents included).

use crate::common::*;
use serde_json::{Value as Json, json};
use tollgate_hook::Client;

fn cancel(order: &str) -> Json {
    json!({"order_id": order, "reason": "no longer needed"})
}

#[test]
fn a_retail_session_is_gated_call_by_call_and_journaled() {
    let scratch = Scratch::new("session");
    let options = scratch.retail();
    let s = "52b53e7b-0001";
    // Cancelling before authenticating: denied, saying what to do first.
    let answer = send(&options, &pre(s, "toolu_1", "mcp__retail__cancel_pending_order", cancel("#W1")));
    assert_eq!((answer.exit_code, permission(&answer).as_str()), (0, "deny"), "{answer:?}");
    let why = reason(&answer);
    assert!(why.contains("Tollgate blocked this call") && why.contains("[R-AUTH]"), "{why}");
    assert!(why.contains("- authenticate the user first"), "{why}");
    authenticate(&options, s);
    // Reading the order, then cancelling it: allowed.
    let read = json!({"order_id": "#W1"});
    let answer = send(&options, &pre(s, "toolu_2", "mcp__retail__get_order_details", read.clone()));
    assert_eq!(permission(&answer), "allow");
    let response = json!([{"type": "text", "text": order("#W1", USER, "pending").to_string()}]);
    let answer = send(&options, &post(s, "toolu_2", "mcp__retail__get_order_details", read, response));
    assert_eq!(answer.stdout, "{}");
    let answer = send(&options, &pre(s, "toolu_3", "mcp__retail__cancel_pending_order", cancel("#W1")));
    assert_eq!(permission(&answer), "allow", "{answer:?}");
    // Every decision and result is in the session's journal, under the
    // workflow's tool names.
    assert_eq!(
        decided_tools(&options.db, s),
        ["cancel_pending_order", "find_user_id_by_email", "get_order_details", "cancel_pending_order"]
    );
}

#[test]
fn another_users_order_is_withheld_from_the_model() {
    let scratch = Scratch::new("withheld");
    let options = scratch.retail();
    let s = "withheld-1";
    authenticate(&options, s);
    let read = json!({"order_id": "#W9"});
    assert_eq!(
        permission(&send(&options, &pre(s, "toolu_2", "mcp__retail__get_order_details", read.clone()))),
        "allow"
    );
    let response = json!(order("#W9", "someone_else_1", "pending").to_string());
    let answer = send(&options, &post(s, "toolu_2", "mcp__retail__get_order_details", read, response));
    let json: Json = serde_json::from_str(&answer.stdout).unwrap();
    let replaced = json["hookSpecificOutput"]["updatedToolOutput"].as_str().unwrap();
    assert!(replaced.contains("withheld") && replaced.contains("[R-ONE-USER]"), "{replaced}");
    assert!(!replaced.contains("someone_else_1"), "{replaced}");
    // The withheld order established nothing: cancelling it is still blocked.
    let answer = send(&options, &pre(s, "toolu_3", "mcp__retail__cancel_pending_order", cancel("#W9")));
    assert_eq!(permission(&answer), "deny");
}

#[test]
fn a_prerequisite_in_the_same_batch_is_pending_not_done_and_subagents_share_the_session() {
    let scratch = Scratch::new("batch");
    let options = scratch.retail();
    let s = "batch-1";
    authenticate(&options, s);
    // One turn's parallel calls: the read is allowed, the cancel that needs
    // it is refused while the read's result is not in.
    let read = json!({"order_id": "#W1"});
    assert_eq!(
        permission(&send(&options, &pre(s, "toolu_r", "mcp__retail__get_order_details", read.clone()))),
        "allow"
    );
    let answer = send(&options, &pre(s, "toolu_c", "mcp__retail__cancel_pending_order", cancel("#W1")));
    assert_eq!(permission(&answer), "deny", "{answer:?}");
    send(
        &options,
        &post(s, "toolu_r", "mcp__retail__get_order_details", read, json!(order("#W1", USER, "delivered").to_string())),
    );
    // A subagent's call carries its parent's session: the same gate holds
    // (the order is delivered, so it cannot be cancelled).
    let mut event = pre(s, "toolu_sub", "mcp__retail__cancel_pending_order", cancel("#W1"));
    event["agent_id"] = json!("a1b2");
    event["agent_type"] = json!("general-purpose");
    let answer = send(&options, &event);
    assert_eq!(permission(&answer), "deny");
    assert!(reason(&answer).contains("[R-CANCEL-PENDING]"), "{answer:?}");
}

#[test]
fn a_tool_the_workflow_does_not_declare_is_denied_and_codex_gets_its_own_shapes() {
    let scratch = Scratch::new("names");
    let mut options = scratch.retail();
    let answer = send(&options, &pre("names-1", "toolu_1", "Bash", json!({"command": "rm -rf /"})));
    assert_eq!(permission(&answer), "deny");
    assert!(reason(&answer).contains("unknown tool 'Bash'"), "{answer:?}");
    options.client = Client::Codex;
    let mut event = pre("names-2", "call_1", "mcp__retail__find_user_id_by_email", json!({"email": "a@b.c"}));
    event["turn_id"] = json!("t1");
    // Codex refuses a bare allow: no objection is how a call is let through.
    let answer = send(&options, &event);
    assert_eq!((answer.exit_code, answer.stdout.as_str()), (0, "{}"));
}

#[test]
fn a_session_is_never_decided_under_a_changed_workflow() {
    let scratch = Scratch::new("changed");
    let options = scratch.retail();
    authenticate(&options, "changed-1");
    let text = std::fs::read_to_string(&options.workflow).unwrap();
    std::fs::write(&options.workflow, text.replace("pending_calls_max = 1", "pending_calls_max = 2")).unwrap();
    let answer =
        send(&options, &pre("changed-1", "toolu_2", "mcp__retail__get_order_details", json!({"order_id": "#W1"})));
    assert_failed_closed(&answer, "started under another version of the workflow");
    // A new session runs under the new text.
    let answer =
        send(&options, &pre("changed-2", "toolu_1", "mcp__retail__find_user_id_by_email", json!({"email": "a@b.c"})));
    assert_eq!(permission(&answer), "allow");
}

/// The tools of the session's decided calls, in journal order (read
/// through the engine).
fn decided_tools(db: &str, session: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let engine = tollgate_engine::Engine::open(db).await.unwrap();
        let entries = engine.journal(session).await.unwrap();
        entries
            .into_iter()
            .filter_map(|e| match e.record {
                tollgate_engine::journal::Record::Decision(decided) => Some(decided.call.tool.clone()),
                _ => None,
            })
            .collect()
    })
}
