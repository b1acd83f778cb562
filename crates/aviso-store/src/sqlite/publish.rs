//! Publishing: the routing cache and the event-with-deliveries write.

use super::error::{corrupt, db_err};
use super::rows::{self, DELIVERY_COLS, EVENT_COLS};
use super::writer::Ctx;
use crate::{DispatchJob, Published, Result};
use aviso_core::model::{Delivery, DeliveryStatus, EndpointSpec, Event, NewEvent};
use aviso_core::{DeliveryId, EndpointId, TenantId, Timestamp};
use foldhash::HashMap;
use rusqlite::{params, Connection, OptionalExtension};
use std::sync::{Arc, OnceLock};

/// Tenants whose routes are kept before the cache starts over.
const ROUTES_CAP: usize = 10_000;

/// A tenant's enabled endpoints, then the enabled partner endpoints covering it.
const ROUTES_SQL: &str =
    "SELECT id, spec_json FROM endpoints WHERE tenant_id = ?1 AND enabled = 1 \
     UNION ALL \
     SELECT p.id, p.spec_json FROM tenants t JOIN endpoints p ON p.partner_id = t.partner_id \
     WHERE t.id = ?1 AND p.enabled = 1 AND (p.all_tenants = 1 OR EXISTS \
       (SELECT 1 FROM endpoint_tenants x WHERE x.endpoint_id = p.id AND x.tenant_id = ?1)) \
     ORDER BY 1";

/// A tenant's enabled endpoints with their specs.
type TenantRoutes = Arc<Vec<(EndpointId, EndpointSpec)>>;

/// Enabled endpoints per tenant (its own and covering partner endpoints),
/// owned by the writer thread.
///
/// Every endpoint and tenant write passes through the writer, which
/// invalidates the tenant's entry first (every entry, for a partner
/// endpoint), so a loaded entry is always exact.
#[derive(Default)]
pub(super) struct Routes {
    by_tenant: HashMap<TenantId, TenantRoutes>,
}

impl Routes {
    /// The tenant's enabled endpoints, loaded on first use.
    fn get(&mut self, conn: &Connection, tenant: &TenantId) -> Result<TenantRoutes> {
        if let Some(r) = self.by_tenant.get(tenant) {
            return Ok(r.clone());
        }
        let mut stmt = conn.prepare_cached(ROUTES_SQL).map_err(db_err)?;
        let rows = stmt
            .query_map([tenant.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(db_err)?;
        let mut list = Vec::new();
        for row in rows {
            let (id, spec) = row.map_err(db_err)?;
            let spec = rows::spec_from_json(&spec).map_err(|e| corrupt("endpoint spec", e))?;
            list.push((EndpointId::from_trusted(id), spec));
        }
        if self.by_tenant.len() >= ROUTES_CAP {
            self.by_tenant.clear();
        }
        let list = Arc::new(list);
        self.by_tenant.insert(tenant.clone(), list.clone());
        Ok(list)
    }

    /// Forgets a tenant's routes after its endpoints change.
    pub(super) fn invalidate(&mut self, tenant: &TenantId) {
        self.by_tenant.remove(tenant);
    }

    /// Forgets everything (after a rollback).
    pub(super) fn clear(&mut self) {
        self.by_tenant.clear();
    }
}

/// Stores an event and its deliveries, or returns the earlier one for a repeated idempotency key.
pub(super) fn publish(ctx: &mut Ctx, ev: NewEvent, claim_for: Option<String>) -> Result<Published> {
    if let Some(key) = &ev.idempotency_key {
        if let Some(event) = find_by_key(&ctx.conn, &ev.tenant, key)? {
            let deliveries = deliveries_of(&ctx.conn, &event)?;
            return Ok(Published {
                event,
                deliveries,
                created: false,
                jobs: Vec::new(),
            });
        }
    }
    let routes = ctx.routes.get(&ctx.conn, &ev.tenant)?;
    let conn = &ctx.conn;
    // `seq` is the rowid. Not `RETURNING seq`: SQLite gathers returned rows
    // in a temporary B-tree, opened and dropped for every event.
    conn.prepare_cached(
        "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            ev.id.as_str(),
            ev.tenant.as_str(),
            ev.event_type.as_str(),
            &*ev.payload,
            ev.idempotency_key,
            ev.created_at.0
        ])
    })
    .map_err(db_err)?;
    let seq = conn.last_insert_rowid();
    let event = Event {
        id: ev.id,
        tenant: ev.tenant,
        event_type: ev.event_type,
        payload: ev.payload,
        idempotency_key: ev.idempotency_key,
        created_at: ev.created_at,
        seq,
    };

    let mut parsed = None;
    let mut payload = || {
        parsed
            .get_or_insert_with(|| serde_json::from_str(&event.payload).ok())
            .clone()
    };
    let mut deliveries = Vec::new();
    let mut jobs = Vec::new();
    // (claim, ordering key) of each delivery, in `deliveries` order.
    let mut rows = Vec::new();
    for (endpoint, spec) in routes.iter() {
        if !spec.wants(event.event_type.as_str(), &mut payload) {
            continue;
        }
        let id = DeliveryId::new();
        let key = spec.ordering_key(&mut payload);
        // An ordered delivery behind older pending ones that this node does
        // not hold is left for the scan, which claims it in turn.
        let claim = match (&claim_for, &key) {
            (Some(node), Some(key))
                if waits_behind(conn, endpoint, key, node, event.created_at)? =>
            {
                None
            }
            _ => claim_for.as_deref(),
        };
        if claim.is_some() || claim_for.is_none() {
            jobs.push(DispatchJob {
                delivery: id.clone(),
                event: event.id.clone(),
                endpoint: endpoint.clone(),
                tenant: event.tenant.clone(),
                event_type: event.event_type.clone(),
                payload: event.payload.clone(),
                attempts: 0,
                round_attempts: 0,
                round_started_at: event.created_at,
                due_at: event.created_at,
            });
        }
        rows.push((claim, key));
        deliveries.push(Delivery {
            id,
            event: event.id.clone(),
            endpoint: endpoint.clone(),
            tenant: event.tenant.clone(),
            event_type: event.event_type.clone(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            round_attempts: 0,
            round_started_at: event.created_at,
            next_attempt_at: Some(event.created_at),
            last_status_code: None,
            last_error: None,
            created_at: event.created_at,
            updated_at: event.created_at,
        });
    }
    insert_deliveries(conn, &event, &deliveries, &rows)?;
    Ok(Published {
        event,
        deliveries,
        created: true,
        jobs,
    })
}

