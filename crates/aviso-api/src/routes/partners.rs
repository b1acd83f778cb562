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
pub async fn show(
    State(s): State<ApiState>,
    p: Principal,
    Path(pp): Path<PartnerPath>,
) -> ApiResult<Json<Partner>> {
    p.partner(&s, &pp.partner).await.map(Json)
}
