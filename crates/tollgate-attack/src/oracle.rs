//! The oracle: what must hold for every allowed call, judged without the
//! core's evaluator. Declared invariants run in the `cel` crate's own
//! interpreter over a view of the session (facts as CEL maps, counters and
//! aggregate totals) built from `SessionState`'s public accessors; the
//! built-in invariants need no declaration.
//!
//! In this view every number is a double (JSON does not tell `800` from
//! `800.0`, and CEL would refuse `int + double`); keys of keyed facts are
//! strings; `now` (the call's session clock), `timestamp(...)` and
//! `duration(...)` are seconds (see `functions.rs`).

use crate::Error;
use cel::objects::{Key, Map as CelMap};
use cel::{Context, Env, Program, Value as Cel};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tollgate_core::{SessionState, ToolCall, Workflow};

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
    env: Arc<Env>,
    /// Per tool name, the declared invariants covering it.
    by_tool: BTreeMap<String, Vec<Declared>>,
    /// Per tool name, its gates: (fact index, key program).
    gates: BTreeMap<String, Vec<(usize, Option<Program>)>>,
    aggregates: Vec<String>,
    declared: usize,
}

impl Oracle {
    /// Parses the workflow's invariants (and gate keys) with the `cel` crate.
    pub fn new(workflow: &Workflow) -> Result<Oracle, Error> {
        let env = Arc::new(Env::stdlib());
        let mut by_tool: BTreeMap<String, Vec<Declared>> = BTreeMap::new();
        for invariant in workflow.invariants() {
            for tool in invariant.tool_names() {
                let program = env.compile(invariant.rule()).map_err(|e| Error::Oracle {
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
        let mut gates = BTreeMap::new();
        for tool in workflow.tools() {
            let mut list = Vec::new();
            for gate in tool.gates() {
                let fact = workflow
                    .facts()
                    .iter()
                    .position(|f| Some(f.name()) == workflow.fact(gate.fact()).map(|d| d.name()));
                let key = match gate.key_source() {
                    Some(source) => {
                        let parsed = env.compile(source);
                        Some(parsed.map_err(|e| Error::Oracle {
                            what: format!("gate key {source}"),
                            message: e.to_string(),
                        })?)
                    }
                    None => None,
                };
                if let Some(fact) = fact {
                    list.push((fact, key));
                }
            }
            gates.insert(tool.name().to_owned(), list);
        }
        Ok(Oracle {
            env,
            by_tool,
            gates,
            aggregates: workflow.aggregates().iter().map(|a| a.name().to_owned()).collect(),
            declared: workflow.invariants().len(),
        })
    }

    /// How many invariants the workflow declares.
    pub fn declared(&self) -> usize {
        self.declared
    }

    /// Judges an allowed call against the state the session had before it.
    pub fn check_allowed(&self, workflow: &Workflow, before: &SessionState, call: &ToolCall) -> Option<Broken> {
        if let Some(broken) = self.prerequisites(workflow, before, call) {
            return Some(broken);
        }
        let declared = self.by_tool.get(&call.tool)?;
        let view = View::of(workflow, before, &self.aggregates, &call.args);
        for invariant in declared {
            let verdict = self.evaluate(&invariant.program, &view, call);
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

    /// Every gate's fact instance existed before the call: facts exist in
    /// the state only once a tool's result was recorded.
    fn prerequisites(&self, workflow: &Workflow, before: &SessionState, call: &ToolCall) -> Option<Broken> {
        let gates = self.gates.get(&call.tool)?;
        let facts = before.facts(workflow);
        for (fact, key) in gates {
            let name = workflow.facts().get(*fact).map_or("?", |f| f.name());
            let wanted = match key {
                None => None,
                Some(program) => {
                    let mut context = Context::with_env(Arc::clone(&self.env));
                    context.add_variable_from_value("args", to_cel(&call.args));
                    match program.execute(&context) {
                        Ok(Cel::String(text)) => Some(text.as_str().to_owned()),
                        Ok(Cel::Int(n)) => Some(n.to_string()),
                        Ok(Cel::UInt(n)) => Some(n.to_string()),
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
            if !facts.iter().any(|(n, k, _)| *n == name && *k == wanted.as_deref()) {
                let instance = wanted.map_or_else(|| name.to_owned(), |k| format!("{name}[{k}]"));
                return Some(Broken {
                    invariant: PREREQUISITE_RECORDED.into(),
                    message: format!("{} was allowed before a recorded result established {instance}", call.tool),
                });
            }
        }
        None
    }

    fn evaluate(&self, program: &Program, view: &View, call: &ToolCall) -> Result<Cel, String> {
        let mut context = Context::with_env(Arc::clone(&self.env));
        context.add_variable_from_value("args", to_cel(&call.args));
        // A call without a session clock has no `now`: a rule reading it
        // cannot be evaluated, which is a violation.
        if let Some(now_ms) = call.now_ms {
            context.add_variable_from_value("now", Cel::Float(now_ms as f64 / 1000.0));
        }
        crate::functions::add(&mut context)?;
        context.add_variable_from_value("facts", view.facts.clone());
        context.add_variable_from_value("session", view.session.clone());
        for (name, by_key) in &view.by_key {
            let by_key = Arc::clone(by_key);
            context
                .add_function(name, move |key: Arc<String>| -> f64 { by_key.get(key.as_str()).copied().unwrap_or(0.0) })
                .map_err(|e| format!("aggregate {name} cannot be a function here: {e:?}"))?;
        }
        program.execute(&context).map_err(|e| e.to_string())
    }
}

/// The session as an invariant sees it.
struct View {
    facts: Cel,
    session: Cel,
    by_key: Vec<(String, Arc<HashMap<String, f64>>)>,
}

impl View {
    fn of(workflow: &Workflow, state: &SessionState, aggregates: &[String], args: &Json) -> View {
        // `SessionState` answers an aggregate for a key it is asked about;
        // the keys an invariant can ask about are this call's values and
        // the keys of facts held.
        let mut keys: Vec<String> = Vec::new();
        collect_strings(args, &mut keys);
        let mut facts: HashMap<Key, Cel> = HashMap::new();
        let mut keyed: BTreeMap<&str, HashMap<Key, Cel>> = BTreeMap::new();
        for decl in workflow.facts() {
            if decl.key_field().is_some() {
                keyed.insert(decl.name(), HashMap::new());
            }
        }
        for (name, key, value) in state.facts(workflow) {
            if let Some(key) = key
                && !keys.iter().any(|k| k == key)
            {
                keys.push(key.to_owned());
            }
            let value = to_cel(&value.to_json());
            match (key, keyed.get_mut(name)) {
                (Some(key), Some(instances)) => {
                    instances.insert(Key::String(Arc::new(key.to_owned())), value);
                }
                _ => {
                    facts.insert(Key::String(Arc::new(name.to_owned())), value);
                }
            }
        }
        for (name, instances) in keyed {
            facts.insert(Key::String(Arc::new(name.to_owned())), Cel::Map(CelMap { map: Arc::new(instances) }));
        }
        let mut session: HashMap<Key, Cel> = HashMap::new();
        let mut put = |name: &str, value: Cel| {
            session.insert(Key::String(Arc::new(name.to_owned())), value);
        };
        put("blocked_calls", Cel::Float(state.blocked_calls() as f64));
        put("allowed_calls", Cel::Float(state.allowed_calls() as f64));
        put("escalations", Cel::Float(state.escalations() as f64));
        let mut by_key = Vec::new();
        for (index, name) in aggregates.iter().enumerate() {
            put(name, Cel::Float(state.aggregate_total(index)));
            let totals = keys.iter().map(|k| (k.clone(), state.aggregate_by(index, k))).collect();
            by_key.push((name.clone(), Arc::new(totals)));
        }
        View {
            facts: Cel::Map(CelMap { map: Arc::new(facts) }),
            session: Cel::Map(CelMap { map: Arc::new(session) }),
            by_key,
        }
    }
}

fn collect_strings(json: &Json, out: &mut Vec<String>) {
    match json {
        Json::String(text) if !out.contains(text) => out.push(text.clone()),
        Json::Array(items) => items.iter().for_each(|item| collect_strings(item, out)),
        Json::Object(object) => object.values().for_each(|item| collect_strings(item, out)),
        _ => {}
    }
}

/// JSON as the oracle sees it: every number a double.
pub fn to_cel(json: &Json) -> Cel {
    match json {
        Json::Null => Cel::Null,
        Json::Bool(b) => Cel::Bool(*b),
        Json::Number(n) => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Cel::String(Arc::new(s.clone())),
        Json::Array(items) => Cel::List(Arc::new(items.iter().map(to_cel).collect())),
        Json::Object(object) => Cel::Map(CelMap {
            map: Arc::new(object.iter().map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v))).collect()),
        }),
    }
}
