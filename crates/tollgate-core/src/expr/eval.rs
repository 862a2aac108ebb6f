//! Evaluation of lowered expressions. Errors are values the caller turns into
//! a block; nothing here panics on any input.

use super::session::{Fact, Session};
use super::{Arithmetic, Comparison, Comprehension, Expr, Function, SessionField};
use crate::value::{Map, Value};
use std::cmp::Ordering;
use std::sync::Arc;

/// What the names of a rule refer to during one evaluation. `S` is the
/// session it reads ([`Session`]), a small `Copy` view held by value.
#[derive(Clone, Copy)]
pub(crate) struct Bindings<'a, S> {
    /// The call's arguments, read as JSON: only the fields a rule touches are
    /// converted, which is most of the cost of a decision otherwise.
    pub args: &'a serde_json::Value,
    pub result: &'a Value,
    pub facts: &'a [&'a Value],
    /// The session, and the other sessions of its case (`case.<aggregate>`).
    pub session: S,
    /// The session clock (`now`), in milliseconds since the Unix epoch.
    pub now_ms: Option<i64>,
    /// What the client says about the call (`context`); JSON null when it
    /// says nothing, read as an empty map.
    pub context: &'a serde_json::Value,
}

impl<'a, S> Bindings<'a, S> {
    /// Arguments, a result and the session; no bound facts, no clock: what
    /// key expressions, fact mappings and aggregates read.
    pub(crate) fn plain(args: &'a serde_json::Value, result: &'a Value, session: S) -> Bindings<'a, S> {
        Bindings { args, result, facts: &[], session, now_ms: None, context: &serde_json::Value::Null }
    }
}

/// Evaluates expressions against bindings, within a step budget.
pub(crate) struct Evaluator<'a, S> {
    bindings: Bindings<'a, S>,
    /// Comprehension variables. The accumulator can hold an error: CEL
    /// treats errors as values that a later `false` in `all` (or `true` in
    /// `exists`) absorbs, exactly as `&&` and `||` do.
    locals: Vec<Outcome>,
    steps_left: u32,
}

type Outcome = Result<Value, String>;

