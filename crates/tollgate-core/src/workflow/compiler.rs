//! The compiler's context, shared by every part of `compile`: the text
//! being compiled, the problems and warnings found so far, and the helpers
//! each part uses to lower a rule or a template and to position what is
//! wrong. It sits below the parts (`compile`, `compile_tool`, `invariants`),
//! so each of them can be read on its own.

use super::keys;
use super::{FactId, Template, ToolId, Workflow};
use crate::expr::{Rule, Scope, lower};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// A problem in a workflow file, positioned for a person to find it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file name given to `compile`.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, as one lowercase sentence.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

/// What one compilation has found so far, and where in the text.
pub(super) struct Compiler<'a> {
    text: &'a str,
    file: &'a str,
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

/// Names known before rules are compiled.
pub(super) struct Names {
    pub(super) facts: BTreeMap<String, FactId>,
    pub(super) tools: BTreeMap<String, ToolId>,
    pub(super) aggregates: Vec<String>,
    pub(super) urgency_levels: Vec<String>,
}

impl<'a> Compiler<'a> {
    /// A compiler for `text`, named `file` in the problems it reports.
    pub(super) fn new(text: &'a str, file: &'a str) -> Compiler<'a> {
        Compiler { text, file, problems: Vec::new(), warnings: Vec::new() }
    }

    /// The problems found: what `compile` returns when it gives up early.
    pub(super) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// The workflow built, carrying the warnings, if it was built and no
    /// problem was found; every problem otherwise.
    pub(super) fn finish(self, workflow: Option<Workflow>) -> Result<Workflow, Vec<Problem>> {
        match workflow {
            Some(mut workflow) if self.problems.is_empty() => {
                workflow.warnings = self.warnings;
                Ok(workflow)
            }
            _ => Err(self.problems),
        }
    }

    /// Reports a problem at byte `offset` of the text.
    pub(super) fn problem_at(&mut self, offset: usize, message: String) {
        let problem = self.positioned(offset, message);
        self.problems.push(problem);
    }

    /// A problem at byte `offset`, with its 1-based line and column.
    fn positioned(&self, offset: usize, message: String) -> Problem {
        let before = self.text.get(..offset.min(self.text.len())).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Problem { file: self.file.to_owned(), line, column, message }
    }

    /// Reports a problem at the start of `span`.
    pub(super) fn problem(&mut self, span: &Range<usize>, message: String) {
        self.problem_at(span.start, message);
    }

    /// Warns where a key may not be computable for some calls (which
    /// `decide` then blocks, naming `rule_id`).
    /// An aggregate that sums an argument the tool's schema lets be zero or
    /// negative: a negative amount lowers the total, and the calls after it
    /// pass the limits they should not. Quiet when the schema bounds it
    /// (`exclusiveMinimum >= 0`, `minimum > 0`) or a check of the tool says
    /// `args.<field> > 0`.
    /// A warning at `offset` in the file.
    pub(super) fn warn(&mut self, offset: usize, message: String) {
        let warning = self.positioned(offset, message);
        self.warnings.push(warning);
    }

    pub(super) fn sign_warning(
        &mut self,
        span: &Range<usize>,
        aggregate: &str,
        tool_name: &str,
        sum: &Rule,
        tool: &super::file::ToolFile,
    ) {
        let crate::expr::Expr::Select(target, field) = sum.expr() else { return };
        if !matches!(target.as_ref(), crate::expr::Expr::Args) {
            return;
        }
        let schema = tool.args.as_ref().and_then(|args| serde_json::to_value(args.get_ref()).ok());
        let property = schema.as_ref().and_then(|s| s.get("properties")).and_then(|p| p.get(field.as_ref()));
        let bound = |key: &str| property.and_then(|p| p.get(key)).and_then(serde_json::Value::as_f64);
        if bound("exclusiveMinimum").is_some_and(|m| m >= 0.0) || bound("minimum").is_some_and(|m| m > 0.0) {
            return;
        }
        let positive = [format!("args.{field} > 0"), format!("args.{field} > 0.0"), format!("0 < args.{field}")];
        let checked = tool.checks.iter().any(|check| {
            let source: String = check.rule.get_ref().split_whitespace().collect::<Vec<_>>().join(" ");
            source.split("&&").map(str::trim).any(|part| positive.iter().any(|p| p == part))
        });
        if checked {
            return;
        }
        let message = format!(
            "aggregate '{aggregate}' sums args.{field}, which the schema of '{tool_name}' lets be zero or negative: a \
             negative {field} lowers the total, and the calls after it pass limits they should not; add \
             `exclusiveMinimum = 0` to {field} in the tool's args (or a check `args.{field} > 0`)"
        );
        let warning = self.positioned(span.start, message);
        self.warnings.push(warning);
    }

    pub(super) fn key_warning(
        &mut self,
        span: &Range<usize>,
        what: &str,
        key: &Rule,
        schema: Option<&serde_json::Value>,
        rule_id: &str,
    ) {
        let hazards = keys::hazards(key.expr(), schema);
        if hazards.is_empty() {
            return;
        }
        let message = format!(
            "{what} is keyed by {}, which cannot always be computed ({}); such calls are blocked by {rule_id}",
            key.source(),
            hazards.join("; ")
        );
        let warning = self.positioned(span.start, message);
        self.warnings.push(warning);
    }

    /// Lowers a rule written as a TOML string; a CEL error is positioned at
    /// its column inside the string.
    pub(super) fn rule(&mut self, source: &Spanned<String>, scope: &Scope, what: &str) -> Option<Rule> {
        match lower(source.get_ref(), scope) {
            Ok(expr) => Some(Rule::new(source.get_ref(), expr)),
            Err(error) => {
                // +1 skips the opening quote of a basic string.
                let column = error.column.map_or(0, |c| c.saturating_sub(1) as usize);
                self.problem_at(source.span().start + 1 + column, format!("{what}: {}", error.message));
                None
            }
        }
    }

    /// Compiles a message template written as a TOML string; a hole that
    /// does not compile is a problem at the string.
    pub(super) fn template(&mut self, text: &Spanned<String>, scope: &Scope, what: &str) -> Option<Template> {
        match Template::compile(text.get_ref(), scope) {
            Ok(template) => Some(template),
            Err(message) => {
                self.problem(&text.span(), format!("{what}: {message}"));
                None
            }
        }
    }
}

/// The top-level properties a JSON Schema declares.
pub(super) fn schema_fields(json: &serde_json::Value) -> BTreeSet<String> {
    json.get("properties").and_then(|p| p.as_object()).map(|p| p.keys().cloned().collect()).unwrap_or_default()
}
