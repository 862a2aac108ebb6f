//! Compiling one tool: its argument schema, gates, checks, escalation
//! rules, result checks and fact mappings.

use super::compiler::{Compiler, Names, schema_fields};
use super::file::{CheckFile, EscalateFile, GateFile, MappingFile, ToolFile};
use super::{ArgsSchema, Check, EscalationRule, FactDecl, FactId, Gate, Mapping, Policy, Tool, ToolId, Urgency};
use crate::expr::Scope;
use crate::limits::Limits;
use std::collections::BTreeSet;
use std::ops::Range;
use toml::Spanned;

impl Compiler<'_> {
    #[expect(clippy::too_many_arguments, reason = "one call site; the arguments are the compiler's context")]
    pub(super) fn tool(
        &mut self,
        id: ToolId,
        name: &Spanned<String>,
        spanned: &Spanned<ToolFile>,
        facts: &[FactDecl],
        names: &Names,
        limits: &Limits,
        is_handoff: bool,
    ) -> Option<Tool> {
        let tool = spanned.get_ref();
        let span = spanned.span();
        let tool_name = name.get_ref();
        let rule_count = tool.requires.len()
            + tool.checks.len()
            + tool.escalate.len()
            + tool.result_checks.len()
            + tool.establishes.len()
            + tool.updates.len();
        if rule_count > limits.rules_per_tool_max {
            self.problem(
                &span,
                format!(
                    "tool '{tool_name}' declares {rule_count} rules, over the limit of {}",
                    limits.rules_per_tool_max
                ),
            );
        }
        if tool.side_effect
            && !is_handoff
            && tool.requires.is_empty()
            && tool.checks.is_empty()
            && tool.escalate.is_empty()
        {
            self.warn(
                name.span().start,
                format!(
                    "tool '{tool_name}' changes something (side_effect) but nothing guards it: any session may call it \
                     at any time, with any arguments its schema admits; add `requires`, a check or an escalation \
                     (or drop side_effect if it changes nothing)"
                ),
            );
        }
        let (schema, arg_fields) = self.schema(tool_name, tool);
        let args_scope = Scope { args: Some(arg_fields.clone()), ..Scope::default() };
        let gates = self.gates(tool_name, tool, &span, facts, names, &args_scope);
        let schema_json = tool.args.as_ref().and_then(|args| serde_json::to_value(args.get_ref()).ok());
        for gate in &gates {
            if let Some(key) = &gate.key {
                self.key_warning(
                    &span,
                    &format!("tool '{tool_name}' gate '{}'", gate.text),
                    key,
                    schema_json.as_ref(),
                    &gate.id,
                );
            }
        }
        let rule_scope = Scope {
            args: Some(arg_fields.clone()),
            result: false,
            facts: gates.iter().map(|g| (g.alias.clone(), fact_fields(facts, g.fact))).collect(),
            aggregates: names.aggregates.clone(),
            session: true,
            now: true,
            context: true,
            all_facts: Some(all_facts(facts)),
        };
        let mut ok = true;
        let mut gates = gates;
        for (gate, file) in gates.iter_mut().zip(tool.requires.iter()) {
            if let GateFile::Full(full) = file {
                if let Some(condition) = &full.condition {
                    let spanned = Spanned::new(span.clone(), condition.clone());
                    gate.condition =
                        self.rule(&spanned, &rule_scope, &format!("tool '{tool_name}' gate '{}' where", gate.text));
                    ok &= gate.condition.is_some();
                }
                if let Some(message) = &full.message {
                    let spanned = Spanned::new(span.clone(), message.clone());
                    gate.message = self.template(&spanned, &rule_scope, &format!("tool '{tool_name}' gate message"));
                    ok &= gate.message.is_some();
                }
            }
        }
        let checks = self.checks(tool_name, "checks", &tool.checks, &rule_scope);
        let escalations = self.escalations(tool_name, &tool.escalate, &rule_scope, names);
        // A result arrives after the decision: the clock of the call is not
        // the clock of its result, so result checks do not read `now`.
        // Nor what the client said about the call (`context`): a result
        // is recorded without it.
        let result_scope = Scope { result: true, now: false, context: false, ..rule_scope.clone() };
        let result_checks = self.checks(tool_name, "result_checks", &tool.result_checks, &result_scope);
        let establishes = self.mappings(tool_name, "establishes", &tool.establishes, facts, names, &arg_fields);
        let updates = self.mappings(tool_name, "updates", &tool.updates, facts, names, &arg_fields);
        let clears = self.clears(tool_name, &tool.clears, facts, names);
        let clears_when = match &tool.clears_when {
            None => Some(None),
            Some(when) if tool.clears.is_empty() => {
                self.problem(
                    &when.span(),
                    format!("tool '{tool_name}' has clears_when but clears nothing: add clears = [\"<fact>\"]"),
                );
                None
            }
            Some(when) => {
                let scope = Scope { args: Some(arg_fields.clone()), context: true, ..Scope::default() };
                self.rule(when, &scope, &format!("tool '{tool_name}' clears_when")).map(Some)
            }
        };
        Some(Tool {
            id,
            name: tool_name.clone(),
            description: tool.description.clone(),
            side_effect: tool.side_effect,
            closes_case: tool.closes_case,
            schema: schema?,
            gates: if ok { Some(gates) } else { None }?,
            checks: checks?,
            escalations: escalations?,
            result_checks: result_checks?,
            establishes: establishes?,
            updates: updates?,
            clears: clears?,
            clears_when: clears_when?,
            is_handoff,
        })
    }

    /// `clears`: the facts an allowed call of the tool makes stale. Each must
    /// be declared, and none an identity fact (written once per session).
    fn clears(
        &mut self,
        tool_name: &str,
        clears: &[Spanned<String>],
        facts: &[FactDecl],
        names: &Names,
    ) -> Option<Vec<FactId>> {
        let mut ids = Vec::with_capacity(clears.len());
        let mut ok = true;
        for name in clears {
            match names.facts.get(name.get_ref()) {
                None => {
                    let declared: Vec<&str> = facts.iter().map(|f| f.name.as_ref()).collect();
                    self.problem(
                        &name.span(),
                        format!(
                            "tool '{tool_name}' clears '{}', which is not a declared fact (declared: {})",
                            name.get_ref(),
                            declared.join(", ")
                        ),
                    );
                    ok = false;
                }
                Some(&id) if facts.get(id.0).is_some_and(|f| f.identity) => {
                    self.problem(
                        &name.span(),
                        format!(
                            "tool '{tool_name}' clears '{}', an identity fact: identity facts are written once per \
                             session and never cleared (drop `identity`, or clear another fact)",
                            name.get_ref()
                        ),
                    );
                    ok = false;
                }
                Some(&id) => {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
        }
        ok.then_some(ids)
    }

    /// Compiles the argument schema; returns it and its top-level fields.
    fn schema(&mut self, tool_name: &str, tool: &ToolFile) -> (Option<Option<ArgsSchema>>, Option<BTreeSet<String>>) {
        let Some(args) = &tool.args else {
            return (Some(None), None);
        };
        let span = args.span();
        let json = match serde_json::to_value(args.get_ref()) {
            Ok(json) => json,
            Err(error) => {
                self.problem(&span, format!("tool '{tool_name}' args schema cannot be read as JSON: {error}"));
                return (None, None);
            }
        };
        if let Err(error) = jsonschema::meta::validate(&json) {
            self.problem(&span, format!("tool '{tool_name}' args is not a valid JSON Schema: {error}"));
            return (None, None);
        }
        let fields = schema_fields(&json);
        match jsonschema::validator_for(&json) {
            Ok(validator) => (Some(Some(ArgsSchema { validator })), Some(fields)),
            Err(error) => {
                self.problem(&span, format!("tool '{tool_name}' args schema does not compile: {error}"));
                (None, Some(fields))
            }
        }
    }

    fn gates(
        &mut self,
        tool_name: &str,
        tool: &ToolFile,
        span: &Range<usize>,
        facts: &[FactDecl],
        names: &Names,
        args_scope: &Scope,
    ) -> Vec<Gate> {
        let mut gates: Vec<Gate> = Vec::new();
        for (index, file) in tool.requires.iter().enumerate() {
            let (fact_name, key_text, alias, id) = match file {
                GateFile::Short(text) => match text.split_once('[') {
                    Some((fact, rest)) => match rest.strip_suffix(']') {
                        Some(key) => (fact.trim().to_owned(), Some(key.trim().to_owned()), None, None),
                        None => {
                            self.problem(span, format!("tool '{tool_name}' gate '{text}' is missing its closing ']'"));
                            continue;
                        }
                    },
                    None => (text.trim().to_owned(), None, None, None),
                },
                GateFile::Full(full) => (full.fact.clone(), full.key.clone(), full.alias.clone(), full.id.clone()),
            };
            let policy = match file {
                GateFile::Short(_) => Policy::default(),
                GateFile::Full(full) => Policy { refs: full.policy.clone(), description: full.description.clone() },
            };
            let text = match &key_text {
                Some(key) => format!("{fact_name}[{key}]"),
                None => fact_name.clone(),
            };
            let Some(&fact) = names.facts.get(&fact_name) else {
                let known: Vec<&str> = names.facts.keys().map(String::as_str).collect();
                self.problem(
                    span,
                    format!(
                        "tool '{tool_name}' requires unknown fact '{fact_name}' (declared facts: {})",
                        known.join(", ")
                    ),
                );
                continue;
            };
            let keyed = facts.get(fact.0).is_some_and(|f| f.key_field.is_some());
            let key = match (&key_text, keyed) {
                (Some(key), true) => {
                    let spanned = Spanned::new(span.clone(), key.clone());
                    match self.rule(&spanned, args_scope, &format!("tool '{tool_name}' gate '{text}' key")) {
                        Some(rule) => Some(rule),
                        None => continue,
                    }
                }
                (None, true) => {
                    self.problem(span, format!(
                        "tool '{tool_name}' gate '{text}' needs a key: '{fact_name}' is keyed, write {fact_name}[args.<field>]"
                    ));
                    continue;
                }
                (Some(_), false) => {
                    self.problem(span, format!(
                        "tool '{tool_name}' gate '{text}' has a key, but fact '{fact_name}' is held once per session"
                    ));
                    continue;
                }
                (None, false) => None,
            };
            let alias = alias.unwrap_or_else(|| fact_name.clone());
            if gates.iter().any(|g| g.alias == alias) {
                self.problem(
                    span,
                    format!(
                        "tool '{tool_name}' binds '{alias}' twice; give the second gate another name with as = \"...\""
                    ),
                );
                continue;
            }
            gates.push(Gate {
                id: id.unwrap_or_else(|| format!("{tool_name}.requires.{}", index + 1)),
                fact,
                alias,
                key,
                condition: None,
                message: None,
                text,
                policy,
            });
        }
        gates
    }

    fn checks(&mut self, tool_name: &str, kind: &str, files: &[CheckFile], scope: &Scope) -> Option<Vec<Check>> {
        let mut checks = Vec::new();
        let mut ok = true;
        for (index, file) in files.iter().enumerate() {
            let id = file.id.clone().unwrap_or_else(|| format!("{tool_name}.{kind}.{}", index + 1));
            let rule = self.rule(&file.rule, scope, &format!("rule '{id}'"));
            let message = self.template(&file.message, scope, &format!("rule '{id}' message"));
            match (rule, message) {
                (Some(rule), Some(message)) => checks.push(Check {
                    id,
                    rule,
                    message,
                    policy: Policy { refs: file.policy.clone(), description: file.description.clone() },
                }),
                _ => ok = false,
            }
        }
        ok.then_some(checks)
    }

    fn escalations(
        &mut self,
        tool_name: &str,
        files: &[EscalateFile],
        scope: &Scope,
        names: &Names,
    ) -> Option<Vec<EscalationRule>> {
        let mut rules = Vec::new();
        let mut ok = true;
        for (index, file) in files.iter().enumerate() {
            let id = file.id.clone().unwrap_or_else(|| format!("{tool_name}.escalate.{}", index + 1));
            let rule = self.rule(&file.rule, scope, &format!("rule '{id}'"));
            let reason = self.template(&file.reason, scope, &format!("rule '{id}' reason"));
            let action = self.template(&file.recommended_action, scope, &format!("rule '{id}' recommended_action"));
            let urgency = match names.urgency_levels.iter().position(|u| u == file.urgency.get_ref()) {
                Some(rank) => Some(Urgency { rank, name: file.urgency.get_ref().clone() }),
                None => {
                    self.problem(
                        &file.urgency.span(),
                        format!(
                            "rule '{id}' has urgency '{}', which is not one of {}",
                            file.urgency.get_ref(),
                            names.urgency_levels.join(", ")
                        ),
                    );
                    None
                }
            };
            match (rule, reason, action, urgency) {
                (Some(rule), Some(reason), Some(recommended_action), Some(urgency)) => rules.push(EscalationRule {
                    id,
                    rule,
                    reason,
                    urgency,
                    recommended_action,
                    policy: Policy { refs: file.policy.clone(), description: file.description.clone() },
                }),
                _ => ok = false,
            }
        }
        ok.then_some(rules)
    }

    fn mappings(
        &mut self,
        tool_name: &str,
        kind: &str,
        files: &[MappingFile],
        facts: &[FactDecl],
        names: &Names,
        arg_fields: &Option<BTreeSet<String>>,
    ) -> Option<Vec<Mapping>> {
        // Facts come from results, never from the model's words: field values
        // see only `result`. Two exceptions, both about *which* instance the
        // result describes, never about what it says: an update finds its
        // instance by the call's arguments, and an establish may take a keyed
        // fact's key field from them (get_flight_status(flight, date) answers
        // with a bare status; the key is the flight and date it was asked
        // about). Conditions (`when`) may read the session's facts and the
        // call's arguments: which question the result answers decides
        // whether it establishes anything (`tests_passed` only when the
        // command that exited 0 was the test command), never what it holds.
        let result_scope = Scope { result: true, ..Scope::default() };
        let key_scope = Scope { result: true, args: Some(arg_fields.clone()), ..Scope::default() };
        let when_scope = Scope {
            result: true,
            args: Some(arg_fields.clone()),
            all_facts: Some(all_facts(facts)),
            ..Scope::default()
        };
        let mut mappings = Vec::new();
        let mut ok = true;
        for file in files {
            let what = format!("tool '{tool_name}' {kind} '{}'", file.fact.get_ref());
            let Some(&fact) = names.facts.get(file.fact.get_ref()) else {
                self.problem(&file.fact.span(), format!("{what}: unknown fact"));
                ok = false;
                continue;
            };
            let decl = facts.get(fact.0);
            let declared = decl.map(|d| &d.fields);
            let mut fields = Vec::new();
            for (field, source) in &file.fields {
                if !declared.is_some_and(|d| d.contains_key(field)) {
                    self.problem(&source.span(), format!("{what}: fact has no field '{field}'"));
                    ok = false;
                    continue;
                }
                let is_key = kind == "establishes" && decl.and_then(|d| d.key_field.as_deref()) == Some(field.as_str());
                let scope = if is_key { &key_scope } else { &result_scope };
                match self.rule(source, scope, &format!("{what} field '{field}'")) {
                    Some(rule) => fields.push((field.clone(), rule)),
                    None => ok = false,
                }
            }
            let key_field = decl.and_then(|d| d.key_field.clone());
            let key =
                match (&file.key, kind, &key_field) {
                    (Some(key), "updates", Some(_)) => self.rule(key, &key_scope, &format!("{what} key")),
                    (None, "updates", Some(_)) => {
                        self.problem(&file.fact.span(), format!("{what}: say which instance with key = \"...\""));
                        None
                    }
                    (Some(key), _, _) => {
                        self.problem(&key.span(), format!(
                        "{what}: key is only for updates of keyed facts; an establish takes the key from its fields"
                    ));
                        None
                    }
                    (None, _, _) => None,
                };
            if kind == "updates" && key_field.is_some() && key.is_none() {
                ok = false;
            }
            if kind == "establishes" {
                let missing: Vec<&String> =
                    declared.map(|d| d.keys().filter(|f| !file.fields.contains_key(*f)).collect()).unwrap_or_default();
                if !missing.is_empty() {
                    let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                    self.problem(
                        &file.fact.span(),
                        format!("{what}: every field must be mapped; missing {}", list.join(", ")),
                    );
                    ok = false;
                }
            }
            let when = match &file.when {
                Some(when) => match self.rule(when, &when_scope, &format!("{what} when")) {
                    Some(rule) => Some(rule),
                    None => {
                        ok = false;
                        None
                    }
                },
                None => None,
            };
            mappings.push(Mapping { fact, key, when, fields });
        }
        ok.then_some(mappings)
    }
}

/// Every declared fact for `facts.<name>`: single facts with their fields.
fn all_facts(facts: &[FactDecl]) -> Vec<(String, Option<BTreeSet<String>>)> {
    facts
        .iter()
        .map(|f| (f.name.to_string(), f.key_field.is_none().then(|| f.fields.keys().cloned().collect())))
        .collect()
}

fn fact_fields(facts: &[FactDecl], id: FactId) -> BTreeSet<String> {
    facts.get(id.0).map(|f| f.fields.keys().cloned().collect()).unwrap_or_default()
}
