//! Background tasks: creation (idempotent per owner and key), claiming
//! (`FOR UPDATE SKIP LOCKED`), and one batch at a time in one transaction
//! with the task's progress.

use super::audit::{covered_tenants, latest_of, subscribed_types};
use super::error::db_err;
use super::notify;
use super::reads::{all, one};
use super::rows::{self, ENDPOINT_COLS, EVENT_COLS, TASK_COLS};
use crate::json::to_json;
use crate::{Result, StoreError};
use aviso_core::model::{Endpoint, Event};
use aviso_core::ops::{Task, TaskSpec, TaskStatus};
use aviso_core::{DeliveryId, TaskId, Timestamp};
use deadpool_postgres::GenericClient;

/// One task.
pub(super) async fn get_task(c: &impl GenericClient, id: &TaskId) -> Result<Task> {
    let sql = format!("SELECT {TASK_COLS} FROM tasks WHERE id = $1");
    one(c, &sql, &[&id.as_str()], rows::task).await
}

/// Stores a task, or returns the owner's earlier one with the same idempotency key.
pub(super) async fn create_task(c: &impl GenericClient, task: Task) -> Result<(Task, bool)> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO tasks (id, owner_id, endpoint_id, kind, spec_json, status, idempotency_key, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
             ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING",
        )
        .await
        .map_err(db_err)?;
    let inserted = c
        .execute(
            &stmt,
            &[
                &task.id.as_str(),
                &task.owner.as_str(),
                &task.endpoint.as_str(),
                &task.spec.kind(),
                &to_json(&task.spec)?,
                &task.status.as_str(),
                &task.idempotency_key,
                &task.created_at.0,
            ],
        )
        .await
        .map_err(db_err)?;
    if inserted == 1 {
        return Ok((task, true));
    }
    let sql = format!("SELECT {TASK_COLS} FROM tasks WHERE owner_id = $1 AND idempotency_key = $2");
    let earlier = one(
        c,
        &sql,
        &[&task.owner.as_str(), &task.idempotency_key],
        rows::task,
    )
    .await?;
    crate::tasks::repeat(earlier, &task)
}

