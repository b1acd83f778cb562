//! Background tasks: creation (idempotent per owner and key), claiming, and
//! one batch at a time in one transaction with the task's progress.

use super::audit::{covered_tenants, latest_of, subscribed_types};
use super::error::db_err;
use super::reads::{all, one};
use super::rows::{self, to_json, ENDPOINT_COLS, EVENT_COLS, TASK_COLS};
use crate::{Result, StoreError};
use aviso_core::model::{Endpoint, Event};
use aviso_core::ops::{Task, TaskSpec, TaskStatus};
use aviso_core::{DeliveryId, TaskId, Timestamp};
use rusqlite::{params, Connection, OptionalExtension};

/// One task.
pub(super) fn get_task(conn: &Connection, id: &TaskId) -> Result<Task> {
    let sql = format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1");
    one(conn, &sql, [id.as_str()], rows::task)
}

/// Stores a task, or returns the owner's earlier one with the same idempotency key.
pub(super) fn create_task(conn: &Connection, task: Task) -> Result<(Task, bool)> {
    if let Some(key) = &task.idempotency_key {
        let sql =
            format!("SELECT {TASK_COLS} FROM tasks WHERE owner_id = ?1 AND idempotency_key = ?2");
        let earlier = conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_row([task.owner.as_str(), key], rows::task)
                    .optional()
            })
            .map_err(db_err)?;
        if let Some(t) = earlier {
            return crate::tasks::repeat(t, &task);
        }
    }
    let spec = to_json(&task.spec)?;
    conn.prepare_cached(
        "INSERT INTO tasks (id, owner_id, endpoint_id, kind, spec_json, status, idempotency_key, \
         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            task.id.as_str(),
            task.owner.as_str(),
            task.endpoint.as_str(),
            task.spec.kind(),
            spec,
            task.status.as_str(),
            task.idempotency_key,
            task.created_at.0
        ])
    })
    .map_err(db_err)?;
    Ok((task, true))
}

/// Takes the oldest unfinished task nobody holds.
pub(super) fn claim_task(
    conn: &Connection,
    node: &str,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Option<Task>> {
    let id: Option<String> = conn
        .prepare_cached(
            "SELECT id FROM tasks WHERE status IN ('queued', 'running') \
             AND (locked_by IS NULL OR locked_by = ?1 OR locked_until < ?2) ORDER BY created_at LIMIT 1",
        )
        .and_then(|mut s| s.query_row(params![node, now.0], |r| r.get(0)).optional())
        .map_err(db_err)?;
    let Some(id) = id else { return Ok(None) };
    conn.prepare_cached(
        "UPDATE tasks SET locked_by = ?2, locked_until = ?3, status = 'running', updated_at = ?4 WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![id, node, lease_until.0, now.0]))
    .map_err(db_err)?;
    get_task(conn, &TaskId::from_trusted(id)).map(Some)
}

/// Forgets every task hold (one process owns a SQLite database; called at start).
pub(super) fn recover_tasks(conn: &Connection) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tasks SET locked_by = NULL, locked_until = NULL WHERE locked_by IS NOT NULL",
    )
    .and_then(|mut s| s.execute([]))
    .map_err(db_err)
    .map(drop)
}

/// A task with the state only the store needs.
struct Held {
    task: Task,
    locked_by: Option<String>,
    cursor: Option<String>,
    plan: Option<Vec<String>>,
}

fn held(conn: &Connection, id: &TaskId) -> Result<Held> {
    let sql = format!("SELECT {TASK_COLS}, locked_by, cursor, plan_json FROM tasks WHERE id = ?1");
    one(conn, &sql, [id.as_str()], |r| {
        let plan: Option<String> = r.get(15)?;
        Ok((rows::task(r)?, r.get(13)?, r.get(14)?, plan))
    })
    .and_then(|(task, locked_by, cursor, plan)| {
        let plan = plan
            .map(|p| serde_json::from_str::<Vec<String>>(&p))
            .transpose()
            .map_err(|e| StoreError::Other(format!("corrupt task plan: {e}")))?;
        Ok(Held {
            task,
            locked_by,
            cursor,
            plan,
        })
    })
}

