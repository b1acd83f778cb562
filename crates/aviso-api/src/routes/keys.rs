//! `/v1/api-keys`: the admin issues and revokes tenant and partner keys. A
//! key is shown once, at creation; only its hash is stored.

use super::check_text;
use crate::auth::{generate_key, hash_key, Principal};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::JsonBody;
use crate::ApiState;
use aviso_core::model::{ApiKey, KeyScope};
use aviso_core::{KeyId, PartnerId, Timestamp};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Tenant id or uid, for a tenant key.
    #[serde(default)]
    tenant: Option<String>,
    /// Partner id, for a partner key.
    #[serde(default)]
    partner: Option<String>,
    #[serde(default)]
    name: String,
}

/// `POST /v1/api-keys` (admin).
#[tracing::instrument(skip_all)]
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "keys",
    operation_id = "keys_create",
    summary = "Create a tenant or partner key (admin); the key is shown once",
    request_body(content = crate::schemas::KeyInput, content_type = "application/json", description = "JSON object (fields in docs/api.md)"),
    responses(
        (status = 201, description = "The key", body = crate::schemas::KeyCreated),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 403, description = "This key may not do that", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 409, description = "Conflict with the current state", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over `limits.max_body_bytes`", body = crate::openapi::ErrorBody),
        (status = 415, description = "Body is not `application/json`", body = crate::openapi::ErrorBody),
        (status = 422, description = "Invalid field (`field` names it)", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn create(
    State(s): State<ApiState>,
    p: Principal,
    JsonBody(b): JsonBody<CreateKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    p.require_admin()?;
    check_text("name", &b.name, 0, 256)?;
    let scope = match (b.tenant.as_deref(), b.partner.as_deref()) {
        (Some(t), None) => {
            let tenant = s
                .store
                .get_tenant(t)
                .await
                .or_not_found("tenant")
                .map_err(|_| ApiError::invalid(format!("no tenant `{t}`")).at("tenant"))?;
            KeyScope::Tenant(tenant.id)
        }
        (None, Some(p)) => {
            let id =
                PartnerId::parse(p).map_err(|e| ApiError::invalid(e.to_string()).at("partner"))?;
            s.store
                .get_partner(&id)
                .await
                .or_not_found("partner")
                .map_err(|_| ApiError::invalid(format!("no partner `{p}`")).at("partner"))?;
            KeyScope::Partner(id)
        }
        _ => {
            return Err(
                ApiError::invalid("give exactly one of `tenant` and `partner`").at("tenant"),
            )
        }
    };
    let key = generate_key();
    let rec = ApiKey {
        id: KeyId::new(),
        scope,
        name: b.name,
        hash: hash_key(&key),
        created_at: Timestamp::now(),
    };
    let rec = s.store.create_api_key(rec).await?;
    let (tenant, partner) = match &rec.scope {
        KeyScope::Tenant(t) => (Some(t.as_str()), None),
        KeyScope::Partner(p) => (None, Some(p.as_str())),
        KeyScope::Admin => (None, None),
    };
    let mut body = json!({
        "id": rec.id, "key": key, "name": rec.name, "created_at": rec.created_at,
    });
    if let Some(t) = tenant {
        body["tenant"] = json!(t);
    }
    if let Some(p) = partner {
        body["partner"] = json!(p);
    }
    Ok((StatusCode::CREATED, Json(body)))
}

/// `DELETE /v1/api-keys/{key}` (admin): revokes at once.
#[utoipa::path(
    delete,
    path = "/v1/api-keys/{key}",
    tag = "keys",
    operation_id = "keys_delete",
    summary = "Revoke a key (admin)",
    params(
        ("key" = String, Path, description = "Key id (`key_…`)")
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 403, description = "This key may not do that", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
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
