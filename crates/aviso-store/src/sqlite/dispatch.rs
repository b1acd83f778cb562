//! Dispatch writes: claiming due work, releasing claims, recording outcomes, resending.

use super::error::{db_err, is_foreign_key};
use super::reads::one;
use super::rows::{self, to_json, DELIVERY_COLS};
use crate::{AttemptOutcome, DispatchJob, NextStep, Result, StoreError};
use aviso_core::model::{Delivery, Owner};
use aviso_core::name::EventTypeName;
use aviso_core::{DeliveryId, EndpointId, EventId, TenantId, Timestamp};
use rusqlite::{params, Connection};

/// Claims up to `limit` due, unclaimed deliveries of enabled endpoints for `node`.
///
/// A delivery of an ordered endpoint is claimed only once every older pending
/// delivery with its endpoint and key is held by `node` and due no later than
/// it (a head waiting for its retry holds its line back in the database):
/// each round claims the next of each such line, so rounds repeat while they
/// claim ordered rows.
pub(super) fn claim_due(
    conn: &Connection,
    node: &str,
    due_before: Timestamp,
    limit: usize,
    exclude: &[EndpointId],
) -> Result<Vec<DispatchJob>> {
    let exclude: Vec<&str> = exclude.iter().map(EndpointId::as_str).collect();
    // The exclude list travels as one JSON array so the statement stays cached.
    let exclude = to_json(&exclude)?;
    let mut jobs = Vec::new();
    while jobs.len() < limit {
        let (round, ordered) = claim_round(conn, node, due_before, limit - jobs.len(), &exclude)?;
        let done = round.is_empty() || !ordered;
        jobs.extend(round);
        if done {
            break;
        }
    }
    // Rounds each run oldest due first; so does the whole batch.
    jobs.sort_by(|a, b| (a.due_at, &a.delivery).cmp(&(b.due_at, &b.delivery)));
    Ok(jobs)
}

/// Due, unclaimed deliveries of enabled endpoints, oldest due first. `?2`
/// is the JSON array of excluded endpoints or, in [`DUE_OF_ENDPOINT`], one
/// endpoint. An ordered delivery qualifies only behind older ones of its line
/// that `?4` holds and that are due no later than it.
const DUE: &str =
    "SELECT d.id, d.event_id, d.endpoint_id, d.tenant_id, d.event_type, e.payload, d.attempts, \
        d.round_attempts, d.round_started_at, d.next_attempt_at, d.order_key IS NOT NULL \
    FROM deliveries d \
    JOIN endpoints p ON p.id = d.endpoint_id AND p.enabled = 1 \
    JOIN events e ON e.id = d.event_id \
    WHERE d.status = 'pending' AND d.locked_by IS NULL AND d.next_attempt_at <= ?1 \
      AND d.endpoint_id NOT IN (SELECT value FROM json_each(?2)) \
      AND (d.order_key IS NULL OR NOT EXISTS ( \
        SELECT 1 FROM deliveries o WHERE o.endpoint_id = d.endpoint_id \
          AND o.order_key = d.order_key AND o.status = 'pending' AND o.rowid < d.rowid \
          AND (o.locked_by IS NULL OR o.locked_by <> ?4 \
               OR o.next_attempt_at > d.next_attempt_at))) \
    ORDER BY d.next_attempt_at LIMIT ?3";

/// [`DUE`] for one endpoint (`?2`), read through its own due index.
const DUE_OF_ENDPOINT: &str = "SELECT d.id, d.event_id, d.endpoint_id, d.tenant_id, d.event_type, e.payload, d.attempts, \
        d.round_attempts, d.round_started_at, d.next_attempt_at, d.order_key IS NOT NULL \
    FROM deliveries d INDEXED BY deliveries_due_by_endpoint \
    JOIN events e ON e.id = d.event_id \
    WHERE d.endpoint_id = ?2 AND d.status = 'pending' AND d.locked_by IS NULL AND d.next_attempt_at <= ?1 \
      AND (d.order_key IS NULL OR NOT EXISTS ( \
        SELECT 1 FROM deliveries o WHERE o.endpoint_id = d.endpoint_id \
          AND o.order_key = d.order_key AND o.status = 'pending' AND o.rowid < d.rowid \
          AND (o.locked_by IS NULL OR o.locked_by <> ?4 \
               OR o.next_attempt_at > d.next_attempt_at))) \
    ORDER BY d.next_attempt_at LIMIT ?3";

