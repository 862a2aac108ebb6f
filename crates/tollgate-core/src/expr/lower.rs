//! Lowering: from the `cel` crate's parsed tree to [`Expr`], resolving names.

use super::{Arithmetic, Comparison, Comprehension, Expr, Function, SessionField};
use crate::value::Value;
use cel::common::ast::{EntryExpr, Expr as CelExpr, IdedExpr, LiteralValue};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What names a rule may use where it is written.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scope {
    /// `Some(fields)` if `args` is in scope; `fields` are the top-level
    /// properties the tool's schema declares (`None`: any field).
    pub args: Option<Option<BTreeSet<String>>>,
    /// Whether `result` is in scope (result checks and fact mappings).
    pub result: bool,
    /// Facts bound by the tool's gates: alias and declared fields.
    pub facts: Vec<(String, BTreeSet<String>)>,
    /// Declared aggregate names (`session.<name>` and `<name>(key)`).
    pub aggregates: Vec<String>,
    /// Whether `session.*` is in scope.
    pub session: bool,
    /// Whether `now` (the session clock) is in scope.
    pub now: bool,
    /// Whether `context` (what the client says about the call: `cwd`,
    /// `project_dir`, ...) is in scope.
    pub context: bool,
    /// Every declared fact (index = fact id) if `facts.<name>` is in scope:
    /// its name and, for a single (unkeyed) fact, its declared fields.
    pub all_facts: Option<Vec<(String, Option<BTreeSet<String>>)>>,
}

/// The fields a client may put in a call's `context` (what `tollgate hook`
/// gives: the event's `cwd`, the client's project directory, the subagent).
pub(crate) const CONTEXT_FIELDS: [&str; 4] = ["cwd", "project_dir", "agent_id", "agent_type"];

/// A rule that cannot be lowered: a message and, where known, the 1-based
/// column inside the rule's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LowerError {
    pub message: String,
    pub column: Option<u32>,
}

/// The longest rule text accepted, in bytes. Far above any rule a person
/// writes; it bounds the work (and the stack) one rule can cost to parse.
pub(crate) const MAX_RULE_BYTES: usize = 8 * 1024;

/// The stack the `cel` parser runs on. Its ANTLR parser recurses once per
/// nesting level and per term of an operator chain; built without
/// optimisation it takes about 170 KB per nesting level, so the 2 MB of an
/// ordinary thread overflows (aborting the process) at a dozen nested
/// parentheses. A dedicated thread with this much (virtual) stack holds the
/// parser's own nesting limit and a [`MAX_RULE_BYTES`] operator chain in any
/// build profile. Rules are parsed when a workflow is compiled, never while
/// deciding, so the thread costs nothing on the decision path.
const PARSER_STACK_BYTES: usize = 64 << 20;

/// Parses CEL source and lowers it against `scope`.
pub(crate) fn lower(source: &str, scope: &Scope) -> Result<Expr, LowerError> {
    if source.len() > MAX_RULE_BYTES {
        return Err(LowerError {
            message: format!("the rule is {} bytes, over the limit of {MAX_RULE_BYTES} bytes", source.len()),
            column: None,
        });
    }
    on_parser_stack(|| lower_here(source, scope)).unwrap_or_else(|message| Err(LowerError { message, column: None }))
}

thread_local! {
    /// Whether this thread is already a parser thread (see [`on_parser_stack`]).
    static ON_PARSER_STACK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `work` on a thread with [`PARSER_STACK_BYTES`] of stack, or right
/// here when this already is such a thread: compiling a workflow takes one
/// thread for all its rules. An error if the thread cannot be started or
/// `work` panicked.
pub(crate) fn on_parser_stack<R: Send>(work: impl FnOnce() -> R + Send) -> Result<R, String> {
    if ON_PARSER_STACK.with(std::cell::Cell::get) {
        return Ok(work());
    }
    std::thread::scope(|threads| {
        let parser = std::thread::Builder::new()
            .name("tollgate-cel-parser".to_owned())
            .stack_size(PARSER_STACK_BYTES)
            .spawn_scoped(threads, || {
                ON_PARSER_STACK.with(|flag| flag.set(true));
                work()
            });
        match parser {
            Ok(handle) => handle.join().map_err(|_| "the CEL parser failed on this rule".to_owned()),
            Err(error) => Err(format!("could not start the CEL parser: {error}")),
        }
    })
}

/// [`lower`] on the current thread's stack.
fn lower_here(source: &str, scope: &Scope) -> Result<Expr, LowerError> {
    let program = cel::Program::compile(source).map_err(|errors| {
        let first = errors.errors.first();
        LowerError {
            message: first
                .map(|e| format!("CEL syntax error: {}", e.msg))
                .unwrap_or_else(|| "CEL syntax error".to_owned()),
            column: first.and_then(|e| u32::try_from(e.pos.1).ok()),
        }
    })?;
    let mut lowerer = Lowerer { scope, locals: Vec::new(), program: &program, depth: 0 };
    lowerer.lower(program.expression())
}

/// How deeply the operators of one rule may nest. Lowering and evaluation
/// walk the tree recursively, so the depth is bounded where the rule is
/// compiled: a chain like `a + 1 + 1 + ...` of thousands of terms is a
/// problem reported with the rule, never a stack overflow. Rules people
/// write nest a dozen levels; the expanded macros add three per level.
pub(crate) const MAX_RULE_DEPTH: u32 = 120;

struct Lowerer<'a> {
    scope: &'a Scope,
    locals: Vec<String>,
    program: &'a cel::Program,
    /// Nesting of the node being lowered.
    depth: u32,
}

