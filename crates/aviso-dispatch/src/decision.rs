//! What happens to a delivery after an attempt.

use aviso_core::model::Attempt;
use aviso_core::policy::{jitter, DeliveryPolicy};
use aviso_core::Timestamp;
use aviso_store::{DispatchJob, NextStep};

/// The delivery's next step after `attempt`: success per the policy's status
/// set, else the retry policy's next delay (jittered by `r` in [-1, 1]) or give up.
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
    let failed_in_round = job.round_attempts + 1;
    match policy
        .retry
        .next_delay(failed_in_round, job.round_started_at.until(now))
    {
        Some(delay) => NextStep::Retry {
            at: now.plus(jitter(delay, r)),
            keep_claim: false,
        },
        None => NextStep::Failed,
    }
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
            error: None,
            error_detail: None,
            response_headers: vec![],
            response_snippet: None,
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
}
