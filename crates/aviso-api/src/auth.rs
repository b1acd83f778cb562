//! API keys: generation, hashing, and the caller's identity on each request.

use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::ApiState;
use aviso_core::model::{KeyScope, Partner, Tenant};
use aviso_core::{PartnerId, TenantId};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// The admin key: everything.
    Admin,
    /// A tenant key: that tenant only.
    Tenant(TenantId),
    /// A partner key: its tenants (create, list, read) and its partner endpoints.
    Partner(PartnerId),
}

impl Principal {
    /// Fails with 403 unless the caller is the admin.
    pub fn require_admin(&self) -> ApiResult<()> {
        match self {
            Self::Admin => Ok(()),
            _ => Err(ApiError::forbidden("this operation needs an admin key")),
        }
    }

    /// Loads a tenant by id or uid whose resources (endpoints, events,
    /// deliveries) this caller manages: the admin any, a tenant key its own.
    /// Anything else, partner keys included, is 404.
    pub async fn tenant(&self, state: &ApiState, id_or_uid: &str) -> ApiResult<Arc<Tenant>> {
        let t = self.load_tenant(state, id_or_uid).await?;
        match self {
            Self::Admin => Ok(t),
            Self::Tenant(own) if *own == t.id => Ok(t),
            _ => Err(ApiError::not_found("tenant")),
        }
    }

    /// Loads a tenant this caller may read: as [`Principal::tenant`], and a
    /// partner key also sees its own tenants.
    pub async fn tenant_view(&self, state: &ApiState, id_or_uid: &str) -> ApiResult<Arc<Tenant>> {
        let t = self.load_tenant(state, id_or_uid).await?;
        match self {
            Self::Partner(p) if t.partner.as_ref() == Some(p) => Ok(t),
            Self::Partner(_) => Err(ApiError::not_found("tenant")),
            _ => self.tenant(state, id_or_uid).await,
        }
    }

    /// Loads a partner as this caller sees it: the admin any, a partner key
    /// its own; anything else is 404.
    pub async fn partner(&self, state: &ApiState, id: &str) -> ApiResult<Partner> {
        let id = PartnerId::parse(id).map_err(|_| ApiError::not_found("partner"))?;
        match self {
            Self::Admin => {}
            Self::Partner(own) if *own == id => {}
            _ => return Err(ApiError::not_found("partner")),
        }
        state.store.get_partner(&id).await.or_not_found("partner")
    }

    /// The cached tenant itself, shared: a copy would clone its metadata.
    async fn load_tenant(&self, state: &ApiState, id_or_uid: &str) -> ApiResult<Arc<Tenant>> {
        state
            .catalog
            .tenant(state.store.as_ref(), id_or_uid)
            .await
            .or_not_found("tenant")
    }
}

/// A fresh API key: `avk_` and 43 characters of base64url (32 random bytes).
pub fn generate_key() -> String {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    format!("avk_{}", B64.encode(raw))
}

/// The stored form of a key: hex SHA-256. Keys are 256-bit random values, so a
/// fast hash is enough; a password hash would only slow every request.
pub fn hash_key(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Every API request hashes its key: one string, not one per byte.
    let mut hex = String::with_capacity(64);
    for b in Sha256::digest(key.as_bytes()) {
        hex.push(HEX[usize::from(b >> 4)] as char);
        hex.push(HEX[usize::from(b & 0xf)] as char);
    }
    hex
}

/// A request made inside this process on behalf of a caller already
/// authenticated another way (the web portal's session, the admin console's
/// login): the API treats it as that principal. Only code in this process can
/// put it on a request; nothing from the network becomes a request extension.
#[derive(Clone, Debug)]
pub struct Acting(pub Principal);

/// The principal of an API key, or 401.
pub async fn principal_of_key(state: &ApiState, key: &str) -> ApiResult<Principal> {
    let hash = hash_key(key);
    if state.cfg.admin_key_hash.as_deref() == Some(hash.as_str()) {
        return Ok(Principal::Admin);
    }
    if let Some(p) = state.keys.get(&hash) {
        return Ok(p);
    }
    let found = state.store.find_api_key(&hash).await?;
    let principal = match found.map(|k| k.scope) {
        Some(KeyScope::Admin) => Principal::Admin,
        Some(KeyScope::Tenant(t)) => Principal::Tenant(t),
        Some(KeyScope::Partner(p)) => Principal::Partner(p),
        None => return Err(ApiError::unauthorized("unknown API key")),
    };
    state.keys.insert(hash, principal.clone());
    Ok(principal)
}

impl FromRequestParts<ApiState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(Acting(p)) = parts.extensions.get::<Acting>() {
            return Ok(p.clone());
        }
        let header = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized("missing Authorization header: send `Bearer <api key>`")
            })?;
        let key = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("Authorization header must be `Bearer <api key>`")
            })?;
        principal_of_key(state, key).await
    }
}

/// Verified keys, so most requests skip the store. Cleared whenever a key or
/// tenant is deleted.
#[derive(Default)]
pub struct KeyCache(std::sync::RwLock<std::collections::HashMap<String, Principal>>);

impl KeyCache {
    fn get(&self, hash: &str) -> Option<Principal> {
        self.0.read().ok()?.get(hash).cloned()
    }

    fn insert(&self, hash: String, p: Principal) {
        if let Ok(mut m) = self.0.write() {
            if m.len() > 100_000 {
                m.clear();
            }
            m.insert(hash, p);
        }
    }

    /// Forgets every cached key.
    pub fn clear(&self) {
        if let Ok(mut m) = self.0.write() {
            m.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hash_key;

    #[test]
    fn a_key_is_stored_as_lower_case_hex_sha256() {
        // FIPS 180-2's example: SHA-256 of "abc".
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