impl<'a, S: Session + Copy> Evaluator<'a, S> {
    pub(crate) fn new(bindings: Bindings<'a, S>, steps_max: u32) -> Evaluator<'a, S> {
        Evaluator { bindings, locals: Vec::new(), steps_left: steps_max }
    }

    /// Evaluates a rule that must produce a boolean.
    pub(crate) fn evaluate_bool(&mut self, expr: &Expr) -> Result<bool, String> {
        match self.evaluate(expr)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!("the rule produced a {}, not a bool", other.type_name())),
        }
    }

    pub(crate) fn evaluate(&mut self, expr: &Expr) -> Outcome {
        self.steps_left =
            self.steps_left.checked_sub(1).ok_or_else(|| "the rule exceeded its evaluation step limit".to_owned())?;
        match expr {
            Expr::Const(value) => Ok(value.clone()),
            Expr::Args => Ok(Value::from_json(self.bindings.args)),
            Expr::Result => Ok(self.bindings.result.clone()),
            Expr::Context => match self.bindings.context {
                serde_json::Value::Null => Ok(Value::Map(Arc::default())),
                context => Ok(Value::from_json(context)),
            },
            Expr::Fact(index) => self
                .bindings
                .facts
                .get(*index)
                .map(|v| (*v).clone())
                .ok_or_else(|| "a fact the rule needs is not bound".to_owned()),
            Expr::Local(slot) => {
                self.locals.get(*slot).cloned().unwrap_or_else(|| Err("comprehension variable is not set".to_owned()))
            }
            Expr::Session(field) => Ok(self.session_field(*field)),
            Expr::Now => match self.bindings.now_ms {
                Some(ms) => ms
                    .checked_mul(1_000_000)
                    .map(Value::Timestamp)
                    .ok_or_else(|| "the session clock is out of range".to_owned()),
                None => Err("the session clock (now) is not set for this call".to_owned()),
            },
            Expr::FactTable(id) => match self.bindings.session.fact(*id) {
                Some(Fact::Single(Some(value))) => Ok(value.clone()),
                Some(Fact::Single(None)) => Err("the fact is not established in this session".to_owned()),
                Some(Fact::Keyed(instances)) => Ok(Value::Map(instances.clone())),
                None => Err("no such fact".to_owned()),
            },
            Expr::FactPresent(id) => Ok(Value::Bool(match self.bindings.session.fact(*id) {
                Some(Fact::Single(value)) => value.is_some(),
                Some(Fact::Keyed(instances)) => !instances.is_empty(),
                None => false,
            })),
            Expr::CaseAggregateBy(index, key) => {
                let key = self.key_text(key)?;
                let session = self.bindings.session;
                Ok(Value::Double(session.aggregate_by(*index, &key) + session.case_by(*index, &key)))
            }
            Expr::AggregateBy(index, key) => {
                let key = self.key_text(key)?;
                Ok(Value::Double(self.bindings.session.aggregate_by(*index, &key)))
            }
            Expr::Select(target, field) => self.select(target, field),
            Expr::Has(target, field) => match self.evaluate(target)? {
                Value::Map(map) => Ok(Value::Bool(map.contains_key(field.as_ref()))),
                other => Err(format!("has() needs a map, got {}", other.type_name())),
            },
            Expr::Index(target, index) => {
                let target = self.evaluate(target)?;
                let index = self.evaluate(index)?;
                index_value(&target, &index)
            }
            Expr::Not(operand) => match self.evaluate(operand)? {
                Value::Bool(b) => Ok(Value::Bool(!b)),
                other => Err(format!("'!' needs a bool, got {}", other.type_name())),
            },
            Expr::Negate(operand) => match self.evaluate(operand)? {
                Value::Int(i) => i.checked_neg().map(Value::Int).ok_or_else(|| "integer overflow".to_owned()),
                Value::Double(d) => Ok(Value::Double(-d)),
                other => Err(format!("'-' needs a number, got {}", other.type_name())),
            },
            Expr::And(left, right) => self.logical(left, right, false),
            Expr::Or(left, right) => self.logical(left, right, true),
            Expr::Conditional(condition, then, otherwise) => match self.evaluate(condition)? {
                Value::Bool(true) => self.evaluate(then),
                Value::Bool(false) => self.evaluate(otherwise),
                other => Err(format!("'?:' needs a bool condition, got {}", other.type_name())),
            },
            Expr::Compare(comparison, left, right) => {
                let left = self.operand(left)?;
                let right = self.operand(right)?;
                compare(*comparison, &left, &right).map(Value::Bool)
            }
            Expr::Arithmetic(op, left, right) => {
                let left = self.operand(left)?;
                let right = self.operand(right)?;
                arithmetic(*op, &left, &right)
            }
            Expr::In(element, container) => {
                let element = self.operand(element)?;
                let element = element.as_ref();
                let container = self.operand(container)?;
                match container.as_ref() {
                    Value::List(items) => Ok(Value::Bool(items.iter().any(|item| equal(item, element)))),
                    Value::Map(map) => match element {
                        Value::String(key) => Ok(Value::Bool(map.contains_key(key.as_ref()))),
                        // Keys of other scalar types simply are not there;
                        // null, lists and maps cannot be keys at all.
                        Value::Null | Value::List(_) | Value::Map(_) => {
                            Err(format!("a {} cannot be a map key", element.type_name()))
                        }
                        _ => Ok(Value::Bool(false)),
                    },
                    other => Err(format!("'in' needs a list or map, got {}", other.type_name())),
                }
            }
            Expr::List(items) => {
                let values = items.iter().map(|i| self.evaluate(i)).collect::<Result<Vec<_>, _>>()?;
                Ok(Value::List(Arc::new(values)))
            }
            Expr::Map(entries) => {
                let mut map = Map::new();
                for (key, value) in entries {
                    let value = self.evaluate(value)?;
                    map.insert(key.clone(), value);
                }
                Ok(Value::Map(Arc::new(map)))
            }
            Expr::Matches(text, regex) => match self.operand(text)?.as_ref() {
                Value::String(text) => Ok(Value::Bool(regex.is_match(text))),
                other => Err(format!("matches() needs a string, got a {}", other.type_name())),
            },
            // Functions take one or two arguments: no vector for them.
            Expr::Function(function, args) => match args.as_slice() {
                [only] => {
                    let only = self.operand(only)?;
                    call_function(*function, std::slice::from_ref(only.as_ref()))
                }
                [first, second] => {
                    let values = [self.evaluate(first)?, self.evaluate(second)?];
                    call_function(*function, &values)
                }
                _ => {
                    let values = args.iter().map(|a| self.evaluate(a)).collect::<Result<Vec<_>, _>>()?;
                    call_function(*function, &values)
                }
            },
            Expr::NotStrictlyFalse(operand) => match self.evaluate(operand) {
                Ok(Value::Bool(false)) => Ok(Value::Bool(false)),
                _ => Ok(Value::Bool(true)),
            },
            Expr::Comprehension(comprehension) => self.comprehension(comprehension),
        }
    }

    /// An operand: borrowed where it is a constant, a bound fact or result,
    /// or a field of one (no clone), evaluated otherwise.
    fn operand<'e>(&mut self, expr: &'e Expr) -> Result<std::borrow::Cow<'e, Value>, String>
    where
        'a: 'e,
    {
        match borrow(self.bindings, expr) {
            Some(value) => Ok(std::borrow::Cow::Borrowed(value)),
            None => self.evaluate(expr).map(std::borrow::Cow::Owned),
        }
    }

    /// Evaluates a key (of a keyed fact, a gate or an aggregate) to its text.
    ///
    /// Used for writing (`apply` reserving an amount under its aggregate
    /// key) and for reading (`<aggregate>(key)`, a gate's lookup), so what is
    /// counted under a key is what a rule reads under it. A key that cannot
    /// be computed (null, missing, a list or map, a non-finite number, an
    /// error) is an error ([`Value::key`]), never a text such as `null` that
    /// a read would find empty while the write went elsewhere.
    pub(crate) fn key_text(&mut self, expr: &Expr) -> Result<std::borrow::Cow<'a, str>, String> {
        if let Some(text) = self.key_str(expr) {
            return Ok(std::borrow::Cow::Borrowed(text));
        }
        self.evaluate(expr)?.key().map(std::borrow::Cow::Owned).map_err(str::to_owned)
    }

    /// A key as text without allocating, when it is a string argument.
    fn key_str(&self, expr: &Expr) -> Option<&'a str> {
        match expr {
            Expr::Select(target, field) if matches!(target.as_ref(), Expr::Args) => {
                self.bindings.args.get(field.as_ref()).and_then(serde_json::Value::as_str)
            }
            _ => None,
        }
    }

    fn session_field(&self, field: SessionField) -> Value {
        let session = self.bindings.session;
        match field {
            SessionField::BlockedCalls => Value::Int(session.blocked_calls()),
            SessionField::AllowedCalls => Value::Int(session.allowed_calls()),
            SessionField::Escalations => Value::Int(session.escalations()),
            SessionField::Calls => session.calls_by_tool(),
            SessionField::AggregateTotal(index) => Value::Double(session.aggregate_total(index)),
            SessionField::CaseTotal(index) => Value::Double(session.aggregate_total(index) + session.case_total(index)),
        }
    }

    fn select(&mut self, target: &Expr, field: &str) -> Outcome {
        // Borrow the bound value directly where we can: no clone of the map.
        let found = match target {
            Expr::Args => self.bindings.args.get(field).map(Value::from_json),
            Expr::Context => self.bindings.context.get(field).map(Value::from_json),
            Expr::Result => self.bindings.result.field(field).cloned(),
            Expr::Fact(index) => self.bindings.facts.get(*index).and_then(|f| f.field(field)).cloned(),
            _ => match self.evaluate(target)? {
                Value::Map(map) => crate::value::small_map_get(&map, field).cloned(),
                other => return Err(format!("cannot read field '{field}' of a {}", other.type_name())),
            },
        };
        found.ok_or_else(|| format!("no such field '{field}'"))
    }

    fn logical(&mut self, left: &Expr, right: &Expr, is_or: bool) -> Outcome {
        // CEL's commutative semantics: an error on one side is absorbed when
        // the other side decides the result on its own.
        let left = self.evaluate(left);
        if let Ok(Value::Bool(b)) = left
            && b == is_or
        {
            return Ok(Value::Bool(b));
        }
        let right = self.evaluate(right);
        match (left, right) {
            (_, Ok(Value::Bool(b))) if b == is_or => Ok(Value::Bool(b)),
            (Ok(Value::Bool(_)), Ok(Value::Bool(b))) => Ok(Value::Bool(b)),
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(l), Ok(r)) => Err(format!(
                "'{}' needs bools, got {} and {}",
                if is_or { "||" } else { "&&" },
                l.type_name(),
                r.type_name()
            )),
        }
    }

    fn comprehension(&mut self, c: &Comprehension) -> Outcome {
        // The range is held (shared, not copied) while the loop runs.
        let range = self.evaluate(&c.range)?;
        let accu = self.evaluate(&c.accu_init)?;
        let needed = c.accu_slot.max(c.iter_slot) + 1;
        if self.locals.len() < needed {
            self.locals.resize(needed, Ok(Value::Null));
        }
        self.set_local(c.accu_slot, Ok(accu));
        match &range {
            Value::List(items) => {
                for item in items.iter() {
                    if !self.step(c, item.clone())? {
                        break;
                    }
                }
            }
            Value::Map(map) => {
                for key in map.keys() {
                    if !self.step(c, Value::String(key.clone()))? {
                        break;
                    }
                }
            }
            other => return Err(format!("cannot iterate over a {}", other.type_name())),
        }
        self.evaluate(&c.result)
    }

    /// One iteration of a comprehension; `false` when its condition ends the loop.
    fn step(&mut self, c: &Comprehension, item: Value) -> Result<bool, String> {
        self.set_local(c.iter_slot, Ok(item));
        if !self.evaluate_bool(&c.loop_condition)? {
            return Ok(false);
        }
        // No `?`: an error in one step is the accumulator's value, which a
        // later step may absorb (`all`, `exists`) or carry to the end.
        let next = self.evaluate(&c.loop_step);
        self.set_local(c.accu_slot, next);
        Ok(true)
    }

    fn set_local(&mut self, slot: usize, value: Outcome) {
        if let Some(place) = self.locals.get_mut(slot) {
            *place = value;
        }
    }
}

