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
    /// A point in time (CEL `timestamp`), in nanoseconds since the Unix
    /// epoch, UTC: `now`, `timestamp('2024-05-15T15:00:00-05:00')`.
    Timestamp(i64),
    /// A span of time (CEL `duration`), in nanoseconds: `duration('24h')`.
    Duration(i64),
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
            Value::Timestamp(_) => "timestamp",
            Value::Duration(_) => "duration",
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
            // JSON has no time types: the text CEL's string() gives.
            Value::Timestamp(_) | Value::Duration(_) => serde_json::Value::String(self.to_key_text()),
        }
    }

    /// Whether this is, or holds, a value JSON does not carry as it is: a
    /// timestamp or duration (no JSON type), a uint that fits an int (read
    /// back as an int), a non-finite double (written as null).
    pub(crate) fn changes_through_json(&self) -> bool {
        match self {
            Value::Timestamp(_) | Value::Duration(_) => true,
            Value::UInt(u) => i64::try_from(*u).is_ok(),
            Value::Double(d) => !d.is_finite(),
            Value::List(items) => items.iter().any(Value::changes_through_json),
            Value::Map(map) => map.values().any(Value::changes_through_json),
            _ => false,
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

    /// The text this value is known by as a key (of a fact instance, a gate's
    /// lookup, an aggregate's per-key total), or why it cannot be one: null,
    /// a list, a map and a non-finite number name nothing.
    ///
    /// INVARIANT: every key is made here (the evaluator's `key_text` only
    /// borrows a string argument instead of copying it), so what is written
    /// under a key is what a rule reads under it, and a result saying
    /// `"id": null` can never stand for the string `"null"`.
    pub fn key(&self) -> Result<String, &'static str> {
        match self {
            Value::Null => Err("the key is null"),
            Value::List(_) | Value::Map(_) => Err("the key is a list or map, not a single value"),
            Value::Double(d) if !d.is_finite() => Err("the key is not a finite number"),
            value => Ok(value.to_key_text()),
        }
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
            Value::Timestamp(nanos) => write_timestamp(out, *nanos),
            Value::Duration(nanos) => write_duration(out, *nanos),
            other => write!(out, "{}", other.to_json()),
        };
    }
}

/// Nanoseconds in a second.
const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// RFC 3339 in UTC, with as many fractional digits as needed, as CEL prints
/// timestamps: `2024-05-15T20:00:00Z`.
fn write_timestamp(out: &mut String, nanos: i64) -> std::fmt::Result {
    use std::fmt::Write;
    let time = chrono::DateTime::from_timestamp_nanos(nanos);
    write!(out, "{}", time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// Seconds with a fraction where needed, as CEL prints durations: `86400s`, `1.5s`.
fn write_duration(out: &mut String, nanos: i64) -> std::fmt::Result {
    use std::fmt::Write;
    let sign = if nanos < 0 { "-" } else { "" };
    let abs = nanos.unsigned_abs();
    let (seconds, fraction) = (abs / 1_000_000_000, abs % 1_000_000_000);
    if fraction == 0 {
        write!(out, "{sign}{seconds}s")
    } else {
        let digits = format!("{fraction:09}");
        write!(out, "{sign}{seconds}.{}s", digits.trim_end_matches('0'))
    }
}

/// Parses an RFC 3339 timestamp (`2024-05-15T15:00:00-05:00`) to nanoseconds
/// since the Unix epoch, as CEL's `timestamp()` does.
pub(crate) fn parse_timestamp(text: &str) -> Result<i64, String> {
    let time = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|e| format!("'{text}' is not an RFC 3339 timestamp ({e}); write it like 2024-05-15T15:00:00-05:00"))?;
    time.timestamp_nanos_opt().ok_or_else(|| format!("timestamp '{text}' is out of range"))
}

/// Parses a CEL duration (`24h`, `1h30m`, `-1.5s`, `300ms`) to nanoseconds.
pub(crate) fn parse_duration(text: &str) -> Result<i64, String> {
    let bad = || format!("'{text}' is not a duration; write it like 24h, 90m, 1h30m or 2.5s");
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest.is_empty() {
        return Err(bad());
    }
    if rest == "0" {
        return Ok(0);
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (number, after) = rest.split_at(number_len);
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: i128 = match unit {
            "h" => 3_600 * i128::from(NANOS_PER_SECOND),
            "m" => 60 * i128::from(NANOS_PER_SECOND),
            "s" => i128::from(NANOS_PER_SECOND),
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "ns" => 1,
            _ => return Err(bad()),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(bad());
        }
        let whole: i128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
        let mut part = whole.checked_mul(unit_nanos).ok_or_else(bad)?;
        if !fraction.is_empty() {
            let digits = fraction.len().min(18);
            let fraction: i128 = fraction.get(..digits).unwrap_or("0").parse().map_err(|_| bad())?;
            part += fraction * unit_nanos / 10_i128.pow(digits as u32);
        }
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = after;
    }
    let total = if negative { -total } else { total };
    i64::try_from(total).map_err(|_| format!("duration '{text}' is out of range"))
}

/// Formats a double the way a person writes money: `800`, `84.5`, `0.25`.
pub fn format_number(value: f64) -> String {
    let mut out = String::new();
    let _ = write_number(&mut out, value);
    out
}

/// JSON on one line with numbers written as people write money.
pub(crate) fn compact_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), format_number),
        // serde_json writes bytes directly; its Display goes through fmt.
        other => serde_json::to_string(other).unwrap_or_default(),
    }
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

/// A value written as [`Value::to_json`] writes it, without building the JSON
/// tree first (checkpoints write every fact this way).
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::UInt(u) => serializer.serialize_u64(*u),
            Value::Double(d) if d.is_finite() => serializer.serialize_f64(*d),
            Value::Double(_) => serializer.serialize_unit(),
            Value::String(s) => serializer.serialize_str(s),
            Value::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items.iter() {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (key, value) in map.iter() {
                    out.serialize_entry(key.as_ref(), value)?;
                }
                out.end()
            }
            Value::Timestamp(_) | Value::Duration(_) => serializer.serialize_str(&self.to_key_text()),
        }
    }
}
