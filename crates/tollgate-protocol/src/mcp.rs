//! The shapes of MCP the gateway answers with: a `tools/call` result
//! (`content`, `structuredContent`, `isError`, `_meta`). A refused call is a
//! result with `isError` and the reasons as text, so the model reads why and
//! can act on it; an escalated one names its handoff.

use crate::decision::Decision;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// One piece of a tool result's content (only text is produced here; other
/// kinds an upstream sends pass through untouched as JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Content {
    /// Text for the model.
    Text {
        /// The text.
        text: String,
    },
}

/// A `tools/call` result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// What the model reads.
    pub content: Vec<Content>,
    /// The same as data, when there is data.
    #[serde(rename = "structuredContent", default, skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Json>,
    /// Whether the call failed (or was refused): the model is told, the
    /// client does not treat the text as the tool's answer.
    #[serde(rename = "isError")]
    pub is_error: bool,
    /// Tollgate's own data, under its own prefix (`tollgate.dev/decision`).
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Json>,
}

impl ToolResult {
    /// The result of a call Tollgate did not let through: `isError`, the
    /// reasons in words, the decision as data (`_meta["tollgate.dev/decision"]`).
    pub fn refused(decision: &Decision, handoff: Option<&str>) -> ToolResult {
        let mut text = match decision {
            Decision::Allow { .. } => "Tollgate let this call through".to_owned(),
            Decision::Block { reasons, .. } => {
                let lines: Vec<String> = reasons.iter().map(|r| format!("- {} [{}]", r.message, r.rule_id)).collect();
                format!("Tollgate blocked this call:\n{}", lines.join("\n"))
            }
            Decision::Escalate { reasons, .. } => {
                let lines: Vec<String> = reasons.iter().map(|r| format!("- {} [{}]", r.message, r.rule_id)).collect();
                format!("Tollgate handed this call to a person:\n{}", lines.join("\n"))
            }
        };
        if let Decision::Block { missing, .. } = decision {
            for need in missing {
                text.push_str(&format!("\nto do: {}", need.action));
            }
        }
        if let Some(handoff) = handoff {
            text.push_str(&format!(
                "\nhandoff {handoff}: a person decides it; an approval lets this identical call through once"
            ));
        }
        let decision = serde_json::to_value(decision).unwrap_or(Json::Null);
        ToolResult {
            content: vec![Content::Text { text }],
            structured_content: None,
            is_error: true,
            meta: Some(serde_json::json!({"tollgate.dev/decision": decision, "tollgate.dev/handoff": handoff})),
        }
    }
}

/// A `tools/call` result (as JSON) as the workflow reads it, and whether the
/// call failed: `isError` gives `{"error": text}`; else the structured
/// content (unwrapped when it is only `{"result": ...}`, as servers that
/// return a bare value send it); else the text, parsed when it is JSON.
pub fn result_value(result: &Json) -> (Json, bool) {
    let text: Vec<&str> = result
        .get("content")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter(|block| block.get("type").and_then(Json::as_str) == Some("text"))
        .filter_map(|block| block.get("text").and_then(Json::as_str))
        .collect();
    let text = text.join("\n");
    if result.get("isError").and_then(Json::as_bool) == Some(true) {
        return (serde_json::json!({ "error": text }), true);
    }
    match result.get("structuredContent") {
        Some(Json::Object(map)) if map.len() == 1 && map.contains_key("result") => {
            (map.get("result").cloned().unwrap_or(Json::Null), false)
        }
        Some(structured) if !structured.is_null() => (structured.clone(), false),
        _ => (serde_json::from_str(&text).unwrap_or(Json::String(text)), false),
    }
}

/// The result that replaces one a result check withheld: `isError`, the
/// reasons in words, the reasons as data (`_meta["tollgate.dev/withheld"]`).
pub fn withheld(reasons: &[String]) -> ToolResult {
    let lines: Vec<String> = reasons.iter().map(|r| format!("- {r}")).collect();
    ToolResult {
        content: vec![Content::Text {
            text: format!("Tollgate withheld this call's result (the call ran):\n{}", lines.join("\n")),
        }],
        structured_content: None,
        is_error: true,
        meta: Some(serde_json::json!({ "tollgate.dev/withheld": reasons })),
    }
}
