//! The test file: TOML beside the workflow (`refunds.toml` →
//! `refunds.tests.toml`), a list of scripted sessions, each step a call with
//! the verdict and rules it must get, or a reviewer's action on a handoff.
//!
//! ```toml
//! workflow = "refunds.toml"          # optional: the name without `.tests`
//! now = "2024-05-15T15:00:00Z"       # optional: the session clock of every call
//! context = { project_dir = "/p" }   # optional: what the client says about every call (`context`)
//!
//! [[test]]
//! name = "a refund before the customer is verified is blocked"
//! steps = [
//!   { call = "process_refund", args = { order_id = "o1", amount = 30 }, expect = "block", rule = "order-read" },
//! ]
//! ```

use serde::Deserialize;
use serde_json::Value as Json;
use tollgate_core::trace::SessionTime;

/// A test file, read and checked.
#[derive(Debug)]
pub struct TestFile {
    /// The workflow the tests are for, as written in the file (relative to it).
    pub workflow: Option<String>,
    /// The tests, in the file's order.
    pub tests: Vec<Test>,
}

/// One scripted session.
#[derive(Debug)]
pub struct Test {
    /// What it shows, in words: the name the report prints.
    pub name: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One step of a test.
#[derive(Debug)]
pub enum Step {
    /// The agent calls a tool.
    Call(CallStep),
    /// A reviewer acts on the handoff of an escalated call.
    Human(HumanStep),
}

/// A call, what comes back, and what the test expects of it.
#[derive(Debug)]
pub struct CallStep {
    /// The call's id: as written, or `c<n>` for the test's n-th call.
    pub id: String,
    /// The tool.
    pub tool: String,
    /// The arguments.
    pub args: Json,
    /// The session clock, in milliseconds since the epoch.
    pub now_ms: Option<i64>,
    /// The agent's summary sent with the call.
    pub summary: Option<String>,
    /// What the client says about the call (`context` in rules): the
    /// step's, else its test's, else the file's.
    pub context: Option<Json>,
    /// What the tool returns, fed when the call is allowed.
    pub outcome: Option<Outcome>,
    /// The verdict expected.
    pub expect: Expect,
    /// Rule ids that must be among the decision's (or the withholding's) reasons.
    pub rules: Vec<String>,
    /// Text that must appear in one of the reasons.
    pub message: Option<String>,
}

/// A tool's answer.
#[derive(Debug)]
pub enum Outcome {
    /// The tool succeeded with this result.
    Result(Json),
    /// The tool failed with this error.
    Error(Json),
}

/// What a call step expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Allowed (and its result, if any, not withheld).
    Allow,
    /// Blocked.
    Block,
    /// Escalated to a human.
    Escalate,
    /// Allowed, and its result withheld by a result check.
    Withheld,
}

impl Expect {
    /// The word the file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Allow => "allow",
            Expect::Block => "block",
            Expect::Escalate => "escalate",
            Expect::Withheld => "withheld",
        }
    }
}

/// A reviewer's action.
#[derive(Debug)]
pub struct HumanStep {
    /// The escalated call whose handoff it is.
    pub handoff: String,
    /// The action (`claim`, `release`, `approve`, `deny`, `resolve`, `expire`).
    pub action: tollgate_core::human::HumanAction,
    /// The session clock of the action.
    pub now_ms: i64,
    /// Whether the action must be refused (the handoff's state does not allow it).
    pub refused: bool,
}

/// Why a test file cannot be used: the place and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError(pub String);

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FileError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    workflow: Option<String>,
    now: Option<toml::Value>,
    context: Option<toml::Value>,
    #[serde(default)]
    test: Vec<RawTest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    name: String,
    #[serde(default)]
    why: Option<String>,
    #[serde(default)]
    policy: Option<toml::Value>,
    now: Option<toml::Value>,
    context: Option<toml::Value>,
    #[serde(default)]
    steps: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    // A call.
    call: Option<String>,
    id: Option<String>,
    args: Option<toml::Value>,
    args_json: Option<String>,
    now: Option<toml::Value>,
    summary: Option<String>,
    context: Option<toml::Value>,
    result: Option<toml::Value>,
    result_json: Option<String>,
    error: Option<toml::Value>,
    expect: Option<String>,
    rule: Option<String>,
    #[serde(default)]
    rules: Vec<String>,
    message: Option<String>,
    // A reviewer's action.
    human: Option<String>,
    handoff: Option<String>,
    reviewer: Option<String>,
    reason: Option<String>,
    note: Option<String>,
    expires_in_seconds: Option<i64>,
}

