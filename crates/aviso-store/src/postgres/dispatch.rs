//! Dispatch writes: claiming due work, releasing claims, recording outcomes, resending.

use super::error::db_err;
use super::leases::Leases;
use super::rows::{self, DELIVERY_COLS};
use super::{notify, owners};
use crate::json::to_json;
use crate::{AttemptOutcome, DispatchJob, NextStep, Result, StoreError};
use aviso_core::model::{Delivery, Owner};
use aviso_core::name::EventTypeName;
use aviso_core::{DeliveryId, EndpointId, EventId, TenantId, Timestamp};
use deadpool_postgres::GenericClient;

/// Claims up to `limit` due, unclaimed deliveries of enabled endpoints for
/// `node`. `SKIP LOCKED` lets nodes claim side by side without waiting on
/// each other's rows. With exclusive endpoints, only deliveries of endpoints
/// `node` owns or can take over are claimed.
///
/// A delivery of an ordered endpoint is claimed only once every older pending
/// delivery with its endpoint and key is held by `node` and due no later than
/// it (a head waiting for its retry holds its line back in the database):
/// each round claims the next of each such line, so rounds repeat while they
/// claim ordered rows.
pub(super) async fn claim_due(
    c: &impl GenericClient,
    leases: &Leases,
    node: &str,
    due_before: Timestamp,
    limit: usize,
    exclude: &[EndpointId],
) -> Result<Vec<DispatchJob>> {
    leases.ensure(c, node).await?;
    let exclude: Vec<&str> = exclude.iter().map(EndpointId::as_str).collect();
    let mut jobs = Vec::new();
    while jobs.len() < limit {
        let want = i64::try_from(limit - jobs.len()).unwrap_or(i64::MAX);
        let (round, ordered) = claim_round(c, leases, node, due_before, want, &exclude).await?;
        let done = round.is_empty() || !ordered;
        jobs.extend(round);
        if done {
            break;
        }
    }
    // RETURNING has no order; oldest due first, as the scan promises.
    jobs.sort_by(|a, b| (a.due_at, &a.delivery).cmp(&(b.due_at, &b.delivery)));
    Ok(jobs)
}

