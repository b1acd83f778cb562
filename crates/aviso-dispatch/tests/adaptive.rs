//! Adaptive delivery against sick receivers: AIMD, the circuit breaker and
//! auto-disable. An in-memory store, a real receiver.

mod common;

use aviso_core::model::DeliveryStatus;
use aviso_core::policy::{DeliveryPolicy, PolicyInput};
use aviso_dispatch::DispatcherConfig;
use common::{all_have, config, endpoint, published, wait_for, FakeStore, Receiver, Running};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;

fn policy(v: Value) -> DeliveryPolicy {
    let input: PolicyInput = serde_json::from_value(v).unwrap();
    input.resolve(&DeliveryPolicy::default()).unwrap()
}

fn quick_probes() -> DispatcherConfig {
    DispatcherConfig {
        circuit_probe_interval: Duration::from_millis(300),
        ..config()
    }
}

/// Requests per second and peak concurrency among arrivals `from..to`.
fn rate_and_peak(arrivals: &[(Instant, usize)], from: usize, to: usize) -> (f64, usize) {
    let part = &arrivals[from..to];
    let span = (part.last().unwrap().0 - part[0].0)
        .as_secs_f64()
        .max(0.001);
    let peak = part.iter().map(|(_, c)| *c).max().unwrap();
    ((part.len() - 1) as f64 / span, peak)
}

#[tokio::test]
async fn a_receiver_failing_90_percent_gets_fewer_requests_until_it_recovers() {
    let rx = Receiver::start().await;
    rx.delay(Duration::from_millis(50));
    // One try per delivery, so the attempt rate is the dispatcher's choice alone.
    let p = policy(json!({"max_in_flight": 16, "retry": {"schedule": ["1h"]}}));
    let ep = endpoint(&rx.url("/"), p);
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(&store, quick_probes());

    let healthy = published(&store, &ep, 64);
    d.handle.submit(healthy.clone());
    wait_for(10, "the healthy phase", || rx.count() >= 64).await;
    let (healthy_rate, healthy_peak) = rate_and_peak(&rx.arrivals(), 0, 64);
    assert!(healthy_peak >= 12, "healthy peak {healthy_peak}");

    rx.sick(Some((500, 10)));
    let sick = published(&store, &ep, 120);
    d.handle.submit(sick);
    wait_for(30, "the sick phase", || rx.count() >= 64 + 120).await;
    let (sick_rate, sick_peak) = rate_and_peak(&rx.arrivals(), 64 + 60, 64 + 120);
    assert!(sick_peak <= 3, "in flight while sick: {sick_peak}");
    assert!(
        sick_rate * 3.0 < healthy_rate,
        "attempt rate sick {sick_rate:.0}/s vs healthy {healthy_rate:.0}/s"
    );

    rx.sick(None);
    let recovered = published(&store, &ep, 400);
    d.handle.submit(recovered.clone());
    wait_for(30, "the recovery", || {
        all_have(&store, &recovered, DeliveryStatus::Succeeded)
    })
    .await;
    let all = rx.arrivals();
    let (_, back_peak) = rate_and_peak(&all, all.len() - 100, all.len());
    assert!(back_peak >= 12, "in flight after recovery: {back_peak}");
    d.stop().await;
}

#[tokio::test]
async fn an_open_circuit_sends_one_probe_per_interval_and_closes_on_success() {
    let rx = Receiver::start().await;
    rx.answer_always(500);
    let p = policy(json!({"max_in_flight": 8, "retry": {"fixed": {"every": "20ms", "for": "1h"}}}));
    let ep = endpoint(&rx.url("/"), p);
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(&store, quick_probes());
    let jobs = published(&store, &ep, 5);
    d.handle.submit(jobs.clone());

    wait_for(15, "probes while the circuit is open", || rx.count() >= 21).await;
    let at = rx.arrivals();
    // At most 10 failures open it, plus what was already in flight.
    for w in at[16..21].windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(gap >= Duration::from_millis(250), "probes {gap:?} apart");
        assert_eq!(w[1].1, 1, "a probe goes out alone");
    }
    rx.answer_always(200);
    wait_for(10, "all deliveries to succeed once it recovers", || {
        all_have(&store, &jobs, DeliveryStatus::Succeeded)
    })
    .await;
    d.stop().await;
}

#[tokio::test]
async fn without_adaptive_a_failing_receiver_keeps_getting_every_retry() {
    let rx = Receiver::start().await;
    rx.answer_always(500);
    let p = policy(json!({"adaptive": false, "retry": {"fixed": {"every": "20ms", "for": "1h"}}}));
    let ep = endpoint(&rx.url("/"), p);
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(&store, quick_probes());
    d.handle.submit(published(&store, &ep, 1));

    let start = Instant::now();
    wait_for(5, "30 attempts", || rx.count() >= 30).await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "no circuit slowed it"
    );
    d.stop().await;
}

#[tokio::test]
async fn an_endpoint_failing_longer_than_disable_after_is_disabled() {
    let rx = Receiver::start().await;
    rx.answer_always(503);
    let p =
        policy(json!({"disable_after": "1s", "retry": {"fixed": {"every": "50ms", "for": "1h"}}}));
    let ep = endpoint(&rx.url("/"), p);
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(&store, quick_probes());
    let jobs = published(&store, &ep, 3);
    d.handle.submit(jobs.clone());

    let start = Instant::now();
    wait_for(10, "the endpoint to be disabled", || {
        !store.endpoint(&ep.id).spec.enabled
    })
    .await;
    assert!(start.elapsed() >= Duration::from_millis(900));
    let reason = store.endpoint(&ep.id).disabled_reason.unwrap();
    assert!(
        reason.starts_with("disabled by Aviso at ") && reason.contains("disable_after 1s"),
        "{reason}"
    );
    wait_for(5, "pending deliveries to be cancelled", || {
        all_have(&store, &jobs, DeliveryStatus::Cancelled)
    })
    .await;
    d.stop().await;
}
