//! The compiled workflow: the only form the decision logic accepts. A value of
//! [`Workflow`] exists only if `compile` found no problem in the file.

mod analysis;
mod compile;
mod compile_tool;
mod compiler;
mod file;
mod invariants;
mod keys;
mod template;
mod tool_names;

pub use analysis::{Analysis, GuardedTool};
pub use compile::{compile, name_problem};
pub use compiler::Problem;
pub use file::workflow_schema;
pub use invariants::Invariant;
pub(crate) use template::Template;
pub use tool_names::{ToolNames, Undeclared};

use crate::expr::Rule;
use crate::limits::Limits;
use std::collections::BTreeMap;

/// Index of a fact declaration in [`Workflow::facts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FactId(pub(crate) usize);

/// Index of a tool in [`Workflow::tools`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ToolId(pub(crate) usize);

/// A compiled, validated workflow.
#[derive(Debug)]
pub struct Workflow {
    pub(crate) name: String,
    pub(crate) version: u32,
    pub(crate) description: Option<String>,
    pub(crate) limits: Limits,
    pub(crate) facts: Vec<FactDecl>,
    pub(crate) aggregates: Vec<Aggregate>,
    pub(crate) tools: Vec<Tool>,
    pub(crate) tool_index: BTreeMap<String, ToolId>,
    pub(crate) handoff: Option<HandoffSpec>,
    pub(crate) analysis: Analysis,
    pub(crate) invariants: Vec<Invariant>,
    pub(crate) warnings: Vec<Problem>,
    pub(crate) tool_names: ToolNames,
}

impl Workflow {
    /// The workflow's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The workflow's version.
    pub fn version(&self) -> u32 {
        self.version
    }
    /// The workflow's description, if it has one.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
    /// What `validate` warns about in a valid workflow (a key that may not be
    /// computable for some calls, which are then blocked), with positions.
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }
    /// Declared facts.
    pub fn facts(&self) -> &[FactDecl] {
        &self.facts
    }
    /// Declared aggregates.
    pub fn aggregates(&self) -> &[Aggregate] {
        &self.aggregates
    }
    /// Declared tools.
    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }
    /// A tool by name.
    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.tool_index.get(name).and_then(|id| self.tools.get(id.0))
    }
    /// How clients' tool names map to this workflow's tools (`[tool_names]`).
    pub fn tool_names(&self) -> &ToolNames {
        &self.tool_names
    }
    /// The workflow's tool name for a client's (`mcp__retail__get_order`,
    /// `Bash`): see [`ToolNames::resolve`].
    pub fn resolve_tool_name<'a>(&'a self, client_name: &'a str) -> &'a str {
        self.tool_names.resolve(client_name, |name| self.tool_index.contains_key(name))
    }
    /// How long a handoff waits for a person before it expires, in
    /// milliseconds (`[handoff] expires_after`, a day by default).
    pub fn handoff_expires_after_ms(&self) -> i64 {
        self.handoff.as_ref().map_or(HANDOFF_EXPIRES_AFTER_MS, |h| h.expires_after_ms)
    }
    /// The handoff requirements, if the workflow declares them.
    pub fn handoff(&self) -> Option<&HandoffSpec> {
        self.handoff.as_ref()
    }
    /// The static prerequisite analysis computed at compile time.
    pub fn analysis(&self) -> &Analysis {
        &self.analysis
    }
    /// The declared invariants: the oracle of `tollgate attack`, never read by `decide`.
    pub fn invariants(&self) -> &[Invariant] {
        &self.invariants
    }
    /// A declared fact.
    pub fn fact(&self, id: FactId) -> Option<&FactDecl> {
        self.facts.get(id.0)
    }

    /// The written policy rules a workflow rule enforces, by the rule id a
    /// decision reports: its `policy` references (`A36`,
    /// `A-CANCEL-ELIGIBILITY`), from every rule with that id. Empty for
    /// Tollgate's own rules and rules that name none.
    pub fn policy_refs(&self, rule_id: &str) -> Vec<&str> {
        let mut refs: Vec<&str> = Vec::new();
        for tool in &self.tools {
            let policies = tool
                .gates
                .iter()
                .filter(|g| g.id == rule_id)
                .map(|g| &g.policy)
                .chain(tool.checks.iter().chain(&tool.result_checks).filter(|c| c.id == rule_id).map(|c| &c.policy))
                .chain(tool.escalations.iter().filter(|e| e.id == rule_id).map(|e| &e.policy));
            for policy in policies {
                for reference in &policy.refs {
                    if !refs.contains(&reference.as_str()) {
                        refs.push(reference);
                    }
                }
            }
        }
        refs
    }
}

