//! Wires store, dispatcher and API together, and shuts them down in order.

use crate::config::Config;
use aviso_api::auth::{generate_key, hash_key};
use aviso_api::{ApiConfig, ApiState};
use aviso_core::model::{ApiKey, KeyScope};
use aviso_core::{KeyId, Timestamp};
use aviso_dispatch::{DispatchHandle, Dispatcher, DispatcherConfig, Sender, SenderConfig};
use aviso_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Connections the kernel queues for `accept` before it drops new ones.
///
/// Tokio's `TcpListener::bind` asks for 128; a burst of more (a sender's
/// pool opening connections at once) then loses SYNs, which TCP resends only
/// after a second: a 1 s stall for every request waiting on them. Linux caps
/// the value at `net.core.somaxconn` (4096 by default).
pub const LISTEN_BACKLOG: u32 = 4096;

/// A TCP listener on `addr` with [`LISTEN_BACKLOG`].
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restart may reuse a port in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Opens the database and applies migrations.
pub async fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let opts = aviso_store::OpenOptions {
        lease: cfg.postgres.lease.get(),
        pool_size: cfg.postgres.pool_size,
        exclusive_endpoints: cfg.postgres.exclusive_endpoints,
    };
    aviso_store::open_with(&cfg.database_url, opts)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot open database `{}`: {e}",
                aviso_store::display_url(&cfg.database_url)
            )
        })
}

/// Makes sure an admin key exists: the configured one, or a stored one. On
/// the very first start without a configured key, generates one and returns it
/// so the caller can print it once.
pub async fn bootstrap_admin(cfg: &Config, store: &dyn Store) -> anyhow::Result<Option<String>> {
    if cfg.admin_key.is_some() || store.has_admin_key().await? {
        return Ok(None);
    }
    let key = generate_key();
    store
        .create_api_key(ApiKey {
            id: KeyId::new(),
            scope: KeyScope::Admin,
            name: "admin (generated on first start)".into(),
            hash: hash_key(&key),
            created_at: Timestamp::now(),
        })
        .await?;
    Ok(Some(key))
}

fn sender_config(cfg: &Config) -> SenderConfig {
    SenderConfig {
        allow_http: cfg.allow_http,
        allow_private_destinations: cfg.allow_private_destinations,
        response_snippet_bytes: cfg.limits.response_snippet_bytes,
        user_agent: format!("Aviso/{}", env!("CARGO_PKG_VERSION")),
        proxy: cfg.egress.proxy.clone(),
        bind_address: cfg.egress.bind_address,
    }
}

fn dispatcher_config(cfg: &Config, node_id: String) -> DispatcherConfig {
    let d = &cfg.dispatcher;
    DispatcherConfig {
        node_id,
        ready_queue: d.ready_queue,
        lane_queue: d.lane_queue,
        timer_capacity: d.timer_capacity,
        scan_interval: d.scan_interval.get(),
        scan_batch: d.scan_batch,
        shutdown_grace: d.shutdown_grace.get(),
        outcome_batch: 512,
        circuit_probe_interval: d.circuit_probe_interval.get(),
        disable_on_gone: d.disable_on_gone,
        sender: sender_config(cfg),
    }
}

/// The signer of portal links and page sessions (see `[portal]`).
fn portal_signer(cfg: &Config) -> aviso_api::signed::Signer {
    let (signer, from) = cfg.portal.signer(cfg.admin_key.as_deref());
    if from == "random" {
        tracing::info!(
            "portal links and sessions are signed with a key of this process: they end when it stops; set portal.secret to keep them across restarts and nodes"
        );
    }
    signer
}

