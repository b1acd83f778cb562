//! Reads, run on the read-only connection pool.

use super::error::db_err;
use super::publish::deliveries_of;
use super::rows::{
    self, ATTEMPT_COLS, DELIVERY_COLS, ENDPOINT_COLS, EVENT_COLS, EVENT_TYPE_COLS, KEY_COLS,
    PARTNER_COLS, TENANT_COLS,
};
use crate::{DeliveryFilter, EventQuery, Page, PageRequest, Result, StoreError, EXPIRED_CURSOR};
use aviso_core::model::{
    ApiKey, Attempt, Delivery, Endpoint, Event, EventType, Owner, Partner, Tenant,
};
use aviso_core::name::EventTypePattern;
use aviso_core::{DeliveryId, EndpointId, EventId, PartnerId, TenantId, Timestamp};
use rusqlite::{params, Connection, OptionalExtension, Params, Row};

type RowFn<T> = fn(&Row) -> rusqlite::Result<T>;

/// Every row of a query.
pub(super) fn all<T>(conn: &Connection, sql: &str, p: impl Params, f: RowFn<T>) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = stmt.query_map(p, f).map_err(db_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err)
}

/// The one row of a query; `NotFound` if there is none.
pub(super) fn one<T>(conn: &Connection, sql: &str, p: impl Params, f: RowFn<T>) -> Result<T> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.query_row(p, f))
        .map_err(db_err)
}

/// SQL `LIMIT` for a page: one extra row tells whether another page follows.
pub(super) fn fetch_limit(page: &PageRequest) -> i64 {
    page.limit.max(1) as i64 + 1
}

/// Cuts the extra row off and turns it into the `next` key.
pub(super) fn into_page<T>(
    mut items: Vec<T>,
    page: &PageRequest,
    key: impl Fn(&T) -> String,
) -> Page<T> {
    let limit = page.limit.max(1);
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(key)
    } else {
        None
    };
    Page { items, next }
}

/// Cheap liveness check.
pub(super) fn ping(conn: &Connection) -> Result<()> {
    one(conn, "SELECT 1", [], |r| r.get::<_, i64>(0)).map(drop)
}

/// One event type by name.
pub(super) fn get_event_type(conn: &Connection, name: &str) -> Result<EventType> {
    let sql = format!("SELECT {EVENT_TYPE_COLS} FROM event_types WHERE name = ?1");
    one(conn, &sql, [name], rows::event_type)
}

/// Event types by name.
pub(super) fn list_event_types(conn: &Connection, page: PageRequest) -> Result<Page<EventType>> {
    let sql = format!(
        "SELECT {EVENT_TYPE_COLS} FROM event_types WHERE ?1 IS NULL OR name > ?1 ORDER BY name LIMIT ?2"
    );
    let items = all(
        conn,
        &sql,
        params![page.after, fetch_limit(&page)],
        rows::event_type,
    )?;
    Ok(into_page(items, &page, |t| t.name.to_string()))
}

/// One tenant by id, or by uid when the text is not a tenant id.
pub(super) fn get_tenant(conn: &Connection, id_or_uid: &str) -> Result<Tenant> {
    let by = if TenantId::parse(id_or_uid).is_ok() {
        "id"
    } else {
        "uid"
    };
    let sql = format!("SELECT {TENANT_COLS} FROM tenants WHERE {by} = ?1");
    one(conn, &sql, [id_or_uid], rows::tenant)
}

/// Tenants by id.
pub(super) fn list_tenants(conn: &Connection, page: PageRequest) -> Result<Page<Tenant>> {
    let sql = format!(
        "SELECT {TENANT_COLS} FROM tenants WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2"
    );
    let items = all(
        conn,
        &sql,
        params![page.after, fetch_limit(&page)],
        rows::tenant,
    )?;
    Ok(into_page(items, &page, |t| t.id.to_string()))
}

/// A partner's tenants by id.
pub(super) fn list_partner_tenants(
    conn: &Connection,
    partner: &PartnerId,
    page: PageRequest,
) -> Result<Page<Tenant>> {
    let sql = format!(
        "SELECT {TENANT_COLS} FROM tenants WHERE partner_id = ?1 AND (?2 IS NULL OR id > ?2) \
         ORDER BY id LIMIT ?3"
    );
    let p = params![partner.as_str(), page.after, fetch_limit(&page)];
    let items = all(conn, &sql, p, rows::tenant)?;
    Ok(into_page(items, &page, |t| t.id.to_string()))
}