/// What a rule of the workflow enforces of a written policy.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Policy rule ids (`A36`, `R-CANCEL-PENDING`).
    pub refs: Vec<String>,
    /// The rule in the workflow author's words.
    pub description: Option<String>,
}

/// The type a fact field holds; results are converted to it when recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// A string.
    String,
    /// An integer.
    Int,
    /// A number (integers are widened).
    Double,
    /// A boolean.
    Bool,
    /// A list.
    List,
    /// A map.
    Map,
    /// Anything JSON.
    Any,
}

impl FieldType {
    pub(crate) fn parse(text: &str) -> Option<FieldType> {
        Some(match text {
            "string" => FieldType::String,
            "int" => FieldType::Int,
            "double" | "number" => FieldType::Double,
            "bool" => FieldType::Bool,
            "list" => FieldType::List,
            "map" => FieldType::Map,
            "any" => FieldType::Any,
            _ => return None,
        })
    }

    /// The name as written in workflow files.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::Bool => "bool",
            FieldType::List => "list",
            FieldType::Map => "map",
            FieldType::Any => "any",
        }
    }
}

/// A declared fact: what the session can establish from tool results.
#[derive(Debug)]
pub struct FactDecl {
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) description: Option<String>,
    /// `Some(field)` for keyed facts (one instance per key).
    pub(crate) key_field: Option<String>,
    pub(crate) fields: BTreeMap<String, FieldType>,
    pub(crate) identity: bool,
    pub(crate) missing: Option<String>,
    pub(crate) established_by: Vec<ToolId>,
}

impl FactDecl {
    /// The fact's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The key field for keyed facts.
    pub fn key_field(&self) -> Option<&str> {
        self.key_field.as_deref()
    }
    /// Declared fields and their types.
    pub fn fields(&self) -> &BTreeMap<String, FieldType> {
        &self.fields
    }
    /// Whether this is an identity fact (write-once, inherited).
    pub fn is_identity(&self) -> bool {
        self.identity
    }
    /// The description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
}

/// A session aggregate: a running sum over a tool's allowed calls.
#[derive(Debug)]
pub struct Aggregate {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) tool: ToolId,
    pub(crate) sum: Rule,
    pub(crate) by: Option<Rule>,
}

impl Aggregate {
    /// The aggregate's name (`session.<name>`, `<name>(key)`).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
}

/// A tool the agent may call.
#[derive(Debug)]
pub struct Tool {
    pub(crate) id: ToolId,
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) side_effect: bool,
    pub(crate) closes_case: bool,
    pub(crate) schema: Option<ArgsSchema>,
    pub(crate) gates: Vec<Gate>,
    pub(crate) checks: Vec<Check>,
    pub(crate) escalations: Vec<EscalationRule>,
    pub(crate) result_checks: Vec<Check>,
    pub(crate) establishes: Vec<Mapping>,
    pub(crate) updates: Vec<Mapping>,
    /// Facts an allowed call of the tool clears (`clears`).
    pub(crate) clears: Vec<FactId>,
    /// When `clears` applies (`clears_when`); `None`: every allowed call.
    pub(crate) clears_when: Option<Rule>,
    pub(crate) is_handoff: bool,
}

