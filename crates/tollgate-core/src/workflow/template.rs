//! Message templates: text with `{cel expression}` holes, such as
//! `"refund of {args.amount} on order {args.order_id}"`.

use crate::expr::{Evaluator, Expr, Scope, Session, lower};

/// Where the hole that starts at byte `start` (just after its `{`) ends:
/// the byte of its closing `}`, counting nested braces and skipping CEL
/// string literals (single, double or triple quoted, with escapes).
fn hole_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\'' | b'"' => {
                let triple = bytes.get(i..i + 3).is_some_and(|t| t.iter().all(|&x| x == b));
                let quote_len = if triple { 3 } else { 1 };
                i += quote_len;
                loop {
                    match bytes.get(i) {
                        None => return None,
                        Some(b'\\') => i += 2,
                        Some(&x)
                            if x == b
                                && (!triple || bytes.get(i..i + 3).is_some_and(|t| t.iter().all(|&y| y == b))) =>
                        {
                            i += quote_len;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                continue;
            }
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// A compiled message template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    parts: Vec<Part>,
    /// The text's length plus room for the holes: one allocation per render.
    length_hint: usize,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Hole { source: String, expr: Expr },
}

impl Template {
    /// Compiles `text`; an error names the hole that does not compile.
    ///
    /// `{{` and `}}` write a brace. A hole ends at the brace that closes it:
    /// braces inside it nest (`{ {'a': 1}[args.k] }`) and braces inside its
    /// string literals do not count (`{args.note + '}'}`), so any CEL can
    /// be written in a hole.
    pub(crate) fn compile(text: &str, scope: &Scope) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|(_, next)| *next == '{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().is_some_and(|(_, next)| *next == '}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let start = at + 1;
                    let end = hole_end(text, start).ok_or_else(|| {
                        format!("unclosed '{{' in message template '{text}' (write '{{{{' for a brace)")
                    })?;
                    let source = text.get(start..end).unwrap_or_default().trim();
                    let expr =
                        lower(source, scope).map_err(|e| format!("in template hole '{{{source}}}': {}", e.message))?;
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Hole { source: source.to_owned(), expr });
                    while chars.peek().is_some_and(|(i, _)| *i <= end) {
                        chars.next();
                    }
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        let length_hint = text.len() + 16 * parts.len();
        Ok(Template { parts, length_hint })
    }

    /// Renders the template; a hole that fails to evaluate is shown as
    /// written, so a message is never lost to an evaluation error.
    pub(crate) fn render<S: Session + Copy>(&self, evaluator: &mut Evaluator<'_, S>) -> String {
        let mut out = String::with_capacity(self.length_hint);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Hole { source, expr } => match evaluator.evaluate(expr) {
                    Ok(value) => value.write_key_text(&mut out),
                    Err(_) => {
                        out.push('{');
                        out.push_str(source);
                        out.push('}');
                    }
                },
            }
        }
        out
    }
}