/// Puts one failed delivery back to pending, due now; false if it is no longer failed.
fn resend_failed_row(conn: &Connection, id: &str, now: Timestamp) -> Result<bool> {
    conn.prepare_cached(
        "UPDATE deliveries SET status = 'pending', round_attempts = 0, round_started_at = ?2, \
         next_attempt_at = ?2, locked_by = NULL, updated_at = ?2 WHERE id = ?1 AND status = 'failed'",
    )
    .and_then(|mut s| s.execute(params![id, now.0]))
    .map(|n| n > 0)
    .map_err(db_err)
}

/// A new pending delivery of an event to the endpoint, unclaimed and due
/// now, with its ordering key when the endpoint is ordered.
fn insert_delivery(
    conn: &Connection,
    e: &Event,
    endpoint: &Endpoint,
    now: Timestamp,
) -> Result<()> {
    let key = endpoint
        .spec
        .ordering_key(|| serde_json::from_str(&e.payload).ok());
    conn.prepare_cached(
        "INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status, attempts, \
         round_attempts, round_started_at, next_attempt_at, locked_by, created_at, updated_at, \
         order_key) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, 0, ?6, ?6, NULL, ?6, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            DeliveryId::new().as_str(),
            e.id.as_str(),
            endpoint.id.as_str(),
            e.tenant.as_str(),
            e.event_type.as_str(),
            now.0,
            key
        ])
    })
    .map_err(db_err)
    .map(drop)
}

/// The work list of kinds that fix it up front.
fn plan_of(conn: &Connection, ep: &Endpoint, spec: &TaskSpec) -> Result<Vec<String>> {
    match spec {
        TaskSpec::ResendFailed { .. } => {
            // A bare column next to max() comes from the row holding the max.
            let mut ids: Vec<String> = all(
                conn,
                "SELECT d.id, max(e.seq) FROM deliveries d JOIN events e ON e.id = d.event_id \
                 WHERE d.endpoint_id = ?1 AND d.status = 'failed' GROUP BY d.tenant_id, d.event_type",
                [ep.id.as_str()],
                |r| r.get(0),
            )?;
            ids.sort();
            Ok(ids)
        }
        TaskSpec::SendLatest => {
            let mut latest: Vec<(i64, String)> = Vec::new();
            let tenants = covered_tenants(conn, &ep.id)?;
            for ty in subscribed_types(conn, ep)? {
                for t in &tenants {
                    if let Some(e) = latest_of(conn, t, &ty)? {
                        latest.push((e.seq, e.id.to_string()));
                    }
                }
            }
            latest.sort();
            Ok(latest.into_iter().map(|(_, id)| id).collect())
        }
        TaskSpec::Replay { .. } => Ok(Vec::new()),
    }
}

