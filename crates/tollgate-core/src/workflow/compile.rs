//! `compile`: from workflow text to a [`Workflow`], or every problem found,
//! each with its line and column. This file holds the entry point and the
//! workflow-wide parts (limits, facts, aggregates, handoff); one tool is
//! compiled in `compile_tool`, invariants in `invariants`, and the context
//! they all report into is `compiler`.

use super::compiler::{Compiler, Names, Problem, schema_fields};
use super::file::{ToolFile, WorkflowFile};
use super::invariants::InvariantNames;
use super::{Aggregate, FactDecl, FactId, FieldType, HandoffSpec, Tool, ToolId, Workflow, analysis};
use crate::expr::Scope;
use crate::limits::Limits;
use std::collections::{BTreeMap, BTreeSet};

/// Longest workflow name accepted, in bytes.
const WORKFLOW_NAME_MAX: usize = 128;

/// What is wrong with a workflow's name, if anything: it is stored with
/// every session and shown to people, so it must be a line of text of at
/// most 128 bytes. Checked where a workflow file is validated or a
/// workflow registered, not by [`compile`]: a workflow stored before this
/// check must still load.
pub fn name_problem(name: &str) -> Option<String> {
    (name.trim().is_empty() || name.len() > WORKFLOW_NAME_MAX || name.chars().any(char::is_control)).then(|| {
        format!(
            "workflow.name must be 1 to {WORKFLOW_NAME_MAX} bytes of text without control characters, not {:?}",
            name.chars().take(40).collect::<String>()
        )
    })
}

/// Compiles workflow text. `file` names the source in problems.
pub fn compile(text: &str, file: &str) -> Result<Workflow, Vec<Problem>> {
    let mut compiler = Compiler::new(text, file);
    let defaults = Limits::default();
    if text.len() > defaults.workflow_bytes_max {
        compiler.problem_at(
            0,
            format!(
                "the workflow file is {} bytes, over the limit of {} bytes",
                text.len(),
                defaults.workflow_bytes_max
            ),
        );
        return Err(compiler.into_problems());
    }
    let parsed: WorkflowFile = match toml::from_str(text) {
        Ok(parsed) => parsed,
        Err(error) => {
            let offset = error.span().map_or(0, |s| s.start);
            let message = error.message().trim().to_owned();
            compiler.problem_at(offset, format!("malformed workflow: {message}"));
            return Err(compiler.into_problems());
        }
    };
    // One thread with a parser-sized stack for every rule of the workflow.
    let built = crate::expr::on_parser_stack(|| {
        let workflow = compiler.build(parsed);
        (workflow, compiler)
    });
    let (workflow, compiler) = match built {
        Ok(built) => built,
        Err(message) => {
            let mut compiler = Compiler::new(text, file);
            compiler.problem_at(0, message);
            return Err(compiler.into_problems());
        }
    };
    compiler.finish(workflow)
}

