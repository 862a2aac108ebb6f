//! Shadow mode's report: the calls that would have been refused, kept in
//! memory for the summary on exit (the journal has every decision too:
//! `tollgate sessions show`).

use std::sync::{Mutex, PoisonError};

/// Most would-be refusals kept for the summary; beyond, only counted.
const KEPT_MAX: usize = 1_000;

/// One call shadow mode let through that enforcing mode would not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WouldBlock {
    /// The session.
    pub session: String,
    /// The call's id.
    pub call: String,
    /// The tool as the client named it.
    pub tool: String,
    /// `block`, `escalate`, `withheld` (a result check failed) or `error`.
    pub verdict: String,
    /// Why, in words.
    pub reasons: Vec<String>,
}

/// What shadow mode saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShadowReport {
    /// Calls decided.
    pub decided: u64,
    /// Of them, would have been refused (or their result withheld).
    pub would_block: u64,
    /// The first [`KEPT_MAX`] of those.
    pub calls: Vec<WouldBlock>,
}

impl std::fmt::Display for ShadowReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "tollgate gateway (shadow): {} call(s) decided, {} would have been refused",
            self.decided, self.would_block
        )?;
        for call in &self.calls {
            writeln!(
                f,
                "  {} {} {}: {} — {}",
                call.session,
                call.call,
                call.tool,
                call.verdict,
                call.reasons.join("; ")
            )?;
        }
        Ok(())
    }
}

#[derive(Default)]
pub(crate) struct Shadow {
    report: Mutex<ShadowReport>,
}

impl Shadow {
    pub(crate) fn decided(&self) {
        self.report.lock().unwrap_or_else(PoisonError::into_inner).decided += 1;
    }

    pub(crate) fn would_block(&self, call: WouldBlock) {
        let mut report = self.report.lock().unwrap_or_else(PoisonError::into_inner);
        report.would_block += 1;
        if report.calls.len() < KEPT_MAX {
            report.calls.push(call);
        }
    }

    pub(crate) fn report(&self) -> ShadowReport {
        self.report.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}
