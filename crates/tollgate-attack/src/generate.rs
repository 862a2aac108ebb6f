//! Sessions generated when no traces are given: calls built from each
//! tool's argument schema, and results built from the workflow's fact
//! mappings (a mapping `id = "result.customer_id"` tells what a result
//! carries). Values come from one small shared pool, so that ids collide
//! across tools as often as an attacker would make them, plus the string
//! and number literals written in the workflow's rules.

use crate::corpus::{Book, Trace};
use crate::rng::Rng;
use serde_json::{Map, Value as Json};
use tollgate_core::workflow::FieldType;
use tollgate_core::{ToolCall, ToolOutcome, Workflow};
use tollgate_protocol::script::Step;

/// How many sessions to generate, and the most calls in each.
const SESSIONS: usize = 48;
const CALLS_MAX: usize = 10;

/// Generated sessions and the book of their results.
pub fn sessions(workflow: &Workflow, text: &str, rule_numbers: &[f64], rng: &mut Rng) -> (Vec<Trace>, Book) {
    let file: toml::Table = toml::from_str(text).unwrap_or_default();
    let tools = file.get("tools").and_then(toml::Value::as_table).cloned().unwrap_or_default();
    let mut strings: Vec<Json> = (1..=3).map(|i| Json::String(format!("id-{i}"))).collect();
    strings.extend(string_literals(text).into_iter().map(Json::String));
    let mut numbers: Vec<f64> = vec![10.0, 100.0, 1000.0];
    numbers.extend(rule_numbers.iter().copied());
    // A few values per pattern, shared by every tool, so that the order a
    // lookup names is the order a refund names as often as not.
    let mut patterns: Vec<(String, Vec<String>)> = Vec::new();
    for tool in tools.values() {
        let properties = tool.get("args").and_then(|a| a.get("properties")).and_then(toml::Value::as_table);
        for property in properties.into_iter().flat_map(|p| p.values()) {
            if let Some(pattern) = property.get("pattern").and_then(toml::Value::as_str)
                && !patterns.iter().any(|(p, _)| p == pattern)
            {
                let values = (0..3).map(|_| from_pattern(rng, pattern)).collect();
                patterns.push((pattern.to_owned(), values));
            }
        }
    }
    let pool = Pool { strings, numbers, patterns };
    let mut traces = Vec::new();
    let mut book = Book::new(&[], rule_numbers);
    for session in 0..SESSIONS {
        // A few goals, each preceded by calls that establish what its gates need.
        let mut plan: Vec<&str> = Vec::new();
        for _ in 0..1 + rng.below(3) {
            if let Some(goal) = rng.pick(workflow.tools()) {
                prerequisites_then(workflow, goal.name(), rng, 0, &mut plan);
            }
        }
        plan.truncate(CALLS_MAX);
        let mut seen: Vec<(String, Json)> = Vec::new();
        let mut steps = Vec::new();
        for (index, name) in plan.into_iter().enumerate() {
            let spec = tools.get(name);
            let args = spec.and_then(|t| t.get("args")).map_or_else(|| Json::Object(Map::new()), |s| pool.args(rng, s));
            let result = pool.result(rng, workflow, spec, &args, &mut seen);
            let id = format!("g{}", index + 1);
            book.teach(name, &args, &result);
            steps.push(Step::Call(ToolCall::new(id.clone(), name, args)));
            steps.push(Step::Result { call: tollgate_core::CallId::new(id), result, outcome: ToolOutcome::Succeeded });
        }
        traces.push(Trace { name: format!("generated-{}", session + 1), steps });
    }
    (traces, book)
}

/// Appends calls that establish the facts `tool`'s gates need, then `tool`.
fn prerequisites_then<'w>(workflow: &'w Workflow, tool: &'w str, rng: &mut Rng, depth: usize, plan: &mut Vec<&'w str>) {
    let Some(spec) = workflow.tool(tool) else { return };
    if depth < 6 {
        for gate in spec.gates() {
            let establishers: Vec<&str> = workflow
                .tools()
                .iter()
                .filter(|t| t.establishes().any(|f| f == gate.fact()))
                .map(|t| t.name())
                .collect();
            if let Some(&establisher) = rng.pick(&establishers)
                && !(plan.contains(&establisher) && rng.chance(2, 3))
            {
                prerequisites_then(workflow, establisher, rng, depth + 1, plan);
            }
        }
    }
    plan.push(tool);
}

struct Pool {
    strings: Vec<Json>,
    numbers: Vec<f64>,
    patterns: Vec<(String, Vec<String>)>,
}

impl Pool {
    fn string(&self, rng: &mut Rng) -> Json {
        rng.pick(&self.strings).cloned().unwrap_or(Json::Null)
    }

    fn number(&self, rng: &mut Rng) -> Json {
        let n = rng.pick(&self.numbers).copied().unwrap_or(1.0);
        serde_json::Number::from_f64(n).map_or(Json::Null, Json::Number)
    }

