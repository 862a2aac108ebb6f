//! `[[invariants]]`: what must hold for every allowed call of a tool, stated
//! apart from its gates and checks. `decide` never reads them: they are the
//! oracle `tollgate attack` judges decisions by, so a weakened gate cannot
//! weaken its own test. Here they are only validated: the CEL parses and
//! every name it uses exists.
//!
//! An invariant's rule sees `args` (the call's arguments), `facts` (every
//! fact the session held *before* the call: `facts.customer.id`,
//! `facts.order[args.order_id].total`, `has(facts.customer)`,
//! `args.order_id in facts.order`), `session.<counter>` and
//! `session.<aggregate>` (totals before the call), `<aggregate>(key)`, `now`
//! (the call's session clock) and `sum(list)`.

use super::compiler::Compiler;
use super::file::InvariantFile;
use super::{FactDecl, ToolId};
use cel::common::ast::{EntryExpr, Expr as CelExpr, IdedExpr};
use std::collections::{BTreeMap, BTreeSet};
use toml::Spanned;

/// A declared invariant: a CEL rule every allowed call of its tools must
/// satisfy, judged by `tollgate attack` (never by `decide`).
#[derive(Clone, Debug)]
pub struct Invariant {
    pub(crate) id: String,
    pub(crate) tools: Vec<ToolId>,
    pub(crate) tool_names: Vec<String>,
    pub(crate) rule: String,
    pub(crate) message: String,
}

impl Invariant {
    /// The invariant's id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The tools whose allowed calls it covers.
    pub fn tools(&self) -> &[ToolId] {
        &self.tools
    }
    /// The names of those tools.
    pub fn tool_names(&self) -> &[String] {
        &self.tool_names
    }
    /// The CEL source of the rule.
    pub fn rule(&self) -> &str {
        &self.rule
    }
    /// What a violation means, as one sentence.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Functions an invariant may call: CEL's standard library, and `sum`
/// (the one extension rules have too).
const STANDARD_FUNCTIONS: [&str; 21] = [
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "int",
    "uint",
    "double",
    "string",
    "bool",
    "bytes",
    "timestamp",
    "duration",
    "type",
    "dyn",
    "max",
    "min",
    "getFullYear",
    "getMonth",
    "getDayOfMonth",
    "sum",
];

/// Session fields every workflow has.
const SESSION_COUNTERS: [&str; 3] = ["blocked_calls", "allowed_calls", "escalations"];

/// What the names in an invariant may refer to.
pub(super) struct InvariantNames<'a> {
    pub facts: &'a [FactDecl],
    pub tools: &'a BTreeMap<String, ToolId>,
    /// Declared argument fields per tool (`None`: no schema, any field).
    pub arg_fields: &'a BTreeMap<String, Option<BTreeSet<String>>>,
    pub aggregates: &'a [String],
}

impl Compiler<'_> {
    pub(super) fn invariants(
        &mut self,
        files: &[Spanned<InvariantFile>],
        names: &InvariantNames<'_>,
    ) -> Vec<Invariant> {
        let mut invariants: Vec<Invariant> = Vec::new();
        for spanned in files {
            let span = spanned.span();
            let file = spanned.get_ref();
            if file.id.is_empty() || invariants.iter().any(|i| i.id == file.id) {
                self.problem(&span, format!("invariant id '{}' is empty or used twice", file.id));
                continue;
            }
            if file.tools.is_empty() {
                self.problem(&span, format!("invariant '{}' covers no tools: name them in tools = [...]", file.id));
                continue;
            }
            let mut tools = Vec::new();
            for name in &file.tools {
                match names.tools.get(name) {
                    Some(&tool) => tools.push(tool),
                    None => self.problem(&span, format!("invariant '{}' covers unknown tool '{name}'", file.id)),
                }
            }
            let mut problems = Vec::new();
            match cel::Program::compile(file.rule.get_ref()) {
                Ok(program) => {
                    let mut check =
                        NameCheck { names, tools: &file.tools, locals: Vec::new(), problems: &mut problems };
                    check.walk(program.expression());
                }
                Err(errors) => problems.push(
                    errors
                        .errors
                        .first()
                        .map_or_else(|| "CEL syntax error".to_owned(), |e| format!("CEL syntax error: {}", e.msg)),
                ),
            }
            for problem in &problems {
                self.problem(&file.rule.span(), format!("invariant '{}' rule: {problem}", file.id));
            }
            if problems.is_empty() && tools.len() == file.tools.len() {
                invariants.push(Invariant {
                    id: file.id.clone(),
                    tools,
                    tool_names: file.tools.clone(),
                    rule: file.rule.get_ref().clone(),
                    message: file.message.clone(),
                });
            }
        }
        invariants
    }
}

/// Walks a parsed rule and reports names that do not exist.
struct NameCheck<'a, 'p> {
    names: &'a InvariantNames<'a>,
    tools: &'a [String],
    locals: Vec<String>,
    problems: &'p mut Vec<String>,
}

