//! Limits on everything that comes from outside or grows with a session.
//! Defaults suit customer-service agents; a workflow's `[limits]` table
//! overrides them.

/// The limits a workflow runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted tool-call arguments, as JSON text.
    pub args_bytes_max: usize,
    /// Largest tool result that is folded into facts, as JSON text.
    pub result_bytes_max: usize,
    /// Most fact instances one session may hold.
    pub facts_max: usize,
    /// Most allowed calls awaiting their result at once.
    pub pending_calls_max: usize,
    /// Evaluation steps one rule may take.
    pub evaluation_steps_max: u32,
    /// Most recent calls the session keeps for handoff context.
    pub history_entries_max: usize,
    /// Most tools one workflow may declare.
    pub tools_max: usize,
    /// Most rules (gates, checks, escalations, mappings) one tool may declare.
    pub rules_per_tool_max: usize,
    /// Largest workflow file accepted.
    pub workflow_bytes_max: usize,
    /// Largest free text an agent sends in its own words: the conversation
    /// summary with a call, an investigation's concern, its outcome. The
    /// engine refuses longer ones before storing anything (`decide` does not
    /// read it: journals written before it must replay as they were made).
    pub text_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            args_bytes_max: 64 * 1024,
            result_bytes_max: 1024 * 1024,
            facts_max: 4096,
            pending_calls_max: 64,
            evaluation_steps_max: 10_000,
            history_entries_max: 64,
            tools_max: 512,
            rules_per_tool_max: 256,
            workflow_bytes_max: 1024 * 1024,
            text_bytes_max: 16 * 1024,
        }
    }
}

/// The size of a JSON value written compactly, computed without writing it.
/// Strings count as written, escapes included (a control character is six
/// bytes, `\u0000`): a limit on this is a limit on what is stored. Exact
/// but for doubles, counted at their longest.
pub fn json_bytes(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Null => 4,
        serde_json::Value::Bool(b) => {
            if *b {
                4
            } else {
                5
            }
        }
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => decimal_digits(u),
            (None, Some(i)) => 1 + decimal_digits(i.unsigned_abs()),
            // A double never takes more than 24 characters.
            _ => 24,
        },
        serde_json::Value::String(s) => escaped_bytes(s) + 2,
        serde_json::Value::Array(items) => {
            2 + items.len().saturating_sub(1) + items.iter().map(json_bytes).sum::<usize>()
        }
        serde_json::Value::Object(object) => {
            2 + object.len().saturating_sub(1)
                + object.iter().map(|(k, v)| escaped_bytes(k) + 3 + json_bytes(v)).sum::<usize>()
        }
    }
}

/// The bytes `text` takes inside a JSON string as `serde_json` writes it:
/// `"` and `\` and the short escapes take two, other control characters six,
/// everything else its UTF-8 bytes.
pub fn escaped_bytes(text: &str) -> usize {
    let plain = text.len();
    let extra: usize = text
        .bytes()
        .map(|byte| match byte {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
            0x00..=0x1f => 5,
            _ => 0,
        })
        .sum();
    plain + extra
}

fn decimal_digits(mut value: u64) -> usize {
    let mut digits = 1;
    while value >= 10 {
        value /= 10;
        digits += 1;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::json_bytes;
    use serde_json::json;

    #[test]
    fn json_bytes_matches_compact_json_for_ascii_and_integers() {
        for value in [
            json!({"items": [1, 2, 3, 40, -5, 0], "name": "alice", "ok": true, "none": null}),
            json!([]),
            json!({}),
            json!([[1], {"a": {"b": [u64::MAX, i64::MIN]}}]),
        ] {
            assert_eq!(json_bytes(&value), value.to_string().len(), "{value}");
        }
        assert!(json_bytes(&json!(84.5)) >= "84.5".len());
    }
}
