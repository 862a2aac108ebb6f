//! `tollgate serve --extmcp-listen`: agentgateway's external MCP policy
//! protocol, with a real gRPC client (grpcio; stubs generated from
//! `crates/tollgate-extmcp/proto/ext_mcp.proto` by grpcio-tools, both from
//! `.ci/venv`) playing the gateway's half, and the τ²-retail MCP server
//! (official MCP SDK) as the upstream it forwards to. The script prints what
//! each step came to; the assertions are here. Outside CI a missing venv or
//! τ² database skips with a message; under `CI=true` it fails.

use crate::common::{root, text, tollgate};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn missing(what: &str) {
    assert!(!under_ci(), "{what} is missing under CI=true");
    eprintln!("skipping the ExtMcp test: {what} is missing");
}

fn python() -> Option<PathBuf> {
    let python = root().join(".ci/venv/bin/python");
    let ok = python.exists()
        && Command::new(&python)
            .args(["-c", "import grpc, grpc_tools, mcp"])
            .output()
            .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    missing(".ci/venv with grpcio, grpcio-tools and the MCP SDK (run .ci/python)");
    None
}

fn retail_db() -> Option<PathBuf> {
    let path = root().join("../shared/tau/tau2-bench/retail/db.json");
    if path.exists() {
        return Some(path);
    }
    missing("shared/tau/tau2-bench/retail/db.json");
    None
}

fn token(db: &str, role: &str, name: &str) -> String {
    let made = tollgate(&["tokens", "create", "--db", db, "--role", role, "--name", name]);
    assert!(made.status.success(), "{}", text(&made));
    String::from_utf8_lossy(&made.stdout).trim().to_owned()
}

/// A `tollgate serve` with the ExtMcp service; its gRPC address.
fn serve(db: &str) -> (Child, String) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--workflow", "examples/tau2-retail.toml", "--db", db, "--listen", "127.0.0.1:0"])
        .args(["--extmcp-listen", "127.0.0.1:0"])
        .current_dir(root())
        .env_remove("TOLLGATE_DB")
        .env_remove("TOLLGATE_AUDIT_KEY_FILE")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("tollgate serve ended before naming its ExtMcp address: {seen:?}")
        };
        if let Some(rest) = line.split("ExtMcp policy service on ").nth(1) {
            break rest.split(' ').next().unwrap_or_default().to_owned();
        }
        seen.push(line);
    };
    // Keep draining standard error so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    (server, addr)
}

fn stop(mut server: Child) {
    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    let status = server.wait().unwrap();
    assert!(status.success(), "tollgate serve did not stop cleanly: {status}");
}

fn gateway_side(python: &Path, addrs: &str, agent: &str, reviewer: &str, dir: &Path, db: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/extmcp/gateway_side.py");
    let fixture = root().join("fixtures/tau2-retail-mcp/server.py");
    let saved = dir.join("saved.json");
    let output = Command::new(python)
        .arg(&script)
        .args([addrs, agent, reviewer, "retail-x1", "--"])
        .arg(python)
        .arg(&fixture)
        .arg("--db")
        .arg(db)
        .arg("--save")
        .arg(&saved)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(output.status.success(), "the gateway side failed:\n{}", text(&output));
    let out = String::from_utf8_lossy(&output.stdout);
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("its report is not JSON ({e}):\n{}", text(&output)))
}

fn order_status(saved: &Path, order: &str) -> Option<String> {
    let db: Value = serde_json::from_str(&std::fs::read_to_string(saved).ok()?).ok()?;
    db["orders"][order]["status"].as_str().map(str::to_owned)
}

/// What the τ² run must show, whatever the store and however many replicas.
fn assert_the_retail_run(report: &Value, saved: &Path) {
    let step = |name: &str| report.get(name).unwrap_or_else(|| panic!("no step {name} in {report:#}"));
    // Cancelling before authenticating: refused with the reasons and the
    // decision as data; the upstream was never asked.
    let refused = &step("cancel_before_auth")["request"];
    assert_eq!(refused["verdict"], "error", "{report:#}");
    assert_eq!(refused["code"], "PERMISSION_DENIED", "{report:#}");
    let reason = refused["reason"].as_str().unwrap();
    assert!(
        reason.contains("Tollgate blocked this call") && reason.contains("authenticate the user first"),
        "{reason}"
    );
    assert_eq!(refused["data"]["tollgate.dev/decision"]["verdict"], "block", "{report:#}");
    assert_eq!(step("cancel_before_auth")["ran"], false);

    // Authentication: let through and delivered unchanged.
    assert_eq!(step("find_user")["response"]["verdict"], "pass", "{report:#}");
    assert!(step("find_user")["text"].as_str().unwrap().contains("ivan_santos_6635"), "{report:#}");

    // Another user's order: it ran, and what the client gets is the reason
    // it is withheld, not the order.
    let other = step("other_users_order");
    assert_eq!(other["response"]["verdict"], "mutated", "{report:#}");
    assert_eq!(other["delivered"]["isError"], true, "{report:#}");
    let withheld = other["text"].as_str().unwrap();
    assert!(withheld.contains("belongs to another user"), "{withheld}");
    assert!(!other["delivered"].to_string().contains("james_li"), "the withheld order leaked: {report:#}");

    // The careful path: the own order read (its result matched to the one
    // call awaiting it), then the cancellation, forwarded with its
    // idempotency key; the data changed.
    assert_eq!(step("own_order")["response"]["verdict"], "pass", "{report:#}");
    let cancel = step("cancel_after_read");
    assert_eq!(cancel["request"]["verdict"], "mutated", "{report:#}");
    let key = cancel["forwarded_meta"]["tollgate.dev/idempotency-key"].as_str().unwrap_or_default();
    assert!(key.starts_with("retail-x1/cancel_pending_order:"), "{report:#}");
    assert_eq!(cancel["response"]["verdict"], "pass", "{report:#}");
    assert_eq!(order_status(saved, "#W8770097").as_deref(), Some("cancelled"));

    // Refusals that are not the workflow's are still answers, not errors a
    // gateway might pass.
    for (name, code) in [
        ("no_token", "PERMISSION_DENIED"),
        ("forged_token", "PERMISSION_DENIED"),
        ("reviewer_token", "PERMISSION_DENIED"),
        ("no_session", "INVALID"),
        ("no_tool_name", "INVALID"),
    ] {
        assert_eq!(report[name]["verdict"], "error", "{name}: {report:#}");
        assert_eq!(report[name]["code"], code, "{name}: {report:#}");
    }
    assert!(report["reviewer_token"]["reason"].as_str().unwrap().contains("agent token"), "{report:#}");
    assert!(report["no_session"]["reason"].as_str().unwrap().contains("names no session"), "{report:#}");
    assert_eq!(report["tools_list"]["verdict"], "pass", "{report:#}");
    assert_eq!(report["unknown_method"], "UNIMPLEMENTED", "{report:#}");
}

