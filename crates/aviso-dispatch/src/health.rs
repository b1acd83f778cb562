//! Adaptive flow control of one endpoint: an AIMD in-flight limit, a circuit
//! breaker, and the clock of an unbroken failure that ends in auto-disable.

use aviso_core::Timestamp;
use std::collections::VecDeque;
use std::time::Duration;

/// Outcomes remembered for the recent error rate.
const WINDOW: usize = 20;
/// Error share of the window above which the limit is halved.
const SHRINK_AT: f64 = 0.25;
/// Consecutive sick failures that open the circuit.
const OPEN_AFTER: u32 = 10;

/// How an attempt went, as far as the receiver's health is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Accepted per the policy.
    Success,
    /// The receiver answered, but not with a success (e.g. 400, or 200 where 201 is wanted).
    Refused,
    /// Timeout, connection failure, 5xx or 429: the receiver is struggling.
    Sick,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Circuit {
    Closed,
    /// No sends until `probe_at`, then one probe.
    Open {
        probe_at: Timestamp,
    },
    /// The probe is in flight.
    Probing,
}

/// What the dispatcher should do after an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Carry on.
    Continue,
    /// Every attempt has failed since `since`, for longer than `disable_after`.
    Disable {
        /// Start of the unbroken failure.
        since: Timestamp,
    },
}

/// The adaptive state of one endpoint.
#[derive(Debug)]
pub(crate) struct Health {
    limit: f64,
    recent: VecDeque<bool>,
    since_shrink: usize,
    consecutive: u32,
    circuit: Circuit,
    failing_since: Option<Timestamp>,
    disabling: bool,
}

impl Health {
    /// A healthy endpoint allowed `max` requests in flight.
    pub fn new(max: usize) -> Self {
        Self {
            limit: max as f64,
            recent: VecDeque::with_capacity(WINDOW),
            since_shrink: 0,
            consecutive: 0,
            circuit: Circuit::Closed,
            failing_since: None,
            disabling: false,
        }
    }

    /// Requests that may be in flight now, given the policy's `max`.
    pub fn allowed(&self, max: usize, now: Timestamp) -> usize {
        match self.circuit {
            Circuit::Closed => (self.limit.floor() as usize).clamp(1, max.max(1)),
            Circuit::Open { probe_at } if now >= probe_at => 1,
            Circuit::Open { .. } | Circuit::Probing => 0,
        }
    }

    /// When the next probe may go out while the circuit is open.
    pub fn probe_at(&self) -> Option<Timestamp> {
        match self.circuit {
            Circuit::Open { probe_at } => Some(probe_at),
            _ => None,
        }
    }

    /// Whether the circuit is not closed.
    pub fn is_open(&self) -> bool {
        self.circuit != Circuit::Closed
    }

    /// The effective in-flight limit (for logs and tests).
    pub fn limit(&self) -> f64 {
        self.limit
    }

    /// A send started; an open circuit's due probe becomes the one probe.
    pub fn on_start(&mut self, now: Timestamp) {
        if matches!(self.circuit, Circuit::Open { probe_at } if now >= probe_at) {
            self.circuit = Circuit::Probing;
        }
    }

    /// Takes an outcome into account. `probe_every` spaces probes while the
    /// circuit is open; `disable_after` is the policy's auto-disable delay.
    pub fn record(
        &mut self,
        signal: Signal,
        max: usize,
        now: Timestamp,
        probe_every: Duration,
        disable_after: Duration,
    ) -> Verdict {
        let max = max.max(1) as f64;
        self.limit = self.limit.min(max);
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(signal == Signal::Sick);
        self.since_shrink += 1;
        match signal {
            Signal::Success => {
                self.failing_since = None;
                self.consecutive = 0;
                self.limit = (self.limit + 1.0 / self.limit).min(max);
                self.circuit = Circuit::Closed;
                return Verdict::Continue;
            }
            Signal::Refused => {
                // The receiver is up and answering: no reason to throttle it.
                self.consecutive = 0;
                if self.circuit == Circuit::Probing {
                    self.circuit = Circuit::Closed;
                }
            }
            Signal::Sick => {
                self.consecutive += 1;
                let errors = self.recent.iter().filter(|e| **e).count();
                let high = errors as f64 >= SHRINK_AT * WINDOW.min(self.recent.len().max(4)) as f64;
                // At most one halving per "round trip" of the current limit.
                if high && self.since_shrink >= self.limit as usize {
                    self.limit = (self.limit / 2.0).max(1.0);
                    self.since_shrink = 0;
                }
                let reopen = self.circuit == Circuit::Probing;
                if reopen || (self.circuit == Circuit::Closed && self.consecutive >= OPEN_AFTER) {
                    self.limit = 1.0;
                    self.circuit = Circuit::Open {
                        probe_at: now.plus(probe_every),
                    };
                }
            }
        }
        let since = *self.failing_since.get_or_insert(now);
        if !self.disabling && since.until(now) >= disable_after {
            self.disabling = true;
            return Verdict::Disable { since };
        }
        Verdict::Continue
    }

