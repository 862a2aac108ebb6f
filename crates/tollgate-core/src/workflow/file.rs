//! The workflow file as written (TOML), with source spans for error messages.
//! This is a boundary type: it is converted into [`super::Workflow`] by
//! `compile` and never used by the decision logic.

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Tollgate workflow",
    description = "A Tollgate workflow: the facts a session learns from tool results, and for each tool what it requires, what it must satisfy and when a human takes over. `tollgate validate` checks what this schema cannot (rules, references, types)."
)]
pub(crate) struct WorkflowFile {
    /// The workflow's name, version and description.
    pub workflow: HeaderFile,
    /// Bounds on a session's calls, results and state.
    #[serde(default)]
    pub limits: LimitsFile,
    /// What a session learns from tool results (never from the agent's words), by name.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, FactFile>")]
    pub facts: BTreeMap<Spanned<String>, FactFile>,
    /// Running sums over a tool's allowed calls (`session.<name>`, `<name>(key)` in rules).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, AggregateFile>")]
    pub aggregates: BTreeMap<Spanned<String>, AggregateFile>,
    /// The tools the agent may call, by name: a call to any other tool is blocked.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ToolFile>")]
    pub tools: BTreeMap<Spanned<String>, Spanned<ToolFile>>,
    /// The structured handoff an escalation must carry, and the tool that hands over.
    #[schemars(with = "Option<HandoffFile>")]
    pub handoff: Option<Spanned<HandoffFile>>,
    /// What must hold for every allowed call, stated apart from the rules: the oracle of `tollgate attack`; `decide` never reads it.
    #[serde(default)]
    #[schemars(with = "Vec<InvariantFile>")]
    pub invariants: Vec<Spanned<InvariantFile>>,
    /// How agent clients' tool names (Claude Code's `Bash`, MCP tools as `mcp__<server>__<tool>`) map to this workflow's tools, and what a call of a tool the workflow does not declare gets.
    #[serde(default)]
    #[schemars(with = "Option<ToolNamesFile>")]
    pub tool_names: Option<Spanned<ToolNamesFile>>,
}

