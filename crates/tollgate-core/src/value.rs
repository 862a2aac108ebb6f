//! The values rules compute with: JSON's shapes plus CEL's numeric distinctions.
//!
//! Values are cheap to clone (strings, lists and maps are shared), because the
//! same fact is read by many decisions.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A map value; keys are strings because every map comes from JSON.
pub type Map = BTreeMap<Arc<str>, Value>;

/// A value as rules see it.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// JSON `null`, CEL `null`.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer (CEL `int`).
    Int(i64),
    /// An unsigned integer (CEL `uint`), only from CEL literals like `1u`.
    UInt(u64),
    /// A floating point number (CEL `double`).
    Double(f64),
    /// A string.
    String(Arc<str>),
    /// A list.
    List(Arc<Vec<Value>>),
    /// A map with string keys.
    Map(Arc<Map>),
}

impl Value {
    /// The CEL type name of this value, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::UInt(_) => "uint",
            Value::Double(_) => "double",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }

    /// Converts JSON into a value. Integral numbers become `int`, others `double`.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Value::UInt(u)
                } else {
                    Value::Double(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Value::String(Arc::from(s.as_str())),
            serde_json::Value::Array(items) => Value::List(Arc::new(items.iter().map(Value::from_json).collect())),
            serde_json::Value::Object(object) => {
                Value::Map(Arc::new(object.iter().map(|(k, v)| (Arc::from(k.as_str()), Value::from_json(v))).collect()))
            }
        }
    }

    /// Converts the value back to JSON (non-finite doubles become `null`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::UInt(u) => serde_json::Value::from(*u),
            Value::Double(d) => {
                serde_json::Number::from_f64(*d).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null)
            }
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::List(items) => serde_json::Value::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(map) => {
                serde_json::Value::Object(map.iter().map(|(k, v)| (k.to_string(), v.to_json())).collect())
            }
        }
    }

    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::UInt(u) => Some(*u as f64),
            Value::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A field of a map value.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Map(map) => small_map_get(map, name),
            _ => None,
        }
    }

    /// The text used when a value is a fact key or is spliced into a message:
    /// strings without quotes, everything else as JSON.
    pub fn to_key_text(&self) -> String {
        let mut out = String::new();
        self.write_key_text(&mut out);
        out
    }

    /// Appends [`Value::to_key_text`] to `out` without a separate allocation.
    pub fn write_key_text(&self, out: &mut String) {
        use std::fmt::Write;
        // Writing to a String cannot fail.
        let _ = match self {
            Value::String(s) => {
                out.push_str(s);
                Ok(())
            }
            Value::Double(d) => write_number(out, *d),
            Value::Int(i) => write!(out, "{i}"),
            Value::UInt(u) => write!(out, "{u}"),
            Value::Bool(b) => write!(out, "{b}"),
            Value::Null => write!(out, "null"),
            other => write!(out, "{}", other.to_json()),
        };
    }
}

/// Formats a double the way a person writes money: `800`, `84.5`, `0.25`.
pub fn format_number(value: f64) -> String {
    let mut out = String::new();
    let _ = write_number(&mut out, value);
    out
}

fn write_number(out: &mut String, value: f64) -> std::fmt::Result {
    use std::fmt::Write;
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        // Exact: integral and well inside i64.
        write!(out, "{}", value as i64)
    } else {
        write!(out, "{value}")
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_key_text())
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::String(Arc::from(value))
    }
}

/// Maps this small or smaller are searched by a scan that compares lengths
/// before bytes: fact maps hold a handful of fields, and a
/// B-tree search pays a full string comparison at every step.
const SCAN_UP_TO: usize = 8;

/// `map.get(name)`, faster for the small maps rules read.
pub(crate) fn small_map_get<'m>(map: &'m Map, name: &str) -> Option<&'m Value> {
    if map.len() <= SCAN_UP_TO {
        map.iter().find(|(key, _)| key.len() == name.len() && key.as_bytes() == name.as_bytes()).map(|(_, v)| v)
    } else {
        map.get(name)
    }
}
