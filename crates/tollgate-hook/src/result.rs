//! A tool's response, as a client reports it, turned into the result the
//! workflow's fact mappings and result checks read. The clients report it
//! in several shapes: Claude Code gives built-in tools' responses as
//! objects and an MCP tool's as its text content (a JSON string, or a list
//! of content blocks); Codex gives the shell's output as a string and an MCP
//! tool's whole `tools/call` result. The workflow reads the data, so text
//! that is JSON is read as JSON, and an MCP result is read as its
//! `structuredContent` when it has one, else as its text.

use serde_json::Value as Json;

/// The result a workflow reads for a tool's response: the core's
/// conversion, which a replay of a client's transcript uses too.
pub fn result_json(response: &Json) -> Json {
    tollgate_core::trace::client_result(response)
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
