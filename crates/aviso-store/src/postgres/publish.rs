//! Publishing: the event-with-deliveries write, run by the group-commit writer.

use super::error::{corrupt, db_err};
use super::rows::{self, DELIVERY_COLS, EVENT_COLS};
use crate::json::spec_from_json;
use crate::{DispatchJob, Published, Result};
use aviso_core::model::{Delivery, DeliveryStatus, EndpointSpec, Event, NewEvent};
use aviso_core::{DeliveryId, EndpointId, TenantId, Timestamp};
use deadpool_postgres::GenericClient;
use std::collections::HashMap;
use std::sync::Arc;

/// What a batch has learnt in its transaction. Valid until the transaction
/// ends: the batch holds its tenants' locks (so routes cannot change) and the
/// rows of the endpoints it owns (so ownership cannot move).
#[derive(Default)]
pub(super) struct BatchCache {
    routes: HashMap<TenantId, Arc<Vec<(EndpointId, EndpointSpec)>>>,
    /// (node, endpoint) → whether the node owns the endpoint.
    owned: HashMap<(String, EndpointId), bool>,
}

/// Stores an event and its deliveries, or returns the earlier one for a
/// repeated idempotency key. The caller holds the tenant's advisory lock, so
/// the routes read here are exact until commit and no other node can race
/// on the same key.
///
/// With `exclusive`, deliveries to endpoints another live node owns are left
/// unclaimed (and get no job) for that node to pick up. The flag returned is
/// true when some new delivery was left unclaimed.
pub(super) async fn publish(
    c: &impl GenericClient,
    cache: &mut BatchCache,
    ev: &NewEvent,
    claim_for: Option<&str>,
    exclusive: bool,
) -> Result<(Published, bool)> {
    if let Some(key) = &ev.idempotency_key {
        if let Some(event) = find_by_key(c, &ev.tenant, key).await? {
            let deliveries = deliveries_of(c, &event).await?;
            let published = Published {
                event,
                deliveries,
                created: false,
                jobs: Vec::new(),
            };
            return Ok((published, false));
        }
    }
    let routes = match cache.routes.get(&ev.tenant) {
        Some(r) => r.clone(),
        None => {
            let r = Arc::new(routes(c, &ev.tenant).await?);
            cache.routes.insert(ev.tenant.clone(), r.clone());
            r
        }
    };
    let mut parsed = None;
    let mut payload = || {
        parsed
            .get_or_insert_with(|| serde_json::from_str(&ev.payload).ok())
            .clone()
    };
    let mut targets: Vec<&EndpointId> = Vec::new();
    let mut keys: Vec<Option<String>> = Vec::new();
    for (id, spec) in routes.iter() {
        if spec.wants(ev.event_type.as_str(), &mut payload) {
            targets.push(id);
            keys.push(spec.ordering_key(&mut payload));
        }
    }
    let ids: Vec<DeliveryId> = targets.iter().map(|_| DeliveryId::new()).collect();
    let mut claims: Vec<Option<&str>> = match claim_for {
        Some(node) if exclusive => {
            let owned = owned_by(c, cache, node, &targets).await?;
            owned.iter().map(|&o| o.then_some(node)).collect()
        }
        _ => vec![claim_for; targets.len()],
    };
    // An ordered delivery behind older pending ones that this node does not
    // hold is left for the scan, which claims it in turn.
    for ((claim, key), endpoint) in claims.iter_mut().zip(&keys).zip(&targets) {
        if let (Some(node), Some(key)) = (*claim, key) {
            if waits_behind(c, endpoint, key, node, ev.created_at).await? {
                *claim = None;
            }
        }
    }
    let seq = insert(c, ev, &ids, &targets, &claims, &keys).await?;
    let event = Event {
        id: ev.id.clone(),
        tenant: ev.tenant.clone(),
        event_type: ev.event_type.clone(),
        payload: ev.payload.clone(),
        idempotency_key: ev.idempotency_key.clone(),
        created_at: ev.created_at,
        seq,
    };
    let unclaimed = claims.iter().any(Option::is_none);
    let at = event.created_at;
    let jobs = ids
        .iter()
        .zip(&targets)
        .zip(&claims)
        .filter(|(_, claim)| claim_for.is_none() || claim.is_some())
        .map(|((id, endpoint), _)| DispatchJob {
            delivery: id.clone(),
            event: event.id.clone(),
            endpoint: (*endpoint).clone(),
            tenant: event.tenant.clone(),
            event_type: event.event_type.clone(),
            payload: event.payload.clone(),
            attempts: 0,
            round_attempts: 0,
            round_started_at: at,
            due_at: at,
        })
        .collect();
    let deliveries = ids
        .into_iter()
        .zip(targets)
        .map(|(id, endpoint)| Delivery {
            id,
            event: event.id.clone(),
            endpoint: endpoint.clone(),
            tenant: event.tenant.clone(),
            event_type: event.event_type.clone(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            round_attempts: 0,
            round_started_at: at,
            next_attempt_at: Some(at),
            last_status_code: None,
            last_error: None,
            created_at: at,
            updated_at: at,
        })
        .collect();
    let published = Published {
        event,
        deliveries,
        created: true,
        jobs,
    };
    Ok((published, unclaimed))
}

/// Whether `node` owns each of `targets`, taking over free ones; asks the
/// database only about endpoints this batch has not seen yet.
async fn owned_by(
    c: &impl GenericClient,
    cache: &mut BatchCache,
    node: &str,
    targets: &[&EndpointId],
) -> Result<Vec<bool>> {
    let unknown: Vec<&str> = targets
        .iter()
        .filter(|e| !cache.owned.contains_key(&(node.to_owned(), (**e).clone())))
        .map(|e| e.as_str())
        .collect();
    if !unknown.is_empty() {
        let now_owned = super::owners::acquire(c, node, &unknown).await?;
        for e in unknown {
            let mine = now_owned.contains(e);
            cache.owned.insert(
                (node.to_owned(), EndpointId::from_trusted(e.to_owned())),
                mine,
            );
        }
    }
    Ok(targets
        .iter()
        .map(|e| cache.owned.get(&(node.to_owned(), (*e).clone())) == Some(&true))
        .collect())
}

/// Whether an older pending delivery with this endpoint and ordering key is
/// unclaimed, claimed by another node, or waiting for a retry due after `now`.
async fn waits_behind(
    c: &impl GenericClient,
    endpoint: &EndpointId,
    key: &str,
    node: &str,
    now: Timestamp,
) -> Result<bool> {
    let stmt = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM deliveries WHERE endpoint_id = $1 AND order_key = $2 \
             AND status = 'pending' AND (locked_by IS DISTINCT FROM $3 OR next_attempt_at > $4))",
        )
        .await
        .map_err(db_err)?;
    let row = c
        .query_one(&stmt, &[&endpoint.as_str(), &key, &node, &now.0])
        .await
        .map_err(db_err)?;
    rows::get(&row, 0)
}

