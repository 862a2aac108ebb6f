//! What the `tollgate` binary's tests share: running the binary as a user
//! does, reading its output, and finding the τ-bench data beside the
//! repository.

#![allow(dead_code, clippy::panic)] // each test binary uses part of this; tests fail by panicking

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's root, where the binary runs.
pub fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Runs `tollgate` in the repository's root, with no `TOLLGATE_DB` from the
/// environment.
pub fn tollgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .current_dir(root())
        .env_remove("TOLLGATE_DB")
        .output()
        .unwrap_or_else(|e| panic!("cannot run tollgate: {e}"))
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Both, for messages.
pub fn text(output: &Output) -> String {
    format!("{}{}", stdout(output), stderr(output))
}

/// The recorded τ traces (`shared/tau/traces/`, beside the repository);
/// `None` (after saying so) when absent, except under `CI=true`, where that
/// is a failure.
pub fn tau_traces() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tau/traces");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{} is missing under CI=true", dir.display());
    eprintln!("skipping: {} is not there", dir.display());
    None
}

/// Lines the multi-concern demo prints once its case is joined: each
/// concern's finding, the joined handoff with every concern, the parent's reply.
pub const JOINED_CASE_LINES: &[&str] = &[
    "refund [resolved]",
    "address [resolved]",
    "charge [escalated]",
    "joined handoff to a human (every concern):",
    "concern refund (resolved)",
    "concern address (resolved)",
    "concern charge (escalated)",
    "customer_id: c_42",
    "parent  agent → reply_to_customer: ALLOW",
];

/// `tollgate` as a command to configure (pipes, arguments) before running.
pub fn command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
}

/// A small deterministic generator: kill points must be reproducible.
pub struct Lcg(pub u64);

impl Lcg {
    /// Seeded from `TOLLGATE_CRASH_SEED`, else 42.
    pub fn from_env() -> Lcg {
        Lcg(std::env::var("TOLLGATE_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(42))
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}
