//! `tollgate serve` as a user runs it: a token made with `tollgate tokens
//! create`, the server started on a port the system picks, an agent's
//! session and call over plain HTTP, the desk's sign-in page, then SIGTERM
//! and a graceful stop with the store intact.

use crate::common::{root, stderr, text, tollgate};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

/// One HTTP/1.1 request on a fresh connection; the status and the body.
pub(crate) fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[test]
fn serve_answers_an_agent_and_the_desk_then_stops_on_sigterm() {
    let dir = tollgate_store::testing::temp_dir("serve").unwrap();
    let db = dir.join("tollgate.db").display().to_string();
    let made = tollgate(&["tokens", "create", "--db", &db, "--role", "agent", "--name", "bot"]);
    assert!(made.status.success(), "{}", text(&made));
    let token = String::from_utf8_lossy(&made.stdout).trim().to_owned();

    let desk_key = dir.join("desk.key");
    std::fs::write(&desk_key, "one secret for every replica of this desk\n").unwrap();
    let desk_key = desk_key.display().to_string();
    let mut server = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--workflow", "examples/support-refunds.toml", "--db", &db, "--listen", "127.0.0.1:0"])
        .args(["--desk-key-file", &desk_key])
        .current_dir(root())
        .env_remove("TOLLGATE_DB")
        .env_remove("TOLLGATE_AUDIT_KEY_FILE")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();

    assert_eq!(http(&addr, "GET", "/healthz", None, None).0, 200);
    let (status, body) =
        http(&addr, "POST", "/v1/sessions", Some(&token), Some(r#"{"id":"s1","workflow":"support-refunds"}"#));
    assert_eq!(status, 201, "{body}");
    let call = r##"{"id":"c1","tool":"process_refund","args":{"order_id":"#W1","amount":30}}"##;
    let (status, body) = http(&addr, "POST", "/v1/sessions/s1/calls", Some(&token), Some(call));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""verdict":"block""#), "{body}");
    let (status, page) = http(&addr, "GET", "/desk/sign-in", None, None);
    assert_eq!(status, 200, "{page}");

    let killed = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = server.wait().unwrap();
    assert!(status.success(), "{status}: {rest:?}");
    assert!(rest.iter().any(|line| line.contains("stopped")), "{rest:?}");

    // The store is intact and holds the call.
    let verified = tollgate(&["audit", "verify", "--db", &db]);
    assert!(verified.status.success(), "{}", text(&verified));
}

#[test]
fn serve_refuses_to_start_on_a_bad_workflow_or_address() {
    let dir = tollgate_store::testing::temp_dir("serve").unwrap();
    let db = dir.join("tollgate.db").display().to_string();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "this is not a workflow").unwrap();
    let out = tollgate(&["serve", "--workflow", &bad.display().to_string(), "--db", &db, "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("bad.toml"), "{}", text(&out));
    let out = tollgate(&["serve", "--workflow", "examples/support-refunds.toml", "--db", &db, "--listen", "nowhere"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--listen"), "{}", text(&out));
    let short = dir.join("desk.key");
    std::fs::write(&short, "too short").unwrap();
    let out = tollgate(&[
        "serve",
        "--workflow",
        "examples/support-refunds.toml",
        "--db",
        &db,
        "--listen",
        "127.0.0.1:0",
        "--desk-key-file",
        &short.display().to_string(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("at least 16"), "{}", text(&out));
}
