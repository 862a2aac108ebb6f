//! The oracle: what must hold for every allowed call, judged without the
//! core's evaluator and without the core's session state. Declared invariants
//! run in the `cel` crate's own interpreter over the oracle's own fold of the
//! session (`fold.rs`: facts as CEL maps, counters and aggregate totals, from
//! the events the hunt fed in); the built-in invariants need no declaration.
//!
//! In this view every number is a double (JSON does not tell `800` from
//! `800.0`, and CEL would refuse `int + double`); keys of keyed facts are
//! strings; `now` (the call's session clock), `timestamp(...)` and
//! `duration(...)` are seconds (see `functions.rs`).

use crate::Error;
use crate::fold::{Fold, key_text, to_cel};
use crate::spec::Spec;
use cel::{Context, Program, Value as Cel};
use std::collections::BTreeMap;
use std::sync::Arc;
use tollgate_core::{ToolCall, Workflow};

/// Built-in invariant: an identity fact never changes once set.
pub const IDENTITY_UNCHANGED: &str = "tollgate.identity-unchanged";
/// Built-in invariant: every gate of an allowed call was met by a recorded result.
pub const PREREQUISITE_RECORDED: &str = "tollgate.prerequisite-recorded";
/// Built-in invariant: a side-effecting call id is allowed once.
pub const CALL_ID_ONCE: &str = "tollgate.side-effect-call-id-once";
/// Built-in invariant: an idempotency key is executed once.
pub const KEY_EXECUTES_ONCE: &str = "tollgate.idempotency-key-executes-once";
/// Built-in invariant: a result counts once; the engine's stored state is
/// the fold of its own decisions and first results.
pub const RESULT_COUNTS_ONCE: &str = "tollgate.result-counts-once";

/// The built-in invariants and what each means.
pub const BUILT_IN: [(&str, &str); 5] = [
    (IDENTITY_UNCHANGED, "an identity fact never changes once set"),
    (PREREQUISITE_RECORDED, "an allowed call's required facts were established by recorded results"),
    (CALL_ID_ONCE, "no side-effecting call id is allowed twice"),
    (KEY_EXECUTES_ONCE, "no idempotency key executes twice through the engine"),
    (RESULT_COUNTS_ONCE, "a result counts once: the engine's state is the fold of its decisions"),
];

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    /// The invariant's id.
    pub invariant: String,
    /// What it means, and what the oracle saw.
    pub message: String,
}

struct Declared {
    id: String,
    message: String,
    program: Program,
}

/// The compiled oracle of one workflow.
pub struct Oracle {
    /// What its fold reads of the workflow.
    spec: Spec,
    /// Per tool name, the declared invariants covering it.
    by_tool: BTreeMap<String, Vec<Declared>>,
    declared: usize,
}

impl Oracle {
    /// Reads what the oracle needs of the workflow from its text (`workflow`
    /// is that text compiled by the core: its invariants, its limits) and
    /// parses every rule with the `cel` crate.
    pub fn new(workflow: &Workflow, text: &str) -> Result<Oracle, Error> {
        let spec = Spec::read(text, workflow.limits())?;
        let mut by_tool: BTreeMap<String, Vec<Declared>> = BTreeMap::new();
        for invariant in workflow.invariants() {
            for tool in invariant.tool_names() {
                let program = spec.env.compile(invariant.rule()).map_err(|e| Error::Oracle {
                    what: format!("invariant {}", invariant.id()),
                    message: e.to_string(),
                })?;
                by_tool.entry(tool.clone()).or_default().push(Declared {
                    id: invariant.id().to_owned(),
                    message: invariant.message().to_owned(),
                    program,
                });
            }
        }
        Ok(Oracle { spec, by_tool, declared: workflow.invariants().len() })
    }

    /// How many invariants the workflow declares.
    pub fn declared(&self) -> usize {
        self.declared
    }

    /// A new session, as the oracle folds it.
    pub fn fold(&self) -> Fold<'_> {
        Fold::new(&self.spec)
    }

    /// Judges an allowed call against the session the oracle folded before it.
    pub fn check_allowed(&self, before: &Fold<'_>, call: &ToolCall) -> Option<Broken> {
        if let Some(broken) = self.prerequisites(before, call) {
            return Some(broken);
        }
        let declared = self.by_tool.get(&call.tool)?;
        let context = self.context(before, call);
        for invariant in declared {
            let verdict = match &context {
                Ok(context) => invariant.program.execute(context).map_err(|e| e.to_string()),
                Err(error) => Err(error.clone()),
            };
            let seen = match verdict {
                Ok(Cel::Bool(true)) => continue,
                Ok(Cel::Bool(false)) => "the rule is false".to_owned(),
                Ok(other) => format!("the rule gave {other:?}, not a boolean"),
                Err(error) => format!("the rule could not be evaluated: {error}"),
            };
            return Some(Broken {
                invariant: invariant.id.clone(),
                message: format!("{} ({seen})", invariant.message),
            });
        }
        None
    }

    /// Every gate's fact instance was held before the call: facts exist in
    /// the fold only once a tool's result was recorded.
    fn prerequisites(&self, before: &Fold<'_>, call: &ToolCall) -> Option<Broken> {
        let gates = &self.spec.tools.get(&call.tool)?.gates;
        for gate in gates {
            let name = &gate.fact;
            let wanted = match &gate.key {
                None => None,
                Some(program) => {
                    let mut context = Context::with_env(Arc::clone(&self.spec.env));
                    context.add_variable_from_value("args", to_cel(&call.args));
                    match program.execute(&context) {
                        Ok(value) if key_text(&value).is_some() => key_text(&value),
                        other => {
                            return Some(Broken {
                                invariant: PREREQUISITE_RECORDED.into(),
                                message: format!(
                                    "{} was allowed though the key of its {name} gate is {other:?}",
                                    call.tool
                                ),
                            });
                        }
                    }
                }
            };
            if !before.has(name, wanted.as_deref()) {
                let instance = wanted.map_or_else(|| name.to_owned(), |k| format!("{name}[{k}]"));
                return Some(Broken {
                    invariant: PREREQUISITE_RECORDED.into(),
                    message: format!("{} was allowed before a recorded result established {instance}", call.tool),
                });
            }
        }
        None
    }

    /// What an invariant reads about `call`, made before it: `args`, `now`,
    /// `facts`, `session`, `<aggregate>(key)` and the functions of `functions.rs`.
    fn context(&self, before: &Fold<'_>, call: &ToolCall) -> Result<Context<'static, 'static>, String> {
        let mut context = Context::with_env(Arc::clone(&self.spec.env));
        context.add_variable_from_value("args", to_cel(&call.args));
        // A call without a session clock has no `now`: a rule reading it
        // cannot be evaluated, which is a violation.
        if let Some(now_ms) = call.now_ms {
            context.add_variable_from_value("now", Cel::Float(now_ms as f64 / 1000.0));
        }
        crate::functions::add(&mut context)?;
        context.add_variable_from_value("facts", before.facts());
        context.add_variable_from_value("session", before.session());
        for aggregate in &self.spec.aggregates {
            let by_key = Arc::new(before.by_key(&aggregate.name));
            context
                .add_function(&aggregate.name, move |key: Arc<String>| -> f64 {
                    by_key.get(key.as_str()).copied().unwrap_or(0.0)
                })
                .map_err(|e| format!("aggregate {} cannot be a function here: {e:?}", aggregate.name))?;
        }
        Ok(context)
    }
}
