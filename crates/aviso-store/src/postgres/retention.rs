//! Retention: one batch of the purge of old finished work.

use super::error::db_err;
use crate::{Purged, Result};
use aviso_core::Timestamp;
use deadpool_postgres::GenericClient;

/// Deletes up to `limit` finished deliveries last changed before `before`
/// (with their attempts), then up to `limit` events created before `before`
/// that no delivery refers to any more. Rows another node is purging at the
/// same moment are skipped, not waited for.
pub(super) async fn purge(
    c: &impl GenericClient,
    before: Timestamp,
    limit: usize,
) -> Result<Purged> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let stmt = c
        .prepare_cached(
            "WITH gone AS ( \
               SELECT id FROM deliveries WHERE status <> 'pending' AND updated_at < $1 \
               ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED), \
             a AS (DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM gone) RETURNING 1), \
             d AS (DELETE FROM deliveries WHERE id IN (SELECT id FROM gone) RETURNING 1) \
             SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM a)",
        )
        .await
        .map_err(db_err)?;
    let row = c
        .query_one(&stmt, &[&before.0, &limit])
        .await
        .map_err(db_err)?;
    let (deliveries, attempts): (i64, i64) = (row.get(0), row.get(1));
    // The deliveries deleted above are gone for this statement already (same
    // transaction), so their events go in this batch.
    let stmt = c
        .prepare_cached(
            "WITH gone AS ( \
               SELECT e.id FROM events e WHERE e.created_at < $1 \
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) \
               ORDER BY e.created_at LIMIT $2 FOR UPDATE SKIP LOCKED), \
             d AS (DELETE FROM events WHERE id IN (SELECT id FROM gone) RETURNING tenant_id, seq), \
             m AS (UPDATE tenants t SET purged_seq = GREATEST(t.purged_seq, x.s) \
                   FROM (SELECT tenant_id, max(seq) AS s FROM d GROUP BY tenant_id) x \
                   WHERE t.id = x.tenant_id RETURNING 1) \
             SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM m)",
        )
        .await
        .map_err(db_err)?;
    let row = c
        .query_one(&stmt, &[&before.0, &limit])
        .await
        .map_err(db_err)?;
    let events = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
    Ok(Purged {
        deliveries: deliveries as u64,
        attempts: attempts as u64,
        events,
    })
}
