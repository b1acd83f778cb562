//! Retention: one batch of the purge of old finished work.

use super::error::db_err;
use crate::{Purged, Result};
use aviso_core::Timestamp;
use rusqlite::{params, Connection};

/// Deletes up to `limit` finished deliveries last changed before `before`
/// (with their attempts), then up to `limit` events created before `before`
/// that no delivery refers to any more.
pub(super) fn purge(conn: &Connection, before: Timestamp, limit: usize) -> Result<Purged> {
    let limit = limit as i64;
    let attempts = conn
        .prepare_cached(
            "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries \
             WHERE status <> 'pending' AND updated_at < ?1 ORDER BY updated_at LIMIT ?2)",
        )
        .and_then(|mut s| s.execute(params![before.0, limit]))
        .map_err(db_err)?;
    let deliveries = conn
        .prepare_cached(
            "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries \
             WHERE status <> 'pending' AND updated_at < ?1 ORDER BY updated_at LIMIT ?2)",
        )
        .and_then(|mut s| s.execute(params![before.0, limit]))
        .map_err(db_err)?;
    let gone: Vec<(i64, String)> = conn
        .prepare_cached(
            "SELECT e.seq, e.tenant_id FROM events e WHERE e.created_at < ?1 \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) \
             ORDER BY e.created_at LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![before.0, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(db_err)?;
    let mut delete = conn
        .prepare_cached("DELETE FROM events WHERE seq = ?1")
        .map_err(db_err)?;
    let mut mark = conn
        .prepare_cached("UPDATE tenants SET purged_seq = max(purged_seq, ?2) WHERE id = ?1")
        .map_err(db_err)?;
    for (seq, tenant) in &gone {
        delete.execute([seq]).map_err(db_err)?;
        mark.execute(params![tenant, seq]).map_err(db_err)?;
    }
    let events = gone.len();
    Ok(Purged {
        deliveries: deliveries as u64,
        attempts: attempts as u64,
        events: events as u64,
    })
}
