//! The hook protocols of Claude Code (and the Claude Agent SDK, which runs
//! the same CLI) and of the Codex CLI: one JSON event on a hook's standard
//! input, one JSON answer on its standard output. Both clients let a call
//! through when a hook's answer is missing, late or not what they expect, so
//! the answers here carry exactly the fields each client accepts (Codex
//! refuses any field it does not know, and a denial without a reason) and
//! nothing else.
//!
//! Events are read leniently where the clients differ (fields one sends and
//! the other does not are optional) but an event must name itself
//! (`hook_event_name`) and carry a session; a tool event must carry its tool,
//! input and call id.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// What every event carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Common {
    /// The client's session (a conversation).
    pub session_id: String,
    /// Where the client keeps the conversation's transcript.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript_path: Option<String>,
    /// The working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Set when the event fires inside a subagent: which one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The subagent's kind (with `agent_id`), or the main agent's in an
    /// `--agent` session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
    /// Codex: the turn within the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_id: Option<String>,
    /// The client's permission mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<String>,
}

/// Which client sent an event: their answers differ where their schemas do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// Claude Code, or the Claude Agent SDK (the same CLI).
    ClaudeCode,
    /// The Codex CLI.
    Codex,
}

impl Common {
    /// The client that sent the event: Codex sends a `turn_id` with every
    /// event, Claude Code never does.
    pub fn client(&self) -> Client {
        if self.turn_id.is_some() { Client::Codex } else { Client::ClaudeCode }
    }
}

/// A tool call about to run (`PreToolUse`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolUse {
    /// What every event carries.
    #[serde(flatten)]
    pub common: Common,
    /// The tool (`Bash`, `mcp__<server>__<tool>`, ...).
    pub tool_name: String,
    /// Its input.
    pub tool_input: Json,
    /// The call's id: unique in the session, the same in its Post event.
    pub tool_use_id: String,
}

/// A tool call that ran (`PostToolUse`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolRan {
    /// The call.
    #[serde(flatten)]
    pub call: ToolUse,
    /// What the tool answered (Claude Code: an object for built-in tools, a
    /// JSON string of structured content for MCP tools; Codex: a string for
    /// the shell, the whole MCP result for MCP tools).
    pub tool_response: Json,
}

/// A tool call that failed (`PostToolUseFailure`, Claude Code only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolFailed {
    /// The call.
    #[serde(flatten)]
    pub call: ToolUse,
    /// What went wrong.
    pub error: String,
}

/// A hook event, as read from a hook's standard input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "hook_event_name")]
pub enum HookEvent {
    /// A tool call about to run: decide it.
    PreToolUse(ToolUse),
    /// A tool call that ran: record its result.
    PostToolUse(ToolRan),
    /// A tool call that failed: record the failure.
    PostToolUseFailure(ToolFailed),
    /// A session started (or resumed).
    SessionStart(Common),
    /// A session ended.
    SessionEnd(Common),
    /// A subagent started.
    SubagentStart(Common),
    /// A subagent stopped.
    SubagentStop(Common),
}

impl HookEvent {
    /// The event's name, as the client names it.
    pub fn name(&self) -> &'static str {
        match self {
            HookEvent::PreToolUse(_) => "PreToolUse",
            HookEvent::PostToolUse(_) => "PostToolUse",
            HookEvent::PostToolUseFailure(_) => "PostToolUseFailure",
            HookEvent::SessionStart(_) => "SessionStart",
            HookEvent::SessionEnd(_) => "SessionEnd",
            HookEvent::SubagentStart(_) => "SubagentStart",
            HookEvent::SubagentStop(_) => "SubagentStop",
        }
    }
}

/// `permissionDecision` of a `PreToolUse` answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Run the call (no prompt).
    Allow,
    /// Do not run it; the model is told the reason.
    Deny,
    /// Claude Code: ask the person at the keyboard (refused in `-p` runs;
    /// Codex does not accept it at all).
    Ask,
}

/// The part of an answer that belongs to the event (`hookSpecificOutput`);
/// its event name must be the event's, or the answer is rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "hookEventName")]
pub enum Specific {
    /// The answer to a tool call about to run.
    PreToolUse {
        /// Run it, or not.
        #[serde(rename = "permissionDecision")]
        permission_decision: Permission,
        /// Why: required by Codex for a denial; what the model reads.
        #[serde(rename = "permissionDecisionReason", default, skip_serializing_if = "Option::is_none")]
        permission_decision_reason: Option<String>,
        /// Context the model is given beside the call.
        #[serde(rename = "additionalContext", default, skip_serializing_if = "Option::is_none")]
        additional_context: Option<String>,
    },
    /// The answer to a tool call that ran.
    PostToolUse {
        /// Context the model is given beside the result.
        #[serde(rename = "additionalContext", default, skip_serializing_if = "Option::is_none")]
        additional_context: Option<String>,
        /// Claude Code: what the model sees instead of the tool's output.
        #[serde(rename = "updatedToolOutput", default, skip_serializing_if = "Option::is_none")]
        updated_tool_output: Option<Json>,
    },
}

/// A hook's answer, as printed on its standard output.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct HookAnswer {
    /// Codex: `block` on a `PostToolUse` replaces the output the model sees
    /// with `reason`. (Claude Code only appends the reason, so it is told
    /// with `updatedToolOutput` instead.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// With `decision`: what the model reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The event's own answer.
    #[serde(rename = "hookSpecificOutput", default, skip_serializing_if = "Option::is_none")]
    pub hook_specific_output: Option<Specific>,
}

impl HookAnswer {
    /// Lets the call run.
    pub fn allow() -> HookAnswer {
        HookAnswer {
            hook_specific_output: Some(Specific::PreToolUse {
                permission_decision: Permission::Allow,
                permission_decision_reason: None,
                additional_context: None,
            }),
            ..HookAnswer::default()
        }
    }

    /// Refuses the call, telling the model `reason` (never empty: Codex
    /// lets a denial without a reason through).
    pub fn deny(reason: &str) -> HookAnswer {
        let reason = if reason.trim().is_empty() { "Tollgate refused this call" } else { reason };
        HookAnswer {
            hook_specific_output: Some(Specific::PreToolUse {
                permission_decision: Permission::Deny,
                permission_decision_reason: Some(reason.to_owned()),
                additional_context: None,
            }),
            ..HookAnswer::default()
        }
    }

    /// Withholds a tool's output from the model, which reads `reason`
    /// instead: Claude Code replaces the output with `updatedToolOutput`
    /// (its `decision: block` would only add the reason beside the output);
    /// Codex replaces it with `decision: block` and refuses an answer with
    /// `updatedToolOutput`, a field it does not know.
    pub fn withhold(client: Client, reason: &str) -> HookAnswer {
        match client {
            Client::ClaudeCode => HookAnswer {
                hook_specific_output: Some(Specific::PostToolUse {
                    additional_context: None,
                    updated_tool_output: Some(Json::String(reason.to_owned())),
                }),
                ..HookAnswer::default()
            },
            Client::Codex => HookAnswer {
                decision: Some("block".to_owned()),
                reason: Some(reason.to_owned()),
                hook_specific_output: None,
            },
        }
    }

    /// Nothing to say (a recorded result the model may see as it is).
    pub fn none() -> HookAnswer {
        HookAnswer::default()
    }
}
