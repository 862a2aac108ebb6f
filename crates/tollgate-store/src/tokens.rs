//! API tokens as stored: never the secret, only its SHA-256, with the
//! tenant and role the token acts as. A revoked token stays listed, with
//! when it was revoked, and authenticates nobody.

use crate::{Error, Store};
use sqlx::Row;

/// A token as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRow {
    /// The token's public id (shown in lists, used to revoke it).
    pub id: String,
    /// The tenant it acts for.
    pub tenant: String,
    /// `agent`, `reviewer` or `admin`.
    pub role: String,
    /// What it is for, in its creator's words (a reviewer's name, say).
    pub name: String,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
    /// When it was made, in milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_ms: Option<i64>,
}

const COLUMNS: &str = "id, tenant, role, name, secret_hash, created_ms, revoked_ms";

fn row_of<R: Row>(row: &R) -> Result<TokenRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(TokenRow {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant")?,
        role: row.try_get("role")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        created_ms: row.try_get("created_ms")?,
        revoked_ms: row.try_get("revoked_ms")?,
    })
}

/// Runs `$body` with `$pool` bound to the backend's pool.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store.backend_ref() {
            crate::Backend::Sqlite(sqlite) => {
                let $pool = &sqlite.pool;
                $body
            }
            crate::Backend::Postgres($pool) => $body,
        }
    };
}

impl Store {
    /// Stores a new token. Fails if its id or secret is taken.
    pub async fn put_token(&self, token: &TokenRow) -> Result<(), Error> {
        for text in [&token.id, &token.tenant, &token.role, &token.name, &token.secret_hash] {
            crate::refuse_nul("a token", text)?;
        }
        const SQL: &str = "INSERT INTO tollgate_tokens (id, tenant, role, name, secret_hash, created_ms, revoked_ms) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(&token.id)
                .bind(&token.tenant)
                .bind(&token.role)
                .bind(&token.name)
                .bind(&token.secret_hash)
                .bind(token.created_ms)
                .bind(token.revoked_ms)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The token whose secret hashes to `secret_hash`, revoked or not.
    pub async fn token_by_secret(&self, secret_hash: &str) -> Result<Option<TokenRow>, Error> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tollgate_tokens WHERE secret_hash = $1"));
        let row = on_pool!(self, pool => sqlx::query(sql).bind(secret_hash).fetch_optional(pool).await?
            .map(|row| row_of(&row)));
        Ok(row.transpose()?)
    }

    /// Every token (of one tenant, if given), oldest first.
    pub async fn tokens(&self, tenant: Option<&str>) -> Result<Vec<TokenRow>, Error> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tollgate_tokens WHERE ($1 IS NULL OR tenant = $1) ORDER BY created_ms, id"
        ));
        let rows = on_pool!(self, pool => sqlx::query(sql).bind(tenant).fetch_all(pool).await?
            .iter().map(row_of).collect::<Result<Vec<_>, _>>());
        Ok(rows?)
    }

    /// Revokes token `id` at `at_ms`; false if there is none, or it was
    /// revoked already (the first revocation's time is kept).
    pub async fn revoke_token(&self, id: &str, at_ms: i64) -> Result<bool, Error> {
        const SQL: &str = "UPDATE tollgate_tokens SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL";
        let changed = on_pool!(self, pool => sqlx::query(SQL).bind(id).bind(at_ms).execute(pool).await?
            .rows_affected());
        Ok(changed == 1)
    }
}
