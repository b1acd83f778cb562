//! The retry engine on a virtual clock with the providers' real durations:
//! each try fails, the clock jumps by the policy's delay, until it gives up.

use aviso_core::policy::{jitter, RetryPolicy};
use std::time::Duration;

/// The offsets (from the first try) of every try the policy makes when
/// every try fails; `r` picks the jitter of each delay.
fn tries(policy: &RetryPolicy, mut r: impl FnMut() -> f64) -> Vec<Duration> {
    let mut at = vec![Duration::ZERO];
    loop {
        let failed = at.len() as u32;
        let now = *at.last().unwrap();
        match policy.next_delay(failed, now) {
            Some(d) => at.push(now + jitter(d, r())),
            None => return at,
        }
        assert!(at.len() < 10_000, "the policy never gives up");
    }
}

fn policy(json: &str) -> RetryPolicy {
    serde_json::from_str(json).unwrap()
}

#[test]
fn every_five_minutes_for_a_day_is_289_tries() {
    let p = policy(r#"{"fixed":{"every":"5m","for":"24h"}}"#);
    let at = tries(&p, || 0.0);
    assert_eq!(at.len(), 289);
    assert_eq!(*at.last().unwrap(), Duration::from_secs(86_400));
    assert!(at
        .windows(2)
        .all(|w| w[1] - w[0] == Duration::from_secs(300)));
}

#[test]
fn jitter_never_stretches_a_fixed_policy_past_its_deadline() {
    let p = policy(r#"{"fixed":{"every":"5m","for":"24h"}}"#);
    let mut flip = 1.0;
    let at = tries(&p, || {
        flip = -flip;
        flip
    });
    assert!(*at.last().unwrap() <= Duration::from_secs(86_400 + 30));
    assert!((280..=295).contains(&at.len()), "{}", at.len());
}

#[test]
fn document_exchange_makes_ten_growing_tries_within_seven_days() {
    let p = policy(
        r#"{"exponential":{"initial":"20m","factor":2,"max_interval":"3d","max_attempts":10,"max_age":"7d"}}"#,
    );
    let at = tries(&p, || 0.0);
    assert_eq!(at.len(), 10);
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "{gaps:?}");
    let last = *at.last().unwrap();
    assert!(last <= Duration::from_secs(7 * 86_400), "{last:?}");
    assert!(last >= Duration::from_secs(6 * 86_400), "{last:?}");
}

#[test]
fn the_default_schedule_is_eight_tries_over_about_32_hours() {
    let at = tries(&RetryPolicy::default_schedule(), || 0.0);
    assert_eq!(at.len(), 8);
    assert_eq!(
        *at.last().unwrap(),
        Duration::from_secs(5 + 300 + 1800 + 7200 + 18_000 + 36_000 + 36_000)
    );
}
