//! The real Codex CLI (`@openai/codex`, pinned in `tests/codex/package.json`,
//! installed by `.ci/node`) run headless (`codex exec`) with `tollgate hook`
//! installed by `tollgate hook install --client codex --user` and the
//! τ²-retail MCP server in its config, against a loopback Responses-API stub
//! playing a scripted model (`tests/clients/responses_stub.py`). No network:
//! a temporary HOME and CODEX_HOME, a model provider at the stub with a key
//! from the environment, update checks, analytics, apps and plugins off
//! (with these, `strace -e connect` of a run shows loopback connections only). The stub checks
//! each `function_call_output` Codex sends back and logs the checks; the
//! test asserts all of them were made and held.

use crate::common::root;
use serde_json::Value as Json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every check the scripted model makes in the gated scenario.
const GATED: &[&str] = &[
    "cancel-before-auth: contains 'Tollgate blocked this call'",
    "cancel-before-auth: contains 'R-AUTH'",
    "authenticate: contains 'ivan_santos_6635'",
    "read-order: contains '#W8770097'",
    "cancel: contains 'cancelled'",
    "cancel: saved status cancelled",
    "batch-read: contains 'withheld'",
    "batch-read: lacks 'payment_history'",
    "batch-cancel: contains 'Tollgate blocked this call'",
    "shell: contains 'Tollgate blocked this call'",
    "shell: shell-ran absent",
    "store-crash: contains 'Tollgate blocked this call'",
    "store-crash: contains 'could not be checked'",
];

/// The checks of the scenario where no hook gates (untrusted, or failing).
const UNGATED: &[&str] = &[
    "ungated-cancel: contains 'cancelled'",
    "ungated-cancel: lacks 'Tollgate'",
    "ungated-cancel: saved status cancelled",
];

/// The checks of the subagent scenario.
const SUBAGENT: &[&str] = &[
    "authenticate: contains 'ivan_santos_6635'",
    "read-order: contains '#W8770097'",
    "spawn: contains 'agent_id'",
    "subagent-cancel: contains 'Tollgate blocked this call'",
    "subagent-cancel: contains 'R-ONE-USER'",
    "subagent-cancel: lacks 'R-AUTH'",
    "subagent-cancel: other order pending",
    "wait: contains 'SUBAGENT-DONE'",
];

/// The Codex CLI, the venv (the MCP server's Python) and the retail
/// database, or `None` (after saying so) outside CI when one is missing;
/// under `CI=true` a missing one is a failure.
fn prerequisites() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let codex = root().join("crates/tollgate/tests/codex/node_modules/.bin/codex");
    let python = root().join(".ci/venv/bin/python");
    let db = root().join("../shared/tau/tau2-bench/retail/db.json");
    for (needed, how) in [(&codex, ".ci/node"), (&python, ".ci/python"), (&db, "the τ data beside the clone")] {
        if !needed.exists() {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{} is missing under CI=true", needed.display());
            eprintln!("skipping: {} is missing ({how})", needed.display());
            return None;
        }
    }
    Some((codex, python, db))
}

