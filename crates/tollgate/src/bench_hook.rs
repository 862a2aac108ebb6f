//! `tollgate bench hook`: process start to answer of `tollgate hook`, as a
//! client runs it (one process per event, the event on standard input), on
//! a workflow with its SQLite store: through a warm resident process (the
//! default), and deciding in the process (`--no-resident`); beside
//! `tollgate --version` started the same way in the same run, the floor no
//! hook can beat.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
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
fn timed(exe: &Path, args: &[&str], input: &[u8], run: &Path) -> Result<(Duration, String)> {
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(args)
        .env(tollgate_hook::socket::RUNTIME_DIR_ENV, run)
        // Only the resident answers on that path: a miss would be a
        // refusal, and the bench stops.
        .env(crate::hook::RESIDENT_ENV, "required")
        .env_remove(crate::hook::NO_RESIDENT_ENV)
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

/// A resident process the bench started (in a runtime directory of its
/// own), stopped when dropped.
struct Resident(std::process::Child);

impl Resident {
    /// Starts one and waits until it listens.
    fn start(exe: &Path, workflow: &str, db: &str, run: &Path) -> Result<Resident> {
        use std::io::BufRead;
        let mut child = Command::new(exe)
            .args(["hook", "serve", "--workflow", workflow, "--db", db])
            .env(tollgate_hook::socket::RUNTIME_DIR_ENV, run)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the resident process")?;
        let stdout = child.stdout.take().context("no standard output")?;
        let resident = Resident(child);
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        if !line.starts_with("listening ") {
            bail!("the resident process did not start: {line:?}");
        }
        Ok(resident)
    }
}

impl Drop for Resident {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Median and p99 of `times`.
fn line(name: &str, times: &mut [Duration], note: &str) {
    times.sort();
    out!("  {name:<30} median {}  p99 {}{note}", ms(percentile(times, 0.5)), ms(percentile(times, 0.99)));
}

/// Times `calls` hook events (sessions of seven) through a warm resident,
/// as many decided in the process, and as many `--version` runs,
/// interleaved; prints median and p99 of each.
pub fn hook_bench(workflow: &Path, calls: usize) -> Result<ExitCode> {
    crate::validate::load(workflow)?;
    let exe = std::env::current_exe().context("cannot tell where this tollgate is")?;
    let dir = std::env::temp_dir().join(format!("tollgate-bench-hook-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("hook.db").display().to_string();
    let workflow = std::fs::canonicalize(workflow)?.display().to_string();
    // The bench's resident in a directory of its own: no other resident
    // answers, and it is stopped at the end.
    let run = dir.join("run");
    std::fs::DirBuilder::new().mode(0o700).create(&run)?;
    let outcome = (|| -> Result<Series> {
        let _resident = Resident::start(&exe, &workflow, &db, &run)?;
        series(&exe, &workflow, &db, calls, &run)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let mut series = outcome?;
    out!(
        "tollgate bench hook: {calls} hook events per path ({} sessions each; PreToolUse and PostToolUse) on {workflow} with SQLite",
        series.sessions
    );
    line("tollgate hook (resident, warm)", &mut series.resident, "");
    line("tollgate hook --no-resident", &mut series.in_process, "");
    line("tollgate --version", &mut series.floor, "  (process start, the floor)");
    Ok(ExitCode::SUCCESS)
}

struct Series {
    resident: Vec<Duration>,
    in_process: Vec<Duration>,
    floor: Vec<Duration>,
    sessions: usize,
}

fn series(exe: &Path, workflow: &str, db: &str, calls: usize, run: &Path) -> Result<Series> {
    let resident_args = ["hook", "--workflow", workflow, "--db", db];
    let in_process_args = ["hook", "--workflow", workflow, "--db", db, "--no-resident"];
    let mut series = Series {
        resident: Vec::with_capacity(calls),
        in_process: Vec::with_capacity(calls),
        floor: Vec::with_capacity(calls),
        sessions: 0,
    };
    while series.resident.len() < calls {
        series.sessions += 1;
        let resident_events = session_events(&format!("bench-resident-{}", series.sessions));
        let in_process_events = session_events(&format!("bench-in-process-{}", series.sessions));
        for ((event, expected), (other, _)) in resident_events.into_iter().zip(in_process_events) {
            if series.resident.len() == calls {
                break;
            }
            series.floor.push(timed(exe, &["--version"], b"", run)?.0);
            for (args, event, times) in [
                (&resident_args[..], &event, &mut series.resident),
                (&in_process_args[..], &other, &mut series.in_process),
            ] {
                let (took, stdout) = timed(exe, args, event.to_string().as_bytes(), run)?;
                if what(&stdout) != expected {
                    bail!("expected {expected} for {event}, the hook answered {stdout}");
                }
                times.push(took);
            }
        }
    }
    Ok(series)
}
