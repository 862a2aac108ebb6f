//! The wire format's tests, one binary: decision transcripts of scripted
//! sessions against reviewed snapshots (`tests/scripts/`, `tests/snapshots/`).

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

mod hooks;
mod transcripts;
