//! `explain`: for one call in one session state, every rule of its tool
//! evaluated, with the values it read and why it passed or failed — what a
//! person asks first when an agent was blocked. The decision itself is
//! [`decide`]'s, unchanged; the explanation evaluates each rule on its own
//! (where `decide` stops at the first stage that blocks), so it also shows
//! what would have failed next.

use crate::ToolCall;
use crate::case::{InCase, NO_CASE};
use crate::decide::{decide, gate_key};
use crate::decision::Decision;
use crate::expr::{Bindings, Evaluator, Expr, SessionField};
use crate::state::SessionState;
use crate::value::Value;
use crate::workflow::Workflow;

/// One rule, evaluated.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleEvaluation {
    /// `gate`, `gate where`, `check`, `escalation`.
    pub kind: &'static str,
    /// The rule's id.
    pub rule_id: String,
    /// The rule as written (CEL, or the gate's fact).
    pub source: String,
    /// What came of it.
    pub outcome: RuleOutcome,
    /// The values it read: `args.amount = 650`, `order.total = 900`,
    /// `refunded(args.order_id) = 0`.
    pub values: Vec<(String, String)>,
}

/// What came of a rule.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleOutcome {
    /// A gate found its fact, a check held, an escalation did not match.
    Passed,
    /// A gate's fact is missing, a check is false (with the message the
    /// agent is given), an escalation matched.
    Failed(String),
    /// The rule could not be evaluated (a block, fail closed).
    Error(String),
    /// Not evaluated: what it reads is missing.
    NotEvaluated(String),
}

/// A call's decision and the evaluation of every rule of its tool.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// The decision `decide` gives.
    pub decision: Decision,
    /// Each rule, in the order `decide` evaluates them.
    pub rules: Vec<RuleEvaluation>,
}

/// Explains `call` in `state` (a session alone, not in a case).
pub fn explain(workflow: &Workflow, state: &SessionState, call: &ToolCall) -> Explanation {
    let decision = decide(workflow, state, call);
    let Some(tool) = workflow.tool(&call.tool) else { return Explanation { decision, rules: Vec::new() } };
    let mut rules = Vec::new();
    let names: Vec<&str> = tool.gates.iter().map(|g| g.alias.as_str()).collect();
    let describe = |expr: &Expr| reads(expr, workflow, &names);

    // Gates: each fact instance, found or missing.
    let mut facts: Vec<&Value> = Vec::with_capacity(tool.gates.len());
    let mut all_found = true;
    for gate in &tool.gates {
        let values =
            gate.key.as_ref().map(|k| values_of(workflow, state, call, &[], k.expr(), &describe)).unwrap_or_default();
        let outcome = match gate_key(workflow, state, gate, &call.args) {
            Err(error) => RuleOutcome::Error(error),
            Ok(key) => match state.fact(gate.fact, key.as_deref()) {
                Some(value) => {
                    facts.push(value);
                    RuleOutcome::Passed
                }
                None => RuleOutcome::Failed(match key {
                    Some(key) => format!("no {} {key} in the session", fact_name(workflow, gate.fact)),
                    None => format!("no {} in the session", fact_name(workflow, gate.fact)),
                }),
            },
        };
        all_found &= outcome == RuleOutcome::Passed;
        rules.push(RuleEvaluation {
            kind: "gate",
            rule_id: gate.id.clone(),
            source: gate.text.clone(),
            outcome,
            values,
        });
    }
    let case = NO_CASE.clone();
    let missing = || RuleOutcome::NotEvaluated("a gate's fact is missing, so what the rule reads is not there".into());
    let evaluate = |kind: &'static str,
                    id: &str,
                    rule: &crate::expr::Rule,
                    fails_when: bool,
                    message: &dyn Fn(&mut Evaluator<'_, InCase<'_>>) -> String| {
        if !all_found {
            return RuleEvaluation {
                kind,
                rule_id: id.to_owned(),
                source: rule.source().to_owned(),
                outcome: missing(),
                values: Vec::new(),
            };
        }
        let values = values_of(workflow, state, call, &facts, rule.expr(), &describe);
        let mut evaluator = Evaluator::new(
            Bindings {
                args: &call.args,
                result: &Value::Null,
                facts: &facts,
                session: InCase::new(state, &case),
                now_ms: call.now_ms,
                context: call.context.as_ref().unwrap_or(&serde_json::Value::Null),
            },
            workflow.limits.evaluation_steps_max,
        );
        let outcome = match evaluator.evaluate_bool(rule.expr()) {
            Ok(value) if value == fails_when => RuleOutcome::Failed(message(&mut evaluator)),
            Ok(_) => RuleOutcome::Passed,
            Err(error) => RuleOutcome::Error(error),
        };
        RuleEvaluation { kind, rule_id: id.to_owned(), source: rule.source().to_owned(), outcome, values }
    };
    for gate in &tool.gates {
        if let Some(condition) = &gate.condition {
            let message = |e: &mut Evaluator<'_, InCase<'_>>| match &gate.message {
                Some(message) => message.render(e),
                None => format!("{} does not meet {}", gate.text, condition.source()),
            };
            rules.push(evaluate("gate where", &gate.id, condition, false, &message));
        }
    }
    for check in &tool.checks {
        rules.push(evaluate("check", &check.id, &check.rule, false, &|e| check.message.render(e)));
    }
    for escalation in &tool.escalations {
        rules.push(evaluate("escalation", &escalation.id, &escalation.rule, true, &|e| escalation.reason.render(e)));
    }
    Explanation { decision, rules }
}

