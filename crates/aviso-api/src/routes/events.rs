//! `/v1/tenants/{tenant}/events`: publish (202 once committed), read, and the
//! polling feed.

use crate::auth::Principal;
use crate::error::{or_expired, ApiError, ApiResult, OrNotFound};
use crate::extract::{decode_cursor, encode_cursor, page_limit, JsonBody, QueryArgs};
use crate::views::EventView;
use crate::ApiState;
use aviso_core::model::{DeliveryStatus, Event, NewEvent};
use aviso_core::name::{EventTypeName, EventTypePattern};
use aviso_core::{DeliveryId, Dur, EndpointId, EventId, TenantId, Timestamp};
use aviso_store::EventQuery;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishInput {
    #[serde(rename = "type")]
    event_type: EventTypeName,
    payload: Box<RawValue>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

fn idempotency_key(headers: &HeaderMap, body: Option<String>) -> ApiResult<Option<String>> {
    let header = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::bad_request("Idempotency-Key must be visible ASCII")
                        .at("Idempotency-Key")
                })?
                .to_owned(),
        ),
        None => None,
    };
    let key = match (header, body) {
        (Some(h), Some(b)) if h != b => {
            return Err(
                ApiError::invalid("differs from the Idempotency-Key header").at("idempotency_key")
            )
        }
        (h, b) => h.or(b),
    };
    if let Some(k) = &key {
        super::check_text("idempotency_key", k, 1, 256)?;
    }
    Ok(key)
}

/// `POST …/events`: validates, routes and commits the event with all its
/// deliveries in one transaction, then hands them to the dispatcher.
#[tracing::instrument(level = "debug", skip_all, fields(tenant = %t, event_type, event))]
#[utoipa::path(
    post,
    path = "/v1/tenants/{tenant}/events",
    tag = "events",
    operation_id = "events_publish",
    summary = "Publish an event (202 once committed with its deliveries)",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid")
    ),
    request_body(content = crate::schemas::PublishInput, content_type = "application/json", description = "JSON object (fields in docs/api.md)"),
    responses(
        (status = 202, description = "The event and its deliveries", body = crate::schemas::Published),
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
pub async fn publish(
    State(s): State<ApiState>,
    p: Principal,
    Path(t): Path<String>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<PublishInput>,
) -> ApiResult<Response> {
    let tenant = p.tenant(&s, &t).await?;
    let key = idempotency_key(&headers, b.idempotency_key)?;
    tracing::Span::current().record("event_type", b.event_type.as_str());
    let et = s
        .catalog
        .event_type(s.store.as_ref(), b.event_type.as_str())
        .await
        .or_not_found("event type")
        .map_err(|_| {
            ApiError::invalid(format!("unknown event type `{}`", b.event_type)).at("type")
        })?;
    if et.archived {
        return Err(ApiError::invalid(format!("event type `{}` is archived", et.name)).at("type"));
    }
    let ev = NewEvent {
        id: EventId::new(),
        tenant: tenant.id.clone(),
        event_type: b.event_type,
        payload: b.payload.get().into(),
        idempotency_key: key,
        created_at: Timestamp::now(),
    };
    let claim_for = s.dispatch.as_ref().map(|d| d.node_id());
    let out = s.store.publish(ev, claim_for).await?;
    tracing::Span::current().record("event", out.event.id.as_str());
    let body = PublishedBody {
        id: &out.event.id,
        event_type: &out.event.event_type,
        created_at: out.event.created_at,
        deliveries: out
            .deliveries
            .iter()
            .map(|d| PublishedDelivery {
                id: &d.id,
                endpoint: &d.endpoint,
                status: d.status,
            })
            .collect(),
    };
    if out.created {
        metrics::counter!("aviso_events_published_total").increment(1);
        metrics::counter!("aviso_deliveries_created_total").increment(out.deliveries.len() as u64);
        if let Some(d) = &s.dispatch {
            d.submit(out.jobs);
        }
        s.feed.published(&out.event.tenant);
        Ok((StatusCode::ACCEPTED, Json(body)).into_response())
    } else {
        metrics::counter!("aviso_events_idempotent_replays_total").increment(1);
        Ok((
            StatusCode::ACCEPTED,
            [("idempotent-replayed", "true")],
            Json(body),
        )
            .into_response())
    }
}

/// The `202` body (documented as [`crate::schemas::Published`]), written
/// from the store's answer without copying it into a JSON tree first.
#[derive(Serialize)]
struct PublishedBody<'a> {
    id: &'a EventId,
    #[serde(rename = "type")]
    event_type: &'a EventTypeName,
    created_at: Timestamp,
    deliveries: Vec<PublishedDelivery<'a>>,
}

#[derive(Serialize)]
struct PublishedDelivery<'a> {
    id: &'a DeliveryId,
    endpoint: &'a EndpointId,
    status: DeliveryStatus,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedArgs {
    /// Cursor from a previous page's `next_cursor`.
    after: Option<String>,
    /// Comma-separated names or `ENTITY.*` patterns.
    types: Option<String>,
    limit: Option<usize>,
    /// Long poll: with nothing new, wait up to this long (e.g. `30s`, at most 60s).
    wait: Option<String>,
}

