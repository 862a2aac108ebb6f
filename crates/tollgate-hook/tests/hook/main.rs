//! `tollgate_hook` in process: events through the engine on a real SQLite
//! store, and a refusal for every kind of failure (`failures.rs`).

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

mod common;
mod decisions;
mod failures;
