//! The audit log as the engine shows it: verified as a whole, and read back
//! record by record for export. The store chains and checks the records;
//! these are the engine's own views of them, so no surface depends on the
//! store's types.
//!
//! Anyone who can write to the database can rewrite every record and
//! recompute every hash and the head: the chains alone catch a careless
//! edit, not a careful one. So the head is signed (Ed25519) at every commit
//! by a key the database does not hold ([`AuditKey`]); `audit verify` with
//! the public key ([`AuditVerifyKey`]) catches a rewrite, and a signed head
//! published elsewhere ([`Engine::audit_head`]) catches a rollback to an
//! older head. Without the key, verify checks the chains only.

use crate::{Engine, Error};
use ed25519_dalek::{Signer, Verifier};
use std::sync::Arc;

/// The outcome of checking the whole audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// Records checked before the first problem (all of them if none).
    pub records: u64,
    /// Sessions seen.
    pub sessions: usize,
    /// The first problem, if any.
    pub problem: Option<AuditProblem>,
    /// The head the log was checked against, read in the same snapshot.
    pub head: SignedHead,
}

/// The audit log's head: where the global chain ends, and its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHead {
    /// The last record's number (0: empty log).
    pub seq: i64,
    /// The last record's hash.
    pub hash: String,
    /// The public key that signed it (hex), if it is signed.
    pub signer: Option<String>,
    /// The Ed25519 signature (hex), if it is signed.
    pub signature: Option<String>,
}

/// The text a head's signature signs.
fn head_message(seq: i64, hash: &str) -> String {
    format!("tollgate.audit.head/v1\n{seq}\n{hash}")
}

/// The private key that signs the audit head (kept outside the database:
/// a file only the writers read).
#[derive(Clone)]
pub struct AuditKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey({})", self.public().to_hex())
    }
}

impl AuditKey {
    /// A new key from the operating system's randomness.
    pub fn generate() -> Result<AuditKey, Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::storage(format!("no randomness for a key: {e}")))?;
        Ok(AuditKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// The key from its hex text (as [`AuditKey::to_hex`] writes it).
    pub fn from_hex(text: &str) -> Result<AuditKey, Error> {
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| Error::bad_request("an audit key is 64 hex digits (32 bytes)"))?;
        Ok(AuditKey(ed25519_dalek::SigningKey::from_bytes(&bytes)))
    }

    /// The key as hex text, to keep in a file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// Its public half, to verify with.
    pub fn public(&self) -> AuditVerifyKey {
        AuditVerifyKey(self.0.verifying_key())
    }
}

/// The public key that checks the audit head's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditVerifyKey(ed25519_dalek::VerifyingKey);

impl AuditVerifyKey {
    /// The key from its hex text.
    pub fn from_hex(text: &str) -> Result<AuditVerifyKey, Error> {
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| Error::bad_request("a public audit key is 64 hex digits (32 bytes)"))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(AuditVerifyKey)
            .map_err(|_| Error::bad_request("that is not an Ed25519 public key"))
    }

    /// The key as hex text.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// Whether `head` is signed by this key.
    pub fn signed(&self, head: &SignedHead) -> bool {
        let (Some(signer), Some(signature)) = (&head.signer, &head.signature) else { return false };
        let Some(signature) =
            hex::decode(signature).ok().and_then(|bytes| ed25519_dalek::Signature::from_slice(&bytes).ok())
        else {
            return false;
        };
        signer == &self.to_hex() && self.0.verify(head_message(head.seq, &head.hash).as_bytes(), &signature).is_ok()
    }
}

/// The store's head signer, over an [`AuditKey`].
#[derive(Debug)]
struct KeySigner(AuditKey);

impl tollgate_store::HeadSigner for KeySigner {
    fn signer(&self) -> String {
        self.0.public().to_hex()
    }

    fn sign(&self, seq: i64, hash: &str) -> String {
        hex::encode(self.0.0.sign(head_message(seq, hash).as_bytes()).to_bytes())
    }
}

fn signed_head(head: tollgate_store::AuditHead) -> SignedHead {
    SignedHead { seq: head.seq, hash: head.hash, signer: head.signer, signature: head.signature }
}

/// Where the audit log's chains break.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditProblem {
    /// The record where the chain breaks (for records removed from the end,
    /// the first one missing).
    pub seq: i64,
    /// Its session, where known.
    pub session_id: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// One audit record, as stored and chained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the global chain, from 1.
    pub seq: i64,
    /// The session the record belongs to.
    pub session_id: String,
    /// Position in the session's chain, from 1.
    pub session_seq: i64,
    /// The event: a journal record's kind (`decision.allow`, `result`, ...).
    pub kind: String,
    /// The record, as JSON text.
    pub body: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Hash of the record before this one in the global chain.
    pub prev_hash: String,
    /// Hash of the record before this one in the session's chain.
    pub session_prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

impl Engine {
    /// The same engine, signing the audit head with `key` at every commit
    /// (in every clone of its store).
    pub fn with_audit_key(self, key: AuditKey) -> Engine {
        self.store.sign_heads(Arc::new(KeySigner(key)));
        self
    }

    /// Checks the whole audit log: every record's hash, both chains (global
    /// and per session), and that its end is the head the store wrote.
    pub async fn verify_audit(&self) -> Result<AuditReport, Error> {
        self.verify_audit_with(None).await
    }

    /// [`Engine::verify_audit`], and with `key` also that the head the log
    /// ends at is signed by it: a log rewritten by someone without the key,
    /// however careful, fails here.
    pub async fn verify_audit_with(&self, key: Option<&AuditVerifyKey>) -> Result<AuditReport, Error> {
        let report = self.store.verify_audit().await?;
        let head = signed_head(report.head);
        let mut problem =
            report.problem.map(|p| AuditProblem { seq: p.seq, session_id: p.session_id, message: p.message });
        if let Some(key) = key
            && problem.is_none()
            && head.seq > 0
            && !key.signed(&head)
        {
            problem = Some(AuditProblem {
                seq: head.seq,
                session_id: None,
                message: format!(
                    "the log's head (record {}) is not signed by key {}: the log was rewritten, or written by a \
                     writer without the key",
                    head.seq,
                    key.to_hex()
                ),
            });
        }
        Ok(AuditReport { records: report.records, sessions: report.sessions, problem, head })
    }

    /// The audit log's head as stored now, with its signature: publish it
    /// somewhere the database's writers cannot reach, to anchor the log.
    pub async fn audit_head(&self) -> Result<SignedHead, Error> {
        Ok(signed_head(self.store.audit_head().await?))
    }

    /// Up to `limit` audit records with a number above `after`, in order.
    pub async fn audit_records(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>, Error> {
        let records = self.store.audit_records(after, limit).await?;
        Ok(records
            .into_iter()
            .map(|r| AuditRecord {
                seq: r.seq,
                session_id: r.session_id,
                session_seq: r.session_seq,
                kind: r.kind,
                body: r.body,
                at_ms: r.at_ms,
                prev_hash: r.prev_hash,
                session_prev_hash: r.session_prev_hash,
                hash: r.hash,
            })
            .collect())
    }
}
