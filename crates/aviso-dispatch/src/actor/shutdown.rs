//! Graceful shutdown of the actor.

use super::{Actor, Event, ABORT_WAIT};
use crate::dispatcher::release;
use aviso_core::DeliveryId;
use tokio::time::Instant;

impl Actor {
    /// Stops taking work, lets sends finish within the grace period (aborting
    /// the rest), flushes the outcome writer, then releases every claim still
    /// held: after the outcomes, so a late `keep_claim` write cannot follow it.
    pub(super) async fn shutdown(mut self) {
        self.stopping = true;
        self.ready_rx.close();
        while let Ok(job) = self.ready_rx.try_recv() {
            self.to_release.push(job.delivery);
        }
        let queued = self.lanes.take_all_queued().into_iter();
        let loading = self.loading.drain().flat_map(|(_, l)| l.jobs);
        let held = queued.chain(self.timers.drain()).chain(loading);
        let held: Vec<DeliveryId> = held.map(|j| j.delivery).collect();
        self.to_release.extend(held);
        tracing::info!(in_flight = self.lanes.in_flight(), "dispatcher stopping");

        self.drain_events(Instant::now() + self.cfg.shutdown_grace)
            .await;
        if self.lanes.in_flight() > 0 {
            tracing::warn!(
                in_flight = self.lanes.in_flight(),
                "grace period over; aborting sends"
            );
            self.abort_sends.cancel();
            self.drain_events(Instant::now() + ABORT_WAIT).await;
        }
        drop(self.outcome_tx.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.await;
        }
        let ids = std::mem::take(&mut self.to_release);
        if !ids.is_empty() {
            release(&*self.store, &ids).await;
        }
        tracing::info!("dispatcher stopped");
    }

    /// Handles reports until no send, load or scan is outstanding, or `deadline`.
    async fn drain_events(&mut self, deadline: Instant) {
        while self.lanes.in_flight() > 0 || self.scanning || !self.loading.is_empty() {
            match tokio::time::timeout_at(deadline, self.events_rx.recv()).await {
                Ok(Some(ev)) => {
                    if let Event::Loaded { id, .. } = &ev {
                        // Loaded jobs would only be released: skip the result.
                        if let Some(l) = self.loading.remove(id) {
                            self.to_release
                                .extend(l.jobs.into_iter().map(|j| j.delivery));
                        }
                        continue;
                    }
                    self.on_event(ev).await;
                }
                _ => return,
            }
        }
    }
}
