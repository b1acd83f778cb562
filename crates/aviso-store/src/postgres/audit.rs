//! Audit reads beyond plain lists (stats, latest event per type) and recorded
//! test sends, each in its caller's transaction.

use super::error::db_err;
use super::reads::{all, check_owner, fetch_limit, into_page, one, Params};
use super::rows::{self, DELIVERY_COLS, ENDPOINT_COLS, EVENT_COLS, TEST_COLS};
use crate::json::to_json;
use crate::{LatestOfType, Page, PageRequest, Result, StoreError};
use aviso_core::model::{DeliveryStatus, Endpoint, Event, Owner};
use aviso_core::name::{any_matches, EventTypeName};
use aviso_core::ops::EndpointTest;
use aviso_core::{EndpointId, TenantId, Timestamp};
use deadpool_postgres::GenericClient;

/// Counts of an endpoint's deliveries by status in a time window.
pub(super) async fn delivery_stats(
    c: &impl GenericClient,
    owner: &Owner,
    endpoint: &EndpointId,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Result<Vec<(DeliveryStatus, u64)>> {
    check_owner(c, owner, endpoint).await?;
    let (since, until) = (since.map(|t| t.0), until.map(|t| t.0));
    let rows = all(
        c,
        "SELECT status, count(*) FROM deliveries WHERE endpoint_id = $1 \
         AND ($2::bigint IS NULL OR created_at >= $2) AND ($3::bigint IS NULL OR created_at < $3) \
         GROUP BY status",
        &[&endpoint.as_str(), &since, &until],
        |r| Ok((rows::get::<String>(r, 0)?, rows::get::<i64>(r, 1)?)),
    )
    .await?;
    rows.into_iter()
        .map(|(s, n)| {
            DeliveryStatus::parse(&s)
                .map(|s| (s, n.max(0) as u64))
                .map_err(|e| StoreError::Other(e.to_string()))
        })
        .collect()
}

async fn owned_endpoint(
    c: &impl GenericClient,
    owner: &Owner,
    id: &EndpointId,
) -> Result<Endpoint> {
    let sql = format!(
        "SELECT {ENDPOINT_COLS} FROM endpoints WHERE id = $1 AND (tenant_id = $2 OR partner_id = $2)"
    );
    one(c, &sql, &[&id.as_str(), &owner.as_str()], rows::endpoint).await
}

/// Catalogue types the endpoint subscribes to, by name.
pub(super) async fn subscribed_types(
    c: &impl GenericClient,
    ep: &Endpoint,
) -> Result<Vec<EventTypeName>> {
    let names = all(c, "SELECT name FROM event_types ORDER BY name", &[], |r| {
        rows::get::<String>(r, 0)
    })
    .await?;
    Ok(names
        .into_iter()
        .filter(|n| any_matches(&ep.spec.event_types, n))
        .map(EventTypeName::from_trusted)
        .collect())
}

/// Tenants whose events the endpoint receives, by id.
pub(super) async fn covered_tenants(
    c: &impl GenericClient,
    ep: &EndpointId,
) -> Result<Vec<TenantId>> {
    let ids = all(
        c,
        "SELECT tenant_id FROM endpoint_coverage WHERE endpoint_id = $1 ORDER BY tenant_id",
        &[&ep.as_str()],
        |r| rows::get::<String>(r, 0),
    )
    .await?;
    Ok(ids.into_iter().map(TenantId::from_trusted).collect())
}

pub(super) async fn latest_of(
    c: &impl GenericClient,
    tenant: &TenantId,
    ty: &EventTypeName,
) -> Result<Option<Event>> {
    let sql = format!(
        "SELECT {EVENT_COLS} FROM events WHERE tenant_id = $1 AND event_type = $2 \
         ORDER BY seq DESC LIMIT 1"
    );
    match one(c, &sql, &[&tenant.as_str(), &ty.as_str()], rows::event).await {
        Ok(e) => Ok(Some(e)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every (subscribed type × covered tenant) with its latest event and that event's delivery.
pub(super) async fn latest_events(
    c: &impl GenericClient,
    owner: &Owner,
    endpoint: &EndpointId,
) -> Result<Vec<LatestOfType>> {
    let ep = owned_endpoint(c, owner, endpoint).await?;
    let tenants = covered_tenants(c, endpoint).await?;
    let dsql = format!(
        "SELECT {DELIVERY_COLS} FROM deliveries WHERE event_id = $1 AND endpoint_id = $2 \
         ORDER BY id DESC LIMIT 1"
    );
    let mut out = Vec::new();
    for ty in subscribed_types(c, &ep).await? {
        for t in &tenants {
            let event = latest_of(c, t, &ty).await?;
            let delivery = match &event {
                Some(e) => {
                    let p: Params = &[&e.id.as_str(), &endpoint.as_str()];
                    match one(c, &dsql, p, rows::delivery).await {
                        Ok(d) => Some(d),
                        Err(StoreError::NotFound) => None,
                        Err(e) => return Err(e),
                    }
                }
                None => None,
            };
            out.push(LatestOfType {
                event_type: ty.clone(),
                tenant: t.clone(),
                event,
                delivery,
            });
        }
    }
    Ok(out)
}

/// Records a test send.
pub(super) async fn record_endpoint_test(c: &impl GenericClient, t: EndpointTest) -> Result<()> {
    let a = &t.attempt;
    let stmt = c
        .prepare_cached(
            "INSERT INTO endpoint_tests (id, endpoint_id, event_id, event_type, payload, succeeded, at, \
             duration_ms, status_code, error, error_detail, response_headers_json, response_snippet) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .await
        .map_err(db_err)?;
    let duration = i64::try_from(a.duration_ms).unwrap_or(i64::MAX);
    c.execute(
        &stmt,
        &[
            &a.id.as_str(),
            &t.endpoint.as_str(),
            &t.event.as_str(),
            &t.event_type.as_str(),
            &&*t.payload,
            &t.succeeded,
            &a.at.0,
            &duration,
            &a.status_code.map(i32::from),
            &a.error.map(|e| e.as_str()),
            &a.error_detail,
            &to_json(&a.response_headers)?,
            &a.response_snippet,
        ],
    )
    .await
    .map_err(db_err)
    .map(drop)
}

/// An endpoint's test sends, newest first.
pub(super) async fn list_endpoint_tests(
    c: &impl GenericClient,
    owner: &Owner,
    endpoint: &EndpointId,
    page: PageRequest,
) -> Result<Page<EndpointTest>> {
    check_owner(c, owner, endpoint).await?;
    let sql = format!(
        "SELECT {TEST_COLS} FROM endpoint_tests WHERE endpoint_id = $1 AND ($2::text IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    );
    let p: Params = &[&endpoint.as_str(), &page.after, &fetch_limit(&page)];
    let items = all(c, &sql, p, rows::endpoint_test).await?;
    Ok(into_page(items, &page, |t| t.attempt.id.to_string()))
}
