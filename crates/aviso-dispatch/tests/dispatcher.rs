//! The dispatcher end to end: an in-memory store, a real receiver.

mod common;

use aviso_core::model::DeliveryStatus;
use aviso_core::policy::{DeliveryPolicy, MaxInFlight};
use aviso_dispatch::DispatcherConfig;
use aviso_store::NextStep;
use common::{
    all_have, config, endpoint, job, published, schedule, wait_for, FakeStore, Receiver, Running,
    NODE,
};
use std::sync::atomic::Ordering;
use std::time::Duration;

#[tokio::test]
async fn fast_path_jobs_are_delivered() {
    let rx = Receiver::start().await;
    let ep = endpoint(&rx.url("/"), DeliveryPolicy::default());
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(&store, config());
    assert_eq!(d.handle.node_id(), NODE);
    let jobs = published(&store, &ep, 3);
    d.handle.submit(jobs.clone());

    wait_for(5, "deliveries to succeed", || {
        all_have(&store, &jobs, DeliveryStatus::Succeeded)
    })
    .await;
    assert_eq!(rx.count(), 3);
    for j in &jobs {
        assert_eq!(store.outcomes_for(&j.delivery).len(), 1);
        assert!(store.row(&j.delivery).claimed_by.is_none());
    }
    d.stop().await;
}

#[tokio::test]
async fn outcome_writes_are_retried_when_the_store_fails() {
    let rx = Receiver::start().await;
    let ep = endpoint(&rx.url("/"), DeliveryPolicy::default());
    let store = FakeStore::with_endpoint(&ep);
    store.state.lock().unwrap().fail_writes = 2;
    let d = Running::start(&store, config());
    let jobs = published(&store, &ep, 2);
    d.handle.submit(jobs.clone());

    wait_for(5, "deliveries to succeed", || {
        all_have(&store, &jobs, DeliveryStatus::Succeeded)
    })
    .await;
    assert_eq!(
        store.state.lock().unwrap().outcomes.len(),
        2,
        "each outcome written once"
    );
    d.stop().await;
}

#[tokio::test]
async fn failed_attempts_are_retried_until_success() {
    let rx = Receiver::start().await;
    rx.script(&[500, 500]);
    let ep = endpoint(&rx.url("/"), schedule(&["100ms", "100ms", "100ms"]));
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(&store, config());
    let jobs = published(&store, &ep, 1);
    d.handle.submit(jobs.clone());

    wait_for(5, "the delivery to succeed", || {
        all_have(&store, &jobs, DeliveryStatus::Succeeded)
    })
    .await;
    let outcomes = store.outcomes_for(&jobs[0].delivery);
    let codes: Vec<_> = outcomes.iter().map(|o| o.attempt.status_code).collect();
    assert_eq!(codes, vec![Some(500), Some(500), Some(200)]);
    assert!(matches!(
        outcomes[0].next,
        NextStep::Retry {
            keep_claim: true,
            ..
        }
    ));
    assert!(matches!(
        outcomes[1].next,
        NextStep::Retry {
            keep_claim: true,
            ..
        }
    ));
    assert_eq!(outcomes[2].next, NextStep::Succeeded);
    assert!(
        outcomes[1].attempt.at.millis() - outcomes[0].attempt.at.millis() >= 90,
        "retry waited its delay"
    );
    // The retries stayed in this node's timer heap: the scan never saw them.
    assert!(store.state.lock().unwrap().scanned.is_empty());
    d.stop().await;
}

#[tokio::test]
async fn an_exhausted_schedule_fails_the_delivery() {
    let rx = Receiver::start().await;
    rx.answer_always(503);
    let ep = endpoint(&rx.url("/"), schedule(&["100ms"]));
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(&store, config());
    let jobs = published(&store, &ep, 1);
    d.handle.submit(jobs.clone());

    wait_for(5, "the delivery to fail", || {
        all_have(&store, &jobs, DeliveryStatus::Failed)
    })
    .await;
    let outcomes = store.outcomes_for(&jobs[0].delivery);
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[1].next, NextStep::Failed);
    assert_eq!(rx.count(), 2);
    d.stop().await;
}

#[tokio::test]
async fn retries_without_timer_room_go_back_to_the_store_scan() {
    let rx = Receiver::start().await;
    rx.script(&[500]);
    let ep = endpoint(&rx.url("/"), schedule(&["100ms"]));
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(
        &store,
        DispatcherConfig {
            timer_capacity: 0,
            ..config()
        },
    );
    let jobs = published(&store, &ep, 1);
    d.handle.submit(jobs.clone());

    wait_for(5, "the delivery to succeed", || {
        all_have(&store, &jobs, DeliveryStatus::Succeeded)
    })
    .await;
    let outcomes = store.outcomes_for(&jobs[0].delivery);
    assert!(matches!(
        outcomes[0].next,
        NextStep::Retry {
            keep_claim: false,
            ..
        }
    ));
    assert_eq!(outcomes[1].next, NextStep::Succeeded);
    assert!(store
        .state
        .lock()
        .unwrap()
        .scanned
        .contains(&jobs[0].delivery));
    d.stop().await;
}

