//! What the dispatcher reports to the `metrics` facade. Nothing is recorded
//! until a recorder is installed (the binary installs the Prometheus one; see
//! docs/metrics.md). Every label takes a bounded set of values.

use aviso_core::model::Attempt;
use aviso_store::NextStep;
use foldhash::HashMap;
use metrics::{counter, gauge, histogram, Counter, Histogram};

/// The attempt metrics' handles, registered on first use and kept: looking a
/// labelled metric up in the recorder's registry on every attempt (a key
/// built, hashed and found under a lock, three times) was about 1 % of the
/// server's CPU in the fan-out benchmark. Handles registered while no
/// recorder is installed record nothing, so the actor owning this is
/// created after the binary installs its recorder.
#[derive(Default)]
pub(crate) struct AttemptMetrics {
    attempts: HashMap<(&'static str, &'static str), Counter>,
    durations: HashMap<&'static str, Histogram>,
    finished: HashMap<&'static str, Counter>,
    retries: Option<Counter>,
}

impl AttemptMetrics {
    /// One finished attempt: what came back and what happens next.
    pub(crate) fn record(&mut self, attempt: &Attempt, next: &NextStep) {
        let result = match next {
            NextStep::Succeeded => "delivered",
            NextStep::Retry { .. } => "retry",
            NextStep::Failed => "failed",
        };
        let class = match (attempt.status_code, attempt.error) {
            (_, Some(e)) if e.as_str() != "status" => e.as_str(),
            (Some(code), _) => status_class(code),
            (None, _) => "none",
        };
        self.attempts
            .entry((class, result))
            .or_insert_with(
                || counter!("aviso_attempts_total", "class" => class, "result" => result),
            )
            .increment(1);
        self.durations
            .entry(result)
            .or_insert_with(|| histogram!("aviso_attempt_duration_seconds", "result" => result))
            .record(attempt.duration_ms as f64 / 1000.0);
        let status = match next {
            NextStep::Succeeded => "succeeded",
            NextStep::Failed => "failed",
            NextStep::Retry { .. } => {
                self.retries
                    .get_or_insert_with(|| counter!("aviso_retries_scheduled_total"))
                    .increment(1);
                return;
            }
        };
        self.finished
            .entry(status)
            .or_insert_with(|| counter!("aviso_deliveries_finished_total", "status" => status))
            .increment(1);
    }
}

fn status_class(code: u16) -> &'static str {
    match code {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The dispatcher's state, sampled once a second.
pub(crate) struct Gauges {
    /// Jobs received from publishes, not yet in a lane.
    pub ready: usize,
    /// Jobs waiting in endpoint lanes.
    pub lanes: usize,
    /// Retries held in this node's timer heap.
    pub scheduled: usize,
    /// Requests in flight to healthy, degraded (adaptive limit lowered) and
    /// open-circuit endpoints.
    pub in_flight: [usize; 3],
    /// Endpoints whose circuit is open (or probing).
    pub circuits_open: usize,
}

/// The endpoint classes of `Gauges::in_flight`, in order.
pub(crate) const CLASSES: [&str; 3] = ["healthy", "degraded", "open"];

impl Gauges {
    pub(crate) fn report(&self) {
        gauge!("aviso_queue_depth", "queue" => "ready").set(self.ready as f64);
        gauge!("aviso_queue_depth", "queue" => "lanes").set(self.lanes as f64);
        gauge!("aviso_queue_depth", "queue" => "scheduled").set(self.scheduled as f64);
        for (class, n) in CLASSES.iter().zip(self.in_flight) {
            gauge!("aviso_in_flight_requests", "endpoint_class" => *class).set(n as f64);
        }
        gauge!("aviso_circuits_open").set(self.circuits_open as f64);
    }
}

/// One batch of outcomes written to the store.
pub(crate) fn outcome_batch(size: usize, seconds: f64) {
    histogram!("aviso_outcome_batch_size").record(size as f64);
    histogram!("aviso_outcome_write_seconds").record(seconds);
}
