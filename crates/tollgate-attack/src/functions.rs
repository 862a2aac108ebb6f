//! Functions an invariant may call that the `cel` crate, as this workspace
//! builds it (without its `chrono` feature), does not have: `timestamp`,
//! `duration` and `sum`. Written here, apart from the core's evaluator, so
//! the oracle stays independent of what it judges.
//!
//! Time in the oracle is a number, like every other number in its view:
//! `now` and `timestamp(text)` are seconds since the Unix epoch, and
//! `duration(text)` is seconds, all doubles. So `now - timestamp(t) <=
//! duration('24h')` means what it says; comparing a time with a plain
//! number is not refused, as CEL proper would.

use cel::{Context, ExecutionError, Value as Cel};
use std::sync::Arc;

/// Adds `timestamp`, `duration` and `sum` to an evaluation context.
pub fn add(context: &mut Context<'_, '_>) -> Result<(), String> {
    context
        .add_function("timestamp", |text: Arc<String>| -> Result<Cel, ExecutionError> {
            timestamp_seconds(&text).map(Cel::Float).map_err(|e| ExecutionError::function_error("timestamp", e))
        })
        .map_err(|e| format!("timestamp cannot be a function here: {e:?}"))?;
    context
        .add_function("duration", |text: Arc<String>| -> Result<Cel, ExecutionError> {
            duration_seconds(&text).map(Cel::Float).map_err(|e| ExecutionError::function_error("duration", e))
        })
        .map_err(|e| format!("duration cannot be a function here: {e:?}"))?;
    context
        .add_function("sum", |items: Arc<Vec<Cel>>| -> Result<Cel, ExecutionError> {
            let mut total = 0.0;
            for item in items.iter() {
                total += match item {
                    Cel::Float(x) => *x,
                    Cel::Int(n) => *n as f64,
                    Cel::UInt(n) => *n as f64,
                    other => return Err(ExecutionError::function_error("sum", format!("{other:?} is not a number"))),
                };
            }
            Ok(Cel::Float(total))
        })
        .map_err(|e| format!("sum cannot be a function here: {e:?}"))
}

/// An RFC 3339 time as seconds since the Unix epoch.
pub fn timestamp_seconds(text: &str) -> Result<f64, String> {
    let time =
        chrono::DateTime::parse_from_rfc3339(text).map_err(|e| format!("'{text}' is not an RFC 3339 time: {e}"))?;
    Ok(time.timestamp_millis() as f64 / 1000.0)
}

/// A CEL duration (`24h`, `1h30m`, `-90s`, `1.5h`, `250ms`) in seconds.
pub fn duration_seconds(text: &str) -> Result<f64, String> {
    let bad = || format!("'{text}' is not a duration such as '24h' or '90s'");
    let (sign, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, text),
    };
    if rest.is_empty() {
        return Err(bad());
    }
    let mut seconds = 0.0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(bad)?;
        let (number, tail) = rest.split_at(digits);
        let number: f64 = number.parse().map_err(|_| bad())?;
        let (unit, tail) = ["ms", "us", "ns", "h", "m", "s"]
            .iter()
            .find_map(|unit| tail.strip_prefix(unit).map(|t| (*unit, t)))
            .ok_or_else(bad)?;
        seconds += number
            * match unit {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 1e-3,
                "us" => 1e-6,
                _ => 1e-9,
            };
        rest = tail;
    }
    Ok(sign * seconds)
}

#[cfg(test)]
mod tests {
    use super::{duration_seconds, timestamp_seconds};

    #[test]
    fn times_and_durations_are_seconds() {
        assert_eq!(timestamp_seconds("2024-05-15T15:00:00-05:00"), Ok(1_715_803_200.0));
        assert_eq!(timestamp_seconds("1970-01-01T00:00:01.5Z"), Ok(1.5));
        assert!(timestamp_seconds("2024-05-15").is_err());
        assert_eq!(duration_seconds("24h"), Ok(86_400.0));
        assert_eq!(duration_seconds("1h30m"), Ok(5_400.0));
        assert_eq!(duration_seconds("-90s"), Ok(-90.0));
        assert_eq!(duration_seconds("250ms"), Ok(0.25));
        for bad in ["", "-", "24", "h", "1d", "1h x"] {
            assert!(duration_seconds(bad).is_err(), "{bad:?}");
        }
    }
}
