//! The gateway's pieces that need no process: `--upstream` parsing, tool
//! names and descriptions, what a tool result is as a workflow reads it,
//! and `init --from-mcp`'s draft. (The gateway with real clients and servers
//! is tested through the binary: `crates/tollgate/tests/tollgate/gateway.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // tests fail by panicking

use rmcp::model::CallToolResult;
use serde_json::json;
use tollgate_gateway::upstream::Target;
use tollgate_gateway::{UpstreamSpec, describe_prerequisites, draft, result_value, workflow_tool_name};

const RETAIL: &str = include_str!("../../../examples/tau2-retail.toml");

#[test]
fn upstream_specs_are_a_name_and_a_command_or_a_url() {
    let command: UpstreamSpec = "retail=python server.py --db x.json".parse().unwrap();
    assert_eq!(command.name, "retail");
    assert_eq!(
        command.target,
        Target::Command(vec!["python".into(), "server.py".into(), "--db".into(), "x.json".into()])
    );
    let url: UpstreamSpec = "crm=http://127.0.0.1:9000/mcp".parse().unwrap();
    assert_eq!(url.target, Target::Url("http://127.0.0.1:9000/mcp".into()));
    for bad in ["no-equals", "=cmd", "a__b=cmd", "bad name=cmd", "empty=", "x=   "] {
        assert!(bad.parse::<UpstreamSpec>().is_err(), "{bad} was accepted");
    }
}

#[test]
fn a_guarded_tool_is_described_with_its_prerequisites_and_an_open_one_is_not() {
    let workflow = tollgate_core::compile(RETAIL, "tau2-retail.toml").unwrap();
    let cancel = describe_prerequisites(&workflow, "cancel_pending_order").unwrap();
    assert!(cancel.starts_with("[Tollgate] Runs only after: user, order[args.order_id]."), "{cancel}");
    assert_eq!(cancel.matches("order[args.order_id]").count(), 1, "a gate named twice: {cancel}");
    assert!(cancel.contains("Every path to it establishes first: order ("), "{cancel}");
    assert_eq!(describe_prerequisites(&workflow, "find_user_id_by_email"), None);
    assert_eq!(describe_prerequisites(&workflow, "no_such_tool"), None);
    assert_eq!(workflow_tool_name(&workflow, "cancel_pending_order"), Some("cancel_pending_order"));
    assert_eq!(workflow_tool_name(&workflow, "retail__cancel_pending_order"), None);
}

fn tool_result(value: serde_json::Value) -> CallToolResult {
    serde_json::from_value(value).unwrap()
}

#[test]
fn a_result_is_its_structured_content_else_its_text_as_json_else_its_text() {
    let structured =
        tool_result(json!({"content": [{"type": "text", "text": "{}"}], "structuredContent": {"id": "a"}}));
    assert_eq!(result_value(&structured), json!({"id": "a"}));
    // How SDKs wrap a tool returning a bare value.
    let wrapped = tool_result(json!({"content": [], "structuredContent": {"result": "sara_doe_496"}}));
    assert_eq!(result_value(&wrapped), json!("sara_doe_496"));
    let json_text = tool_result(json!({"content": [{"type": "text", "text": "{\"status\": \"pending\"}"}]}));
    assert_eq!(result_value(&json_text), json!({"status": "pending"}));
    let text = tool_result(json!({"content": [{"type": "text", "text": "ivan_santos_6635"}]}));
    assert_eq!(result_value(&text), json!("ivan_santos_6635"));
    let error = tool_result(json!({"content": [{"type": "text", "text": "Order not found"}], "isError": true}));
    assert_eq!(result_value(&error), json!({"error": "Order not found"}));
}

#[test]
fn a_draft_declares_every_tool_with_its_schema_and_compiles() {
    let tools = vec![
        (
            "find_user".to_owned(),
            Some("Find a \"user\"\nby email.".to_owned()),
            json!({"type": "object", "required": ["email"], "properties": {"email": {"type": "string", "default": null}}}),
        ),
        ("odd.name".to_owned(), None, json!({"type": "object", "$schema": "http://json-schema.org/draft-07/schema#"})),
    ];
    let text = draft("crm", &tools);
    assert!(text.contains("[tools.find_user]"), "{text}");
    assert!(text.contains("[tools.\"odd.name\"]"), "{text}");
    assert!(text.contains("# [[tools.find_user.requires]]"), "{text}");
    let workflow = tollgate_core::compile(&text, "draft.toml").unwrap_or_else(|p| panic!("{p:?}\n{text}"));
    assert_eq!(workflow.tools().len(), 2);
    // The schema is the workflow's: a call without the email is blocked.
    let state = tollgate_core::SessionState::new(&workflow);
    let call = tollgate_core::ToolCall::new("c1", "find_user", json!({}));
    assert!(matches!(tollgate_core::decide(&workflow, &state, &call), tollgate_core::Decision::Block(_)));
}
