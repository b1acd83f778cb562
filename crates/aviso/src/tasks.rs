//! The task runner: bulk operations (resend failed, send latest, replay) run
//! here, batch by batch, on whichever node claims them. Each batch is one
//! store transaction with the task's progress, so a task survives restarts
//! and resumes where it stopped; the deliveries it makes pending are
//! unclaimed and due now, so dispatchers pick them up through their normal
//! scan, beside live traffic, never ahead of it.

use aviso_core::Timestamp;
use aviso_dispatch::DispatchHandle;
use aviso_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Items per batch (one transaction each).
const BATCH: usize = 200;
/// How long a claimed task stays this node's without progress.
const LEASE: Duration = Duration::from_secs(30);
/// Pause between batches, so publishes and outcomes share the store fairly.
const PAUSE: Duration = Duration::from_millis(5);
/// How often an idle runner looks for tasks created on other nodes.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// What the runner needs.
#[derive(Clone)]
pub struct Runner {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// This node's name (holds claimed tasks).
    pub node: String,
    /// Woken after each batch that made deliveries pending.
    pub dispatch: Option<DispatchHandle>,
}

impl Runner {
    /// Runs tasks until `cancel` fires; `wake` says a task was just created here.
    pub fn spawn(self, wake: Arc<Notify>, tracker: &TaskTracker, cancel: CancellationToken) {
        tracker.spawn(async move {
            loop {
                let worked = match self.tick(&cancel).await {
                    Ok(worked) => worked,
                    Err(e) => {
                        tracing::warn!(error = %e, "running a task failed; trying again");
                        false
                    }
                };
                if worked {
                    continue;
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
                if cancel.is_cancelled() {
                    return;
                }
            }
        });
    }

    /// Claims one task and runs its batches until it is finished (or the
    /// node stops: the task then waits for its hold to lapse and resumes
    /// elsewhere or after restart). Returns whether there was a task.
    pub async fn tick(&self, cancel: &CancellationToken) -> aviso_store::Result<bool> {
        let now = Timestamp::now();
        let Some(task) = self
            .store
            .claim_task(&self.node, now, now.plus(LEASE))
            .await?
        else {
            return Ok(false);
        };
        tracing::info!(task = %task.id, kind = task.spec.kind(), endpoint = %task.endpoint, "running task");
        let mut queued = task.queued;
        loop {
            if cancel.is_cancelled() {
                return Ok(true);
            }
            let now = Timestamp::now();
            let t = self
                .store
                .step_task(&task.id, &self.node, now, now.plus(LEASE), BATCH)
                .await?;
            if t.queued > queued {
                queued = t.queued;
                if let Some(d) = &self.dispatch {
                    d.wake();
                }
            }
            if t.status.is_finished() {
                tracing::info!(task = %t.id, status = t.status.as_str(), processed = t.processed,
                    queued = t.queued, error = t.error.as_deref(), "task finished");
                return Ok(true);
            }
            tokio::time::sleep(PAUSE).await;
        }
    }
}