/// Reads a test file; the error names the test and step and says what to write.
pub fn parse(text: &str) -> Result<TestFile, FileError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| FileError(e.to_string().trim_end().to_owned()))?;
    let file_now = raw.now.as_ref().map(|now| clock(now, "the file's `now`")).transpose()?;
    let file_context = raw.context.map(|c| context(c, "the file's `context`")).transpose()?;
    let mut tests = Vec::with_capacity(raw.test.len());
    let mut names = std::collections::BTreeSet::new();
    for (index, test) in raw.test.into_iter().enumerate() {
        let place = format!("test {} ({:?})", index + 1, test.name);
        if test.name.trim().is_empty() {
            return Err(FileError(format!("test {}: `name` is empty; say what the test shows", index + 1)));
        }
        if !names.insert(test.name.clone()) {
            return Err(FileError(format!("{place}: another test has the same name; names tell tests apart")));
        }
        if test.steps.is_empty() {
            return Err(FileError(format!("{place}: no steps; add `steps = [{{ call = \"...\", ... }}]`")));
        }
        let _ = (&test.why, &test.policy);
        let test_now = match &test.now {
            Some(now) => Some(clock(now, &format!("{place}: `now`"))?),
            None => file_now,
        };
        let test_context = match test.context {
            Some(c) => Some(context(c, &format!("{place}: `context`"))?),
            None => file_context.clone(),
        };
        let mut steps = Vec::with_capacity(test.steps.len());
        let mut calls = 0;
        for (number, step) in test.steps.into_iter().enumerate() {
            let here = format!("{place}, step {}", number + 1);
            steps.push(read_step(step, &here, test_now, test_context.as_ref(), &mut calls)?);
        }
        tests.push(Test { name: test.name, steps });
    }
    Ok(TestFile { workflow: raw.workflow, tests })
}

/// A `context`: a table of what the client says about a call.
fn context(value: toml::Value, place: &str) -> Result<Json, FileError> {
    match value {
        toml::Value::Table(_) => Ok(to_json(value)),
        _ => Err(FileError(format!("{place} must be a table, such as {{ project_dir = \"/home/me/app\" }}"))),
    }
}

