//! Who is calling: the API token in `Authorization: Bearer tg_...`, checked
//! against the store on every request (a revoked token stops working at
//! once, on every replica). Every handler states the roles it admits; the
//! tenant the token acts for scopes everything it reaches.

use crate::error::Problem;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
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
        let token = bearer(parts).ok_or_else(Problem::unauthenticated)?;
        let found = state.engine().authenticate(token).await.map_err(Problem::from)?;
        let token = found.ok_or_else(Problem::unauthenticated)?;
        Ok(Caller { token: token.id, tenant: token.tenant, role: token.role, name: token.name })
    }
}