/// The value of a constant, a bound fact or result, or a field of one,
/// borrowed rather than cloned: the common operands of comparisons.
/// `None` means "evaluate it the ordinary way" (including errors).
fn borrow<'e, S>(bindings: Bindings<'e, S>, expr: &'e Expr) -> Option<&'e Value> {
    match expr {
        Expr::Const(value) => Some(value),
        Expr::Fact(index) => bindings.facts.get(*index).copied(),
        Expr::Result => Some(bindings.result),
        Expr::Select(target, field) => match target.as_ref() {
            Expr::Fact(index) => bindings.facts.get(*index).and_then(|f| f.field(field)),
            Expr::Result => bindings.result.field(field),
            _ => None,
        },
        _ => None,
    }
}

fn index_value(target: &Value, index: &Value) -> Outcome {
    match (target, index) {
        (Value::List(items), Value::Int(i)) => usize::try_from(*i)
            .ok()
            .and_then(|i| items.get(i))
            .cloned()
            .ok_or_else(|| format!("index {i} is out of range")),
        (Value::List(items), Value::UInt(u)) => usize::try_from(*u)
            .ok()
            .and_then(|i| items.get(i))
            .cloned()
            .ok_or_else(|| format!("index {u} is out of range")),
        // CEL accepts a double index that is a whole number.
        (Value::List(items), Value::Double(d)) if d.fract() == 0.0 => (*d >= 0.0 && *d < items.len() as f64)
            .then(|| items.get(*d as usize).cloned())
            .flatten()
            .ok_or_else(|| format!("index {d} is out of range")),
        (Value::Map(map), Value::String(key)) => {
            map.get(key.as_ref()).cloned().ok_or_else(|| format!("no such key '{key}'"))
        }
        (t, i) => Err(format!("cannot index a {} with a {}", t.type_name(), i.type_name())),
    }
}