    /// Arguments that satisfy the schema's declared properties (types,
    /// enums, simple patterns).
    fn args(&self, rng: &mut Rng, schema: &toml::Value) -> Json {
        let mut args = Map::new();
        let Some(properties) = schema.get("properties").and_then(toml::Value::as_table) else {
            return Json::Object(args);
        };
        for (name, property) in properties {
            let value = if let Some(options) = property.get("enum").and_then(toml::Value::as_array) {
                rng.pick(options).and_then(|v| serde_json::to_value(v).ok()).unwrap_or(Json::Null)
            } else {
                match property.get("type").and_then(toml::Value::as_str) {
                    Some("number") | Some("integer") => self.number(rng),
                    Some("boolean") => Json::Bool(rng.chance(3, 4)),
                    Some("array") => Json::Array(Vec::new()),
                    Some("object") => Json::Object(Map::new()),
                    _ => match property.get("pattern").and_then(toml::Value::as_str) {
                        Some(pattern) => {
                            let values = self.patterns.iter().find(|(p, _)| p == pattern).map(|(_, v)| v.as_slice());
                            match values.and_then(|v| rng.pick(v)) {
                                Some(value) => Json::String(value.clone()),
                                None => Json::String(from_pattern(rng, pattern)),
                            }
                        }
                        None => self.string(rng),
                    },
                }
            };
            args.insert(name.clone(), value);
        }
        Json::Object(args)
    }

    /// A result carrying every `result.<path>` the tool's mappings and
    /// checks read; a path named like an argument carries the argument.
    fn result(
        &self,
        rng: &mut Rng,
        workflow: &Workflow,
        spec: Option<&toml::Value>,
        args: &Json,
        seen: &mut Vec<(String, Json)>,
    ) -> Json {
        let mut result = Json::Object(Map::new());
        let Some(spec) = spec else { return result };
        // Rule texts that read the result, each with the type of the fact
        // field it fills (for mapping fields).
        let mut sources: Vec<(String, Option<FieldType>)> = Vec::new();
        for section in ["establishes", "updates", "result_checks"] {
            for mapping in spec.get(section).and_then(toml::Value::as_array).into_iter().flatten() {
                for key in ["when", "rule"] {
                    if let Some(text) = mapping.get(key).and_then(toml::Value::as_str) {
                        sources.push((text.to_owned(), None));
                    }
                }
                let fact = mapping
                    .get("fact")
                    .and_then(toml::Value::as_str)
                    .and_then(|name| workflow.facts().iter().find(|f| f.name() == name));
                for (field, text) in mapping.get("fields").and_then(toml::Value::as_table).into_iter().flatten() {
                    if let Some(text) = text.as_str() {
                        sources.push((text.to_owned(), fact.and_then(|f| f.fields().get(field)).copied()));
                    }
                }
            }
        }
        for (source, kind) in &sources {
            for (path, literal) in result_paths(source) {
                let leaf = path.last().cloned().unwrap_or_default();
                let value = match (literal, kind) {
                    (Some(literal), _) if rng.chance(4, 5) => literal,
                    (_, Some(FieldType::Double | FieldType::Int)) => self.number(rng),
                    (_, Some(FieldType::Bool)) => Json::Bool(rng.chance(3, 4)),
                    _ => match (args.get(&leaf), seen.iter().find(|(l, _)| *l == leaf)) {
                        (Some(value), _) if rng.chance(4, 5) => value.clone(),
                        // The session's earlier results agree with each other, mostly.
                        (_, Some((_, value))) if rng.chance(3, 4) => value.clone(),
                        _ if kind.is_none() && rng.chance(1, 3) => self.number(rng),
                        _ => self.string(rng),
                    },
                };
                if !seen.iter().any(|(l, _)| *l == leaf) {
                    seen.push((leaf.clone(), value.clone()));
                }
                set_path(&mut result, &path, value);
            }
        }
        result
    }
}

/// `result.a.b` paths in a rule, each with the literal it is compared to
/// (`result.verified == true`), if any.
fn result_paths(source: &str) -> Vec<(Vec<String>, Option<Json>)> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("result.") {
        let after = rest.get(start + "result.".len()..).unwrap_or_default();
        let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).unwrap_or(after.len());
        let path: Vec<String> =
            after.get(..end).unwrap_or_default().split('.').filter(|p| !p.is_empty()).map(str::to_owned).collect();
        let tail = after.get(end..).unwrap_or_default().trim_start();
        let literal = tail.strip_prefix("==").map(str::trim_start).and_then(|value| {
            let token: String = value.chars().take_while(|c| !matches!(c, ' ' | ')' | '&' | '|')).collect();
            match token.as_str() {
                "true" => Some(Json::Bool(true)),
                "false" => Some(Json::Bool(false)),
                quoted if quoted.len() >= 2 && (quoted.starts_with('\'') || quoted.starts_with('"')) => {
                    quoted.get(1..quoted.len() - 1).map(|s| Json::String(s.to_owned()))
                }
                number => number.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Json::Number),
            }
        });
        if !path.is_empty() {
            found.push((path, literal));
        }
        rest = after.get(end..).unwrap_or_default();
    }
    found
}

