//! `tollgate gateway` with real clients and servers: the official MCP Python
//! SDK (`mcp` from `.ci/venv`, installed by `.ci/python`) as the client, the
//! reference server `@modelcontextprotocol/server-everything` (npm, installed
//! by `.ci/node`) and the τ²-retail fixture (`fixtures/tau2-retail-mcp/`, the
//! same SDK) as upstreams. The clients are scripts in `tests/mcp/` that print
//! what each step answered as JSON; the assertions are here. Outside CI a
//! missing venv, npm package or τ² database skips with a message; under
//! `CI=true` it fails.

use crate::common::{command, root, stderr, text, tollgate};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const RETAIL_WORKFLOW: &str = "examples/tau2-retail.toml";

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn missing(what: &str) {
    assert!(!under_ci(), "{what} is missing under CI=true");
    eprintln!("skipping the gateway test: {what} is missing");
}

/// The venv's Python with the MCP SDK.
fn python() -> Option<PathBuf> {
    let python = root().join(".ci/venv/bin/python");
    let ok =
        python.exists() && Command::new(&python).args(["-c", "import mcp"]).output().is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    missing(".ci/venv with the MCP Python SDK (run .ci/python)");
    None
}

/// server-everything's entry point.
fn everything() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    if path.exists() {
        return Some(path);
    }
    missing("@modelcontextprotocol/server-everything (run .ci/node)");
    None
}

/// The τ² retail database beside the repository.
fn retail_db() -> Option<PathBuf> {
    let path = root().join("../shared/tau/tau2-bench/retail/db.json");
    if path.exists() {
        return Some(path);
    }
    missing("shared/tau/tau2-bench/retail/db.json");
    None
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-gateway-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp").join(name)
}

/// Runs a client script; its last line of standard output is its report.
fn client(python: &Path, args: &[&str]) -> (Value, Output) {
    let output = Command::new(python).args(args).current_dir(root()).output().unwrap();
    assert!(output.status.success(), "the client failed:\n{}", text(&output));
    let out = String::from_utf8_lossy(&output.stdout);
    let last = out.lines().last().unwrap_or_default();
    let report: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the client's report is not JSON ({e}):\n{}", text(&output)));
    (report, output)
}

/// The gateway's command line in front of the τ² fixture over stdio.
fn retail_gateway(python: &Path, dir: &Path, db: &Path, mode: &str) -> Vec<String> {
    let upstream = format!(
        "retail={} {} --db {} --save {}",
        python.display(),
        root().join("fixtures/tau2-retail-mcp/server.py").display(),
        db.display(),
        dir.join("saved.json").display()
    );
    vec![
        env!("CARGO_BIN_EXE_tollgate").to_owned(),
        "gateway".into(),
        "--workflow".into(),
        root().join(RETAIL_WORKFLOW).display().to_string(),
        "--db".into(),
        dir.join("tollgate.db").display().to_string(),
        "--session".into(),
        "retail-1".into(),
        "--mode".into(),
        mode.into(),
        "--upstream".into(),
        upstream,
    ]
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report.get(name).unwrap_or_else(|| panic!("no step {name} in {report:#}"))
}

fn is_error(report: &Value, name: &str) -> bool {
    step(report, name)["is_error"].as_bool().unwrap_or_else(|| panic!("step {name}: {:#}", step(report, name)))
}

fn step_text(report: &Value, name: &str) -> String {
    step(report, name)["text"].as_str().unwrap_or_default().to_owned()
}

fn order_status(saved: &Path, order: &str) -> Option<String> {
    let text = std::fs::read_to_string(saved).ok()?;
    let db: Value = serde_json::from_str(&text).ok()?;
    db["orders"][order]["status"].as_str().map(str::to_owned)
}

