//! The reference side of the comparison: the classes of known
//! disagreement, the `tg_*` guard functions that emulate Tollgate inside the
//! `cel` crate for those classes, the `cel` interpreter set up as Tollgate
//! reads JSON, and the comparison of the two sides' values.

use cel::objects::{Key, Map as CelMap};
use cel::{Context, Env, Value as Cel};
use serde_json::Value as Json;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use tollgate_core::Value;

// ------------------------------------------------------------------ classes

/// A named reason for Tollgate to differ from the `cel` crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    /// DOCUMENTED deviation: `+ - * /` between an int (or uint) and a double
    /// widens to double; CEL has no such overload and errors. `1 + 1.5`.
    /// (JSON does not tell 800 from 800.0, so rules would fail on arguments
    /// that happen to be written without a fraction.)
    MixedIntDoubleArithmetic,
    /// The `cel` crate's side: ordering a NaN against a number. The `cel`
    /// crate raises "no such overload"; Tollgate answers false, as the CEL
    /// spec says. `double('NaN') < 1.0`.
    NanOrdering,
    /// The `cel` crate's side: `list + map`. The `cel` crate appends the
    /// map's keys (`[1] + {'a': 2}` is `[1, 'a']`); CEL has no such overload
    /// and Tollgate errors.
    ListPlusMap,
    /// NOT a disagreement: CEL leaves the order in which a comprehension
    /// visits a map's keys unspecified. Tollgate visits them sorted, the `cel`
    /// crate in hash order, so `map` / `filter` over a map can list the same
    /// keys in another order. The reference visits them sorted too; this
    /// records the `map` / `filter` cases over maps of two keys or more.
    MapIterationOrder,
}

pub(super) const CLASSES: [Class; 4] =
    [Class::MixedIntDoubleArithmetic, Class::NanOrdering, Class::ListPlusMap, Class::MapIterationOrder];

thread_local! {
    /// Classes recorded while evaluating the current case's reference.
    static FIRED: RefCell<Vec<Class>> = const { RefCell::new(Vec::new()) };
}

fn fire(class: Class) {
    FIRED.with(|f| f.borrow_mut().push(class));
}

pub(super) fn take_fired() -> Vec<Class> {
    FIRED.with(|f| std::mem::take(&mut *f.borrow_mut()))
}

// ------------------------------------------------------------------ emulation of the known classes

fn is_integer(v: &Cel) -> bool {
    matches!(v, Cel::Int(_) | Cel::UInt(_))
}

fn as_f64(v: &Cel) -> Option<f64> {
    match v {
        Cel::Int(i) => Some(*i as f64),
        Cel::UInt(u) => Some(*u as f64),
        Cel::Float(f) => Some(*f),
        _ => None,
    }
}

fn map_get<'a>(map: &'a CelMap, key: &Key) -> Option<&'a Cel> {
    map.map.get(key)
}

/// `tg_arith_dev(op, l, r)`: Tollgate answers differently for this pair
/// (op: 0 +, 1 -, 2 *, 3 /).
fn arith_dev(op: i64, l: Cel, r: Cel) -> bool {
    match (&l, &r) {
        (Cel::Float(_), x) | (x, Cel::Float(_)) if is_integer(x) => {
            fire(Class::MixedIntDoubleArithmetic);
            true
        }
        (Cel::List(_), Cel::Map(_)) if op == 0 => {
            fire(Class::ListPlusMap);
            true
        }
        _ => false,
    }
}

/// `tg_widen(op, l, r)`: Tollgate's answer where `tg_arith_dev` fired: the
/// pair widened to double, or an error for `list + map`.
fn widen(op: i64, l: Cel, r: Cel) -> Result<Cel, cel::ExecutionError> {
    let (Some(a), Some(b)) = (as_f64(&l), as_f64(&r)) else {
        return Err(cel::ExecutionError::function_error("tg_widen", "no arithmetic between these"));
    };
    Ok(Cel::Float(match op {
        0 => a + b,
        1 => a - b,
        2 => a * b,
        _ => a / b,
    }))
}

/// `tg_ord_dev(l, r)`: Tollgate orders this pair differently from CEL.
fn ord_dev(l: Cel, r: Cel) -> bool {
    let (Some(a), Some(b)) = (as_f64(&l), as_f64(&r)) else { return false };
    if a.is_nan() || b.is_nan() {
        fire(Class::NanOrdering);
        return true;
    }
    false
}

