//! `tollgate hook`: one hook event on standard input, the answer on standard
//! output (the work is `tollgate_hook`'s); `hook install | uninstall`: its
//! entries in a Claude Code `settings.json`, or in a Codex `hooks.json` with
//! their trust in Codex's `config.toml`.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use tollgate_hook::install;

/// Which client's protocol to answer in.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientChoice {
    /// Claude Code and the Claude Agent SDK.
    Claude,
    /// The Codex CLI.
    Codex,
}

impl ClientChoice {
    fn client(self) -> tollgate_hook::Client {
        match self {
            ClientChoice::Claude => tollgate_hook::Client::ClaudeCode,
            ClientChoice::Codex => tollgate_hook::Client::Codex,
        }
    }
}

/// Set (to anything but `0`) like `--no-resident`.
pub const NO_RESIDENT_ENV: &str = "TOLLGATE_HOOK_NO_RESIDENT";
/// Set to `required`: only a resident process may answer (tests).
pub const RESIDENT_ENV: &str = "TOLLGATE_HOOK_RESIDENT";

/// When to answer, and whether through a resident process.
pub struct Timing {
    /// The answer is given within this many ms of the process's start.
    pub deadline_ms: u64,
    /// Ask (and start) a resident process.
    pub resident: bool,
}

/// Answers one event and exits as the answer says. Nothing that goes wrong
/// here lets a call through: the library turns every failure into a
/// refusal, and this prints it.
pub fn answer(
    started: Instant,
    workflow: Option<PathBuf>,
    db: String,
    client: ClientChoice,
    timing: Timing,
) -> ExitCode {
    let Timing { deadline_ms, resident } = timing;
    // The refusal carries the panic's message; the default hook would print
    // it to standard error, which a client shows the model on exit 2.
    std::panic::set_hook(Box::new(|_| {}));
    let deadline = std::time::Duration::from_millis(deadline_ms);
    let Some(workflow) = workflow else {
        let refusal = tollgate_hook::within(client.client(), started + deadline, |_| {
            Err(tollgate_hook::Error::Workflow("no --workflow was given to tollgate hook".into()))
        });
        return print(&refusal);
    };
    let options = tollgate_hook::Options {
        workflow,
        db,
        client: client.client(),
        deadline,
        stdin_bytes_max: tollgate_hook::STDIN_BYTES_MAX,
        audit_key_file: std::env::var_os(crate::audit::KEY_FILE_ENV).map(PathBuf::from),
        resident: resident_mode(resident),
    };
    print(&tollgate_hook::answer(options, started, std::io::stdin()))
}

fn resident_mode(resident: bool) -> tollgate_hook::Resident {
    if !resident {
        return tollgate_hook::Resident::Off;
    }
    if std::env::var_os(RESIDENT_ENV).is_some_and(|v| v == "required") {
        return tollgate_hook::Resident::Required;
    }
    match std::env::current_exe() {
        Ok(exe) => tollgate_hook::Resident::Auto(tollgate_hook::Spawn {
            command: vec![exe.into_os_string(), "hook".into(), "serve".into()],
            idle: tollgate_hook::IDLE_DEFAULT,
        }),
        // Nothing to start: this process decides.
        Err(_) => tollgate_hook::Resident::Off,
    }
}

/// `hook serve`: the resident process, until idle. Prints the socket's
/// path once it listens (nobody reads it when a hook started it).
pub fn serve(workflow: PathBuf, db: String, idle_ms: u64) -> Result<ExitCode> {
    let options = tollgate_hook::Options {
        workflow,
        db,
        client: tollgate_hook::Client::ClaudeCode,
        deadline: tollgate_hook::DEADLINE_DEFAULT,
        stdin_bytes_max: tollgate_hook::STDIN_BYTES_MAX,
        audit_key_file: std::env::var_os(crate::audit::KEY_FILE_ENV).map(PathBuf::from),
        resident: tollgate_hook::Resident::Off,
    };
    let idle = std::time::Duration::from_millis(idle_ms);
    tollgate_hook::resident::serve(options, idle, |socket| {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening {}", socket.display());
        let _ = stdout.flush();
    })?;
    Ok(ExitCode::SUCCESS)
}

fn print(answer: &tollgate_hook::Answer) -> ExitCode {
    // A closed pipe cannot be answered on; exit 2 still blocks.
    let _ = std::io::stdout().lock().write_all(answer.stdout.as_bytes());
    let _ = std::io::stdout().lock().flush();
    if !answer.stderr.is_empty() {
        let _ = writeln!(std::io::stderr().lock(), "{}", answer.stderr);
    }
    // `exit`, not a return: a worker abandoned at the deadline must not hold
    // the process open.
    std::process::exit(i32::from(answer.exit_code))
}

/// Where `install` and `uninstall` write.
pub struct Place {
    /// The project's `.claude/settings.json` (the default; Codex:
    /// `.codex/hooks.json`) ...
    pub project: Option<PathBuf>,
    /// ... or the user's (`$CLAUDE_CONFIG_DIR`, else `~/.claude`; Codex:
    /// `$CODEX_HOME`, else `~/.codex`).
    pub user: bool,
    /// Whose configuration.
    pub client: ClientChoice,
}

impl Place {
    fn home(&self, variable: &str, default: &str) -> Result<PathBuf> {
        Ok(match std::env::var_os(variable) {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(default),
        })
    }