/// One partner.
pub(super) fn get_partner(conn: &Connection, id: &PartnerId) -> Result<Partner> {
    let sql = format!("SELECT {PARTNER_COLS} FROM partners WHERE id = ?1");
    one(conn, &sql, [id.as_str()], rows::partner)
}

/// Partners by id.
pub(super) fn list_partners(conn: &Connection, page: PageRequest) -> Result<Page<Partner>> {
    let sql = format!(
        "SELECT {PARTNER_COLS} FROM partners WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2"
    );
    let items = all(
        conn,
        &sql,
        params![page.after, fetch_limit(&page)],
        rows::partner,
    )?;
    Ok(into_page(items, &page, |p| p.id.to_string()))
}

/// One endpoint of an owner (tenant or partner).
pub(super) fn get_endpoint(conn: &Connection, owner: &Owner, id: &EndpointId) -> Result<Endpoint> {
    let sql = format!(
        "SELECT {ENDPOINT_COLS} FROM endpoints WHERE id = ?1 AND (tenant_id = ?2 OR partner_id = ?2)"
    );
    one(conn, &sql, [id.as_str(), owner.as_str()], rows::endpoint)
}

/// One endpoint by id alone.
pub(super) fn get_endpoint_by_id(conn: &Connection, id: &EndpointId) -> Result<Endpoint> {
    let sql = format!("SELECT {ENDPOINT_COLS} FROM endpoints WHERE id = ?1");
    one(conn, &sql, [id.as_str()], rows::endpoint)
}

/// An owner's endpoints by id.
pub(super) fn list_endpoints(
    conn: &Connection,
    owner: &Owner,
    page: PageRequest,
) -> Result<Page<Endpoint>> {
    let by = match owner {
        Owner::Tenant(_) => "tenant_id",
        Owner::Partner(_) => "partner_id",
    };
    let sql = format!(
        "SELECT {ENDPOINT_COLS} FROM endpoints WHERE {by} = ?1 AND (?2 IS NULL OR id > ?2) \
         ORDER BY id LIMIT ?3"
    );
    let items = all(
        conn,
        &sql,
        params![owner.as_str(), page.after, fetch_limit(&page)],
        rows::endpoint,
    )?;
    Ok(into_page(items, &page, |e| e.id.to_string()))
}

/// The key with this hash.
pub(super) fn find_api_key(conn: &Connection, hash: &str) -> Result<Option<ApiKey>> {
    let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE hash = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row([hash], rows::api_key).optional())
        .map_err(db_err)
}

/// Whether an admin key exists.
pub(super) fn has_admin_key(conn: &Connection) -> Result<bool> {
    one(
        conn,
        "SELECT EXISTS (SELECT 1 FROM api_keys WHERE scope = 'admin')",
        [],
        |r| r.get(0),
    )
}

/// One event of a tenant with its deliveries, from one snapshot.
pub(super) fn get_event(
    conn: &mut Connection,
    tenant: &TenantId,
    id: &EventId,
) -> Result<(Event, Vec<Delivery>)> {
    let tx = conn.transaction().map_err(db_err)?;
    let sql = format!("SELECT {EVENT_COLS} FROM events WHERE id = ?1 AND tenant_id = ?2");
    let event = one(&tx, &sql, [id.as_str(), tenant.as_str()], rows::event)?;
    let deliveries = deliveries_of(&tx, &event)?;
    Ok((event, deliveries))
}

/// A tenant's events by `seq`, filtered by type patterns.
pub(super) fn list_events(
    conn: &Connection,
    tenant: &TenantId,
    q: EventQuery,
) -> Result<Vec<Event>> {
    if let Some(after) = q.after_seq {
        let purged: i64 = one(
            conn,
            "SELECT purged_seq FROM tenants WHERE id = ?1",
            [tenant.as_str()],
            |r| r.get(0),
        )?;
        if purged > after {
            return Err(StoreError::Expired(EXPIRED_CURSOR.into()));
        }
    }
    let any_type = q.types.is_empty() || q.types.contains(&EventTypePattern::All);
    let mut exact = Vec::new();
    let mut prefixes = Vec::new();
    for p in &q.types {
        match p {
            EventTypePattern::Exact(n) => exact.push(n.as_str()),
            EventTypePattern::Prefix(p) => prefixes.push(p.as_str()),
            EventTypePattern::All => {}
        }
    }
    // Patterns travel as JSON arrays so the statement text (and cache entry)
    // stays fixed; prefixes compare with substr, since LIKE treats `_` as a wildcard.
    let sql = format!(
        "SELECT {EVENT_COLS} FROM events e WHERE tenant_id = ?1 AND seq > ?2 AND (?3 \
           OR event_type IN (SELECT value FROM json_each(?4)) \
           OR EXISTS (SELECT 1 FROM json_each(?5) p \
                      WHERE substr(e.event_type, 1, length(p.value)) = p.value)) \
         ORDER BY seq LIMIT ?6"
    );
    let p = params![
        tenant.as_str(),
        q.after_seq.unwrap_or(0),
        any_type,
        rows::to_json(&exact)?,
        rows::to_json(&prefixes)?,
        q.limit as i64
    ];
    all(conn, &sql, p, rows::event)
}

