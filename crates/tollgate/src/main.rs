//! The `tollgate` command: thin glue over the library crates.

/// `println!` for output a reader may cut short (`| head`): a closed pipe
/// ends the command quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(error) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("tollgate: cannot write the output: {error}");
            std::process::exit(1);
        }
    }};
}

mod audit;
mod bench;
mod bench_hook;
mod demo;
mod demo_multi;
mod durable_bench;
mod explain;
mod gateway;
mod hook;
mod input;
mod paint;
mod replay;
mod run;
mod serve;
mod state;
mod test_cmd;
mod tokens;
mod validate;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Tollgate: gates, policy checks and human handoffs for LLM agents' tool calls.
#[derive(Parser)]
#[command(name = "tollgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check workflow files: print every problem with line and column, or a summary.
    Validate {
        /// Workflow files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the tests written beside workflows (`NAME.tests.toml` beside
    /// `NAME.toml`): each a scripted session whose steps expect a verdict and
    /// its rules. Exits 1 when a test fails.
    Test {
        /// Workflows, test files or directories [default: the current directory].
        paths: Vec<PathBuf>,
        /// Report which rules no test made fire or let pass, and which tools no test allowed.
        #[arg(long)]
        coverage: bool,
        /// Like --coverage, and exit 1 when a rule never fired.
        #[arg(long)]
        require_coverage: bool,
        /// Run only the tests whose name contains this text.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Explain one call: every rule of its tool evaluated with the values it
    /// read, and why it passed or failed (a stored session's call, against
    /// the session as it stood before it; or a script's call).
    Explain {
        /// The call's id.
        #[arg(long)]
        call: String,
        /// A stored session (with --db).
        #[arg(long, conflicts_with_all = ["workflow", "script"])]
        session: Option<String>,
        #[command(flatten)]
        db: Db,
        /// With a script: the workflow file.
        #[arg(long, requires = "script")]
        workflow: Option<PathBuf>,
        /// A script (JSON lines of calls and results), run up to the call.
        #[arg(requires = "workflow")]
        script: Option<PathBuf>,
    },
    /// Print the JSON Schema of the workflow file format, for editors:
    /// `#:schema ./workflow.schema.json` at the top of a workflow lets
    /// Taplo-based editors complete its keys and flag mistakes as you type.
    Schema,
    /// Run a scripted session (JSON lines of calls and results) and print
    /// one decision transcript line per step.
    Run {
        /// The workflow file.
        #[arg(long)]
        workflow: PathBuf,
        /// The script (JSON lines); `-` reads standard input.
        script: PathBuf,
        /// Run through the engine into this store (SQLite path or
        /// `postgres://` URL): every step is durable, and running the same
        /// script again continues the session instead of repeating it.
        #[arg(long)]
        db: Option<String>,
        /// The session to run in with `--db` (created if new).
        #[arg(long, default_value = "run", requires = "db")]
        session: String,
    },
    /// Replay recorded agent traces (τ trace lines, OpenAI or Anthropic
    /// transcripts) through the engine: every call decided and stored as a
    /// session, allowed calls fed their recorded results.
    Replay {
        /// The workflow file.
        #[arg(long)]
        workflow: PathBuf,
        /// Trace files (JSON Lines, one session a line, or one JSON transcript).
        #[arg(required = true)]
        traces: Vec<PathBuf>,
        #[command(flatten)]
        db: Db,
        /// Print one JSON object per decision instead of the summary.
        #[arg(long)]
        json: bool,
        /// Compare with each trace's `expect` field; exit 1 listing every difference.
        #[arg(long)]
        expect: bool,
        /// The session clock (RFC 3339) for traces that carry no `now` [default: the system clock].
        #[arg(long)]
        now: Option<String>,
    },
    /// Inspect and continue stored sessions.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Verify or export the hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Serve the HTTP API agents call (`/v1`) and the handoff desk people
    /// work in (`/desk`) over one store, until SIGINT or SIGTERM.
    Serve {
        /// The workflow files to run (sessions name one by name or hash).
        #[arg(long = "workflow", required = true)]
        workflows: Vec<PathBuf>,
        #[command(flatten)]
        db: Db,
        /// Where to listen (port 0: any free port, printed on standard error).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Announce new, decided and expired handoffs to this http:// URL
        /// (HMAC-signed JSON POSTs, retried).
        #[arg(long, requires = "webhook_secret_file")]
        webhook_url: Option<String>,
        /// The file holding the webhook's signing secret.
        #[arg(long, requires = "webhook_url")]
        webhook_secret_file: Option<PathBuf>,
        /// A file of at least 16 bytes the desk's CSRF key is made from:
        /// give every replica behind one address the same one [default: a
        /// key drawn at start, good for one process].
        #[arg(long)]
        desk_key_file: Option<PathBuf>,
        /// Also serve agentgateway's external MCP policy protocol (ExtMcp,
        /// gRPC over h2c) at this address (docs/extmcp.md).
        #[arg(long)]
        extmcp_listen: Option<String>,
        /// The workflow the ExtMcp service's sessions run under (name or
        /// hash) [default: the only one served].
        #[arg(long, requires = "extmcp_listen")]
        extmcp_workflow: Option<String>,
        /// The gateway's metadata-context key holding the session id.
        #[arg(long, requires = "extmcp_listen", default_value = "tollgate_session")]
        extmcp_session_key: String,
    },
    /// An MCP gateway in front of MCP servers: every `tools/call` decided
    /// first, refusals as error results with reasons; over stdio, or
    /// streamable HTTP with `--listen`.
    Gateway {
        /// The workflow file the calls are decided by.
        #[arg(long)]
        workflow: PathBuf,
        /// An upstream MCP server: `NAME=COMMAND ARGS...` (a child process
        /// over stdio) or `NAME=http://HOST:PORT/mcp` (streamable HTTP).
        /// With several, tools are named `NAME__tool`.
        #[arg(long = "upstream", required = true)]
        upstreams: Vec<String>,
        #[command(flatten)]
        db: Db,
        /// Serve streamable HTTP at http://ADDR/mcp instead of stdio (port 0:
        /// any free port, printed on standard error).
        #[arg(long)]
        listen: Option<String>,
        /// enforce (refused calls are not run) or shadow (every call is
        /// decided, audited and run; would-be refusals are reported on exit).
        #[arg(long, value_enum, default_value_t = GatewayMode::Enforce)]
        mode: GatewayMode,
        /// List and forward tools the workflow does not declare (without a
        /// decision) instead of leaving them out and refusing them.
        #[arg(long)]
        allow_undeclared: bool,
        /// The session of a stdio client that names none in its requests
        /// [default: one per process].
        #[arg(long)]
        session: Option<String>,
        /// How long a forwarded call may take before it is recorded as failed.
        #[arg(long, default_value_t = 120)]
        call_timeout_seconds: u64,
    },
    /// Draft a workflow from an MCP server's tools/list: every tool with its
    /// input schema, no rules, comments where the rules go.
    Init {
        /// The MCP server: `NAME=COMMAND ARGS...` or `NAME=http://HOST:PORT/mcp`.
        #[arg(long = "from-mcp")]
        from_mcp: String,
        /// Write the draft here (never overwritten) instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// API tokens for `tollgate serve`: create (printed once), list, revoke.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Measure: `bench decide` (single decisions), `bench replay` (recorded traces), `bench durable`.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Claude Code, Claude Agent SDK and Codex hooks: answer one hook event
    /// (JSON on standard input) through the engine; every failure is a
    /// refusal. `hook install | uninstall` edit a Claude Code settings.json
    /// or a Codex hooks.json.
    #[command(args_conflicts_with_subcommands = true)]
    Hook {
        #[command(subcommand)]
        command: Option<HookCommand>,
        /// The workflow file the session is gated by.
        #[arg(long)]
        workflow: Option<PathBuf>,
        #[command(flatten)]
        db: Db,
        /// Whose hook protocol to answer in.
        #[arg(long, value_enum, default_value_t = hook::ClientChoice::Claude)]
        client: hook::ClientChoice,
        /// Answer within this many milliseconds of the process's start,
        /// refusing the call if it could not be decided by then (keep it
        /// below the client's hook timeout).
        #[arg(long, default_value_t = 5000)]
        deadline_ms: u64,
        /// Decide in this process, never through (or starting) a resident
        /// process [also: TOLLGATE_HOOK_NO_RESIDENT=1].
        #[arg(long)]
        no_resident: bool,
    },
    /// Hunt for bypasses: mutate allowed sessions as an attacker would and judge every
    /// allowed call by the workflow's invariants; exit 1 with a minimised sequence if one got through.
    Attack {
        /// The workflow file (its [[invariants]] are the oracle).
        #[arg(long)]
        workflow: PathBuf,
        /// Allowed sessions to start from (JSON lines of `tollgate run` steps;
        /// `{"session": "name"}` starts the next). Without it, sessions are generated.
        #[arg(long)]
        traces: Option<PathBuf>,
        /// The seed: the same seed, workflow and traces give the same output.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Mutated sequences decided by the pure core.
        #[arg(long, default_value_t = 100_000)]
        attempts: u64,
        /// Mutated sequences run through the engine on a temporary SQLite file.
        #[arg(long, default_value_t = 50)]
        engine_attempts: u64,
    },
    /// Run the support-refunds story against a built-in tool backend.
    Demo {
        /// Colour the timeline.
        #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
        color: ColorChoice,
        /// Which story: the support-refunds timeline, or a multi-concern
        /// request investigated in parallel and joined.
        #[arg(long, value_enum, default_value_t = Scenario::SupportRefunds)]
        scenario: Scenario,
        /// Where the demo's session, decisions and audit records are kept.
        #[command(flatten)]
        db: Db,
        /// Multi-concern only: the parent session; run again with the same
        /// store and id, the scenario continues where it stopped.
        #[arg(long)]
        session: Option<String>,
        /// Multi-concern only: simulated latency of each tool call [default: 50].
        #[arg(long)]
        latency_ms: Option<u64>,
        /// Multi-concern only: print a `step <session> <what>` line as each
        /// step is committed.
        #[arg(long)]
        progress: bool,
    },
}

/// When to colour output.
/// The store to use: `--db`, else `TOLLGATE_DB`, else `tollgate.db` here.
#[derive(clap::Args)]
struct Db {
    /// SQLite file or `postgres://` URL [default: $TOLLGATE_DB, else ./tollgate.db]
    #[arg(long)]
    db: Option<String>,
}

impl Db {
    fn url(&self) -> String {
        self.db.clone().or_else(|| std::env::var("TOLLGATE_DB").ok()).unwrap_or_else(|| "tollgate.db".to_owned())
    }
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// Sessions, newest first.
    List {
        #[command(flatten)]
        db: Db,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One session and its journal.
    Show {
        /// The session's id.
        id: String,
        #[command(flatten)]
        db: Db,
    },
    /// Where a session stands, and the calls in doubt (allowed, no result recorded).
    Resume {
        /// The session's id.
        id: String,
        #[command(flatten)]
        db: Db,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Median, p99 and p99.9 of single decisions (allow, block, escalate) on the reference workflow.
    Decide {
        /// How many calls to time in all.
        #[arg(long, default_value = "400000", value_parser = bench::calls)]
        calls: usize,
        /// Only the cases whose name contains this (`allow`, `block`, `escalate`, ...).
        #[arg(long)]
        case: Option<String>,
    },
    /// Decided calls per second through the pure replay of recorded traces (decide, apply,
    /// recorded results) on one thread, the traces parsed beforehand; the median of several runs.
    Replay {
        /// The workflow file.
        #[arg(long)]
        workflow: PathBuf,
        /// Trace files, in any format `tollgate replay` reads.
        #[arg(required = true)]
        traces: Vec<PathBuf>,
        /// Timed runs (each at least 200,000 decided calls).
        #[arg(long, default_value = "7", value_parser = bench::runs)]
        runs: usize,
        /// The session clock (RFC 3339) for traces that carry none [default: the system clock].
        #[arg(long)]
        now: Option<String>,
    },
    /// What the MCP gateway adds to a tools/call: median and p99 straight to an upstream and
    /// through the gateway, same run, streamable HTTP on loopback, concurrent clients, durable decisions.
    Gateway {
        /// The store (default: a new SQLite file in a temporary directory).
        #[arg(long)]
        db: Option<String>,
        /// Concurrent clients, each its own session.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Calls per client per round and path.
        #[arg(long, default_value_t = 50)]
        calls: usize,
        /// Rounds (the paths alternate which goes first).
        #[arg(long, default_value_t = 4)]
        rounds: usize,
    },
    /// Process start to answer of `tollgate hook` (one process per event, as
    /// a client runs it) on a workflow with SQLite, beside `tollgate --version`.
    Hook {
        /// The workflow (its tools as an MCP server `retail` names them).
        #[arg(long, default_value = "examples/tau2-retail.toml")]
        workflow: PathBuf,
        /// How many hook events to time (and as many `--version` runs).
        #[arg(long, default_value_t = 1000)]
        calls: usize,
    },
    /// What durability costs: raw fsync and commit, an engine step, a three-step workflow,
    /// 64 concurrent sessions, resume, audit verify.
    Durable {
        /// The store to measure: a new SQLite file (default: one in a temporary directory; a path given
        /// must not exist yet) or a postgres:// server, measured in a schema of its own that is dropped at the end.
        #[arg(long)]
        db: Option<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum HookCommand {
    /// Merge Tollgate's hook entries into a Claude Code settings.json
    /// (the project's by default) or a Codex hooks.json, keeping everything
    /// else.
    Install {
        /// The workflow file to gate with.
        #[arg(long)]
        workflow: PathBuf,
        /// The client: Claude Code (.claude/settings.json) or Codex
        /// (.codex/hooks.json, its trust in $CODEX_HOME/config.toml).
        #[arg(long, value_enum, default_value_t = hook::ClientChoice::Claude)]
        client: hook::ClientChoice,
        #[command(flatten)]
        db: Db,
        /// The project's .claude/settings.json (the default).
        #[arg(long, conflicts_with = "user")]
        project: bool,
        /// The user's settings.json ($CLAUDE_CONFIG_DIR, else ~/.claude).
        #[arg(long)]
        user: bool,
        /// The project's directory [default: the current one].
        #[arg(long, conflicts_with = "user")]
        dir: Option<PathBuf>,
        /// The hook's deadline; the client's timeout is set above it.
        #[arg(long, default_value_t = 5000)]
        deadline_ms: u64,
        /// The tools the hook runs for: a regular expression over the
        /// client's tool names (`mcp__.*`: MCP tools only), `*` for all.
        #[arg(long, default_value = "*")]
        matcher: String,
        /// Claude Code's HTTP hooks to this `tollgate serve` (its base URL)
        /// instead of a command: the server decides, under its workflow of
        /// the file's name; the token is read from $TOLLGATE_TOKEN.
        #[arg(long)]
        server: Option<String>,
    },
    /// The resident process hook processes hand their events to (started
    /// by them when absent): serves one workflow file and store until idle.
    #[command(hide = true)]
    Serve {
        /// The workflow file.
        #[arg(long)]
        workflow: PathBuf,
        #[command(flatten)]
        db: Db,
        /// Leave after this many milliseconds without a request.
        #[arg(long, default_value_t = 600_000)]
        idle_ms: u64,
    },
    /// Remove Tollgate's entries (and only those) from a settings.json or
    /// a Codex hooks.json (and their trust).
    Uninstall {
        /// The client whose hook configuration to edit.
        #[arg(long, value_enum, default_value_t = hook::ClientChoice::Claude)]
        client: hook::ClientChoice,
        /// The project's .claude/settings.json (the default).
        #[arg(long, conflicts_with = "user")]
        project: bool,
        /// The user's settings.json.
        #[arg(long)]
        user: bool,
        /// The project's directory [default: the current one].
        #[arg(long, conflicts_with = "user")]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Make a token; it is printed once, on standard output.
    Create {
        #[command(flatten)]
        db: Db,
        /// The tenant it acts for.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// agent (sessions, calls, results), reviewer (the desk and handoffs) or admin.
        #[arg(long)]
        role: String,
        /// Whose it is: a reviewer's name is who the audit log says acted.
        #[arg(long)]
        name: String,
    },
    /// Every token (of one tenant), never a secret.
    List {
        #[command(flatten)]
        db: Db,
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a token by its id: it authenticates nobody from now on.
    Revoke {
        /// The token's id (the part after `tg_`, before the next `_`).
        id: String,
        #[command(flatten)]
        db: Db,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every record and both hash chains; exit 1 at the first broken record.
    Verify {
        #[command(flatten)]
        db: Db,
        /// The public key (hex, or a file holding it) the head must be signed by:
        /// without it a careful rewrite of the whole log, hashes and all, passes.
        #[arg(long)]
        key: Option<String>,
        /// A head published earlier (`audit head`): the log must still hold it.
        #[arg(long)]
        head: Option<PathBuf>,
    },
    /// Print the log's head and its signature as JSON, to publish elsewhere.
    Head {
        #[command(flatten)]
        db: Db,
    },
    /// Make a key to sign the audit head with: written to FILE, its public half printed.
    Keygen {
        /// Where to write the signing key (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write every record as JSON lines.
    Export {
        #[command(flatten)]
        db: Db,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// A runtime for the commands that talk to a store.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// `tollgate attack`: reads the files, hunts, prints the report (the timing
/// to standard error, so standard output follows from the seed alone); exit 1
/// if anything got through or failed.
fn attack(
    workflow: &std::path::Path,
    traces: Option<&std::path::Path>,
    seed: u64,
    attempts: u64,
    engine_attempts: u64,
) -> Result<ExitCode> {
    let read = |path: &std::path::Path| -> Result<tollgate_attack::SourceFile> {
        let text = input::read(path, "the file", input::TRACE_BYTES_MAX)?;
        Ok(tollgate_attack::SourceFile { name: path.display().to_string(), text })
    };
    let input = tollgate_attack::Input {
        workflow: read(workflow)?,
        traces: traces.map(read).transpose()?,
        seed,
        attempts,
        engine_attempts,
    };
    let started = std::time::Instant::now();
    let report = tollgate_attack::hunt(&input)?;
    let seconds = started.elapsed().as_secs_f64();
    out!("{report}");
    let attempts = report.total_attempts();
    eprintln!(
        "tollgate attack: {attempts} attempts in {seconds:.2} s ({:.0} attempts/s; {} core decisions)",
        attempts as f64 / seconds.max(1e-9),
        report.core.decided
    );
    Ok(if report.found_anything() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Whether the gateway enforces.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GatewayMode {
    /// Refused calls are not run.
    Enforce,
    /// Every call runs; would-be refusals are reported.
    Shadow,
}

/// The demo's stories.
#[derive(Clone, Copy, ValueEnum)]
enum Scenario {
    /// One session: blocks, an injection, refunds, an $800 escalation.
    SupportRefunds,
    /// Three concerns investigated in parallel and joined.
    MultiConcern,
}

#[derive(Clone, Copy, ValueEnum)]
enum ColorChoice {
    /// Colour when standard output is a terminal.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    let cli = Cli::parse();
    let outcome: Result<ExitCode> = match cli.command {
        Command::Validate { files } => validate::run(&files),
        Command::Explain { call, session, db, workflow, script } => match (session, workflow, script) {
            (Some(session), _, _) => runtime().and_then(|rt| rt.block_on(explain::stored(&db.url(), &session, &call))),
            (None, Some(workflow), Some(script)) => explain::script(&workflow, &script, &call),
            _ => Err(anyhow::anyhow!(
                "name a stored call (--session ID --call ID) or a script's (--workflow FILE SCRIPT --call ID)"
            )),
        },
        Command::Schema => match serde_json::to_string_pretty(&tollgate_core::workflow_schema()) {
            Ok(text) => {
                out!("{text}");
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => Err(error.into()),
        },
        Command::Test { paths, coverage, require_coverage, filter } => {
            test_cmd::run(&test_cmd::Options { paths, coverage, require_coverage, filter })
        }
        Command::Run { workflow, script, db, session } => {
            run::run(&workflow, &script, db.map(|db| run::Durable { db, session }))
        }
        Command::Replay { workflow, traces, db, json, expect, now } => {
            replay::run(&replay::Options { workflow, traces, db: db.url(), json, expect, now })
        }
        Command::Sessions { command } => runtime().and_then(|rt| match command {
            SessionsCommand::List { db, limit } => rt.block_on(state::list(&db.url(), limit)),
            SessionsCommand::Show { id, db } => rt.block_on(state::show(&db.url(), &id)),
            SessionsCommand::Resume { id, db } => rt.block_on(state::resume(&db.url(), &id)),
        }),
        Command::Bench { command: BenchCommand::Decide { calls, case } } => bench::decide_bench(calls, case.as_deref()),
        Command::Bench { command: BenchCommand::Replay { workflow, traces, runs, now } } => {
            bench::replay_bench(&workflow, &traces, runs, now.as_deref())
        }
        Command::Bench { command: BenchCommand::Gateway { db, clients, calls, rounds } } => {
            gateway::bench(db, clients, calls, rounds)
        }
        Command::Bench { command: BenchCommand::Hook { workflow, calls } } => bench_hook::hook_bench(&workflow, calls),
        Command::Bench { command: BenchCommand::Durable { db, json } } => durable_bench::durable_bench(db, json),
        Command::Serve {
            workflows,
            db,
            listen,
            webhook_url,
            webhook_secret_file,
            desk_key_file,
            extmcp_listen,
            extmcp_workflow,
            extmcp_session_key,
        } => serve::serve(serve::Args {
            workflows,
            db: db.url(),
            listen,
            webhook_url,
            webhook_secret_file,
            desk_key_file,
            extmcp_listen,
            extmcp_workflow,
            extmcp_session_key,
        }),
        Command::Gateway { workflow, upstreams, db, listen, mode, allow_undeclared, session, call_timeout_seconds } => {
            gateway::gateway(gateway::Args {
                workflow,
                upstreams,
                db: db.url(),
                listen,
                shadow: mode == GatewayMode::Shadow,
                allow_undeclared,
                session,
                call_timeout_seconds,
            })
        }
        Command::Init { from_mcp, output } => gateway::init(&from_mcp, output.as_deref()),
        Command::Tokens { command } => runtime().and_then(|rt| match command {
            TokensCommand::Create { db, tenant, role, name } => {
                rt.block_on(tokens::create(&db.url(), &tenant, &role, &name))
            }
            TokensCommand::List { db, tenant } => rt.block_on(tokens::list(&db.url(), tenant.as_deref())),
            TokensCommand::Revoke { id, db } => rt.block_on(tokens::revoke(&db.url(), &id)),
        }),
        Command::Audit { command } => runtime().and_then(|rt| match command {
            AuditCommand::Verify { db, key, head } => {
                rt.block_on(audit::verify(&db.url(), key.as_deref(), head.as_deref()))
            }
            AuditCommand::Head { db } => rt.block_on(audit::head(&db.url())),
            AuditCommand::Keygen { out } => audit::keygen(&out),
            AuditCommand::Export { db, output } => rt.block_on(state::export(&db.url(), output.as_deref())),
        }),
        Command::Hook { command: None, workflow, db, client, deadline_ms, no_resident } => {
            let resident =
                !no_resident && std::env::var_os(hook::NO_RESIDENT_ENV).is_none_or(|v| v.is_empty() || v == "0");
            Ok(hook::answer(started, workflow, db.url(), client, hook::Timing { deadline_ms, resident }))
        }
        Command::Hook { command: Some(HookCommand::Serve { workflow, db, idle_ms }), .. } => {
            hook::serve(workflow, db.url(), idle_ms)
        }
        Command::Hook {
            command:
                Some(HookCommand::Install { workflow, client, db, project: _, user, dir, deadline_ms, matcher, server }),
            ..
        } => hook::install(
            &hook::Place { project: dir, user, client },
            &workflow,
            &db.url(),
            deadline_ms,
            &matcher,
            server.as_deref(),
        ),
        Command::Hook { command: Some(HookCommand::Uninstall { client, project: _, user, dir }), .. } => {
            hook::uninstall(&hook::Place { project: dir, user, client })
        }
        Command::Attack { workflow, traces, seed, attempts, engine_attempts } => {
            attack(&workflow, traces.as_deref(), seed, attempts, engine_attempts)
        }
        Command::Demo { color, scenario: Scenario::SupportRefunds, db, session, latency_ms, progress } => {
            if session.is_some() || latency_ms.is_some() || progress {
                Err(anyhow::anyhow!("--session, --latency-ms and --progress apply to --scenario multi-concern only"))
            } else {
                demo::run(paint::Paint::new(color), &db.url())
            }
        }
        Command::Demo { color, scenario: Scenario::MultiConcern, db, session, latency_ms, progress } => {
            let options = tollgate_demo::multi_concern::Options {
                session,
                latency: latency_ms
                    .map_or(tollgate_demo::multi_concern::TOOL_LATENCY, std::time::Duration::from_millis),
            };
            let steps = if progress { demo_multi::Steps::Lines } else { demo_multi::Steps::Quiet };
            demo_multi::run(paint::Paint::new(color), &db.url(), &options, steps)
        }
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tollgate: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
