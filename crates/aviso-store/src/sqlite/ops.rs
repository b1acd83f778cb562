//! Audit reads beyond plain lists, recorded test sends, and background tasks.

use super::error::db_err;
use super::reads::{all, check_owner, fetch_limit, into_page, one};
use super::rows::{self, to_json, DELIVERY_COLS, ENDPOINT_COLS, EVENT_COLS, TASK_COLS, TEST_COLS};
use crate::{LatestOfType, Page, PageRequest, Result, StoreError};
use aviso_core::model::{DeliveryStatus, Endpoint, Event, Owner};
use aviso_core::name::{any_matches, EventTypeName};
use aviso_core::ops::{EndpointTest, Task, TaskSpec, TaskStatus};
use aviso_core::{DeliveryId, EndpointId, TaskId, TenantId, Timestamp};
use rusqlite::{params, Connection, OptionalExtension};

/// Counts of an endpoint's deliveries by status in a time window.
pub(super) fn delivery_stats(
    conn: &Connection,
    owner: &Owner,
    endpoint: &EndpointId,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Result<Vec<(DeliveryStatus, u64)>> {
    check_owner(conn, owner, endpoint)?;
    let rows: Vec<(String, i64)> = all(
        conn,
        "SELECT status, count(*) FROM deliveries WHERE endpoint_id = ?1 \
         AND (?2 IS NULL OR created_at >= ?2) AND (?3 IS NULL OR created_at < ?3) GROUP BY status",
        params![endpoint.as_str(), since.map(|t| t.0), until.map(|t| t.0)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    rows.into_iter()
        .map(|(s, n)| {
            DeliveryStatus::parse(&s)
                .map(|s| (s, n.max(0) as u64))
                .map_err(|e| StoreError::Other(e.to_string()))
        })
        .collect()
}

/// The endpoint, if the owner's.
fn owned_endpoint(conn: &Connection, owner: &Owner, id: &EndpointId) -> Result<Endpoint> {
    let sql = format!(
        "SELECT {ENDPOINT_COLS} FROM endpoints WHERE id = ?1 AND (tenant_id = ?2 OR partner_id = ?2)"
    );
    one(conn, &sql, [id.as_str(), owner.as_str()], rows::endpoint)
}

/// Catalogue types the endpoint subscribes to, by name.
fn subscribed_types(conn: &Connection, ep: &Endpoint) -> Result<Vec<EventTypeName>> {
    let names: Vec<String> = all(
        conn,
        "SELECT name FROM event_types ORDER BY name",
        [],
        |r| r.get(0),
    )?;
    Ok(names
        .into_iter()
        .filter(|n| any_matches(&ep.spec.event_types, n))
        .map(EventTypeName::from_trusted)
        .collect())
}

/// Tenants whose events the endpoint receives, by id.
fn covered_tenants(conn: &Connection, ep: &EndpointId) -> Result<Vec<TenantId>> {
    let ids: Vec<String> = all(
        conn,
        "SELECT tenant_id FROM endpoint_coverage WHERE endpoint_id = ?1 ORDER BY tenant_id",
        [ep.as_str()],
        |r| r.get(0),
    )?;
    Ok(ids.into_iter().map(TenantId::from_trusted).collect())
}

fn latest_of(conn: &Connection, tenant: &TenantId, ty: &EventTypeName) -> Result<Option<Event>> {
    let sql = format!(
        "SELECT {EVENT_COLS} FROM events WHERE tenant_id = ?1 AND event_type = ?2 \
         ORDER BY seq DESC LIMIT 1"
    );
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row([tenant.as_str(), ty.as_str()], rows::event)
                .optional()
        })
        .map_err(db_err)
}

/// Every (subscribed type × covered tenant) with its latest event and that event's delivery.
pub(super) fn latest_events(
    conn: &mut Connection,
    owner: &Owner,
    endpoint: &EndpointId,
) -> Result<Vec<LatestOfType>> {
    let tx = conn.transaction().map_err(db_err)?;
    let ep = owned_endpoint(&tx, owner, endpoint)?;
    let tenants = covered_tenants(&tx, endpoint)?;
    let dsql = format!(
        "SELECT {DELIVERY_COLS} FROM deliveries WHERE event_id = ?1 AND endpoint_id = ?2 \
         ORDER BY id DESC LIMIT 1"
    );
    let mut out = Vec::new();
    for ty in subscribed_types(&tx, &ep)? {
        for t in &tenants {
            let event = latest_of(&tx, t, &ty)?;
            let delivery = match &event {
                Some(e) => tx
                    .prepare_cached(&dsql)
                    .and_then(|mut s| {
                        s.query_row([e.id.as_str(), endpoint.as_str()], rows::delivery)
                            .optional()
                    })
                    .map_err(db_err)?,
                None => None,
            };
            out.push(LatestOfType {
                event_type: ty.clone(),
                tenant: t.clone(),
                event,
                delivery,
            });
        }
    }
    Ok(out)
}

/// Records a test send.
pub(super) fn record_endpoint_test(conn: &Connection, t: EndpointTest) -> Result<()> {
    let a = &t.attempt;
    let headers = to_json(&a.response_headers)?;
    conn.prepare_cached(
        "INSERT INTO endpoint_tests (id, endpoint_id, event_id, event_type, payload, succeeded, at, \
         duration_ms, status_code, error, error_detail, response_headers_json, response_snippet) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .and_then(|mut s| {
        s.execute(params![
            a.id.as_str(),
            t.endpoint.as_str(),
            t.event.as_str(),
            t.event_type.as_str(),
            &*t.payload,
            t.succeeded,
            a.at.0,
            a.duration_ms as i64,
            a.status_code,
            a.error.map(|e| e.as_str()),
            a.error_detail,
            headers,
            a.response_snippet
        ])
    })
    .map_err(db_err)
    .map(drop)
}

/// An endpoint's test sends, newest first.
pub(super) fn list_endpoint_tests(
    conn: &mut Connection,
    owner: &Owner,
    endpoint: &EndpointId,
    page: PageRequest,
) -> Result<Page<EndpointTest>> {
    let tx = conn.transaction().map_err(db_err)?;
    check_owner(&tx, owner, endpoint)?;
    let sql = format!(
        "SELECT {TEST_COLS} FROM endpoint_tests WHERE endpoint_id = ?1 AND (?2 IS NULL OR id < ?2) \
         ORDER BY id DESC LIMIT ?3"
    );
    let p = params![endpoint.as_str(), page.after, fetch_limit(&page)];
    let items = all(&tx, &sql, p, rows::endpoint_test)?;
    Ok(into_page(items, &page, |t| t.attempt.id.to_string()))
}

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

/// A new pending delivery of an event to the endpoint, unclaimed and due now.
fn insert_delivery(
    conn: &Connection,
    e: &Event,
    endpoint: &EndpointId,
    now: Timestamp,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status, attempts, \
         round_attempts, round_started_at, next_attempt_at, locked_by, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, 0, ?6, ?6, NULL, ?6, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            DeliveryId::new().as_str(),
            e.id.as_str(),
            endpoint.as_str(),
            e.tenant.as_str(),
            e.event_type.as_str(),
            now.0
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
                        insert_delivery(conn, &e, &ep.id, now)?;
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
                        insert_delivery(conn, e, &ep.id, now)?;
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
