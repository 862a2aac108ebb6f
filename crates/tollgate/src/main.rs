//! The `tollgate` command: thin glue over the library crates.

mod demo;
mod paint;
mod run;
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
    /// Run a scripted session (JSON lines of calls and results) and print
    /// one decision transcript line per step.
    Run {
        /// The workflow file.
        #[arg(long)]
        workflow: PathBuf,
        /// The script (JSON lines); `-` reads standard input.
        script: PathBuf,
    },
    /// Run the support-refunds story against a built-in tool backend.
    Demo {
        /// Colour the timeline.
        #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
        color: ColorChoice,
    },
}

/// When to colour output.
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
    let cli = Cli::parse();
    let outcome: Result<ExitCode> = match cli.command {
        Command::Validate { files } => validate::run(&files),
        Command::Run { workflow, script } => run::run(&workflow, &script),
        Command::Demo { color } => demo::run(paint::Paint::new(color)),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tollgate: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