/// `tg_ord(op, l, r)`: Tollgate's ordering (f64, NaN is false);
/// op: 0 <, 1 <=, 2 >, 3 >=.
fn ord_ours(op: i64, l: Cel, r: Cel) -> bool {
    let (a, b) = (as_f64(&l).unwrap_or(f64::NAN), as_f64(&r).unwrap_or(f64::NAN));
    match op {
        0 => a < b,
        1 => a <= b,
        2 => a > b,
        _ => a >= b,
    }
}

/// `tg_iter(ordered, range)`: what a comprehension iterates, with a map's
/// keys sorted as Tollgate visits them (`ordered`: the macro's result shows
/// the order, as `map` and `filter` do).
fn iter_sorted(ordered: bool, range: Cel) -> Cel {
    let Cel::Map(map) = &range else { return range };
    let mut keys: Vec<String> = map
        .map
        .keys()
        .map(|k| match k {
            Key::String(s) => s.as_str().to_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    keys.sort();
    if ordered && keys.len() > 1 {
        fire(Class::MapIterationOrder);
    }
    Cel::List(Arc::new(keys.into_iter().map(|k| Cel::String(Arc::new(k))).collect()))
}

// ------------------------------------------------------------------ the reference interpreter

pub(super) fn cel_env() -> Arc<Env> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings).expect("the strings extension registers");
    Arc::new(env)
}

/// JSON to a `cel` value the way Tollgate converts JSON (`Value::from_json`):
/// integral numbers are ints (uints beyond i64), others doubles. (`cel::to_value`
/// would turn every non-negative JSON integer into a uint.)
fn to_cel(json: &Json) -> Cel {
    match json {
        Json::Null => Cel::Null,
        Json::Bool(b) => Cel::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Cel::Int(i)
            } else if let Some(u) = n.as_u64() {
                Cel::UInt(u)
            } else {
                Cel::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Cel::String(Arc::new(s.clone())),
        Json::Array(items) => Cel::List(Arc::new(items.iter().map(to_cel).collect())),
        Json::Object(object) => {
            let map: HashMap<String, Cel> = object.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            map.into()
        }
    }
}

/// Runs `source` in the `cel` crate with `args` and `result` bound; with
/// `guards`, the `tg_*` functions the reference rendering calls are defined.
pub(super) fn run_cel(env: &Arc<Env>, source: &str, args: &Json, result: &Json, guards: bool) -> Result<Cel, String> {
    let program = env.compile(source).map_err(|e| format!("parse: {e}"))?;
    let mut ctx = Context::with_env(Arc::clone(env));
    ctx.add_variable_from_value("args", to_cel(args));
    ctx.add_variable_from_value("result", to_cel(result));
    if guards {
        let registered = [
            ctx.add_function("tg_arith_dev", arith_dev),
            ctx.add_function("tg_widen", widen),
            ctx.add_function("tg_ord_dev", ord_dev),
            ctx.add_function("tg_ord", ord_ours),
            ctx.add_function("tg_iter", iter_sorted),
        ];
        for r in registered {
            r.expect("the tg_ functions register");
        }
    }
    program.execute(&ctx).map_err(|e| e.to_string())
}

// ------------------------------------------------------------------ value comparison

#[derive(Default)]
pub(super) struct Compare {
    /// Numbers equal in value but of different kinds (int vs double).
    pub(super) kind_differences: u32,
}

impl Compare {
    /// Whether Tollgate's value and the `cel` crate's are the same value.
    pub(super) fn same(&mut self, ours: &Value, theirs: &Cel) -> bool {
        match (ours, theirs) {
            (Value::Null, Cel::Null) => true,
            (Value::Bool(a), Cel::Bool(b)) => a == b,
            (Value::Int(a), Cel::Int(b)) => a == b,
            (Value::UInt(a), Cel::UInt(b)) => a == b,
            (Value::Double(a), Cel::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
            (Value::String(a), Cel::String(b)) => a.as_ref() == b.as_str(),
            (Value::List(a), Cel::List(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| self.same(x, y))
            }
            (Value::Map(a), Cel::Map(b)) => {
                a.len() == b.map.len()
                    && a.iter().all(|(k, v)| {
                        map_get(b, &Key::String(Arc::new(k.to_string()))).is_some_and(|w| self.same(v, w))
                    })
            }
            (ours, theirs) => match (ours.as_f64(), as_f64(theirs)) {
                (Some(a), Some(b)) if a == b && a.is_finite() => {
                    self.kind_differences += 1;
                    true
                }
                _ => false,
            },
        }
    }
}
