//! The retention purge: a background task on every node that dispatches.
//! Each run deletes old finished work in bounded batches, one store call at
//! a time, so live publishes and outcome writes interleave with it.

use crate::config::Retention;
use aviso_core::Timestamp;
use aviso_store::{Purged, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Pause between two batches of one run, leaving the writer to live work.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);

/// Runs the purge now and then every `cfg.every` until `cancel` fires.
pub fn spawn(
    store: Arc<dyn Store>,
    cfg: Retention,
    tracker: &TaskTracker,
    cancel: CancellationToken,
) {
    tracker.spawn(async move {
        loop {
            let purged = run_once(&*store, &cfg, &cancel).await;
            if purged.total() > 0 {
                tracing::info!(
                    deliveries = purged.deliveries,
                    attempts = purged.attempts,
                    events = purged.events,
                    "purged records older than the retention period"
                );
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(cfg.every.get()) => {}
            }
        }
    });
}

/// One run: batches until nothing older than the period is left (or a
/// batch fails, or `cancel` fires). Returns what went.
pub async fn run_once(store: &dyn Store, cfg: &Retention, cancel: &CancellationToken) -> Purged {
    let before = Timestamp::now().minus(cfg.period.get());
    let mut sum = Purged::default();
    while !cancel.is_cancelled() {
        match store.purge(before, cfg.batch).await {
            Ok(p) if p.total() == 0 => break,
            Ok(p) => sum += p,
            Err(e) => {
                tracing::warn!(error = %e, "retention purge failed; retrying at the next run");
                break;
            }
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
    sum
}