/// Releases, beside the starting server, the claims a previous run left
/// (SQLite reads the whole deliveries table for them, about a second per
/// million rows, so serving does not wait); released deliveries are due
/// again and the dispatcher's scan takes them. Retried until it succeeds.
fn spawn_recovery(
    store: Arc<dyn Store>,
    node: String,
    tracker: &TaskTracker,
    cancel: CancellationToken,
) {
    tracker.spawn(async move {
        loop {
            match store.recover_claims(&node).await {
                Ok(recovered) => {
                    if recovered > 0 {
                        tracing::info!(recovered, "released claims left by the previous run");
                    }
                    return;
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "releasing claims left by the previous run failed; trying again in 1 s"
                ),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
}

/// Runs API and dispatcher (as `cfg.role` says) on `listener` until `cancel` fires, then stops
/// taking requests, lets in-flight deliveries finish within the grace period,
/// flushes outcomes, and returns.
pub async fn run(
    cfg: Config,
    store: Arc<dyn Store>,
    listener: TcpListener,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let tracker = TaskTracker::new();
    let dispatch_cancel = CancellationToken::new();
    // Before anything records: the dispatcher keeps the handles it registers.
    let metrics = if cfg.metrics {
        crate::telemetry::prometheus()
    } else {
        None
    };
    let node_id = format!(
        "node-{}",
        aviso_core::KeyId::new().as_str().trim_start_matches("key_")
    );
    spawn_recovery(
        store.clone(),
        node_id.clone(),
        &tracker,
        dispatch_cancel.clone(),
    );
    let dispatch: Option<DispatchHandle> = if cfg.role.dispatches() {
        let d = Dispatcher::try_start(
            store.clone(),
            dispatcher_config(&cfg, node_id.clone()),
            dispatch_cancel.clone(),
            &tracker,
        )
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client (check `egress`): {e}"))?;
        Some(d)
    } else {
        None
    };
    let api = ApiConfig {
        allow_http: cfg.allow_http,
        max_body_bytes: cfg.limits.max_body_bytes,
        default_policy: cfg.delivery.policy(),
        secret_rotation_grace: cfg.secret_rotation_grace,
        admin_key_hash: cfg.admin_key.as_deref().map(hash_key),
        retention: cfg.retention.period,
        signer: portal_signer(&cfg),
        public_url: cfg.portal.public_url.clone(),
    };
    let node = dispatch.as_ref().map(|d| d.node_id().to_owned());
    let sender = Sender::new(sender_config(&cfg))
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client (check `egress`): {e}"))?;
    let state = match &dispatch {
        Some(d) => ApiState::new(store.clone(), d.clone(), api),
        None => ApiState::without_dispatcher(store.clone(), api),
    }
    .with_sender(sender)
    .with_stopping(cancel.clone());
    crate::tasks::Runner {
        store: store.clone(),
        node: node_id,
        dispatch: dispatch.clone(),
    }
    .spawn(state.tasks.clone(), &tracker, dispatch_cancel.clone());
    if cfg.role.dispatches() {
        crate::retention::spawn(
            store.clone(),
            cfg.retention.clone(),
            &tracker,
            dispatch_cancel.clone(),
        );
    }
    crate::signals::follow(
        &store,
        dispatch,
        state.keys.clone(),
        state.catalog.clone(),
        &tracker,
        dispatch_cancel.clone(),
    );
    let mut app = if cfg.role.serves_api() {
        let mut app = aviso_api::router(state.clone());
        if cfg.portal.enabled {
            let source = metrics
                .clone()
                .map(|h| Arc::new(move || h.render()) as aviso_portal::MetricsSource);
            app = app.merge(aviso_portal::router(
                state,
                aviso_portal::PortalConfig {
                    session_ttl: cfg.portal.session_ttl.get(),
                    metrics: source,
                },
            ));
        }
        app
    } else {
        aviso_api::health_router(state)
    };
    {
        if let Some(handle) = metrics {
            app = app.merge(crate::telemetry::router(
                handle,
                &tracker,
                dispatch_cancel.clone(),
            ));
        }
    }
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(cancel.clone().cancelled_owned())
        .await;
    tracing::info!("API stopped; draining deliveries");
    dispatch_cancel.cancel();
    tracker.close();
    let deadline = cfg.dispatcher.shutdown_grace.get() + Duration::from_secs(5);
    if tokio::time::timeout(deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("dispatcher did not stop in time; unfinished deliveries stay pending");
    }
    if let Some(node) = node {
        // Hand what is left to the other nodes now rather than when the lease runs out.
        if let Err(e) = store.leave(&node).await {
            tracing::warn!(error = %e, "could not release this node's lease; it expires by itself");
        }
    }
    served.map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 300 clients connecting at once all get through while nothing accepts:
    /// the kernel queues them. With Tokio's default backlog of 128 the rest
    /// would have their SYNs dropped and wait for a resend (and, with nothing
    /// accepting, never connect).
    #[tokio::test]
    async fn a_burst_of_connections_is_queued_not_dropped() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut connects = tokio::task::JoinSet::new();
        for _ in 0..300 {
            connects.spawn(tokio::net::TcpStream::connect(addr));
        }
        let streams = tokio::time::timeout(Duration::from_secs(10), connects.join_all())
            .await
            .expect("every connection queued by the kernel");
        assert!(streams.iter().all(Result::is_ok));
        for _ in 0..300 {
            listener.accept().await.unwrap();
        }
    }
}
