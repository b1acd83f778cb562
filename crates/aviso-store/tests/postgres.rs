//! PostgreSQL only: several stores (nodes) on one database.

#[path = "conformance/pg.rs"]
mod pg;
#[path = "conformance/support.rs"]
#[allow(dead_code)]
mod support;

use aviso_store::postgres::{PostgresOptions, PostgresStore};
use aviso_store::{EventQuery, StoreError, StoreSignal};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio::time::{timeout, Instant};

/// A node: a store of its own on the shared schema (claims shared per endpoint).
async fn node(schema: &pg::TestSchema, lease: Duration) -> Db {
    node_with(schema, lease, false).await
}

/// A node whose endpoints are exclusive (the server's default).
async fn exclusive_node(schema: &pg::TestSchema, lease: Duration) -> Db {
    node_with(schema, lease, true).await
}

async fn node_with(schema: &pg::TestSchema, lease: Duration, exclusive_endpoints: bool) -> Db {
    let opts = PostgresOptions {
        lease,
        exclusive_endpoints,
        ..Default::default()
    };
    Arc::new(PostgresStore::open(&schema.url, opts).await.unwrap())
}

/// Waits until `check` holds, failing after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next signal `want` accepts, within 10 s.
async fn next(
    rx: &mut tokio::sync::broadcast::Receiver<StoreSignal>,
    want: fn(&StoreSignal) -> bool,
) -> StoreSignal {
    timeout(Duration::from_secs(10), async {
        loop {
            let s = rx.recv().await.unwrap();
            if want(&s) {
                return s;
            }
        }
    })
    .await
    .expect("signal within 10 s")
}

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_claims_are_recovered_once_its_lease_expires() {
    let Some(admin) = pg::admin_url() else { return };
    let schema = pg::TestSchema::create(&admin).await;
    let (a, b) = (node(&schema, LONG).await, node(&schema, LONG).await);
    let t = tenant(&a, "t").await;
    endpoint(&a, &t, &[]).await;
    for ms in 0..3 {
        one_delivery(&a, &t, ms).await;
    }
    assert_eq!(
        a.claim_due("node-a", at(100), 10, &[]).await.unwrap().len(),
        3
    );
    assert_eq!(
        b.recover_claims("node-b").await.unwrap(),
        0,
        "node-a is alive"
    );
    assert!(b
        .claim_due("node-b", at(100), 10, &[])
        .await
        .unwrap()
        .is_empty());

    drop(a); // killed: it renews nothing any more
    schema
        .exec("UPDATE nodes SET lease_until = now() - interval '1 second' WHERE node = 'node-a'")
        .await;
    assert_eq!(b.recover_claims("node-b").await.unwrap(), 3);
    assert_eq!(
        b.claim_due("node-b", at(100), 10, &[]).await.unwrap().len(),
        3
    );
    drop(b);
    schema.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_leases_are_renewed_and_dead_ones_swept_without_a_restart() {
    let Some(admin) = pg::admin_url() else { return };
    let schema = pg::TestSchema::create(&admin).await;
    let lease = Duration::from_millis(600);
    let (a, b, c) = (
        node(&schema, lease).await,
        node(&schema, lease).await,
        node(&schema, lease).await,
    );
    let t = tenant(&a, "t").await;
    endpoint(&a, &t, &[]).await;
    let held = one_delivery(&a, &t, 0).await;
    assert_eq!(
        a.claim_due("node-a", at(100), 10, &[]).await.unwrap()[0].delivery,
        held
    );
    let orphan = one_delivery(&a, &t, 1).await;
    assert_eq!(
        c.claim_due("node-c", at(100), 10, &[]).await.unwrap()[0].delivery,
        orphan
    );
    drop(c);

    // Several lease periods pass: node-c's claim is swept by a live node's
    // keeper; node-a's claim survives because node-a keeps renewing.
    eventually(Duration::from_secs(10), "node-c's claim is swept", || {
        let b = b.clone();
        async move { b.next_due_at().await.unwrap().is_some() }
    })
    .await;
    tokio::time::sleep(lease * 2).await;
    let jobs = b.claim_due("node-b", at(100), 10, &[]).await.unwrap();
    assert_eq!(
        jobs.iter().map(|j| &j.delivery).collect::<Vec<_>>(),
        [&orphan],
        "only the dead node's claim was released"
    );
    drop((a, b));
    schema.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_hear_about_new_work_and_endpoint_changes() {
    let Some(admin) = pg::admin_url() else { return };
    let schema = pg::TestSchema::create(&admin).await;
    let (a, b) = (node(&schema, LONG).await, node(&schema, LONG).await);
    let mut signals = b.signals().expect("PostgreSQL sends signals");
    next(&mut signals, |s| *s == StoreSignal::Resync).await; // listening
    let t = tenant(&a, "t").await;
    let ep = endpoint(&a, &t, &[]).await;
    a.publish(event(&t, "A.X", json!({}), 0), None)
        .await
        .unwrap();
    next(&mut signals, |s| *s == StoreSignal::WorkDue).await;

    let mut changed = ep.clone();
    changed.spec.description = "moved".into();
    a.update_endpoint(changed).await.unwrap();
    let got = next(&mut signals, |s| {
        matches!(s, StoreSignal::EndpointChanged(_))
    })
    .await;
    assert_eq!(got, StoreSignal::EndpointChanged(ep.id.clone()));
    a.delete_endpoint(&ow(&t.id), &ep.id).await.unwrap();
    let got = next(&mut signals, |s| {
        matches!(s, StoreSignal::EndpointChanged(_))
    })
    .await;
    assert_eq!(got, StoreSignal::EndpointChanged(ep.id));
    let key = aviso_core::model::ApiKey {
        id: aviso_core::KeyId::new(),
        hash: "h".into(),
        scope: aviso_core::model::KeyScope::Admin,
        name: "k".into(),
        created_at: at(0),
    };
    a.create_api_key(key.clone()).await.unwrap();
    a.delete_api_key(&key.id).await.unwrap();
    next(&mut signals, |s| *s == StoreSignal::KeysChanged).await;
    drop((a, b));
    schema.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_of_two_nodes_never_overlap() {
    let Some(admin) = pg::admin_url() else { return };
    let schema = pg::TestSchema::create(&admin).await;
    let (a, b) = (node(&schema, LONG).await, node(&schema, LONG).await);
    let t = tenant(&a, "t").await;
    endpoint(&a, &t, &[]).await;
    endpoint(&a, &t, &[]).await;
    let publishes: Vec<_> = (0..300)
        .map(|i| {
            let (db, ev) = (a.clone(), event(&t, "A.X", json!({}), i));
            tokio::spawn(async move { db.publish(ev, None).await.unwrap() })
        })
        .collect();
    for p in publishes {
        p.await.unwrap();
    }
    let drain = |db: Db, node: &'static str| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let jobs = db.claim_due(node, at(1_000), 7, &[]).await.unwrap();
                if jobs.is_empty() {
                    return got;
                }
                got.extend(jobs.into_iter().map(|j| j.delivery));
            }
        })
    };
    let (ja, jb) = (drain(a.clone(), "node-a"), drain(b.clone(), "node-b"));
    let (ga, gb) = (ja.await.unwrap(), jb.await.unwrap());
    let all: BTreeSet<_> = ga.iter().chain(&gb).cloned().collect();
    assert_eq!(ga.len() + gb.len(), 600, "every delivery claimed once");
    assert_eq!(all.len(), 600, "no delivery claimed twice");
    assert!(!ga.is_empty() && !gb.is_empty(), "both nodes took work");
    drop((a, b));
    schema.drop_now().await;
}

