//! The `tollgate` command's tests, one binary (each file a module): the
//! command as a user runs it, its crash and kill tests, replays of recorded
//! traces, and the attack command's printing.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

mod attack;
mod author;
mod claude_code;
mod cli;
mod codex;
mod coding_agent;
mod common;
mod crash;
mod extmcp;
mod fanout_crash;
mod gateway;
mod hook;
mod replay;
mod resident;
mod serve;
mod tau_airline;
mod tau_retail_telecom;
