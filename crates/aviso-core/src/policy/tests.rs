//! Unit tests of the delivery policy types.

use super::*;

#[test]
fn success_codes_parse_and_match() {
    let s = SuccessCodes::parse("2xx,409").unwrap();
    assert!(s.accepts(204) && s.accepts(409) && !s.accepts(301) && !s.accepts(500));
    let exact = SuccessCodes::parse("201").unwrap();
    assert!(exact.accepts(201) && !exact.accepts(200));
    assert_eq!(
        SuccessCodes::parse(" 202,200 ").unwrap().to_string(),
        "200,202"
    );
    for bad in ["999", "20", "6xx", "2xxx", "", "ok"] {
        assert!(SuccessCodes::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn schedule_gives_up_after_its_last_delay() {
    let p = RetryPolicy::default_schedule();
    assert_eq!(
        p.next_delay(1, Duration::ZERO),
        Some(Duration::from_secs(5))
    );
    assert_eq!(
        p.next_delay(7, Duration::ZERO),
        Some(Duration::from_secs(36_000))
    );
    assert_eq!(p.next_delay(8, Duration::ZERO), None);
}

#[test]
fn fixed_retries_until_its_deadline() {
    let p: RetryPolicy = serde_json::from_str(r#"{"fixed":{"every":"5m","for":"24h"}}"#).unwrap();
    assert_eq!(
        p.next_delay(1, Duration::ZERO),
        Some(Duration::from_secs(300))
    );
    assert_eq!(
        p.next_delay(100, Duration::from_secs(86_100)),
        Some(Duration::from_secs(300))
    );
    assert_eq!(p.next_delay(100, Duration::from_secs(86_101)), None);
}

#[test]
fn exponential_grows_and_stops_at_max_attempts() {
    let p: RetryPolicy = serde_json::from_str(
        r#"{"exponential":{"initial":"30s","factor":2,"max_interval":"1h","max_attempts":10}}"#,
    )
    .unwrap();
    assert_eq!(
        p.next_delay(1, Duration::ZERO),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        p.next_delay(3, Duration::ZERO),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        p.next_delay(9, Duration::ZERO),
        Some(Duration::from_secs(3600))
    );
    assert_eq!(p.next_delay(10, Duration::ZERO), None);
}

#[test]
fn policy_input_rejects_out_of_range_values() {
    assert!(serde_json::from_str::<PolicyInput>(r#"{"max_in_flight":0}"#).is_err());
    assert!(serde_json::from_str::<PolicyInput>(r#"{"max_in_flight":501}"#).is_err());
    assert!(serde_json::from_str::<PolicyInput>(r#"{"timeout":"121s"}"#).is_err());
    assert!(serde_json::from_str::<PolicyInput>(r#"{"retry":{"linear":{}}}"#).is_err());
    assert!(serde_json::from_str::<PolicyInput>(r#"{"ordering":"lifo"}"#).is_err());
    assert!(serde_json::from_str::<PolicyInput>(r#"{"rate_limit":0}"#).is_err());
    assert!(serde_json::from_str::<PolicyInput>(r#"{"disable_after":"soon"}"#).is_err());
    assert!(serde_json::from_str::<PolicyInput>(r#"{"priority":1}"#).is_err());
    let p: PolicyInput = serde_json::from_str(r#"{"success":"201"}"#).unwrap();
    let p = p.resolve(&DeliveryPolicy::default()).unwrap();
    assert_eq!(p.success.to_string(), "201");
    assert_eq!(p.max_in_flight.0, 16);
    assert!(p.adaptive && p.rate_limit.is_none() && p.ordering == DeliveryOrder::None);
}

#[test]
fn policies_stored_before_flow_fields_still_load() {
    let old = r#"{"success":"2xx","retry":{"schedule":["5s"]},"timeout":"15s","max_in_flight":16}"#;
    let p: DeliveryPolicy = serde_json::from_str(old).unwrap();
    assert!(p.adaptive);
    assert_eq!(p.disable_after, DisableAfter::default());
    let echo = serde_json::to_value(DeliveryPolicy::default()).unwrap();
    assert_eq!(echo["disable_after"], "5d");
    assert_eq!(echo["ordering"], "none");
    assert!(echo["rate_limit"].is_null());
}

#[test]
fn max_delay_bounds_retry_after_by_the_policy() {
    let fixed: RetryPolicy =
        serde_json::from_str(r#"{"fixed":{"every":"5m","for":"24h"}}"#).unwrap();
    let age = Duration::from_secs(86_400 - 600);
    assert_eq!(fixed.max_delay(3, age), Some(Duration::from_secs(600)));
    assert_eq!(
        RetryPolicy::default_schedule().max_delay(1, Duration::ZERO),
        Some(Duration::from_secs(36_000))
    );
    assert_eq!(
        RetryPolicy::default_schedule().max_delay(8, Duration::ZERO),
        None
    );
}

#[test]
fn jitter_stays_within_ten_percent() {
    let d = Duration::from_secs(100);
    assert_eq!(jitter(d, 1.0), Duration::from_secs(110));
    assert_eq!(jitter(d, -1.0), Duration::from_secs(90));
}
