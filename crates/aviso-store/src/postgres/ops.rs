//! Audit reads beyond plain lists, recorded test sends, and background tasks,
//! each in its caller's transaction.

use super::error::db_err;
use super::notify;
use super::reads::{all, check_owner, fetch_limit, into_page, one, Params};
use super::rows::{self, DELIVERY_COLS, ENDPOINT_COLS, EVENT_COLS, TASK_COLS, TEST_COLS};
use crate::json::to_json;
use crate::{LatestOfType, Page, PageRequest, Result, StoreError};
use aviso_core::model::{DeliveryStatus, Endpoint, Event, Owner};
use aviso_core::name::{any_matches, EventTypeName};
use aviso_core::ops::{EndpointTest, Task, TaskSpec, TaskStatus};
use aviso_core::{DeliveryId, EndpointId, TaskId, TenantId, Timestamp};
use deadpool_postgres::GenericClient;

/// Counts of an endpoint's deliveries by status in a time window.
pub(super) async fn delivery_stats(
    c: &impl GenericClient,
    owner: &Owner,
    endpoint: &EndpointId,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Result<Vec<(DeliveryStatus, u64)>> {
    check_owner(c, owner, endpoint).await?;
    let (since, until) = (since.map(|t| t.0), until.map(|t| t.0));
    let rows = all(
        c,
        "SELECT status, count(*) FROM deliveries WHERE endpoint_id = $1 \
         AND ($2::bigint IS NULL OR created_at >= $2) AND ($3::bigint IS NULL OR created_at < $3) \
         GROUP BY status",
        &[&endpoint.as_str(), &since, &until],
        |r| Ok((rows::get::<String>(r, 0)?, rows::get::<i64>(r, 1)?)),
    )
    .await?;
    rows.into_iter()
        .map(|(s, n)| {
            DeliveryStatus::parse(&s)
                .map(|s| (s, n.max(0) as u64))
                .map_err(|e| StoreError::Other(e.to_string()))
        })
        .collect()
}

async fn owned_endpoint(
    c: &impl GenericClient,
    owner: &Owner,
    id: &EndpointId,
) -> Result<Endpoint> {
    let sql = format!(
        "SELECT {ENDPOINT_COLS} FROM endpoints WHERE id = $1 AND (tenant_id = $2 OR partner_id = $2)"
    );
    one(c, &sql, &[&id.as_str(), &owner.as_str()], rows::endpoint).await
}

/// Catalogue types the endpoint subscribes to, by name.
async fn subscribed_types(c: &impl GenericClient, ep: &Endpoint) -> Result<Vec<EventTypeName>> {
    let names = all(c, "SELECT name FROM event_types ORDER BY name", &[], |r| {
        rows::get::<String>(r, 0)
    })
    .await?;
    Ok(names
        .into_iter()
        .filter(|n| any_matches(&ep.spec.event_types, n))
        .map(EventTypeName::from_trusted)
        .collect())
}

/// Tenants whose events the endpoint receives, by id.
async fn covered_tenants(c: &impl GenericClient, ep: &EndpointId) -> Result<Vec<TenantId>> {
    let ids = all(
        c,
        "SELECT tenant_id FROM endpoint_coverage WHERE endpoint_id = $1 ORDER BY tenant_id",
        &[&ep.as_str()],
        |r| rows::get::<String>(r, 0),
    )
    .await?;
    Ok(ids.into_iter().map(TenantId::from_trusted).collect())
}

async fn latest_of(
    c: &impl GenericClient,
    tenant: &TenantId,
    ty: &EventTypeName,
) -> Result<Option<Event>> {
    let sql = format!(
        "SELECT {EVENT_COLS} FROM events WHERE tenant_id = $1 AND event_type = $2 \
         ORDER BY seq DESC LIMIT 1"
    );
    match one(c, &sql, &[&tenant.as_str(), &ty.as_str()], rows::event).await {
        Ok(e) => Ok(Some(e)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every (subscribed type × covered tenant) with its latest event and that event's delivery.
pub(super) async fn latest_events(
    c: &impl GenericClient,
    owner: &Owner,
    endpoint: &EndpointId,
) -> Result<Vec<LatestOfType>> {
    let ep = owned_endpoint(c, owner, endpoint).await?;
    let tenants = covered_tenants(c, endpoint).await?;
    let dsql = format!(
        "SELECT {DELIVERY_COLS} FROM deliveries WHERE event_id = $1 AND endpoint_id = $2 \
         ORDER BY id DESC LIMIT 1"
    );
    let mut out = Vec::new();
    for ty in subscribed_types(c, &ep).await? {
        for t in &tenants {
            let event = latest_of(c, t, &ty).await?;
            let delivery = match &event {
                Some(e) => {
                    let p: Params = &[&e.id.as_str(), &endpoint.as_str()];
                    match one(c, &dsql, p, rows::delivery).await {
                        Ok(d) => Some(d),
                        Err(StoreError::NotFound) => None,
                        Err(e) => return Err(e),
                    }
                }
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
pub(super) async fn record_endpoint_test(c: &impl GenericClient, t: EndpointTest) -> Result<()> {
    let a = &t.attempt;
    let stmt = c
        .prepare_cached(
            "INSERT INTO endpoint_tests (id, endpoint_id, event_id, event_type, payload, succeeded, at, \
             duration_ms, status_code, error, error_detail, response_headers_json, response_snippet) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .await
        .map_err(db_err)?;
    let duration = i64::try_from(a.duration_ms).unwrap_or(i64::MAX);
    c.execute(
        &stmt,
        &[
            &a.id.as_str(),
            &t.endpoint.as_str(),
            &t.event.as_str(),
            &t.event_type.as_str(),
            &&*t.payload,
            &t.succeeded,
            &a.at.0,
            &duration,
            &a.status_code.map(i32::from),
            &a.error.map(|e| e.as_str()),
            &a.error_detail,
            &to_json(&a.response_headers)?,
            &a.response_snippet,
        ],
    )
    .await
    .map_err(db_err)
    .map(drop)
}

/// An endpoint's test sends, newest first.
pub(super) async fn list_endpoint_tests(
    c: &impl GenericClient,
    owner: &Owner,
    endpoint: &EndpointId,
    page: PageRequest,
) -> Result<Page<EndpointTest>> {
    check_owner(c, owner, endpoint).await?;
    let sql = format!(
        "SELECT {TEST_COLS} FROM endpoint_tests WHERE endpoint_id = $1 AND ($2::text IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    );
    let p: Params = &[&endpoint.as_str(), &page.after, &fetch_limit(&page)];
    let items = all(c, &sql, p, rows::endpoint_test).await?;
    Ok(into_page(items, &page, |t| t.attempt.id.to_string()))
}

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
    endpoint: &EndpointId,
    now: Timestamp,
) -> Result<u64> {
    if events.is_empty() {
        return Ok(0);
    }
    let stmt = c
        .prepare_cached(
            "INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status, \
               attempts, round_attempts, round_started_at, next_attempt_at, locked_by, created_at, \
               updated_at) \
             SELECT u.id, u.ev, $1, u.tenant, u.ty, 'pending', 0, 0, $2, $2, NULL, $2, $2 \
             FROM unnest($3::text[], $4::text[], $5::text[], $6::text[]) \
               WITH ORDINALITY AS u(id, ev, tenant, ty, i) ORDER BY u.i",
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
    c.execute(
        &stmt,
        &[&endpoint.as_str(), &now.0, &ids, &evs, &tenants, &types],
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
                task.queued += insert_deliveries(c, &wanted, &ep.id, now).await?;
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
                task.queued += insert_deliveries(c, &wanted, &ep.id, now).await?;
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