/// Runs the next batch of a task `node` holds.
pub(super) fn step_task(
    conn: &Connection,
    id: &TaskId,
    node: &str,
    now: Timestamp,
    lease_until: Timestamp,
    batch: usize,
) -> Result<Task> {
    let Held {
        mut task,
        locked_by,
        mut cursor,
        mut plan,
    } = held(conn, id)?;
    if task.status.is_finished() {
        return Ok(task);
    }
    if locked_by.as_deref() != Some(node) {
        return Err(StoreError::Conflict(format!(
            "task {id} is held by another node"
        )));
    }
    let batch = batch.max(1);
    let sql = format!("SELECT {ENDPOINT_COLS} FROM endpoints WHERE id = ?1");
    let ep = match one(conn, &sql, [task.endpoint.as_str()], rows::endpoint) {
        Ok(ep) if ep.spec.enabled => Some(ep),
        Ok(_) => {
            task.error = Some("the endpoint is disabled".into());
            None
        }
        Err(StoreError::NotFound) => {
            task.error = Some("the endpoint was deleted".into());
            None
        }
        Err(e) => return Err(e),
    };
    let mut done = ep.is_none();
    if let Some(ep) = &ep {
        match (&task.spec, &plan) {
            (
                TaskSpec::ResendFailed {
                    latest_per_type: false,
                },
                _,
            ) => {
                if task.total.is_none() {
                    let n: i64 = one(
                        conn,
                        "SELECT count(*) FROM deliveries WHERE endpoint_id = ?1 AND status = 'failed'",
                        [ep.id.as_str()],
                        |r| r.get(0),
                    )?;
                    task.total = Some(n.max(0) as u64);
                }
                let ids: Vec<String> = all(
                    conn,
                    "SELECT id FROM deliveries WHERE endpoint_id = ?1 AND status = 'failed' \
                     AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3",
                    params![ep.id.as_str(), cursor, batch as i64],
                    |r| r.get(0),
                )?;
                for d in &ids {
                    task.queued += u64::from(resend_failed_row(conn, d, now)?);
                }
                task.processed += ids.len() as u64;
                done = ids.len() < batch;
                cursor = ids.last().cloned().or(cursor);
            }
            (TaskSpec::ResendFailed { .. } | TaskSpec::SendLatest, None) => {
                let p = plan_of(conn, ep, &task.spec)?;
                task.total = Some(p.len() as u64);
                done = p.is_empty();
                plan = Some(p);
            }
            (TaskSpec::ResendFailed { .. }, Some(p)) => {
                let start = (task.processed as usize).min(p.len());
                let take = &p[start..(start + batch).min(p.len())];
                for d in take {
                    task.queued += u64::from(resend_failed_row(conn, d, now)?);
                }
                task.processed += take.len() as u64;
                done = task.processed as usize >= p.len();
            }
            (TaskSpec::SendLatest, Some(p)) => {
                let start = (task.processed as usize).min(p.len());
                let take = &p[start..(start + batch).min(p.len())];
                let sql = format!("SELECT {EVENT_COLS} FROM events WHERE id = ?1");
                for id in take {
                    let e = match one(conn, &sql, [id.as_str()], rows::event) {
                        Ok(e) => e,
                        Err(StoreError::NotFound) => continue,
                        Err(e) => return Err(e),
                    };
                    if wants(ep, &e) {
                        insert_delivery(conn, &e, ep, now)?;
                        task.queued += 1;
                    }
                }
                task.processed += take.len() as u64;
                done = task.processed as usize >= p.len();
            }
            (TaskSpec::Replay { since, until }, _) => {
                let until = (*until).min(task.created_at);
                const IN_WINDOW: &str = "tenant_id IN (SELECT tenant_id FROM endpoint_coverage \
                     WHERE endpoint_id = ?1) AND created_at >= ?2 AND created_at < ?3";
                if task.total.is_none() {
                    let n: i64 = one(
                        conn,
                        &format!("SELECT count(*) FROM events WHERE {IN_WINDOW}"),
                        params![ep.id.as_str(), since.0, until.0],
                        |r| r.get(0),
                    )?;
                    task.total = Some(n.max(0) as u64);
                }
                let after: i64 = cursor.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
                let events = all(
                    conn,
                    &format!(
                        "SELECT {EVENT_COLS} FROM events WHERE {IN_WINDOW} AND seq > ?4 \
                         ORDER BY seq LIMIT ?5"
                    ),
                    params![ep.id.as_str(), since.0, until.0, after, batch as i64],
                    rows::event,
                )?;
                for e in &events {
                    if wants(ep, e) {
                        insert_delivery(conn, e, ep, now)?;
                        task.queued += 1;
                    }
                }
                task.processed += events.len() as u64;
                done = events.len() < batch;
                cursor = events.last().map(|e| e.seq.to_string()).or(cursor);
            }
        }
    }
    task.updated_at = now;
    if done {
        task.status = if task.error.is_some() {
            TaskStatus::Failed
        } else {
            TaskStatus::Succeeded
        };
        task.finished_at = Some(now);
    }
    let plan_json = plan.as_ref().map(to_json).transpose()?;
    conn.prepare_cached(
        "UPDATE tasks SET status = ?2, total = ?3, processed = ?4, queued = ?5, cursor = ?6, \
         plan_json = ?7, error = ?8, updated_at = ?9, finished_at = ?10, \
         locked_until = CASE WHEN ?11 THEN NULL ELSE ?12 END, \
         locked_by = CASE WHEN ?11 THEN NULL ELSE locked_by END WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            task.id.as_str(),
            task.status.as_str(),
            task.total.map(|n| n as i64),
            task.processed as i64,
            task.queued as i64,
            cursor,
            plan_json,
            task.error,
            now.0,
            task.finished_at.map(|t| t.0),
            done,
            lease_until.0
        ])
    })
    .map_err(db_err)?;
    Ok(task)
}

/// Whether the endpoint wants this event (types and payload filter).
fn wants(ep: &Endpoint, e: &Event) -> bool {
    ep.spec.wants(e.event_type.as_str(), || {
        serde_json::from_str(&e.payload).ok()
    })
}