/// `[tool_names]`: a client's name is looked up in `table`, then as it is, then with each of `prefixes` stripped; a name that matches no tool is undeclared.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToolNamesFile {
    /// Prefixes stripped from a client's tool name when what is left is a declared tool (`mcp__retail__`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub prefixes: Vec<Spanned<String>>,
    /// Exact client names and the declared tool each one is (`{ Bash = "shell" }`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub table: BTreeMap<String, Spanned<String>>,
    /// What a call of a tool the workflow does not declare gets: `deny` (the default) or `allow` (journaled, gated by nothing).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub undeclared: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvariantFile {
    /// The invariant's id, named in `tollgate attack`'s report.
    pub id: String,
    /// The tools whose allowed calls it judges.
    pub tools: Vec<String>,
    /// A CEL expression over `args`, `facts`, `session` and aggregates that must be true.
    #[schemars(with = "String")]
    pub rule: Spanned<String>,
    /// What a violation means, in words.
    pub message: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HeaderFile {
    /// The workflow's name: sessions name it (with its version) or its hash.
    pub name: String,
    /// The version; a changed workflow gets a new one.
    pub version: u32,
    /// What the workflow is for, in a sentence.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsFile {
    /// The largest arguments a call may carry, in bytes of JSON.
    pub args_bytes_max: Option<usize>,
    /// The largest result the session reads, in bytes of JSON.
    pub result_bytes_max: Option<usize>,
    /// The most fact instances a session holds.
    pub facts_max: Option<usize>,
    /// The most calls allowed and still awaiting their results (1: one call at a time).
    pub pending_calls_max: Option<usize>,
    /// The most evaluation steps one rule may take.
    pub evaluation_steps_max: Option<u32>,
    /// The most history entries a session keeps for `history` in rules.
    pub history_entries_max: Option<usize>,
    /// The longest text value, in bytes.
    pub text_bytes_max: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FactFile {
    /// What the fact is, in a sentence.
    #[serde(default)]
    pub description: Option<String>,
    /// The field that tells instances apart (`id` for orders); absent for a
    /// fact held once per session (the verified customer).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub key: Option<Spanned<String>>,
    /// The fields and their types: string, int, double (or number), bool, list, map, any.
    #[schemars(with = "BTreeMap<String, FieldTypeName>")]
    pub fields: BTreeMap<String, Spanned<String>>,
    /// Identity facts are written once and are what investigations inherit.
    #[serde(default)]
    pub identity: bool,
    /// What to tell the agent when the fact is missing; `{key}` is replaced.
    #[serde(default)]
    pub missing: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AggregateFile {
    /// What the sum is, in a sentence.
    #[serde(default)]
    pub description: Option<String>,
    /// The tool whose allowed calls are summed.
    #[schemars(with = "String")]
    pub tool: Spanned<String>,
    /// A CEL expression over `args`: what each call adds (`args.amount`).
    #[schemars(with = "String")]
    pub sum: Spanned<String>,
    /// A CEL expression over `args` that keys the sum (`args.order_id`), read in rules as `<name>(key)`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub by: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToolFile {
    /// What the tool does, in a sentence.
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema of the arguments, written as a TOML table.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub args: Option<Spanned<toml::Value>>,
    /// The tool changes something (money, data): the analysis and `validate` hold it to stricter standards.
    #[serde(default)]
    pub side_effect: bool,
    /// Closing the case or answering the customer: blocked while
    /// investigations run.
    #[serde(default)]
    pub closes_case: bool,
    /// Gates: the facts a call needs (for this very data), e.g. "customer" or "order[args.order_id]".
    #[serde(default)]
    pub requires: Vec<GateFile>,
    /// Rules the call must satisfy; a failing or erroring check blocks.
    #[serde(default)]
    pub checks: Vec<CheckFile>,
    /// Rules whose match hands the call to a human.
    #[serde(default)]
    pub escalate: Vec<EscalateFile>,
    /// Rules the result must satisfy; a failing one withholds the result from the agent.
    #[serde(default)]
    pub result_checks: Vec<CheckFile>,
    /// Facts a successful result establishes.
    #[serde(default)]
    pub establishes: Vec<MappingFile>,
    /// Fields of existing facts a successful result changes.
    #[serde(default)]
    pub updates: Vec<MappingFile>,
    /// Facts an allowed call of this tool makes stale: every instance is removed when the call is allowed (before it runs), and calls still awaiting their results then establish none of them (they may have run before it). "A test pass counts only after the last edit": `clears = ["tests_passed"]` on the editing tools.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub clears: Vec<Spanned<String>>,
    /// A CEL expression over `args` and `context`: `clears` applies only to allowed calls for which it is true (a shell command that changes files, not `git status`); one that cannot be evaluated counts as true.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub clears_when: Option<Spanned<String>>,
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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GateTableFile {
    /// The fact the call needs.
    pub fact: String,
    /// For keyed facts, a CEL expression over `args` naming the instance (`args.order_id`).
    #[serde(default)]
    pub key: Option<String>,
    /// The name rules use for the instance (default: the fact's name).
    #[serde(default, rename = "as")]
    pub alias: Option<String>,
    /// A condition the instance must meet (`order.customer_id == customer.id`).
    #[serde(default, rename = "where")]
    pub condition: Option<String>,
    /// The rule id decisions name (default: `<tool>.requires.<n>`).
    #[serde(default)]
    pub id: Option<String>,
    /// What the agent is told when the condition fails; `{...}` placeholders read CEL.
    #[serde(default)]
    pub message: Option<String>,
    /// The written policy rules this enforces (`A36`, `R-CANCEL-PENDING`).
    #[serde(default)]
    pub policy: Vec<String>,
    /// The policy rule in the workflow author's words.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckFile {
    /// The rule id decisions name (default: `<tool>.checks.<n>`).
    #[serde(default)]
    pub id: Option<String>,
    /// A CEL expression that must be true (`args.amount <= order.total`).
    #[schemars(with = "String")]
    pub rule: Spanned<String>,
    /// What the agent is told when it is false; `{...}` placeholders read CEL.
    #[schemars(with = "String")]
    pub message: Spanned<String>,
    /// The written policy rules this enforces (`A36`, `R-CANCEL-PENDING`).
    #[serde(default)]
    pub policy: Vec<String>,
    /// The policy rule in the workflow author's words.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EscalateFile {
    /// The rule id decisions name (default: `<tool>.escalate.<n>`).
    #[serde(default)]
    pub id: Option<String>,
    /// A CEL expression; when true, the call goes to a human.
    #[schemars(with = "String")]
    pub rule: Spanned<String>,
    /// Why, for the handoff's root cause; `{...}` placeholders read CEL.
    #[schemars(with = "String")]
    pub reason: Spanned<String>,
    /// One of the handoff's urgency levels.
    #[schemars(with = "String")]
    pub urgency: Spanned<String>,
    /// What the person should do; `{...}` placeholders read CEL.
    #[schemars(with = "String")]
    pub recommended_action: Spanned<String>,
    /// The written policy rules this enforces (`A36`, `R-CANCEL-PENDING`).
    #[serde(default)]
    pub policy: Vec<String>,
    /// The policy rule in the workflow author's words.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MappingFile {
    /// The fact.
    #[schemars(with = "String")]
    pub fact: Spanned<String>,
    /// Which instance (updates only; establishes take the key field).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub key: Option<Spanned<String>>,
    /// A CEL expression over `result` and `args`: the mapping applies only when it is true.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub when: Option<Spanned<String>>,
    /// Each field and the CEL expression over `result` (and `args`) that gives its value.
    #[schemars(with = "BTreeMap<String, String>")]
    pub fields: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HandoffFile {
    /// The tool the agent hands over with (it must be declared under `tools`).
    #[schemars(with = "String")]
    pub tool: Spanned<String>,
    /// The fields a handoff must fill; an incomplete one is blocked.
    #[schemars(with = "Vec<String>")]
    pub required: Vec<Spanned<String>>,
    /// Urgency levels, least urgent first.
    #[serde(default = "default_urgency_levels")]
    pub urgency_levels: Vec<String>,
    /// The handoff tool's call goes through (runs) and its handoff is queued.
    #[serde(default)]
    pub tool_runs: bool,
    /// How long a handoff waits for a person before it expires (`24h`).
    #[schemars(with = "Option<String>")]
    pub expires_after: Option<Spanned<String>>,
}

fn default_urgency_levels() -> Vec<String> {
    ["low", "normal", "high", "critical"].map(String::from).to_vec()
}

/// A fact field's type, as the file spells it.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used
enum FieldTypeName {
    String,
    Int,
    Double,
    Number,
    Bool,
    List,
    Map,
    Any,
}

/// A gate is a fact name (`"customer"`, `"order[args.order_id]"`) or a table.
impl JsonSchema for GateFile {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Gate".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let table = generator.subschema_for::<GateTableFile>();
        schemars::json_schema!({
            "description": "A fact the call needs: its name (\"customer\"), with a key for keyed facts (\"order[args.order_id]\"), or a table with a condition, id and message.",
            "anyOf": [{ "type": "string" }, table]
        })
    }
}

/// The JSON Schema of the workflow file (draft 2020-12), for editors
/// (Taplo's `#:schema` directive) and `tollgate schema`. Optional keys are
/// left out rather than written as null: TOML has no null, so the schema
/// admits none.
pub fn workflow_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(WorkflowFile).to_value();
    without_null(&mut schema);
    schema
}

/// Removes what `Option` adds for JSON: `"default": null`, `"null"` in a
/// type list, `{"type": "null"}` among alternatives.
fn without_null(value: &mut serde_json::Value) {
    use serde_json::Value;
    let is_null_type = |v: &Value| v.get("type").and_then(Value::as_str) == Some("null");
    match value {
        Value::Object(map) => {
            if map.get("default").is_some_and(Value::is_null) {
                map.remove("default");
            }
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t.as_str() != Some("null"));
                if let [only] = types.as_slice() {
                    let only = only.clone();
                    map.insert("type".into(), only);
                }
            }
            for key in ["anyOf", "oneOf"] {
                let Some(Value::Array(alternatives)) = map.get_mut(key) else { continue };
                alternatives.retain(|a| !is_null_type(a));
                if let [only] = alternatives.as_slice() {
                    let only = only.clone();
                    map.remove(key);
                    if let Value::Object(fields) = only {
                        map.extend(fields);
                    }
                }
            }
            map.values_mut().for_each(without_null);
        }
        Value::Array(items) => items.iter_mut().for_each(without_null),
        _ => {}
    }
}
