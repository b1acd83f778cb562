//! Deliveries: the audit log per endpoint, one delivery with its attempts, resend.

use crate::auth::Principal;
use crate::error::{or_expired, ApiError, ApiResult, OrNotFound};
use crate::extract::{list_body, ListArgs, QueryArgs};
use crate::views::DeliveryView;
use crate::ApiState;
use aviso_core::model::DeliveryStatus;
use aviso_core::{DeliveryId, EndpointId, Timestamp};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryArgs {
    status: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET …/endpoints/{ep}/deliveries?status=`: newest first.
pub async fn list(
    State(s): State<ApiState>,
    p: Principal,
    Path((t, ep)): Path<(String, String)>,
    QueryArgs(q): QueryArgs<DeliveryArgs>,
) -> ApiResult<Json<Value>> {
    let tenant = p.tenant(&s, &t).await?;
    let ep = EndpointId::parse(&ep).map_err(|_| ApiError::not_found("endpoint"))?;
    s.store
        .get_endpoint(&tenant.id, &ep)
        .await
        .or_not_found("endpoint")?;
    let status = q
        .status
        .as_deref()
        .map(DeliveryStatus::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()).at("status"))?;
    let page = ListArgs {
        limit: q.limit,
        cursor: q.cursor,
    }
    .page()?;
    let page = s
        .store
        .list_deliveries(&tenant.id, &ep, status, page)
        .await?;
    let items: Vec<_> = page.items.iter().map(DeliveryView::of).collect();
    Ok(Json(list_body(items, page.next)))
}

fn parse_id(id: &str) -> ApiResult<DeliveryId> {
    DeliveryId::parse(id).map_err(|_| ApiError::not_found("delivery"))
}

/// `GET …/deliveries/{dlv}`: with every attempt.
pub async fn show(
    State(s): State<ApiState>,
    p: Principal,
    Path((t, dlv)): Path<(String, String)>,
) -> ApiResult<Json<DeliveryView>> {
    let tenant = p.tenant(&s, &t).await?;
    let id = parse_id(&dlv)?;
    let found = s.store.get_delivery(&tenant.id, &id).await;
    let (d, attempts) = or_expired(found, "delivery", id.created_at(), s.cfg.retention)?;
    Ok(Json(DeliveryView::with_attempts(&d, attempts)))
}

/// `POST …/deliveries/{dlv}/resend`: a finished delivery goes out again, due now.
#[tracing::instrument(skip_all, fields(tenant = %t, delivery = %dlv))]
pub async fn resend(
    State(s): State<ApiState>,
    p: Principal,
    Path((t, dlv)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<DeliveryView>)> {
    let tenant = p.tenant(&s, &t).await?;
    let d = s
        .store
        .resend_delivery(&tenant.id, &parse_id(&dlv)?, Timestamp::now())
        .await
        .or_not_found("delivery")?;
    if let Some(d) = &s.dispatch {
        d.wake();
    }
    Ok((StatusCode::ACCEPTED, Json(DeliveryView::of(&d))))
}