/// One claiming round; the flag tells whether it claimed an ordered delivery.
///
/// With endpoints excluded (their lanes are full, often because they are
/// failing with a backlog), walking the global due index would step over
/// every due row of theirs on each scan; instead each other enabled endpoint
/// is read through its own due index and the results merged.
fn claim_round(
    conn: &Connection,
    node: &str,
    due_before: Timestamp,
    limit: usize,
    exclude: &str,
) -> Result<(Vec<DispatchJob>, bool)> {
    let mut ordered = false;
    // (`ordered` may be set by a row the merge then drops: one more round.)
    let jobs = if exclude == "[]" {
        select_due(conn, DUE, due_before, exclude, limit, node, &mut ordered)?
    } else {
        let endpoints: Vec<String> = conn
            .prepare_cached(
                "SELECT id FROM endpoints WHERE enabled = 1 \
                 AND id NOT IN (SELECT value FROM json_each(?1))",
            )
            .and_then(|mut s| {
                s.query_map([exclude], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(db_err)?;
        let mut jobs = Vec::new();
        for ep in &endpoints {
            let due = select_due(
                conn,
                DUE_OF_ENDPOINT,
                due_before,
                ep,
                limit,
                node,
                &mut ordered,
            )?;
            jobs.extend(due);
        }
        jobs.sort_by(|a, b| (a.due_at, &a.delivery).cmp(&(b.due_at, &b.delivery)));
        jobs.truncate(limit);
        jobs
    };
    let mut claim = conn
        .prepare_cached("UPDATE deliveries SET locked_by = ?2 WHERE id = ?1")
        .map_err(db_err)?;
    for job in &jobs {
        claim
            .execute(params![job.delivery.as_str(), node])
            .map_err(db_err)?;
    }
    Ok((jobs, ordered))
}

/// Runs one of the due queries; notes whether any row is of an ordered endpoint.
fn select_due(
    conn: &Connection,
    sql: &str,
    due_before: Timestamp,
    which: &str,
    limit: usize,
    node: &str,
    ordered: &mut bool,
) -> Result<Vec<DispatchJob>> {
    let mut select = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = select
        .query_map(params![due_before.0, which, limit as i64, node], |r| {
            *ordered |= r.get::<_, bool>(10)?;
            Ok(DispatchJob {
                delivery: DeliveryId::from_trusted(r.get(0)?),
                event: EventId::from_trusted(r.get(1)?),
                endpoint: EndpointId::from_trusted(r.get(2)?),
                tenant: TenantId::from_trusted(r.get(3)?),
                event_type: EventTypeName::from_trusted(r.get(4)?),
                payload: r.get::<_, String>(5)?.into(),
                attempts: r.get(6)?,
                round_attempts: r.get(7)?,
                round_started_at: Timestamp(r.get(8)?),
                due_at: Timestamp(r.get(9)?),
            })
        })
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok(rows)
}

/// Clears the claims on these deliveries.
pub(super) fn release_claims(conn: &Connection, ids: &[DeliveryId]) -> Result<()> {
    let mut stmt = conn
        .prepare_cached(
            "UPDATE deliveries SET locked_by = NULL WHERE id = ?1 AND locked_by IS NOT NULL",
        )
        .map_err(db_err)?;
    for id in ids {
        stmt.execute([id.as_str()]).map_err(db_err)?;
    }
    Ok(())
}

/// Delivery rows (by rowid) that one command of [`recover_claims`] reads.
pub(super) const RECOVER_BATCH: i64 = 50_000;

/// The highest delivery rowid so far (0 with none).
pub(super) fn last_delivery_row(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("SELECT coalesce(max(rowid), 0) FROM deliveries")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(db_err)
}

/// Clears the claims of every node but `node` among delivery rows `from`
/// (exclusive) to `to` (inclusive); one process owns a SQLite database, so
/// any other claim was left by an earlier run. Claims are not indexed (two
/// writes per delivery to serve this statement once per start), so the
/// caller walks the table in batches, each a short command of its own.
pub(super) fn recover_claims(conn: &Connection, node: &str, from: i64, to: i64) -> Result<u64> {
    conn.prepare_cached(
        "UPDATE deliveries SET locked_by = NULL \
         WHERE rowid > ?2 AND rowid <= ?3 AND locked_by IS NOT NULL AND locked_by <> ?1",
    )
    .and_then(|mut s| s.execute(params![node, from, to]))
    .map(|n| n as u64)
    .map_err(db_err)
}

/// Records attempts and moves their deliveries on.
///
/// An attempt id already stored means the outcome was recorded before (a
/// retried write), so it is skipped whole rather than counted twice. The
/// attempt of a delivery that is gone (its endpoint was deleted meanwhile)
/// is refused by its foreign key and skipped; one of a delivery no longer
/// pending is kept, and the delivery left as it is.
pub(super) fn record_outcomes(conn: &Connection, outcomes: Vec<AttemptOutcome>) -> Result<()> {
    let mut insert = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO attempts (id, delivery_id, at, duration_ms, status_code, error, error_detail, \
             response_headers_json, response_snippet) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(db_err)?;
    let mut update = conn
        .prepare_cached(
            "UPDATE deliveries SET attempts = attempts + 1, round_attempts = round_attempts + 1, \
             last_status_code = ?2, last_error = ?3, updated_at = ?4, status = ?5, next_attempt_at = ?6, \
             locked_by = CASE WHEN ?7 THEN locked_by ELSE NULL END \
             WHERE id = ?1 AND status = 'pending'",
        )
        .map_err(db_err)?;
    for AttemptOutcome { attempt: a, next } in outcomes {
        let inserted = insert.execute(params![
            a.id.as_str(),
            a.delivery.as_str(),
            a.at.0,
            a.duration_ms as i64,
            a.status_code,
            a.error.map(|e| e.as_str()),
            a.error_detail,
            to_json(&a.response_headers)?,
            a.response_snippet
        ]);
        match inserted {
            Ok(0) => continue,
            Ok(_) => {}
            Err(e) if is_foreign_key(&e) => continue,
            Err(e) => return Err(db_err(e)),
        }
        let updated_at =
            a.at.0
                .saturating_add(a.duration_ms.min(i64::MAX as u64) as i64);
        let (new_status, next_at, keep_claim) = match next {
            NextStep::Succeeded => ("succeeded", None, false),
            NextStep::Retry { at, keep_claim } => ("pending", Some(at.0), keep_claim),
            NextStep::Failed => ("failed", None, false),
        };
        update
            .execute(params![
                a.delivery.as_str(),
                a.status_code,
                a.error.map(|e| e.as_str()),
                updated_at,
                new_status,
                next_at,
                keep_claim
            ])
            .map_err(db_err)?;
    }
    Ok(())
}

/// Puts a finished delivery back to pending in a new round, due `now`.
pub(super) fn resend_delivery(
    conn: &Connection,
    owner: &Owner,
    id: &DeliveryId,
    now: Timestamp,
) -> Result<Delivery> {
    let (status, enabled): (String, bool) = one(
        conn,
        "SELECT d.status, p.enabled FROM deliveries d JOIN endpoints p ON p.id = d.endpoint_id \
         WHERE d.id = ?1 AND (p.tenant_id = ?2 OR p.partner_id = ?2)",
        [id.as_str(), owner.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if status == "pending" {
        return Err(StoreError::Conflict("delivery is already pending".into()));
    }
    if !enabled {
        return Err(StoreError::Conflict("endpoint is disabled".into()));
    }
    let sql = format!(
        "UPDATE deliveries SET status = 'pending', round_attempts = 0, round_started_at = ?2, \
         next_attempt_at = ?2, locked_by = NULL, updated_at = ?2 WHERE id = ?1 RETURNING {DELIVERY_COLS}"
    );
    one(conn, &sql, params![id.as_str(), now.0], rows::delivery)
}
