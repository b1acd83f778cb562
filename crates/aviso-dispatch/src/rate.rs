//! The token bucket behind an endpoint's `rate_limit`.

use std::time::Duration;
use tokio::time::Instant;

/// Tokens refill at `rate` per second up to a burst of a tenth of a second's
/// worth (at least one), so a limit holds over any window longer than that.
#[derive(Debug)]
pub(crate) struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket for `rate` requests per second.
    pub fn new(rate: f64, now: Instant) -> Self {
        let burst = (rate / 10.0).max(1.0);
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Follows a changed policy.
    pub fn set_rate(&mut self, rate: f64) {
        if rate != self.rate {
            self.rate = rate;
            self.burst = (rate / 10.0).max(1.0);
            self.tokens = self.tokens.min(self.burst);
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes a token, or says when the next one arrives.
    pub fn take(&mut self, now: Instant) -> Result<(), Instant> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.rate;
            Err(now + Duration::from_secs_f64(wait))
        }
    }

    /// Whether the bucket is full (forgetting it changes nothing).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_per_second_admits_one_every_200ms() {
        let t0 = Instant::now();
        let mut b = Bucket::new(5.0, t0);
        assert!(b.take(t0).is_ok());
        let next = b.take(t0).unwrap_err();
        assert_eq!(next - t0, Duration::from_millis(200));
        assert!(b.take(t0 + Duration::from_millis(199)).is_err());
        assert!(b.take(t0 + Duration::from_millis(200)).is_ok());
        let mut sent = 0;
        for ms in (0..10_000).step_by(10) {
            if b.take(t0 + Duration::from_millis(200 + ms)).is_ok() {
                sent += 1;
            }
        }
        // From 0.2 s to 10.19 s: a token every 200 ms after the one just taken.
        assert_eq!(sent, 49);
    }

    #[test]
    fn fast_rates_allow_a_small_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(100.0, t0);
        let burst = (0..20).filter(|_| b.take(t0).is_ok()).count();
        assert_eq!(burst, 10);
        assert!(!b.is_full(t0));
        assert!(b.is_full(t0 + Duration::from_millis(100)));
    }
}