/// Takes the oldest unfinished task no live node holds.
pub(super) async fn claim_task(
    c: &impl GenericClient,
    node: &str,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<Option<Task>> {
    let sql = format!(
        "UPDATE tasks SET locked_by = $1, locked_until = $3, status = 'running', updated_at = $2 \
         WHERE id = (SELECT id FROM tasks WHERE status IN ('queued', 'running') \
                     AND (locked_by IS NULL OR locked_by = $1 OR locked_until < $2) \
                     ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING {TASK_COLS}"
    );
    match one(c, &sql, &[&node, &now.0, &lease_until.0], rows::task).await {
        Ok(t) => Ok(Some(t)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

struct Held {
    task: Task,
    locked_by: Option<String>,
    cursor: Option<String>,
    plan: Option<Vec<String>>,
}

async fn held(c: &impl GenericClient, id: &TaskId) -> Result<Held> {
    let sql = format!(
        "SELECT {TASK_COLS}, locked_by, cursor, plan_json FROM tasks WHERE id = $1 FOR UPDATE"
    );
    let stmt = c.prepare_cached(&sql).await.map_err(db_err)?;
    let r = c
        .query_opt(&stmt, &[&id.as_str()])
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)?;
    let plan = rows::get::<Option<&str>>(&r, 15)?
        .map(serde_json::from_str::<Vec<String>>)
        .transpose()
        .map_err(|e| StoreError::Other(format!("corrupt task plan: {e}")))?;
    Ok(Held {
        task: rows::task(&r)?,
        locked_by: rows::get(&r, 13)?,
        cursor: rows::get(&r, 14)?,
        plan,
    })
}

/// Puts failed deliveries back to pending, due now; returns how many were still failed.
async fn resend_failed_rows(c: &impl GenericClient, ids: &[String], now: Timestamp) -> Result<u64> {
    let stmt = c
        .prepare_cached(
            "UPDATE deliveries SET status = 'pending', round_attempts = 0, round_started_at = $2, \
             next_attempt_at = $2, locked_by = NULL, updated_at = $2 \
             WHERE id = ANY($1::text[]) AND status = 'failed'",
        )
        .await
        .map_err(db_err)?;
    c.execute(&stmt, &[&ids, &now.0]).await.map_err(db_err)
}

/// New pending deliveries of these events to the endpoint, unclaimed and due now.
async fn insert_deliveries(
    c: &impl GenericClient,
    events: &[&Event],
    endpoint: &Endpoint,
    now: Timestamp,
) -> Result<u64> {
    if events.is_empty() {
        return Ok(0);
    }
    let stmt = c
        .prepare_cached(
            "INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status, \
               attempts, round_attempts, round_started_at, next_attempt_at, locked_by, created_at, \
               updated_at, order_key) \
             SELECT u.id, u.ev, $1, u.tenant, u.ty, 'pending', 0, 0, $2, $2, NULL, $2, $2, u.okey \
             FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) \
               WITH ORDINALITY AS u(id, ev, tenant, ty, okey, i) ORDER BY u.i",
        )
        .await
        .map_err(db_err)?;
    let ids: Vec<String> = events
        .iter()
        .map(|_| DeliveryId::new().to_string())
        .collect();
    let evs: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let tenants: Vec<&str> = events.iter().map(|e| e.tenant.as_str()).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    // Ordered endpoints: each new delivery joins its line like a published one.
    let keys: Vec<Option<String>> = events
        .iter()
        .map(|e| {
            endpoint
                .spec
                .ordering_key(|| serde_json::from_str(&e.payload).ok())
        })
        .collect();
    c.execute(
        &stmt,
        &[
            &endpoint.id.as_str(),
            &now.0,
            &ids,
            &evs,
            &tenants,
            &types,
            &keys,
        ],
    )
    .await
    .map_err(db_err)
}

/// The work list of kinds that fix it up front.
async fn plan_of(c: &impl GenericClient, ep: &Endpoint, spec: &TaskSpec) -> Result<Vec<String>> {
    match spec {
        TaskSpec::ResendFailed { .. } => {
            let mut ids = all(
                c,
                "SELECT DISTINCT ON (d.tenant_id, d.event_type) d.id \
                 FROM deliveries d JOIN events e ON e.id = d.event_id \
                 WHERE d.endpoint_id = $1 AND d.status = 'failed' \
                 ORDER BY d.tenant_id, d.event_type, e.seq DESC",
                &[&ep.id.as_str()],
                |r| rows::get::<String>(r, 0),
            )
            .await?;
            ids.sort();
            Ok(ids)
        }
        TaskSpec::SendLatest => {
            let mut latest: Vec<(i64, String)> = Vec::new();
            let tenants = covered_tenants(c, &ep.id).await?;
            for ty in subscribed_types(c, ep).await? {
                for t in &tenants {
                    if let Some(e) = latest_of(c, t, &ty).await? {
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
pub(super) async fn step_task(
    c: &impl GenericClient,
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
    } = held(c, id).await?;
    if task.status.is_finished() {
        return Ok(task);
    }
    if locked_by.as_deref() != Some(node) {
        return Err(StoreError::Conflict(format!(
            "task {id} is held by another node"
        )));
    }
    let batch = batch.max(1);
    let limit = batch as i64;
    // The endpoint's row lock: a concurrent disable (which updates it) waits
    // for this batch, then cancels what it made pending.
    let sql = format!("SELECT {ENDPOINT_COLS} FROM endpoints WHERE id = $1 FOR SHARE");
    let ep = match one(c, &sql, &[&task.endpoint.as_str()], rows::endpoint).await {
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
    let before = task.queued;
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
                        c,
                        "SELECT count(*) FROM deliveries WHERE endpoint_id = $1 AND status = 'failed'",
                        &[&ep.id.as_str()],
                        |r| rows::get(r, 0),
                    )
                    .await?;
                    task.total = Some(n.max(0) as u64);
                }
                let ids = all(
                    c,
                    "SELECT id FROM deliveries WHERE endpoint_id = $1 AND status = 'failed' \
                     AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3",
                    &[&ep.id.as_str(), &cursor, &limit],
                    |r| rows::get::<String>(r, 0),
                )
                .await?;
                task.queued += resend_failed_rows(c, &ids, now).await?;
                task.processed += ids.len() as u64;
                done = ids.len() < batch;
                cursor = ids.last().cloned().or(cursor);
            }
            (TaskSpec::ResendFailed { .. } | TaskSpec::SendLatest, None) => {
                let p = plan_of(c, ep, &task.spec).await?;
                task.total = Some(p.len() as u64);
                done = p.is_empty();
                plan = Some(p);
            }
            (TaskSpec::ResendFailed { .. }, Some(p)) => {
                let start = (task.processed as usize).min(p.len());
                let take = &p[start..(start + batch).min(p.len())];
                task.queued += resend_failed_rows(c, take, now).await?;
                task.processed += take.len() as u64;
                done = task.processed as usize >= p.len();
            }
            (TaskSpec::SendLatest, Some(p)) => {
                let start = (task.processed as usize).min(p.len());
                let take = &p[start..(start + batch).min(p.len())];
                let sql = format!(
                    "SELECT {EVENT_COLS} FROM events WHERE id = ANY($1::text[]) ORDER BY seq"
                );
                let events = all(c, &sql, &[&take], rows::event).await?;
                let wanted: Vec<&Event> = events.iter().filter(|e| wants(ep, e)).collect();
                task.queued += insert_deliveries(c, &wanted, ep, now).await?;
                task.processed += take.len() as u64;
                done = task.processed as usize >= p.len();
            }
            (TaskSpec::Replay { since, until }, _) => {
                let until = (*until).min(task.created_at);
                const IN_WINDOW: &str = "tenant_id IN (SELECT tenant_id FROM endpoint_coverage \
                     WHERE endpoint_id = $1) AND created_at >= $2 AND created_at < $3";
                if task.total.is_none() {
                    let n: i64 = one(
                        c,
                        &format!("SELECT count(*) FROM events WHERE {IN_WINDOW}"),
                        &[&ep.id.as_str(), &since.0, &until.0],
                        |r| rows::get(r, 0),
                    )
                    .await?;
                    task.total = Some(n.max(0) as u64);
                }
                let after: i64 = cursor.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
                let events = all(
                    c,
                    &format!(
                        "SELECT {EVENT_COLS} FROM events WHERE {IN_WINDOW} AND seq > $4 \
                         ORDER BY seq LIMIT $5"
                    ),
                    &[&ep.id.as_str(), &since.0, &until.0, &after, &limit],
                    rows::event,
                )
                .await?;
                let wanted: Vec<&Event> = events.iter().filter(|e| wants(ep, e)).collect();
                task.queued += insert_deliveries(c, &wanted, ep, now).await?;
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
    let stmt = c
        .prepare_cached(
            "UPDATE tasks SET status = $2, total = $3, processed = $4, queued = $5, cursor = $6, \
             plan_json = $7, error = $8, updated_at = $9, finished_at = $10, \
             locked_until = CASE WHEN $11 THEN NULL ELSE $12::bigint END, \
             locked_by = CASE WHEN $11 THEN NULL ELSE locked_by END WHERE id = $1",
        )
        .await
        .map_err(db_err)?;
    c.execute(
        &stmt,
        &[
            &task.id.as_str(),
            &task.status.as_str(),
            &task.total.map(|n| n as i64),
            &(task.processed as i64),
            &(task.queued as i64),
            &cursor,
            &plan_json,
            &task.error,
            &now.0,
            &task.finished_at.map(|t| t.0),
            &done,
            &lease_until.0,
        ],
    )
    .await
    .map_err(db_err)?;
    if task.queued > before {
        notify::work_due(c).await?;
    }
    Ok(task)
}

/// Whether the endpoint wants this event (types and payload filter).
fn wants(ep: &Endpoint, e: &Event) -> bool {
    ep.spec.wants(e.event_type.as_str(), || {
        serde_json::from_str(&e.payload).ok()
    })
}
