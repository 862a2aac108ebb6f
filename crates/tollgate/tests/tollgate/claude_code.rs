//! The real Claude Code CLI (bundled in the claude-agent-sdk wheel, in
//! `.ci/venv`) run headless with `tollgate hook` in the project's
//! `.claude/settings.json` and the τ²-retail MCP server in its `.mcp.json`,
//! against a loopback Messages-API stub playing a scripted model
//! (`tests/clients/messages_stub.py`). No network: a temporary HOME and
//! CLAUDE_CONFIG_DIR, ANTHROPIC_BASE_URL at the stub, nonessential traffic
//! off. The stub checks each tool_result the CLI sends back and logs the
//! checks; the test asserts all of them were made and held. The same
//! scenario also runs through the Python Agent SDK's `query`.

use crate::common::root;
use serde_json::{Value as Json, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every check the scripted model makes, in the order it plays them.
const CHECKS: &[&str] = &[
    "cancel-before-auth: contains 'Tollgate blocked this call'",
    "cancel-before-auth: contains 'R-AUTH'",
    "authenticate: contains 'ivan_santos_6635'",
    "read-order: contains '#W8770097'",
    "cancel: contains 'cancelled'",
    "cancel: saved status cancelled",
    "batch-read: contains 'withheld'",
    "batch-cancel: contains 'Tollgate blocked this call'",
    "subagent-cancel: contains 'Tollgate blocked this call'",
    "subagent: contains 'SUBAGENT-DONE'",
    "store-crash: contains 'Tollgate blocked this call'",
    "store-crash: contains 'could not be checked'",
];

/// The venv and the retail database, or `None` (after saying so) outside
/// CI when one is missing; under `CI=true` a missing one is a failure.
fn prerequisites() -> Option<(PathBuf, PathBuf)> {
    let venv = root().join(".ci/venv");
    let db = root().join("../shared/tau/tau2-bench/retail/db.json");
    let claude = venv.join("lib/python3.11/site-packages/claude_agent_sdk/_bundled/claude");
    for needed in [&claude, &db] {
        if !needed.exists() {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{} is missing under CI=true", needed.display());
            eprintln!("skipping: {} is missing (run .ci/python)", needed.display());
            return None;
        }
    }
    Some((venv, db))
}

struct Run {
    dir: PathBuf,
    proj: PathBuf,
    tollgate_db: PathBuf,
    stub: std::process::Child,
    port: String,
    log: PathBuf,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.stub.kill();
        let _ = self.stub.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A project gated by `tollgate hook`, and the stub, started.
fn setup(name: &str, venv: &Path, retail_db: &Path) -> Run {
    setup_with(name, venv, retail_db, true)
}

/// [`setup`]; `wreck`: whether the stub wrecks the store before its last turn.
fn setup_with(name: &str, venv: &Path, retail_db: &Path, wreck: bool) -> Run {
    let dir = std::env::temp_dir().join(format!("tollgate-claude-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let proj = dir.join("proj");
    std::fs::create_dir_all(proj.join(".claude")).unwrap();
    std::fs::create_dir_all(dir.join("home/.claude")).unwrap();
    let tollgate_db = dir.join("tollgate.db");
    let saved = dir.join("saved.json");
    let python = venv.join("bin/python");
    let command = format!(
        "{} hook --workflow {} --db {}",
        env!("CARGO_BIN_EXE_tollgate"),
        root().join("examples/tau2-retail.toml").display(),
        tollgate_db.display()
    );
    // MCP tools only: the CLI's own tools (the Task that starts the
    // subagent, the wait for MCP servers) are not the workflow's business.
    let entry = json!([{"matcher": "mcp__.*", "hooks": [{"type": "command", "command": command, "timeout": 30,
                                                        "onFailure": "block"}]}]);
    let settings = json!({"hooks": {"PreToolUse": entry, "PostToolUse": entry, "PostToolUseFailure": entry}});
    std::fs::write(proj.join(".claude/settings.json"), settings.to_string()).unwrap();
    let server = root().join("fixtures/tau2-retail-mcp/server.py");
    let mcp =
        json!({"mcpServers": {"retail": {"command": python, "args": [server, "--db", retail_db, "--save", saved]}}});
    std::fs::write(proj.join(".mcp.json"), mcp.to_string()).unwrap();
    let log = dir.join("stub.log");
    let mut stub = Command::new(&python);
    stub.arg(root().join("crates/tollgate/tests/clients/messages_stub.py"))
        .args(["--log", log.to_str().unwrap(), "--save", saved.to_str().unwrap()])
        .args(["--retail-db", retail_db.to_str().unwrap()])
        .stdout(Stdio::piped());
    if wreck {
        stub.args(["--tollgate-db", tollgate_db.to_str().unwrap()]);
    }
    let mut stub = stub.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(stub.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("the stub said {line:?}")).to_owned();
    Run { dir, proj, tollgate_db, stub, port, log }
}

/// The client's environment: nothing from ours but PATH; the stub as the API.
fn client(run: &Run, program: &Path) -> Command {
    let mut command = Command::new("timeout");
    command
        .arg("300")
        .arg(program)
        .current_dir(&run.proj)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", run.dir.join("home"))
        .env("CLAUDE_CONFIG_DIR", run.dir.join("home/.claude"))
        .env("ANTHROPIC_BASE_URL", format!("http://127.0.0.1:{}", run.port))
        .env("ANTHROPIC_API_KEY", "sk-ant-stub")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("MCP_CONNECTION_NONBLOCKING", "false")
        .env("ENABLE_TOOL_SEARCH", "false")
        .env("MCP_TIMEOUT", "60000");
    command
}

/// Every check the stub logged held, and each expected one was made.
fn assert_checks(run: &Run, output: &std::process::Output) {
    let log = std::fs::read_to_string(&run.log).unwrap_or_default();
    let entries: Vec<Json> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let context = || format!("{log}\n--- client stdout:\n{}", String::from_utf8_lossy(&output.stdout));
    for entry in entries.iter().filter(|e| e.get("check").is_some()) {
        assert_eq!(entry["ok"], true, "check failed: {entry}\n{}", context());
    }
    for check in CHECKS {
        assert!(entries.iter().any(|e| e["check"] == *check), "check {check:?} was never made\n{}", context());
    }
    assert!(entries.iter().any(|e| e["event"] == "final" && e["text"] == "SCENARIO-DONE"), "{}", context());
    assert!(output.status.success(), "{}", context());
    // The store really was wrecked mid-session (the last turn was refused for it).
    assert!(std::fs::read(&run.tollgate_db).unwrap().starts_with(b"ZZZZ"));
}

#[test]
fn claude_code_headless_is_gated_by_tollgate_hook() {
    let Some((venv, retail_db)) = prerequisites() else { return };
    let run = setup("cli", &venv, &retail_db);
    let claude = venv.join("lib/python3.11/site-packages/claude_agent_sdk/_bundled/claude");
    let output = client(&run, &claude)
        .args(["-p", "TOLLGATE-SCENARIO help the customer", "--output-format", "stream-json", "--verbose"])
        .output()
        .unwrap();
    assert_checks(&run, &output);
}

#[test]
fn the_python_agent_sdk_is_gated_by_the_same_hook() {
    let Some((venv, retail_db)) = prerequisites() else { return };
    let run = setup("sdk", &venv, &retail_db);
    let output = client(&run, &venv.join("bin/python"))
        .arg(root().join("crates/tollgate/tests/clients/agent_sdk.py"))
        .arg(&run.proj)
        .arg("TOLLGATE-SCENARIO help the customer")
        .output()
        .unwrap();
    assert_checks(&run, &output);
}

/// The decisions of a journal (`tollgate sessions show`): call id to
/// (verdict, rule ids).
fn journal_decisions(text: &str) -> Decisions {
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.trim().splitn(4, ' ');
        let (Some(_), Some("decision"), Some(call), Some(body)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let body: Json = serde_json::from_str(body).unwrap();
        let decision = &body["decision"];
        let mut rules: Vec<String> = decision["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["rule_id"].as_str().map(str::to_owned))
            .collect();
        rules.sort();
        out.insert(call.to_owned(), (decision["verdict"].as_str().unwrap().to_owned(), rules));
    }
    out
}

/// Decisions: call id to (verdict, sorted rule ids).
pub(crate) type Decisions = std::collections::BTreeMap<String, (String, Vec<String>)>;

/// Replays the one session transcript Claude Code wrote under `home` through
/// `workflow` into a store of its own, and asserts every call the hook
/// decided live (in `live_db`) is decided the same way, for the same rules
/// (a withheld result's rules aside), and that the calls only the replay saw
/// are the client's own tools. The live decisions and the replay's lines.
pub(crate) fn assert_replay_agrees(
    home: &Path,
    live_db: &Path,
    workflow: &str,
    scratch: &Path,
) -> (Decisions, Vec<Json>) {
    let projects = home.join(".claude/projects");
    let mut transcripts = Vec::new();
    for project in std::fs::read_dir(&projects).unwrap().flatten() {
        for file in std::fs::read_dir(project.path()).unwrap().flatten() {
            if file.path().extension().is_some_and(|e| e == "jsonl") {
                transcripts.push(file.path());
            }
        }
    }
    assert_eq!(transcripts.len(), 1, "one session's transcript: {transcripts:?}");
    let transcript = &transcripts[0];
    let session = transcript.file_stem().unwrap().to_string_lossy().into_owned();
    let db = live_db.display().to_string();
    let shown = crate::common::tollgate(&["sessions", "show", &session, "--db", &db]);
    assert!(shown.status.success(), "{}", crate::common::text(&shown));
    let live = journal_decisions(&crate::common::stdout(&shown));

    let replay_db = scratch.join("replay.db").display().to_string();
    let replayed = crate::common::tollgate(&[
        "replay",
        "--workflow",
        workflow,
        "--db",
        &replay_db,
        "--json",
        &transcript.display().to_string(),
    ]);
    assert!(replayed.status.success(), "{}", crate::common::text(&replayed));
    let lines: Vec<Json> =
        crate::common::stdout(&replayed).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    for (call, (verdict, rules)) in &live {
        let line = lines
            .iter()
            .find(|l| l["call"] == call.as_str())
            .unwrap_or_else(|| panic!("the replay never decided {call}: {lines:#?}"));
        let mut replayed_rules: Vec<String> =
            line["rule_ids"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
        replayed_rules.sort();
        assert_eq!(line["decision"], verdict.as_str(), "{call}: live {verdict} {rules:?}, replayed {line}");
        if !line["withheld"].as_bool().unwrap() {
            assert_eq!(&replayed_rules, rules, "{call}: {line}");
        }
    }
    for line in &lines {
        let call = line["call"].as_str().unwrap_or_default();
        assert!(
            live.contains_key(call) || !line["tool"].as_str().unwrap().starts_with("mcp__"),
            "the hook never saw {line}"
        );
    }
    (live, lines)
}

#[test]
fn a_claude_code_transcript_replayed_gives_the_decisions_the_hook_gave_live() {
    let Some((venv, retail_db)) = prerequisites() else { return };
    let run = setup_with("replay", &venv, &retail_db, false);
    let claude = venv.join("lib/python3.11/site-packages/claude_agent_sdk/_bundled/claude");
    let output = client(&run, &claude)
        .args(["-p", "TOLLGATE-SCENARIO help the customer", "--output-format", "stream-json", "--verbose"])
        .output()
        .unwrap();
    let log = std::fs::read_to_string(&run.log).unwrap_or_default();
    assert!(
        output.status.success() && log.contains("SCENARIO-DONE"),
        "{log}\n{}",
        String::from_utf8_lossy(&output.stdout)
    );

    let workflow = root().join("examples/tau2-retail.toml").display().to_string();
    let (live, lines) = assert_replay_agrees(&run.dir.join("home"), &run.tollgate_db, &workflow, &run.dir);
    assert!(live.len() >= 8, "the hook decided too few calls: {live:?}");
    assert!(live.values().any(|(v, _)| v == "block") && live.values().any(|(v, _)| v == "allow"), "{live:?}");
    // The result the hook withheld live is the one the replay withholds.
    let withheld: Vec<&Json> = lines.iter().filter(|l| l["withheld"] == true).collect();
    assert_eq!(withheld.len(), 1, "{lines:#?}");
    assert_eq!(withheld[0]["tool"], "mcp__retail__get_order_details", "{lines:#?}");
}

/// A `tollgate serve` on `db` (its address), and an agent token for it.
fn serve_for_hooks(db: &Path) -> (std::process::Child, String, String) {
    let db = db.display().to_string();
    let made = crate::common::tollgate(&["tokens", "create", "--db", &db, "--role", "agent", "--name", "claude"]);
    assert!(made.status.success(), "{}", crate::common::text(&made));
    let token = crate::common::stdout(&made).trim().to_owned();
    let mut server = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--workflow", "examples/tau2-retail.toml", "--db", &db, "--listen", "127.0.0.1:0"])
        .current_dir(root())
        .env_remove("TOLLGATE_DB")
        .env_remove("TOLLGATE_AUDIT_KEY_FILE")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first.split("http://").nth(1).and_then(|rest| rest.split(' ').next()).unwrap().to_owned();
    std::thread::spawn(move || for _ in lines {});
    (server, addr, token)
}

#[test]
fn claude_code_http_hooks_are_answered_by_tollgate_serve_and_a_server_that_is_down_blocks() {
    let Some((venv, retail_db)) = prerequisites() else { return };
    let run = setup_with("http", &venv, &retail_db, false);
    let (mut server, addr, token) = serve_for_hooks(&run.tollgate_db);
    // The hooks are HTTP hooks now, installed as a user would: the token
    // from the environment, and Claude Code's own switch that makes a failed
    // hook a block.
    std::fs::write(run.proj.join(".claude/settings.json"), "{}").unwrap();
    let installed = crate::common::tollgate(&[
        "hook",
        "install",
        "--workflow",
        &root().join("examples/tau2-retail.toml").display().to_string(),
        "--server",
        &format!("http://{addr}"),
        "--matcher",
        "mcp__.*",
        "--dir",
        &run.proj.display().to_string(),
    ]);
    assert!(installed.status.success(), "{}", crate::common::text(&installed));
    let settings: Json =
        serde_json::from_str(&std::fs::read_to_string(run.proj.join(".claude/settings.json")).unwrap()).unwrap();
    let entry = &settings["hooks"]["PreToolUse"][0]["hooks"][0];
    assert_eq!((entry["type"].as_str(), entry["onFailure"].as_str()), (Some("http"), Some("block")), "{settings}");
    let claude = venv.join("lib/python3.11/site-packages/claude_agent_sdk/_bundled/claude");
    // The retail tools are allowed by Claude Code's own permissions, so
    // nothing but the hook stands between a call and the MCP server.
    let scenario = || {
        client(&run, &claude)
            .env("TOLLGATE_TOKEN", &token)
            .args(["-p", "TOLLGATE-SCENARIO help the customer", "--output-format", "stream-json", "--verbose"])
            .args(["--allowedTools", "mcp__retail"])
            .output()
            .unwrap()
    };
    let read_log = || -> Vec<Json> {
        let log = std::fs::read_to_string(&run.log).unwrap_or_default();
        log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    };

    // The whole scenario through the server (the store is not wrecked
    // here: the server holds it open): every check but the store crash's.
    let output = scenario();
    let entries = read_log();
    let context = || format!("{entries:#?}\n--- client stdout:\n{}", String::from_utf8_lossy(&output.stdout));
    for check in CHECKS.iter().filter(|c| !c.starts_with("store-crash")) {
        let made = entries
            .iter()
            .find(|e| e["check"] == *check)
            .unwrap_or_else(|| panic!("{check} never made\n{}", context()));
        assert_eq!(made["ok"], true, "{check}: {made}\n{}", context());
    }
    assert!(entries.iter().any(|e| e["event"] == "final" && e["text"] == "SCENARIO-DONE"), "{}", context());
    // The server's store holds the session, decided in the token's tenant.
    let db = run.tollgate_db.display().to_string();
    let listed = crate::common::tollgate(&["sessions", "list", "--db", &db]);
    assert!(crate::common::stdout(&listed).contains("tau2-retail"), "{}", crate::common::text(&listed));

    // The server goes down: Claude Code cannot reach the hook, and with
    // onFailure "block" the call is refused, not run (authentication would
    // have returned the user id).
    let _ = server.kill();
    let _ = server.wait();
    let before = entries.len();
    let output = scenario();
    let entries = read_log();
    let second: Vec<&Json> = entries.iter().skip(before).collect();
    let auth = second
        .iter()
        .find(|e| e["check"] == "authenticate: contains 'ivan_santos_6635'")
        .unwrap_or_else(|| panic!("{second:#?}\n{}", String::from_utf8_lossy(&output.stdout)));
    assert_eq!(auth["ok"], false, "the call ran with the hook's server down: {auth}");
    eprintln!("with the server down, the model read: {}", auth["detail"]);
    assert!(!auth["detail"].as_str().unwrap_or_default().contains("ivan_santos_6635"), "{auth}");
}
