//! Audit reads beyond plain lists (stats, latest event per type) and recorded test sends.

use super::error::db_err;
use super::reads::{all, check_owner, fetch_limit, into_page, one};
use super::rows::{self, to_json, DELIVERY_COLS, ENDPOINT_COLS, EVENT_COLS, TEST_COLS};
use crate::{LatestOfType, Page, PageRequest, Result, StoreError};
use aviso_core::model::{DeliveryStatus, Endpoint, Event, Owner};
use aviso_core::name::{any_matches, EventTypeName};
use aviso_core::ops::EndpointTest;
use aviso_core::{EndpointId, TenantId, Timestamp};
use rusqlite::{params, Connection, OptionalExtension};

/// Counts of an endpoint's deliveries by status in a time window.
pub(super) fn delivery_stats(
    conn: &Connection,
    owner: &Owner,
    endpoint: &EndpointId,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Result<Vec<(DeliveryStatus, u64)>> {
    check_owner(conn, owner, endpoint)?;
    let rows: Vec<(String, i64)> = all(
        conn,
        "SELECT status, count(*) FROM deliveries WHERE endpoint_id = ?1 \
         AND (?2 IS NULL OR created_at >= ?2) AND (?3 IS NULL OR created_at < ?3) GROUP BY status",
        params![endpoint.as_str(), since.map(|t| t.0), until.map(|t| t.0)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    rows.into_iter()
        .map(|(s, n)| {
            DeliveryStatus::parse(&s)
                .map(|s| (s, n.max(0) as u64))
                .map_err(|e| StoreError::Other(e.to_string()))
        })
        .collect()
}

/// The endpoint, if the owner's.
fn owned_endpoint(conn: &Connection, owner: &Owner, id: &EndpointId) -> Result<Endpoint> {
    let sql = format!(
        "SELECT {ENDPOINT_COLS} FROM endpoints WHERE id = ?1 AND (tenant_id = ?2 OR partner_id = ?2)"
    );
    one(conn, &sql, [id.as_str(), owner.as_str()], rows::endpoint)
}

/// Catalogue types the endpoint subscribes to, by name.
pub(super) fn subscribed_types(conn: &Connection, ep: &Endpoint) -> Result<Vec<EventTypeName>> {
    let names: Vec<String> = all(
        conn,
        "SELECT name FROM event_types ORDER BY name",
        [],
        |r| r.get(0),
    )?;
    Ok(names
        .into_iter()
        .filter(|n| any_matches(&ep.spec.event_types, n))
        .map(EventTypeName::from_trusted)
        .collect())
}

/// Tenants whose events the endpoint receives, by id.
pub(super) fn covered_tenants(conn: &Connection, ep: &EndpointId) -> Result<Vec<TenantId>> {
    let ids: Vec<String> = all(
        conn,
        "SELECT tenant_id FROM endpoint_coverage WHERE endpoint_id = ?1 ORDER BY tenant_id",
        [ep.as_str()],
        |r| r.get(0),
    )?;
    Ok(ids.into_iter().map(TenantId::from_trusted).collect())
}

pub(super) fn latest_of(
    conn: &Connection,
    tenant: &TenantId,
    ty: &EventTypeName,
) -> Result<Option<Event>> {
    let sql = format!(
        "SELECT {EVENT_COLS} FROM events WHERE tenant_id = ?1 AND event_type = ?2 \
         ORDER BY seq DESC LIMIT 1"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row([tenant.as_str(), ty.as_str()], rows::event)
                .optional()
        })
        .map_err(db_err)
}

/// Every (subscribed type × covered tenant) with its latest event and that event's delivery.
pub(super) fn latest_events(
    conn: &mut Connection,
    owner: &Owner,
    endpoint: &EndpointId,
) -> Result<Vec<LatestOfType>> {
    let tx = conn.transaction().map_err(db_err)?;
    let ep = owned_endpoint(&tx, owner, endpoint)?;
    let tenants = covered_tenants(&tx, endpoint)?;
    let dsql = format!(
        "SELECT {DELIVERY_COLS} FROM deliveries WHERE event_id = ?1 AND endpoint_id = ?2 \
         ORDER BY id DESC LIMIT 1"
    );
    let mut out = Vec::new();
    for ty in subscribed_types(&tx, &ep)? {
        for t in &tenants {
            let event = latest_of(&tx, t, &ty)?;
            let delivery = match &event {
                Some(e) => tx
                    .prepare_cached(&dsql)
                    .and_then(|mut s| {
                        s.query_row([e.id.as_str(), endpoint.as_str()], rows::delivery)
                            .optional()
                    })
                    .map_err(db_err)?,
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
pub(super) fn record_endpoint_test(conn: &Connection, t: EndpointTest) -> Result<()> {
    let a = &t.attempt;
    let headers = to_json(&a.response_headers)?;
    conn.prepare_cached(
        "INSERT INTO endpoint_tests (id, endpoint_id, event_id, event_type, payload, succeeded, at, \
         duration_ms, status_code, error, error_detail, response_headers_json, response_snippet) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .and_then(|mut s| {
        s.execute(params![
            a.id.as_str(),
            t.endpoint.as_str(),
            t.event.as_str(),
            t.event_type.as_str(),
            &*t.payload,
            t.succeeded,
            a.at.0,
            a.duration_ms as i64,
            a.status_code,
            a.error.map(|e| e.as_str()),
            a.error_detail,
            headers,
            a.response_snippet
        ])
    })
    .map_err(db_err)
    .map(drop)
}

/// An endpoint's test sends, newest first.
pub(super) fn list_endpoint_tests(
    conn: &mut Connection,
    owner: &Owner,
    endpoint: &EndpointId,
    page: PageRequest,
) -> Result<Page<EndpointTest>> {
    let tx = conn.transaction().map_err(db_err)?;
    check_owner(&tx, owner, endpoint)?;
    let sql = format!(
        "SELECT {TEST_COLS} FROM endpoint_tests WHERE endpoint_id = ?1 AND (?2 IS NULL OR id < ?2) \
         ORDER BY id DESC LIMIT ?3"
    );
    let p = params![endpoint.as_str(), page.after, fetch_limit(&page)];
    let items = all(&tx, &sql, p, rows::endpoint_test)?;
    Ok(into_page(items, &page, |t| t.attempt.id.to_string()))
}