/// The tenant's enabled endpoints, then the enabled partner endpoints covering
/// it, with their specs, read in the caller's transaction.
async fn routes(
    c: &impl GenericClient,
    tenant: &TenantId,
) -> Result<Vec<(EndpointId, EndpointSpec)>> {
    let stmt = c
        .prepare_cached(
            "SELECT id, spec_json FROM endpoints WHERE tenant_id = $1 AND enabled \
             UNION ALL \
             SELECT p.id, p.spec_json FROM tenants t JOIN endpoints p ON p.partner_id = t.partner_id \
             WHERE t.id = $1 AND p.enabled AND (p.all_tenants OR EXISTS \
               (SELECT 1 FROM endpoint_tenants x WHERE x.endpoint_id = p.id AND x.tenant_id = $1)) \
             ORDER BY 1",
        )
        .await
        .map_err(db_err)?;
    let rows = c.query(&stmt, &[&tenant.as_str()]).await.map_err(db_err)?;
    rows.iter()
        .map(|r| {
            let spec = spec_from_json(rows::get(r, 1)?).map_err(|e| corrupt("endpoint spec", e))?;
            Ok((EndpointId::from_trusted(rows::get(r, 0)?), spec))
        })
        .collect()
}

/// The event and all its deliveries (in routing order) in one statement; returns the event's `seq`.
async fn insert(
    c: &impl GenericClient,
    ev: &NewEvent,
    ids: &[DeliveryId],
    endpoints: &[&EndpointId],
    claims: &[Option<&str>],
    keys: &[Option<String>],
) -> Result<i64> {
    let stmt = c
        .prepare_cached(
            "WITH ev AS ( \
               INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, created_at) \
               VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq), \
             dl AS ( \
               INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status, \
                 attempts, round_attempts, round_started_at, next_attempt_at, locked_by, created_at, \
                 updated_at, order_key) \
               SELECT u.id, $1, u.ep, $2, $3, 'pending', 0, 0, $6, $6, u.node, $6, $6, u.okey \
               FROM unnest($7::text[], $8::text[], $9::text[], $10::text[]) \
                 WITH ORDINALITY AS u(id, ep, node, okey, i) \
               ORDER BY u.i) \
             SELECT seq FROM ev",
        )
        .await
        .map_err(db_err)?;
    let ids: Vec<&str> = ids.iter().map(DeliveryId::as_str).collect();
    let endpoints: Vec<&str> = endpoints.iter().map(|e| e.as_str()).collect();
    let row = c
        .query_one(
            &stmt,
            &[
                &ev.id.as_str(),
                &ev.tenant.as_str(),
                &ev.event_type.as_str(),
                &&*ev.payload,
                &ev.idempotency_key,
                &ev.created_at.0,
                &ids,
                &endpoints,
                &claims,
                &keys,
            ],
        )
        .await
        .map_err(db_err)?;
    rows::get(&row, 0)
}

async fn find_by_key(
    c: &impl GenericClient,
    tenant: &TenantId,
    key: &str,
) -> Result<Option<Event>> {
    let sql =
        format!("SELECT {EVENT_COLS} FROM events WHERE tenant_id = $1 AND idempotency_key = $2");
    let stmt = c.prepare_cached(&sql).await.map_err(db_err)?;
    c.query_opt(&stmt, &[&tenant.as_str(), &key])
        .await
        .map_err(db_err)?
        .as_ref()
        .map(rows::event)
        .transpose()
}

/// An event's deliveries, oldest first.
pub(super) async fn deliveries_of(c: &impl GenericClient, event: &Event) -> Result<Vec<Delivery>> {
    let sql = format!("SELECT {DELIVERY_COLS} FROM deliveries WHERE event_id = $1 ORDER BY ord");
    let stmt = c.prepare_cached(&sql).await.map_err(db_err)?;
    let rows = c
        .query(&stmt, &[&event.id.as_str()])
        .await
        .map_err(db_err)?;
    rows::all(&rows, rows::delivery)
}
