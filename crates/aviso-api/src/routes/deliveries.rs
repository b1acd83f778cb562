//! Deliveries: the audit log per endpoint (filtered by status, type and
//! time), one delivery with its attempts, resend, the status of the latest
//! event of each subscribed type, and counts by status. Served for tenant
//! endpoints (`/v1/tenants/{t}/…`) and partner endpoints (`/v1/partners/{p}/…`).

use super::endpoints::{load, EpPath};
use crate::error::{or_expired, ApiError, ApiResult, OrNotFound};
use crate::extract::{list_body, ListArgs, QueryArgs};
use crate::scope::Scope;
use crate::views::DeliveryView;
use crate::ApiState;
use aviso_core::model::DeliveryStatus;
use aviso_core::name::EventTypePattern;
use aviso_core::{DeliveryId, EventId, TenantId, Timestamp};
use aviso_store::DeliveryFilter;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// `?status=&event_type=&since=&until=&limit=&cursor=`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryArgs {
    status: Option<String>,
    /// A type name or `ENTITY.*`.
    event_type: Option<String>,
    /// RFC 3339; deliveries created at or after.
    since: Option<String>,
    /// RFC 3339; deliveries created before.
    until: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Parses an optional RFC 3339 query parameter.
pub(crate) fn time_arg(field: &str, v: Option<&str>) -> ApiResult<Option<Timestamp>> {
    v.map(Timestamp::parse_rfc3339)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()).at(field))
}

/// Checks `since < until` when both are given.
pub(crate) fn window(
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> ApiResult<(Option<Timestamp>, Option<Timestamp>)> {
    if let (Some(a), Some(b)) = (since, until) {
        if a >= b {
            return Err(ApiError::bad_request("`since` must be before `until`").at("until"));
        }
    }
    Ok((since, until))
}

/// `GET …/endpoints/{ep}/deliveries`: newest first. Pages are keyed by
/// delivery id, so they neither repeat nor skip rows while new ones arrive
/// (new rows appear on a fresh first page).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/endpoints/{ep}/deliveries",
    tag = "audit",
    operation_id = "deliveries_list",
    summary = "An endpoint's deliveries, newest first, with filters",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("ep" = String, Path, description = "Endpoint id (`ep_…`)"),
        ("status" = Option<String>, Query, description = "pending, succeeded, failed or cancelled"),
        ("event_type" = Option<String>, Query, description = "Only this event type"),
        ("since" = Option<String>, Query, description = "Created at or after (RFC 3339)"),
        ("until" = Option<String>, Query, description = "Created before (RFC 3339)"),
        ("limit" = Option<u32>, Query, description = "Items per page, 1 to 250 (default 50)"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page")
    ),
    responses(
        (status = 200, description = "A page of deliveries", body = crate::schemas::DeliveryPage),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn list(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<EpPath>,
    QueryArgs(q): QueryArgs<DeliveryArgs>,
) -> ApiResult<Json<Value>> {
    let ep = load(&s, &sc, &p.ep).await?;
    let status = q
        .status
        .as_deref()
        .map(DeliveryStatus::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()).at("status"))?;
    let event_type = q
        .event_type
        .as_deref()
        .map(EventTypePattern::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()).at("event_type"))?;
    let (since, until) = window(
        time_arg("since", q.since.as_deref())?,
        time_arg("until", q.until.as_deref())?,
    )?;
    let page = ListArgs {
        limit: q.limit,
        cursor: q.cursor,
    }
    .page()?;
    let filter = DeliveryFilter {
        status,
        event_type,
        since,
        until,
    };
    let page = s
        .store
        .list_deliveries(&sc.owner, &ep.id, filter, page)
        .await
        .or_not_found("endpoint")?;
    let items: Vec<_> = page.items.iter().map(DeliveryView::of).collect();
    Ok(Json(list_body(items, page.next)))
}

/// `…/deliveries/{dlv}`.
#[derive(Deserialize)]
pub struct DlvPath {
    dlv: String,
}

fn parse_id(id: &str) -> ApiResult<DeliveryId> {
    DeliveryId::parse(id).map_err(|_| ApiError::not_found("delivery"))
}