/// The polling feed must never skip an event: with two nodes committing
/// side by side, a reader that follows the cursor still sees every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_cursor_never_skips_events_published_by_two_nodes() {
    let Some(admin) = pg::admin_url() else { return };
    let schema = pg::TestSchema::create(&admin).await;
    let (a, b) = (node(&schema, LONG).await, node(&schema, LONG).await);
    let t = tenant(&a, "t").await;
    endpoint(&a, &t, &[]).await;
    let per_node = 300;
    let publish_all = |db: Db| {
        let t = t.clone();
        tokio::spawn(async move {
            let tasks: Vec<_> = (0..per_node)
                .map(|i| {
                    let (db, ev) = (db.clone(), event(&t, "A.X", json!({"i": i}), i));
                    tokio::spawn(async move { db.publish(ev, None).await.unwrap() })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        })
    };
    let (pa, pb) = (publish_all(a.clone()), publish_all(b.clone()));
    let reader = b.clone();
    let mut seen = BTreeSet::new();
    let mut cursor = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 2 * per_node as usize {
        assert!(Instant::now() < deadline, "saw only {} events", seen.len());
        let page = reader
            .list_events(
                &t.id,
                EventQuery {
                    after_seq: cursor,
                    limit: 50,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if let Some(last) = page.last() {
            cursor = Some(last.seq);
        }
        for e in page {
            assert!(seen.insert(e.id), "an event came twice");
        }
        if pa.is_finished() && pb.is_finished() && cursor.is_some() {
            // All committed: one more pass must find nothing the cursor skipped.
            let rest = reader
                .list_events(
                    &t.id,
                    EventQuery {
                        after_seq: cursor,
                        limit: 1_000,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            for e in rest {
                seen.insert(e.id);
            }
            break;
        }
    }
    pa.await.unwrap();
    pb.await.unwrap();
    let total = reader
        .list_events(
            &t.id,
            EventQuery {
                limit: 10_000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .len();
    assert_eq!(total, 2 * per_node as usize);
    assert_eq!(
        seen.len(),
        total,
        "the cursor skipped events committed out of seq order"
    );
    drop((a, b, reader));
    schema.drop_now().await;
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable() {
    // Port 1 on loopback: nothing listens there.
    let r = aviso_store::open("postgres://postgres@127.0.0.1:1/none?connect_timeout=2").await;
    assert!(
        matches!(r, Err(StoreError::Unavailable(_))),
        "got {:?}",
        r.err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_endpoint_parent_is_not_found() {
    let Some(admin) = pg::admin_url() else { return };
    let schema = pg::TestSchema::create(&admin).await;
    let db = node(&schema, LONG).await;
    let t = tenant(&db, "t").await;
    let mut ep = endpoint_value(&t, spec(&[]));
    ep.owner = aviso_core::model::EndpointOwner::Tenant(aviso_core::TenantId::new());
    assert_not_found(db.create_endpoint(ep).await);
    drop(db);
    schema.drop_now().await;
}

fn endpoints_of(jobs: &[aviso_store::DispatchJob]) -> BTreeSet<aviso_core::EndpointId> {
    jobs.iter().map(|j| j.endpoint.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exclusive_endpoint_is_sent_to_by_one_node_at_a_time() {
    let Some(admin) = pg::admin_url() else { return };
    let schema = pg::TestSchema::create(&admin).await;
    let (a, b) = (
        exclusive_node(&schema, LONG).await,
        exclusive_node(&schema, LONG).await,
    );
    let t = tenant(&a, "t").await;
    let e1 = endpoint(&a, &t, &["A.X"]).await;
    let e2 = endpoint(&a, &t, &["B.X"]).await;
    for ms in 0..3 {
        a.publish(event(&t, "A.X", json!({}), ms), None)
            .await
            .unwrap();
        a.publish(event(&t, "B.X", json!({}), ms + 10), None)
            .await
            .unwrap();
    }
    // node-a takes the oldest delivery, and with it endpoint e1.
    let first = a.claim_due("node-a", at(100), 1, &[]).await.unwrap();
    assert_eq!(endpoints_of(&first), [e1.id.clone()].into());
    // node-b may only take e2's deliveries, however many it asks for.
    let theirs = b.claim_due("node-b", at(100), 100, &[]).await.unwrap();
    assert_eq!(theirs.len(), 3);
    assert_eq!(endpoints_of(&theirs), [e2.id.clone()].into());
    // A publish on node-b claims only what node-b owns; the rest waits for node-a.
    let p = b
        .publish(event(&t, "A.X", json!({}), 50), Some("node-b"))
        .await
        .unwrap();
    assert_eq!(p.deliveries.len(), 1);
    assert!(p.jobs.is_empty(), "e1 belongs to node-a");
    let p = b
        .publish(event(&t, "B.X", json!({}), 51), Some("node-b"))
        .await
        .unwrap();
    assert_eq!(p.jobs.len(), 1, "e2 belongs to node-b");
    assert!(b
        .claim_due("node-b", at(100), 100, &[])
        .await
        .unwrap()
        .is_empty());
    let mine = a.claim_due("node-a", at(100), 100, &[]).await.unwrap();
    assert_eq!(mine.len(), 3);
    assert_eq!(endpoints_of(&mine), [e1.id.clone()].into());

    // node-a leaves: its claims and its endpoint pass to node-b at once.
    a.leave("node-a").await.unwrap();
    let taken = b.claim_due("node-b", at(100), 100, &[]).await.unwrap();
    assert_eq!(taken.len(), 4);
    assert_eq!(endpoints_of(&taken), [e1.id.clone()].into());
    drop((a, b));
    schema.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_endpoint_moves_to_another_node() {
    let Some(admin) = pg::admin_url() else { return };
    let schema = pg::TestSchema::create(&admin).await;
    let (a, b) = (
        exclusive_node(&schema, Duration::from_millis(300)).await,
        exclusive_node(&schema, LONG).await,
    );
    let t = tenant(&a, "t").await;
    endpoint(&a, &t, &[]).await;
    let d = one_delivery(&a, &t, 0).await;
    assert_eq!(
        a.claim_due("node-a", at(100), 10, &[]).await.unwrap().len(),
        1
    );
    one_delivery(&a, &t, 1).await;
    assert!(
        b.claim_due("node-b", at(100), 10, &[])
            .await
            .unwrap()
            .is_empty(),
        "node-a owns the endpoint while it holds a claim"
    );
    a.record_outcomes(vec![outcome(
        &d,
        5,
        Some(200),
        aviso_store::NextStep::Succeeded,
    )])
    .await
    .unwrap();
    // node-a is alive but holds no claim on the endpoint: its keeper gives it up.
    eventually(Duration::from_secs(10), "node-b can claim", || {
        let b = b.clone();
        async move {
            !b.claim_due("node-b", at(100), 10, &[])
                .await
                .unwrap()
                .is_empty()
        }
    })
    .await;
    drop((a, b));
    schema.drop_now().await;
}
