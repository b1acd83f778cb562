//! `/v1/api-keys`: the admin issues and revokes tenant keys. A key is shown
//! once, at creation; only its hash is stored.

use super::check_text;
use crate::auth::{generate_key, hash_key, Principal};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::JsonBody;
use crate::ApiState;
use aviso_core::model::{ApiKey, KeyScope};
use aviso_core::{KeyId, Timestamp};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Tenant id or uid.
    tenant: String,
    #[serde(default)]
    name: String,
}

/// `POST /v1/api-keys` (admin).
#[tracing::instrument(skip_all)]
pub async fn create(
    State(s): State<ApiState>,
    p: Principal,
    JsonBody(b): JsonBody<CreateKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    p.require_admin()?;
    check_text("name", &b.name, 0, 256)?;
    let tenant = s
        .store
        .get_tenant(&b.tenant)
        .await
        .or_not_found("tenant")
        .map_err(|_| ApiError::invalid(format!("no tenant `{}`", b.tenant)).at("tenant"))?;
    let key = generate_key();
    let rec = ApiKey {
        id: KeyId::new(),
        scope: KeyScope::Tenant(tenant.id.clone()),
        name: b.name,
        hash: hash_key(&key),
        created_at: Timestamp::now(),
    };
    let rec = s.store.create_api_key(rec).await?;
    let body = json!({
        "id": rec.id, "key": key, "tenant": tenant.id, "name": rec.name, "created_at": rec.created_at,
    });
    Ok((StatusCode::CREATED, Json(body)))
}

/// `DELETE /v1/api-keys/{key}` (admin): revokes at once.
pub async fn delete(
    State(s): State<ApiState>,
    p: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    p.require_admin()?;
    let id = KeyId::parse(&id).map_err(|_| ApiError::not_found("api key"))?;
    s.store.delete_api_key(&id).await.or_not_found("api key")?;
    s.keys.clear();
    Ok(StatusCode::NO_CONTENT)
}