/// `GET …/deliveries/{dlv}`: with every attempt (time, duration, status or
/// error class, response headers, capped body snippet).
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/deliveries/{dlv}",
    tag = "audit",
    operation_id = "deliveries_show",
    summary = "Get a delivery with every attempt",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("dlv" = String, Path, description = "Delivery id (`dlv_…`)")
    ),
    responses(
        (status = 200, description = "The delivery", body = crate::schemas::Delivery),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 410, description = "Purged by retention (`expired`)", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn show(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<DlvPath>,
) -> ApiResult<Json<DeliveryView>> {
    let id = parse_id(&p.dlv)?;
    let found = s.store.get_delivery(&sc.owner, &id).await;
    let (d, attempts) = or_expired(found, "delivery", id.created_at(), s.cfg.retention)?;
    Ok(Json(DeliveryView::with_attempts(&d, attempts)))
}

/// `POST …/deliveries/{dlv}/resend`: a finished delivery goes out again, due now.
#[tracing::instrument(skip_all, fields(owner = %sc.owner, delivery = %p.dlv))]
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/deliveries/{dlv}/resend",
    tag = "operations",
    operation_id = "deliveries_resend",
    summary = "Resend one delivery now",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("dlv" = String, Path, description = "Delivery id (`dlv_…`)")
    ),
    responses(
        (status = 202, description = "The delivery, pending again", body = crate::schemas::Delivery),
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
pub async fn resend(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<DlvPath>,
) -> ApiResult<(StatusCode, Json<DeliveryView>)> {
    let d = s
        .store
        .resend_delivery(&sc.owner, &parse_id(&p.dlv)?, Timestamp::now())
        .await
        .or_not_found("delivery")?;
    if let Some(d) = &s.dispatch {
        d.wake();
    }
    Ok((StatusCode::ACCEPTED, Json(DeliveryView::of(&d))))
}

/// One row of `status-by-type`.
#[derive(Serialize)]
pub struct TypeStatus {
    event_type: String,
    tenant: TenantId,
    /// The tenant's latest event of the type, if any.
    event: Option<EventRef>,
    /// That event's delivery to this endpoint (none if the event predates
    /// the endpoint or did not match its filter).
    delivery: Option<DeliveryView>,
}

/// An event named by id and time.
#[derive(Serialize)]
pub struct EventRef {
    id: EventId,
    created_at: Timestamp,
}

/// `GET …/endpoints/{ep}/status-by-type`: for each catalogue type the
/// endpoint subscribes to (and each tenant it covers), the latest event and
/// its delivery status.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/endpoints/{ep}/status-by-type",
    tag = "audit",
    operation_id = "deliveries_status_by_type",
    summary = "Per subscribed type, its latest event and that delivery's status",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("ep" = String, Path, description = "Endpoint id (`ep_…`)")
    ),
    responses(
        (status = 200, description = "One entry per type", body = crate::schemas::StatusByType),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn status_by_type(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<EpPath>,
) -> ApiResult<Json<Value>> {
    let ep = load(&s, &sc, &p.ep).await?;
    let rows = s
        .store
        .latest_events(&sc.owner, &ep.id)
        .await
        .or_not_found("endpoint")?;
    let data: Vec<TypeStatus> = rows
        .into_iter()
        .map(|r| TypeStatus {
            event_type: r.event_type.to_string(),
            tenant: r.tenant,
            event: r.event.map(|e| EventRef {
                id: e.id,
                created_at: e.created_at,
            }),
            delivery: r.delivery.as_ref().map(DeliveryView::of),
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}

/// `?since=&until=` (RFC 3339).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsArgs {
    since: Option<String>,
    until: Option<String>,
}

/// `GET …/endpoints/{ep}/stats`: counts of deliveries created in the window, by status.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/endpoints/{ep}/stats",
    tag = "audit",
    operation_id = "deliveries_stats",
    summary = "Delivery counts by status in a time window",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("ep" = String, Path, description = "Endpoint id (`ep_…`)"),
        ("since" = Option<String>, Query, description = "Window start (RFC 3339)"),
        ("until" = Option<String>, Query, description = "Window end (RFC 3339)")
    ),
    responses(
        (status = 200, description = "Counts by status", body = crate::schemas::Stats),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn stats(
    State(s): State<ApiState>,
    sc: Scope,
    Path(p): Path<EpPath>,
    QueryArgs(q): QueryArgs<StatsArgs>,
) -> ApiResult<Json<Value>> {
    let ep = load(&s, &sc, &p.ep).await?;
    let (since, until) = window(
        time_arg("since", q.since.as_deref())?,
        time_arg("until", q.until.as_deref())?,
    )?;
    let counts = s
        .store
        .delivery_stats(&sc.owner, &ep.id, since, until)
        .await
        .or_not_found("endpoint")?;
    let mut by_status = json!({"pending": 0, "succeeded": 0, "failed": 0, "cancelled": 0});
    let mut total = 0;
    for (status, n) in counts {
        by_status[status.as_str()] = json!(n);
        total += n;
    }
    Ok(Json(json!({
        "endpoint": ep.id, "since": since, "until": until, "total": total, "by_status": by_status,
    })))
}
