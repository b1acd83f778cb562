//! The dispatcher actor: one task owning the endpoint cache, the lanes and
//! the timer heap. Sends, endpoint loads and scans run in their own tasks and
//! report back over one channel, so the loop never waits on the network.

use crate::config::DispatcherConfig;
use crate::decision::{decide, next_try, stop_reason};
use crate::dispatcher::{spawn_release, Wake};
use crate::health::Health;
use crate::lanes::{Lanes, Started};
use crate::outcomes::{self, Write};
use crate::rate::Bucket;
use crate::sender::{Sender, Target};
use crate::timers::Timers;
use aviso_core::model::{Attempt, Endpoint};
use aviso_core::{DeliveryId, EndpointId, Timestamp};
use aviso_store::{AttemptOutcome, DispatchJob, NextStep, Store, StoreError};
use foldhash::{HashMap, HashMapExt};
use rand::Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

mod flow;
mod scan;
mod shutdown;

/// Most fast-path jobs taken from the ready queue per loop turn.
const READY_BATCH: usize = 256;
/// How often the queue and in-flight gauges are sampled.
const GAUGE_EVERY: Duration = Duration::from_secs(1);
/// How long aborted sends get to report back at shutdown.
const ABORT_WAIT: Duration = Duration::from_secs(1);

/// What the actor's helper tasks report.
// `Done` is by far the most frequent report; boxing it to shrink the rare ones
// would add an allocation per attempt.
#[allow(clippy::large_enum_variant)]
enum Event {
    Done {
        job: DispatchJob,
        endpoint: Arc<Endpoint>,
        attempt: Option<Attempt>,
        key: Option<String>,
    },
    Disabled {
        id: EndpointId,
    },
    Loaded {
        id: EndpointId,
        result: aviso_store::Result<Arc<Endpoint>>,
    },
    Scanned {
        result: aviso_store::Result<Vec<DispatchJob>>,
        limit: usize,
    },
    /// Claims this actor shed were written back.
    Released,
}

/// Jobs waiting for their endpoint's configuration to load.
struct Loading {
    jobs: Vec<DispatchJob>,
    /// Invalidated while loading: load again before using the result.
    stale: bool,
}

pub(crate) struct Actor {
    store: Arc<dyn Store>,
    cfg: DispatcherConfig,
    sender: Sender,
    cancel: CancellationToken,
    tracker: TaskTracker,
    ready_rx: mpsc::Receiver<DispatchJob>,
    ready_open: bool,
    invalidate_rx: mpsc::UnboundedReceiver<EndpointId>,
    wake: Arc<Wake>,
    events_tx: mpsc::UnboundedSender<Event>,
    events_rx: mpsc::UnboundedReceiver<Event>,
    outcome_tx: Option<mpsc::Sender<Write>>,
    writer: Option<JoinHandle<()>>,
    endpoints: HashMap<EndpointId, Arc<Endpoint>>,
    /// Endpoints prepared for sending (see [`Actor::target`]).
    targets: HashMap<EndpointId, Arc<Target>>,
    loading: HashMap<EndpointId, Loading>,
    lanes: Lanes,
    timers: Timers,
    health: HashMap<EndpointId, Health>,
    buckets: HashMap<EndpointId, Bucket>,
    wakeups: BinaryHeap<Reverse<(Instant, EndpointId)>>,
    wake_at: HashMap<EndpointId, Instant>,
    to_release: Vec<DeliveryId>,
    attempt_metrics: crate::telemetry::AttemptMetrics,
    scanning: bool,
    rescan: bool,
    stopping: bool,
    abort_sends: CancellationToken,
}

