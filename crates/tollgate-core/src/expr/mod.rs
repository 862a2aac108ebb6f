//! Rules are written in CEL. The `cel` crate parses them (so the syntax and
//! its error messages are standard CEL); we then *lower* the parsed tree into
//! [`Expr`], where every variable is already resolved to where its value lives
//! (the call's arguments, the tool result, a bound fact, a session counter).
//!
//! Why not run the `cel` crate's interpreter? It resolves every name through
//! string-keyed scopes and converts values on each access: about 250–380 ns
//! for `order.customer_id == customer.id` on this machine, which alone would
//! spend the whole 1 µs decision budget on three rules. Lowering also lets
//! `validate` reject a rule that names an unknown field *before* it runs.
//! A differential property test (`tests/core/cel_differential.rs`) checks
//! that the lowered evaluator agrees with the `cel` crate's interpreter.
//!
//! This module sits below the workflow and the session state: it imports
//! only `value`. Rules read their session through [`Session`], a view it
//! defines and the session state provides from above (`case::InCase`).

mod eval;
mod lower;
mod session;

pub(crate) use eval::{Bindings, Evaluator};
pub(crate) use lower::{Scope, lower, on_parser_stack};
pub(crate) use session::{Fact, NoSession, Session};

use crate::value::Value;
use std::sync::Arc;

/// A compiled CEL rule: the source it came from and its lowered form.
#[derive(Clone, Debug)]
pub struct Rule {
    source: Arc<str>,
    expr: Expr,
    /// Whether the rule computes its value (rather than reading it as is from
    /// JSON), so the value may hold what JSON cannot carry.
    computes: bool,
}

impl Rule {
    pub(crate) fn new(source: &str, expr: Expr) -> Rule {
        let computes = !reads_json(&expr);
        Rule { source: Arc::from(source), expr, computes }
    }

    /// Whether the rule computes its value: only then can it be (or hold) a
    /// timestamp, a duration, a uint or a non-finite double, which JSON (and
    /// so a checkpoint) does not carry as they are.
    pub(crate) fn computes(&self) -> bool {
        self.computes
    }

    /// The CEL source text of the rule.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn expr(&self) -> &Expr {
        &self.expr
    }
}

/// Whether `expr` reads a value as it came from JSON (the arguments, the
/// result, a field or element of them, a string or bool constant), which a
/// checkpoint keeps exactly.
fn reads_json(expr: &Expr) -> bool {
    match expr {
        Expr::Args | Expr::Result => true,
        Expr::Const(value) => matches!(value, Value::String(_) | Value::Bool(_) | Value::Null),
        Expr::Select(target, _) => reads_json(target),
        Expr::Index(target, index) => reads_json(target) && matches!(index.as_ref(), Expr::Const(_)),
        _ => false,
    }
}

/// A session counter a rule can read as `session.<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SessionField {
    BlockedCalls,
    AllowedCalls,
    Escalations,
    /// Recorded results per tool, as a map `tool -> count`.
    Calls,
    /// The session-wide total of a declared aggregate.
    AggregateTotal(usize),
    /// The case-wide total of a declared aggregate (`case.<name>`): this
    /// session's plus the other sessions' of its case.
    CaseTotal(usize),
}