impl Lowerer<'_> {
    fn error(&self, node: &IdedExpr, message: String) -> LowerError {
        let column = self.program.source_info().offset_for(node.id).map(|(start, _)| start.saturating_add(1));
        LowerError { message, column }
    }

    fn lower(&mut self, node: &IdedExpr) -> Result<Expr, LowerError> {
        if self.depth >= MAX_RULE_DEPTH {
            return Err(self.error(
                node,
                format!("the rule nests deeper than {MAX_RULE_DEPTH} operators; split it into several checks"),
            ));
        }
        self.depth += 1;
        let lowered = self.lower_node(node);
        self.depth -= 1;
        lowered
    }

    fn lower_node(&mut self, node: &IdedExpr) -> Result<Expr, LowerError> {
        match &node.expr {
            CelExpr::Literal(literal) => Ok(Expr::Const(literal_value(literal))),
            CelExpr::Ident(name) => self.lower_ident(node, name),
            CelExpr::Select(select) => {
                let operand = &select.operand;
                if let CelExpr::Ident(root) = &operand.expr
                    && root == "session"
                    && !self.locals.iter().any(|l| l == "session")
                {
                    return self.lower_session_field(node, &select.field, select.test);
                }
                if let CelExpr::Ident(root) = &operand.expr
                    && root == "case"
                    && self.scope.session
                    && !self.locals.iter().any(|l| l == "case")
                    && !self.scope.facts.iter().any(|(alias, _)| alias == "case")
                {
                    return self.lower_case_field(node, &select.field, select.test);
                }
                if let CelExpr::Ident(root) = &operand.expr
                    && root == "facts"
                    && !self.locals.iter().any(|l| l == "facts")
                {
                    return self.lower_fact_table(node, &select.field, select.test);
                }
                let target = self.lower(operand)?;
                self.check_field(node, &target, &select.field)?;
                let field: Arc<str> = Arc::from(select.field.as_str());
                Ok(if select.test { Expr::Has(Box::new(target), field) } else { Expr::Select(Box::new(target), field) })
            }
            CelExpr::Call(call) => self.lower_call(node, call),
            CelExpr::List(list) => {
                if !list.optional_indices.is_empty() {
                    return Err(self.error(node, "optional list elements are not supported".into()));
                }
                let items: Vec<Expr> = list.elements.iter().map(|e| self.lower(e)).collect::<Result<_, _>>()?;
                // A list of constants is itself a constant: built once, here.
                if items.iter().all(|i| matches!(i, Expr::Const(_))) {
                    let values = items.into_iter().filter_map(|i| if let Expr::Const(v) = i { Some(v) } else { None });
                    return Ok(Expr::Const(Value::List(std::sync::Arc::new(values.collect()))));
                }
                Ok(Expr::List(items))
            }
            CelExpr::Map(map) => {
                let mut entries: Vec<(Arc<str>, Expr)> = Vec::with_capacity(map.entries.len());
                for entry in &map.entries {
                    let EntryExpr::MapEntry(entry) = &entry.expr else {
                        return Err(self.error(node, "struct fields are not supported".into()));
                    };
                    let CelExpr::Literal(LiteralValue::String(key)) = &entry.key.expr else {
                        return Err(self.error(&entry.key, "map keys must be string literals".into()));
                    };
                    if entry.optional {
                        return Err(self.error(node, "optional map entries are not supported".into()));
                    }
                    if entries.iter().any(|(k, _)| k.as_ref() == key.inner()) {
                        return Err(self.error(&entry.key, format!("map key '{}' appears twice", key.inner())));
                    }
                    entries.push((Arc::from(key.inner()), self.lower(&entry.value)?));
                }
                Ok(Expr::Map(entries))
            }
            CelExpr::Comprehension(comprehension) => {
                if comprehension.iter_var2.is_some() {
                    return Err(self.error(node, "two-variable comprehensions are not supported".into()));
                }
                let range = self.lower(&comprehension.iter_range)?;
                let accu_init = self.lower(&comprehension.accu_init)?;
                let iter_slot = self.locals.len();
                self.locals.push(comprehension.iter_var.clone());
                let accu_slot = self.locals.len();
                self.locals.push(comprehension.accu_var.clone());
                let lowered = (|| {
                    Ok::<_, LowerError>((
                        self.lower(&comprehension.loop_cond)?,
                        self.lower(&comprehension.loop_step)?,
                        self.lower(&comprehension.result)?,
                    ))
                })();
                self.locals.truncate(iter_slot);
                let (loop_condition, loop_step, result) = lowered?;
                Ok(Expr::Comprehension(Box::new(Comprehension {
                    range,
                    iter_slot,
                    accu_slot,
                    accu_init,
                    loop_condition,
                    loop_step,
                    result,
                })))
            }
            CelExpr::Struct(_) => Err(self.error(node, "message literals are not supported".into())),
            CelExpr::Unspecified => Err(self.error(node, "empty expression".into())),
        }
    }

    fn lower_ident(&self, node: &IdedExpr, name: &str) -> Result<Expr, LowerError> {
        if let Some(slot) = self.locals.iter().rposition(|l| l == name) {
            return Ok(Expr::Local(slot));
        }
        match name {
            "args" if self.scope.args.is_some() => return Ok(Expr::Args),
            "result" if self.scope.result => return Ok(Expr::Result),
            "now" if self.scope.now => return Ok(Expr::Now),
            "context" if self.scope.context => return Ok(Expr::Context),
            "facts" if self.scope.all_facts.is_some() => {
                return Err(self.error(node, "name a fact: facts.<name>, such as facts.customer".into()));
            }
            "session" if self.scope.session => {
                return Err(self.error(node, "use a session field, such as session.blocked_calls".into()));
            }
            _ => {}
        }
        if let Some(index) = self.scope.facts.iter().position(|(alias, _)| alias == name) {
            return Ok(Expr::Fact(index));
        }
        Err(self.error(node, format!("unknown name '{name}': {}", self.names_in_scope())))
    }

    fn names_in_scope(&self) -> String {
        let mut names: Vec<String> = Vec::new();
        if self.scope.args.is_some() {
            names.push("args".into());
        }
        if self.scope.result {
            names.push("result".into());
        }
        names.extend(self.scope.facts.iter().map(|(alias, _)| alias.clone()));
        if self.scope.all_facts.is_some() {
            names.push("facts".into());
        }
        if self.scope.session {
            names.push("session".into());
        }
        if self.scope.now {
            names.push("now".into());
        }
        if self.scope.context {
            names.push("context".into());
        }
        if names.is_empty() {
            "no names are in scope here".into()
        } else {
            format!("in scope here: {}", names.join(", "))
        }
    }

    /// `case.<aggregate>`: an aggregate's total across the case.
    fn lower_case_field(&self, node: &IdedExpr, field: &str, test: bool) -> Result<Expr, LowerError> {
        let Some(index) = self.scope.aggregates.iter().position(|a| a == field) else {
            return Err(self.error(
                node,
                format!("case has no field '{field}' (known: the aggregates {})", self.scope.aggregates.join(", ")),
            ));
        };
        if test {
            return Ok(Expr::Const(Value::Bool(true)));
        }
        Ok(Expr::Session(SessionField::CaseTotal(index)))
    }

    fn lower_session_field(&self, node: &IdedExpr, field: &str, test: bool) -> Result<Expr, LowerError> {
        if !self.scope.session {
            return Err(self.error(node, "session fields are not available here".into()));
        }
        let session_field = match field {
            "blocked_calls" => SessionField::BlockedCalls,
            "allowed_calls" => SessionField::AllowedCalls,
            "escalations" => SessionField::Escalations,
            "calls" => SessionField::Calls,
            other => match self.scope.aggregates.iter().position(|a| a == other) {
                Some(index) => SessionField::AggregateTotal(index),
                None => {
                    let mut known = vec!["blocked_calls", "allowed_calls", "escalations", "calls"];
                    known.extend(self.scope.aggregates.iter().map(String::as_str));
                    return Err(
                        self.error(node, format!("session has no field '{other}' (known: {})", known.join(", ")))
                    );
                }
            },
        };
        if test {
            return Ok(Expr::Const(Value::Bool(true)));
        }
        Ok(Expr::Session(session_field))
    }

    /// `facts.<name>` (or `has(facts.<name>)`): a declared fact, by name.
    fn lower_fact_table(&self, node: &IdedExpr, name: &str, test: bool) -> Result<Expr, LowerError> {
        let Some(all) = &self.scope.all_facts else {
            return Err(self.error(node, "facts are not available here".into()));
        };
        match all.iter().position(|(fact, _)| fact == name) {
            Some(id) => Ok(if test { Expr::FactPresent(id) } else { Expr::FactTable(id) }),
            None => {
                let known: Vec<&str> = all.iter().map(|(fact, _)| fact.as_str()).collect();
                Err(self.error(node, format!("no fact named '{name}' (declared: {})", known.join(", "))))
            }
        }
    }

    /// Rejects `args.x` and `fact.x` where `x` is not declared.
    fn check_field(&self, node: &IdedExpr, target: &Expr, field: &str) -> Result<(), LowerError> {
        match target {
            Expr::Context if !CONTEXT_FIELDS.contains(&field) => {
                return Err(
                    self.error(node, format!("context has no field '{field}' (known: {})", CONTEXT_FIELDS.join(", ")))
                );
            }
            Expr::Args => {
                if let Some(Some(known)) = &self.scope.args
                    && !known.contains(field)
                {
                    let list: Vec<&str> = known.iter().map(String::as_str).collect();
                    return Err(self.error(
                        node,
                        format!(
                            "args has no field '{field}': the tool's schema declares {}",
                            if list.is_empty() { "no properties".to_owned() } else { list.join(", ") }
                        ),
                    ));
                }
            }
            Expr::FactTable(id) => {
                if let Some(Some((name, Some(fields)))) = self.scope.all_facts.as_ref().map(|all| all.get(*id))
                    && !fields.contains(field)
                {
                    let list: Vec<&str> = fields.iter().map(String::as_str).collect();
                    return Err(self
                        .error(node, format!("fact '{name}' has no field '{field}' (declared: {})", list.join(", "))));
                }
            }
            Expr::Fact(index) => {
                if let Some((alias, fields)) = self.scope.facts.get(*index)
                    && !fields.contains(field)
                {
                    let list: Vec<&str> = fields.iter().map(String::as_str).collect();
                    return Err(self.error(
                        node,
                        format!("fact '{alias}' has no field '{field}' (declared: {})", list.join(", ")),
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn lower_call(&mut self, node: &IdedExpr, call: &cel::common::ast::CallExpr) -> Result<Expr, LowerError> {
        let name = call.func_name.as_str();
        let mut args = Vec::with_capacity(call.args.len() + 1);
        if let Some(target) = &call.target {
            args.push(self.lower(target)?);
        }
        for arg in &call.args {
            args.push(self.lower(arg)?);
        }
        let arity = |n: usize| -> Result<(), LowerError> {
            if args.len() == n {
                Ok(())
            } else {
                Err(self.error(node, format!("'{name}' takes {n} argument(s), got {}", args.len())))
            }
        };
        let binary = |op: &dyn Fn(Box<Expr>, Box<Expr>) -> Expr, mut args: Vec<Expr>| {
            let right = args.pop().unwrap_or(Expr::Const(Value::Null));
            let left = args.pop().unwrap_or(Expr::Const(Value::Null));
            op(Box::new(left), Box::new(right))
        };
        let lowered = match name {
            "_&&_" => {
                arity(2)?;
                binary(&Expr::And, args)
            }
            "_||_" => {
                arity(2)?;
                binary(&Expr::Or, args)
            }
            "!_" | "-_" | "@not_strictly_false" => {
                arity(1)?;
                let operand = Box::new(args.pop().unwrap_or(Expr::Const(Value::Null)));
                match name {
                    "!_" => Expr::Not(operand),
                    "-_" => Expr::Negate(operand),
                    _ => Expr::NotStrictlyFalse(operand),
                }
            }
            "_?_:_" => {
                arity(3)?;
                let otherwise = args.pop().unwrap_or(Expr::Const(Value::Null));
                let then = args.pop().unwrap_or(Expr::Const(Value::Null));
                let condition = args.pop().unwrap_or(Expr::Const(Value::Null));
                Expr::Conditional(Box::new(condition), Box::new(then), Box::new(otherwise))
            }
            "_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_" => {
                arity(2)?;
                let c = match name {
                    "_==_" => Comparison::Equal,
                    "_!=_" => Comparison::NotEqual,
                    "_<_" => Comparison::Less,
                    "_<=_" => Comparison::LessOrEqual,
                    "_>_" => Comparison::Greater,
                    _ => Comparison::GreaterOrEqual,
                };
                binary(&|l, r| Expr::Compare(c, l, r), args)
            }
            "_+_" | "_-_" | "_*_" | "_/_" | "_%_" => {
                arity(2)?;
                let a = match name {
                    "_+_" => Arithmetic::Add,
                    "_-_" => Arithmetic::Subtract,
                    "_*_" => Arithmetic::Multiply,
                    "_/_" => Arithmetic::Divide,
                    _ => Arithmetic::Modulo,
                };
                binary(&|l, r| Expr::Arithmetic(a, l, r), args)
            }
            "_[_]" => {
                arity(2)?;
                binary(&Expr::Index, args)
            }
            "@in" => {
                arity(2)?;
                binary(&Expr::In, args)
            }
            _ => {
                if call.target.is_none()
                    && let Some(index) = self.scope.aggregates.iter().position(|a| a == name)
                {
                    if !self.scope.session {
                        return Err(self.error(node, format!("aggregate '{name}' is not available here")));
                    }
                    arity(1)?;
                    let key = args.pop().unwrap_or(Expr::Const(Value::Null));
                    return Ok(Expr::AggregateBy(index, Box::new(key)));
                }
                if call.target.is_none()
                    && let Some(index) = name
                        .strip_prefix("case_")
                        .and_then(|aggregate| self.scope.aggregates.iter().position(|a| a == aggregate))
                {
                    if !self.scope.session {
                        return Err(self.error(node, format!("case aggregate '{name}' is not available here")));
                    }
                    arity(1)?;
                    let key = args.pop().unwrap_or(Expr::Const(Value::Null));
                    return Ok(Expr::CaseAggregateBy(index, Box::new(key)));
                }
                if name == "matches" {
                    arity(2)?;
                    return self.lower_matches(node, args);
                }
                let Some((function, count)) = Function::lookup(name, call.target.is_some(), args.len()) else {
                    return Err(self.error(node, format!("unknown function '{name}'")));
                };
                arity(count)?;
                Expr::Function(function, args)
            }
        };
        Ok(lowered)
    }
}

impl Lowerer<'_> {
    /// `s.matches(re)` or `matches(s, re)`: the pattern must be a string
    /// literal, compiled here once (a pattern computed per call would be
    /// compiled per call, and could be anything the agent sent).
    fn lower_matches(&self, node: &IdedExpr, mut args: Vec<Expr>) -> Result<Expr, LowerError> {
        let pattern = args.pop();
        let text = args.pop().unwrap_or(Expr::Const(Value::Null));
        let Some(Expr::Const(Value::String(pattern))) = pattern else {
            return Err(self.error(
                node,
                "matches() takes its pattern as a string literal written in the rule, such as \
                 s.matches('^#W[0-9]+$'): it is compiled once, and never from what a call sends"
                    .to_owned(),
            ));
        };
        let regex = regex::RegexBuilder::new(&pattern).size_limit(REGEX_SIZE_MAX).build().map_err(|e| {
            self.error(node, format!("matches(): the pattern {pattern:?} is not a valid regular expression: {e}"))
        })?;
        Ok(Expr::Matches(Box::new(text), Arc::new(regex)))
    }
}

/// The largest compiled pattern `matches()` accepts, in bytes.
const REGEX_SIZE_MAX: usize = 1 << 20;

fn literal_value(literal: &LiteralValue) -> Value {
    match literal {
        LiteralValue::Boolean(b) => Value::Bool(*b.inner()),
        LiteralValue::Bytes(b) => Value::String(Arc::from(String::from_utf8_lossy(b.inner()).as_ref())),
        LiteralValue::Double(d) => Value::Double(*d.inner()),
        LiteralValue::Int(i) => Value::Int(*i.inner()),
        LiteralValue::Null => Value::Null,
        LiteralValue::String(s) => Value::String(Arc::from(s.inner())),
        LiteralValue::UInt(u) => Value::UInt(*u.inner()),
    }
}