#[test]
fn tau2_retail_through_the_gateway_refuses_a_cancel_before_authentication_withholds_another_users_order_and_runs_the_careful_path()
 {
    let (Some(python), Some(db)) = (python(), retail_db()) else { return };
    let dir = scratch("tau2");
    let mut args = vec![script("tau2_client.py").display().to_string(), "stdio".into(), "auto".into(), "--".into()];
    args.extend(retail_gateway(&python, &dir, &db, "enforce"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (report, _) = client(&python, &args);

    // The newest protocol, negotiated by server/discover.
    assert_eq!(report["protocol"], "2026-07-28", "{report:#}");
    let cancel = report["tools"]["cancel_pending_order"].as_str().unwrap();
    assert!(cancel.contains("[Tollgate] Runs only after"), "the guarded tool's prerequisites: {cancel}");
    assert!(report["tools"].get("find_user_id_by_email").is_some());

    // Cancelling before authenticating: refused with the reason, not run.
    assert!(is_error(&report, "cancel_before_auth"));
    let refused = step_text(&report, "cancel_before_auth");
    assert!(refused.contains("Tollgate blocked this call"), "{refused}");
    assert!(refused.contains("authenticate the user first"), "{refused}");
    assert_eq!(step(&report, "cancel_before_auth")["meta"]["tollgate.dev/decision"]["verdict"], "block");

    assert!(!is_error(&report, "find_user"), "{report:#}");
    assert!(step_text(&report, "find_user").contains("ivan_santos_6635"));
    // Another user's order: the read ran, its result is withheld.
    assert!(is_error(&report, "other_users_order"));
    let withheld = step_text(&report, "other_users_order");
    assert!(withheld.contains("belongs to another user"), "{withheld}");
    assert!(!withheld.contains("james_li"), "the withheld order leaked: {withheld}");
    // The careful path: the own order read, then cancelled; the data changed.
    assert!(!is_error(&report, "own_order"), "{report:#}");
    assert!(!is_error(&report, "cancel_after_read"), "{report:#}");
    assert_eq!(order_status(&dir.join("saved.json"), "#W8770097").as_deref(), Some("cancelled"));

    // Every decision is in the session's journal and the audit log verifies.
    let db_path = dir.join("tollgate.db").display().to_string();
    let shown = tollgate(&["sessions", "show", "retail-1", "--db", &db_path]);
    assert!(shown.status.success(), "{}", text(&shown));
    let journal = text(&shown);
    assert!(journal.contains("cancel_pending_order"), "{journal}");
    assert!(journal.contains("retail-1/cancel_pending_order:"), "the idempotency key: {journal}");
    let verified = tollgate(&["audit", "verify", "--db", &db_path]);
    assert!(verified.status.success(), "{}", text(&verified));
}

#[test]
fn tau2_retail_in_shadow_mode_forwards_every_call_and_reports_the_refusals_enforcing_mode_makes() {
    let (Some(python), Some(db)) = (python(), retail_db()) else { return };
    let dir = scratch("tau2-shadow");
    let mut args = vec![script("tau2_client.py").display().to_string(), "stdio".into(), "legacy".into(), "--".into()];
    args.extend(retail_gateway(&python, &dir, &db, "shadow"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (report, output) = client(&python, &args);

    assert_eq!(report["protocol"], "2025-11-25", "{report:#}");
    // Forwarded: the cancellation before authentication ran (the fixture,
    // like τ²'s tools, does not check who asks) and the other user's order
    // was shown.
    assert!(!is_error(&report, "cancel_before_auth"), "{report:#}");
    assert!(!is_error(&report, "other_users_order"), "{report:#}");
    assert!(step_text(&report, "other_users_order").contains("james_li_5688"));
    // The summary on exit names what enforcing mode refuses.
    let summary = stderr(&output);
    assert!(summary.contains("would have been refused"), "{summary}");
    assert!(summary.contains("cancel_pending_order: block — authenticate the user first"), "{summary}");
    assert!(summary.contains("get_order_details: withheld — order #W2611340 belongs to another user"), "{summary}");
}

#[test]
fn everything_passes_through_the_gateway_over_stdio_with_the_legacy_handshake() {
    let (Some(python), Some(server)) = (python(), everything()) else { return };
    let dir = scratch("everything");
    let db = dir.join("tollgate.db").display().to_string();
    let workflow = script("everything.toml").display().to_string();
    let upstream = format!("everything=node {} stdio", server.display());
    let (report, _) = client(
        &python,
        &[
            &script("everything_client.py").display().to_string(),
            "legacy",
            "--",
            env!("CARGO_BIN_EXE_tollgate"),
            "gateway",
            "--workflow",
            &workflow,
            "--db",
            &db,
            "--session",
            "everything-1",
            "--upstream",
            &upstream,
        ],
    );
    assert_eq!(report["protocol"], "2025-11-25", "{report:#}");
    let tools = report["tools"].as_object().unwrap();
    assert!(tools.contains_key("echo") && tools.contains_key("get-sum"), "{report:#}");
    assert!(!tools.contains_key("get-env"), "an undeclared tool is listed: {report:#}");
    assert!(tools["get-sum"].as_str().unwrap().contains("[Tollgate] Runs only after: echoed"), "{report:#}");

    assert!(is_error(&report, "sum_before_echo"));
    assert!(step_text(&report, "sum_before_echo").contains("ECHO-FIRST"), "{report:#}");
    assert!(step_text(&report, "echo").contains("hello gateway"), "{report:#}");
    assert!(!is_error(&report, "sum_after_echo") && step_text(&report, "sum_after_echo").contains('3'), "{report:#}");
    assert!(is_error(&report, "undeclared"), "{report:#}");
    assert!(step(&report, "structured")["structured"].is_object(), "{report:#}");

    // Progress, resources, prompts, completion, logging, subscriptions,
    // sampling, elicitation, list changes, cancellation.
    assert!(report["progress_notifications"].as_u64().unwrap() >= 1, "{report:#}");
    assert!(!report["resources"].as_array().unwrap().is_empty(), "{report:#}");
    assert!(!report["templates"].as_array().unwrap().is_empty(), "{report:#}");
    assert!(!report["read"].as_array().unwrap().is_empty(), "{report:#}");
    assert!(report["prompts"].as_array().unwrap().iter().any(|p| p == "args-prompt"), "{report:#}");
    assert!(report["prompt"].to_string().contains("Paris"), "{report:#}");
    assert!(!report["completion"].as_array().unwrap().is_empty(), "{report:#}");
    assert_eq!(report["logged"], true, "{report:#}");
    assert_eq!(report["resource_updated"], true, "{report:#}");
    assert_eq!(report["sampled"].as_array().unwrap().len(), 1, "{report:#}");
    assert!(step_text(&report, "sampling").contains("sampled by the test"), "{report:#}");
    assert_eq!(report["elicited"].as_array().unwrap().len(), 1, "{report:#}");
    assert!(step_text(&report, "elicitation").contains("Ada"), "{report:#}");
    assert_eq!(report["list_changed"], true, "{report:#}");
    assert_eq!(report["long_started"], true, "{report:#}");
    assert_eq!(report["cancelled"], true, "{report:#}");
    assert!(step_text(&report, "after_cancel").contains("still here"), "{report:#}");

    // The cancelled call was allowed and has no result: in doubt, resumable.
    let resume = tollgate(&["sessions", "resume", "everything-1", "--db", &db]);
    assert!(resume.status.success(), "{}", text(&resume));
    assert!(text(&resume).contains("trigger-long-running-operation"), "{}", text(&resume));
}

#[test]
fn a_gateway_that_cannot_start_its_upstream_refuses_to_start() {
    let dir = scratch("no-upstream");
    let output = command()
        .args(["gateway", "--workflow", &root().join(RETAIL_WORKFLOW).display().to_string()])
        .args(["--db", &dir.join("t.db").display().to_string()])
        .args(["--upstream", "retail=/nonexistent/server"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("upstream retail: cannot start"), "{}", text(&output));
}

#[test]
fn a_misbehaving_upstream_or_client_gets_a_clear_error_and_nothing_through() {
    let Some(python) = python() else { return };
    let dir = scratch("misbehaving");
    let db = dir.join("tollgate.db").display().to_string();
    let upstream = format!("bad={} {}", python.display(), script("misbehaving_server.py").display());
    let (report, _) = client(
        &python,
        &[
            &script("misbehaving_client.py").display().to_string(),
            "--",
            env!("CARGO_BIN_EXE_tollgate"),
            "gateway",
            "--workflow",
            &script("misbehaving.toml").display().to_string(),
            "--db",
            &db,
            "--session",
            "m1",
            "--upstream",
            &upstream,
        ],
    );
    // A result that does not say what the workflow reads (a number for a
    // text id) establishes nothing: the guarded tool stays closed.
    assert!(!is_error(&report, "lying_whoami"), "{report:#}");
    assert!(is_error(&report, "secret_after_lie"));
    assert!(step_text(&report, "secret_after_lie").contains("KNOWN-USER"), "{report:#}");
    // Arguments over the workflow's limit, of the wrong type, a tool never
    // listed: refused before anything is forwarded.
    assert!(step_text(&report, "oversized").contains("tollgate.limits.args_bytes_max"), "{report:#}");
    assert!(step_text(&report, "wrong_type").contains("is not of type"), "{report:#}");
    assert!(step_text(&report, "not_listed").contains("tollgate.unknown_tool"), "{report:#}");
    assert!(!is_error(&report, "echo"), "{report:#}");
    // The upstream dies mid-call: an error naming it, recorded as failed;
    // later calls find it gone and are refused, never passed.
    assert!(is_error(&report, "die"));
    assert!(step_text(&report, "die").contains("upstream bad failed on this call"), "{report:#}");
    assert!(is_error(&report, "after_death"));
    assert!(step_text(&report, "after_death").contains("cannot be reached"), "{report:#}");
    let shown = text(&tollgate(&["sessions", "show", "m1", "--db", &db]));
    assert!(shown.contains("\"outcome\":\"failed\""), "{shown}");
    let resume = text(&tollgate(&["sessions", "resume", "m1", "--db", &db]));
    assert!(resume.contains("no calls in doubt"), "{resume}");
}

/// A child process that is killed when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` and reads its standard error up to the line with an
/// `http://` address, which it returns (the process says where it listens).
fn listening(mut command: Command) -> (Running, String) {
    use std::io::BufRead;
    let mut child = command.stderr(Stdio::piped()).stdin(Stdio::null()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let running = Running(child);
    let mut lines = std::io::BufReader::new(stderr).lines();
    let address = loop {
        let line = lines.next().expect("the process ended before saying where it listens").unwrap();
        if let Some(at) = line.find("http://") {
            break line[at..].split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep draining its standard error so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (running, address)
}

#[test]
fn tau2_retail_over_streamable_http_on_both_sides_with_a_session_named_by_the_client() {
    let (Some(python), Some(db)) = (python(), retail_db()) else { return };
    let dir = scratch("tau2-http");
    let mut upstream = Command::new(&python);
    upstream
        .arg(root().join("fixtures/tau2-retail-mcp/server.py"))
        .args(["--db", &db.display().to_string(), "--save", &dir.join("saved.json").display().to_string()])
        .args(["--transport", "streamable-http", "--port", "0"]);
    let (_upstream, upstream_url) = listening(upstream);
    let mut gateway = command();
    gateway
        .args(["gateway", "--workflow", &root().join(RETAIL_WORKFLOW).display().to_string()])
        .args(["--db", &dir.join("tollgate.db").display().to_string()])
        .args(["--upstream", &format!("retail={upstream_url}"), "--listen", "127.0.0.1:0"]);
    let (_gateway, url) = listening(gateway);
    let script = script("tau2_client.py").display().to_string();
    let (report, _) = client(&python, &[&script, "http", "auto", &url, "retail-http"]);

    assert_eq!(report["protocol"], "2026-07-28", "{report:#}");
    // No session of its own on the newest protocol: a call naming none is refused.
    assert_eq!(report["unnamed_session"]["is_error"], true, "{report:#}");
    assert!(report["unnamed_session"]["text"].as_str().unwrap().contains("names no session"), "{report:#}");
    assert!(step_text(&report, "cancel_before_auth").contains("authenticate the user first"), "{report:#}");
    assert!(step_text(&report, "other_users_order").contains("belongs to another user"), "{report:#}");
    assert!(!is_error(&report, "cancel_after_read"), "{report:#}");
    assert_eq!(order_status(&dir.join("saved.json"), "#W8770097").as_deref(), Some("cancelled"));
    let shown =
        text(&tollgate(&["sessions", "show", "retail-http", "--db", &dir.join("tollgate.db").display().to_string()]));
    assert!(shown.contains("retail-http/cancel_pending_order:"), "{shown}");
}

#[test]
fn init_from_mcp_drafts_a_workflow_of_every_tool_that_validate_passes() {
    let (Some(python), Some(server), Some(db)) = (python(), everything(), retail_db()) else { return };
    let dir = scratch("init");
    let retail = format!(
        "retail={} {} --db {}",
        python.display(),
        root().join("fixtures/tau2-retail-mcp/server.py").display(),
        db.display()
    );
    for (name, spec, tools) in [
        ("everything", format!("everything=node {} stdio", server.display()), &["echo", "get-sum"][..]),
        ("retail", retail, &["cancel_pending_order", "find_user_id_by_email"][..]),
    ] {
        let path = dir.join(format!("{name}.toml"));
        let drafted = tollgate(&["init", "--from-mcp", &spec, "--output", &path.display().to_string()]);
        assert!(drafted.status.success(), "{}", text(&drafted));
        let draft = std::fs::read_to_string(&path).unwrap();
        for tool in tools {
            assert!(draft.contains(&format!("[tools.{tool}]")), "{tool} missing from:\n{draft}");
        }
        assert!(draft.contains("# [[tools.echo.requires]]") || name != "everything", "{draft}");
        let validated = tollgate(&["validate", &path.display().to_string()]);
        assert!(validated.status.success(), "{}\n{draft}", text(&validated));
        // A second init never overwrites the first.
        let again = tollgate(&["init", "--from-mcp", &spec, "--output", &path.display().to_string()]);
        assert!(!again.status.success(), "{}", text(&again));
    }
}

/// The handoff a refusal names (`_meta["tollgate.dev/handoff"]`).
fn handoff_of(step: &Value) -> String {
    step["meta"]["tollgate.dev/handoff"].as_str().unwrap_or_else(|| panic!("no handoff named in {step:#}")).to_owned()
}

#[test]
fn an_escalated_call_through_the_gateway_runs_once_after_a_reviewer_approves_it_and_escalates_again() {
    use std::io::{BufRead, Write};
    let (Some(python), Some(db)) = (python(), retail_db()) else { return };
    let dir = scratch("escalation");
    let store = dir.join("tollgate.db").display().to_string();
    let saved = dir.join("saved.json");
    let workflow = script("escalation.toml").display().to_string();
    let order = "#W8770097"; // pending

    // The gateway over stdio, spawned by the SDK's client, in front of the
    // τ² fixture; the client stops after the first call until told.
    let upstream = format!(
        "retail={} {} --db {} --save {}",
        python.display(),
        root().join("fixtures/tau2-retail-mcp/server.py").display(),
        db.display(),
        saved.display()
    );
    let client_log = dir.join("client.stderr");
    let mut client = Command::new(&python)
        .arg(script("escalation_client.py"))
        .args([order, "--", env!("CARGO_BIN_EXE_tollgate"), "gateway", "--workflow", &workflow])
        .args(["--db", &store, "--session", "desk-1", "--upstream", &upstream])
        .current_dir(root())
        .env_remove("TOLLGATE_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&client_log).unwrap())
        .spawn()
        .unwrap();
    let mut to_client = client.stdin.take().unwrap();
    let mut from_client = std::io::BufReader::new(client.stdout.take().unwrap()).lines();
    let log = || std::fs::read_to_string(&client_log).unwrap_or_default();
    let first = from_client.next().unwrap_or_else(|| panic!("the client ended early:\n{}", log())).unwrap();
    let escalated: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}\n{}", log()));

    // Escalated: an error result naming the handoff; nothing ran upstream
    // (the fixture saves its database after every write tool).
    assert_eq!(escalated["is_error"], true, "{escalated:#}");
    let handoff = handoff_of(&escalated);
    let said = escalated["text"].as_str().unwrap();
    assert!(said.contains("Tollgate handed this call to a person"), "{said}");
    assert!(said.contains("a cancellation needs a person's approval [CANCEL-NEEDS-A-PERSON]"), "{said}");
    assert!(said.contains(&format!("handoff {handoff}: a person decides it")), "{said}");
    assert_eq!(escalated["meta"]["tollgate.dev/decision"]["verdict"], "escalate", "{escalated:#}");
    assert!(!saved.exists(), "the escalated cancellation reached the upstream");

    // A reviewer claims and approves it through the server's API, on the
    // same store.
    let made = tollgate(&["tokens", "create", "--db", &store, "--role", "reviewer", "--name", "rita"]);
    assert!(made.status.success(), "{}", text(&made));
    let token = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    let mut serve = command();
    serve
        .args(["serve", "--workflow", &workflow, "--db", &store, "--listen", "127.0.0.1:0"])
        .current_dir(root())
        .env_remove("TOLLGATE_DB")
        .env_remove("TOLLGATE_AUDIT_KEY_FILE");
    let (_serve, url) = listening(serve);
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let (status, body) = crate::serve::http(addr, "POST", &format!("/v1/handoffs/{handoff}/claim"), Some(&token), None);
    assert_eq!(status, 200, "{body}");
    let approve = r#"{"expires_in_seconds":600}"#;
    let (status, body) =
        crate::serve::http(addr, "POST", &format!("/v1/handoffs/{handoff}/approve"), Some(&token), Some(approve));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""status":"approved""#), "{body}");

    writeln!(to_client, "approved").unwrap();
    drop(to_client);
    let rest: Vec<String> = from_client.map_while(Result::ok).collect();
    let status = client.wait().unwrap();
    assert!(status.success(), "the client failed: {status}\n{}", log());
    let report: Value = serde_json::from_str(rest.last().map_or("", String::as_str))
        .unwrap_or_else(|e| panic!("the client's report is not JSON ({e}): {rest:?}\n{}", log()));

    // The identical retry runs once, and the data changed.
    assert!(!is_error(&report, "approved_retry"), "{report:#}");
    assert_eq!(order_status(&saved, order).as_deref(), Some("cancelled"), "{report:#}");
    // Used up: the next identical retry is escalated again (a new handoff),
    // answered by Tollgate, not by the upstream (which would refuse to
    // cancel a cancelled order).
    assert!(is_error(&report, "second_retry"), "{report:#}");
    let again = step(&report, "second_retry");
    assert!(step_text(&report, "second_retry").contains("Tollgate handed this call to a person"), "{report:#}");
    assert_eq!(again["meta"]["tollgate.dev/decision"]["verdict"], "escalate", "{report:#}");
    assert_ne!(handoff_of(again), handoff, "{report:#}");
    assert!(step_text(&report, "second_retry").contains("was used once already"), "{report:#}");

    // The journal holds the escalation, the approval, the one run and the
    // second escalation; the audit log verifies.
    let shown = tollgate(&["sessions", "show", "desk-1", "--db", &store]);
    assert!(shown.status.success(), "{}", text(&shown));
    let journal = text(&shown);
    assert!(journal.contains("desk-1/cancel_pending_order:"), "the idempotency key: {journal}");
    assert!(journal.contains(r#""action":"approve""#) && journal.contains(r#""reviewer":"rita""#), "{journal}");
    let kinds: Vec<&str> = journal
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|words| words.first().is_some_and(|seq| seq.parse::<u64>().is_ok()))
        .filter_map(|words| words.get(1).copied())
        .collect();
    assert_eq!(kinds, ["decision", "human", "human", "decision", "result", "decision"], "{journal}");
    let verified = tollgate(&["audit", "verify", "--db", &store]);
    assert!(verified.status.success(), "{}", text(&verified));
}
