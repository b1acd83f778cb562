//! Whose endpoints a route works on, from its path: `/v1/tenants/{tenant}/…`
//! (a tenant's) or `/v1/partners/{partner}/…` (a partner's). The key decides
//! what it may reach: the admin both kinds, a tenant key its own tenant's, a
//! partner key its own partner's; anything else is 404.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::ApiState;
use aviso_core::model::Owner;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;

/// The owner a scoped route works on, checked against the caller's key.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The tenant or partner named in the path.
    pub owner: Owner,
    /// Who is calling.
    pub principal: Principal,
}

impl FromRequestParts<ApiState> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("route"))?;
        for (key, value) in &params {
            let owner = match key {
                "tenant" => Owner::Tenant(principal.tenant(state, value).await?.id.clone()),
                "partner" => Owner::Partner(principal.partner(state, value).await?.id),
                _ => continue,
            };
            return Ok(Self { owner, principal });
        }
        Err(ApiError::not_found("route"))
    }
}
