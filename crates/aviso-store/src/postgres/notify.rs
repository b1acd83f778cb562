//! `LISTEN/NOTIFY`: wake-ups and cache invalidation between nodes.
//!
//! Notifications are sent inside the transaction that causes them, so they
//! go out at commit and never for rolled-back work. Each store keeps one
//! listening connection and re-subscribes after losing it; since
//! notifications sent meanwhile are lost, it then reports a `Resync`.
//! Channel names end with the schema, so installations (or tests) in
//! different schemas of one database do not hear each other.

use super::error::db_err;
use crate::{Result, StoreSignal};
use aviso_core::EndpointId;
use deadpool_postgres::GenericClient;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::task::AbortHandle;
use tokio_postgres::{AsyncMessage, NoTls};

/// Channel for "deliveries became due that no node holds".
const WORK: &str = "aviso.w:";
/// Channel for "this endpoint changed"; the payload is its id.
const ENDPOINT: &str = "aviso.e:";

/// Channel for "an API key or a tenant was deleted".
const KEYS: &str = "aviso.k:";

/// Tells every node to forget cached API keys (at commit).
pub(super) async fn keys_changed(c: &impl GenericClient) -> Result<()> {
    let stmt = c
        .prepare_cached("SELECT pg_notify('aviso.k:' || current_schema(), '')")
        .await
        .map_err(db_err)?;
    c.execute(&stmt, &[]).await.map_err(db_err).map(drop)
}

/// Tells every node that unclaimed work is due (at commit).
pub(super) async fn work_due(c: &impl GenericClient) -> Result<()> {
    let stmt = c
        .prepare_cached("SELECT pg_notify('aviso.w:' || current_schema(), '')")
        .await
        .map_err(db_err)?;
    c.execute(&stmt, &[]).await.map_err(db_err).map(drop)
}

/// Tells every node that an endpoint changed or was deleted (at commit).
pub(super) async fn endpoint_changed(c: &impl GenericClient, id: &str) -> Result<()> {
    let stmt = c
        .prepare_cached("SELECT pg_notify('aviso.e:' || current_schema(), $1)")
        .await
        .map_err(db_err)?;
    c.execute(&stmt, &[&id]).await.map_err(db_err).map(drop)
}

/// Listens on its own connection for as long as the store lives.
pub(super) fn spawn_listener(
    cfg: tokio_postgres::Config,
    signals: broadcast::Sender<StoreSignal>,
) -> AbortHandle {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            match listen(&cfg, &signals).await {
                Ok(()) => backoff = Duration::from_millis(200),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                        "PostgreSQL listener lost its connection");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    })
    .abort_handle()
}

/// Subscribes and forwards notifications until the connection ends.
async fn listen(
    cfg: &tokio_postgres::Config,
    signals: &broadcast::Sender<StoreSignal>,
) -> std::result::Result<(), tokio_postgres::Error> {
    let (client, mut conn) = cfg.connect(NoTls).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    // The connection must be polled for the client's queries to run; it also
    // yields the notifications.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(n).is_err() {
                        return Ok(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    });
    let schema: String = client
        .query_one("SELECT current_schema()", &[])
        .await?
        .get(0);
    let (work, endpoint, keys) = (
        format!("{WORK}{schema}"),
        format!("{ENDPOINT}{schema}"),
        format!("{KEYS}{schema}"),
    );
    client
        .batch_execute(&format!(
            "LISTEN {}; LISTEN {}; LISTEN {}",
            quoted(&work),
            quoted(&endpoint),
            quoted(&keys)
        ))
        .await?;
    tracing::debug!("listening for PostgreSQL notifications");
    // Anything may have happened while no one was listening.
    let _ = signals.send(StoreSignal::Resync);
    while let Some(n) = rx.recv().await {
        let signal = match n.channel() {
            c if c == work => StoreSignal::WorkDue,
            c if c == endpoint => {
                StoreSignal::EndpointChanged(EndpointId::from_trusted(n.payload().into()))
            }
            c if c == keys => StoreSignal::KeysChanged,
            _ => continue,
        };
        let _ = signals.send(signal);
    }
    drop(client);
    match driver.await {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}

/// A channel name as a quoted SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
