//! `tollgate init --from-mcp`: a workflow drafted from an upstream's
//! `tools/list`: every tool with its description and input schema, no
//! rules, and comments showing where facts, gates, checks, escalations and
//! what a result establishes go.

use crate::downstream::Downstream;
use crate::{Error, UpstreamSpec, upstream};
use serde_json::Value as Json;
use std::fmt::Write as _;
use std::sync::Arc;

/// Connects to the upstream, reads its tools and drafts the workflow text.
/// The draft compiles (`tollgate validate` passes it); it is checked here
/// before it is returned.
pub async fn draft_workflow(spec: &UpstreamSpec) -> Result<String, Error> {
    let connected = upstream::connect(spec, Arc::new(Downstream::default())).await?;
    let listed = connected.peer.list_all_tools().await;
    connected.close().await;
    let tools = listed.map_err(|e| Error::Upstream { name: spec.name.clone(), message: format!("tools/list: {e}") })?;
    let tools: Vec<(String, Option<String>, Json)> = tools
        .iter()
        .map(|tool| {
            let schema = Json::Object(tool.input_schema.as_ref().clone());
            (tool.name.to_string(), tool.description.as_deref().map(str::to_owned), schema)
        })
        .collect();
    let text = draft(&spec.name, &tools);
    if let Err(problems) = tollgate_core::compile(&text, "draft.toml") {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(Error::Upstream {
            name: spec.name.clone(),
            message: format!("the drafted workflow does not compile:\n{}", lines.join("\n")),
        });
    }
    Ok(text)
}

/// The draft for tools `(name, description, input schema)` of upstream `name`.
pub fn draft(name: &str, tools: &[(String, Option<String>, Json)]) -> String {
    let mut out = String::new();
    let workflow_name: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let _ = writeln!(out, "# Drafted by `tollgate init --from-mcp` from the tools/list of MCP server {name}.");
    let _ = writeln!(out, "# Every tool is declared with its input schema and no rules: as it stands, every");
    let _ = writeln!(out, "# call whose arguments fit the schema is allowed. The comments show where the");
    let _ = writeln!(out, "# rules go; `tollgate validate` checks what you write.");
    let _ = writeln!(out);
    let _ = writeln!(out, "[workflow]");
    let _ = writeln!(out, "name = {}", toml_string(&workflow_name));
    let _ = writeln!(out, "version = 1");
    let _ = writeln!(out, "description = {}", toml_string(&format!("The tools of MCP server {name}, drafted.")));
    let _ = writeln!(out);
    let _ = writeln!(out, "# ---------------------------------------------------------------- facts");
    let _ = writeln!(out, "# What the session learns from tool results (never from the agent's words), e.g.:");
    let _ = writeln!(out, "# [facts.customer]");
    let _ = writeln!(out, "# description = \"The customer verified in this session.\"");
    let _ = writeln!(out, "# identity = true");
    let _ = writeln!(out, "# fields = {{ id = \"string\" }}");
    let _ = writeln!(out, "# missing = \"verify the customer first\"");
    let _ = writeln!(out);
    let _ = writeln!(out, "# ---------------------------------------------------------------- tools");
    for (tool, description, schema) in tools {
        let key = toml_key(tool);
        let _ = writeln!(out);
        let _ = writeln!(out, "[tools.{key}]");
        if let Some(description) = description {
            let _ = writeln!(out, "description = {}", toml_string(description));
        }
        let _ = writeln!(out, "args = {}", toml_inline(schema));
        let _ =
            writeln!(out, "# side_effect = true            # it changes something: it runs under an idempotency key");
        let _ = writeln!(out, "# [[tools.{key}.requires]]      # a gate: a fact an earlier result established");
        let _ = writeln!(out, "# id = \"CUSTOMER-FIRST\"");
        let _ = writeln!(out, "# fact = \"customer\"");
        let _ = writeln!(out, "# [[tools.{key}.checks]]        # a CEL rule over args, facts and session totals");
        let _ = writeln!(out, "# rule = \"...\"");
        let _ = writeln!(out, "# message = \"what the agent should do instead\"");
        let _ = writeln!(out, "# [[tools.{key}.escalate]]      # when a person must decide");
        let _ = writeln!(out, "# rule = \"...\"");
        let _ = writeln!(out, "# reason = \"...\"");
        let _ = writeln!(out, "# urgency = \"high\"");
        let _ = writeln!(out, "# [[tools.{key}.establishes]]   # what its result teaches the session");
        let _ = writeln!(out, "# fact = \"customer\"");
        let _ = writeln!(out, "# fields = {{ id = \"result.id\" }}");
    }
    out
}

fn toml_string(text: &str) -> String {
    // JSON's string escapes are TOML basic-string escapes.
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

fn toml_key(key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare { key.to_owned() } else { toml_string(key) }
}

/// A JSON value as a TOML inline value; nulls (which TOML has not) are left out.
fn toml_inline(value: &Json) -> String {
    match value {
        Json::Null => "\"\"".to_owned(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => toml_string(s),
        Json::Array(items) => {
            let items: Vec<String> = items.iter().filter(|v| !v.is_null()).map(toml_inline).collect();
            format!("[{}]", items.join(", "))
        }
        Json::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{} = {}", toml_key(k), toml_inline(v)))
                .collect();
            if fields.is_empty() { "{}".to_owned() } else { format!("{{ {} }}", fields.join(", ")) }
        }
    }
}
