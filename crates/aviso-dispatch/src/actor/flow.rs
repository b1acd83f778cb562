//! Flow control in the actor: starting sends within an endpoint's effective
//! limit (AIMD, circuit, rate limit, ordering), learning from each outcome,
//! and disabling an endpoint that has failed for too long.

use super::{instant_at, Actor, Event};
use crate::health::{Health, Signal, Verdict};
use crate::outcomes::Write;
use crate::rate::Bucket;
use aviso_core::model::{AttemptError, Endpoint};
use aviso_core::{EndpointId, Timestamp};
use aviso_store::{DispatchJob, NextStep, StoreError};
use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

/// How long a held FIFO key waits for its head beyond the head's due time
/// before the rest go ahead anyway (the head was lost, e.g. cancelled).
const MIN_HOLD_GRACE: Duration = Duration::from_secs(60);

impl Actor {
    /// Starts sends from an endpoint's lane up to its effective limit.
    pub(super) fn pump(&mut self, endpoint: &Arc<Endpoint>) {
        let policy = &endpoint.spec.policy;
        let id = &endpoint.id;
        let max = usize::from(policy.max_in_flight.0).max(1);
        let (wall, now) = (Timestamp::now(), Instant::now());
        let mut next_token = None;
        loop {
            let limit = match self.health.get(id).filter(|_| policy.adaptive) {
                Some(h) => h.allowed(max, wall),
                None => max,
            };
            let mut bucket = policy.rate_limit.map(|r| {
                let b = self
                    .buckets
                    .entry(id.clone())
                    .or_insert_with(|| Bucket::new(r.0, now));
                b.set_rate(r.0);
                b
            });
            let admit = || match bucket.as_mut().map(|b| b.take(now)) {
                None | Some(Ok(())) => true,
                Some(Err(at)) => {
                    next_token = Some(at);
                    false
                }
            };
            let Some(started) = self.lanes.start_next(id, limit, wall, admit) else {
                break;
            };
            if let Some(h) = self.health.get_mut(id).filter(|_| policy.adaptive) {
                h.on_start(wall);
            }
            self.spawn_send(started, endpoint.clone());
        }
        if let Some(at) = next_token {
            self.wake_at(id, at);
        }
        let probe = self.health.get(id).and_then(Health::probe_at);
        if let Some(at) = probe.filter(|at| *at > wall && policy.adaptive) {
            self.wake_at(id, instant_at(at));
        }
    }

    /// Pumps `id` again at `at` (a rate-limit token, a circuit probe).
    fn wake_at(&mut self, id: &EndpointId, at: Instant) {
        if self.wake_at.get(id).is_some_and(|t| *t <= at) {
            return;
        }
        self.wake_at.insert(id.clone(), at);
        self.wakeups.push(Reverse((at, id.clone())));
    }

    /// The earliest pending wake-up.
    pub(super) fn next_wakeup(&self) -> Option<Instant> {
        self.wakeups.peek().map(|Reverse((at, _))| *at)
    }

