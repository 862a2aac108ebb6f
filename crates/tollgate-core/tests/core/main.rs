//! The integration tests of `tollgate-core`, in one binary: every file
//! directly under `tests/` is a binary of its own, linked separately, and on
//! a small machine the links cost more than the tests. Each module here was
//! such a file; `bypass.proptest-regressions` sits beside `bypass.rs`, where
//! its property test looks for it. (The decision transcripts, which test the
//! wire format, are `tollgate-protocol`'s.)

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // tests fail by panicking

mod bypass;
mod cel_differential;
mod context_and_clears;
mod decisions;
mod handoffs;
mod parser_robustness;
mod schema;
mod tau_traces;
mod time_and_facts;
mod validate;
