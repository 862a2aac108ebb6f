//! `tollgate tokens create|list|revoke`: API tokens for `tollgate serve`. A
//! token is printed once, when it is made; the store keeps its SHA-256.

use anyhow::{Result, bail};
use std::process::ExitCode;
use tollgate_engine::{Engine, Role};

/// `tokens create --tenant T --role R --name N`: prints the token.
pub async fn create(db: &str, tenant: &str, role: &str, name: &str) -> Result<ExitCode> {
    let Some(role) = Role::parse(role) else { bail!("no role {role:?}: agent, reviewer or admin") };
    let engine = Engine::open(db).await?;
    let (token, secret) = engine.create_token(tenant, role, name).await?;
    engine.close().await;
    out!("{secret}");
    eprintln!(
        "tollgate: token {} ({} of tenant {}, \"{}\") made; it is shown only now",
        token.id, token.role, token.tenant, token.name
    );
    Ok(ExitCode::SUCCESS)
}

/// `tokens list [--tenant T]`: every token, never a secret.
pub async fn list(db: &str, tenant: Option<&str>) -> Result<ExitCode> {
    let engine = Engine::open_existing(db).await?;
    let tokens = engine.tokens(tenant).await?;
    engine.close().await;
    if tokens.is_empty() {
        out!("no tokens in {db}");
    }
    for token in tokens {
        let revoked = token.revoked_ms.map(|ms| format!("  revoked at {ms}")).unwrap_or_default();
        out!("{}  {:<8} {:<16} {}{revoked}", token.id, token.role.as_str(), token.tenant, token.name);
    }
    Ok(ExitCode::SUCCESS)
}

/// `tokens revoke ID`: the token authenticates nobody from now on.
pub async fn revoke(db: &str, id: &str) -> Result<ExitCode> {
    let engine = Engine::open_existing(db).await?;
    let revoked = engine.revoke_token(id).await?;
    engine.close().await;
    if !revoked {
        bail!("no token {id} that is not revoked already");
    }
    out!("token {id} revoked");
    Ok(ExitCode::SUCCESS)
}