    /// Nothing worth remembering: closed circuit, full limit, no failure.
    pub fn is_pristine(&self, max: usize) -> bool {
        self.circuit == Circuit::Closed
            && self.limit >= max as f64
            && self.failing_since.is_none()
            && self.consecutive == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBE: Duration = Duration::from_secs(5);
    const DAYS5: Duration = Duration::from_secs(5 * 86_400);

    #[test]
    fn errors_halve_the_limit_and_successes_grow_it_back() {
        let mut h = Health::new(16);
        let now = Timestamp(0);
        for i in 0..40 {
            let s = if i % 10 == 0 {
                Signal::Success
            } else {
                Signal::Sick
            };
            h.record(s, 16, now, PROBE, DAYS5);
        }
        assert!(h.limit() <= 2.0, "{}", h.limit());
        let mut h = Health::new(16);
        for _ in 0..20 {
            h.record(Signal::Sick, 16, now, PROBE, DAYS5);
        }
        let low = h.limit();
        assert!(low < 16.0);
        for _ in 0..500 {
            h.record(Signal::Success, 16, now, PROBE, DAYS5);
        }
        assert_eq!(h.allowed(16, now), 16);
        assert!(h.is_pristine(16));
    }

    #[test]
    fn refusals_do_not_throttle() {
        let mut h = Health::new(8);
        for _ in 0..50 {
            h.record(Signal::Refused, 8, Timestamp(0), PROBE, DAYS5);
        }
        assert_eq!(h.allowed(8, Timestamp(0)), 8);
        assert!(!h.is_open());
    }

    #[test]
    fn the_circuit_opens_probes_once_per_interval_and_closes_on_success() {
        let mut h = Health::new(8);
        for _ in 0..OPEN_AFTER {
            h.record(Signal::Sick, 8, Timestamp(1_000), PROBE, DAYS5);
        }
        assert!(h.is_open());
        assert_eq!(h.allowed(8, Timestamp(1_000)), 0);
        assert_eq!(h.probe_at(), Some(Timestamp(6_000)));
        assert_eq!(h.allowed(8, Timestamp(6_000)), 1);
        h.on_start(Timestamp(6_000));
        assert_eq!(h.allowed(8, Timestamp(6_000)), 0, "one probe at a time");
        h.record(Signal::Sick, 8, Timestamp(6_100), PROBE, DAYS5);
        assert_eq!(h.probe_at(), Some(Timestamp(11_100)));
        h.on_start(Timestamp(11_100));
        h.record(Signal::Success, 8, Timestamp(11_200), PROBE, DAYS5);
        assert!(!h.is_open());
        assert_eq!(h.allowed(8, Timestamp(11_200)), 2);
    }

    #[test]
    fn an_unbroken_failure_longer_than_disable_after_disables_once() {
        let mut h = Health::new(4);
        let day = 86_400_000;
        assert_eq!(
            h.record(Signal::Refused, 4, Timestamp(0), PROBE, DAYS5),
            Verdict::Continue
        );
        assert_eq!(
            h.record(Signal::Sick, 4, Timestamp(4 * day), PROBE, DAYS5),
            Verdict::Continue
        );
        assert_eq!(
            h.record(Signal::Sick, 4, Timestamp(5 * day), PROBE, DAYS5),
            Verdict::Disable {
                since: Timestamp(0)
            }
        );
        assert_eq!(
            h.record(Signal::Sick, 4, Timestamp(6 * day), PROBE, DAYS5),
            Verdict::Continue
        );
        let mut h = Health::new(4);
        h.record(Signal::Sick, 4, Timestamp(0), PROBE, DAYS5);
        h.record(Signal::Success, 4, Timestamp(4 * day), PROBE, DAYS5);
        assert_eq!(
            h.record(Signal::Sick, 4, Timestamp(6 * day), PROBE, DAYS5),
            Verdict::Continue,
            "a success resets the clock"
        );
    }
}
