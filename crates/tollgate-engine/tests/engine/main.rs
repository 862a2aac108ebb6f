//! The engine's integration tests, in one test binary (each file a module):
//! one executable to link instead of one per file.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

mod audit;
mod common;
mod disk_full;
mod handoffs;
mod investigations;
mod journal;
mod race;
mod sessions;
mod tenant_audit;
