//! Dispatcher shutdown: in-flight work finishes within the grace period,
//! outcomes are flushed and held claims released.

mod common;

use aviso_core::model::DeliveryStatus;
use aviso_core::policy::DeliveryPolicy;
use aviso_dispatch::DispatcherConfig;
use common::{config, endpoint, published, schedule, wait_for, FakeStore, Receiver, Running};
use std::time::Duration;

#[tokio::test]
async fn shutdown_finishes_in_flight_sends_flushes_outcomes_and_releases_held_claims() {
    let rx = Receiver::start().await;
    rx.delay(Duration::from_millis(300));
    rx.script(&[500]);
    let ep = endpoint(&rx.url("/"), schedule(&["1h"]));
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(&store, config());
    let retried = published(&store, &ep, 1);
    d.handle.submit(retried.clone());
    wait_for(5, "the retry to be scheduled", || {
        !store.outcomes_for(&retried[0].delivery).is_empty()
    })
    .await;

    let slow = published(&store, &ep, 1);
    d.handle.submit(slow.clone());
    wait_for(5, "the send to start", || rx.count() == 2).await;
    d.stop().await;

    assert_eq!(
        store.status(&slow[0].delivery),
        DeliveryStatus::Succeeded,
        "in-flight send finished"
    );
    assert_eq!(store.outcomes_for(&slow[0].delivery).len(), 1);
    let held = store.row(&retried[0].delivery);
    assert_eq!(held.status, DeliveryStatus::Pending);
    assert!(
        held.claimed_by.is_none(),
        "the timer heap's claim was released"
    );
}

#[tokio::test]
async fn shutdown_aborts_sends_after_the_grace_period() {
    let rx = Receiver::start().await;
    rx.delay(Duration::from_secs(30));
    let ep = endpoint(&rx.url("/"), DeliveryPolicy::default());
    let store = FakeStore::with_endpoint(&ep);
    let d = Running::start(
        &store,
        DispatcherConfig {
            shutdown_grace: Duration::from_millis(200),
            ..config()
        },
    );
    let jobs = published(&store, &ep, 1);
    d.handle.submit(jobs.clone());
    wait_for(5, "the send to start", || rx.count() == 1).await;
    d.stop().await;

    let row = store.row(&jobs[0].delivery);
    assert_eq!(
        row.status,
        DeliveryStatus::Pending,
        "left for a resend after restart"
    );
    assert!(row.claimed_by.is_none());
    assert!(store.outcomes_for(&jobs[0].delivery).is_empty());
}
