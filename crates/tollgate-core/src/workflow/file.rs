//! The workflow file as written (TOML), with source spans for error messages.
//! This is a boundary type: it is converted into [`super::Workflow`] by
//! `compile` and never used by the decision logic.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkflowFile {
    pub workflow: HeaderFile,
    #[serde(default)]
    pub limits: LimitsFile,
    #[serde(default)]
    pub facts: BTreeMap<Spanned<String>, FactFile>,
    #[serde(default)]
    pub aggregates: BTreeMap<Spanned<String>, AggregateFile>,
    #[serde(default)]
    pub tools: BTreeMap<Spanned<String>, Spanned<ToolFile>>,
    pub handoff: Option<Spanned<HandoffFile>>,
    /// The oracle of `tollgate attack`; `decide` never reads it.
    #[serde(default)]
    pub invariants: Vec<Spanned<InvariantFile>>,
    /// How a client's tool names map to the workflow's (`tool_names.rs`).
    #[serde(default)]
    pub tool_names: Option<Spanned<ToolNamesFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToolNamesFile {
    #[serde(default)]
    pub prefixes: Vec<Spanned<String>>,
    #[serde(default)]
    pub table: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub undeclared: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvariantFile {
    pub id: String,
    pub tools: Vec<String>,
    pub rule: Spanned<String>,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeaderFile {
    pub name: String,
    pub version: u32,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsFile {
    pub args_bytes_max: Option<usize>,
    pub result_bytes_max: Option<usize>,
    pub facts_max: Option<usize>,
    pub pending_calls_max: Option<usize>,
    pub evaluation_steps_max: Option<u32>,
    pub history_entries_max: Option<usize>,
    pub text_bytes_max: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FactFile {
    #[serde(default)]
    pub description: Option<String>,
    /// The field that tells instances apart (`id` for orders); absent for a
    /// fact held once per session (the verified customer).
    #[serde(default)]
    pub key: Option<Spanned<String>>,
    pub fields: BTreeMap<String, Spanned<String>>,
    /// Identity facts are written once and are what investigations inherit.
    #[serde(default)]
    pub identity: bool,
    /// What to tell the agent when the fact is missing; `{key}` is replaced.
    #[serde(default)]
    pub missing: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AggregateFile {
    #[serde(default)]
    pub description: Option<String>,
    pub tool: Spanned<String>,
    pub sum: Spanned<String>,
    #[serde(default)]
    pub by: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToolFile {
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema of the arguments, written as a TOML table.
    #[serde(default)]
    pub args: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub side_effect: bool,
    /// Closing the case or answering the customer: blocked while
    /// investigations run.
    #[serde(default)]
    pub closes_case: bool,
    #[serde(default)]
    pub requires: Vec<GateFile>,
    #[serde(default)]
    pub checks: Vec<CheckFile>,
    #[serde(default)]
    pub escalate: Vec<EscalateFile>,
    #[serde(default)]
    pub result_checks: Vec<CheckFile>,
    #[serde(default)]
    pub establishes: Vec<MappingFile>,
    #[serde(default)]
    pub updates: Vec<MappingFile>,
}

#[derive(Debug)]
pub(crate) enum GateFile {
    /// `"customer"` or `"order[args.order_id]"`.
    Short(String),
    Full(GateTableFile),
}

/// A gate is a string or a table. Written by hand rather than as an untagged
/// enum so that a mistake inside the table (a misspelt key) is reported as
/// itself, not as "did not match any variant".
impl<'de> Deserialize<'de> for GateFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct GateVisitor;
        impl<'de> serde::de::Visitor<'de> for GateVisitor {
            type Value = GateFile;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a fact name such as \"customer\" or \"order[args.order_id]\", or a table with fact = ...")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<GateFile, E> {
                Ok(GateFile::Short(text.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<GateFile, A::Error> {
                GateTableFile::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(GateFile::Full)
            }
        }
        deserializer.deserialize_any(GateVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GateTableFile {
    pub fact: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default, rename = "as")]
    pub alias: Option<String>,
    #[serde(default, rename = "where")]
    pub condition: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// The written policy rules this enforces (`A36`, `R-CANCEL-PENDING`).
    #[serde(default)]
    pub policy: Vec<String>,
    /// The policy rule in the workflow author's words.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckFile {
    #[serde(default)]
    pub id: Option<String>,
    pub rule: Spanned<String>,
    pub message: Spanned<String>,
    /// The written policy rules this enforces (`A36`, `R-CANCEL-PENDING`).
    #[serde(default)]
    pub policy: Vec<String>,
    /// The policy rule in the workflow author's words.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EscalateFile {
    #[serde(default)]
    pub id: Option<String>,
    pub rule: Spanned<String>,
    pub reason: Spanned<String>,
    pub urgency: Spanned<String>,
    pub recommended_action: Spanned<String>,
    /// The written policy rules this enforces (`A36`, `R-CANCEL-PENDING`).
    #[serde(default)]
    pub policy: Vec<String>,
    /// The policy rule in the workflow author's words.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MappingFile {
    pub fact: Spanned<String>,
    /// Which instance (updates only; establishes take the key field).
    #[serde(default)]
    pub key: Option<Spanned<String>>,
    #[serde(default)]
    pub when: Option<Spanned<String>>,
    pub fields: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HandoffFile {
    pub tool: Spanned<String>,
    pub required: Vec<Spanned<String>>,
    #[serde(default = "default_urgency_levels")]
    pub urgency_levels: Vec<String>,
    /// The handoff tool's call goes through (runs) and its handoff is queued.
    #[serde(default)]
    pub tool_runs: bool,
    /// How long a handoff waits for a person before it expires (`24h`).
    pub expires_after: Option<Spanned<String>>,
}

fn default_urgency_levels() -> Vec<String> {
    ["low", "normal", "high", "critical"].map(String::from).to_vec()
}
