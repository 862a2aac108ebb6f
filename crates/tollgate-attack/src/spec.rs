//! What the oracle's fold needs to know of a workflow, read from the
//! workflow's own text and parsed by the `cel` crate: facts (key field,
//! declared field types, identity), aggregates (tool, amount, key), and per
//! tool its gates, result checks and fact mappings.
//!
//! Read from the TOML, not from the compiled `Workflow`: the core keeps its
//! mappings and aggregate rules to itself (lowered for its own evaluator), and
//! the oracle must not evaluate with that evaluator anyway. The core has
//! already validated the file when this runs (`hunt` compiles it first), so
//! this reads only what it needs and leaves validation to the core.

use crate::Error;
use cel::{Context, Env, Program};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tollgate_core::Limits;

/// A declared fact.
pub struct Fact {
    /// The field that tells instances apart, for keyed facts.
    pub key_field: Option<String>,
    /// Declared fields and their type names (`string`, `double`, ...).
    pub fields: BTreeMap<String, String>,
    /// Written once per session.
    pub identity: bool,
}

/// A running sum over a tool's allowed calls.
pub struct Aggregate {
    /// The aggregate's name.
    pub name: String,
    /// The tool whose allowed calls count.
    pub tool: String,
    /// The amount, over `args`.
    pub sum: Program,
    /// The key totals are kept by, over `args`.
    pub by: Option<Program>,
}

/// A prerequisite of a tool.
pub struct Gate {
    /// The fact it needs.
    pub fact: String,
    /// The name rules of the tool read the instance by (`order`, or `as`).
    pub alias: String,
    /// The instance's key, over `args` (keyed facts).
    pub key: Option<Program>,
}

/// How a result establishes or updates a fact.
pub struct Mapping {
    /// The fact.
    pub fact: String,
    /// Which instance, over `args` (updates of keyed facts).
    pub key: Option<Program>,
    /// Whether the mapping applies, over `result` and `facts`.
    pub when: Option<Program>,
    /// Each field, over `result` (and `args` for an established fact's key field).
    pub fields: Vec<(String, Program)>,
}

/// What the fold needs of one tool.
#[derive(Default)]
pub struct Tool {
    /// Its gates, in order.
    pub gates: Vec<Gate>,
    /// Its result checks: rule id (or the rule) and the rule.
    pub result_checks: Vec<(String, Program)>,
    /// Facts its results establish.
    pub establishes: Vec<Mapping>,
    /// Facts its results update.
    pub updates: Vec<Mapping>,
    /// Whether a result check or a mapping's `when` reads `facts` (which is
    /// then bound for them; it is the largest thing a result is read with).
    pub reads_facts: bool,
}

/// The workflow as the oracle's fold reads it.
pub struct Spec {
    /// The `cel` crate's environment every rule was parsed in.
    pub env: Arc<Env>,
    /// Its standard library with `timestamp`, `duration` and `sum`: every
    /// scope the fold evaluates in is a scope within this one.
    pub root: Context<'static, 'static>,
    /// Facts by name.
    pub facts: BTreeMap<String, Fact>,
    /// Aggregates, by name.
    pub aggregates: Vec<Aggregate>,
    /// Tools by name.
    pub tools: BTreeMap<String, Tool>,
    /// Results larger than this, as JSON text, are withheld.
    pub result_bytes_max: usize,
    /// Most fact instances one session holds.
    pub facts_max: usize,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    facts: BTreeMap<String, FactFile>,
    #[serde(default)]
    aggregates: BTreeMap<String, AggregateFile>,
    #[serde(default)]
    tools: BTreeMap<String, ToolFile>,
}

#[derive(Deserialize)]
struct FactFile {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    identity: bool,
}

#[derive(Deserialize)]
struct AggregateFile {
    tool: String,
    sum: String,
    #[serde(default)]
    by: Option<String>,
}

#[derive(Default, Deserialize)]
struct ToolFile {
    #[serde(default)]
    requires: Vec<GateFile>,
    #[serde(default)]
    result_checks: Vec<CheckFile>,
    #[serde(default)]
    establishes: Vec<MappingFile>,
    #[serde(default)]
    updates: Vec<MappingFile>,
}

