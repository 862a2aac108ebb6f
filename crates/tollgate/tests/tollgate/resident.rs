//! `tollgate hook` through its resident process, with real processes: the
//! resident decides as a hook process does; an edited workflow file decides
//! from the next event on; a resident killed is replaced (the hook decides
//! meanwhile), a resident hung or a socket that answers garbage is a
//! refusal; hook processes of one session at once share it through the
//! resident as they do through the store.

use crate::common::{root, text};
use crate::hook::{decision, event};
use serde_json::{Value as Json, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A workflow file, a store and a private runtime directory of one test,
/// and the resident processes it started (killed when it ends).
struct Place {
    dir: PathBuf,
    residents: Vec<Child>,
}

/// How a hook process may answer.
#[derive(Clone, Copy)]
enum Mode {
    /// Only through the resident (a refusal if none answers).
    Required,
    /// Through the resident, else itself (starting one).
    Auto,
    /// Itself (`--no-resident`).
    Off,
}

impl Place {
    fn new(name: &str) -> Place {
        let dir = std::env::temp_dir().join(format!("tollgate-resident-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::DirBuilder::new().mode(0o700).create(dir.join("run")).unwrap();
        std::fs::copy(root().join("examples/tau2-retail.toml"), dir.join("retail.toml")).unwrap();
        Place { dir, residents: Vec::new() }
    }

    fn workflow(&self) -> PathBuf {
        self.dir.join("retail.toml")
    }

    fn db(&self) -> String {
        self.dir.join("hook.db").display().to_string()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        command
            .args(args)
            .args(["--workflow", self.workflow().to_str().unwrap(), "--db", &self.db()])
            .env("TOLLGATE_HOOK_RUNTIME_DIR", self.dir.join("run"))
            .env_remove("TOLLGATE_DB")
            .env_remove("TOLLGATE_HOOK_RESIDENT")
            .env_remove("TOLLGATE_HOOK_NO_RESIDENT");
        command
    }

    /// Starts a resident and waits for it to listen; its socket's path.
    fn serve(&mut self) -> PathBuf {
        let mut child =
            self.command(&["hook", "serve"]).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        self.residents.push(child);
        let socket = line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("no socket: {line:?}"));
        PathBuf::from(socket)
    }

    fn start(&self, mode: Mode, extra: &[&str]) -> Child {
        let mut command = self.command(&["hook"]);
        command.args(extra);
        match mode {
            Mode::Required => {
                command.env("TOLLGATE_HOOK_RESIDENT", "required");
            }
            Mode::Auto => {}
            Mode::Off => {
                command.arg("--no-resident");
            }
        }
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }

    fn hook(&self, mode: Mode, event: &Json) -> Output {
        finish(self.start(mode, &[]), event)
    }

    /// The process id in a resident's lock file, once one holds it.
    fn lock_pid(&self) -> Option<u32> {
        let entries = std::fs::read_dir(self.dir.join("run")).ok()?;
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "lock") {
                let text = std::fs::read_to_string(entry.path()).ok()?;
                return text.trim().parse().ok();
            }
        }
        None
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        for child in &mut self.residents {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A resident a hook process started (not our child): only if that
        // process is still this test's resident.
        if let Some(pid) = self.lock_pid() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.contains("serve") && cmdline.contains(self.dir.to_str().unwrap()) {
                let _ = Command::new("kill").args(["-CONT", &pid.to_string()]).status();
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn finish(mut child: Child, event: &Json) -> Output {
    child.stdin.take().unwrap().write_all(event.to_string().as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

fn post(session: &str, id: &str, tool: &str, input: Json, response: Json) -> Json {
    let mut post = event("PostToolUse", session, id, tool, input);
    post["tool_response"] = response;
    post
}

/// A session's events, each with what it is answered: a cancel before
/// authentication (blocked), the authentication, the order read, a
/// thought a workflow may escalate, the cancel (allowed), with results.
fn script(session: &str) -> Vec<Json> {
    let email = json!({"email": "sara@example.com"});
    let read = json!({"order_id": "#W1"});
    let cancel = json!({"order_id": "#W1", "reason": "no longer needed"});
    let order = json!({"order_id": "#W1", "user_id": "sara_doe_496", "status": "pending", "items": [],
                       "payment_history": []});
    vec![
        event("PreToolUse", session, "t0", "cancel_pending_order", cancel.clone()),
        event("PreToolUse", session, "t1", "find_user_id_by_email", email.clone()),
        post(session, "t1", "find_user_id_by_email", email, json!("sara_doe_496")),
        event("PreToolUse", session, "t2", "get_order_details", read.clone()),
        post(session, "t2", "get_order_details", read, json!(order.to_string())),
        event("PreToolUse", session, "t3", "think", json!({"thought": "escalate me"})),
        event("PreToolUse", session, "t4", "cancel_pending_order", cancel),
    ]
}

/// A rule the scratch workflow gains: the thought "escalate me" goes to a
/// person.
const ESCALATION: &str = r#"
[[tools.think.escalate]]
id = "THINK-ESCALATES"
rule = "args.thought == 'escalate me'"
reason = "this thought goes to a person"
urgency = "high"
recommended_action = "read the thought"
"#;

fn with_escalation(place: &Place) {
    let mut file = std::fs::OpenOptions::new().append(true).open(place.workflow()).unwrap();
    file.write_all(ESCALATION.as_bytes()).unwrap();
}

/// What the client is told, the handoff's id (derived from the session's)
/// taken out.
fn told(output: &Output) -> (Option<i32>, String) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let shown = match stdout.find("handoff h_") {
        Some(at) => {
            let (before, after) = stdout.split_at(at + "handoff h_".len());
            let rest = after.trim_start_matches(|c: char| c.is_ascii_hexdigit());
            format!("{before}ID{rest}")
        }
        None => stdout.into_owned(),
    };
    (output.status.code(), shown)
}

#[test]
fn the_resident_decides_block_allow_and_escalate_as_a_hook_process_does() {
    let mut place = Place::new("same");
    with_escalation(&place);
    place.serve();
    let here: Vec<_> = script("here").iter().map(|e| told(&place.hook(Mode::Off, e))).collect();
    let there: Vec<_> = script("there").iter().map(|e| told(&place.hook(Mode::Required, e))).collect();
    assert_eq!(here, there);
    let decisions: Vec<&str> = there
        .iter()
        .map(|(_, stdout)| {
            if stdout.contains("Tollgate handed this call to a person") {
                "escalate"
            } else if stdout.contains("\"deny\"") {
                "deny"
            } else if stdout.contains("\"allow\"") {
                "allow"
            } else {
                "none"
            }
        })
        .collect();
    assert_eq!(decisions, ["deny", "allow", "none", "allow", "none", "escalate", "allow"]);
    // Both were journaled: the resident's session shows its calls.
    let shown = crate::common::tollgate(&["sessions", "show", "there", "--db", &place.db()]);
    assert!(crate::common::stdout(&shown).contains("cancel_pending_order"), "{}", text(&shown));
}

#[test]
fn an_edited_workflow_file_decides_from_the_next_event_on() {
    let mut place = Place::new("edited");
    place.serve();
    let think = |session: &str| event("PreToolUse", session, "t1", "think", json!({"thought": "escalate me"}));
    assert_eq!(decision(&place.hook(Mode::Required, &think("before"))), "allow");
    with_escalation(&place);
    let output = place.hook(Mode::Required, &think("after"));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("Tollgate handed this call to a person"),
        "{}",
        text(&output)
    );
    // The session started under the old text is not decided under the new.
    let output = place.hook(Mode::Required, &event("PreToolUse", "before", "t2", "think", json!({"thought": "x"})));
    assert_eq!(decision(&output), "deny", "{}", text(&output));
    assert!(text(&output).contains("started under another version of the workflow"), "{}", text(&output));
}

#[test]
fn a_resident_killed_is_replaced_and_one_hung_is_a_refusal_within_the_deadline() {
    let mut place = Place::new("killed");
    place.serve();
    let events = script("k");
    for event in events.iter().take(3) {
        place.hook(Mode::Required, event);
    }
    let first = place.residents.first_mut().unwrap();
    first.kill().unwrap();
    first.wait().unwrap();
    // Its socket is left behind, nobody listening: the hook decides itself
    // (the order read is allowed: the session knows the user) and starts a
    // resident.
    let output = place.hook(Mode::Auto, &events[3]);
    assert_eq!((output.status.code(), decision(&output).as_str()), (Some(0), "allow"), "{}", text(&output));
    // Waits for the new resident: a session start answered only by a
    // resident (a refusal, exit 2, while there is none).
    let killed = place.residents.first().unwrap().id();
    let start = json!({"session_id": "k", "hook_event_name": "SessionStart", "cwd": "/w", "source": "startup"});
    let started = Instant::now();
    let pid = loop {
        match place.lock_pid() {
            Some(pid) if pid != killed && place.hook(Mode::Required, &start).status.success() => break pid,
            _ => assert!(started.elapsed() < Duration::from_secs(20), "no resident was started again"),
        }
        std::thread::yield_now();
    };
    assert_eq!(crate::common::stdout(&place.hook(Mode::Required, &events[4])), "{}");
    // The new one decides the rest of the session.
    assert_eq!(decision(&place.hook(Mode::Required, &events[6])), "allow");
    // Hung: the hook refuses within its deadline, saying why.
    signal(pid, "-STOP");
    let started = Instant::now();
    let output = finish(place.start(Mode::Auto, &["--deadline-ms", "1500"]), &events[0]);
    let took = started.elapsed();
    signal(pid, "-CONT");
    assert_eq!((output.status.code(), decision(&output).as_str()), (Some(2), "deny"), "{}", text(&output));
    assert!(text(&output).contains("could not decide before the hook's deadline"), "{}", text(&output));
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_socket_that_answers_garbage_is_a_refusal() {
    let mut place = Place::new("garbage");
    let socket = place.serve();
    let resident = place.residents.first_mut().unwrap();
    resident.kill().unwrap();
    resident.wait().unwrap();
    let _ = std::fs::remove_file(&socket);
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            stream.read_to_end(&mut request).unwrap();
            stream.write_all(b"{\"reply\":\"answer\",\"stdout\":").unwrap();
        }
    });
    let event = event("PreToolUse", "g", "t1", "find_user_id_by_email", json!({"email": "sara@example.com"}));
    for mode in [Mode::Auto, Mode::Required] {
        let output = place.hook(mode, &event);
        assert_eq!((output.status.code(), decision(&output).as_str()), (Some(2), "deny"), "{}", text(&output));
        assert!(text(&output).contains("its reply is garbled"), "{}", text(&output));
    }
    server.join().unwrap();
}

#[test]
fn sixteen_hook_processes_of_one_session_share_it_through_the_resident() {
    let mut place = Place::new("sixteen");
    place.serve();
    for event in script("par").iter().take(5) {
        place.hook(Mode::Required, event);
    }
    // Sixteen at once, each cancelling the order with its own call id: one
    // call may await its result at a time, so exactly one is allowed.
    let mut children: Vec<Child> = (0..16).map(|_| place.start(Mode::Required, &[])).collect();
    let cancel = json!({"order_id": "#W1", "reason": "no longer needed"});
    for (i, child) in children.iter_mut().enumerate() {
        let event = event("PreToolUse", "par", &format!("c{i}"), "cancel_pending_order", cancel.clone());
        child.stdin.take().unwrap().write_all(event.to_string().as_bytes()).unwrap();
    }
    let outputs: Vec<Output> = children.into_iter().map(|child| child.wait_with_output().unwrap()).collect();
    let decisions: Vec<String> = outputs.iter().map(decision).collect();
    assert_eq!(decisions.iter().filter(|d| *d == "allow").count(), 1, "{decisions:?}");
    assert_eq!(decisions.iter().filter(|d| *d == "deny").count(), 15, "{decisions:?}");
    for output in &outputs {
        assert_eq!(output.status.code(), Some(0), "{}", text(output));
    }
    // A batch of a new session: the authentication and fifteen reads that
    // need it. Whatever order they are decided in, the authentication is
    // at most pending when a read is decided, so no read is let through.
    let mut children: Vec<Child> = (0..16).map(|_| place.start(Mode::Required, &[])).collect();
    for (i, child) in children.iter_mut().enumerate() {
        let event = match i {
            0 => event("PreToolUse", "batch", "auth", "find_user_id_by_email", json!({"email": "sara@example.com"})),
            _ => event("PreToolUse", "batch", &format!("r{i}"), "get_order_details", json!({"order_id": "#W1"})),
        };
        child.stdin.take().unwrap().write_all(event.to_string().as_bytes()).unwrap();
    }
    let decisions: Vec<String> =
        children.into_iter().map(|child| decision(&child.wait_with_output().unwrap())).collect();
    assert_eq!(decisions.first().map(String::as_str), Some("allow"), "{decisions:?}");
    assert_eq!(decisions.iter().filter(|d| *d == "deny").count(), 15, "{decisions:?}");
}

/// Sockets live only where this user alone may enter.
#[test]
fn a_runtime_directory_others_may_enter_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let place = Place::new("open");
    std::fs::set_permissions(place.dir.join("run"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let event = event("PreToolUse", "o", "t1", "find_user_id_by_email", json!({"email": "sara@example.com"}));
    // Decided here, no resident started.
    assert_eq!(decision(&place.hook(Mode::Auto, &event)), "allow");
    assert_eq!(place.lock_pid(), None);
    let output = place.hook(Mode::Required, &event);
    assert_eq!((output.status.code(), decision(&output).as_str()), (Some(2), "deny"), "{}", text(&output));
    assert!(text(&output).contains("others may enter it"), "{}", text(&output));
}