/// CEL equality, with numbers compared across int, uint and double by their
/// exact values (two 64-bit ids that differ are never equal).
pub(crate) fn equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::List(l), Value::List(r)) => l.len() == r.len() && l.iter().zip(r.iter()).all(|(a, b)| equal(a, b)),
        (Value::Map(l), Value::Map(r)) => {
            l.len() == r.len() && l.iter().all(|(k, v)| r.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => match numeric_order(left, right) {
            Some(ordering) => ordering == Some(Ordering::Equal),
            None => left == right,
        },
    }
}

/// A number: integers as `i128` (every int and uint fits, so int against
/// uint is exact), doubles as they are.
#[derive(Clone, Copy)]
enum Number {
    Integer(i128),
    Double(f64),
}

fn number(value: &Value) -> Option<Number> {
    match value {
        Value::Int(i) => Some(Number::Integer(i128::from(*i))),
        Value::UInt(u) => Some(Number::Integer(i128::from(*u))),
        Value::Double(d) => Some(Number::Double(*d)),
        _ => None,
    }
}

/// How two numbers order. Integers against integers exactly (two 64-bit ids
/// that differ never compare equal); an integer against a double through
/// f64, as CEL's implementations do. `None` if either is not a number;
/// `Some(None)` if one is NaN, which is unordered.
fn numeric_order(left: &Value, right: &Value) -> Option<Option<Ordering>> {
    Some(match (number(left)?, number(right)?) {
        (Number::Integer(l), Number::Integer(r)) => Some(l.cmp(&r)),
        (Number::Double(l), Number::Double(r)) => l.partial_cmp(&r),
        (Number::Integer(i), Number::Double(d)) => (i as f64).partial_cmp(&d),
        (Number::Double(d), Number::Integer(i)) => d.partial_cmp(&(i as f64)),
    })
}

