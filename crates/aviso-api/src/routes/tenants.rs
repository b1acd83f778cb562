//! `/v1/tenants`: the platform's customers. The admin manages them; a tenant
//! key sees only its own.

use super::check_text;
use crate::auth::Principal;
use crate::error::{ApiResult, OrNotFound};
use crate::extract::{list_body, JsonBody, ListArgs, QueryArgs};
use crate::ApiState;
use aviso_core::model::Tenant;
use aviso_core::{TenantId, Timestamp};
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    uid: Option<String>,
    name: Option<String>,
    metadata: Option<Map<String, Value>>,
}

fn check(t: &Tenant) -> ApiResult<()> {
    check_text("uid", &t.uid, 1, 128)?;
    check_text("name", &t.name, 1, 256)
}

/// `POST /v1/tenants` (admin).
#[tracing::instrument(skip_all)]
pub async fn create(
    State(s): State<ApiState>,
    p: Principal,
    JsonBody(b): JsonBody<CreateTenant>,
) -> ApiResult<(StatusCode, Json<Tenant>)> {
    p.require_admin()?;
    let now = Timestamp::now();
    let t = Tenant {
        id: TenantId::new(),
        uid: b.uid,
        name: b.name,
        metadata: Value::Object(b.metadata),
        created_at: now,
        updated_at: now,
    };
    check(&t)?;
    Ok((StatusCode::CREATED, Json(s.store.create_tenant(t).await?)))
}

/// `GET /v1/tenants`: all of them for the admin, its own for a tenant key.
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
pub async fn show(
    State(s): State<ApiState>,
    p: Principal,
    Path(t): Path<String>,
) -> ApiResult<Json<Tenant>> {
    p.tenant(&s, &t).await.map(Json)
}

/// `PATCH /v1/tenants/{tenant}` (admin).
#[tracing::instrument(skip_all, fields(tenant = %t))]
pub async fn update(
    State(s): State<ApiState>,
    p: Principal,
    Path(t): Path<String>,
    JsonBody(b): JsonBody<UpdateTenant>,
) -> ApiResult<Json<Tenant>> {
    p.require_admin()?;
    let mut tenant = p.tenant(&s, &t).await?;
    if let Some(uid) = b.uid {
        tenant.uid = uid;
    }
    if let Some(name) = b.name {
        tenant.name = name;
    }
    if let Some(m) = b.metadata {
        tenant.metadata = Value::Object(m);
    }
    check(&tenant)?;
    tenant.updated_at = Timestamp::now();
    let tenant = s.store.update_tenant(tenant).await.or_not_found("tenant")?;
    s.catalog.tenants_changed();
    Ok(Json(tenant))
}

/// `DELETE /v1/tenants/{tenant}` (admin): the tenant and everything it owns.
#[tracing::instrument(skip_all, fields(tenant = %t))]
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