/// `NotFound` unless the endpoint is the owner's.
pub(super) fn check_owner(conn: &Connection, owner: &Owner, endpoint: &EndpointId) -> Result<()> {
    one(
        conn,
        "SELECT 1 FROM endpoints WHERE id = ?1 AND (tenant_id = ?2 OR partner_id = ?2)",
        [endpoint.as_str(), owner.as_str()],
        |r| r.get::<_, i64>(0),
    )
    .map(drop)
}

/// An endpoint's deliveries, newest first, filtered; `NotFound` if the endpoint is not the owner's.
pub(super) fn list_deliveries(
    conn: &mut Connection,
    owner: &Owner,
    endpoint: &EndpointId,
    f: DeliveryFilter,
    page: PageRequest,
) -> Result<Page<Delivery>> {
    let tx = conn.transaction().map_err(db_err)?;
    check_owner(&tx, owner, endpoint)?;
    let (exact, prefix) = match &f.event_type {
        None | Some(EventTypePattern::All) => (None, None),
        Some(EventTypePattern::Exact(n)) => (Some(n.as_str()), None),
        Some(EventTypePattern::Prefix(p)) => (None, Some(p.as_str())),
    };
    // A prefix compares with substr, since LIKE treats `_` as a wildcard.
    let sql = format!(
        "SELECT {DELIVERY_COLS} FROM deliveries WHERE endpoint_id = ?1 AND (?2 IS NULL OR status = ?2) \
         AND (?3 IS NULL OR id < ?3) AND (?5 IS NULL OR event_type = ?5) \
         AND (?6 IS NULL OR substr(event_type, 1, length(?6)) = ?6) \
         AND (?7 IS NULL OR created_at >= ?7) AND (?8 IS NULL OR created_at < ?8) \
         ORDER BY id DESC LIMIT ?4"
    );
    let p = params![
        endpoint.as_str(),
        f.status.map(|s| s.as_str()),
        page.after,
        fetch_limit(&page),
        exact,
        prefix,
        f.since.map(|t| t.0),
        f.until.map(|t| t.0),
    ];
    let items = all(&tx, &sql, p, rows::delivery)?;
    Ok(into_page(items, &page, |d| d.id.to_string()))
}

/// One delivery to one of the owner's endpoints, with its attempts, oldest first.
pub(super) fn get_delivery(
    conn: &mut Connection,
    owner: &Owner,
    id: &DeliveryId,
) -> Result<(Delivery, Vec<Attempt>)> {
    let tx = conn.transaction().map_err(db_err)?;
    let sql = format!(
        "SELECT {DELIVERY_COLS} FROM deliveries WHERE id = ?1 AND endpoint_id IN \
         (SELECT id FROM endpoints WHERE tenant_id = ?2 OR partner_id = ?2)"
    );
    let delivery = one(&tx, &sql, [id.as_str(), owner.as_str()], rows::delivery)?;
    let sql = format!("SELECT {ATTEMPT_COLS} FROM attempts WHERE delivery_id = ?1 ORDER BY at, id");
    let attempts = all(&tx, &sql, [id.as_str()], rows::attempt)?;
    Ok((delivery, attempts))
}

/// The earliest due time of pending, unclaimed deliveries.
///
/// No join on endpoints: a disabled endpoint has no pending deliveries
/// (disabling cancels them, publish and resend skip it), so the partial
/// index alone answers.
pub(super) fn next_due_at(conn: &Connection) -> Result<Option<Timestamp>> {
    one(
        conn,
        "SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending' AND locked_by IS NULL",
        [],
        |r| Ok(r.get::<_, Option<i64>>(0)?.map(Timestamp)),
    )
}