impl Compiler<'_> {
    fn build(&mut self, parsed: WorkflowFile) -> Option<Workflow> {
        let limits = self.limits(&parsed);
        let facts = self.facts(&parsed);
        if parsed.tools.len() > limits.tools_max {
            self.problem_at(
                0,
                format!("the workflow declares {} tools, over the limit of {}", parsed.tools.len(), limits.tools_max),
            );
        }
        let urgency_levels = parsed
            .handoff
            .as_ref()
            .map(|h| h.get_ref().urgency_levels.clone())
            .unwrap_or_else(|| ["low", "normal", "high", "critical"].map(String::from).to_vec());
        let names = Names {
            facts: facts.iter().enumerate().map(|(i, f)| (f.name.to_string(), FactId(i))).collect(),
            tools: parsed.tools.keys().enumerate().map(|(i, name)| (name.get_ref().clone(), ToolId(i))).collect(),
            aggregates: parsed.aggregates.keys().map(|k| k.get_ref().clone()).collect(),
            urgency_levels,
        };
        // Names are shown to people, stored and indexed: one line of text each.
        let named = parsed
            .tools
            .keys()
            .map(|n| ("tool", n))
            .chain(parsed.facts.keys().map(|n| ("fact", n)))
            .chain(parsed.aggregates.keys().map(|n| ("aggregate", n)));
        let unprintable: Vec<(&str, &toml::Spanned<String>)> = named
            .filter(|(_, name)| name.get_ref().is_empty() || name.get_ref().chars().any(char::is_control))
            .collect();
        for (what, name) in unprintable {
            self.problem(
                &name.span(),
                format!("{what} name {:?} must be text without control characters", name.get_ref()),
            );
        }
        if names.urgency_levels.iter().any(|level| level.is_empty() || level.chars().any(char::is_control)) {
            self.problem_at(0, "handoff urgency levels must be text without control characters".into());
        }
        let handoff_tool = parsed.handoff.as_ref().map(|h| h.get_ref().tool.get_ref().clone());
        let mut tools = Vec::with_capacity(parsed.tools.len());
        for (index, (name, tool)) in parsed.tools.iter().enumerate() {
            let is_handoff = handoff_tool.as_deref() == Some(name.get_ref().as_str());
            tools.push(self.tool(ToolId(index), name, tool, &facts, &names, &limits, is_handoff));
        }
        let aggregates = self.aggregates(&parsed, &names);
        let handoff = self.handoff(&parsed, &names);
        let mut facts = facts;
        for tool in tools.iter().flatten() {
            for mapping in &tool.establishes {
                if let Some(fact) = facts.get_mut(mapping.fact.0)
                    && !fact.established_by.contains(&tool.id)
                {
                    fact.established_by.push(tool.id);
                }
            }
        }
        let tools: Vec<Tool> = tools.into_iter().flatten().collect();
        if tools.len() != parsed.tools.len() {
            return None;
        }
        let arg_fields =
            parsed.tools.iter().map(|(n, t)| (n.get_ref().clone(), declared_arg_fields(t.get_ref()))).collect();
        let invariants = self.invariants(
            &parsed.invariants,
            &InvariantNames {
                facts: &facts,
                tools: &names.tools,
                arg_fields: &arg_fields,
                aggregates: &names.aggregates,
            },
        );
        let tool_names = self.tool_names(parsed.tool_names.as_ref(), |name| names.tools.contains_key(name));
        let analysis = analysis::analyse(&facts, &tools);
        for problem in analysis.problems() {
            let span =
                parsed.tools.iter().find(|(name, _)| name.get_ref() == &problem.tool).map_or(0..0, |(_, t)| t.span());
            self.problem(&span, problem.message.clone());
        }
        Some(Workflow {
            name: parsed.workflow.name,
            version: parsed.workflow.version,
            description: parsed.workflow.description,
            limits,
            facts,
            aggregates: aggregates?,
            tool_index: names.tools,
            tools,
            handoff,
            analysis,
            invariants,
            warnings: Vec::new(),
            tool_names,
        })
    }

    fn limits(&mut self, parsed: &WorkflowFile) -> Limits {
        let mut limits = Limits::default();
        let given = &parsed.limits;
        if let Some(v) = given.args_bytes_max {
            limits.args_bytes_max = v;
        }
        if let Some(v) = given.result_bytes_max {
            limits.result_bytes_max = v;
        }
        if let Some(v) = given.facts_max {
            limits.facts_max = v;
        }
        if let Some(v) = given.pending_calls_max {
            limits.pending_calls_max = v;
        }
        if let Some(v) = given.evaluation_steps_max {
            limits.evaluation_steps_max = v;
        }
        if let Some(v) = given.history_entries_max {
            limits.history_entries_max = v;
        }
        if let Some(v) = given.text_bytes_max {
            limits.text_bytes_max = v;
        }
        limits
    }

    fn facts(&mut self, parsed: &WorkflowFile) -> Vec<FactDecl> {
        let mut facts = Vec::new();
        for (name, fact) in &parsed.facts {
            let mut fields = BTreeMap::new();
            for (field, kind) in &fact.fields {
                match FieldType::parse(kind.get_ref()) {
                    Some(kind) => {
                        fields.insert(field.clone(), kind);
                    }
                    None => self.problem(
                        &kind.span(),
                        format!(
                            "fact '{}' field '{field}' has unknown type '{}' (use string, int, double, bool, list, map or any)",
                            name.get_ref(),
                            kind.get_ref()
                        ),
                    ),
                }
            }
            if let Some(key) = &fact.key
                && !fields.contains_key(key.get_ref())
            {
                self.problem(
                    &key.span(),
                    format!(
                        "fact '{}' is keyed by '{}', which is not one of its fields",
                        name.get_ref(),
                        key.get_ref()
                    ),
                );
            }
            facts.push(FactDecl {
                name: std::sync::Arc::from(name.get_ref().as_str()),
                description: fact.description.clone(),
                key_field: fact.key.as_ref().map(|k| k.get_ref().clone()),
                fields,
                identity: fact.identity,
                missing: fact.missing.clone(),
                established_by: Vec::new(),
            });
        }
        facts
    }

    fn aggregates(&mut self, parsed: &WorkflowFile, names: &Names) -> Option<Vec<Aggregate>> {
        let mut aggregates = Vec::new();
        let mut ok = true;
        for (name, file) in &parsed.aggregates {
            let Some(&tool) = names.tools.get(file.tool.get_ref()) else {
                self.problem(
                    &file.tool.span(),
                    format!("aggregate '{}' counts unknown tool '{}'", name.get_ref(), file.tool.get_ref()),
                );
                ok = false;
                continue;
            };
            let arg_fields =
                parsed.tools.get(file.tool.get_ref().as_str()).and_then(|t| declared_arg_fields(t.get_ref()));
            let scope = Scope { args: Some(arg_fields), ..Scope::default() };
            let sum = self.rule(&file.sum, &scope, &format!("aggregate '{}' sum", name.get_ref()));
            if let (Some(sum), Some(tool_file)) = (&sum, parsed.tools.get(file.tool.get_ref().as_str())) {
                self.sign_warning(&file.sum.span(), name.get_ref(), file.tool.get_ref(), sum, tool_file.get_ref());
            }
            let by = match &file.by {
                Some(by) => self.rule(by, &scope, &format!("aggregate '{}' by", name.get_ref())).map(Some),
                None => Some(None),
            };
            if let (Some(Some(key)), Some(spanned)) = (&by, &file.by) {
                let schema = parsed
                    .tools
                    .get(file.tool.get_ref().as_str())
                    .and_then(|t| t.get_ref().args.as_ref())
                    .and_then(|args| serde_json::to_value(args.get_ref()).ok());
                self.key_warning(
                    &spanned.span(),
                    &format!("aggregate '{}'", name.get_ref()),
                    key,
                    schema.as_ref(),
                    &format!("aggregate.{}", name.get_ref()),
                );
            }
            match (sum, by) {
                (Some(sum), Some(by)) => aggregates.push(Aggregate {
                    name: name.get_ref().clone(),
                    description: file.description.clone(),
                    tool,
                    sum,
                    by,
                }),
                _ => ok = false,
            }
        }
        ok.then_some(aggregates)
    }

    fn handoff(&mut self, parsed: &WorkflowFile, names: &Names) -> Option<HandoffSpec> {
        let spanned = parsed.handoff.as_ref()?;
        let handoff = spanned.get_ref();
        let Some(&tool) = names.tools.get(handoff.tool.get_ref()) else {
            self.problem(
                &handoff.tool.span(),
                format!("handoff tool '{}' is not a declared tool", handoff.tool.get_ref()),
            );
            return None;
        };
        let known = ["customer_id", "conversation_summary", "root_cause", "recommended_action", "urgency"];
        for field in &handoff.required {
            if !known.contains(&field.get_ref().as_str()) {
                self.problem(
                    &field.span(),
                    format!(
                        "handoff field '{}' is not one Tollgate fills (known: {})",
                        field.get_ref(),
                        known.join(", ")
                    ),
                );
            }
        }
        if handoff.urgency_levels.is_empty() {
            self.problem(&spanned.span(), "handoff urgency_levels must name at least one level".into());
        }
        let expires_after_ms = match &handoff.expires_after {
            None => super::HANDOFF_EXPIRES_AFTER_MS,
            Some(text) => match crate::value::parse_duration(text.get_ref()) {
                Ok(nanos) if nanos > 0 => nanos / 1_000_000,
                Ok(_) => {
                    self.problem(&text.span(), "handoff expires_after must be longer than zero".into());
                    super::HANDOFF_EXPIRES_AFTER_MS
                }
                Err(error) => {
                    self.problem(&text.span(), format!("handoff expires_after: {error}"));
                    super::HANDOFF_EXPIRES_AFTER_MS
                }
            },
        };
        Some(HandoffSpec {
            tool,
            required: handoff.required.iter().map(|f| f.get_ref().clone()).collect(),
            urgency_levels: handoff.urgency_levels.clone(),
            tool_runs: handoff.tool_runs,
            expires_after_ms,
        })
    }
}

/// The top-level properties a tool's argument schema declares; `None` when
/// the tool has no schema (then any field may be read).
fn declared_arg_fields(tool: &ToolFile) -> Option<BTreeSet<String>> {
    let args = tool.args.as_ref()?;
    serde_json::to_value(args.get_ref()).ok().map(|json| schema_fields(&json))
}
