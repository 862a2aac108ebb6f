//! What `validate` can say about a key before any call is made: a key read
//! from an argument the schema lets be missing, null, a list or a map cannot
//! always be computed, and a call whose key cannot be computed is blocked
//! (`decide`, the gate or `aggregate.<name>`). The workflow is still valid;
//! the author is warned that such calls will be refused.

use crate::expr::Expr;
use std::sync::Arc;

/// Why the key `expr` may not be computable for some call, one sentence per
/// argument it reads; empty when every argument it reads is required and
/// typed as a single non-null value.
pub(super) fn hazards(expr: &Expr, schema: Option<&serde_json::Value>) -> Vec<String> {
    let mut fields = Vec::new();
    let mut whole = false;
    arguments_read(expr, &mut fields, &mut whole);
    let mut found = Vec::new();
    if whole {
        found.push("it reads the whole of args, a map, which is never a key".to_owned());
    }
    fields.sort();
    fields.dedup();
    for field in fields {
        if let Some(why) = field_hazard(&field, schema) {
            found.push(format!("args.{field} {why}"));
        }
    }
    found
}

/// Why one argument may be absent or not a single value, if it may.
fn field_hazard(field: &str, schema: Option<&serde_json::Value>) -> Option<String> {
    let Some(schema) = schema else {
        return Some("may be missing or null: the tool has no argument schema".into());
    };
    let required = schema
        .get("required")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|names| names.iter().any(|n| n.as_str() == Some(field)));
    if !required {
        return Some("may be missing: it is not in the schema's required list".into());
    }
    let property = schema.get("properties").and_then(|p| p.get(field));
    let types: Vec<&str> = match property.and_then(|p| p.get("type")) {
        Some(serde_json::Value::String(one)) => vec![one.as_str()],
        Some(serde_json::Value::Array(many)) => many.iter().filter_map(serde_json::Value::as_str).collect(),
        _ => return Some("may be null, a list or a map: its schema gives it no type".into()),
    };
    let unfit: Vec<&str> = types.into_iter().filter(|t| matches!(*t, "null" | "array" | "object")).collect();
    (!unfit.is_empty()).then(|| format!("may be {}: its schema allows it", unfit.join(" or ")))
}

/// The top-level argument fields an expression reads (`args.<field>`), and
/// whether it reads `args` as a whole.
fn arguments_read(expr: &Expr, fields: &mut Vec<Arc<str>>, whole: &mut bool) {
    match expr {
        Expr::Args => *whole = true,
        Expr::Select(target, field) | Expr::Has(target, field) if matches!(target.as_ref(), Expr::Args) => {
            fields.push(field.clone());
        }
        other => other.for_each_child(|child| arguments_read(child, fields, whole)),
    }
}
