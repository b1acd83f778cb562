//! What happens to a delivery after an attempt.

use aviso_core::model::{Attempt, AttemptError};
use aviso_core::policy::{jitter, DeliveryPolicy};
use aviso_core::Timestamp;
use aviso_store::{DispatchJob, NextStep};
use std::time::{Duration, UNIX_EPOCH};

/// The delivery's next step after `attempt`: success per the policy's status
/// set; a stop when the receiver asks for one (410, `webhook-delivery: abort`);
/// else the retry policy's next delay (jittered by `r` in [-1, 1], stretched
/// to a 429/503 `Retry-After` within the policy's bounds) or give up.
pub(crate) fn decide(
    policy: &DeliveryPolicy,
    job: &DispatchJob,
    attempt: &Attempt,
    now: Timestamp,
    r: f64,
) -> NextStep {
    if attempt
        .status_code
        .is_some_and(|s| policy.success.accepts(s))
    {
        return NextStep::Succeeded;
    }
    if stop_reason(attempt).is_some() {
        return NextStep::Failed;
    }
    let failed_in_round = job.round_attempts + 1;
    let age = job.round_started_at.until(now);
    let Some(delay) = policy.retry.next_delay(failed_in_round, age) else {
        return NextStep::Failed;
    };
    let mut delay = jitter(delay, r);
    if let Some(asked) = retry_after(attempt, now) {
        let bound = policy
            .retry
            .max_delay(failed_in_round, age)
            .unwrap_or(delay);
        delay = delay.max(asked.min(bound));
    }
    NextStep::Retry {
        at: now.plus(delay),
        keep_claim: false,
    }
}

/// Why the receiver asked Aviso to stop retrying this delivery, if it did.
pub(crate) fn stop_reason(attempt: &Attempt) -> Option<&'static str> {
    if attempt.status_code == Some(410) {
        return Some("the receiver answered 410 Gone; retries stopped");
    }
    let abort = attempt.response_headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("webhook-delivery") && v.trim().eq_ignore_ascii_case("abort")
    });
    abort.then_some("the receiver answered `webhook-delivery: abort`; retries stopped")
}

/// The wait a 429 or 503 answer asks for: `Retry-After` in seconds or as an HTTP date.
fn retry_after(attempt: &Attempt, now: Timestamp) -> Option<Duration> {
    if !matches!(attempt.status_code, Some(429 | 503))
        || attempt.error != Some(AttemptError::Status)
    {
        return None;
    }
    let value = attempt
        .response_headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.trim())?;
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = at.duration_since(UNIX_EPOCH).ok()?.as_millis() as i64;
    Some(now.until(Timestamp(at_ms)))
}

/// The job as it stands for its next try at `at`.
pub(crate) fn next_try(job: &DispatchJob, at: Timestamp) -> DispatchJob {
    DispatchJob {
        attempts: job.attempts + 1,
        round_attempts: job.round_attempts + 1,
        due_at: at,
        ..job.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lanes::tests::job;
    use aviso_core::policy::RetryPolicy;
    use aviso_core::{AttemptId, DeliveryId, Dur, EndpointId};

    fn attempt(status: Option<u16>) -> Attempt {
        Attempt {
            id: AttemptId::new(),
            delivery: DeliveryId::new(),
            at: Timestamp::now(),
            duration_ms: 1,
            status_code: status,
            error: status.filter(|s| *s >= 300).map(|_| AttemptError::Status),
            error_detail: None,
            response_headers: vec![],
            response_snippet: None,
        }
    }

    fn with_header(mut a: Attempt, k: &str, v: &str) -> Attempt {
        a.response_headers.push((k.into(), v.into()));
        a
    }

    fn fixed(every: u64, for_: u64) -> DeliveryPolicy {
        DeliveryPolicy {
            retry: serde_json::from_value(serde_json::json!(
                {"fixed": {"every": format!("{every}s"), "for": format!("{for_}s")}}
            ))
            .unwrap(),
            ..DeliveryPolicy::default()
        }
    }

    #[test]
    fn decides_success_retry_and_failure_from_the_policy() {
        let policy = DeliveryPolicy {
            retry: RetryPolicy::Schedule(aviso_core::policy::Schedule(vec![Dur::from_secs(10)])),
            ..DeliveryPolicy::default()
        };
        let mut j = job(&EndpointId::new());
        let now = Timestamp(1_000_000);
        assert_eq!(
            decide(&policy, &j, &attempt(Some(204)), now, 0.0),
            NextStep::Succeeded
        );
        let retry = decide(&policy, &j, &attempt(Some(500)), now, 1.0);
        assert_eq!(
            retry,
            NextStep::Retry {
                at: Timestamp(1_011_000),
                keep_claim: false
            }
        );
        assert!(matches!(
            decide(&policy, &j, &attempt(None), now, 0.0),
            NextStep::Retry { .. }
        ));
        j.round_attempts = 1;
        assert_eq!(
            decide(&policy, &j, &attempt(Some(302)), now, 0.0),
            NextStep::Failed
        );
        let next = next_try(&j, Timestamp(5));
        assert_eq!(
            (next.attempts, next.round_attempts, next.due_at),
            (1, 2, Timestamp(5))
        );
    }

    #[test]
    fn gone_and_abort_stop_retrying() {
        let j = job(&EndpointId::new());
        let now = Timestamp::now();
        let p = DeliveryPolicy::default();
        assert_eq!(
            decide(&p, &j, &attempt(Some(410)), now, 0.0),
            NextStep::Failed
        );
        let abort = with_header(attempt(Some(500)), "webhook-delivery", "Abort");
        assert_eq!(decide(&p, &j, &abort, now, 0.0), NextStep::Failed);
        let other = with_header(attempt(Some(500)), "webhook-delivery", "later");
        assert!(matches!(
            decide(&p, &j, &other, now, 0.0),
            NextStep::Retry { .. }
        ));
    }

    #[test]
    fn retry_after_is_honoured_within_the_policy_bounds() {
        let mut j = job(&EndpointId::new());
        let now = Timestamp(1_000_000_000);
        j.round_started_at = now;
        let p = fixed(5, 3600);
        let at = |a: &Attempt| match decide(&p, &j, a, now, 0.0) {
            NextStep::Retry { at, .. } => now.until(at).as_secs(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            at(&with_header(attempt(Some(429)), "retry-after", "120")),
            120
        );
        assert_eq!(at(&with_header(attempt(Some(503)), "Retry-After", "2")), 5);
        assert_eq!(
            at(&with_header(attempt(Some(500)), "retry-after", "120")),
            5,
            "only 429 and 503"
        );
        assert_eq!(
            at(&with_header(attempt(Some(429)), "retry-after", "99999")),
            3600,
            "capped at what the policy allows"
        );
        let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(1_000_000 + 60));
        assert_eq!(
            at(&with_header(attempt(Some(429)), "retry-after", &date)),
            60
        );
        assert_eq!(
            at(&with_header(attempt(Some(429)), "retry-after", "soon")),
            5
        );
    }
}