impl Actor {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        store: Arc<dyn Store>,
        cfg: DispatcherConfig,
        sender: Sender,
        cancel: CancellationToken,
        tracker: TaskTracker,
        ready_rx: mpsc::Receiver<DispatchJob>,
        invalidate_rx: mpsc::UnboundedReceiver<EndpointId>,
        wake: Arc<Wake>,
    ) -> Self {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (outcome_tx, outcome_rx) = mpsc::channel(cfg.outcome_batch.max(1) * 4);
        let writer = tracker.spawn(outcomes::run(
            store.clone(),
            outcome_rx,
            cfg.outcome_batch,
            cancel.clone(),
        ));
        Self {
            lanes: Lanes::new(cfg.lane_queue),
            timers: Timers::new(cfg.timer_capacity),
            store,
            cfg,
            sender,
            cancel,
            tracker,
            ready_rx,
            ready_open: true,
            invalidate_rx,
            wake,
            events_tx,
            events_rx,
            outcome_tx: Some(outcome_tx),
            writer: Some(writer),
            endpoints: HashMap::new(),
            targets: HashMap::new(),
            loading: HashMap::new(),
            health: HashMap::new(),
            buckets: HashMap::new(),
            wakeups: BinaryHeap::new(),
            wake_at: HashMap::new(),
            to_release: Vec::new(),
            attempt_metrics: Default::default(),
            scanning: false,
            rescan: false,
            stopping: false,
            abort_sends: CancellationToken::new(),
        }
    }

    /// Runs until `cancel` fires, then shuts down gracefully.
    #[tracing::instrument(name = "dispatcher", skip_all, fields(node = %self.cfg.node_id))]
    pub(crate) async fn run(mut self) {
        self.request_scan();
        let mut tick = tokio::time::interval_at(
            Instant::now() + self.cfg.scan_interval,
            self.cfg.scan_interval,
        );
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut sample = tokio::time::interval(GAUGE_EVERY);
        sample.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut ready = Vec::with_capacity(READY_BATCH);
        loop {
            let next_timer = self.timers.next_at();
            let timer = tokio::time::sleep_until(instant_at(next_timer.unwrap_or_default()));
            let next_wakeup = self.next_wakeup();
            let wakeup = tokio::time::sleep_until(next_wakeup.unwrap_or_else(Instant::now));
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                Some(ev) = self.events_rx.recv() => self.on_event(ev).await,
                Some(id) = self.invalidate_rx.recv() => self.invalidate(id),
                _ = self.wake.notified() => {
                    if self.wake.take_due() {
                        self.request_scan();
                    }
                }
                _ = tick.tick() => self.request_scan(),
                _ = sample.tick() => self.gauges().report(),
                _ = timer, if next_timer.is_some() => self.fire_timers(),
                _ = wakeup, if next_wakeup.is_some() => self.fire_wakeups(),
                n = self.ready_rx.recv_many(&mut ready, READY_BATCH), if self.ready_open => {
                    self.ready_open = n > 0;
                    for job in ready.drain(..) {
                        self.route(job);
                    }
                }
            }
            if self.lanes.take_reopened() {
                self.request_scan();
            }
            if self.ready_rx.is_empty() && self.wake.take_shed() {
                self.request_scan();
            }
            if !self.to_release.is_empty() {
                let tx = self.events_tx.clone();
                spawn_release(
                    &self.tracker,
                    self.store.clone(),
                    std::mem::take(&mut self.to_release),
                    move || drop(tx.send(Event::Released)),
                );
            }
        }
        self.shutdown().await;
    }

    async fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Done {
                job,
                endpoint,
                attempt,
                key,
            } => self.on_done(job, endpoint, attempt, key).await,
            Event::Disabled { id } => self.on_disabled(id),
            Event::Loaded { id, result } => self.on_loaded(id, result),
            Event::Scanned { result, limit } => self.on_scanned(result, limit),
            Event::Released => self.on_released(),
        }
    }

    /// Puts a job in its endpoint's lane, loading the endpoint first if needed.
    fn route(&mut self, job: DispatchJob) {
        if self.stopping {
            self.to_release.push(job.delivery);
            return;
        }
        if let Some(loading) = self.loading.get_mut(&job.endpoint) {
            loading.jobs.push(job);
            return;
        }
        let Some(endpoint) = self.endpoints.get(&job.endpoint).cloned() else {
            let id = job.endpoint.clone();
            self.loading.insert(
                id.clone(),
                Loading {
                    jobs: vec![job],
                    stale: false,
                },
            );
            self.spawn_load(id);
            return;
        };
        if !endpoint.spec.enabled {
            self.to_release.push(job.delivery);
            return;
        }
        let key = endpoint.spec.policy.ordering.key_of(&job.payload);
        if let Err(delivery) = self.lanes.push(job, key) {
            self.to_release.push(delivery);
        }
        self.pump(&endpoint);
    }

    fn spawn_send(&mut self, started: Started, endpoint: Arc<Endpoint>) {
        let Started { job, key } = started;
        let target = self.target(endpoint);
        let span = tracing::debug_span!(
            "attempt",
            event = %job.event,
            endpoint = %job.endpoint,
            delivery = %job.delivery,
            attempt = job.attempts + 1,
        );
        let sender = self.sender.clone();
        let tx = self.events_tx.clone();
        let abort = self.abort_sends.clone();
        let task = async move {
            let attempt = tokio::select! {
                biased;
                _ = abort.cancelled() => None,
                attempt = sender.send_to(&target, &job) => Some(attempt),
            };
            let _ = tx.send(Event::Done {
                job,
                endpoint: target.endpoint().clone(),
                attempt,
                key,
            });
        };
        self.tracker.spawn(task.instrument(span));
    }

    /// The endpoint prepared for sending, kept while this version of it is
    /// the cached one (a reloaded endpoint is a new `Arc`).
    fn target(&mut self, endpoint: Arc<Endpoint>) -> Arc<Target> {
        match self.targets.get(&endpoint.id) {
            Some(t) if Arc::ptr_eq(t.endpoint(), &endpoint) => t.clone(),
            _ => {
                let t = Arc::new(self.sender.target(endpoint));
                self.targets.insert(t.endpoint().id.clone(), t.clone());
                t
            }
        }
    }

    fn spawn_load(&self, id: EndpointId) {
        let store = self.store.clone();
        let tx = self.events_tx.clone();
        self.tracker.spawn(async move {
            let result = store.get_endpoint_by_id(&id).await.map(Arc::new);
            let _ = tx.send(Event::Loaded { id, result });
        });
    }

    fn on_loaded(&mut self, id: EndpointId, result: aviso_store::Result<Arc<Endpoint>>) {
        let Some(loading) = self.loading.remove(&id) else {
            return;
        };
        if loading.stale && !self.stopping {
            self.loading.insert(
                id.clone(),
                Loading {
                    jobs: loading.jobs,
                    stale: false,
                },
            );
            self.spawn_load(id);
            return;
        }
        match result {
            Ok(endpoint) => {
                if !endpoint.spec.enabled {
                    tracing::debug!(endpoint = %id, jobs = loading.jobs.len(), "endpoint disabled; releasing its jobs");
                }
                self.endpoints.insert(id, endpoint);
                for job in loading.jobs {
                    self.route(job);
                }
            }
            Err(StoreError::NotFound) => {
                tracing::debug!(endpoint = %id, jobs = loading.jobs.len(), "endpoint gone; dropping its jobs");
            }
            Err(err) => {
                tracing::warn!(endpoint = %id, error = %err, "loading endpoint failed; releasing its jobs");
                self.to_release
                    .extend(loading.jobs.into_iter().map(|j| j.delivery));
            }
        }
    }

    /// Records an attempt and decides the delivery's next step.
    async fn on_done(
        &mut self,
        job: DispatchJob,
        endpoint: Arc<Endpoint>,
        attempt: Option<Attempt>,
        key: Option<String>,
    ) {
        self.lanes.finish(&job.endpoint, key.as_deref());
        match attempt {
            // Aborted at shutdown: the row stays pending; let the scan have it.
            None => self.to_release.push(job.delivery.clone()),
            Some(mut attempt) => {
                let now = Timestamp::now();
                let r = rand::thread_rng().gen_range(-1.0..=1.0);
                let mut next = decide(&endpoint.spec.policy, &job, &attempt, now, r);
                if let NextStep::Retry { at, keep_claim } = &mut next {
                    *keep_claim =
                        !self.stopping && self.timers.push(*at, next_try(&job, *at)).is_ok();
                }
                if next == NextStep::Failed {
                    if let Some(reason) = stop_reason(&attempt) {
                        attempt.error_detail = Some(reason.into());
                    }
                }
                let seen = (attempt.status_code, attempt.error);
                tracing::debug!(
                    event = %job.event,
                    endpoint = %job.endpoint,
                    delivery = %job.delivery,
                    attempt = job.attempts + 1,
                    status = attempt.status_code,
                    error = attempt.error.map(|e| e.as_str()),
                    duration_ms = attempt.duration_ms,
                    next = ?next,
                    "attempt finished"
                );
                self.attempt_metrics.record(&attempt, &next);
                let observed = next.clone();
                self.write_outcome(AttemptOutcome { attempt, next }).await;
                // After the write is queued, so a disable it triggers comes after it.
                self.observe(&job, key, &endpoint, seen, &observed);
            }
        }
        if let Some(current) = self.endpoints.get(&job.endpoint).cloned() {
            if current.spec.enabled {
                self.pump(&current);
            }
            self.tidy(&current);
        }
    }

    async fn write_outcome(&mut self, outcome: AttemptOutcome) {
        let Some(tx) = &self.outcome_tx else { return };
        // A full channel pauses the actor: back-pressure from a slow store.
        if tx.send(Write::Outcome(outcome)).await.is_err() {
            tracing::error!("outcome writer stopped; an outcome was lost");
        }
    }

    /// The gauges of docs/metrics.md, read off the actor's state.
    fn gauges(&self) -> crate::telemetry::Gauges {
        let mut in_flight = [0; 3];
        for (id, n) in self.lanes.in_flight_by_endpoint() {
            let class = match self.health.get(id) {
                Some(h) if h.is_open() => 2,
                Some(h) => {
                    let max = self
                        .endpoints
                        .get(id)
                        .map_or(0, |e| e.spec.policy.max_in_flight.0);
                    usize::from(h.limit() < f64::from(max))
                }
                None => 0,
            };
            in_flight[class] += n;
        }
        crate::telemetry::Gauges {
            ready: self.ready_rx.len(),
            lanes: self.lanes.queued(),
            scheduled: self.timers.len(),
            in_flight,
            circuits_open: self.health.values().filter(|h| h.is_open()).count(),
        }
    }

    fn invalidate(&mut self, id: EndpointId) {
        self.endpoints.remove(&id);
        self.targets.remove(&id);
        if let Some(loading) = self.loading.get_mut(&id) {
            loading.stale = true;
            return;
        }
        let jobs = self.lanes.take_queued(&id);
        if !jobs.is_empty() {
            self.loading
                .insert(id.clone(), Loading { jobs, stale: false });
            self.spawn_load(id);
        }
    }
}

/// The tokio instant of a wall-clock time (now, if it has passed).
fn instant_at(at: Timestamp) -> Instant {
    Instant::now() + Timestamp::now().until(at)
}
