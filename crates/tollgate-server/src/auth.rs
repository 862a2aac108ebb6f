//! Who is calling: the API token in `Authorization: Bearer tg_...`. A token
//! the store found valid is trusted for `token_cache_seconds` (default 1:
//! a revoked token stops working within a second on every replica; 0: the
//! store is asked on every request). Each handler names the roles it admits
//! in its extractor's type, so a wrong role is refused before the body is
//! read; the tenant the token acts for scopes everything it reaches. Every
//! token then takes from its own rate bucket.

use crate::error::Problem;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use std::marker::PhantomData;
use tollgate_engine::{Role, Tenant};

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's id.
    pub token: String,
    /// The tenant it acts for.
    pub tenant: String,
    /// What it may do.
    pub role: Role,
    /// Whose it is: a reviewer's name is who the audit log says acted.
    pub name: String,
}

impl Caller {
    /// Refuses the call unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Problem> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        let allowed: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
        Err(Problem::forbidden(format!(
            "a token of role {} may not do this (it takes {})",
            self.role,
            allowed.join(" or ")
        )))
    }

    /// The engine as this caller's tenant sees it.
    pub fn engine<'e>(&'e self, state: &'e AppState) -> Tenant<'e> {
        state.engine().for_tenant(&self.tenant)
    }
}

/// The token a request presents, if it presents one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, Problem> {
        authenticate(state, bearer(parts)).await
    }
}

/// The caller a presented token stands for: its shape checked, then the
/// token cache or the store, then its rate bucket. The one path every
/// authenticated route takes (the extractor, and the hook route, which
/// answers a refusal instead of the problem).
pub(crate) async fn authenticate(state: &AppState, presented: Option<&str>) -> Result<Caller, Problem> {
    let presented = presented.ok_or_else(Problem::unauthenticated)?;
    // Only our tokens' shape reaches the store (and its NUL check).
    if !presented.starts_with("tg_") || presented.len() > 256 || !presented.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Problem::unauthenticated());
    }
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let token = match state.cached_token(&digest) {
        Some(token) => token,
        None => {
            let found = state.engine().authenticate(presented).await.map_err(Problem::from)?;
            let token = found.ok_or_else(Problem::unauthenticated)?;
            state.cache_token(digest, token.clone());
            token
        }
    };
    state.rate().take(&token.id).map_err(Problem::too_many_requests)?;
    Ok(Caller { token: token.id, tenant: token.tenant, role: token.role, name: token.name })
}

/// The roles a handler admits.
pub trait Admits: Send + Sync + 'static {
    /// Those roles.
    const ROLES: &'static [Role];
}

/// Agents only.
pub struct AgentOnly;
/// Agents and reviewers (reading sessions and handoffs).
pub struct AgentOrReviewer;
/// Reviewers only.
pub struct ReviewerOnly;
/// Admins only.
pub struct AdminOnly;

impl Admits for AgentOnly {
    const ROLES: &'static [Role] = &[Role::Agent];
}
impl Admits for AgentOrReviewer {
    const ROLES: &'static [Role] = &[Role::Agent, Role::Reviewer];
}
impl Admits for ReviewerOnly {
    const ROLES: &'static [Role] = &[Role::Reviewer];
}
impl Admits for AdminOnly {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// A caller of one of the roles `R` admits (403 before anything else is read).
pub struct As<R>(pub Caller, pub PhantomData<R>);

impl<R: Admits> FromRequestParts<AppState> for As<R> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<As<R>, Problem> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(R::ROLES)?;
        Ok(As(caller, PhantomData))
    }
}