fn read_step(
    step: RawStep,
    here: &str,
    test_now: Option<i64>,
    test_context: Option<&Json>,
    calls: &mut usize,
) -> Result<Step, FileError> {
    let now_ms = match &step.now {
        Some(now) => Some(clock(now, &format!("{here}: `now`"))?),
        None => test_now,
    };
    let step_context = step.context.is_some();
    let call_context = match step.context {
        Some(c) => Some(context(c, &format!("{here}: `context`"))?),
        None => test_context.cloned(),
    };
    match (step.call, step.human) {
        (Some(_), Some(_)) => {
            Err(FileError(format!("{here}: a step is either a `call` or a `human` action, not both")))
        }
        (None, None) => Err(FileError(format!(
            "{here}: a step needs `call = \"<tool>\"` (the agent calls a tool) or `human = \"approve\"` (a reviewer acts)"
        ))),
        (Some(tool), None) => {
            let stray = [
                ("handoff", step.handoff.is_some()),
                ("reviewer", step.reviewer.is_some()),
                ("reason", step.reason.is_some()),
                ("note", step.note.is_some()),
                ("expires_in_seconds", step.expires_in_seconds.is_some()),
            ];
            if let Some((key, _)) = stray.iter().find(|(_, set)| *set) {
                return Err(FileError(format!("{here}: `{key}` belongs to a `human` step, not to a call")));
            }
            *calls += 1;
            let id = step.id.unwrap_or_else(|| format!("c{calls}"));
            let args = match (step.args, step.args_json) {
                (Some(_), Some(_)) => {
                    return Err(FileError(format!("{here}: give `args` or `args_json`, not both")));
                }
                (Some(args), None) => to_json(args),
                (None, Some(text)) => serde_json::from_str(&text)
                    .map_err(|e| FileError(format!("{here}: `args_json` is not JSON: {e}")))?,
                (None, None) => Json::Object(Default::default()),
            };
            let outcome = match (step.result, step.result_json, step.error) {
                (None, None, None) => None,
                (Some(result), None, None) => Some(Outcome::Result(to_json(result))),
                (None, Some(text), None) => Some(Outcome::Result(
                    serde_json::from_str(&text)
                        .map_err(|e| FileError(format!("{here}: `result_json` is not JSON: {e}")))?,
                )),
                (None, None, Some(error)) => Some(Outcome::Error(to_json(error))),
                _ => {
                    return Err(FileError(format!(
                        "{here}: give one of `result`, `result_json` (for results with null) or `error`"
                    )));
                }
            };
            let expect = match step.expect.as_deref() {
                None | Some("allow") => Expect::Allow,
                Some("block") => Expect::Block,
                Some("escalate") => Expect::Escalate,
                Some("withheld") => Expect::Withheld,
                Some(other) => {
                    return Err(FileError(format!(
                        "{here}: `expect = \"{other}\"` is not a verdict; write allow, block, escalate or withheld"
                    )));
                }
            };
            if expect == Expect::Withheld && !matches!(outcome, Some(Outcome::Result(_))) {
                return Err(FileError(format!(
                    "{here}: `expect = \"withheld\"` needs the `result` that a result check withholds"
                )));
            }
            let mut rules = step.rules;
            rules.extend(step.rule);
            if expect == Expect::Allow && (!rules.is_empty() || step.message.is_some()) {
                return Err(FileError(format!(
                    "{here}: an allowed call has no reasons; `rule` and `message` go with block, escalate or withheld"
                )));
            }
            Ok(Step::Call(CallStep {
                id,
                tool,
                args,
                now_ms,
                summary: step.summary,
                context: call_context,
                outcome,
                expect,
                rules,
                message: step.message,
            }))
        }
        (None, Some(action)) => {
            let stray = [
                ("id", step.id.is_some()),
                ("args", step.args.is_some() || step.args_json.is_some()),
                ("summary", step.summary.is_some()),
                ("context", step_context),
                ("result", step.result.is_some() || step.result_json.is_some() || step.error.is_some()),
                ("rule", step.rule.is_some() || !step.rules.is_empty() || step.message.is_some()),
            ];
            if let Some((key, _)) = stray.iter().find(|(_, set)| *set) {
                return Err(FileError(format!("{here}: `{key}` belongs to a `call` step, not to a `human` one")));
            }
            let handoff = step.handoff.ok_or_else(|| {
                FileError(format!(
                    "{here}: name the escalated call: `handoff = \"c3\"` (its id, or c<n> for the n-th call)"
                ))
            })?;
            let now_ms = now_ms.unwrap_or(0);
            let reviewer = step.reviewer.unwrap_or_else(|| "reviewer".to_owned());
            use tollgate_core::human::HumanAction;
            let human = match action.as_str() {
                "claim" => HumanAction::Claim { reviewer },
                "release" => HumanAction::Release { reviewer },
                "approve" => HumanAction::Approve {
                    reviewer,
                    expires_ms: now_ms.saturating_add(step.expires_in_seconds.unwrap_or(3600).saturating_mul(1000)),
                },
                "deny" => HumanAction::Deny {
                    reviewer,
                    reason: step.reason.ok_or_else(|| FileError(format!("{here}: a denial needs its `reason`")))?,
                },
                "resolve" => HumanAction::Resolve {
                    reviewer,
                    note: step.note.ok_or_else(|| FileError(format!("{here}: resolving needs a `note`")))?,
                },
                "expire" => HumanAction::Expire,
                other => {
                    return Err(FileError(format!(
                        "{here}: `human = \"{other}\"` is not an action; write claim, release, approve, deny, resolve or expire"
                    )));
                }
            };
            let refused = match step.expect.as_deref() {
                None | Some("done") => false,
                Some("refused") => true,
                Some(other) => {
                    return Err(FileError(format!(
                        "{here}: a human step expects \"done\" (the default) or \"refused\", not \"{other}\""
                    )));
                }
            };
            Ok(Step::Human(HumanStep { handoff, action: human, now_ms, refused }))
        }
    }
}

fn clock(now: &toml::Value, what: &str) -> Result<i64, FileError> {
    match now {
        toml::Value::Datetime(time) => SessionTime::parse(&time.to_string())
            .map(|t| t.unix_ms)
            .map_err(|e| FileError(format!("{what}: {e}; write a full RFC 3339 time with its offset"))),
        toml::Value::String(text) => SessionTime::parse(text)
            .map(|t| t.unix_ms)
            .map_err(|e| FileError(format!("{what}: {e}; write a full RFC 3339 time with its offset"))),
        toml::Value::Integer(ms) => Ok(*ms),
        _ => Err(FileError(format!("{what} must be an RFC 3339 time or milliseconds since the epoch"))),
    }
}

/// A TOML value as JSON (dates as their RFC 3339 text).
pub fn to_json(value: toml::Value) -> Json {
    match value {
        toml::Value::String(s) => Json::String(s),
        toml::Value::Integer(i) => Json::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map(Json::Number).unwrap_or(Json::Null),
        toml::Value::Boolean(b) => Json::Bool(b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(items) => Json::Array(items.into_iter().map(to_json).collect()),
        toml::Value::Table(table) => Json::Object(table.into_iter().map(|(k, v)| (k, to_json(v))).collect()),
    }
}
