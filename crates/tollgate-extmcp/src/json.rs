//! JSON in and out of `google.protobuf.Struct`, which is how the protocol
//! carries MCP's JSON. Numbers are doubles there: an integral one within
//! ±2^53 comes back as a JSON integer, so an order id or a quantity reads
//! in rules as it was sent.

use prost::Message;
use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use serde_json::{Map, Number, Value as Json};

/// The largest integer a double holds exactly.
const EXACT_INTEGER_MAX: f64 = 9_007_199_254_740_992.0;

/// A JSON object as a `Struct`.
pub fn to_struct(object: &Map<String, Json>) -> Struct {
    Struct { fields: object.iter().map(|(key, value)| (key.clone(), to_value(value))).collect() }
}

fn to_value(value: &Json) -> Value {
    let kind = match value {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(items) => Kind::ListValue(ListValue { values: items.iter().map(to_value).collect() }),
        Json::Object(object) => Kind::StructValue(to_struct(object)),
    };
    Value { kind: Some(kind) }
}

/// A `Struct` as a JSON object.
pub fn from_struct(object: &Struct) -> Map<String, Json> {
    object.fields.iter().map(|(key, value)| (key.clone(), from_value(value))).collect()
}

fn from_value(value: &Value) -> Json {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::ListValue(list)) => Json::Array(list.values.iter().map(from_value).collect()),
        Some(Kind::StructValue(object)) => Json::Object(from_struct(object)),
    }
}

fn number(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() <= EXACT_INTEGER_MAX {
        // Exact by the check above.
        #[allow(clippy::cast_possible_truncation)]
        return Json::Number(Number::from(n as i64));
    }
    Number::from_f64(n).map_or(Json::Null, Json::Number)
}

/// The object a message's payload holds: a `Struct` encoded as protobuf
/// (what the protocol says), or JSON text (what some gateway versions
/// send in the same field). Anything else is an error in words.
pub fn object_of(bytes: &[u8]) -> Result<Map<String, Json>, String> {
    if bytes.first() == Some(&b'{') {
        return match serde_json::from_slice::<Json>(bytes) {
            Ok(Json::Object(object)) => Ok(object),
            Ok(_) => Err("the payload is JSON but not an object".into()),
            Err(error) => Err(format!("the payload is not valid JSON ({error})")),
        };
    }
    Struct::decode(bytes)
        .map(|object| from_struct(&object))
        .map_err(|error| format!("the payload is neither a google.protobuf.Struct nor JSON ({error})"))
}

/// A value of the metadata context as text, if it is text.
pub fn text_field<'a>(object: Option<&'a Struct>, key: &str) -> Option<&'a str> {
    match &object?.fields.get(key)?.kind {
        Some(Kind::StringValue(text)) => Some(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_survives_the_round_trip_with_integers_intact() {
        let value = json!({"order_id": "#W1", "qty": 3, "amount": 12.5, "big": 1e20,
            "tags": ["a", null, true], "nested": {"x": -0.0}});
        let Json::Object(object) = value else { unreachable!() };
        let back = from_struct(&to_struct(&object));
        assert_eq!(back["qty"], json!(3));
        assert!(back["qty"].is_i64());
        assert_eq!(back["amount"], json!(12.5));
        assert_eq!(back["tags"], json!(["a", null, true]));
        assert_eq!(back["order_id"], json!("#W1"));
        // Beyond 2^53 a double cannot hold it: it stays a double.
        assert!(back["big"].is_f64());
    }

    #[test]
    fn payloads_are_read_as_protobuf_or_json_and_nothing_else() {
        let Json::Object(object) = json!({"name": "t", "arguments": {"a": 1}}) else { unreachable!() };
        let encoded = to_struct(&object).encode_to_vec();
        assert_eq!(object_of(&encoded), Ok(object.clone()));
        assert_eq!(object_of(br#"{"name": "t", "arguments": {"a": 1}}"#), Ok(object));
        assert!(object_of(b"[1]").is_err());
        assert!(object_of(b"{not json").unwrap_err().contains("not valid JSON"));
        assert!(object_of(&[0xff, 0xff, 0xff]).unwrap_err().contains("neither"));
    }
}