/// Deliveries inserted by one statement; a wider fan-out takes several.
const INSERT_CHUNK: usize = 16;

/// The insert of `n` deliveries of one event: `?1`–`?4` are the event, its
/// tenant, type and time; row `i` binds its id, endpoint, claim and ordering
/// key at `?(5 + 4i)`–`?(8 + 4i)`.
fn insert_sql(n: usize) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        (1..=INSERT_CHUNK)
            .map(|n| {
                let values: Vec<String> = (0..n)
                    .map(|i| {
                        let p = 5 + 4 * i;
                        format!(
                            "(?{p}, ?1, ?{}, ?2, ?3, 'pending', 0, 0, ?4, ?4, ?{}, ?4, ?4, ?{})",
                            p + 1,
                            p + 2,
                            p + 3
                        )
                    })
                    .collect();
                format!(
                    "INSERT OR FAIL INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status, \
                     attempts, round_attempts, round_started_at, next_attempt_at, locked_by, created_at, \
                     updated_at, order_key) VALUES {}",
                    values.join(", ")
                )
            })
            .collect()
    });
    &all[n - 1]
}

/// Inserts an event's deliveries, [`INSERT_CHUNK`] rows per statement (one
/// statement for most fan-outs instead of one per delivery).
fn insert_deliveries(
    conn: &Connection,
    event: &Event,
    deliveries: &[Delivery],
    rows: &[(Option<&str>, Option<String>)],
) -> Result<()> {
    for (ds, rs) in deliveries
        .chunks(INSERT_CHUNK)
        .zip(rows.chunks(INSERT_CHUNK))
    {
        let mut stmt = conn.prepare_cached(insert_sql(ds.len())).map_err(db_err)?;
        stmt.raw_bind_parameter(1, event.id.as_str())
            .map_err(db_err)?;
        stmt.raw_bind_parameter(2, event.tenant.as_str())
            .map_err(db_err)?;
        stmt.raw_bind_parameter(3, event.event_type.as_str())
            .map_err(db_err)?;
        stmt.raw_bind_parameter(4, event.created_at.0)
            .map_err(db_err)?;
        for (i, (d, (claim, key))) in ds.iter().zip(rs).enumerate() {
            let p = 5 + 4 * i;
            stmt.raw_bind_parameter(p, d.id.as_str()).map_err(db_err)?;
            stmt.raw_bind_parameter(p + 1, d.endpoint.as_str())
                .map_err(db_err)?;
            stmt.raw_bind_parameter(p + 2, claim).map_err(db_err)?;
            stmt.raw_bind_parameter(p + 3, key).map_err(db_err)?;
        }
        stmt.raw_execute().map_err(db_err)?;
    }
    Ok(())
}

/// Whether an older pending delivery with this endpoint and ordering key is
/// unclaimed, claimed by another node, or waiting for a retry due after `now`.
fn waits_behind(
    conn: &Connection,
    endpoint: &EndpointId,
    key: &str,
    node: &str,
    now: Timestamp,
) -> Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM deliveries WHERE endpoint_id = ?1 AND order_key = ?2 \
         AND status = 'pending' AND (locked_by IS NULL OR locked_by <> ?3 OR next_attempt_at > ?4))",
    )
    .and_then(|mut s| s.query_row(params![endpoint.as_str(), key, node, now.0], |r| r.get(0)))
    .map_err(db_err)
}

fn find_by_key(conn: &Connection, tenant: &TenantId, key: &str) -> Result<Option<Event>> {
    let sql =
        format!("SELECT {EVENT_COLS} FROM events WHERE tenant_id = ?1 AND idempotency_key = ?2");
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row([tenant.as_str(), key], rows::event).optional())
        .map_err(db_err)
}

/// An event's deliveries, oldest first.
pub(super) fn deliveries_of(conn: &Connection, event: &Event) -> Result<Vec<Delivery>> {
    let sql = format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE event_id = ?1 ORDER BY rowid");
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
    let rows = stmt
        .query_map([event.id.as_str()], rows::delivery)
        .map_err(db_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err)
}
