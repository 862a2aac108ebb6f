//! What the engine's test binaries share.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::future::Future;
use tollgate_store::testing::{postgres_schema_url, sqlite_url};

/// Runs `test` on an engine over a fresh SQLite file and one over a fresh
/// PostgreSQL schema; the URL is passed so a test can open a second engine.
pub async fn on_both<F, Fut>(test: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()>,
{
    test(sqlite_url().unwrap()).await;
    if let Some(url) = postgres_schema_url().await {
        test(url).await;
    }
}
