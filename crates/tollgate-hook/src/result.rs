//! A tool's response, as a client reports it, turned into the result the
//! workflow's fact mappings and result checks read. The clients report it
//! in several shapes: Claude Code gives built-in tools' responses as
//! objects and an MCP tool's as its text content (a JSON string, or a list
//! of content blocks); Codex gives the shell's output as a string and an MCP
//! tool's whole `tools/call` result. The workflow reads the data, so text
//! that is JSON is read as JSON, and an MCP result is read as its
//! `structuredContent` when it has one, else as its text.

use serde_json::Value as Json;

/// The result a workflow reads for a tool's response.
pub fn result_json(response: &Json) -> Json {
    match response {
        Json::String(text) => text_json(text),
        Json::Array(blocks) => blocks_json(blocks).unwrap_or_else(|| response.clone()),
        Json::Object(object) => {
            if let Some(structured) = object.get("structuredContent").filter(|s| !s.is_null()) {
                return structured.clone();
            }
            match object.get("content") {
                Some(Json::Array(blocks))
                    if object.keys().all(|k| matches!(k.as_str(), "content" | "isError" | "_meta")) =>
                {
                    blocks_json(blocks).unwrap_or_else(|| response.clone())
                }
                _ => response.clone(),
            }
        }
        _ => response.clone(),
    }
}

/// Text content blocks, joined and read as JSON if they are; `None` if any
/// block is not text.
fn blocks_json(blocks: &[Json]) -> Option<Json> {
    let mut text = String::new();
    for block in blocks {
        if block.get("type").and_then(Json::as_str) != Some("text") {
            return None;
        }
        text.push_str(block.get("text").and_then(Json::as_str)?);
    }
    Some(text_json(&text))
}

/// Text that is a JSON value is that value; other text stays text.
fn text_json(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::result_json;
    use serde_json::json;

    #[test]
    fn every_shape_of_response_reads_as_its_data() {
        let order = json!({"order_id": "#W1", "status": "pending"});
        assert_eq!(result_json(&json!(order.to_string())), order);
        assert_eq!(result_json(&json!([{"type": "text", "text": order.to_string()}])), order);
        assert_eq!(
            result_json(&json!({"content": [{"type": "text", "text": "x"}], "structuredContent": order})),
            order
        );
        assert_eq!(
            result_json(&json!({"content": [{"type": "text", "text": order.to_string()}], "isError": false})),
            order
        );
        // Plain text stays text (a user id found by email).
        assert_eq!(result_json(&json!("sara_doe_496")), json!("sara_doe_496"));
        // A built-in tool's response is its object.
        let bash = json!({"stdout": "ok", "stderr": "", "interrupted": false});
        assert_eq!(result_json(&bash), bash);
        // Content that is not only text is kept as it came.
        let image = json!([{"type": "image", "data": "..."}]);
        assert_eq!(result_json(&image), image);
    }
}