/// A lowered CEL expression.
#[derive(Clone, Debug)]
pub(crate) enum Expr {
    Const(Value),
    Args,
    Result,
    /// A fact bound by the tool's gates, by binding position.
    Fact(usize),
    /// A comprehension variable, by slot.
    Local(usize),
    Session(SessionField),
    /// `now`: the session clock of the call being decided.
    Now,
    /// `context`: what the client says about where the call is made
    /// ([`crate::ToolCall::context`]; an empty map when it says nothing).
    Context,
    /// `facts.<name>`: a single fact's value, or all instances of a keyed
    /// fact as a map from key to instance. By fact id.
    FactTable(usize),
    /// `has(facts.<name>)`: whether the fact (any instance) is established.
    FactPresent(usize),
    /// `aggregate(key)`: the per-key sum of a declared aggregate.
    AggregateBy(usize, Box<Expr>),
    /// `case_<aggregate>(key)`: the per-key sum across the case.
    CaseAggregateBy(usize, Box<Expr>),
    Select(Box<Expr>, Arc<str>),
    /// `has(x.field)`.
    Has(Box<Expr>, Arc<str>),
    Index(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Conditional(Box<Expr>, Box<Expr>, Box<Expr>),
    Compare(Comparison, Box<Expr>, Box<Expr>),
    Arithmetic(Arithmetic, Box<Expr>, Box<Expr>),
    In(Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    Map(Vec<(Arc<str>, Expr)>),
    Function(Function, Vec<Expr>),
    /// `s.matches(re)` / `matches(s, re)`: the pattern is a literal in the
    /// rule, compiled once by the `regex` crate, which runs in time linear in
    /// the text (no backtracking).
    Matches(Box<Expr>, Arc<regex::Regex>),
    /// `@not_strictly_false(x)`: true unless `x` is `false` (errors count as true).
    NotStrictlyFalse(Box<Expr>),
    Comprehension(Box<Comprehension>),
}

impl Expr {
    /// Calls `f` on each direct subexpression (every part of a
    /// comprehension): the one walk the static analyses share.
    pub(crate) fn for_each_child<'e>(&'e self, mut f: impl FnMut(&'e Expr)) {
        match self {
            Expr::Const(_)
            | Expr::Args
            | Expr::Result
            | Expr::Fact(_)
            | Expr::Local(_)
            | Expr::Session(_)
            | Expr::Now
            | Expr::Context
            | Expr::FactTable(_)
            | Expr::FactPresent(_) => {}
            Expr::AggregateBy(_, inner)
            | Expr::CaseAggregateBy(_, inner)
            | Expr::Select(inner, _)
            | Expr::Has(inner, _)
            | Expr::Not(inner)
            | Expr::Negate(inner)
            | Expr::NotStrictlyFalse(inner)
            | Expr::Matches(inner, _) => f(inner),
            Expr::Index(a, b)
            | Expr::And(a, b)
            | Expr::Or(a, b)
            | Expr::Compare(_, a, b)
            | Expr::Arithmetic(_, a, b)
            | Expr::In(a, b) => {
                f(a);
                f(b);
            }
            Expr::Conditional(a, b, c) => {
                f(a);
                f(b);
                f(c);
            }
            Expr::List(items) | Expr::Function(_, items) => items.iter().for_each(f),
            Expr::Map(entries) => entries.iter().for_each(|(_, value)| f(value)),
            Expr::Comprehension(c) => {
                for part in [&c.range, &c.accu_init, &c.loop_condition, &c.loop_step, &c.result] {
                    f(part);
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Comprehension {
    pub range: Expr,
    pub iter_slot: usize,
    pub accu_slot: usize,
    pub accu_init: Expr,
    pub loop_condition: Expr,
    pub loop_step: Expr,
    pub result: Expr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Comparison {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arithmetic {
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
}

/// The standard functions rules may call (a subset of CEL's standard library).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Function {
    Size,
    Contains,
    StartsWith,
    EndsWith,
    LowerAscii,
    ToInt,
    ToUInt,
    ToDouble,
    ToString,
    /// `timestamp(string)`: RFC 3339 text to a timestamp.
    Timestamp,
    /// `duration(string)`: `24h`, `1h30m`, `2.5s` to a duration.
    Duration,
    /// `sum(list)`: the sum of a list of numbers (a Tollgate extension: CEL
    /// has no fold, and limits over several items need one).
    Sum,
    // The CEL strings extension (cel-go's `ext.Strings()`), indices in code points.
    UpperAscii,
    Trim,
    /// `s.replace(from, to)`: every occurrence.
    Replace,
    /// `s.split(separator)`: an empty separator splits between code points.
    Split,
    /// `list.join()`.
    Join,
    /// `list.join(separator)`.
    JoinWith,
    /// `s.indexOf(sub)`: the code-point index of the first occurrence, or -1.
    IndexOf,
}

impl Function {
    /// The function for a CEL name and call style (`x.f(a)` is a member call).
    fn lookup(name: &str, member: bool, count: usize) -> Option<(Function, usize)> {
        // (function, argument count including the receiver)
        let found = match (name, member) {
            ("join", true) if count == 2 => (Function::JoinWith, 2),
            ("join", true) => (Function::Join, 1),
            ("upperAscii", true) => (Function::UpperAscii, 1),
            ("trim", true) => (Function::Trim, 1),
            ("replace", true) => (Function::Replace, 3),
            ("split", true) => (Function::Split, 2),
            ("indexOf", true) => (Function::IndexOf, 2),
            ("size", _) => (Function::Size, 1),
            ("contains", true) => (Function::Contains, 2),
            ("startsWith", true) => (Function::StartsWith, 2),
            ("endsWith", true) => (Function::EndsWith, 2),
            ("lowerAscii", true) => (Function::LowerAscii, 1),
            ("int", false) => (Function::ToInt, 1),
            ("uint", false) => (Function::ToUInt, 1),
            ("double", false) => (Function::ToDouble, 1),
            ("string", false) => (Function::ToString, 1),
            ("timestamp", false) => (Function::Timestamp, 1),
            ("duration", false) => (Function::Duration, 1),
            ("sum", false) => (Function::Sum, 1),
            _ => return None,
        };
        Some(found)
    }
}

/// Evaluates one CEL expression over `args` and `result` (any fields), with
/// an empty session: the hook the differential test and the fuzz targets
/// use to compare the lowered evaluator with the `cel` crate's interpreter.
#[doc(hidden)]
pub fn evaluate_standalone(
    source: &str,
    args: &serde_json::Value,
    result: &serde_json::Value,
) -> Result<Value, String> {
    let scope = Scope { args: Some(None), result: true, ..Scope::default() };
    let expr = lower(source, &scope).map_err(|e| e.message)?;
    let result = Value::from_json(result);
    let mut evaluator = Evaluator::new(Bindings::plain(args, &result, NoSession), 100_000);
    evaluator.evaluate(&expr)
}
