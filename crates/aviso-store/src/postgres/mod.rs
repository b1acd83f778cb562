//! The PostgreSQL backend: many nodes share one database.
//!
//! Publishes from concurrent requests share transactions (a group-commit
//! writer task per store). Claims are leases: a claim (`locked_by`) lives as
//! long as its node's row in `nodes` is renewed; a background task renews
//! this store's nodes and releases the claims of nodes that stopped renewing.
//! `LISTEN/NOTIFY` carries "new work" and "endpoint changed" between nodes.

mod audit;
mod dispatch;
mod error;
mod leases;
mod notify;
mod owners;
mod publish;
mod reads;
mod retention;
mod rows;
mod schema;
mod store;
mod tasks;
mod writer;
mod writes;

use crate::{Result, StoreError, StoreSignal};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use error::{db_err, pool_err};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use tokio_postgres::NoTls;

/// Tuning of a [`PostgresStore`].
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// How long a node's claims outlive its last lease renewal (renewed every third of it).
    pub lease: Duration,
    /// Most connections this store opens (writer, readers and dispatch share them).
    pub pool_size: usize,
    /// One live node at a time claims an endpoint's deliveries, so per-endpoint
    /// limits enforced in a node's memory hold across nodes.
    pub exclusive_endpoints: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            pool_size: 16,
            exclusive_endpoints: true,
        }
    }
}

/// Waiting longer than this for a connection reports `Unavailable`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Store`](crate::Store) in a PostgreSQL database shared by any number of nodes.
pub struct PostgresStore {
    pool: Pool,
    writer: writer::Writer,
    leases: Arc<leases::Leases>,
    signals: broadcast::Sender<StoreSignal>,
    tasks: Vec<AbortHandle>,
}

impl PostgresStore {
    /// Connects to the database a `postgres://` or `postgresql://` URL names and migrates it.
    pub async fn open(url: &str, opts: PostgresOptions) -> Result<Self> {
        let mut cfg: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Invalid(format!("`{}` is not a PostgreSQL URL: {e}", redact(url)))
        })?;
        if cfg.get_application_name().is_none() {
            cfg.application_name("aviso");
        }
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(CONNECT_TIMEOUT);
        }
        // Notice a silently dead server (a cut network) within a minute or so.
        cfg.keepalives_idle(Duration::from_secs(30));
        let mgr = Manager::from_config(
            cfg.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr)
            .max_size(opts.pool_size.max(2))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Other(format!("cannot build the PostgreSQL pool: {e}")))?;
        let mut conn = pool.get().await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at `{}`: {}",
                redact(url),
                pool_err(e)
            ))
        })?;
        schema::migrate(&mut conn).await?;
        drop(conn);

        let (signals, _) = broadcast::channel(1024);
        let leases = Arc::new(leases::Leases::new(opts.lease, opts.exclusive_endpoints));
        let writer = writer::Writer::spawn(pool.clone(), leases.clone());
        let tasks = vec![
            writer.abort_handle(),
            leases::spawn_keeper(pool.clone(), leases.clone()),
            notify::spawn_listener(cfg, signals.clone()),
        ];
        Ok(Self {
            pool,
            writer,
            leases,
            signals,
            tasks,
        })
    }

    /// A pooled connection.
    async fn conn(&self) -> Result<Object> {
        self.pool.get().await.map_err(pool_err)
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Runs `$body` in a transaction on a pooled connection, committing on success.
macro_rules! in_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut conn = $store.conn().await?;
        let $tx = conn
            .transaction()
            .await
            .map_err($crate::postgres::error::db_err)?;
        let out = $body.await?;
        $tx.commit()
            .await
            .map_err($crate::postgres::error::db_err)?;
        Ok(out)
    }};
}
pub(crate) use in_tx;

use crate::display_url as redact;

/// A stable 64-bit key for a tenant's advisory lock (FNV-1a): every node and
/// every build must compute the same key, which `std`'s hasher does not promise.
fn tenant_lock_key(tenant: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tenant.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// The lock partner endpoint writes take exclusively and publish batches
/// share: a partner endpoint routes many tenants, so locking each would not
/// scale; this one lock makes a publish see such a change whole or not at all
/// (any fixed number will do).
const PARTNER_ROUTES_LOCK: i64 = 0x4156_4953_4f50_4152; // "AVISOPAR"

/// Takes the partner-routes lock exclusively until the transaction ends (a
/// partner endpoint write; publish batches take it shared).
async fn lock_partner_routes(c: &impl deadpool_postgres::GenericClient) -> Result<()> {
    let stmt = c
        .prepare_cached("SELECT pg_advisory_xact_lock($1)")
        .await
        .map_err(db_err)?;
    c.execute(&stmt, &[&PARTNER_ROUTES_LOCK])
        .await
        .map_err(db_err)
        .map(drop)
}

/// A publish batch's first lock statement: the partner-routes lock, shared,
/// and a tenant's lock, both until the transaction ends.
async fn lock_tenant_and_partner_routes(
    c: &impl deadpool_postgres::GenericClient,
    tenant: &str,
) -> Result<()> {
    let stmt = c
        .prepare_cached("SELECT pg_advisory_xact_lock_shared($1), pg_advisory_xact_lock($2)")
        .await
        .map_err(db_err)?;
    c.execute(&stmt, &[&PARTNER_ROUTES_LOCK, &tenant_lock_key(tenant)])
        .await
        .map_err(db_err)
        .map(drop)
}

/// Takes a tenant's advisory lock until the transaction ends.
async fn lock_tenant(c: &impl deadpool_postgres::GenericClient, tenant: &str) -> Result<()> {
    let stmt = c
        .prepare_cached("SELECT pg_advisory_xact_lock($1)")
        .await
        .map_err(db_err)?;
    c.execute(&stmt, &[&tenant_lock_key(tenant)])
        .await
        .map_err(db_err)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable() {
        assert_eq!(tenant_lock_key(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_ne!(tenant_lock_key("ten_a"), tenant_lock_key("ten_b"));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
