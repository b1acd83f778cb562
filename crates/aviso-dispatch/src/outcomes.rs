//! The outcome writer: batches finished attempts into one store call each.

use aviso_store::{AttemptOutcome, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Failed writes of one batch tolerated once shutdown began, before giving up.
const SHUTDOWN_WRITE_TRIES: u32 = 5;

/// What the writer is asked to do.
pub(crate) enum Write {
    /// Record an outcome.
    Outcome(AttemptOutcome),
    /// Signal once everything sent before is written (or given up on).
    Barrier(oneshot::Sender<()>),
}

/// Writes outcomes until every sender is dropped and the channel is drained.
///
/// A failed write is retried with a growing pause; the bounded channel pushes
/// back on the dispatcher meanwhile. Once `cancel` fired, a batch that keeps
/// failing is dropped after a few tries so shutdown ends (those deliveries
/// stay pending and are resent: at-least-once).
pub(crate) async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Write>,
    batch: usize,
    cancel: CancellationToken,
) {
    let batch = batch.max(1);
    let mut buf = Vec::with_capacity(batch);
    while rx.recv_many(&mut buf, batch).await > 0 {
        let mut outcomes = Vec::with_capacity(buf.len());
        for w in buf.drain(..) {
            match w {
                Write::Outcome(o) => outcomes.push(o),
                Write::Barrier(done) => {
                    if !outcomes.is_empty() {
                        write(&*store, std::mem::take(&mut outcomes), &cancel).await;
                    }
                    let _ = done.send(());
                }
            }
        }
        if !outcomes.is_empty() {
            write(&*store, outcomes, &cancel).await;
        }
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(count = outcomes.len()))]
async fn write(store: &dyn Store, outcomes: Vec<AttemptOutcome>, cancel: &CancellationToken) {
    let mut pause = Duration::from_millis(50);
    let mut tries = 0;
    loop {
        let started = std::time::Instant::now();
        match store.record_outcomes(outcomes.clone()).await {
            Ok(()) => {
                crate::telemetry::outcome_batch(outcomes.len(), started.elapsed().as_secs_f64());
                return;
            }
            Err(err) => {
                tries += 1;
                if cancel.is_cancelled() && tries >= SHUTDOWN_WRITE_TRIES {
                    tracing::error!(error = %err, count = outcomes.len(), "dropping outcomes at shutdown");
                    return;
                }
                tracing::warn!(error = %err, tries, "writing outcomes failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}
