//! The hook and MCP shapes against what the real clients send and accept
//! (captured from Claude Code 2.1.332 and Codex 0.171.0 run headless, and
//! their output schemas): events are read, answers carry only fields the
//! client knows.

use serde_json::json;
use tollgate_protocol::hook::{Client, HookAnswer, HookEvent};
use tollgate_protocol::mcp::ToolResult;

#[test]
fn events_of_both_clients_are_read() {
    let claude = json!({"session_id":"52b53e7b","transcript_path":"/t.jsonl","cwd":"/w","prompt_id":"0a32",
        "permission_mode":"default","effort":{"level":"medium"},"hook_event_name":"PreToolUse",
        "tool_name":"Bash","tool_input":{"command":"echo hi","description":"say hi"},"tool_use_id":"toolu_20a3"});
    let HookEvent::PreToolUse(call) = serde_json::from_value(claude).unwrap() else { panic!() };
    assert_eq!((call.tool_name.as_str(), call.tool_use_id.as_str()), ("Bash", "toolu_20a3"));
    assert_eq!(call.common.client(), Client::ClaudeCode);
    let codex = json!({"session_id":"01a2","turn_id":"01a3","transcript_path":null,"cwd":"/w",
        "hook_event_name":"PostToolUse","model":"gpt-5.5","permission_mode":"bypassPermissions",
        "tool_name":"Bash","tool_input":{"command":"echo hi"},"tool_use_id":"call_fe83","tool_response":"hi\n"});
    let HookEvent::PostToolUse(ran) = serde_json::from_value(codex).unwrap() else { panic!() };
    assert_eq!(ran.call.common.client(), Client::Codex);
    assert_eq!(ran.tool_response, "hi\n");
    let subagent = json!({"session_id":"s","hook_event_name":"PreToolUse","agent_id":"ac1d","agent_type":"general-purpose",
        "tool_name":"Bash","tool_input":{},"tool_use_id":"t"});
    let HookEvent::PreToolUse(call) = serde_json::from_value(subagent).unwrap() else { panic!() };
    assert_eq!(call.common.agent_id.as_deref(), Some("ac1d"));
    // An event that does not name itself, or a tool event without its call id, is no event.
    assert!(serde_json::from_value::<HookEvent>(json!({"session_id":"s","tool_name":"Bash"})).is_err());
    assert!(
        serde_json::from_value::<HookEvent>(
            json!({"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{}})
        )
        .is_err()
    );
    assert!(serde_json::from_value::<HookEvent>(json!({"session_id":"s","hook_event_name":"Notification"})).is_err());
}

#[test]
fn answers_carry_exactly_what_each_client_accepts() {
    assert_eq!(
        serde_json::to_value(HookAnswer::deny("blocked: verify the customer first")).unwrap(),
        json!({"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny",
               "permissionDecisionReason":"blocked: verify the customer first"}})
    );
    // Codex lets a denial without a reason through: there is always one.
    let empty = serde_json::to_value(HookAnswer::deny("  ")).unwrap();
    assert!(empty["hookSpecificOutput"]["permissionDecisionReason"].as_str().is_some_and(|r| !r.trim().is_empty()));
    assert_eq!(
        serde_json::to_value(HookAnswer::allow()).unwrap(),
        json!({"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow"}})
    );
    assert_eq!(
        serde_json::to_value(HookAnswer::withhold(Client::ClaudeCode, "withheld")).unwrap(),
        json!({"hookSpecificOutput":{"hookEventName":"PostToolUse","updatedToolOutput":"withheld"}})
    );
    // Codex's schema knows no updatedToolOutput: block with a reason replaces the output there.
    assert_eq!(
        serde_json::to_value(HookAnswer::withhold(Client::Codex, "withheld")).unwrap(),
        json!({"decision":"block","reason":"withheld"})
    );
    assert_eq!(serde_json::to_value(HookAnswer::none()).unwrap(), json!({}));
}

#[test]
fn a_refused_mcp_call_is_an_error_result_the_model_can_read() {
    let decision = tollgate_protocol::Decision::Block {
        stage: "gates".into(),
        reasons: vec![tollgate_protocol::Reason {
            rule_id: "refund.requires.1".into(),
            message: "verify the customer".into(),
        }],
        missing: vec![tollgate_protocol::Missing {
            fact: "customer".into(),
            key: None,
            action: "call get_customer first".into(),
            pending_call: None,
        }],
    };
    let result = serde_json::to_value(ToolResult::refused(&decision, None)).unwrap();
    assert_eq!(result["isError"], true);
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("blocked")
            && text.contains("verify the customer [refund.requires.1]")
            && text.contains("\nto do: call get_customer first"),
        "{text}"
    );
    assert_eq!(result["_meta"]["tollgate.dev/decision"]["verdict"], "block");
}