#[tokio::test]
async fn a_full_lane_sheds_jobs_to_the_store_and_gets_them_back() {
    let rx = Receiver::start().await;
    rx.delay(Duration::from_millis(20));
    let policy = DeliveryPolicy {
        max_in_flight: MaxInFlight(1),
        ..DeliveryPolicy::default()
    };
    let ep = endpoint(&rx.url("/"), policy);
    let store = FakeStore::with_endpoint(&ep);
    // No tick within the test: the shed work must come back because the lane
    // drained, not because a periodic scan happened to run.
    let d = Running::start(
        &store,
        DispatcherConfig {
            lane_queue: 2,
            scan_interval: Duration::from_secs(3600),
            ..config()
        },
    );
    let jobs = published(&store, &ep, 8);
    d.handle.submit(jobs.clone());

    wait_for(10, "deliveries to succeed", || {
        all_have(&store, &jobs, DeliveryStatus::Succeeded)
    })
    .await;
    {
        let st = store.state.lock().unwrap();
        assert!(!st.released.is_empty(), "the full lane released claims");
        assert!(
            st.released.iter().all(|id| st.scanned.contains(id)),
            "the scan claimed them again"
        );
    }
    assert_eq!(rx.count(), 8);
    d.stop().await;
}

#[tokio::test]
async fn max_in_flight_is_never_exceeded() {
    let rx = Receiver::start().await;
    rx.delay(Duration::from_millis(50));
    let policy = DeliveryPolicy {
        max_in_flight: MaxInFlight(2),
        ..DeliveryPolicy::default()
    };
    let ep = endpoint(&rx.url("/"), policy);
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(&store, config());
    let jobs = published(&store, &ep, 10);
    d.handle.submit(jobs.clone());

    wait_for(10, "deliveries to succeed", || {
        all_have(&store, &jobs, DeliveryStatus::Succeeded)
    })
    .await;
    let max = rx.state.max_concurrent.load(Ordering::SeqCst);
    assert!((1..=2).contains(&max), "max concurrent requests was {max}");
    d.stop().await;
}

#[tokio::test]
async fn jobs_overflowing_the_ready_queue_are_claimed_by_a_woken_scan() {
    let rx = Receiver::start().await;
    let ep = endpoint(&rx.url("/"), DeliveryPolicy::default());
    let store = FakeStore::with_endpoint(&ep);
    // No periodic scan within the test: the overflow must wake one.
    let d = Running::start(
        &store,
        DispatcherConfig {
            ready_queue: 2,
            scan_interval: Duration::from_secs(3600),
            ..config()
        },
    );
    wait_for(5, "the start-up scan", || {
        store.state.lock().unwrap().scans == 1
    })
    .await;
    let jobs = published(&store, &ep, 6);
    // The test runtime is single-threaded, so the dispatcher cannot drain the
    // queue while `submit` runs: 2 fit, 4 overflow.
    d.handle.submit(jobs.clone());

    wait_for(5, "deliveries to succeed", || {
        all_have(&store, &jobs, DeliveryStatus::Succeeded)
    })
    .await;
    {
        let st = store.state.lock().unwrap();
        for j in &jobs[2..] {
            assert!(st.released.contains(&j.delivery), "overflow claim released");
            assert!(
                st.scanned.contains(&j.delivery),
                "overflow picked up by the scan"
            );
        }
    }
    assert_eq!(rx.count(), 6);
    d.stop().await;
}

#[tokio::test]
async fn due_unclaimed_deliveries_are_found_by_the_scan_and_wake() {
    let rx = Receiver::start().await;
    let ep = endpoint(&rx.url("/"), DeliveryPolicy::default());
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(
        &store,
        DispatcherConfig {
            scan_interval: Duration::from_secs(3600),
            ..config()
        },
    );
    wait_for(5, "the start-up scan", || {
        store.state.lock().unwrap().scans == 1
    })
    .await;
    let j = job(&ep, "{}");
    store.add(&j, None); // e.g. a resend: pending, due now, unclaimed
    d.handle.wake();

    wait_for(5, "the resend to succeed", || {
        store.status(&j.delivery) == DeliveryStatus::Succeeded
    })
    .await;
    assert_eq!(
        store.state.lock().unwrap().scans,
        2,
        "found by the woken scan, not a tick"
    );
    d.stop().await;
}

#[tokio::test]
async fn jobs_of_disabled_endpoints_are_released_unsent() {
    let rx = Receiver::start().await;
    let mut ep = endpoint(&rx.url("/"), DeliveryPolicy::default());
    ep.spec.enabled = false;
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(&store, config());
    let jobs = published(&store, &ep, 2);
    d.handle.submit(jobs.clone());

    wait_for(5, "claims to be released", || {
        jobs.iter()
            .all(|j| store.row(&j.delivery).claimed_by.is_none())
    })
    .await;
    assert_eq!(rx.count(), 0);
    d.stop().await;
}

#[tokio::test]
async fn an_invalidated_endpoint_is_reloaded() {
    let rx = Receiver::start().await;
    let other = Receiver::start().await;
    let ep = endpoint(&rx.url("/"), DeliveryPolicy::default());
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(&store, config());
    let first = published(&store, &ep, 1);
    d.handle.submit(first.clone());
    wait_for(5, "first delivery", || {
        all_have(&store, &first, DeliveryStatus::Succeeded)
    })
    .await;

    let mut moved = ep.clone();
    moved.spec.url = aviso_core::url::EndpointUrl::parse(&other.url("/")).unwrap();
    store
        .state
        .lock()
        .unwrap()
        .endpoints
        .insert(ep.id.clone(), moved);
    d.handle.invalidate_endpoint(&ep.id);
    let second = published(&store, &ep, 1);
    d.handle.submit(second.clone());
    wait_for(5, "second delivery", || {
        all_have(&store, &second, DeliveryStatus::Succeeded)
    })
    .await;
    assert_eq!((rx.count(), other.count()), (1, 1));
    d.stop().await;
}
