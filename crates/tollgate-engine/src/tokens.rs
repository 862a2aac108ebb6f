//! API tokens: who may do what, for which tenant. A token is shown once, when
//! it is made (`tg_<id>_<secret>`); the store keeps its id and the SHA-256 of
//! the whole token, so a copy of the database authenticates nobody. Roles:
//! an agent decides calls and records results, a reviewer works the handoff
//! queue, an admin manages workflows, tokens and the audit log.

use crate::{Engine, Error, check_id};
use sha2::{Digest, Sha256};
use tollgate_store::TokenRow;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sessions, calls and results: an agent's side.
    Agent,
    /// The handoff queue and its actions: a person's side.
    Reviewer,
    /// Workflows, tokens and the audit log.
    Admin,
}

impl Role {
    /// `agent`, `reviewer` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    /// The role a name stands for.
    pub fn parse(name: &str) -> Option<Role> {
        [Role::Agent, Role::Reviewer, Role::Admin].into_iter().find(|role| role.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Its public id.
    pub id: String,
    /// The tenant it acts for.
    pub tenant: String,
    /// What it may do.
    pub role: Role,
    /// Whose it is, or what for: a reviewer's name is what the audit log
    /// records as who acted.
    pub name: String,
    /// When it was made (ms since the Unix epoch).
    pub created_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
}

impl Token {
    fn from_row(row: TokenRow) -> Result<Token, Error> {
        let role = Role::parse(&row.role).ok_or_else(|| Error::Damaged {
            message: format!("token {} has an unknown role {:?}", row.id, row.role),
        })?;
        Ok(Token {
            id: row.id,
            tenant: row.tenant,
            role,
            name: row.name,
            created_ms: row.created_ms,
            revoked_ms: row.revoked_ms,
        })
    }
}

/// Longest token name accepted, in bytes.
const NAME_MAX: usize = 128;

fn secret_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `n` random bytes from the operating system, hex.
fn random_hex(n: usize) -> Result<String, Error> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| Error::storage(format!("no randomness for a token: {e}")))?;
    Ok(hex::encode(bytes))
}

impl Engine {
    /// Makes a token for `tenant` with `role`; returns it as listed and the
    /// token itself, which is never shown again.
    pub async fn create_token(&self, tenant: &str, role: Role, name: &str) -> Result<(Token, String), Error> {
        check_id("tenant", tenant)?;
        if name.trim().is_empty() || name.len() > NAME_MAX || name.chars().any(char::is_control) {
            return Err(Error::bad_request(format!(
                "a token's name must be 1 to {NAME_MAX} bytes of text without control characters"
            )));
        }
        let id = random_hex(8)?;
        let token = format!("tg_{id}_{}", random_hex(32)?);
        let row = TokenRow {
            id,
            tenant: tenant.to_owned(),
            role: role.as_str().to_owned(),
            name: name.to_owned(),
            secret_hash: secret_hash(&token),
            created_ms: self.clock.now_ms(),
            revoked_ms: None,
        };
        self.store.put_token(&row).await?;
        Ok((Token::from_row(row)?, token))
    }

    /// The token a caller presents, if it is one and is not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Token>, Error> {
        // The shape first: anything else never reaches the store.
        let well_formed = token.len() == 3 + 16 + 1 + 64
            && token.starts_with("tg_")
            && token.chars().skip(3).all(|c| c.is_ascii_hexdigit() || c == '_');
        if !well_formed {
            return Ok(None);
        }
        let Some(row) = self.store.token_by_secret(&secret_hash(token)).await? else { return Ok(None) };
        if row.revoked_ms.is_some() {
            return Ok(None);
        }
        Token::from_row(row).map(Some)
    }

    /// Every token (of one tenant, if given), oldest first.
    pub async fn tokens(&self, tenant: Option<&str>) -> Result<Vec<Token>, Error> {
        self.store.tokens(tenant).await?.into_iter().map(Token::from_row).collect()
    }

    /// Revokes token `id`; false if there is none or it was revoked already.
    pub async fn revoke_token(&self, id: &str) -> Result<bool, Error> {
        check_id("token", id)?;
        Ok(self.store.revoke_token(id, self.clock.now_ms()).await?)
    }
}
