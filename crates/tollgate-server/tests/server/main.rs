//! The server's tests, one binary: the router driven without a socket
//! (`tower::ServiceExt::oneshot`), on SQLite and PostgreSQL.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

mod browser;
mod common;
mod desk;
mod handoffs;
mod hooks;
mod limits;
mod replicas;
mod roles;
mod schemathesis;
mod sessions;
mod socket;
mod spoilt;
mod tenants;
