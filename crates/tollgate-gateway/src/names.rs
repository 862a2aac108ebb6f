//! Tool names: how an upstream's tool is named to the client and which
//! workflow tool decides it, and what a listed tool's description says.

use tollgate_core::Workflow;

/// The name a client sees for `tool` of upstream `upstream`: the tool's own
/// name when the gateway has one upstream, `upstream__tool` when several.
pub(crate) fn exposed_name(upstream: &str, tool: &str, upstreams: usize) -> String {
    if upstreams > 1 { format!("{upstream}__{tool}") } else { tool.to_owned() }
}

/// The workflow tool that decides a call to the client-facing tool
/// `exposed`, if the workflow declares one.
///
/// The one place the mapping lives: today a workflow names the tools as the
/// client sees them (`upstream__tool` with several upstreams); a mapping
/// declared in the workflow (the hook's issue adds one) is to be read here.
pub fn workflow_tool_name<'w>(workflow: &'w Workflow, exposed: &str) -> Option<&'w str> {
    workflow.tool(exposed).map(|tool| tool.name())
}

/// What a model should know before calling a guarded tool: its gates and
/// the facts every path to it must establish (the static analysis
/// `tollgate validate` prints), in one sentence to append to its
/// description. `None` for an unguarded tool.
pub fn describe_prerequisites(workflow: &Workflow, tool: &str) -> Option<String> {
    let declared = workflow.tool(tool)?;
    let mut gates: Vec<&str> = Vec::new();
    for gate in declared.gates() {
        if !gates.contains(&gate.text()) {
            gates.push(gate.text());
        }
    }
    if gates.is_empty() {
        return None;
    }
    let mut text = format!("[Tollgate] Runs only after: {}.", gates.join(", "));
    if let Some(guarded) = workflow.analysis().guarded().iter().find(|g| g.tool == tool) {
        let needs: Vec<String> = guarded
            .must_establish
            .iter()
            .map(|fact| {
                let description = workflow.facts().iter().find(|f| f.name() == fact).and_then(|f| f.description());
                match description {
                    Some(description) => format!("{fact} ({})", description.trim_end_matches('.')),
                    None => fact.clone(),
                }
            })
            .collect();
        if !needs.is_empty() {
            text.push_str(&format!(" Every path to it establishes first: {}.", needs.join("; ")));
        }
    }
    Some(text)
}
