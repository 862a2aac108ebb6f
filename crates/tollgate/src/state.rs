//! `tollgate sessions …` and `tollgate audit …`: what the store holds.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use tollgate_engine::Engine;

/// Opens a store these read-only commands inspect: a missing SQLite file is
/// an error, not a new empty store (which would "verify" as intact).
pub async fn open_existing(db: &str) -> Result<Engine> {
    Ok(Engine::open_existing(db).await?)
}

/// `sessions list`: newest first.
pub async fn list(db: &str, limit: i64) -> Result<ExitCode> {
    let engine = open_existing(db).await?;
    let sessions = engine.sessions(limit).await?;
    if sessions.is_empty() {
        out!("no sessions in {db}");
    }
    for s in sessions {
        out!(
            "{}  {} v{}  {} journal entries{}",
            s.id,
            s.workflow_name,
            s.workflow_version,
            s.last_seq,
            s.parent_id.map(|p| format!("  (investigation of {p})")).unwrap_or_default()
        );
    }
    engine.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `sessions show ID`: the session and its journal.
pub async fn show(db: &str, id: &str) -> Result<ExitCode> {
    let engine = open_existing(db).await?;
    let info = engine.session(id).await?.with_context(|| format!("no session '{id}' in {db}"))?;
    out!("session {}: workflow {} v{} ({})", info.id, info.workflow_name, info.workflow_version, info.workflow_hash);
    for entry in engine.journal(id).await? {
        let record = &entry.record;
        out!("{:>5} {:<9} {:<12} {}", entry.seq, record.kind(), record.index_key().unwrap_or_default(), record.body());
    }
    engine.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `sessions resume ID`: where the session stands and which calls are in doubt.
pub async fn resume(db: &str, id: &str) -> Result<ExitCode> {
    let engine = open_existing(db).await?;
    let resume = engine.resume(id).await?;
    out!(
        "session {} resumes after journal entry {}: {} allowed, {} blocked, {} escalated",
        resume.session.id,
        resume.session.last_seq,
        resume.state.allowed_calls(),
        resume.state.blocked_calls(),
        resume.state.escalations()
    );
    for (fact, key, value) in resume.state.facts(&resume.workflow) {
        out!("  fact {fact}{}: {}", key.map(|k| format!("({k})")).unwrap_or_default(), value.to_json());
    }
    if resume.in_doubt.is_empty() {
        out!("no calls in doubt");
    }
    for call in &resume.in_doubt {
        out!(
            "in doubt: call {} ({}) was allowed but its result was never recorded; re-drive it{}",
            call.call_id,
            call.tool,
            call.idempotency_key.as_ref().map(|k| format!(" with idempotency key {k}")).unwrap_or_default()
        );
    }
    engine.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `audit export`: every record as one JSON line.
pub async fn export(db: &str, output: Option<&Path>) -> Result<ExitCode> {
    let engine = open_existing(db).await?;
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut after = 0;
    loop {
        let batch = engine.audit_records(after, 10_000).await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for r in &batch {
            let body: serde_json::Value =
                serde_json::from_str(&r.body).unwrap_or_else(|_| serde_json::Value::String(r.body.clone()));
            let line = serde_json::json!({
                "seq": r.seq, "session": r.session_id, "session_seq": r.session_seq, "kind": r.kind,
                "at_ms": r.at_ms, "body": body, "prev_hash": r.prev_hash,
                "session_prev_hash": r.session_prev_hash, "hash": r.hash,
            });
            if let Err(error) = writeln!(out, "{line}") {
                // A closed pipe (`| head`) is the reader's choice to stop.
                if error.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(ExitCode::SUCCESS);
                }
                return Err(error.into());
            }
        }
    }
    if let Err(error) = out.flush()
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(error.into());
    }
    engine.close().await;
    Ok(ExitCode::SUCCESS)
}
