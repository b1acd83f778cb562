//! `/v1/partners`: integrators acting for many tenants. The admin creates
//! them; a partner key sees its own.

use super::check_text;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{list_body, JsonBody, ListArgs, QueryArgs};
use crate::ApiState;
use aviso_core::model::Partner;
use aviso_core::{PartnerId, Timestamp};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};

/// `POST /v1/partners` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePartner {
    name: String,
    #[serde(default)]
    metadata: Map<String, Value>,
}

/// `POST /v1/partners` (admin).
#[tracing::instrument(skip_all)]
#[utoipa::path(
    post,
    path = "/v1/partners",
    tag = "partners",
    operation_id = "partners_create",
    summary = "Create a partner (admin)",
    request_body(content = crate::schemas::PartnerInput, content_type = "application/json", description = "JSON object (fields in docs/api.md)"),
    responses(
        (status = 201, description = "The partner", body = crate::schemas::Partner),
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
    JsonBody(b): JsonBody<CreatePartner>,
) -> ApiResult<(StatusCode, Json<Partner>)> {
    p.require_admin()?;
    check_text("name", &b.name, 1, 256)?;
    let now = Timestamp::now();
    let partner = Partner {
        id: PartnerId::new(),
        name: b.name,
        metadata: Value::Object(b.metadata),
        created_at: now,
        updated_at: now,
    };
    Ok((
        StatusCode::CREATED,
        Json(s.store.create_partner(partner).await?),
    ))
}

/// `GET /v1/partners`: all of them for the admin, its own for a partner key.
#[utoipa::path(
    get,
    path = "/v1/partners",
    tag = "partners",
    operation_id = "partners_list",
    summary = "List partners (a partner key sees itself)",
    params(
        ("limit" = Option<u32>, Query, description = "Items per page, 1 to 250 (default 50)"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of partners", body = crate::schemas::PartnerPage),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn list(
    State(s): State<ApiState>,
    p: Principal,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Json<Value>> {
    match &p {
        Principal::Admin => {
            let page = s.store.list_partners(q.page()?).await?;
            Ok(Json(list_body(page.items, page.next)))
        }
        Principal::Partner(id) => {
            let own = p.partner(&s, id.as_str()).await?;
            Ok(Json(list_body(vec![own], None)))
        }
        Principal::Tenant(_) => Err(ApiError::forbidden(
            "tenant keys cannot list partners; use an admin or partner key",
        )),
    }
}

/// `/v1/partners/{partner}`.
#[derive(Deserialize)]
pub struct PartnerPath {
    partner: String,
}

/// `GET /v1/partners/{partner}`.
#[utoipa::path(
    get,
    path = "/v1/partners/{partner}",
    tag = "partners",
    operation_id = "partners_show",
    summary = "Get a partner",
    params(
        ("partner" = String, Path, description = "Partner id (`par_…`)")
    ),
    responses(
        (status = 200, description = "The partner", body = crate::schemas::Partner),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn show(
    State(s): State<ApiState>,
    p: Principal,
    Path(pp): Path<PartnerPath>,
) -> ApiResult<Json<Partner>> {
    p.partner(&s, &pp.partner).await.map(Json)
}