fn fact_name(workflow: &Workflow, fact: crate::workflow::FactId) -> String {
    workflow.fact(fact).map_or_else(|| "?".to_owned(), |d| d.name().to_owned())
}

/// The values the expression reads, each with how it is written.
fn values_of(
    workflow: &Workflow,
    state: &SessionState,
    call: &ToolCall,
    facts: &[&Value],
    expr: &Expr,
    describe: &dyn Fn(&Expr) -> Option<String>,
) -> Vec<(String, String)> {
    let mut leaves = Vec::new();
    collect(expr, describe, &mut leaves);
    let case = NO_CASE.clone();
    let mut out: Vec<(String, String)> = Vec::new();
    for (text, leaf) in leaves {
        if out.iter().any(|(seen, _)| *seen == text) {
            continue;
        }
        let mut evaluator = Evaluator::new(
            Bindings {
                args: &call.args,
                result: &Value::Null,
                facts,
                session: InCase::new(state, &case),
                now_ms: call.now_ms,
                context: call.context.as_ref().unwrap_or(&serde_json::Value::Null),
            },
            workflow.limits.evaluation_steps_max,
        );
        let value = match evaluator.evaluate(leaf) {
            Ok(value) => crate::value::compact_json(&value.to_json()),
            Err(error) => format!("(cannot be read: {error})"),
        };
        out.push((text, value));
    }
    out
}

/// The outermost subexpressions that read something (a path from `args`,
/// a bound fact, `facts.x`, a session counter, an aggregate, `now`).
fn collect<'e>(expr: &'e Expr, describe: &dyn Fn(&Expr) -> Option<String>, out: &mut Vec<(String, &'e Expr)>) {
    if let Some(text) = describe(expr) {
        out.push((text, expr));
        return;
    }
    match expr {
        // Comprehension bodies read their own variables: the range is what the session holds.
        Expr::Comprehension(comprehension) => collect(&comprehension.range, describe, out),
        other => other.for_each_child(|child| collect(child, describe, out)),
    }
}

/// How a reading expression is written, or `None` if it computes.
fn reads(expr: &Expr, workflow: &Workflow, gates: &[&str]) -> Option<String> {
    Some(match expr {
        Expr::Args => "args".to_owned(),
        Expr::Now => "now".to_owned(),
        Expr::Context => "context".to_owned(),
        Expr::Fact(index) => (*gates.get(*index)?).to_owned(),
        Expr::FactTable(fact) => format!("facts.{}", workflow.facts().get(*fact)?.name()),
        Expr::Session(field) => match field {
            SessionField::BlockedCalls => "session.blocked_calls".to_owned(),
            SessionField::AllowedCalls => "session.allowed_calls".to_owned(),
            SessionField::Escalations => "session.escalations".to_owned(),
            SessionField::Calls => "session.calls".to_owned(),
            SessionField::AggregateTotal(i) => format!("session.{}", workflow.aggregates().get(*i)?.name()),
            SessionField::CaseTotal(i) => format!("case.{}", workflow.aggregates().get(*i)?.name()),
        },
        Expr::Select(target, field) => format!("{}.{field}", reads(target, workflow, gates)?),
        Expr::Index(target, index) => match index.as_ref() {
            Expr::Const(Value::String(key)) => format!("{}['{key}']", reads(target, workflow, gates)?),
            Expr::Const(Value::Int(i)) => format!("{}[{i}]", reads(target, workflow, gates)?),
            other => format!("{}[{}]", reads(target, workflow, gates)?, reads(other, workflow, gates)?),
        },
        Expr::AggregateBy(i, key) => {
            format!("{}({})", workflow.aggregates().get(*i)?.name(), reads(key, workflow, gates)?)
        }
        Expr::CaseAggregateBy(i, key) => {
            format!("case_{}({})", workflow.aggregates().get(*i)?.name(), reads(key, workflow, gates)?)
        }
        _ => return None,
    })
}

impl Explanation {
    /// The explanation as text, a rule a line with its values under it.
    pub fn render(&self) -> String {
        let verdict = self.decision.verdict().as_str();
        let mut out = match self.decision.reasons() {
            [] => format!("decision: {verdict}\n"),
            reasons => format!(
                "decision: {verdict} by {}\n",
                reasons.iter().map(|r| format!("{} ({})", r.rule_id, r.message)).collect::<Vec<_>>().join("; ")
            ),
        };
        for rule in &self.rules {
            let (mark, why) = match &rule.outcome {
                RuleOutcome::Passed => ("pass", String::new()),
                RuleOutcome::Failed(message) if rule.kind == "escalation" => ("MATCH", format!(": {message}")),
                RuleOutcome::Failed(message) => ("FAIL", format!(": {message}")),
                RuleOutcome::Error(error) => ("ERROR", format!(": {error}")),
                RuleOutcome::NotEvaluated(why) => ("skip", format!(": {why}")),
            };
            out.push_str(&format!("{mark:<5} {:<10} {}  {}{why}\n", rule.kind, rule.rule_id, rule.source));
            for (text, value) in &rule.values {
                out.push_str(&format!("        {text} = {value}\n"));
            }
        }
        out
    }
}
