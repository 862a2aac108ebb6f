//! The `tollgate` binary, run as a user runs it.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

use crate::common::{JOINED_CASE_LINES, command, root, stdout, tollgate};
use std::io::Write;
use std::process::Stdio;

#[test]
fn demo_tells_the_whole_story_in_plain_text_when_piped() {
    let dir = tollgate_store::testing::temp_dir("tollgate_demo").unwrap();
    let db = dir.join("demo.db").display().to_string();
    let output = tollgate(&["demo", "--db", &db]);
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(!text.contains('\x1b'), "no colour codes when piped");
    // The first refund is blocked and the agent is told what is missing.
    assert!(text.contains("BLOCK at stage gates"));
    assert!(text.contains("verify the customer with get_customer"));
    // Another customer's order is withheld; a refund over the remainder is blocked.
    assert!(text.contains("belongs to another customer"));
    assert!(text.contains("exceeds what remains refundable on order #W1001 (40 of 120)"));
    // $800 escalates with a complete handoff.
    assert!(text.contains("ESCALATE urgency high"));
    assert!(text.contains("customer_id:          c_42"));
    assert!(text.contains("recommended_action:   approve or deny the refund of $800 on order #W1002"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.get(lines.len() - 2), Some(&"4 allowed, 5 blocked, 1 escalated"));
    // The run is kept: its session is listed and its audit log verifies.
    assert!(lines.last().is_some_and(|l| l.starts_with("stored as session demo-")), "{text}");
    assert!(stdout(&tollgate(&["sessions", "list", "--db", &db])).contains("support-refunds v1"));
    // Ten decisions and five results (four allowed calls, one withheld lookup).
    let verify = stdout(&tollgate(&["audit", "verify", "--db", &db]));
    assert!(verify.contains("audit log intact: 15 records in 1 sessions"), "{verify}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn demo_colours_when_asked() {
    let dir = tollgate_store::testing::temp_dir("tollgate_demo").unwrap();
    let db = dir.join("demo.db").display().to_string();
    let text = stdout(&tollgate(&["demo", "--color", "always", "--db", &db]));
    assert!(text.contains("\x1b[1;31mBLOCK"));
}

#[test]
fn validate_prints_a_summary_with_the_bypass_analysis() {
    let output = tollgate(&["validate", "examples/support-refunds.toml"]);
    assert!(output.status.success(), "{}", stdout(&output));
    let text = stdout(&output);
    assert!(text.starts_with("workflow support-refunds v1: valid"));
    assert!(text.contains("process_refund     customer, order"));
    assert!(text.lines().count() < 50, "one screen");
}

#[test]
fn validate_reports_problems_with_positions_and_fails() {
    let dir = std::env::temp_dir().join(format!("tollgate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("broken.toml");
    std::fs::write(&path, "[workflow]\nname = \"b\"\nversion = 1\n[tools.refund]\nrequires = [\"customer\"]\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let path_text = path.display().to_string();
    let output = tollgate(&["validate", &path_text]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains(&format!("{path_text}:4:1: tool 'refund' requires unknown fact 'customer'")), "{text}");
    let missing = tollgate(&["validate", "no/such/file.toml"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stdout(&missing).contains("cannot read the file"));
}

#[test]
fn validate_warns_where_a_key_can_be_null_and_still_passes() {
    let dir = std::env::temp_dir().join(format!("tollgate-cli-warn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("invoices.toml");
    let text = "[workflow]\nname = \"invoices\"\nversion = 1\n\
                [aggregates.paid]\ntool = \"pay\"\nsum = \"args.amount\"\nby = \"args.invoice\"\n\
                [tools.pay]\nargs = { type = \"object\", required = [\"amount\", \"invoice\"], \
                properties = { amount = { type = \"number\" }, invoice = { type = [\"string\", \"null\"] } } }\n";
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let path_text = path.display().to_string();
    let output = tollgate(&["validate", &path_text]);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "{path_text}:7:6: warning: aggregate 'paid' is keyed by args.invoice, which cannot always be computed"
        )) && out.contains("blocked by aggregate.paid"),
        "{out}"
    );
}

#[test]
fn run_prints_one_decision_per_call_from_stdin() {
    let mut child = command()
        .args(["run", "--workflow", "examples/support-refunds.toml", "-"])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let script = concat!(
        r##"{"call": {"id": "c1", "tool": "process_refund", "args": {"order_id": "#W1", "amount": 5}}}"##,
        "\n",
        r##"{"call": {"id": "c2", "tool": "get_customer", "args": {"email": "a@example.com", "zip": "12345"}}}"##,
        "\n"
    );
    if let Some(stdin) = child.stdin.as_mut() {
        stdin.write_all(script.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    }
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<serde_json::Value> =
        stdout(&output).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["decision"]["verdict"], "block");
    assert_eq!(lines[1]["decision"]["verdict"], "allow");
}

#[test]
fn run_rejects_a_malformed_script_with_its_line() {
    let dir = std::env::temp_dir().join(format!("tollgate-cli-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("bad.jsonl");
    std::fs::write(&path, "{\"call\": {\"id\": \"c1\", \"tool\": \"x\"}}\n{not json\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let output = tollgate(&["run", "--workflow", "examples/support-refunds.toml", &path.display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("bad.jsonl:2: malformed JSON"));
}

#[test]
fn bench_decide_checks_its_cases_and_reports_every_one() {
    let output = tollgate(&["bench", "decide", "--calls", "80"]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    for case in ["allow: exactly $500", "block: nobody verified", "escalate: $800", "all cases"] {
        assert!(text.contains(case), "{case} missing from:\n{text}");
    }
    let bad = tollgate(&["bench", "decide", "--calls", "0"]);
    assert!(!bad.status.success());
    let none = tollgate(&["bench", "decide", "--case", "no such case"]);
    assert!(!none.status.success());
}

#[test]
fn stored_sessions_and_the_audit_log_are_inspectable_and_tampering_is_caught() {
    let dir = tollgate_store::testing::temp_dir("tollgate_cli").unwrap();
    let db = dir.join("t.db").display().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tollgate-protocol/tests/scripts/refunds_story.jsonl");
    let workflow = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/support-refunds.toml");
    let run = tollgate(&["run", "--workflow", workflow, "--db", &db, "--session", "s1", script]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let list = stdout(&tollgate(&["sessions", "list", "--db", &db]));
    assert!(list.contains("s1  support-refunds v1"), "{list}");
    let resume = stdout(&tollgate(&["sessions", "resume", "s1", "--db", &db]));
    assert!(resume.contains("in doubt: call c14 (process_refund)"), "{resume}");
    assert!(resume.contains("s1/process_refund:c14"), "{resume}");
    let verify = tollgate(&["audit", "verify", "--db", &db]);
    assert!(verify.status.success() && stdout(&verify).contains("audit log intact"));
    let export = stdout(&tollgate(&["audit", "export", "--db", &db]));
    assert_eq!(export.lines().count(), 21, "{export}");

    // Alter one stored record behind Tollgate's back.
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let store = tollgate_store::Store::open(&db).await.unwrap();
        let sql = "UPDATE tollgate_audit SET body = '{}' WHERE seq = 5";
        assert_eq!(tollgate_store::testing::execute(&store, sql).await.unwrap(), 1);
        store.close().await;
    });
    let verify = tollgate(&["audit", "verify", "--db", &db]);
    assert!(!verify.status.success());
    assert!(stdout(&verify).contains("BROKEN at record 5"), "{}", stdout(&verify));
    let missing = tollgate(&["sessions", "show", "nope", "--db", &db]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no session 'nope'"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    let dir = tollgate_store::testing::temp_dir("tollgate_pipe").unwrap();
    let db = dir.join("pipe.db").display().to_string();
    let script = dir.join("long.jsonl");
    // A session whose journal is far longer than a pipe's buffer.
    let lines: Vec<String> = (0..2_000)
        .map(|i| {
            format!(
                r#"{{"call": {{"id": "c{i}", "tool": "get_customer", "args": {{"email": "a@b.c", "zip": "12345"}}}}}}"#
            )
        })
        .collect();
    std::fs::write(&script, lines.join("\n")).unwrap();
    let run = tollgate(&[
        "run",
        "--workflow",
        "examples/support-refunds.toml",
        &script.display().to_string(),
        "--db",
        &db,
        "--session",
        "long",
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let child = command()
        .args(["sessions", "show", "long", "--db", &db])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    read_a_little_then_close(child, "session long");
    // The same for validate (many files) and a run in memory.
    let many: Vec<&str> = std::iter::repeat_n("examples/tau2-airline.toml", 200).collect();
    let child = command()
        .arg("validate")
        .args(&many)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    read_a_little_then_close(child, "workflow tau2-airline");
    let child = command()
        .args(["run", "--workflow", "examples/support-refunds.toml", &script.display().to_string()])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    read_a_little_then_close(child, "{\"call\":\"c0\"");
    std::fs::remove_dir_all(&dir).ok();
}

/// Reads the start of a command's output, then closes the pipe as `| head
/// -1` does: the command must end quietly with success, not panic.
fn read_a_little_then_close(mut child: std::process::Child, starts_with: &str) {
    let mut first = [0u8; 64];
    let read = std::io::Read::read(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    let text = String::from_utf8_lossy(&first[..read]).into_owned();
    assert!(text.starts_with(starts_with), "{text}");
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}

#[test]
fn the_multi_concern_demo_runs_its_branches_in_parallel_and_joins_them() {
    let dir = tollgate_store::testing::temp_dir("tollgate_demo").unwrap();
    let db = dir.join("demo.db").display().to_string();
    let output = tollgate(&["demo", "--scenario", "multi-concern", "--db", &db]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}\n{}", String::from_utf8_lossy(&output.stderr));
    for expected in [
        "[tollgate.investigations.running]",
        "branch refund (",
        "branch address (",
        "branch charge (",
        "customer is already established for this session and cannot change",
    ]
    .iter()
    .chain(JOINED_CASE_LINES)
    {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.last().unwrap();
    let numbers: Vec<u64> = last
        .strip_prefix("parallel wall time: ")
        .and_then(|rest| rest.split_once(" ms; sum of branches: "))
        .and_then(|(wall, sum)| Some(vec![wall.parse().ok()?, sum.strip_suffix(" ms")?.parse().ok()?]))
        .unwrap_or_else(|| panic!("last line is not the timing line: {last:?}"));
    let (wall, sum) = (numbers[0], numbers[1]);
    let slowest: u64 =
        lines[lines.len() - 2].strip_prefix("slowest branch: ").unwrap().strip_suffix(" ms").unwrap().parse().unwrap();
    // Three branches of three 50 ms tool calls each: run one after another
    // they would take the sum; in parallel about the slowest branch. Loose
    // bounds, so a loaded machine does not make this flaky.
    assert!(slowest >= 150 && sum >= 3 * 150, "{last}; slowest {slowest}");
    assert!(wall <= sum * 2 / 3, "not parallel: {last}");
    assert!(wall <= slowest * 2, "wall {wall} ms against a slowest branch of {slowest} ms");
    let verify = tollgate(&["audit", "verify", "--db", &db]);
    assert!(verify.status.success(), "{}", stdout(&verify));
}

#[test]
fn inspecting_a_store_that_is_not_there_is_an_error_and_creates_nothing() {
    let dir = tollgate_store::testing::temp_dir("tollgate_missing").unwrap();
    let db = dir.join("nope.db").display().to_string();
    for args in [
        vec!["audit", "verify", "--db", &db],
        vec!["sessions", "list", "--db", &db],
        vec!["sessions", "show", "x", "--db", &db],
    ] {
        let output = tollgate(&args);
        assert!(!output.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("no store at"), "{args:?}");
        assert!(!std::path::Path::new(&db).exists(), "{args:?} created the store");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The durable benchmark writes a million audit records; it refuses to
/// write them into a store that exists and leaves that store as it was.
#[test]
fn bench_durable_refuses_a_store_that_is_there() {
    let dir = tollgate_store::testing::temp_dir("tollgate_bench_refusal").unwrap();
    let db = dir.join("demo.db").display().to_string();
    assert!(tollgate(&["demo", "--db", &db]).status.success());
    let before = tollgate(&["audit", "verify", "--db", &db]);
    assert!(before.status.success());
    let output = tollgate(&["bench", "durable", "--db", &db]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("exists") && error.contains("path that does not exist"), "{error}");
    assert_eq!(stdout(&tollgate(&["audit", "verify", "--db", &db])), stdout(&before), "the store was changed");
}

#[test]
fn the_audit_head_is_signed_by_the_writers_key_and_a_rollback_past_a_published_head_is_caught() {
    let dir = tollgate_store::testing::temp_dir("tollgate_audit_key").unwrap();
    let db = dir.join("t.db").display().to_string();
    let key_file = dir.join("audit.key");
    let keygen = tollgate(&["audit", "keygen", "--out", &key_file.display().to_string()]);
    assert!(keygen.status.success(), "{}", String::from_utf8_lossy(&keygen.stderr));
    let public = stdout(&keygen).trim().to_owned();
    assert_eq!(public.len(), 64, "{public}");
    assert!(
        !tollgate(&["audit", "keygen", "--out", &key_file.display().to_string()]).status.success(),
        "never overwritten"
    );
    let workflow = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/support-refunds.toml");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tollgate-protocol/tests/scripts/refunds_story.jsonl");
    let signed_run = |session: &str| {
        command()
            .args(["run", "--workflow", workflow, "--db", &db, "--session", session, script])
            .env("TOLLGATE_AUDIT_KEY_FILE", &key_file)
            .output()
            .unwrap()
    };
    assert!(signed_run("s1").status.success());
    let head_file = dir.join("head.json");
    let head = stdout(&tollgate(&["audit", "head", "--db", &db]));
    let published: serde_json::Value = serde_json::from_str(&head).unwrap();
    assert_eq!(published["signer"], public.as_str());
    std::fs::write(&head_file, &head).unwrap();
    assert!(signed_run("s2").status.success());

    let head_arg = head_file.display().to_string();
    let verify = tollgate(&["audit", "verify", "--db", &db, "--key", &public, "--head", &head_arg]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert!(stdout(&verify).contains(&format!("head signed by {public}")));
    let unkeyed = tollgate(&["audit", "verify", "--db", &db]);
    assert!(stdout(&unkeyed).contains("chains only"), "{}", stdout(&unkeyed));

    // Roll the log back to before the published head: the chains hold (it is
    // a clean prefix) and its head's signature is a real one, an old one.
    let before = published["seq"].as_i64().unwrap() - 3;
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let store = tollgate_store::Store::open(&db).await.unwrap();
        let records = store.audit_records(before - 1, 1).await.unwrap();
        let sql = format!("DELETE FROM tollgate_audit WHERE seq > {before}");
        tollgate_store::testing::execute(&store, &sql).await.unwrap();
        let sql = format!("UPDATE tollgate_audit_head SET seq = {before}, hash = '{}' WHERE id = 1", records[0].hash);
        tollgate_store::testing::execute(&store, &sql).await.unwrap();
        store.close().await;
    });
    let chains = tollgate(&["audit", "verify", "--db", &db]);
    assert!(chains.status.success(), "{}", stdout(&chains));
    let rolled = tollgate(&["audit", "verify", "--db", &db, "--head", &head_arg]);
    assert!(!rolled.status.success());
    assert!(stdout(&rolled).contains("rolled back"), "{}", stdout(&rolled));
    let with_key = tollgate(&["audit", "verify", "--db", &db, "--key", &public]);
    assert!(!with_key.status.success(), "the old head's signature does not cover the rolled-back head");
    std::fs::remove_dir_all(&dir).ok();
}

/// A script or a trace file larger than any real one is refused before it is
/// read (a sparse file: its size is there, its bytes are not).
#[test]
fn a_script_or_trace_over_its_limit_is_refused_before_it_is_read() {
    let dir = tollgate_store::testing::temp_dir("tollgate_limits").unwrap();
    let huge = |name: &str, bytes: u64| {
        let path = dir.join(name);
        std::fs::File::create(&path).unwrap().set_len(bytes).unwrap();
        path.display().to_string()
    };
    let workflow = "examples/support-refunds.toml";
    let script = huge("script.jsonl", 64 * 1024 * 1024 + 1);
    let run = tollgate(&["run", "--workflow", workflow, &script]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("over the limit of 67108864 bytes"), "{run:?}");
    let traces = huge("traces.jsonl", 256 * 1024 * 1024 + 1);
    let db = dir.join("t.db").display().to_string();
    let replay = tollgate(&["replay", "--workflow", workflow, "--db", &db, &traces]);
    assert!(!replay.status.success());
    assert!(String::from_utf8_lossy(&replay.stderr).contains("over the limit of 268435456 bytes"), "{replay:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn tokens_are_made_printed_once_listed_without_their_secret_and_revoked() {
    let dir = tollgate_store::testing::temp_dir("tollgate_tokens").unwrap();
    let db = dir.join("t.db").display().to_string();
    let made = tollgate(&["tokens", "create", "--db", &db, "--tenant", "acme", "--role", "reviewer", "--name", "Ann"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let secret = stdout(&made).trim().to_owned();
    assert!(secret.starts_with("tg_"), "{secret}");
    let id = secret.split('_').nth(1).unwrap().to_owned();
    let list = stdout(&tollgate(&["tokens", "list", "--db", &db]));
    assert!(list.contains(&id) && list.contains("reviewer") && list.contains("acme") && list.contains("Ann"), "{list}");
    assert!(!list.contains(&secret[20..]), "the secret is never listed");
    let wrong = tollgate(&["tokens", "create", "--db", &db, "--role", "owner", "--name", "x"]);
    assert!(!wrong.status.success() && String::from_utf8_lossy(&wrong.stderr).contains("agent, reviewer or admin"));
    assert!(tollgate(&["tokens", "revoke", &id, "--db", &db]).status.success());
    assert!(stdout(&tollgate(&["tokens", "list", "--db", &db])).contains("revoked at"));
    assert!(!tollgate(&["tokens", "revoke", &id, "--db", &db]).status.success(), "revoked once");
    std::fs::remove_dir_all(&dir).ok();
}
