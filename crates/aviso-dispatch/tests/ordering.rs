//! Per-endpoint policy behaviour: ordering, rate limit, Retry-After and the
//! receiver's ways of stopping retries. An in-memory store, a real receiver.

mod common;

use aviso_core::model::{DeliveryStatus, Endpoint};
use aviso_core::policy::{DeliveryPolicy, PolicyInput};
use aviso_dispatch::DispatcherConfig;
use aviso_store::DispatchJob;
use common::{
    all_have, config, endpoint, job, published, wait_for, FakeStore, Receiver, Running, NODE,
};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn policy(v: Value) -> DeliveryPolicy {
    let input: PolicyInput = serde_json::from_value(v).unwrap();
    input.resolve(&DeliveryPolicy::default()).unwrap()
}

/// Adds deliveries with these payloads, claimed for this node.
fn publish_payloads(store: &FakeStore, ep: &Endpoint, payloads: &[Value]) -> Vec<DispatchJob> {
    payloads
        .iter()
        .map(|p| {
            let j = job(ep, &p.to_string());
            store.add(&j, Some(NODE));
            j
        })
        .collect()
}

#[tokio::test]
async fn fifo_sends_one_at_a_time_in_publish_order_and_a_failing_head_holds_the_rest() {
    let rx = Receiver::start().await;
    rx.script(&[500, 500]);
    rx.delay(Duration::from_millis(20));
    let p = policy(json!({"ordering": "fifo", "retry": {"schedule": ["100ms", "100ms", "100ms"]}}));
    let ep = endpoint(&rx.url("/"), p);
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(&store, config());
    let jobs = published(&store, &ep, 5);
    d.handle.submit(jobs.clone());

    wait_for(10, "all deliveries to succeed", || {
        all_have(&store, &jobs, DeliveryStatus::Succeeded)
    })
    .await;
    assert_eq!(rx.numbers(), vec![0, 0, 0, 1, 2, 3, 4]);
    assert_eq!(rx.state.max_concurrent.load(Ordering::SeqCst), 1);
    d.stop().await;
}

#[tokio::test]
async fn a_fifo_head_waiting_in_the_store_still_holds_the_rest() {
    let rx = Receiver::start().await;
    rx.script(&[500]);
    let p = policy(json!({"ordering": "fifo", "retry": {"schedule": ["300ms"]}}));
    let ep = endpoint(&rx.url("/"), p);
    let store = FakeStore::with_endpoint(&ep);
    // No timer room: the head's retry goes back to the store and the scan.
    let cfg = DispatcherConfig {
        timer_capacity: 0,
        ..config()
    };
    let d = Running::start(&store, cfg);
    let jobs = published(&store, &ep, 3);
    d.handle.submit(jobs.clone());

    wait_for(10, "all deliveries to succeed", || {
        all_have(&store, &jobs, DeliveryStatus::Succeeded)
    })
    .await;
    assert_eq!(rx.numbers(), vec![0, 0, 1, 2]);
    d.stop().await;
}

#[tokio::test]
async fn fifo_key_keeps_order_per_key_while_keys_go_in_parallel() {
    let rx = Receiver::start().await;
    rx.delay(Duration::from_millis(100));
    let ep = endpoint(
        &rx.url("/"),
        policy(json!({"ordering": {"fifo_key": "/contrato/id"}})),
    );
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(&store, config());
    let payloads: Vec<Value> = (0..8)
        .map(|n| json!({"n": n, "contrato": {"id": if n % 2 == 0 { "a" } else { "b" }}}))
        .collect();
    let jobs = publish_payloads(&store, &ep, &payloads);
    d.handle.submit(jobs.clone());

    wait_for(10, "all deliveries to succeed", || {
        all_have(&store, &jobs, DeliveryStatus::Succeeded)
    })
    .await;
    let got = rx.numbers();
    let evens: Vec<i64> = got.iter().copied().filter(|n| n % 2 == 0).collect();
    let odds: Vec<i64> = got.iter().copied().filter(|n| n % 2 == 1).collect();
    assert_eq!(evens, vec![0, 2, 4, 6], "key a in publish order");
    assert_eq!(odds, vec![1, 3, 5, 7], "key b in publish order");
    assert_eq!(
        rx.state.max_concurrent.load(Ordering::SeqCst),
        2,
        "one per key, the two keys in parallel"
    );
    d.stop().await;
}