    /// Pumps the endpoints whose wake-up is due.
    pub(super) fn fire_wakeups(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, id))) = self.wakeups.peek().cloned() {
            if at > now {
                break;
            }
            self.wakeups.pop();
            if self.wake_at.get(&id) == Some(&at) {
                self.wake_at.remove(&id);
            }
            if let Some(ep) = self.endpoints.get(&id).cloned() {
                if ep.spec.enabled {
                    self.pump(&ep);
                }
            }
        }
    }

    /// Learns from a finished attempt: adaptive limits and circuit, the FIFO
    /// hold of a head waiting for its retry, and disabling a failing endpoint.
    pub(super) fn observe(
        &mut self,
        job: &DispatchJob,
        key: Option<String>,
        endpoint: &Endpoint,
        (status, error): (Option<u16>, Option<AttemptError>),
        next: &NextStep,
    ) {
        let policy = &endpoint.spec.policy;
        if let (Some(key), NextStep::Retry { at, .. }) = (key, next) {
            let grace = MIN_HOLD_GRACE.max(self.cfg.scan_interval * 10);
            let until = at.plus(grace);
            self.lanes
                .hold(&job.endpoint, key, job.delivery.clone(), until);
        }
        if status == Some(410) && self.cfg.disable_on_gone {
            let reason = format!(
                "disabled by Aviso at {}: the receiver answered 410 Gone",
                Timestamp::now().to_rfc3339()
            );
            self.spawn_disable(endpoint.id.clone(), reason);
            return;
        }
        if !policy.adaptive {
            self.health.remove(&endpoint.id);
            return;
        }
        let max = usize::from(policy.max_in_flight.0).max(1);
        let now = Timestamp::now();
        let signal = signal_of(status, error, next);
        let health = self
            .health
            .entry(endpoint.id.clone())
            .or_insert_with(|| Health::new(max));
        let was_open = health.is_open();
        let verdict = health.record(
            signal,
            max,
            now,
            self.cfg.circuit_probe_interval,
            policy.disable_after.0 .0,
        );
        if health.is_open() != was_open {
            tracing::info!(endpoint = %endpoint.id, open = health.is_open(), "circuit changed");
        }
        tracing::trace!(endpoint = %endpoint.id, limit = health.limit(), ?signal, "adaptive limit");
        if let Verdict::Disable { since } = verdict {
            let reason = format!(
                "disabled by Aviso at {}: every attempt failed since {} (disable_after {})",
                now.to_rfc3339(),
                since.to_rfc3339(),
                policy.disable_after.0
            );
            self.spawn_disable(endpoint.id.clone(), reason);
        }
    }

    /// Forgets flow state that no longer matters once a lane is gone.
    pub(super) fn tidy(&mut self, endpoint: &Endpoint) {
        let id = &endpoint.id;
        if self.lanes.has(id) {
            return;
        }
        let max = usize::from(endpoint.spec.policy.max_in_flight.0).max(1);
        if self.health.get(id).is_some_and(|h| h.is_pristine(max)) {
            self.health.remove(id);
        }
        let now = Instant::now();
        if self.buckets.get_mut(id).is_some_and(|b| b.is_full(now)) {
            self.buckets.remove(id);
        }
    }

    /// Disables an endpoint in the store (which cancels its pending
    /// deliveries), then drops it from this node's cache. Nothing more is
    /// sent to it from now on.
    fn spawn_disable(&mut self, id: EndpointId, reason: String) {
        tracing::warn!(endpoint = %id, %reason, "disabling endpoint");
        if let Some(ep) = self.endpoints.get(&id) {
            let mut off = Endpoint::clone(ep);
            off.spec.enabled = false;
            self.endpoints.insert(id.clone(), Arc::new(off));
        }
        let store = self.store.clone();
        let tx = self.events_tx.clone();
        let writer = self.outcome_tx.clone();
        let task = async move {
            // The outcomes that led here are written first, so disabling
            // (which cancels pending deliveries) does not overtake them.
            let (done, written) = tokio::sync::oneshot::channel();
            if let Some(w) = writer {
                if w.send(Write::Barrier(done)).await.is_ok() {
                    let _ = written.await;
                }
            }
            let result = async {
                let mut ep = store.get_endpoint_by_id(&id).await?;
                if ep.spec.enabled {
                    ep.spec.enabled = false;
                    ep.disabled_reason = Some(reason);
                    ep.updated_at = Timestamp::now();
                    store.update_endpoint(ep).await?;
                }
                Ok::<_, StoreError>(())
            }
            .await;
            if let Err(err) = result {
                tracing::warn!(endpoint = %id, error = %err, "disabling endpoint failed");
            }
            let _ = tx.send(Event::Disabled { id });
        };
        self.tracker
            .spawn(task.instrument(tracing::info_span!("disable_endpoint")));
    }

    /// An endpoint was disabled by this node: forget its flow state.
    pub(super) fn on_disabled(&mut self, id: EndpointId) {
        self.health.remove(&id);
        self.buckets.remove(&id);
        self.lanes.forget_holds(&id);
        self.invalidate(id);
    }
}

/// How an attempt reflects on the receiver's health.
fn signal_of(status: Option<u16>, error: Option<AttemptError>, next: &NextStep) -> Signal {
    if *next == NextStep::Succeeded {
        return Signal::Success;
    }
    match (error, status) {
        (
            Some(
                AttemptError::Timeout
                | AttemptError::Connect
                | AttemptError::Dns
                | AttemptError::Tls,
            ),
            _,
        ) => Signal::Sick,
        (_, Some(s)) if s >= 500 || s == 429 || s == 408 => Signal::Sick,
        _ => Signal::Refused,
    }
}
