//! Reads, each on a pooled connection (several statements share one snapshot
//! through a `REPEATABLE READ` transaction opened by the caller).

use super::error::db_err;
use super::publish::deliveries_of;
use super::rows::{
    self, ATTEMPT_COLS, DELIVERY_COLS, ENDPOINT_COLS, EVENT_COLS, EVENT_TYPE_COLS, KEY_COLS,
    PARTNER_COLS, TENANT_COLS,
};
use crate::{DeliveryFilter, EventQuery, Page, PageRequest, Result, StoreError};
use aviso_core::model::{
    ApiKey, Attempt, Delivery, Endpoint, Event, EventType, Owner, Partner, Tenant,
};
use aviso_core::name::EventTypePattern;
use aviso_core::{DeliveryId, EndpointId, EventId, PartnerId, TenantId, Timestamp};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Every row of a query.
pub(super) async fn all<T>(
    c: &impl GenericClient,
    sql: &str,
    p: Params<'_>,
    f: fn(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    let stmt = c.prepare_cached(sql).await.map_err(db_err)?;
    let rows = c.query(&stmt, p).await.map_err(db_err)?;
    rows::all(&rows, f)
}

/// The one row of a query; `NotFound` if there is none.
pub(super) async fn one<T>(
    c: &impl GenericClient,
    sql: &str,
    p: Params<'_>,
    f: fn(&Row) -> Result<T>,
) -> Result<T> {
    let stmt = c.prepare_cached(sql).await.map_err(db_err)?;
    match c.query_opt(&stmt, p).await.map_err(db_err)? {
        Some(r) => f(&r),
        None => Err(StoreError::NotFound),
    }
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
pub(super) async fn ping(c: &impl GenericClient) -> Result<()> {
    c.batch_execute("SELECT 1").await.map_err(db_err)
}

/// One event type by name.
pub(super) async fn get_event_type(c: &impl GenericClient, name: &str) -> Result<EventType> {
    let sql = format!("SELECT {EVENT_TYPE_COLS} FROM event_types WHERE name = $1");
    one(c, &sql, &[&name], rows::event_type).await
}

/// Event types by name.
pub(super) async fn list_event_types(
    c: &impl GenericClient,
    page: PageRequest,
) -> Result<Page<EventType>> {
    let sql = format!(
        "SELECT {EVENT_TYPE_COLS} FROM event_types WHERE $1::text IS NULL OR name > $1 ORDER BY name LIMIT $2"
    );
    let items = all(
        c,
        &sql,
        &[&page.after, &fetch_limit(&page)],
        rows::event_type,
    )
    .await?;
    Ok(into_page(items, &page, |t| t.name.to_string()))
}

/// One tenant by id, or by uid when the text is not a tenant id.
pub(super) async fn get_tenant(c: &impl GenericClient, id_or_uid: &str) -> Result<Tenant> {
    let by = if TenantId::parse(id_or_uid).is_ok() {
        "id"
    } else {
        "uid"
    };
    let sql = format!("SELECT {TENANT_COLS} FROM tenants WHERE {by} = $1");
    one(c, &sql, &[&id_or_uid], rows::tenant).await
}

/// Tenants by id.
pub(super) async fn list_tenants(
    c: &impl GenericClient,
    page: PageRequest,
) -> Result<Page<Tenant>> {
    let sql = format!(
        "SELECT {TENANT_COLS} FROM tenants WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT $2"
    );
    let items = all(c, &sql, &[&page.after, &fetch_limit(&page)], rows::tenant).await?;
    Ok(into_page(items, &page, |t| t.id.to_string()))
}

/// A partner's tenants by id.
pub(super) async fn list_partner_tenants(
    c: &impl GenericClient,
    partner: &PartnerId,
    page: PageRequest,
) -> Result<Page<Tenant>> {
    let sql = format!(
        "SELECT {TENANT_COLS} FROM tenants WHERE partner_id = $1 AND ($2::text IS NULL OR id > $2) \
         ORDER BY id LIMIT $3"
    );
    let p: Params = &[&partner.as_str(), &page.after, &fetch_limit(&page)];
    let items = all(c, &sql, p, rows::tenant).await?;
    Ok(into_page(items, &page, |t| t.id.to_string()))
}

/// One partner.
pub(super) async fn get_partner(c: &impl GenericClient, id: &PartnerId) -> Result<Partner> {
    let sql = format!("SELECT {PARTNER_COLS} FROM partners WHERE id = $1");
    one(c, &sql, &[&id.as_str()], rows::partner).await
}

/// Partners by id.
pub(super) async fn list_partners(
    c: &impl GenericClient,
    page: PageRequest,
) -> Result<Page<Partner>> {
    let sql = format!(
        "SELECT {PARTNER_COLS} FROM partners WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT $2"
    );
    let items = all(c, &sql, &[&page.after, &fetch_limit(&page)], rows::partner).await?;
    Ok(into_page(items, &page, |p| p.id.to_string()))
}

/// One endpoint of an owner (tenant or partner).
pub(super) async fn get_endpoint(
    c: &impl GenericClient,
    owner: &Owner,
    id: &EndpointId,
) -> Result<Endpoint> {
    let sql = format!(
        "SELECT {ENDPOINT_COLS} FROM endpoints WHERE id = $1 AND (tenant_id = $2 OR partner_id = $2)"
    );
    one(c, &sql, &[&id.as_str(), &owner.as_str()], rows::endpoint).await
}

/// One endpoint by id alone.
pub(super) async fn get_endpoint_by_id(
    c: &impl GenericClient,
    id: &EndpointId,
) -> Result<Endpoint> {
    let sql = format!("SELECT {ENDPOINT_COLS} FROM endpoints WHERE id = $1");
    one(c, &sql, &[&id.as_str()], rows::endpoint).await
}

/// An owner's endpoints by id.
pub(super) async fn list_endpoints(
    c: &impl GenericClient,
    owner: &Owner,
    page: PageRequest,
) -> Result<Page<Endpoint>> {
    let by = match owner {
        Owner::Tenant(_) => "tenant_id",
        Owner::Partner(_) => "partner_id",
    };
    let sql = format!(
        "SELECT {ENDPOINT_COLS} FROM endpoints WHERE {by} = $1 AND ($2::text IS NULL OR id > $2) \
         ORDER BY id LIMIT $3"
    );
    let items = all(
        c,
        &sql,
        &[&owner.as_str(), &page.after, &fetch_limit(&page)],
        rows::endpoint,
    )
    .await?;
    Ok(into_page(items, &page, |e| e.id.to_string()))
}

/// The key with this hash.
pub(super) async fn find_api_key(c: &impl GenericClient, hash: &str) -> Result<Option<ApiKey>> {
    let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE hash = $1");
    match one(c, &sql, &[&hash], rows::api_key).await {
        Ok(k) => Ok(Some(k)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether an admin key exists.
pub(super) async fn has_admin_key(c: &impl GenericClient) -> Result<bool> {
    one(
        c,
        "SELECT EXISTS (SELECT 1 FROM api_keys WHERE scope = 'admin')",
        &[],
        |r| rows::get(r, 0),
    )
    .await
}

/// One event of a tenant with its deliveries.
pub(super) async fn get_event(
    c: &impl GenericClient,
    tenant: &TenantId,
    id: &EventId,
) -> Result<(Event, Vec<Delivery>)> {
    let sql = format!("SELECT {EVENT_COLS} FROM events WHERE id = $1 AND tenant_id = $2");
    let event = one(c, &sql, &[&id.as_str(), &tenant.as_str()], rows::event).await?;
    let deliveries = deliveries_of(c, &event).await?;
    Ok((event, deliveries))
}

/// A tenant's events by `seq`, filtered by type patterns.
pub(super) async fn list_events(
    c: &impl GenericClient,
    tenant: &TenantId,
    q: EventQuery,
) -> Result<Vec<Event>> {
    if let Some(after) = q.after_seq {
        let purged: i64 = one(
            c,
            "SELECT purged_seq FROM tenants WHERE id = $1",
            &[&tenant.as_str()],
            |r| rows::get(r, 0),
        )
        .await?;
        if purged > after {
            return Err(StoreError::Expired(crate::EXPIRED_CURSOR.into()));
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
    // Prefixes compare with left(), since LIKE treats `_` as a wildcard.
    let sql = format!(
        "SELECT {EVENT_COLS} FROM events e WHERE tenant_id = $1 AND seq > $2 AND ($3 \
           OR event_type = ANY($4::text[]) \
           OR EXISTS (SELECT 1 FROM unnest($5::text[]) p WHERE left(e.event_type, length(p)) = p)) \
         ORDER BY seq LIMIT $6"
    );
    let (after, limit) = (q.after_seq.unwrap_or(0), q.limit as i64);
    all(
        c,
        &sql,
        &[
            &tenant.as_str(),
            &after,
            &any_type,
            &exact,
            &prefixes,
            &limit,
        ],
        rows::event,
    )
    .await
}

/// `NotFound` unless the endpoint is the owner's.
pub(super) async fn check_owner(
    c: &impl GenericClient,
    owner: &Owner,
    endpoint: &EndpointId,
) -> Result<()> {
    one(
        c,
        "SELECT 1 FROM endpoints WHERE id = $1 AND (tenant_id = $2 OR partner_id = $2)",
        &[&endpoint.as_str(), &owner.as_str()],
        |_| Ok(()),
    )
    .await
}

/// An endpoint's deliveries, newest first, filtered; `NotFound` if the endpoint is not the owner's.
pub(super) async fn list_deliveries(
    c: &impl GenericClient,
    owner: &Owner,
    endpoint: &EndpointId,
    f: DeliveryFilter,
    page: PageRequest,
) -> Result<Page<Delivery>> {
    check_owner(c, owner, endpoint).await?;
    let (exact, prefix) = match &f.event_type {
        None | Some(EventTypePattern::All) => (None, None),
        Some(EventTypePattern::Exact(n)) => (Some(n.as_str()), None),
        Some(EventTypePattern::Prefix(p)) => (None, Some(p.as_str())),
    };
    // A prefix compares with left(), since LIKE treats `_` as a wildcard.
    let sql = format!(
        "SELECT {DELIVERY_COLS} FROM deliveries WHERE endpoint_id = $1 AND ($2::text IS NULL OR status = $2) \
         AND ($3::text IS NULL OR id < $3) AND ($5::text IS NULL OR event_type = $5) \
         AND ($6::text IS NULL OR left(event_type, length($6)) = $6) \
         AND ($7::bigint IS NULL OR created_at >= $7) AND ($8::bigint IS NULL OR created_at < $8) \
         ORDER BY id DESC LIMIT $4"
    );
    let status = f.status.map(|s| s.as_str());
    let (since, until) = (f.since.map(|t| t.0), f.until.map(|t| t.0));
    let items = all(
        c,
        &sql,
        &[
            &endpoint.as_str(),
            &status,
            &page.after,
            &fetch_limit(&page),
            &exact,
            &prefix,
            &since,
            &until,
        ],
        rows::delivery,
    )
    .await?;
    Ok(into_page(items, &page, |d| d.id.to_string()))
}

/// One delivery to one of the owner's endpoints, with its attempts, oldest first.
pub(super) async fn get_delivery(
    c: &impl GenericClient,
    owner: &Owner,
    id: &DeliveryId,
) -> Result<(Delivery, Vec<Attempt>)> {
    let sql = format!(
        "SELECT {DELIVERY_COLS} FROM deliveries WHERE id = $1 AND endpoint_id IN \
         (SELECT id FROM endpoints WHERE tenant_id = $2 OR partner_id = $2)"
    );
    let delivery = one(c, &sql, &[&id.as_str(), &owner.as_str()], rows::delivery).await?;
    let sql =
        format!("SELECT {ATTEMPT_COLS} FROM attempts WHERE delivery_id = $1 ORDER BY at, ord");
    let attempts = all(c, &sql, &[&id.as_str()], rows::attempt).await?;
    Ok((delivery, attempts))
}

/// The earliest due time of pending, unclaimed deliveries (the partial index answers).
pub(super) async fn next_due_at(c: &impl GenericClient) -> Result<Option<Timestamp>> {
    one(
        c,
        "SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending' AND locked_by IS NULL",
        &[],
        |r| Ok(rows::get::<Option<i64>>(r, 0)?.map(Timestamp)),
    )
    .await
}
