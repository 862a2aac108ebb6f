//! `tollgate audit verify|head|keygen` and the audit key of the commands
//! that write: the head of the audit log is signed by a key kept outside the
//! database, so a rewrite of the whole log, hashes and all, is caught by
//! `audit verify --key`, and a head published elsewhere (`audit head`)
//! catches a rollback (`audit verify --head`).

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::ExitCode;
use tollgate_engine::{AuditKey, AuditVerifyKey, Engine, SignedHead};

/// The environment variable naming the file of the key that signs the
/// audit head, for every command that writes to a store.
pub const KEY_FILE_ENV: &str = "TOLLGATE_AUDIT_KEY_FILE";

/// The engine over `db`, signing the audit head with the key in
/// `$TOLLGATE_AUDIT_KEY_FILE` when it is set (an unreadable key file is an
/// error, not an unsigned log).
pub async fn open_writer(db: &str) -> Result<Engine> {
    let key = key_from_env()?;
    let engine = Engine::open(db).await?;
    Ok(match key {
        None => engine,
        Some(key) => engine.with_audit_key(key),
    })
}

/// The signing key in `$TOLLGATE_AUDIT_KEY_FILE`, if it is set (an
/// unreadable or malformed key file is an error, never an unsigned log).
pub fn key_from_env() -> Result<Option<AuditKey>> {
    match std::env::var_os(KEY_FILE_ENV) {
        None => Ok(None),
        Some(path) => {
            let text = crate::input::read(Path::new(&path), "the audit key file", crate::input::SMALL_BYTES_MAX)?;
            Ok(Some(AuditKey::from_hex(&text)?))
        }
    }
}

/// A public key given as hex, or as the path of a file holding it.
fn public_key(given: &str) -> Result<AuditVerifyKey> {
    let text = if Path::new(given).is_file() {
        crate::input::read(Path::new(given), "the key file", crate::input::SMALL_BYTES_MAX)?
    } else {
        given.to_owned()
    };
    Ok(AuditVerifyKey::from_hex(&text)?)
}

/// `audit keygen --out FILE`: a new signing key, written to FILE (readable by
/// its owner only); its public half printed, to verify with.
pub fn keygen(out: &Path) -> Result<ExitCode> {
    if out.exists() {
        bail!("{} exists; a key is never overwritten", out.display());
    }
    let key = AuditKey::generate()?;
    write_private(out, &key.to_hex()).with_context(|| format!("cannot write {}", out.display()))?;
    out!("{}", key.public().to_hex());
    eprintln!(
        "tollgate: the signing key is in {}; give it to the writers ({KEY_FILE_ENV}), keep the printed public key \
         to verify with (tollgate audit verify --key)",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

fn head_json(head: &SignedHead) -> serde_json::Value {
    serde_json::json!({
        "format": "tollgate.audit.head/v1",
        "seq": head.seq,
        "hash": head.hash,
        "signer": head.signer,
        "signature": head.signature,
    })
}

/// `audit head`: the log's head with its signature, as one JSON line, to
/// publish where the database's writers cannot reach.
pub async fn head(db: &str) -> Result<ExitCode> {
    let engine = Engine::open_existing(db).await?;
    let head = engine.audit_head().await?;
    engine.close().await;
    out!("{}", head_json(&head));
    Ok(ExitCode::SUCCESS)
}

/// `audit verify [--key KEY] [--head FILE]`: both chains and every record;
/// with a key, that the head is signed by it; with a published head, that
/// the log still holds it (nothing rolled back past it).
pub async fn verify(db: &str, key: Option<&str>, published: Option<&Path>) -> Result<ExitCode> {
    let key = key.map(public_key).transpose()?;
    let published: Option<serde_json::Value> = match published {
        None => None,
        Some(path) => {
            let text = crate::input::read(path, "the published head", crate::input::SMALL_BYTES_MAX)?;
            Some(serde_json::from_str(&text).with_context(|| format!("{} is not a published head", path.display()))?)
        }
    };
    let engine = Engine::open_existing(db).await?;
    let report = engine.verify_audit_with(key.as_ref()).await?;
    let mut problem = report.problem.map(|p| {
        format!(
            "record {}{}: {}",
            p.seq,
            p.session_id.map(|s| format!(" (session {s})")).unwrap_or_default(),
            p.message
        )
    });
    if let (None, Some(published)) = (&problem, &published) {
        problem = rolled_back(&engine, published, key.as_ref()).await?;
    }
    engine.close().await;
    match problem {
        None => {
            let signed = match &key {
                Some(key) => format!(", head signed by {}", key.to_hex()),
                None => ", chains only (no key given: a careful rewrite of the whole log would pass)".to_owned(),
            };
            out!("audit log intact: {} records in {} sessions{signed}", report.records, report.sessions);
            Ok(ExitCode::SUCCESS)
        }
        Some(problem) => {
            out!("audit log BROKEN at {problem}");
            out!("{} records before it verified", report.records);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Why the log no longer holds a head published earlier, if it does not.
async fn rolled_back(
    engine: &Engine,
    published: &serde_json::Value,
    key: Option<&AuditVerifyKey>,
) -> Result<Option<String>> {
    let (Some(seq), Some(hash)) = (published["seq"].as_i64(), published["hash"].as_str()) else {
        bail!("the published head has no seq and hash");
    };
    let head = SignedHead {
        seq,
        hash: hash.to_owned(),
        signer: published["signer"].as_str().map(str::to_owned),
        signature: published["signature"].as_str().map(str::to_owned),
    };
    if let Some(key) = key
        && !key.signed(&head)
    {
        return Ok(Some(format!("the published head (record {seq}) is not signed by the key given")));
    }
    if seq == 0 {
        return Ok(None);
    }
    let record = engine.audit_records(seq - 1, 1).await?;
    Ok(match record.first() {
        Some(record) if record.seq == seq && record.hash == hash => None,
        Some(record) if record.seq == seq => {
            Some(format!("record {seq}: it is not the record the published head names (the log was rewritten)"))
        }
        _ => Some(format!("record {seq}: the log no longer reaches the published head (it was rolled back)")),
    })
}