    /// The file the hook entries go in.
    fn settings(&self) -> Result<PathBuf> {
        let (variable, default, file) = match self.client {
            ClientChoice::Claude => ("CLAUDE_CONFIG_DIR", ".claude", "settings.json"),
            ClientChoice::Codex => ("CODEX_HOME", ".codex", "hooks.json"),
        };
        if self.user {
            return Ok(self.home(variable, default)?.join(file));
        }
        let dir = match &self.project {
            Some(dir) => dir.clone(),
            None => std::env::current_dir()?,
        };
        Ok(dir.join(default).join(file))
    }

    /// Codex's user `config.toml`, where the hooks' trust is kept.
    fn codex_config(&self) -> Result<PathBuf> {
        Ok(self.home("CODEX_HOME", ".codex")?.join("config.toml"))
    }
}

/// `hook install`: Tollgate's entries merged into the settings.
pub fn install(
    place: &Place,
    workflow: &Path,
    db: &str,
    deadline_ms: u64,
    matcher: &str,
    server: Option<&str>,
) -> Result<ExitCode> {
    let (_, compiled) = crate::validate::load(workflow)?;
    if let Some(server) = server {
        return install_http(place, &compiled, server, deadline_ms, matcher);
    }
    let workflow = std::fs::canonicalize(workflow)?;
    let exe = std::env::current_exe().context("cannot tell where this tollgate is")?;
    // A relative SQLite path would be read from whatever directory the
    // client runs the hook in.
    let db = if db.starts_with("postgres://") || db.starts_with("postgresql://") || Path::new(db).is_absolute() {
        db.to_owned()
    } else {
        std::env::current_dir()?.join(db).display().to_string()
    };
    let client = match place.client {
        ClientChoice::Claude => "claude",
        ClientChoice::Codex => "codex",
    };
    let command = format!(
        "{} hook --workflow {} --db {} --client {client} --deadline-ms {deadline_ms}",
        quoted(&exe.display().to_string()),
        quoted(&workflow.display().to_string()),
        quoted(&db)
    );
    // The client's timeout, whole seconds above the hook's own deadline.
    let entry =
        install::Entry { command, timeout_seconds: deadline_ms.div_ceil(1000) + 5, matcher: matcher.to_owned() };
    let path = place.settings()?;
    match place.client {
        ClientChoice::Claude => install::edit(&path, |settings| install::merged(settings, &entry))?,
        ClientChoice::Codex => {
            // Codex files trust by the hooks.json's absolute path.
            let path = absolute(&path)?;
            let (mut before, mut after) = (Vec::new(), Vec::new());
            install::edit(&path, |hooks| {
                before = install::codex_trust(&hooks, &path);
                let merged = install::merged_codex(hooks, &entry)?;
                after = install::codex_trust(&merged, &path);
                Ok(merged)
            })?;
            let config = place.codex_config()?;
            let stale: Vec<String> = before.into_iter().map(|(key, _)| key).collect();
            install::edit_codex_trust(&config, &stale, &after)?;
            out!("trusted tollgate's hooks in {} (Codex skips an untrusted hook without a word)", config.display());
            if !place.user {
                out!("note: Codex reads a project's .codex/ only once the project is trusted");
            }
        }
    }
    out!("installed tollgate hook ({} v{}) in {}", compiled.name(), compiled.version(), path.display());
    Ok(ExitCode::SUCCESS)
}

/// `hook uninstall`: Tollgate's entries removed, nothing else.
pub fn uninstall(place: &Place) -> Result<ExitCode> {
    let path = place.settings()?;
    if !path.exists() {
        out!("nothing to remove: {} does not exist", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    match place.client {
        ClientChoice::Claude => install::edit(&path, install::removed)?,
        ClientChoice::Codex => {
            let path = absolute(&path)?;
            let mut ours = Vec::new();
            install::edit(&path, |hooks| {
                ours = install::codex_trust(&hooks, &path).into_iter().map(|(key, _)| key).collect();
                install::removed(hooks)
            })?;
            install::edit_codex_trust(&place.codex_config()?, &ours, &[])?;
        }
    }
    out!("removed tollgate hook entries from {}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(if path.is_absolute() { path.to_owned() } else { std::env::current_dir()?.join(path) })
}

/// A word for `sh -c`: single-quoted unless it is plainly safe.
fn quoted(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "/._-:@".contains(c)) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `hook install --server URL`: Claude Code's HTTP hooks pointed at a
/// `tollgate serve`, under the workflow of that name there.
fn install_http(
    place: &Place,
    workflow: &tollgate_core::Workflow,
    server: &str,
    deadline_ms: u64,
    matcher: &str,
) -> Result<ExitCode> {
    if place.client != ClientChoice::Claude {
        anyhow::bail!("--server: only Claude Code has HTTP hooks; Codex runs a command (leave --server out)");
    }
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        anyhow::bail!("--server '{server}' is not an http:// or https:// URL of a tollgate serve");
    }
    let name: String = workflow
        .name()
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let url = format!("{}/v1/hooks/claude-code?workflow={name}", server.trim_end_matches('/'));
    let path = place.settings()?;
    let timeout = deadline_ms.div_ceil(1000) + 5;
    install::edit(&path, |settings| install::merged_http(settings, &url, timeout, matcher))?;
    out!("added Tollgate's HTTP hooks to {} ({url})", path.display());
    out!(
        "Claude Code sends the token in ${}: export it where you run claude (an agent token: tollgate tokens create --role agent)",
        install::TOKEN_ENV
    );
    Ok(ExitCode::SUCCESS)
}
