//! Group commit of publishes: concurrent requests share one transaction.
//!
//! Publish commands queue on a bounded channel. A writer task takes what has
//! queued up (up to [`BATCH_CAP`]), locks the batch's tenants in key order
//! (so batches of different nodes never deadlock on each other), runs every
//! command, commits once, and only then answers. Commands are plain data, so
//! when one fails the transaction is rolled back and the batch re-run without
//! it: no savepoints, whose subtransactions would overflow PostgreSQL's
//! per-backend cache at this batch size. Two tasks share the queue so one
//! batch collects while the other commits.

use super::leases::Leases;
use super::{lock_tenant, lock_tenant_and_partner_routes, notify, publish, tenant_lock_key};
use crate::{Published, Result, StoreError};
use aviso_core::model::NewEvent;
use deadpool_postgres::{Object, Pool};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::{AbortHandle, JoinSet};

/// Most commands committed in one transaction.
const BATCH_CAP: usize = 256;
/// Commands that may wait for a writer before senders feel back-pressure.
const QUEUE_CAP: usize = 4096;
/// Writer tasks (and connections) per store.
const WRITERS: usize = 2;

struct Cmd {
    ev: NewEvent,
    claim_for: Option<String>,
    reply: oneshot::Sender<Result<Published>>,
}

/// Handle to the writer tasks; they stop when the store aborts them.
pub(super) struct Writer {
    tx: mpsc::Sender<Cmd>,
    task: AbortHandle,
}

impl Writer {
    /// Starts the writer tasks.
    pub(super) fn spawn(pool: Pool, leases: Arc<Leases>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAP);
        let rx = Arc::new(Mutex::new(rx));
        let task = tokio::spawn(async move {
            let mut set = JoinSet::new();
            for _ in 0..WRITERS {
                set.spawn(run(pool.clone(), leases.clone(), rx.clone()));
            }
            while set.join_next().await.is_some() {}
        })
        .abort_handle();
        Self { tx, task }
    }

    /// Aborts the writer tasks (answering queued commands `Unavailable`).
    pub(super) fn abort_handle(&self) -> AbortHandle {
        self.task.clone()
    }

    /// Publishes in the next group commit; returns once committed.
    pub(super) async fn publish(
        &self,
        ev: NewEvent,
        claim_for: Option<String>,
    ) -> Result<Published> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd {
                ev,
                claim_for,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the PostgreSQL writer stopped before committing this event".into())
}

async fn run(pool: Pool, leases: Arc<Leases>, rx: Arc<Mutex<mpsc::Receiver<Cmd>>>) {
    loop {
        let mut batch = Vec::with_capacity(BATCH_CAP);
        {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            batch.push(first);
            while batch.len() < BATCH_CAP {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
        }
        commit(&pool, &leases, batch).await;
    }
}

/// Why a batch did not commit.
enum Failure {
    /// Command `i` failed on its own: answer it and re-run the rest.
    Command(usize, StoreError),
    /// The transaction as a whole failed (connection, commit): answer everyone.
    Batch(StoreError),
}

#[tracing::instrument(skip_all, fields(commands = batch.len()))]
async fn commit(pool: &Pool, leases: &Leases, mut batch: Vec<Cmd>) {
    let mut conn = match pool.get().await {
        Ok(c) => c,
        Err(e) => return answer_all(batch, super::error::pool_err(e)),
    };
    while !batch.is_empty() {
        let started = std::time::Instant::now();
        let size = batch.len();
        let result = attempt(&mut conn, leases, &batch).await;
        crate::commit_observed("postgres", size, started, result.is_ok());
        match result {
            Ok(results) => {
                for (cmd, res) in batch.into_iter().zip(results) {
                    let _ = cmd.reply.send(Ok(res));
                }
                return;
            }
            Err(Failure::Command(i, e)) => {
                let _ = batch.remove(i).reply.send(Err(e));
            }
            Err(Failure::Batch(e)) => {
                tracing::warn!(error = %e, commands = batch.len(), "PostgreSQL group commit failed");
                return answer_all(batch, e);
            }
        }
    }
}

fn answer_all(batch: Vec<Cmd>, e: StoreError) {
    let msg = e.to_string();
    for cmd in batch {
        let err = match &e {
            StoreError::Unavailable(_) => StoreError::Unavailable(msg.clone()),
            _ => StoreError::Unavailable(format!("the event was not stored: {msg}")),
        };
        let _ = cmd.reply.send(Err(err));
    }
}

/// One try at the whole batch in one transaction.
async fn attempt(
    conn: &mut Object,
    leases: &Leases,
    batch: &[Cmd],
) -> std::result::Result<Vec<Published>, Failure> {
    let tx = conn
        .transaction()
        .await
        .map_err(|e| Failure::Batch(super::error::db_err(e)))?;
    let mut tenants: Vec<(i64, &str)> = batch
        .iter()
        .map(|c| (tenant_lock_key(c.ev.tenant.as_str()), c.ev.tenant.as_str()))
        .collect();
    tenants.sort_unstable();
    tenants.dedup_by_key(|t| t.0);
    // The first statement also takes the partner-routes lock, shared: no
    // extra round trip (partner endpoint writers take no tenant lock, so the
    // order between the two cannot deadlock).
    for (i, (_, tenant)) in tenants.into_iter().enumerate() {
        let locked = if i == 0 {
            lock_tenant_and_partner_routes(&tx, tenant).await
        } else {
            lock_tenant(&tx, tenant).await
        };
        locked.map_err(Failure::Batch)?;
    }
    let mut nodes: Vec<&str> = batch
        .iter()
        .filter_map(|c| c.claim_for.as_deref())
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    for node in nodes {
        leases.ensure(&tx, node).await.map_err(Failure::Batch)?;
    }
    let mut cache = publish::BatchCache::default();
    let mut results = Vec::with_capacity(batch.len());
    let mut unclaimed = false;
    for (i, cmd) in batch.iter().enumerate() {
        let claim_for = cmd.claim_for.as_deref();
        match publish::publish(&tx, &mut cache, &cmd.ev, claim_for, leases.exclusive).await {
            Ok((p, left)) => {
                unclaimed |= left;
                results.push(p);
            }
            Err(e @ StoreError::Unavailable(_)) => return Err(Failure::Batch(e)),
            Err(e) => return Err(Failure::Command(i, e)),
        }
    }
    if unclaimed {
        notify::work_due(&tx).await.map_err(Failure::Batch)?;
    }
    tx.commit()
        .await
        .map_err(|e| Failure::Batch(super::error::db_err(e)))?;
    Ok(results)
}