impl NameCheck<'_, '_> {
    fn walk(&mut self, node: &IdedExpr) {
        match &node.expr {
            CelExpr::Ident(name) => self.ident(name),
            CelExpr::Select(select) => {
                if self.select(&select.operand, &select.field) {
                    self.walk(&select.operand);
                }
            }
            CelExpr::Call(call) => {
                let name = call.func_name.as_str();
                // Operators (`_&&_`, `!_`, `@in`) are not names a person wrote.
                let operator = !name.starts_with(|c: char| c.is_ascii_alphabetic());
                if !operator && !STANDARD_FUNCTIONS.contains(&name) && !self.names.aggregates.iter().any(|a| a == name)
                {
                    self.problems.push(format!("unknown function '{name}'"));
                }
                if let Some(target) = &call.target {
                    self.walk(target);
                }
                for arg in &call.args {
                    self.walk(arg);
                }
            }
            CelExpr::List(list) => list.elements.iter().for_each(|e| self.walk(e)),
            CelExpr::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(entry) = &entry.expr {
                        self.walk(&entry.key);
                        self.walk(&entry.value);
                    }
                }
            }
            CelExpr::Comprehension(comprehension) => {
                self.walk(&comprehension.iter_range);
                self.walk(&comprehension.accu_init);
                let depth = self.locals.len();
                self.locals.push(comprehension.iter_var.clone());
                self.locals.extend(comprehension.iter_var2.clone());
                self.locals.push(comprehension.accu_var.clone());
                self.walk(&comprehension.loop_cond);
                self.walk(&comprehension.loop_step);
                self.walk(&comprehension.result);
                self.locals.truncate(depth);
            }
            CelExpr::Struct(_) => self.problems.push("message literals are not supported".into()),
            CelExpr::Literal(_) | CelExpr::Unspecified => {}
        }
    }

    fn ident(&mut self, name: &str) {
        if !self.locals.iter().any(|l| l == name) && !matches!(name, "args" | "facts" | "session" | "now") {
            self.problems.push(format!("unknown name '{name}' (invariants see args, facts, session and now)"));
        }
    }

    /// Checks `facts.x`, `session.x`, `args.x` and a fact's field; returns
    /// whether the operand still needs walking.
    fn select(&mut self, operand: &IdedExpr, field: &str) -> bool {
        let root = |expr: &IdedExpr| match &expr.expr {
            CelExpr::Ident(name) if !self.locals.iter().any(|l| l == name) => Some(name.clone()),
            _ => None,
        };
        match root(operand).as_deref() {
            Some("facts") => {
                if !self.names.facts.iter().any(|f| f.name.as_ref() == field) {
                    let known: Vec<&str> = self.names.facts.iter().map(|f| f.name.as_ref()).collect();
                    self.problems.push(format!("facts has no '{field}' (declared: {})", known.join(", ")));
                }
                return false;
            }
            Some("session") => {
                if !SESSION_COUNTERS.contains(&field) && !self.names.aggregates.iter().any(|a| a == field) {
                    let mut known = SESSION_COUNTERS.to_vec();
                    known.extend(self.names.aggregates.iter().map(String::as_str));
                    self.problems.push(format!("session has no field '{field}' (known: {})", known.join(", ")));
                }
                return false;
            }
            Some("args") => {
                let declared = self.tools.iter().any(|tool| match self.names.arg_fields.get(tool) {
                    Some(Some(fields)) => fields.contains(field),
                    _ => true,
                });
                if !declared {
                    self.problems
                        .push(format!("args has no field '{field}' in the schema of {}", self.tools.join(", ")));
                }
                return false;
            }
            _ => {}
        }
        if let Some(fact) = self.fact_instance(operand)
            && !fact.fields.contains_key(field)
        {
            let known: Vec<&str> = fact.fields.keys().map(String::as_str).collect();
            self.problems.push(format!("fact '{}' has no field '{field}' (declared: {})", fact.name, known.join(", ")));
        }
        true
    }

    /// The fact an expression names an instance of: `facts.customer` for a
    /// fact held once, `facts.order[key]` for a keyed one.
    fn fact_instance(&self, expr: &IdedExpr) -> Option<&FactDecl> {
        let named = |expr: &IdedExpr| match &expr.expr {
            CelExpr::Select(select) if !select.test => match &select.operand.expr {
                CelExpr::Ident(root) if root == "facts" && !self.locals.iter().any(|l| l == "facts") => {
                    self.names.facts.iter().find(|f| f.name.as_ref() == select.field)
                }
                _ => None,
            },
            _ => None,
        };
        match &expr.expr {
            CelExpr::Call(call) if call.func_name == "_[_]" => {
                call.args.first().and_then(named).filter(|f| f.key_field.is_some())
            }
            _ => named(expr).filter(|f| f.key_field.is_none()),
        }
    }
}