/// One claiming round; the flag tells whether it claimed an ordered delivery.
async fn claim_round(
    c: &impl GenericClient,
    leases: &Leases,
    node: &str,
    due_before: Timestamp,
    limit: i64,
    exclude: &[&str],
) -> Result<(Vec<DispatchJob>, bool)> {
    let not_others = if leases.exclusive {
        format!("AND NOT {}", owners::owned_by_other(4))
    } else {
        "AND $4::text IS NOT NULL".to_owned()
    };
    let pick = format!(
        "SELECT d.id, d.endpoint_id FROM deliveries d \
         JOIN endpoints p ON p.id = d.endpoint_id AND p.enabled \
         WHERE d.status = 'pending' AND d.locked_by IS NULL AND d.next_attempt_at <= $1 \
           AND NOT (d.endpoint_id = ANY($2::text[])) {not_others} \
           AND (d.order_key IS NULL OR NOT EXISTS ( \
             SELECT 1 FROM deliveries o WHERE o.endpoint_id = d.endpoint_id \
               AND o.order_key = d.order_key AND o.status = 'pending' AND o.ord < d.ord \
               AND (o.locked_by IS DISTINCT FROM $4 OR o.next_attempt_at > d.next_attempt_at))) \
         ORDER BY d.next_attempt_at LIMIT $3 \
         FOR UPDATE OF d SKIP LOCKED"
    );
    let stmt = c.prepare_cached(&pick).await.map_err(db_err)?;
    let picked = c
        .query(&stmt, &[&due_before.0, &exclude, &limit, &node])
        .await
        .map_err(db_err)?;
    let mut ids: Vec<&str> = Vec::with_capacity(picked.len());
    let mut endpoints: Vec<&str> = Vec::with_capacity(picked.len());
    for r in &picked {
        ids.push(rows::get(r, 0)?);
        endpoints.push(rows::get(r, 1)?);
    }
    if leases.exclusive {
        let owned = owners::acquire(c, node, &endpoints).await?;
        ids = ids
            .into_iter()
            .zip(&endpoints)
            .filter(|(_, e)| owned.contains(**e))
            .map(|(id, _)| id)
            .collect();
    }
    if ids.is_empty() {
        return Ok((Vec::new(), false));
    }
    let stmt = c
        .prepare_cached(
            "UPDATE deliveries d SET locked_by = $2 FROM events e \
             WHERE d.id = ANY($1::text[]) AND e.id = d.event_id \
             RETURNING d.id, d.event_id, d.endpoint_id, d.tenant_id, d.event_type, e.payload, \
                       d.attempts, d.round_attempts, d.round_started_at, d.next_attempt_at, \
                       d.order_key IS NOT NULL",
        )
        .await
        .map_err(db_err)?;
    let rows = c.query(&stmt, &[&ids, &node]).await.map_err(db_err)?;
    let mut ordered = false;
    let jobs = rows
        .iter()
        .map(|r| {
            ordered |= rows::get::<bool>(r, 10)?;
            Ok(DispatchJob {
                delivery: DeliveryId::from_trusted(rows::get(r, 0)?),
                event: EventId::from_trusted(rows::get(r, 1)?),
                endpoint: EndpointId::from_trusted(rows::get(r, 2)?),
                tenant: TenantId::from_trusted(rows::get(r, 3)?),
                event_type: EventTypeName::from_trusted(rows::get(r, 4)?),
                payload: rows::get::<&str>(r, 5)?.into(),
                attempts: u32::try_from(rows::get::<i32>(r, 6)?).unwrap_or(0),
                round_attempts: u32::try_from(rows::get::<i32>(r, 7)?).unwrap_or(0),
                round_started_at: Timestamp(rows::get(r, 8)?),
                due_at: Timestamp(rows::get(r, 9)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((jobs, ordered))
}

/// Clears the claims on these deliveries and wakes idle nodes to take them.
pub(super) async fn release_claims(c: &impl GenericClient, ids: &[DeliveryId]) -> Result<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE deliveries SET locked_by = NULL WHERE id = ANY($1::text[]) AND locked_by IS NOT NULL",
        )
        .await
        .map_err(db_err)?;
    let ids: Vec<&str> = ids.iter().map(DeliveryId::as_str).collect();
    if c.execute(&stmt, &[&ids]).await.map_err(db_err)? > 0 {
        notify::work_due(c).await?;
    }
    Ok(())
}

/// Records attempts and moves their deliveries on, one statement per outcome
/// (in order, so two outcomes of one delivery both count).
///
/// An attempt id already stored means the outcome was recorded before (a
/// retried write), so it is skipped whole rather than counted twice.
pub(super) async fn record_outcomes(
    c: &impl GenericClient,
    outcomes: Vec<AttemptOutcome>,
) -> Result<()> {
    let stmt = c
        .prepare_cached(
            "WITH ins AS ( \
               INSERT INTO attempts (id, delivery_id, at, duration_ms, status_code, error, error_detail, \
                 response_headers_json, response_snippet) \
               SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
               WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = $2) \
               ON CONFLICT (id) DO NOTHING RETURNING delivery_id) \
             UPDATE deliveries SET attempts = attempts + 1, round_attempts = round_attempts + 1, \
               last_status_code = $5, last_error = $6, updated_at = $10, status = $11, \
               next_attempt_at = $12, locked_by = CASE WHEN $13 THEN locked_by ELSE NULL END \
             WHERE id = (SELECT delivery_id FROM ins) AND status = 'pending'",
        )
        .await
        .map_err(db_err)?;
    for AttemptOutcome { attempt: a, next } in outcomes {
        let updated_at =
            a.at.0
                .saturating_add(a.duration_ms.min(i64::MAX as u64) as i64);
        let (status, next_at, keep_claim) = match next {
            NextStep::Succeeded => ("succeeded", None, false),
            NextStep::Retry { at, keep_claim } => ("pending", Some(at.0), keep_claim),
            NextStep::Failed => ("failed", None, false),
        };
        let duration = i64::try_from(a.duration_ms).unwrap_or(i64::MAX);
        let code = a.status_code.map(i32::from);
        let error = a.error.map(|e| e.as_str());
        let headers = to_json(&a.response_headers)?;
        c.execute(
            &stmt,
            &[
                &a.id.as_str(),
                &a.delivery.as_str(),
                &a.at.0,
                &duration,
                &code,
                &error,
                &a.error_detail,
                &headers,
                &a.response_snippet,
                &updated_at,
                &status,
                &next_at,
                &keep_claim,
            ],
        )
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

/// Puts a finished delivery back to pending in a new round, due `now`, and
/// wakes idle nodes. Holds the endpoint's row lock so a concurrent disable
/// (which updates that row) wins whole.
pub(super) async fn resend_delivery(
    c: &impl GenericClient,
    owner: &Owner,
    id: &DeliveryId,
    now: Timestamp,
) -> Result<Delivery> {
    let stmt = c
        .prepare_cached(
            "SELECT d.status, p.enabled FROM deliveries d JOIN endpoints p ON p.id = d.endpoint_id \
             WHERE d.id = $1 AND (p.tenant_id = $2 OR p.partner_id = $2) FOR SHARE OF p",
        )
        .await
        .map_err(db_err)?;
    let row = c
        .query_opt(&stmt, &[&id.as_str(), &owner.as_str()])
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)?;
    if rows::get::<&str>(&row, 0)? == "pending" {
        return Err(StoreError::Conflict("delivery is already pending".into()));
    }
    if !rows::get::<bool>(&row, 1)? {
        return Err(StoreError::Conflict("endpoint is disabled".into()));
    }
    let sql = format!(
        "UPDATE deliveries SET status = 'pending', round_attempts = 0, round_started_at = $2, \
         next_attempt_at = $2, locked_by = NULL, updated_at = $2 WHERE id = $1 RETURNING {DELIVERY_COLS}"
    );
    let stmt = c.prepare_cached(&sql).await.map_err(db_err)?;
    let row = c
        .query_one(&stmt, &[&id.as_str(), &now.0])
        .await
        .map_err(db_err)?;
    notify::work_due(c).await?;
    rows::delivery(&row)
}
