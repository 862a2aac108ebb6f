//! The store's conformance suite, one test binary: every test runs against
//! SQLite and against the real PostgreSQL server (a fresh schema each), and
//! both must behave the same.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

mod audit;
mod common;
mod handoffs;
mod schema;
mod sessions;