/// Longest `wait` of a long poll.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// How often a long poll looks again without a wake-up (publishes on other nodes).
const RECHECK: Duration = Duration::from_millis(500);

/// `GET …/events`: the tenant's events in commit order. `next_cursor` is
/// always given, so a poller keeps it and asks again later. With `wait`, an
/// empty answer waits until something arrives or the time is up.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/events",
    tag = "events",
    operation_id = "events_list",
    summary = "The polling feed: events after a cursor, in commit order; `wait` long-polls",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("after" = Option<String>, Query, description = "Cursor: events committed after it"),
        ("types" = Option<String>, Query, description = "Comma-separated event types"),
        ("limit" = Option<u32>, Query, description = "Items per page, 1 to 250 (default 50)"),
        ("wait" = Option<String>, Query, description = "Long poll: with nothing new, wait up to this long (e.g. `30s`, at most `60s`)")
    ),
    responses(
        (status = 200, description = "A page of events", body = crate::schemas::EventFeed),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 410, description = "Purged by retention (`expired`)", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn list(
    State(s): State<ApiState>,
    p: Principal,
    Path(t): Path<String>,
    QueryArgs(q): QueryArgs<FeedArgs>,
) -> ApiResult<Json<Value>> {
    let tenant = p.tenant(&s, &t).await?;
    let after_seq = match q.after.as_deref() {
        None => None,
        Some(c) => Some(decode_cursor(c)?.parse::<i64>().map_err(|_| {
            ApiError::bad_request("cursor is not one this server issued").at("after")
        })?),
    };
    let types = q
        .types
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|x| !x.is_empty())
        .map(|x| {
            EventTypePattern::parse(x).map_err(|e| ApiError::bad_request(e.to_string()).at("types"))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let limit = page_limit(q.limit)?;
    let wait = match q.wait.as_deref() {
        None => Duration::ZERO,
        Some(w) => {
            let d = Dur::parse(w)
                .map_err(|e| ApiError::bad_request(e.to_string()).at("wait"))?
                .get();
            if d > MAX_WAIT {
                return Err(ApiError::bad_request("wait must be at most 60s").at("wait"));
            }
            d
        }
    };
    let query = EventQuery {
        after_seq,
        types,
        limit,
    };
    let events = read_or_wait(&s, &tenant.id, query, wait).await?;
    let next = events.last().map(|e| e.seq).or(after_seq);
    let data: Vec<_> = events.iter().map(|e| EventView::of(e, None)).collect();
    Ok(Json(
        json!({"data": data, "next_cursor": next.map(|n| encode_cursor(&n.to_string()))}),
    ))
}

/// Reads the feed; while it is empty, waits up to `wait` for a publish to the
/// tenant (woken at once on this node, re-reading every [`RECHECK`] for
/// other nodes) or for the server to stop.
async fn read_or_wait(
    s: &ApiState,
    tenant: &TenantId,
    query: EventQuery,
    wait: Duration,
) -> ApiResult<Vec<Event>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let waker = s.feed.subscribe(tenant);
        let (events, give_up) = {
            // Subscribed before reading, so a publish between the read and
            // the wait still wakes this poll.
            let woken = waker.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let events = s.store.list_events(tenant, query.clone()).await;
            let now = tokio::time::Instant::now();
            let give_up = !matches!(&events, Ok(e) if e.is_empty()) || now >= deadline;
            if !give_up {
                tokio::select! {
                    _ = &mut woken => {}
                    _ = tokio::time::sleep(RECHECK.min(deadline - now)) => {}
                    _ = s.stopping.cancelled() => {}
                }
            }
            (events, give_up || s.stopping.is_cancelled())
        };
        s.feed.done(tenant, waker);
        if give_up {
            return Ok(events?);
        }
    }
}

/// `GET …/events/{evt}`: with its deliveries.
#[utoipa::path(
    get,
    path = "/v1/tenants/{tenant}/events/{evt}",
    tag = "events",
    operation_id = "events_show",
    summary = "Get an event with its deliveries",
    params(
        ("tenant" = String, Path, description = "Tenant id (`ten_…`) or uid"),
        ("evt" = String, Path, description = "Event id (`evt_…`)")
    ),
    responses(
        (status = 200, description = "The event", body = crate::schemas::Event),
        (status = 400, description = "Malformed request: bad JSON, content type, query parameter or cursor", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such resource for this key", body = crate::openapi::ErrorBody),
        (status = 410, description = "Purged by retention (`expired`)", body = crate::openapi::ErrorBody),
        (status = 503, description = "The database cannot be reached; nothing changed", body = crate::openapi::ErrorBody)
    )
)]
pub async fn show(
    State(s): State<ApiState>,
    p: Principal,
    Path((t, evt)): Path<(String, String)>,
) -> ApiResult<Response> {
    let tenant = p.tenant(&s, &t).await?;
    let id = EventId::parse(&evt).map_err(|_| ApiError::not_found("event"))?;
    let found = s.store.get_event(&tenant.id, &id).await;
    let (e, d) = or_expired(found, "event", id.created_at(), s.cfg.retention)?;
    Ok(Json(EventView::of(&e, Some(&d))).into_response())
}