#[test]
fn extmcp_decides_a_tau2_retail_run_for_the_gateway_and_records_what_it_forwards() {
    let (Some(python), Some(retail)) = (python(), retail_db()) else { return };
    let dir = tollgate_store::testing::temp_dir("extmcp").unwrap();
    let db = dir.join("tollgate.db").display().to_string();
    let agent = token(&db, "agent", "agentgateway");
    let reviewer = token(&db, "reviewer", "ann");
    let (server, addr) = serve(&db);
    let report = gateway_side(&python, &addr, &agent, &reviewer, &dir, &retail);
    stop(server);
    assert_the_retail_run(&report, &dir.join("saved.json"));

    // Every decision and result is in the session's journal; the audit log verifies.
    let shown = tollgate(&["sessions", "show", "retail-x1", "--db", &db]);
    assert!(shown.status.success(), "{}", text(&shown));
    let journal = text(&shown);
    for needle in [
        "cancel_pending_order",
        "\"result\":\"ivan_santos_6635\"",
        "\"user_id\":\"james_li_5688\"",
        "retail-x1/cancel_pending_order:",
    ] {
        assert!(journal.contains(needle), "{needle} not in the journal:\n{journal}");
    }
    let verified = tollgate(&["audit", "verify", "--db", &db]);
    assert!(verified.status.success(), "{}", text(&verified));
}

#[test]
fn two_replicas_on_one_postgresql_share_the_gateways_sessions() {
    let (Some(python), Some(retail)) = (python(), retail_db()) else { return };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(db) = runtime.block_on(tollgate_store::testing::postgres_schema_url()) else { return };
    let dir = tollgate_store::testing::temp_dir("extmcp-pg").unwrap();
    let agent = token(&db, "agent", "agentgateway");
    let reviewer = token(&db, "reviewer", "ann");
    let (first, first_addr) = serve(&db);
    let (second, second_addr) = serve(&db);
    // Every RPC goes to the other replica than the one before: a request
    // decided by one has its result recorded by the other, and the
    // authentication one recorded gates the cancellation the other decides.
    let report = gateway_side(&python, &format!("{first_addr},{second_addr}"), &agent, &reviewer, &dir, &retail);
    stop(first);
    stop(second);
    assert_the_retail_run(&report, &dir.join("saved.json"));
}

#[test]
fn a_store_that_cannot_be_reached_is_a_refusal_the_gateway_reads_not_an_error_it_might_pass() {
    let Some(python) = python() else { return };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let Some(db) = runtime.block_on(tollgate_store::testing::postgres_schema_url()) else { return };
    let agent = token(&db, "agent", "agentgateway");
    let (server, addr) = serve(&db);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/extmcp/gateway_side.py");
    let once = || {
        let output = Command::new(&python).arg(&script).args(["--once", &addr, &agent, "s-down"]).output().unwrap();
        assert!(output.status.success(), "{}", text(&output));
        let out = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str::<Value>(out.lines().last().unwrap_or_default()).unwrap()
    };
    let up = once();
    assert_eq!(up["request"]["verdict"], "pass", "{up:#}");
    assert_eq!(up["response"]["verdict"], "pass", "{up:#}");

    // The store goes away under the running server: its schema dropped.
    let schema = db.split("search_path%3D").nth(1).unwrap().to_owned();
    let base = tollgate_store::testing::postgres_url();
    let dropped = Command::new("psql")
        .args([base.as_str(), "-q", "-c", &format!("DROP SCHEMA {schema} CASCADE")])
        .output()
        .unwrap();
    assert!(dropped.status.success(), "{}", text(&dropped));

    let down = once();
    for phase in ["request", "response"] {
        assert_eq!(down[phase]["verdict"], "error", "{phase}: {down:#}");
        assert_eq!(down[phase]["code"], "PERMISSION_DENIED", "{phase}: {down:#}");
    }
    assert!(down["request"]["reason"].as_str().unwrap().contains("could not"), "{down:#}");
    stop(server);
}
