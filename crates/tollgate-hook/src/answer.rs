//! What the hook prints and how it exits, and the words the model reads.
//!
//! An answer the hook could make is JSON on standard output with exit 0:
//! the decision inside `hookSpecificOutput` (Claude Code ignores a flat
//! one). A refusal because something failed is, for a tool call about to
//! run (or an event not yet read), the same deny with exit 2 and the reason
//! on standard error: both clients block a call on exit 2 whatever standard
//! output holds, so the refusal does not even depend on the JSON being
//! read. For a tool's output it is the output withheld (exit 0); for other
//! events, exit 2 with the reason.

use crate::{Client, Kind};
use tollgate_core::Decision;
use tollgate_protocol::hook::HookAnswer;

/// What the process prints and its exit code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Standard output (JSON, or empty).
    pub stdout: String,
    /// Standard error (the reason of a refusal that exits 2).
    pub stderr: String,
    /// The exit code: 0 (the JSON answers) or 2 (blocked, reason on stderr).
    pub exit_code: u8,
}

impl Answer {
    /// A protocol answer: its JSON, exit 0.
    pub fn json(answer: &HookAnswer) -> Answer {
        // INVARIANT: HookAnswer is strings, enums and JSON values; it always
        // serialises. Were it not to, "{}" with exit 2 still blocks.
        match serde_json::to_string(answer) {
            Ok(stdout) => Answer { stdout, stderr: String::new(), exit_code: 0 },
            Err(error) => Answer { stdout: String::new(), stderr: error.to_string(), exit_code: 2 },
        }
    }

    /// Whether the answer lets a tool call run: exit 0 and an `allow` (or,
    /// for Codex, which refuses a bare allow, no objection at all).
    pub fn allows(&self) -> bool {
        self.exit_code == 0 && !self.stdout.contains("\"deny\"") && !self.stdout.contains("\"ask\"")
    }
}

/// The refusal for an event of `kind` when the hook could not do its work.
pub(crate) fn refusal(client: Client, kind: Kind, what: &str) -> Answer {
    match kind {
        Kind::Unknown | Kind::Pre => {
            let reason = format!(
                "Tollgate blocked this call: it could not be checked ({what}). Nothing ran. Tell the user that the \
                 workflow gate is failing; retrying the same call will be blocked until it is fixed."
            );
            let mut answer = Answer::json(&HookAnswer::deny(&reason));
            answer.stderr = reason;
            answer.exit_code = 2;
            answer
        }
        Kind::Post => Answer::json(&HookAnswer::withhold(
            client,
            &format!(
                "Tollgate withheld this tool's output: its result could not be recorded and checked ({what}). The \
                 tool did run."
            ),
        )),
        Kind::PostFailure | Kind::Lifecycle => Answer {
            stdout: String::new(),
            stderr: format!("Tollgate could not record this event ({what})."),
            exit_code: 2,
        },
    }
}

/// The answer to a decided `PreToolUse`.
pub(crate) fn decided(client: Client, decision: &Decision, handoff: Option<&str>) -> Answer {
    match decision {
        Decision::Allow(_) => match client {
            Client::ClaudeCode => Answer::json(&HookAnswer::allow()),
            // Codex refuses a bare allow (and would then run the call): no
            // objection is its way to let a call through.
            Client::Codex => Answer::json(&HookAnswer::none()),
        },
        Decision::Block(_) | Decision::Escalate(_) => Answer::json(&HookAnswer::deny(&refusal_text(decision, handoff))),
    }
}

/// What the model reads when a call is not let through: every reason with
/// its rule, what to do first, and for an escalation the handoff and what
/// happens next.
pub fn refusal_text(decision: &Decision, handoff: Option<&str>) -> String {
    let lines = |reasons: &[tollgate_core::Reason]| {
        reasons.iter().map(|r| format!("- {} [{}]", r.message, r.rule_id)).collect::<Vec<_>>().join("\n")
    };
    match decision {
        Decision::Allow(_) => "Tollgate let this call through".to_owned(),
        Decision::Block(blocked) => {
            let mut text = format!("Tollgate blocked this call:\n{}", lines(&blocked.reasons));
            let mut said: Vec<&str> = blocked.reasons.iter().map(|r| r.message.as_str()).collect();
            for need in &blocked.missing {
                if said.contains(&need.action.as_str()) && need.pending_call.is_none() {
                    continue;
                }
                said.push(&need.action);
                match &need.pending_call {
                    Some(call) => text.push_str(&format!(
                        "\nto do: {} (call {call} may establish it once its result is in: wait for it, then retry)",
                        need.action
                    )),
                    None => text.push_str(&format!("\nto do: {}", need.action)),
                }
            }
            text
        }
        Decision::Escalate(escalation) => {
            let mut text = format!(
                "Tollgate handed this call to a person ({} urgency):\n{}",
                escalation.urgency,
                lines(&escalation.reasons)
            );
            match handoff {
                Some(id) => text.push_str(&format!(
                    "\nhandoff {id} is in the reviewers' queue. The call did not run. Tell the user a person will \
                     review it; once it is approved, the identical call (same tool, same arguments) is let through \
                     once."
                )),
                None => text.push_str("\nThe call did not run."),
            }
            text
        }
    }
}