fn set_path(value: &mut Json, path: &[String], leaf: Json) {
    let Some((first, rest)) = path.split_first() else {
        *value = leaf;
        return;
    };
    if !value.is_object() {
        *value = Json::Object(Map::new());
    }
    if let Json::Object(object) = value {
        let child = object.entry(first.clone()).or_insert(Json::Null);
        set_path(child, rest, leaf);
    }
}

/// String literals in single quotes in the workflow text (rule values
/// such as `'delivered'`).
fn string_literals(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for (index, part) in text.split('\'').enumerate() {
        if index % 2 == 1 && !part.is_empty() && part.len() <= 40 && !part.contains(['\n', '{', '$']) {
            let part = part.to_owned();
            if !found.contains(&part) {
                found.push(part);
            }
        }
    }
    found
}

/// A string matching a simple anchored pattern (`^#W[0-9]+$`,
/// `^[0-9]{5}$`): literals, escapes, classes and quantifiers. Anything
/// richer yields what was generated so far (the schema then blocks it,
/// which is a decision like any other).
fn from_pattern(rng: &mut Rng, pattern: &str) -> String {
    let chars: Vec<char> = pattern.trim_start_matches('^').trim_end_matches('$').chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let (choices, next): (Vec<char>, usize) = match c {
            '[' => {
                let close = (i..chars.len()).find(|&j| chars.get(j) == Some(&']')).unwrap_or(chars.len());
                let mut set = Vec::new();
                let mut j = i + 1;
                while j < close {
                    match (chars.get(j), chars.get(j + 1), chars.get(j + 2)) {
                        (Some(&a), Some('-'), Some(&b)) if j + 2 < close => {
                            set.extend(a..=b);
                            j += 3;
                        }
                        (Some(&a), _, _) => {
                            set.push(a);
                            j += 1;
                        }
                        _ => break,
                    }
                }
                (set, close + 1)
            }
            '\\' => match chars.get(i + 1) {
                Some('d') => (('0'..='9').collect(), i + 2),
                Some(&other) => (vec![other], i + 2),
                None => (Vec::new(), i + 1),
            },
            '(' | ')' | '|' => return out,
            '.' => (('a'..='z').collect(), i + 1),
            other => (vec![other], i + 1),
        };
        let (times, after) = quantifier(rng, &chars, next);
        for _ in 0..times {
            if let Some(&pick) = rng.pick(&choices) {
                out.push(pick);
            }
        }
        i = after;
    }
    out
}

fn quantifier(rng: &mut Rng, chars: &[char], at: usize) -> (usize, usize) {
    match chars.get(at) {
        Some('+') => (1 + rng.below(4), at + 1),
        Some('*') => (rng.below(4), at + 1),
        Some('?') => (rng.below(2), at + 1),
        Some('{') => {
            let close = (at..chars.len()).find(|&j| chars.get(j) == Some(&'}')).unwrap_or(chars.len());
            let inside: String = chars.get(at + 1..close).unwrap_or_default().iter().collect();
            let (low, high): (usize, usize) = match inside.split_once(',') {
                Some((low, high)) => {
                    let low = low.trim().parse().unwrap_or(1);
                    (low, high.trim().parse().unwrap_or(low + 3))
                }
                None => {
                    let n = inside.trim().parse().unwrap_or(1);
                    (n, n)
                }
            };
            (low + rng.below(high.saturating_sub(low) + 1), close + 1)
        }
        _ => (1, at),
    }
}

#[cfg(test)]
mod tests {
    use super::{from_pattern, result_paths};
    use crate::rng::Rng;
    use serde_json::json;

    #[test]
    fn patterns_generate_matching_strings() {
        let mut rng = Rng::new(3);
        for _ in 0..50 {
            let order = from_pattern(&mut rng, "^#W[0-9]+$");
            assert!(order.starts_with("#W") && order.len() > 2 && order[2..].chars().all(|c| c.is_ascii_digit()));
            let zip = from_pattern(&mut rng, "^[0-9]{5}$");
            assert_eq!(zip.len(), 5);
        }
    }

    #[test]
    fn result_paths_carry_their_compared_literal() {
        let found = result_paths("result.verified == true && size(result.customer_id) > 0 && result.a.b == 'x'");
        assert_eq!(found[0], (vec!["verified".to_owned()], Some(json!(true))));
        assert_eq!(found[1], (vec!["customer_id".to_owned()], None));
        assert_eq!(found[2], (vec!["a".to_owned(), "b".to_owned()], Some(json!("x"))));
    }
}
