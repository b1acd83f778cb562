//! The scheduler half of the actor: the timer heap firing and the store scan.

use super::{Actor, Event};
use aviso_core::Timestamp;
use aviso_store::DispatchJob;
use std::time::Duration;
use tracing::Instrument;

impl Actor {
    pub(super) fn fire_timers(&mut self) {
        for job in self.timers.pop_due(Timestamp::now()) {
            self.route(job);
        }
    }

    /// Claims due work from the store, bounded by the batch size, the lanes'
    /// backlog and the timer heap's free room.
    pub(super) fn request_scan(&mut self) {
        if self.stopping {
            return;
        }
        if self.scanning {
            self.rescan = true;
            return;
        }
        let limit = self
            .cfg
            .scan_batch
            .min(self.cfg.ready_queue.saturating_sub(self.lanes.queued()));
        if limit == 0 {
            return;
        }
        // Work due before the next scan waits in the timer heap; without room
        // for a whole batch there, claim only what is due now (it goes straight
        // to the lanes), so a full heap never stops resends and released retries.
        let horizon = if self.timers.free() >= limit {
            self.cfg.scan_interval
        } else {
            Duration::ZERO
        };
        let due_before = Timestamp::now().plus(horizon);
        self.scanning = true;
        let store = self.store.clone();
        let tx = self.events_tx.clone();
        let node = self.cfg.node_id.clone();
        let exclude = self.lanes.excluded();
        let task = async move {
            let result = store.claim_due(&node, due_before, limit, &exclude).await;
            let _ = tx.send(Event::Scanned { result, limit });
        };
        self.tracker
            .spawn(task.instrument(tracing::debug_span!("scan", limit)));
    }

    /// Shed claims are back in the store. A lane that reopened while they
    /// were being written back has asked for its scan already and may have
    /// missed them, so scan again, but only while no lane is full: a scan
    /// with excluded endpoints reads every other endpoint's due index, too
    /// costly to repeat after each release while a lane keeps shedding (that
    /// lane's reopening, or the tick, scans instead).
    pub(super) fn on_released(&mut self) {
        if !self.lanes.any_excluded() {
            self.request_scan();
        }
    }

    pub(super) fn on_scanned(
        &mut self,
        result: aviso_store::Result<Vec<DispatchJob>>,
        limit: usize,
    ) {
        self.scanning = false;
        let jobs = match result {
            Ok(jobs) => jobs,
            Err(err) => {
                tracing::warn!(error = %err, "scanning for due deliveries failed");
                return;
            }
        };
        let full = jobs.len() >= limit;
        if !jobs.is_empty() {
            tracing::debug!(count = jobs.len(), "claimed due deliveries");
        }
        let now = Timestamp::now();
        for job in jobs {
            if self.stopping {
                self.to_release.push(job.delivery);
            } else if job.due_at <= now {
                self.route(job);
            } else if let Err(delivery) = self.timers.push(job.due_at, job) {
                self.to_release.push(delivery);
            }
        }
        // A full batch means more may be due: keep paging while there is room.
        if full || std::mem::take(&mut self.rescan) {
            self.request_scan();
        }
    }
}
