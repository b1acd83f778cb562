//! `/v1/tenants`: the platform's customers. The admin manages them; a tenant
//! key sees only its own; a partner key creates and lists its own tenants.

use super::check_text;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{list_body, JsonBody, ListArgs, QueryArgs};
use crate::ApiState;
use aviso_core::model::Tenant;
use aviso_core::{PartnerId, TenantId, Timestamp};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    uid: String,
    name: String,
    #[serde(default)]
    metadata: Map<String, Value>,
    /// The partner acting for the tenant (`par_…`); a partner key may only name itself.
    #[serde(default)]
    partner: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    uid: Option<String>,
    name: Option<String>,
    metadata: Option<Map<String, Value>>,
    /// A partner id, or `null` to detach the tenant from its partner.
    #[serde(default, deserialize_with = "some")]
    partner: Option<Option<String>>,
}

fn some<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Parses a partner id given in a tenant body; 422 when there is no such partner.
async fn partner_field(s: &ApiState, id: &str) -> ApiResult<PartnerId> {
    let id = PartnerId::parse(id).map_err(|e| ApiError::invalid(e.to_string()).at("partner"))?;
    s.store
        .get_partner(&id)
        .await
        .or_not_found("partner")
        .map_err(|_| ApiError::invalid(format!("no partner `{id}`")).at("partner"))?;
    Ok(id)
}

fn check(t: &Tenant) -> ApiResult<()> {
    check_text("uid", &t.uid, 1, 128)?;
    check_text("name", &t.name, 1, 256)
}

/// `POST /v1/tenants` (admin, or a partner key for its own tenants).
#[tracing::instrument(skip_all)]
#[utoipa::path(
    post,
    path = "/v1/tenants",
    tag = "tenants",
    operation_id = "tenants_create",
    summary = "Create a tenant",
    request_body(content = crate::schemas::TenantInput, content_type = "application/json", description = "JSON object (fields in docs/api.md)"),
    responses(
        (status = 201, description = "The tenant", body = crate::schemas::Tenant),
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
    JsonBody(b): JsonBody<CreateTenant>,
) -> ApiResult<(StatusCode, Json<Tenant>)> {
    let partner = match (&p, b.partner.as_deref()) {
        (Principal::Admin, None) => None,
        (Principal::Admin, Some(id)) => Some(partner_field(&s, id).await?),
        (Principal::Partner(own), None) => Some(own.clone()),
        (Principal::Partner(own), Some(id)) if id == own.as_str() => Some(own.clone()),
        (Principal::Partner(_), Some(_)) => {
            return Err(
                ApiError::invalid("a partner key creates tenants for its own partner only")
                    .at("partner"),
            )
        }
        (Principal::Tenant(_), _) => {
            return Err(ApiError::forbidden(
                "this operation needs an admin or partner key",
            ))
        }
    };
    let now = Timestamp::now();
    let t = Tenant {
        id: TenantId::new(),
        uid: b.uid,
        name: b.name,
        partner,
        metadata: Value::Object(b.metadata),
        created_at: now,
        updated_at: now,
    };
    check(&t)?;
    Ok((StatusCode::CREATED, Json(s.store.create_tenant(t).await?)))
}

/// `GET /v1/tenants`: all of them for the admin, its own for a tenant key,
/// the partner's for a partner key.
#[utoipa::path(
    get,
    path = "/v1/tenants",
    tag = "tenants",
    operation_id = "tenants_list",
    summary = "List tenants (admin: all; partner key: its own)",
    params(
        ("limit" = Option<u32>, Query, description = "Items per page, 1 to 250 (default 50)"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of tenants", body = crate::schemas::TenantPage),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 403, description = "This key may not do that", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn list(
    State(s): State<ApiState>,
    p: Principal,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Json<Value>> {
    let page = q.page()?;
    match p {
        Principal::Admin => {
            let page = s.store.list_tenants(page).await?;
            Ok(Json(list_body(page.items, page.next)))
        }
        Principal::Partner(id) => {
            let page = s.store.list_partner_tenants(&id, page).await?;
            Ok(Json(list_body(page.items, page.next)))
        }
        Principal::Tenant(id) => {
            let t = s
                .store
                .get_tenant(id.as_str())
                .await
                .or_not_found("tenant")?;
            Ok(Json(list_body(vec![t], None)))
        }
    }
}

/// `GET /v1/tenants/{tenant}` (id or uid).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}",
    tag = "tenants",
    operation_id = "tenants_show",
    summary = "Get a tenant",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid")
    ),
    responses(
        (status = 200, description = "The tenant", body = crate::schemas::Tenant),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn show(
    State(s): State<ApiState>,
    p: Principal,
    Path(t): Path<String>,
) -> ApiResult<Json<Tenant>> {
    p.tenant_view(&s, &t).await.map(|t| Json(Tenant::clone(&t)))
}

/// `PATCH /v1/tenants/{tenant}` (admin).
#[tracing::instrument(skip_all, fields(tenant = %t))]
#[utoipa::path(
    patch,
    path = "/v1/tenants/{tenant}",
    tag = "tenants",
    operation_id = "tenants_update",
    summary = "Change a tenant",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid")
    ),
    request_body(content = crate::schemas::TenantPatch, content_type = "application/json", description = "JSON object (fields in docs/api.md)"),
    responses(
        (status = 200, description = "The tenant", body = crate::schemas::Tenant),
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
pub async fn update(
    State(s): State<ApiState>,
    p: Principal,
    Path(t): Path<String>,
    JsonBody(b): JsonBody<UpdateTenant>,
) -> ApiResult<Json<Tenant>> {
    p.require_admin()?;
    let mut tenant = Tenant::clone(&*p.tenant(&s, &t).await?);
    if let Some(uid) = b.uid {
        tenant.uid = uid;
    }
    if let Some(name) = b.name {
        tenant.name = name;
    }
    if let Some(m) = b.metadata {
        tenant.metadata = Value::Object(m);
    }
    if let Some(partner) = b.partner {
        tenant.partner = match partner {
            Some(id) => Some(partner_field(&s, &id).await?),
            None => None,
        };
    }
    check(&tenant)?;
    tenant.updated_at = Timestamp::now();
    let tenant = s.store.update_tenant(tenant).await.or_not_found("tenant")?;
    s.catalog.tenants_changed();
    Ok(Json(tenant))
}

/// `DELETE /v1/tenants/{tenant}` (admin): the tenant and everything it owns.
#[tracing::instrument(skip_all, fields(tenant = %t))]
#[utoipa::path(
    delete,
    path = "/v1/tenants/{tenant}",
    tag = "tenants",
    operation_id = "tenants_delete",
    summary = "Delete a tenant and everything it owns",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid")
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 403, description = "This key may not do that", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn delete(
    State(s): State<ApiState>,
    p: Principal,
    Path(t): Path<String>,
) -> ApiResult<StatusCode> {
    p.require_admin()?;
    let tenant = p.tenant(&s, &t).await?;
    s.store
        .delete_tenant(&tenant.id)
        .await
        .or_not_found("tenant")?;
    s.catalog.tenants_changed();
    s.keys.clear();
    Ok(StatusCode::NO_CONTENT)
}
