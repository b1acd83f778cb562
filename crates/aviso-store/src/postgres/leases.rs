//! Node leases: a claim lives as long as its node keeps renewing its row in `nodes`.

use super::error::db_err;
use crate::Result;
use deadpool_postgres::{GenericClient, Pool};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio::task::AbortHandle;

/// The nodes this store claims for, and how long their leases last.
pub(super) struct Leases {
    lease: Duration,
    /// Claims respect endpoint ownership (see `owners`).
    pub(super) exclusive: bool,
    nodes: Mutex<BTreeSet<String>>,
}

impl Leases {
    /// No nodes yet.
    pub(super) fn new(lease: Duration, exclusive: bool) -> Self {
        Self {
            lease,
            exclusive,
            nodes: Mutex::new(BTreeSet::new()),
        }
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    fn known(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives `node` a live lease in the caller's transaction, before it claims
    /// anything, so no sweeper mistakes its fresh claims for a dead node's.
    pub(super) async fn ensure(&self, c: &impl GenericClient, node: &str) -> Result<()> {
        if self.lock().contains(node) {
            return Ok(());
        }
        renew(c, &[node.to_owned()], self.lease_ms()).await?;
        self.lock().insert(node.to_owned());
        Ok(())
    }
}

/// Extends the leases of `nodes` (recreating rows a sweeper removed).
async fn renew(c: &impl GenericClient, nodes: &[String], lease_ms: i64) -> Result<()> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO nodes (node, lease_until) \
             SELECT n, now() + $2::bigint * interval '1 millisecond' FROM unnest($1::text[]) n \
             ON CONFLICT (node) DO UPDATE SET lease_until = EXCLUDED.lease_until",
        )
        .await
        .map_err(db_err)?;
    c.execute(&stmt, &[&nodes, &lease_ms])
        .await
        .map_err(db_err)
        .map(drop)
}

/// Releases the claims of nodes whose lease ran out and forgets those nodes.
/// Returns how many deliveries were released; wakes idle workers if any.
pub(super) async fn sweep(c: &impl GenericClient) -> Result<u64> {
    let stmt = c
        .prepare_cached(
            "WITH dead AS (DELETE FROM nodes WHERE lease_until < now() RETURNING node), \
             owned AS (DELETE FROM endpoint_owners WHERE node IN (SELECT node FROM dead)) \
             UPDATE deliveries SET locked_by = NULL \
             WHERE locked_by IS NOT NULL AND locked_by IN (SELECT node FROM dead)",
        )
        .await
        .map_err(db_err)?;
    let released = c.execute(&stmt, &[]).await.map_err(db_err)?;
    if released > 0 {
        super::notify::work_due(c).await?;
    }
    Ok(released)
}

/// This node stops for good: its lease ends now, its claims and endpoints
/// are released, and idle nodes are woken to take them.
pub(super) async fn leave(c: &impl GenericClient, leases: &Leases, node: &str) -> Result<u64> {
    leases.lock().remove(node);
    let stmt = c
        .prepare_cached(
            "WITH gone AS (DELETE FROM nodes WHERE node = $1), \
             owned AS (DELETE FROM endpoint_owners WHERE node = $1) \
             UPDATE deliveries SET locked_by = NULL WHERE locked_by = $1",
        )
        .await
        .map_err(db_err)?;
    let released = c.execute(&stmt, &[&node]).await.map_err(db_err)?;
    super::notify::work_due(c).await?;
    Ok(released)
}

/// Like [`sweep`], and also releases claims of nodes that have no lease row
/// at all, never those of `node` (the caller, whose first lease may commit
/// with its first claims while this runs).
pub(super) async fn recover(c: &impl GenericClient, node: &str) -> Result<u64> {
    let stmt = c
        .prepare_cached(
            "WITH dead AS (DELETE FROM nodes WHERE lease_until < now() RETURNING node) \
             UPDATE deliveries d SET locked_by = NULL \
             WHERE d.locked_by IS NOT NULL AND d.locked_by <> $1 AND NOT EXISTS \
               (SELECT 1 FROM nodes n WHERE n.node = d.locked_by AND n.lease_until >= now())",
        )
        .await
        .map_err(db_err)?;
    let released = c.execute(&stmt, &[&node]).await.map_err(db_err)?;
    if released > 0 {
        super::notify::work_due(c).await?;
    }
    Ok(released)
}

/// Renews this store's leases and sweeps dead nodes every third of a lease.
pub(super) fn spawn_keeper(pool: Pool, leases: std::sync::Arc<Leases>) -> AbortHandle {
    let every = (leases.lease / 3).max(Duration::from_millis(100));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = keep(&pool, &leases).await {
                tracing::warn!(error = %e, "renewing leases failed; retrying");
            }
        }
    })
    .abort_handle()
}

/// One tick of the keeper.
#[tracing::instrument(skip_all)]
async fn keep(pool: &Pool, leases: &Leases) -> Result<()> {
    let conn = pool.get().await.map_err(super::error::pool_err)?;
    let nodes = leases.known();
    if !nodes.is_empty() {
        renew(&conn, &nodes, leases.lease_ms()).await?;
    }
    let released = sweep(&conn).await?;
    if released > 0 {
        tracing::info!(released, "released the claims of nodes whose lease ran out");
    }
    if leases.exclusive && !nodes.is_empty() {
        let mut conn = conn;
        let idle = super::owners::release_idle(&mut conn, &nodes).await?;
        if idle > 0 {
            tracing::debug!(idle, "gave up idle endpoints");
        }
    }
    Ok(())
}