/// `"customer"`, `"order[args.order_id]"`, or a table.
#[derive(Deserialize)]
#[serde(untagged)]
enum GateFile {
    Short(String),
    Table {
        fact: String,
        #[serde(default)]
        key: Option<String>,
        #[serde(default, rename = "as")]
        alias: Option<String>,
    },
}

#[derive(Deserialize)]
struct CheckFile {
    #[serde(default)]
    id: Option<String>,
    rule: String,
}

#[derive(Deserialize)]
struct MappingFile {
    fact: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    when: Option<String>,
    fields: BTreeMap<String, String>,
}

impl Spec {
    /// Reads `text`, a workflow the core compiled under `limits`.
    pub fn read(text: &str, limits: &Limits) -> Result<Spec, Error> {
        let file: File = toml::from_str(text)
            .map_err(|e| Error::Oracle { what: "the workflow's facts and tools".into(), message: e.to_string() })?;
        let env = Arc::new(Env::stdlib());
        let parse = |what: &str, source: &str| {
            env.compile(source).map_err(|e| Error::Oracle { what: format!("{what} {source}"), message: e.to_string() })
        };
        let parse_opt = |what: &str, source: &Option<String>| source.as_deref().map(|s| parse(what, s)).transpose();
        let facts: BTreeMap<String, Fact> = file
            .facts
            .into_iter()
            .map(|(name, f)| (name, Fact { key_field: f.key, fields: f.fields, identity: f.identity }))
            .collect();
        let mut aggregates = Vec::new();
        for (name, aggregate) in file.aggregates {
            let sum = parse("aggregate sum", &aggregate.sum)?;
            let by = parse_opt("aggregate key", &aggregate.by)?;
            aggregates.push(Aggregate { name, tool: aggregate.tool, sum, by });
        }
        let mut tools = BTreeMap::new();
        for (name, tool) in file.tools {
            let mut gates = Vec::new();
            for gate in tool.requires {
                let (fact, key, alias) = match gate {
                    GateFile::Short(text) => match text.split_once('[') {
                        Some((fact, key)) => (fact.to_owned(), Some(key.trim_end_matches(']').to_owned()), None),
                        None => (text, None, None),
                    },
                    GateFile::Table { fact, key, alias } => (fact, key, alias),
                };
                let key = parse_opt("gate key", &key)?;
                gates.push(Gate { alias: alias.unwrap_or_else(|| fact.clone()), fact, key });
            }
            let mut result_checks = Vec::new();
            for check in tool.result_checks {
                result_checks
                    .push((check.id.unwrap_or_else(|| check.rule.clone()), parse("result check", &check.rule)?));
            }
            let mut mapping = |file: MappingFile| -> Result<Mapping, Error> {
                let mut fields = Vec::new();
                for (field, source) in &file.fields {
                    fields.push((field.clone(), parse("fact mapping", source)?));
                }
                let key = parse_opt("fact mapping key", &file.key)?;
                Ok(Mapping { key, when: parse_opt("fact mapping when", &file.when)?, fields, fact: file.fact })
            };
            let establishes: Vec<Mapping> = tool.establishes.into_iter().map(&mut mapping).collect::<Result<_, _>>()?;
            let updates: Vec<Mapping> = tool.updates.into_iter().map(&mut mapping).collect::<Result<_, _>>()?;
            let whens = establishes.iter().chain(&updates).filter_map(|m| m.when.as_ref());
            let reads_facts =
                result_checks.iter().map(|(_, rule)| rule).chain(whens).any(|p| p.references().has_variable("facts"));
            tools.insert(name, Tool { gates, result_checks, establishes, updates, reads_facts });
        }
        let (result_bytes_max, facts_max) = (limits.result_bytes_max, limits.facts_max);
        let mut root = Context::with_env(Arc::clone(&env));
        crate::functions::add(&mut root).map_err(|message| Error::Oracle { what: "the functions".into(), message })?;
        Ok(Spec { env, root, facts, aggregates, tools, result_bytes_max, facts_max })
    }
}