#[tokio::test]
async fn rate_limit_spaces_requests_out() {
    let rx = Receiver::start().await;
    let ep = endpoint(&rx.url("/"), policy(json!({"rate_limit": 10})));
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(&store, config());
    let jobs = published(&store, &ep, 15);
    d.handle.submit(jobs.clone());

    wait_for(10, "all deliveries to succeed", || {
        all_have(&store, &jobs, DeliveryStatus::Succeeded)
    })
    .await;
    let at: Vec<_> = rx.arrivals().into_iter().map(|(t, _)| t).collect();
    let span = *at.last().unwrap() - at[0];
    // 15 requests at 10/s: the first at once, then one per 100 ms.
    assert!(span >= Duration::from_millis(1_300), "{span:?}");
    let in_any_second = at
        .iter()
        .map(|t0| {
            at.iter()
                .filter(|t| **t >= *t0 && **t - *t0 < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    assert!(
        in_any_second <= 11,
        "{in_any_second} requests in one second"
    );
    d.stop().await;
}

#[tokio::test]
async fn retry_after_on_429_is_honoured_within_the_policy() {
    let rx = Receiver::start().await;
    rx.script(&[429]);
    rx.answer_header("retry-after", "1");
    let p = policy(json!({"retry": {"fixed": {"every": "100ms", "for": "30s"}}}));
    let ep = endpoint(&rx.url("/"), p);
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(&store, config());
    let jobs = published(&store, &ep, 1);
    d.handle.submit(jobs.clone());

    wait_for(10, "the delivery to succeed", || {
        all_have(&store, &jobs, DeliveryStatus::Succeeded)
    })
    .await;
    let at = rx.arrivals();
    assert_eq!(at.len(), 2);
    let gap = at[1].0 - at[0].0;
    assert!(gap >= Duration::from_millis(950), "waited only {gap:?}");
    assert!(gap < Duration::from_secs(3), "waited {gap:?}");
    d.stop().await;
}

#[tokio::test]
async fn abort_header_and_410_stop_retrying_at_once() {
    let p = || policy(json!({"retry": {"fixed": {"every": "50ms", "for": "1h"}}}));
    let aborting = Receiver::start().await;
    aborting.answer_always(500);
    aborting.answer_header("webhook-delivery", "abort");
    let gone = Receiver::start().await;
    gone.answer_always(410);
    let (ep1, ep2) = (
        endpoint(&aborting.url("/"), p()),
        endpoint(&gone.url("/"), p()),
    );
    let store = FakeStore::with_endpoint(&ep1);
    store
        .state
        .lock()
        .unwrap()
        .endpoints
        .insert(ep2.id.clone(), ep2.clone());
    let d = Running::start(&store, config());
    let jobs = [published(&store, &ep1, 1), published(&store, &ep2, 1)].concat();
    d.handle.submit(jobs.clone());

    wait_for(5, "both deliveries to fail", || {
        all_have(&store, &jobs, DeliveryStatus::Failed)
    })
    .await;
    assert_eq!((aborting.count(), gone.count()), (1, 1));
    for j in &jobs {
        let detail = store.outcomes_for(&j.delivery)[0]
            .attempt
            .error_detail
            .clone();
        assert!(detail.unwrap().contains("retries stopped"));
    }
    assert!(
        store.endpoint(&ep2.id).spec.enabled,
        "410 alone keeps the endpoint"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_410_disables_the_endpoint_when_configured() {
    let rx = Receiver::start().await;
    rx.script(&[410]);
    let ep = endpoint(&rx.url("/"), policy(json!({"ordering": "fifo"})));
    let store = FakeStore::with_endpoint(&ep);
    let cfg = DispatcherConfig {
        disable_on_gone: true,
        ..config()
    };
    let d = Running::start(&store, cfg);
    let jobs = published(&store, &ep, 3);
    d.handle.submit(jobs.clone());

    wait_for(5, "the endpoint to be disabled", || {
        !store.endpoint(&ep.id).spec.enabled
    })
    .await;
    let reason = store.endpoint(&ep.id).disabled_reason.unwrap();
    assert!(reason.contains("410"), "{reason}");
    assert_eq!(store.status(&jobs[0].delivery), DeliveryStatus::Failed);
    wait_for(5, "the rest to be cancelled", || {
        all_have(&store, &jobs[1..], DeliveryStatus::Cancelled)
    })
    .await;
    assert_eq!(rx.count(), 1, "fifo: nothing else was sent");
    d.stop().await;
}
