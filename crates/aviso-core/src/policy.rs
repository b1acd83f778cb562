//! Delivery policy: what counts as success, how to retry, timeouts and concurrency.

use crate::flow::{DeliveryOrder, DisableAfter, RateLimit};
use crate::{Dur, ParseError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

/// Accepted response statuses: classes (`2xx`) and exact codes (`201`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SuccessCodes {
    classes: BTreeSet<u16>,
    codes: BTreeSet<u16>,
}

impl SuccessCodes {
    /// Parses `"2xx"`, `"201"`, `"200,202"`, `"2xx,409"`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let mut out = Self {
            classes: BTreeSet::new(),
            codes: BTreeSet::new(),
        };
        for tok in s.split(',').map(str::trim) {
            let bad = || {
                ParseError::new(format!(
                    "`{tok}` is not a status code (100-599) or class (`2xx`)"
                ))
            };
            if let Some(class) = tok.strip_suffix("xx") {
                let c: u16 = class.parse().map_err(|_| bad())?;
                if !(1..=5).contains(&c) || class.len() != 1 {
                    return Err(bad());
                }
                out.classes.insert(c);
            } else {
                let c: u16 = tok.parse().map_err(|_| bad())?;
                if !(100..=599).contains(&c) || tok.len() != 3 {
                    return Err(bad());
                }
                out.codes.insert(c);
            }
        }
        Ok(out)
    }

    /// Whether `status` counts as success.
    pub fn accepts(&self, status: u16) -> bool {
        self.codes.contains(&status) || self.classes.contains(&(status / 100))
    }
}

impl Default for SuccessCodes {
    fn default() -> Self {
        Self::parse("2xx").expect("valid")
    }
}

impl fmt::Display for SuccessCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .classes
            .iter()
            .map(|c| format!("{c}xx"))
            .chain(self.codes.iter().map(u16::to_string))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl Serialize for SuccessCodes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SuccessCodes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// How a failed delivery is retried. Exactly one kind.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RetryPolicy {
    /// Wait each listed delay in turn; after the last, give up.
    Schedule(Schedule),
    /// Retry every `every` until `for` has passed since the first attempt.
    Fixed(Fixed),
    /// Growing delays, bounded by attempts and age.
    Exponential(Exponential),
}

/// An explicit list of delays (at most 100).
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct Schedule(pub Vec<Dur>);

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<Dur>::deserialize(d)?;
        if v.len() > 100 {
            return Err(serde::de::Error::custom(
                "a schedule has at most 100 delays",
            ));
        }
        Ok(Self(v))
    }
}

/// `{"every": "5m", "for": "24h"}`.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixed {
    /// Delay between attempts.
    pub every: Dur,
    /// How long after the first attempt retries go on.
    #[serde(rename = "for")]
    pub for_: Dur,
}

/// `{"initial": "30s", "factor": 2, "max_interval": "1d", "max_attempts": 10, "max_age": "7d"}`.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exponential {
    /// First delay.
    pub initial: Dur,
    /// Growth factor per attempt (1 to 10).
    #[serde(default = "two")]
    pub factor: f64,
    /// Largest single delay.
    #[serde(default = "one_day")]
    pub max_interval: Dur,
    /// Most attempts in all, the first included.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Give up once this long has passed since the first attempt.
    #[serde(default)]
    pub max_age: Option<Dur>,
}

fn two() -> f64 {
    2.0
}
fn one_day() -> Dur {
    Dur::from_secs(86_400)
}

impl RetryPolicy {
    /// The default schedule: 5s, 5m, 30m, 2h, 5h, 10h, 10h.
    pub fn default_schedule() -> Self {
        let s = ["5s", "5m", "30m", "2h", "5h", "10h", "10h"];
        Self::Schedule(Schedule(
            s.iter().map(|d| Dur::parse(d).expect("valid")).collect(),
        ))
    }

    /// Checks rules serde cannot express.
    pub fn check(&self) -> Result<(), ParseError> {
        match self {
            Self::Schedule(_) => Ok(()),
            Self::Fixed(f) if f.every.0.is_zero() => {
                Err(ParseError::new("`every` must be more than 0s"))
            }
            Self::Fixed(_) => Ok(()),
            Self::Exponential(e) => {
                if e.initial.0.is_zero() {
                    return Err(ParseError::new("`initial` must be more than 0s"));
                }
                if !(1.0..=10.0).contains(&e.factor) {
                    return Err(ParseError::new("`factor` must be between 1 and 10"));
                }
                if e.max_attempts == Some(0) {
                    return Err(ParseError::new("`max_attempts` must be at least 1"));
                }
                Ok(())
            }
        }
    }

    /// The delay before the next try, given how many tries of this round have
    /// failed (at least 1) and how long ago the round's first try began.
    /// `None` means give up. Jitter is applied by the caller.
    pub fn next_delay(&self, failed: u32, round_age: Duration) -> Option<Duration> {
        debug_assert!(failed >= 1);
        match self {
            Self::Schedule(s) => s.0.get(failed as usize - 1).map(|d| d.0),
            Self::Fixed(f) => (round_age + f.every.0 <= f.for_.0).then_some(f.every.0),
            Self::Exponential(e) => {
                if e.max_attempts.is_some_and(|m| failed >= m) {
                    return None;
                }
                let exp = e.factor.powi(failed.saturating_sub(1).min(64) as i32);
                let secs = (e.initial.0.as_secs_f64() * exp).min(e.max_interval.0.as_secs_f64());
                let delay = Duration::from_secs_f64(secs);
                match e.max_age {
                    Some(max) if round_age + delay > max.0 => None,
                    _ => Some(delay),
                }
            }
        }
    }
}

