//! `[tool_names]`: how the names a client gives its tools map to the
//! workflow's tools, and what happens to a call of a tool the workflow does
//! not declare. Agent clients name tools their own way: Claude Code's
//! built-ins (`Bash`, `Edit`, `Write`, ...) and MCP tools as
//! `mcp__<server>__<tool>`; Codex's shell as `Bash` too. A surface (the
//! hook) asks [`ToolNames::resolve`] once per call, before the engine
//! decides, so the journal and the audit log hold the workflow's name.
//!
//! ```toml
//! [tool_names]
//! prefixes = ["mcp__retail__"]      # stripped from a client's name
//! table = { Bash = "bash" }         # exact client names
//! undeclared = "deny"               # a call no tool matches: "deny" (default) or "allow"
//! ```
//!
//! Pure and total: a name that matches nothing is returned unchanged, and
//! the decision then follows `undeclared`.

use super::compiler::Compiler;
use super::file::ToolNamesFile;
use std::collections::BTreeMap;

/// Longest prefix or client name accepted in `[tool_names]`, in bytes.
const NAME_BYTES_MAX: usize = 256;
/// Most prefixes plus table entries in `[tool_names]`.
const ENTRIES_MAX: usize = 1024;

/// What a call of a tool the workflow does not declare gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Undeclared {
    /// Blocked, naming the tools the workflow allows (the default).
    #[default]
    Deny,
    /// Allowed, journaled and audited like any decision; it establishes
    /// nothing, reserves nothing and awaits no result.
    Allow,
}

impl Undeclared {
    /// As written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Undeclared::Deny => "deny",
            Undeclared::Allow => "allow",
        }
    }
}

/// The compiled `[tool_names]` section.
#[derive(Clone, Debug, Default)]
pub struct ToolNames {
    pub(crate) prefixes: Vec<String>,
    pub(crate) table: BTreeMap<String, String>,
    pub(crate) undeclared: Undeclared,
}

impl ToolNames {
    /// The prefixes stripped from a client's tool name, in the file's order.
    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }
    /// Exact client names and the workflow tool each one is.
    pub fn table(&self) -> &BTreeMap<String, String> {
        &self.table
    }
    /// What a call of an undeclared tool gets.
    pub fn undeclared(&self) -> Undeclared {
        self.undeclared
    }

    /// The workflow's name for a client's tool name: the table's entry;
    /// else the name itself if `is_declared`; else the name with the first
    /// prefix that leaves a declared tool stripped; else the name unchanged
    /// (an undeclared tool).
    pub fn resolve<'a>(&'a self, client_name: &'a str, is_declared: impl Fn(&str) -> bool) -> &'a str {
        if let Some(name) = self.table.get(client_name) {
            return name;
        }
        if is_declared(client_name) {
            return client_name;
        }
        self.prefixes
            .iter()
            .filter_map(|prefix| client_name.strip_prefix(prefix.as_str()))
            .find(|rest| is_declared(rest))
            .unwrap_or(client_name)
    }
}