struct Run {
    dir: PathBuf,
    home: PathBuf,
    proj: PathBuf,
    tollgate_db: PathBuf,
    stub: std::process::Child,
    log: PathBuf,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.stub.kill();
        let _ = self.stub.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The stub started, and Codex's configuration: the stub as its model
/// provider, the retail MCP server, nothing optional.
fn setup(name: &str, scenario: &str, python: &Path, retail_db: &Path) -> Run {
    let dir = std::env::temp_dir().join(format!("tollgate-codex-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let home = dir.join("home");
    let proj = dir.join("proj");
    std::fs::create_dir_all(home.join(".codex")).unwrap();
    std::fs::create_dir_all(&proj).unwrap();
    let tollgate_db = dir.join("tollgate.db");
    let saved = dir.join("saved.json");
    let log = dir.join("stub.log");
    let mut stub = Command::new(python)
        .arg(root().join("crates/tollgate/tests/clients/responses_stub.py"))
        .args(["--scenario", scenario, "--log", log.to_str().unwrap(), "--save", saved.to_str().unwrap()])
        .args(["--retail-db", retail_db.to_str().unwrap(), "--proj", proj.to_str().unwrap()])
        .args(["--tollgate-db", tollgate_db.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(stub.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("the stub said {line:?}")).to_owned();
    let server = root().join("fixtures/tau2-retail-mcp/server.py");
    let config = format!(
        r#"# the user's own configuration
model = "stub-model"
model_provider = "stub"
check_for_update_on_startup = false
web_search = "disabled"

[model_providers.stub]
name = "loopback stub"
base_url = "http://127.0.0.1:{port}/v1"
wire_api = "responses"
env_key = "STUB_API_KEY"

[analytics]
enabled = false

# Without this, Codex syncs its plugin marketplace from a git remote at start.
[features]
apps = false
plugins = false

# `required`: the session waits for the server, so its tools are there on the first turn.
[mcp_servers.retail]
command = {python:?}
args = [{server:?}, "--db", {retail_db:?}, "--save", {saved:?}]
startup_timeout_sec = 60
required = true
"#
    );
    std::fs::write(home.join(".codex/config.toml"), config).unwrap();
    Run { dir, home, proj, tollgate_db, stub, log }
}

/// `tollgate hook install | uninstall --client codex --user` into the run's CODEX_HOME.
fn tollgate_hook(run: &Run, args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("hook")
        .args(args)
        .args(["--client", "codex", "--user"])
        .current_dir(&run.proj)
        .env("CODEX_HOME", run.home.join(".codex"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output
}

fn install(run: &Run, matcher: &str) {
    let workflow = root().join("examples/tau2-retail.toml");
    let db = run.tollgate_db.to_str().unwrap();
    tollgate_hook(run, &["install", "--workflow", workflow.to_str().unwrap(), "--db", db, "--matcher", matcher]);
}

/// `codex exec` headless: its environment is nothing of ours but PATH; no
/// approvals asked and no sandbox (the tools must run for their hooks to
/// matter); hooks run because they are trusted, not by a bypass.
fn codex(run: &Run, program: &Path) -> std::process::Output {
    codex_with(run, program, &[])
}

fn codex_with(run: &Run, program: &Path, extra: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .arg("300")
        .arg(program)
        .args(["exec", "--dangerously-bypass-approvals-and-sandbox", "--skip-git-repo-check", "--json"])
        .args(extra)
        .arg("TOLLGATE-SCENARIO help the customer")
        .current_dir(&run.proj)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &run.home)
        .env("CODEX_HOME", run.home.join(".codex"))
        .env("STUB_API_KEY", "sk-stub")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Every check the stub logged held, and each expected one was made.
fn assert_checks(run: &Run, output: &std::process::Output, checks: &[&str]) {
    let log = std::fs::read_to_string(&run.log).unwrap_or_default();
    let entries: Vec<Json> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let context = || {
        format!(
            "{log}\n--- codex stdout:\n{}\n--- codex stderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    for entry in entries.iter().filter(|e| e.get("check").is_some()) {
        assert_eq!(entry["ok"], true, "check failed: {entry}\n{}", context());
    }
    for check in checks {
        assert!(entries.iter().any(|e| e["check"] == *check), "check {check:?} was never made\n{}", context());
    }
    assert!(entries.iter().any(|e| e["event"] == "final" && e["text"] == "SCENARIO-DONE"), "{}", context());
    assert!(output.status.success(), "{}", context());
}

#[test]
fn codex_exec_is_gated_by_tollgate_hook() {
    let Some((program, python, retail_db)) = prerequisites() else { return };
    let run = setup("gated", "gated", &python, &retail_db);
    install(&run, "*");
    let output = codex(&run, &program);
    assert_checks(&run, &output, GATED);
    // The store really was wrecked mid-session (the last turn was refused for it).
    assert!(std::fs::read(&run.tollgate_db).unwrap().starts_with(b"ZZZZ"));
}

/// A subagent's calls reach the hook with the parent's `session_id` (and
/// its own `agent_id`, `agent_type`), so they are gated in the parent's
/// session. MCP tools only (`--matcher 'mcp__.*'`): Codex's `spawn_agent`
/// and `wait_agent` are not the retail workflow's business.
#[test]
fn a_codex_subagent_is_gated_in_its_parent_s_session() {
    let Some((program, python, retail_db)) = prerequisites() else { return };
    let run = setup("subagent", "subagent", &python, &retail_db);
    install(&run, "mcp__.*");
    let output = codex(&run, &program);
    assert_checks(&run, &output, SUBAGENT);
}

/// Codex runs a user's hook only once it is trusted, and skips an untrusted
/// one without a word: the call runs ungated. `hook install` writes the
/// trust; without it, nothing is gated.
#[test]
fn codex_skips_an_untrusted_hook_and_uninstall_leaves_the_rest() {
    let Some((program, python, retail_db)) = prerequisites() else { return };
    let run = setup("untrusted", "ungated", &python, &retail_db);
    let config = run.home.join(".codex/config.toml");
    let hooks = run.home.join(".codex/hooks.json");
    // The user's own hook, and their configuration, before Tollgate's.
    let theirs =
        r#"{"hooks": {"PreToolUse": [{"matcher": "^Bash$", "hooks": [{"type": "command", "command": "true"}]}]}}"#;
    std::fs::write(&hooks, theirs).unwrap();
    let before = std::fs::read_to_string(&config).unwrap();
    install(&run, "*");
    let installed = std::fs::read_to_string(&config).unwrap();
    assert!(installed.starts_with(&before), "the user's configuration changed:\n{installed}");
    let trust = &installed[before.len()..];
    assert!(trust.contains("hooks.json:pre_tool_use:1:0") && trust.contains("hooks.json:post_tool_use:0:0"), "{trust}");
    // Trust withdrawn (as by the user in Codex's /hooks): Codex skips the hooks.
    std::fs::write(&config, &before).unwrap();
    let output = codex(&run, &program);
    assert_checks(&run, &output, UNGATED);
    assert!(!run.tollgate_db.exists(), "the hook ran though it is not trusted");
    // Uninstalling removes Tollgate's entries and trust, nothing else.
    install(&run, "*");
    tollgate_hook(&run, &["uninstall"]);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
    let left: Json = serde_json::from_str(&std::fs::read_to_string(&hooks).unwrap()).unwrap();
    assert_eq!(left, serde_json::from_str::<Json>(theirs).unwrap());
}

/// Codex fails open: a hook that cannot answer (here one exiting 127, as
/// the shell does when the `tollgate` it names is gone) lets the call run.
/// `tollgate hook` itself never fails so (every failure of its own is an
/// exit 2 refusal), but what runs it is outside its reach.
#[test]
fn codex_lets_a_call_through_when_its_hook_cannot_run() {
    let Some((program, python, retail_db)) = prerequisites() else { return };
    let run = setup("failing", "ungated", &python, &retail_db);
    let marker = run.dir.join("hook-ran");
    let command = format!("touch {}; exit 127", marker.display());
    let hooks = serde_json::json!({"hooks": {"PreToolUse": [{"matcher": "*", "hooks": [{"type": "command", "command": command}]}]}});
    std::fs::write(run.home.join(".codex/hooks.json"), hooks.to_string()).unwrap();
    // Trust bypassed for this hook, which `hook install` did not write.
    let output = codex_with(&run, &program, &["--dangerously-bypass-hook-trust"]);
    assert_checks(&run, &output, UNGATED);
    assert!(marker.exists(), "the failing hook never ran");
}

/// Into a project: its `.codex/hooks.json` gets the entries, Codex's home
/// their trust (Codex reads hook trust from the user's config only); the
/// matcher and the Codex protocol are on the command line. No codex needed.
#[test]
fn codex_install_into_a_project_trusts_its_entries_in_codex_home() {
    let dir = std::env::temp_dir().join(format!("tollgate-codex-project-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("home")).unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["hook"])
            .args(args)
            .args(["--client", "codex", "--dir", dir.join("proj").to_str().unwrap()])
            .current_dir(root())
            .env("CODEX_HOME", dir.join("home"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let said = run(&["install", "--workflow", "examples/tau2-retail.toml", "--matcher", "mcp__.*"]);
    assert!(said.contains("only once the project is trusted"), "{said}");
    let hooks_path = dir.join("proj/.codex/hooks.json");
    let hooks: Json = serde_json::from_str(&std::fs::read_to_string(&hooks_path).unwrap()).unwrap();
    assert_eq!(hooks["hooks"]["PreToolUse"][0]["matcher"], "mcp__.*");
    let command = hooks["hooks"]["PostToolUse"][0]["hooks"][0]["command"].as_str().unwrap();
    assert!(command.contains("--client codex"), "{command}");
    let config = std::fs::read_to_string(dir.join("home/config.toml")).unwrap();
    assert!(config.contains(&format!("{}:pre_tool_use:0:0", hooks_path.display())), "{config}");
    assert_eq!(config.matches("trusted_hash = \"sha256:").count(), 2, "{config}");
    run(&["uninstall"]);
    assert_eq!(std::fs::read_to_string(dir.join("home/config.toml")).unwrap(), "");
    assert_eq!(std::fs::read_to_string(&hooks_path).unwrap().trim(), "{}");
    let _ = std::fs::remove_dir_all(&dir);
}
