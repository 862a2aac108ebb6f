//! The pure decision core of Tollgate.
//!
//! It owns the workflow language (parse, compile, validate, the static
//! prerequisite analysis), the decision on a tool call (`decide`), and the
//! fold of session events into state (`apply`). It must not know about
//! storage, HTTP, MCP, async runtimes, the clock or randomness: time and ids
//! arrive inside calls and events, so the same workflow and the same events
//! always give byte-identical decisions.
//!
//! The modules read bottom-up: each imports only modules on its own line or
//! an earlier one, and no two import each other.
//!
//! 1. `value`, `limits`, `call`: the values rules compute with, the limits,
//!    and a tool call and its line in a session's history.
//! 2. `expr`: CEL lowered and evaluated. It reads a session only through
//!    `expr::Session`, a view it defines, so it knows no session state.
//! 3. `workflow`: the workflow language (file model, `compile`, analysis,
//!    message templates), written in `expr`.
//! 4. `decision`, `investigation`: a decision as a value; what a session
//!    knows of its own place in a case.
//! 5. `state`: a session's state, the fold of its events.
//! 6. `case`: the rest of a session's case, and `InCase`, the session and
//!    its case as rules read them (it implements `expr::Session`).
//! 7. `handoff`, `join`: handoffs compiled from state; the join of a case.
//! 8. `decide`, `apply`, `checkpoint`: the decision, the fold, checkpoints.
//! 9. `human`: the human half of an escalation (handoff statuses, people's
//!    actions, how an approval covers a call), read by `decide` and `apply`.
//! 10. `trace`: recorded traces, which drive `decide` and `apply`.
//!
//! ```
//! use tollgate_core::{compile, decide, SessionState, ToolCall, Verdict};
//! let workflow = compile(r#"
//! [workflow]
//! name = "tiny"
//! version = 1
//! [facts.customer]
//! identity = true
//! fields = { id = "string" }
//! [tools.get_customer]
//! [[tools.get_customer.establishes]]
//! fact = "customer"
//! fields = { id = "result.id" }
//! [tools.refund]
//! requires = ["customer"]
//! "#, "tiny.toml").map_err(|p| format!("{p:?}"))?;
//! let state = SessionState::new(&workflow);
//! let decision = decide(&workflow, &state, &ToolCall::new("c1", "refund", serde_json::json!({})));
//! assert_eq!(decision.verdict(), Verdict::Block);
//! # Ok::<(), String>(())
//! ```

mod apply;
mod call;
mod case;
mod checkpoint;
mod decide;
mod decision;
pub mod explain;
mod expr;
mod handoff;
pub mod human;
mod investigation;
mod join;
mod limits;
mod state;
pub mod trace;
mod value;
pub mod workflow;

pub use apply::{Effect, Event, ToolOutcome, apply};
pub use call::{CallId, HistoryEntry, ToolCall};
pub use case::Case;
pub use checkpoint::{CHECKPOINT_FORMAT, is_current_checkpoint};
pub use decide::{decide, decide_in_case};
pub use decision::{Allowed, Blocked, Decision, Escalation, FactSnapshot, Handoff, Missing, Reason, Stage, Verdict};
pub use explain::{Explanation, RuleEvaluation, RuleOutcome, explain};
pub use expr::{Rule, evaluate_standalone};
pub use investigation::{Ending, Opened};
pub use join::{Finding, FindingStatus, Join, JoinedHandoff, join};
pub use limits::{Limits, escaped_bytes, json_bytes};
pub use state::SessionState;
pub use value::Value;
pub use workflow::{Problem, Workflow, compile, name_problem as workflow_name_problem, workflow_schema};