impl Compiler<'_> {
    /// Compiles `[tool_names]`: every table entry must name a declared tool,
    /// prefixes and names must be non-empty lines of text within limits.
    pub(super) fn tool_names(
        &mut self,
        file: Option<&toml::Spanned<ToolNamesFile>>,
        is_declared: impl Fn(&str) -> bool,
    ) -> ToolNames {
        let Some(file) = file else {
            return ToolNames::default();
        };
        let span = file.span();
        let file = file.get_ref();
        let bad = |name: &str| name.is_empty() || name.len() > NAME_BYTES_MAX || name.chars().any(char::is_control);
        if file.prefixes.len() + file.table.len() > ENTRIES_MAX {
            self.problem(&span, format!("tool_names has more than {ENTRIES_MAX} prefixes and table entries"));
        }
        for prefix in &file.prefixes {
            if bad(prefix.get_ref()) {
                self.problem(
                    &prefix.span(),
                    format!("tool_names.prefixes: {:?} must be 1 to {NAME_BYTES_MAX} bytes of text", prefix.get_ref()),
                );
            }
        }
        let mut table = BTreeMap::new();
        for (client, tool) in &file.table {
            if bad(client) {
                self.problem(
                    &tool.span(),
                    format!("tool_names.table: {client:?} must be 1 to {NAME_BYTES_MAX} bytes of text"),
                );
            } else if !is_declared(tool.get_ref()) {
                self.problem(
                    &tool.span(),
                    format!("tool_names.table.{client} names '{}', which is not a declared tool", tool.get_ref()),
                );
            } else {
                table.insert(client.clone(), tool.get_ref().clone());
            }
        }
        let undeclared = match file.undeclared.as_ref().map(|u| (u.get_ref().as_str(), u.span())) {
            None | Some(("deny", _)) => Undeclared::Deny,
            Some(("allow", _)) => Undeclared::Allow,
            Some((other, span)) => {
                self.problem(&span, format!("tool_names.undeclared must be \"deny\" or \"allow\", not {other:?}"));
                Undeclared::Deny
            }
        };
        ToolNames { prefixes: file.prefixes.iter().map(|p| p.get_ref().clone()).collect(), table, undeclared }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> ToolNames {
        ToolNames {
            prefixes: vec!["mcp__retail__".into(), "mcp__other__".into()],
            table: BTreeMap::from([("Bash".to_owned(), "shell".to_owned())]),
            undeclared: Undeclared::Deny,
        }
    }

    #[test]
    fn table_then_own_name_then_prefix_then_unchanged() {
        let declared = |name: &str| matches!(name, "shell" | "get_order" | "mcp__retail__odd");
        let names = names();
        assert_eq!(names.resolve("Bash", declared), "shell");
        assert_eq!(names.resolve("get_order", declared), "get_order");
        assert_eq!(names.resolve("mcp__retail__get_order", declared), "get_order");
        assert_eq!(names.resolve("mcp__other__get_order", declared), "get_order");
        // Declared under its full name: not stripped.
        assert_eq!(names.resolve("mcp__retail__odd", declared), "mcp__retail__odd");
        // Nothing matches: the client's name, which decide then treats as undeclared.
        assert_eq!(names.resolve("mcp__retail__drop_table", declared), "mcp__retail__drop_table");
        assert_eq!(names.resolve("Write", declared), "Write");
    }

    fn workflow(tool_names: &str) -> Result<crate::Workflow, Vec<crate::Problem>> {
        let text = format!(
            "[workflow]\nname = \"w\"\nversion = 1\n[tools.get_order]\nargs = {{ type = \"object\" }}\n{tool_names}"
        );
        crate::compile(&text, "w.toml")
    }

    #[test]
    fn the_undeclared_policy_decides_a_tool_no_name_maps_to() {
        use crate::{ToolCall, decide, state::SessionState};
        let call = ToolCall::new("c1", "Write", serde_json::json!({}));
        let denying = workflow("").unwrap();
        assert_eq!(denying.tool_names().undeclared(), Undeclared::Deny);
        assert_eq!(decide(&denying, &SessionState::new(&denying), &call).verdict(), crate::Verdict::Block);
        let allowing = workflow("[tool_names]\nundeclared = \"allow\"\nprefixes = [\"mcp__shop__\"]").unwrap();
        assert_eq!(decide(&allowing, &SessionState::new(&allowing), &call).verdict(), crate::Verdict::Allow);
        assert_eq!(allowing.resolve_tool_name("mcp__shop__get_order"), "get_order");
    }

    #[test]
    fn a_table_entry_must_name_a_declared_tool_and_the_policy_must_be_known() {
        let problems = workflow("[tool_names]\ntable = { Bash = \"shell\" }").unwrap_err();
        assert!(
            problems.iter().any(|p| p.message.contains("names 'shell', which is not a declared tool")),
            "{problems:?}"
        );
        let problems = workflow("[tool_names]\nundeclared = \"maybe\"").unwrap_err();
        assert!(problems.iter().any(|p| p.message.contains("must be \"deny\" or \"allow\"")), "{problems:?}");
        let problems = workflow("[tool_names]\nprefixes = [\"\"]").unwrap_err();
        assert!(problems.iter().any(|p| p.message.contains("tool_names.prefixes")), "{problems:?}");
    }
}