fn compare(comparison: Comparison, left: &Value, right: &Value) -> Result<bool, String> {
    match comparison {
        Comparison::Equal => return Ok(equal(left, right)),
        Comparison::NotEqual => return Ok(!equal(left, right)),
        _ => {}
    }
    let ordering = match (left, right) {
        (Value::String(l), Value::String(r)) => Some(l.cmp(r)),
        (Value::Bool(l), Value::Bool(r)) => Some(l.cmp(r)),
        (Value::Timestamp(l), Value::Timestamp(r)) | (Value::Duration(l), Value::Duration(r)) => Some(l.cmp(r)),
        _ => match numeric_order(left, right) {
            Some(ordering) => ordering,
            None => {
                return Err(format!("cannot compare a {} with a {}", left.type_name(), right.type_name()));
            }
        },
    };
    // NaN compares false with everything, as in CEL.
    let Some(ordering) = ordering else { return Ok(false) };
    Ok(match comparison {
        Comparison::Less => ordering == Ordering::Less,
        Comparison::LessOrEqual => ordering != Ordering::Greater,
        Comparison::Greater => ordering == Ordering::Greater,
        _ => ordering != Ordering::Less,
    })
}

fn arithmetic(op: Arithmetic, left: &Value, right: &Value) -> Outcome {
    let overflow = || "integer overflow".to_owned();
    match (left, right) {
        (Value::Int(l), Value::Int(r)) => {
            let result = match op {
                Arithmetic::Add => l.checked_add(*r),
                Arithmetic::Subtract => l.checked_sub(*r),
                Arithmetic::Multiply => l.checked_mul(*r),
                Arithmetic::Divide | Arithmetic::Modulo if *r == 0 => return Err("division by zero".into()),
                Arithmetic::Divide => l.checked_div(*r),
                Arithmetic::Modulo => l.checked_rem(*r),
            };
            result.map(Value::Int).ok_or_else(overflow)
        }
        (Value::UInt(l), Value::UInt(r)) => {
            let result = match op {
                Arithmetic::Add => l.checked_add(*r),
                Arithmetic::Subtract => l.checked_sub(*r),
                Arithmetic::Multiply => l.checked_mul(*r),
                Arithmetic::Divide | Arithmetic::Modulo if *r == 0 => return Err("division by zero".into()),
                Arithmetic::Divide => l.checked_div(*r),
                Arithmetic::Modulo => l.checked_rem(*r),
            };
            result.map(Value::UInt).ok_or_else(overflow)
        }
        (Value::String(l), Value::String(r)) if op == Arithmetic::Add => {
            Ok(Value::String(Arc::from(format!("{l}{r}").as_str())))
        }
        // Time: timestamp ± duration, timestamp - timestamp, duration ± duration.
        (Value::Timestamp(t), Value::Duration(d)) if matches!(op, Arithmetic::Add | Arithmetic::Subtract) => {
            let sum = if op == Arithmetic::Add { t.checked_add(*d) } else { t.checked_sub(*d) };
            sum.map(Value::Timestamp).ok_or_else(|| "timestamp out of range".to_owned())
        }
        (Value::Duration(d), Value::Timestamp(t)) if op == Arithmetic::Add => {
            t.checked_add(*d).map(Value::Timestamp).ok_or_else(|| "timestamp out of range".to_owned())
        }
        (Value::Timestamp(l), Value::Timestamp(r)) if op == Arithmetic::Subtract => {
            l.checked_sub(*r).map(Value::Duration).ok_or_else(|| "duration out of range".to_owned())
        }
        (Value::Duration(l), Value::Duration(r)) if matches!(op, Arithmetic::Add | Arithmetic::Subtract) => {
            let sum = if op == Arithmetic::Add { l.checked_add(*r) } else { l.checked_sub(*r) };
            sum.map(Value::Duration).ok_or_else(|| "duration out of range".to_owned())
        }
        (Value::List(l), Value::List(r)) if op == Arithmetic::Add => {
            Ok(Value::List(Arc::new(l.iter().chain(r.iter()).cloned().collect())))
        }
        // JSON does not tell 800 from 800.0, so an int (or uint) meeting a
        // double is widened rather than rejected (CEL proper would raise an
        // error). An int meeting a uint is an error, as in CEL: there is no
        // type both fit.
        (Value::Double(_), Value::Int(_) | Value::UInt(_) | Value::Double(_))
        | (Value::Int(_) | Value::UInt(_), Value::Double(_)) => match (left.as_f64(), right.as_f64()) {
            (Some(l), Some(r)) if !matches!(op, Arithmetic::Modulo) => Ok(Value::Double(match op {
                Arithmetic::Add => l + r,
                Arithmetic::Subtract => l - r,
                Arithmetic::Multiply => l * r,
                _ => l / r,
            })),
            _ => Err(format!("no arithmetic between a {} and a {}", left.type_name(), right.type_name())),
        },
        _ => Err(format!("no arithmetic between a {} and a {}", left.type_name(), right.type_name())),
    }
}

