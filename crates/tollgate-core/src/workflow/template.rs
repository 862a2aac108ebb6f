//! Message templates: text with `{cel expression}` holes, such as
//! `"refund of {args.amount} on order {args.order_id}"`.

use crate::expr::{Evaluator, Expr, Scope, Session, lower};

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
    pub(crate) fn compile(text: &str, scope: &Scope) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let (before, after) = rest.split_at(open);
            if !before.is_empty() {
                parts.push(Part::Text(before.to_owned()));
            }
            let after = after.get(1..).unwrap_or_default();
            let Some(close) = after.find('}') else {
                return Err(format!("unclosed '{{' in message template '{text}'"));
            };
            let source = after.get(..close).unwrap_or_default().trim();
            let expr = lower(source, scope).map_err(|e| format!("in template hole '{{{source}}}': {}", e.message))?;
            parts.push(Part::Hole { source: source.to_owned(), expr });
            rest = after.get(close + 1..).unwrap_or_default();
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
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
