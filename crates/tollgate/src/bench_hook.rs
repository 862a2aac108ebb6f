//! `tollgate bench hook`: process start to answer of `tollgate hook`, as a
//! client runs it (one process per event, the event on standard input), on
//! a workflow with its SQLite store; beside `tollgate --version` started
//! the same way in the same run, the floor no hook can beat.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// One session's events: the answer each must give ("allow", "deny" or
/// "none"). A cancel before authentication (denied), the authentication,
/// reading the order, the cancel (allowed), each with its result.
fn session_events(session: &str) -> Vec<(serde_json::Value, &'static str)> {
    use serde_json::json;
    let user = "sara_doe_496";
    let order = json!({"order_id": "#W1", "user_id": user, "status": "pending", "items": [], "payment_history": []});
    let cancel = json!({"order_id": "#W1", "reason": "no longer needed"});
    let event = |name: &str, id: &str, tool: &str, input: &serde_json::Value| {
        json!({"session_id": session, "hook_event_name": name, "tool_name": format!("mcp__retail__{tool}"),
               "tool_input": input, "tool_use_id": id, "cwd": "/w", "permission_mode": "default"})
    };
    let post = |id: &str, tool: &str, input: &serde_json::Value, response: serde_json::Value| {
        let mut e = event("PostToolUse", id, tool, input);
        if let Some(object) = e.as_object_mut() {
            object.insert("tool_response".into(), response);
        }
        e
    };
    let email = json!({"email": "sara@example.com"});
    let read = json!({"order_id": "#W1"});
    let cancelled = json!({"order_id": "#W1", "user_id": user, "status": "cancelled", "items": [],
                           "payment_history": []});
    vec![
        (event("PreToolUse", "toolu_0", "cancel_pending_order", &cancel), "deny"),
        (event("PreToolUse", "toolu_1", "find_user_id_by_email", &email), "allow"),
        (post("toolu_1", "find_user_id_by_email", &email, json!(user)), "none"),
        (event("PreToolUse", "toolu_2", "get_order_details", &read), "allow"),
        (post("toolu_2", "get_order_details", &read, json!(order.to_string())), "none"),
        (event("PreToolUse", "toolu_3", "cancel_pending_order", &cancel), "allow"),
        (post("toolu_3", "cancel_pending_order", &cancel, json!(cancelled.to_string())), "none"),
    ]
}

/// Runs `exe args` with `input` on standard input; the time from spawn to
/// its exit, and its standard output.
fn timed(exe: &Path, args: &[&str], input: &[u8]) -> Result<(Duration, String)> {
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input)?;
    }
    let output = child.wait_with_output()?;
    let took = started.elapsed();
    if output.status.code() != Some(0) {
        bail!("{} {args:?} exited {:?}: {}", exe.display(), output.status, String::from_utf8_lossy(&output.stderr));
    }
    Ok((took, String::from_utf8_lossy(&output.stdout).into_owned()))
}

fn what(stdout: &str) -> &'static str {
    if stdout.contains("\"permissionDecision\":\"allow\"") {
        "allow"
    } else if stdout.contains("\"permissionDecision\":\"deny\"") {
        "deny"
    } else if stdout.trim() == "{}" {
        "none"
    } else {
        "other"
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Times `calls` hook events (sessions of seven) and as many `--version`
/// runs, interleaved; prints median and p99 of each.
pub fn hook_bench(workflow: &Path, calls: usize) -> Result<ExitCode> {
    crate::validate::load(workflow)?;
    let exe = std::env::current_exe().context("cannot tell where this tollgate is")?;
    let dir = std::env::temp_dir().join(format!("tollgate-bench-hook-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("hook.db").display().to_string();
    let workflow = workflow.display().to_string();
    let args = ["hook", "--workflow", workflow.as_str(), "--db", db.as_str()];
    let (mut hook, mut floor) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    let mut session = 0;
    let outcome = (|| -> Result<()> {
        while hook.len() < calls {
            session += 1;
            for (event, expected) in session_events(&format!("bench-{session}")) {
                if hook.len() == calls {
                    break;
                }
                floor.push(timed(&exe, &["--version"], b"")?.0);
                let (took, stdout) = timed(&exe, &args, event.to_string().as_bytes())?;
                if what(&stdout) != expected {
                    bail!("expected {expected} for {event}, the hook answered {stdout}");
                }
                hook.push(took);
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    outcome?;
    hook.sort();
    floor.sort();
    out!(
        "tollgate bench hook: {calls} hook events ({session} sessions; PreToolUse and PostToolUse) on {workflow} with SQLite"
    );
    out!("  tollgate hook       median {}  p99 {}", ms(percentile(&hook, 0.5)), ms(percentile(&hook, 0.99)));
    out!(
        "  tollgate --version  median {}  p99 {}  (process start, the floor)",
        ms(percentile(&floor, 0.5)),
        ms(percentile(&floor, 0.99))
    );
    Ok(ExitCode::SUCCESS)
}
