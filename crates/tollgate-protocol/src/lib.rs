//! Tollgate's wire types: the versioned shapes every surface shares, so the
//! HTTP API, the hooks, the MCP gateway, the CLI's transcripts and the
//! journal show a decision the same way, converted from the core's model in
//! one place.
//!
//! It owns serialisation only: no I/O, no async, no clock. It depends on
//! `tollgate-core` (the model it converts) and nothing else of ours; the
//! engine and the surfaces depend on it, never the other way.

pub mod api;
pub mod decision;
pub mod effect;
pub mod hook;
pub mod join;
pub mod mcp;
pub mod script;

pub use decision::{Decision, Handoff, Missing, Reason, decision_json};
pub use effect::{Effect, effect_json};
pub use join::{Finding, Join, JoinedHandoff, join_json};