/// The sum of a list of numbers, by CEL's `+`: ints stay exact (overflow
/// is an error), a double makes the sum a double, int and uint do not mix.
/// An empty list sums to 0.
fn sum(items: &[Value]) -> Outcome {
    let mut items = items.iter();
    let Some(first) = items.next() else { return Ok(Value::Int(0)) };
    if first.as_f64().is_none() {
        return Err(format!("sum() needs numbers, got a {}", first.type_name()));
    }
    items.try_fold(first.clone(), |total, item| arithmetic(Arithmetic::Add, &total, item))
}

fn call_function(function: Function, args: &[Value]) -> Outcome {
    let string_pair = |name: &str| match args {
        [Value::String(a), Value::String(b)] => Ok((a.clone(), b.clone())),
        _ => Err(format!("{name}() needs two strings")),
    };
    match function {
        Function::Size => match args {
            [Value::String(s)] => Ok(Value::Int(s.chars().count() as i64)),
            [Value::List(l)] => Ok(Value::Int(l.len() as i64)),
            [Value::Map(m)] => Ok(Value::Int(m.len() as i64)),
            _ => Err("size() needs a string, list or map".into()),
        },
        Function::Contains => string_pair("contains").map(|(a, b)| Value::Bool(a.contains(b.as_ref()))),
        Function::StartsWith => string_pair("startsWith").map(|(a, b)| Value::Bool(a.starts_with(b.as_ref()))),
        Function::EndsWith => string_pair("endsWith").map(|(a, b)| Value::Bool(a.ends_with(b.as_ref()))),
        Function::LowerAscii => match args {
            [Value::String(s)] => Ok(Value::String(Arc::from(s.to_ascii_lowercase().as_str()))),
            _ => Err("lowerAscii() needs a string".into()),
        },
        Function::ToInt => match args {
            [Value::Int(i)] => Ok(Value::Int(*i)),
            [Value::UInt(u)] => i64::try_from(*u).map(Value::Int).map_err(|_| "integer overflow".into()),
            // Inside the range of i64, bounds excluded as in CEL's own
            // implementations: -2^63 < d < 2^63.
            [Value::Double(d)] if *d > -9_223_372_036_854_775_808.0 && *d < 9_223_372_036_854_775_808.0 => {
                Ok(Value::Int(d.trunc() as i64))
            }
            [Value::String(s)] => s.parse().map(Value::Int).map_err(|_| format!("'{s}' is not an int")),
            // Seconds since the Unix epoch, rounded down, as in CEL.
            [Value::Timestamp(nanos)] => Ok(Value::Int(nanos.div_euclid(1_000_000_000))),
            _ => Err("int() cannot convert this value".into()),
        },
        Function::ToUInt => match args {
            [Value::UInt(u)] => Ok(Value::UInt(*u)),
            [Value::Int(i)] => u64::try_from(*i).map(Value::UInt).map_err(|_| "integer overflow".into()),
            // The range of u64, exactly: 0 <= d < 2^64.
            [Value::Double(d)] if (0.0..18_446_744_073_709_551_616.0).contains(d) => Ok(Value::UInt(d.trunc() as u64)),
            [Value::String(s)] => s.parse().map(Value::UInt).map_err(|_| format!("'{s}' is not a uint")),
            _ => Err("uint() cannot convert this value".into()),
        },
        Function::ToDouble => match args {
            [v @ (Value::Int(_) | Value::UInt(_) | Value::Double(_))] => Ok(Value::Double(v.as_f64().unwrap_or(0.0))),
            [Value::String(s)] => s.parse().map(Value::Double).map_err(|_| format!("'{s}' is not a double")),
            _ => Err("double() cannot convert this value".into()),
        },
        Function::ToString => match args {
            [Value::String(s)] => Ok(Value::String(s.clone())),
            [Value::Int(i)] => Ok(Value::String(Arc::from(i.to_string().as_str()))),
            [Value::UInt(u)] => Ok(Value::String(Arc::from(u.to_string().as_str()))),
            [Value::Double(d)] => Ok(Value::String(Arc::from(d.to_string().as_str()))),
            [Value::Bool(b)] => Ok(Value::String(Arc::from(b.to_string().as_str()))),
            [v @ (Value::Timestamp(_) | Value::Duration(_))] => Ok(Value::String(Arc::from(v.to_key_text().as_str()))),
            _ => Err("string() cannot convert this value".into()),
        },
        Function::Timestamp => match args {
            [Value::String(s)] => crate::value::parse_timestamp(s).map(Value::Timestamp),
            [v @ Value::Timestamp(_)] => Ok(v.clone()),
            _ => Err("timestamp() needs an RFC 3339 string".into()),
        },
        Function::Duration => match args {
            [Value::String(s)] => crate::value::parse_duration(s).map(Value::Duration),
            [v @ Value::Duration(_)] => Ok(v.clone()),
            _ => Err("duration() needs a string such as '24h'".into()),
        },
        Function::Sum => match args {
            [Value::List(items)] => sum(items),
            _ => Err("sum() needs a list of numbers".into()),
        },
        Function::UpperAscii => match args {
            [Value::String(s)] => Ok(text(s.to_ascii_uppercase())),
            _ => Err("upperAscii() needs a string".into()),
        },
        Function::Trim => match args {
            [Value::String(s)] => Ok(Value::String(Arc::from(s.trim()))),
            _ => Err("trim() needs a string".into()),
        },
        Function::Replace => match args {
            [Value::String(s), Value::String(from), Value::String(to)] => Ok(text(s.replace(from.as_ref(), to))),
            _ => Err("replace() needs three strings".into()),
        },
        Function::Split => match args {
            [Value::String(s), Value::String(separator)] => {
                let parts: Vec<Value> = if separator.is_empty() {
                    s.chars().map(|c| text(c.to_string())).collect()
                } else {
                    s.split(separator.as_ref()).map(|part| Value::String(Arc::from(part))).collect()
                };
                Ok(Value::List(Arc::new(parts)))
            }
            _ => Err("split() needs two strings".into()),
        },
        Function::Join | Function::JoinWith => {
            let (items, separator) = match args {
                [Value::List(items)] => (items, ""),
                [Value::List(items), Value::String(separator)] => (items, separator.as_ref()),
                _ => return Err("join() needs a list of strings (and a string separator)".into()),
            };
            let mut parts = Vec::with_capacity(items.len());
            for item in items.iter() {
                match item {
                    Value::String(part) => parts.push(part.as_ref()),
                    other => return Err(format!("join() needs a list of strings, got a {}", other.type_name())),
                }
            }
            Ok(text(parts.join(separator)))
        }
        Function::IndexOf => string_pair("indexOf")
            .map(|(s, needle)| Value::Int(s.find(needle.as_ref()).map_or(-1, |byte| s[..byte].chars().count() as i64))),
    }
}

fn text(s: String) -> Value {
    Value::String(Arc::from(s.as_str()))
}