impl Tool {
    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Whether the tool changes the world (refund, deletion).
    pub fn is_side_effect(&self) -> bool {
        self.side_effect
    }
    /// Whether calling the tool closes the case or answers the customer
    /// (blocked while the session's investigations run).
    pub fn closes_case(&self) -> bool {
        self.closes_case
    }
    /// The tool's gates, in order.
    pub fn gates(&self) -> &[Gate] {
        &self.gates
    }
    /// The tool's checks.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }
    /// The tool's escalation rules.
    pub fn escalations(&self) -> &[EscalationRule] {
        &self.escalations
    }
    /// The tool's result checks.
    pub fn result_checks(&self) -> &[Check] {
        &self.result_checks
    }
    /// Whether this is the workflow's handoff tool.
    pub fn is_handoff(&self) -> bool {
        self.is_handoff
    }
    /// The description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// Facts this tool's results establish.
    pub fn establishes(&self) -> impl Iterator<Item = FactId> + '_ {
        self.establishes.iter().map(|m| m.fact)
    }
    /// Facts an allowed call of this tool clears (makes stale).
    pub fn clears(&self) -> &[FactId] {
        &self.clears
    }
}

/// A JSON Schema for a tool's arguments, compiled once.
pub(crate) struct ArgsSchema {
    pub validator: jsonschema::Validator,
}

impl std::fmt::Debug for ArgsSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArgsSchema")
    }
}

/// A prerequisite: a fact that must exist (for this call's key), and may
/// have to meet a condition (belong to the verified customer).
#[derive(Debug)]
pub struct Gate {
    pub(crate) id: String,
    pub(crate) fact: FactId,
    pub(crate) alias: String,
    pub(crate) key: Option<Rule>,
    pub(crate) condition: Option<Rule>,
    pub(crate) message: Option<Template>,
    pub(crate) text: String,
    pub(crate) policy: Policy,
}

impl Gate {
    /// The gate's rule id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The gate as written, e.g. `order[args.order_id]`.
    pub fn text(&self) -> &str {
        &self.text
    }
    /// The fact the gate needs.
    pub fn fact(&self) -> FactId {
        self.fact
    }
    /// The CEL source of the gate's key (`args.order_id`), for keyed facts.
    pub fn key_source(&self) -> Option<&str> {
        self.key.as_ref().map(Rule::source)
    }
}

/// A rule the call must satisfy; a failing or erroring check blocks.
#[derive(Debug)]
pub struct Check {
    pub(crate) id: String,
    pub(crate) rule: Rule,
    pub(crate) message: Template,
    pub(crate) policy: Policy,
}

impl Check {
    /// The check's rule id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The CEL source.
    pub fn source(&self) -> &str {
        self.rule.source()
    }
}

/// A threshold rule whose match hands the call to a human.
#[derive(Debug)]
pub struct EscalationRule {
    pub(crate) id: String,
    pub(crate) rule: Rule,
    pub(crate) reason: Template,
    pub(crate) urgency: Urgency,
    pub(crate) recommended_action: Template,
    pub(crate) policy: Policy,
}

impl EscalationRule {
    /// The rule id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The CEL source.
    pub fn source(&self) -> &str {
        self.rule.source()
    }
}

/// How soon a human must act; ordered by the workflow's urgency levels.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Urgency {
    pub(crate) rank: usize,
    pub(crate) name: String,
}

impl Urgency {
    /// The level's name (`high`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How a tool result becomes (or updates) a fact.
#[derive(Debug)]
pub(crate) struct Mapping {
    pub fact: FactId,
    pub key: Option<Rule>,
    pub when: Option<Rule>,
    pub fields: Vec<(String, Rule)>,
}

/// What a handoff must contain, and which tool requests one.
#[derive(Debug)]
pub struct HandoffSpec {
    pub(crate) tool: ToolId,
    pub(crate) required: Vec<String>,
    pub(crate) urgency_levels: Vec<String>,
    pub(crate) tool_runs: bool,
    pub(crate) expires_after_ms: i64,
}

/// How long a handoff waits for a person before it expires, when the
/// workflow does not say: a day.
pub const HANDOFF_EXPIRES_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

impl HandoffSpec {
    /// The tool the agent calls to ask for a human.
    pub fn tool(&self) -> ToolId {
        self.tool
    }
    /// Fields a handoff must have, non-empty.
    pub fn required(&self) -> &[String] {
        &self.required
    }
    /// Urgency levels, lowest first.
    pub fn urgency_levels(&self) -> &[String] {
        &self.urgency_levels
    }
    /// Whether the handoff tool's call runs (its handoff is queued) rather
    /// than being escalated itself.
    pub fn tool_runs(&self) -> bool {
        self.tool_runs
    }
}