impl RetryPolicy {
    /// The longest delay the policy allows before the next try (the bound a
    /// receiver's `Retry-After` is held to); `None` when it would give up.
    pub fn max_delay(&self, failed: u32, round_age: Duration) -> Option<Duration> {
        let next = self.next_delay(failed, round_age)?;
        let bound = match self {
            Self::Schedule(s) => s.0.iter().map(|d| d.0).max().unwrap_or(next),
            Self::Fixed(f) => f.for_.0.saturating_sub(round_age),
            Self::Exponential(e) => match e.max_age {
                Some(max) => e.max_interval.0.min(max.0.saturating_sub(round_age)),
                None => e.max_interval.0,
            },
        };
        Some(bound.max(next))
    }
}

/// Spreads a delay by ±10 %; `r` is a uniform random number in [-1, 1].
pub fn jitter(d: Duration, r: f64) -> Duration {
    d.mul_f64(1.0 + 0.1 * r.clamp(-1.0, 1.0))
}

/// Per-request timeout: 1 s to 120 s.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub struct Timeout(pub Dur);

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Dur::deserialize(d)?;
        if !(Duration::from_secs(1)..=Duration::from_secs(120)).contains(&v.0) {
            return Err(serde::de::Error::custom(
                "timeout must be between 1s and 120s",
            ));
        }
        Ok(Self(v))
    }
}

/// Concurrent requests to one endpoint: 1 to 500.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub struct MaxInFlight(pub u16);

impl<'de> Deserialize<'de> for MaxInFlight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u64::deserialize(d)?;
        if !(1..=500).contains(&v) {
            return Err(serde::de::Error::custom(
                "max_in_flight must be between 1 and 500",
            ));
        }
        Ok(Self(v as u16))
    }
}

/// An endpoint's full delivery policy, as stored and shown.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryPolicy {
    /// Statuses that count as delivered.
    pub success: SuccessCodes,
    /// Retry rule.
    pub retry: RetryPolicy,
    /// Per-request timeout.
    pub timeout: Timeout,
    /// Concurrent requests to the endpoint.
    pub max_in_flight: MaxInFlight,
    /// Requests per second, if limited.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Delivery order.
    #[serde(default)]
    pub ordering: DeliveryOrder,
    /// AIMD in-flight limit, circuit breaker and auto-disable.
    #[serde(default = "yes")]
    pub adaptive: bool,
    /// Unbroken failure after which an adaptive endpoint is disabled.
    #[serde(default)]
    pub disable_after: DisableAfter,
}

fn yes() -> bool {
    true
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            success: SuccessCodes::default(),
            retry: RetryPolicy::default_schedule(),
            timeout: Timeout(Dur::from_secs(15)),
            max_in_flight: MaxInFlight(16),
            rate_limit: None,
            ordering: DeliveryOrder::None,
            adaptive: true,
            disable_after: DisableAfter::default(),
        }
    }
}

/// A policy as written in a request: every field optional, the rest from defaults.
#[derive(Clone, PartialEq, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// See [`DeliveryPolicy::success`].
    pub success: Option<SuccessCodes>,
    /// See [`DeliveryPolicy::retry`].
    pub retry: Option<RetryPolicy>,
    /// See [`DeliveryPolicy::timeout`].
    pub timeout: Option<Timeout>,
    /// See [`DeliveryPolicy::max_in_flight`].
    pub max_in_flight: Option<MaxInFlight>,
    /// See [`DeliveryPolicy::rate_limit`].
    pub rate_limit: Option<RateLimit>,
    /// See [`DeliveryPolicy::ordering`].
    pub ordering: Option<DeliveryOrder>,
    /// See [`DeliveryPolicy::adaptive`].
    pub adaptive: Option<bool>,
    /// See [`DeliveryPolicy::disable_after`].
    pub disable_after: Option<DisableAfter>,
}

impl PolicyInput {
    /// Fills unset fields from `base` and checks the result.
    pub fn resolve(self, base: &DeliveryPolicy) -> Result<DeliveryPolicy, ParseError> {
        let p = DeliveryPolicy {
            success: self.success.unwrap_or_else(|| base.success.clone()),
            retry: self.retry.unwrap_or_else(|| base.retry.clone()),
            timeout: self.timeout.unwrap_or(base.timeout),
            max_in_flight: self.max_in_flight.unwrap_or(base.max_in_flight),
            rate_limit: self.rate_limit.or(base.rate_limit),
            ordering: self.ordering.unwrap_or_else(|| base.ordering.clone()),
            adaptive: self.adaptive.unwrap_or(base.adaptive),
            disable_after: self.disable_after.unwrap_or(base.disable_after),
        };
        p.retry
            .check()
            .map_err(|e| ParseError::new(format!("retry: {e}")))?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests;
