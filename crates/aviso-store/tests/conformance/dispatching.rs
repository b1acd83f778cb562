//! Dispatch: claims and recorded outcomes.

use super::support::*;
use aviso_core::model::DeliveryStatus;
use aviso_core::{DeliveryId, EndpointId};
use aviso_store::NextStep;
use serde_json::json;

pub async fn claim_due_honours_time_claims_and_exclude(db: Db) {
    let t = tenant(&db, "t").await;
    let ep = endpoint(&db, &t, &[]).await;
    let u = tenant(&db, "u").await;
    let busy = endpoint(&db, &u, &[]).await;
    assert_eq!(db.next_due_at().await.unwrap(), None);
    let d30 = one_delivery(&db, &t, 30).await;
    let d10 = one_delivery(&db, &t, 10).await;
    let d20 = one_delivery(&db, &t, 20).await;
    let late = one_delivery(&db, &t, 500).await;
    let excluded = one_delivery(&db, &u, 5).await;
    assert_eq!(db.next_due_at().await.unwrap(), Some(at(5)));

    let jobs = db
        .claim_due("n1", at(100), 2, std::slice::from_ref(&busy.id))
        .await
        .unwrap();
    assert_eq!(
        jobs.iter().map(|j| &j.delivery).collect::<Vec<_>>(),
        [&d10, &d20],
        "oldest due first"
    );
    assert_eq!(jobs[0].endpoint, ep.id);
    assert_eq!(jobs[0].tenant, t.id);
    assert_eq!(jobs[0].due_at, at(10));
    assert_eq!(&*jobs[0].payload, r#"{"ms":10}"#);
    assert_eq!(jobs[0].event_type.as_str(), "A.X");
    assert_eq!(
        (
            jobs[0].attempts,
            jobs[0].round_attempts,
            jobs[0].round_started_at
        ),
        (0, 0, at(10))
    );

    let jobs = db
        .claim_due("n2", at(100), 10, std::slice::from_ref(&busy.id))
        .await
        .unwrap();
    assert_eq!(
        jobs.iter().map(|j| &j.delivery).collect::<Vec<_>>(),
        [&d30],
        "claimed rows are not returned twice"
    );
    assert_eq!(db.next_due_at().await.unwrap(), Some(at(5)));
    let jobs = db
        .claim_due("n2", at(100), 10, &[EndpointId::new()])
        .await
        .unwrap();
    assert_eq!(
        jobs.iter().map(|j| &j.delivery).collect::<Vec<_>>(),
        [&excluded]
    );
    assert_eq!(db.next_due_at().await.unwrap(), Some(at(500)));
    assert!(db
        .claim_due("n1", at(499), 10, &[])
        .await
        .unwrap()
        .is_empty());
    let jobs = db.claim_due("n1", at(500), 10, &[]).await.unwrap();
    assert_eq!(
        jobs.iter().map(|j| &j.delivery).collect::<Vec<_>>(),
        [&late],
        "due at exactly due_before"
    );
    assert_eq!(db.next_due_at().await.unwrap(), None);
    assert!(db
        .claim_due("n1", at(10_000), 10, &[])
        .await
        .unwrap()
        .is_empty());
}

pub async fn release_and_recover_claims(db: Db, backend: Backend) {
    let t = tenant(&db, "t").await;
    endpoint(&db, &t, &[]).await;
    let mut delivery_ids = Vec::new();
    for ms in 1..=4 {
        delivery_ids.push(one_delivery(&db, &t, ms).await);
    }
    assert_eq!(db.claim_due("n1", at(100), 10, &[]).await.unwrap().len(), 4);
    db.release_claims(&delivery_ids[..1]).await.unwrap();
    db.release_claims(&[]).await.unwrap();
    let jobs = db.claim_due("n2", at(100), 10, &[]).await.unwrap();
    assert_eq!(
        jobs.iter().map(|j| &j.delivery).collect::<Vec<_>>(),
        [&delivery_ids[0]]
    );
    if backend.shared {
        assert_eq!(
            db.recover_claims("n9").await.unwrap(),
            0,
            "n1 and n2 are alive"
        );
        assert_eq!(db.next_due_at().await.unwrap(), None);
        assert!(db
            .claim_due("n3", at(100), 10, &[])
            .await
            .unwrap()
            .is_empty());
        return;
    }
    assert_eq!(db.recover_claims("n9").await.unwrap(), 4);
    assert_eq!(db.next_due_at().await.unwrap(), Some(at(1)));
    assert_eq!(db.claim_due("n3", at(100), 10, &[]).await.unwrap().len(), 4);
    // The caller's own claims stay (recovery may run beside its dispatcher).
    assert_eq!(db.recover_claims("n3").await.unwrap(), 0);
    assert_eq!(db.next_due_at().await.unwrap(), None);
    assert_eq!(db.recover_claims("n9").await.unwrap(), 4);
    assert_eq!(db.recover_claims("n9").await.unwrap(), 0);
}

pub async fn publish_claims_for_the_given_node(db: Db) {
    let t = tenant(&db, "t").await;
    endpoint(&db, &t, &[]).await;
    let mine = db
        .publish(event(&t, "A.X", json!({}), 0), Some("n1"))
        .await
        .unwrap();
    assert_eq!(mine.jobs.len(), 1);
    assert!(
        db.claim_due("n2", at(100), 10, &[])
            .await
            .unwrap()
            .is_empty(),
        "already claimed"
    );
    assert_eq!(db.next_due_at().await.unwrap(), None);
    let free = one_delivery(&db, &t, 1).await;
    assert_eq!(
        db.claim_due("n2", at(100), 10, &[]).await.unwrap()[0].delivery,
        free
    );
    db.release_claims(&[mine.jobs[0].delivery.clone()])
        .await
        .unwrap();
    assert_eq!(
        db.claim_due("n2", at(100), 10, &[]).await.unwrap()[0].delivery,
        mine.jobs[0].delivery
    );
}

pub async fn record_outcomes_moves_deliveries_on(db: Db, backend: Backend) {
    let t = tenant(&db, "t").await;
    endpoint(&db, &t, &[]).await;
    let ok = one_delivery(&db, &t, 0).await;
    let retry_kept = one_delivery(&db, &t, 1).await;
    let retry_free = one_delivery(&db, &t, 2).await;
    let failed = one_delivery(&db, &t, 3).await;
    assert_eq!(db.claim_due("n1", at(10), 10, &[]).await.unwrap().len(), 4);

    let success = outcome(&ok, 20, Some(200), NextStep::Succeeded);
    db.record_outcomes(vec![
        success.clone(),
        outcome(
            &retry_kept,
            21,
            Some(503),
            NextStep::Retry {
                at: at(1_000),
                keep_claim: true,
            },
        ),
        outcome(
            &retry_free,
            22,
            None,
            NextStep::Retry {
                at: at(2_000),
                keep_claim: false,
            },
        ),
        outcome(&failed, 23, Some(410), NextStep::Failed),
        outcome(&DeliveryId::new(), 24, Some(200), NextStep::Succeeded), // unknown: skipped
    ])
    .await
    .unwrap();
    db.record_outcomes(vec![]).await.unwrap();

    let (d, attempts) = db.get_delivery(&ow(&t.id), &ok).await.unwrap();
    assert_eq!(
        (d.status, d.attempts, d.round_attempts, d.next_attempt_at),
        (DeliveryStatus::Succeeded, 1, 1, None)
    );
    assert_eq!(d.last_status_code, Some(200));
    assert_eq!(attempts, vec![success.attempt]);

    let (d, attempts) = db.get_delivery(&ow(&t.id), &retry_kept).await.unwrap();
    assert_eq!(
        (d.status, d.attempts, d.next_attempt_at),
        (DeliveryStatus::Pending, 1, Some(at(1_000)))
    );
    assert_eq!(
        (d.last_status_code, d.last_error),
        (Some(503), Some(aviso_core::model::AttemptError::Status))
    );
    assert_eq!(attempts.len(), 1);

    let (d, _) = db.get_delivery(&ow(&t.id), &failed).await.unwrap();
    assert_eq!(
        (d.status, d.attempts, d.next_attempt_at),
        (DeliveryStatus::Failed, 1, None)
    );

    // Only the released retry is claimable; the kept one stays with n1.
    assert_eq!(db.next_due_at().await.unwrap(), Some(at(2_000)));
    let jobs = db.claim_due("n2", at(5_000), 10, &[]).await.unwrap();
    assert_eq!(
        jobs.iter().map(|j| &j.delivery).collect::<Vec<_>>(),
        [&retry_free]
    );
    assert_eq!(
        (jobs[0].attempts, jobs[0].round_attempts, jobs[0].due_at),
        (1, 1, at(2_000))
    );

    // Outcomes of one retry round accumulate.
    db.record_outcomes(vec![outcome(
        &retry_free,
        2_001,
        Some(200),
        NextStep::Succeeded,
    )])
    .await
    .unwrap();
    let (d, attempts) = db.get_delivery(&ow(&t.id), &retry_free).await.unwrap();
    assert_eq!(
        (d.status, d.attempts, d.round_attempts),
        (DeliveryStatus::Succeeded, 2, 2)
    );
    assert_eq!(
        attempts.iter().map(|a| a.at).collect::<Vec<_>>(),
        [at(22), at(2_001)],
        "oldest first"
    );
    let left = if backend.shared { 0 } else { 1 };
    assert_eq!(
        db.recover_claims("n9").await.unwrap(),
        left,
        "the kept claim is the only one left (and held by a live node when shared)"
    );
}

pub async fn outcomes_for_cancelled_and_deleted_deliveries(db: Db) {
    let t = tenant(&db, "t").await;
    let ep = endpoint(&db, &t, &[]).await;
    let doomed = endpoint(&db, &t, &["A.*"]).await;
    let p = db
        .publish(event(&t, "A.X", json!({}), 0), Some("n1"))
        .await
        .unwrap();
    let on = |e: &EndpointId| {
        p.deliveries
            .iter()
            .find(|d| &d.endpoint == e)
            .unwrap()
            .id
            .clone()
    };
    let (cancelled, deleted) = (on(&ep.id), on(&doomed.id));

    let mut off = ep.clone();
    off.spec.enabled = false;
    db.update_endpoint(off).await.unwrap();
    db.delete_endpoint(&ow(&t.id), &doomed.id).await.unwrap();
    db.record_outcomes(vec![
        outcome(&cancelled, 5, Some(200), NextStep::Succeeded),
        outcome(&deleted, 5, Some(200), NextStep::Succeeded),
    ])
    .await
    .unwrap();
    let (d, attempts) = db.get_delivery(&ow(&t.id), &cancelled).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Cancelled, "status kept");
    assert_eq!(attempts.len(), 1, "attempt recorded");
    assert_not_found(db.get_delivery(&ow(&t.id), &deleted).await);
}

/// Ordered endpoints: a delivery is claimed only behind older pending ones of
/// its key that the same node holds, so order survives restarts and nodes.
pub async fn ordered_deliveries_are_claimed_in_turn(db: Db) {
    use aviso_core::flow::{DeliveryOrder, JsonPointer};
    let t = tenant(&db, "t").await;
    let mut s = spec(&[]);
    s.policy.ordering = DeliveryOrder::FifoKey(JsonPointer::parse("/k").unwrap());
    db.create_endpoint(endpoint_value(&t, s)).await.unwrap();
    let publish = |k: &'static str, ms: i64, node: Option<&'static str>| {
        let db = db.clone();
        let ev = event(&t, "A.X", json!({ "k": k }), ms);
        async move { db.publish(ev, node).await.unwrap() }
    };
    let a1 = publish("a", 10, None).await.deliveries[0].id.clone();
    let a2 = publish("a", 20, None).await.deliveries[0].id.clone();
    let b1 = publish("b", 30, None).await.deliveries[0].id.clone();
    let a3 = publish("a", 40, None).await.deliveries[0].id.clone();
    let ids = |jobs: Vec<aviso_store::DispatchJob>| {
        jobs.into_iter().map(|j| j.delivery).collect::<Vec<_>>()
    };

    let all = ids(db.claim_due("n1", at(100), 10, &[]).await.unwrap());
    assert_eq!(
        all,
        [a1.clone(), a2.clone(), b1.clone(), a3.clone()],
        "one scan claims whole lines in turn"
    );

    // The head of line "a" fails and is released with a retry due later (as
    // after a restart); the rest of its line waits, other lines go on.
    db.release_claims(&all).await.unwrap();
    db.record_outcomes(vec![outcome(
        &a1,
        50,
        Some(500),
        NextStep::Retry {
            at: at(500),
            keep_claim: false,
        },
    )])
    .await
    .unwrap();
    let got = ids(db.claim_due("n1", at(100), 10, &[]).await.unwrap());
    assert_eq!(got, [b1], "a2 and a3 wait behind their head a1");
    let got = ids(db.claim_due("n1", at(100), 1, &[]).await.unwrap());
    assert!(got.is_empty(), "still behind a1: {got:?}");

    // Once due, the head is claimed; its line waits until it is done.
    let got = ids(db.claim_due("n2", at(600), 10, &[]).await.unwrap());
    assert_eq!(
        got,
        std::slice::from_ref(&a1),
        "the head alone: a2 and a3 are due before it"
    );
    assert!(db
        .claim_due("n2", at(600), 10, &[])
        .await
        .unwrap()
        .is_empty());
    db.record_outcomes(vec![outcome(&a1, 610, Some(200), NextStep::Succeeded)])
        .await
        .unwrap();
    let got = ids(db.claim_due("n2", at(620), 10, &[]).await.unwrap());
    assert_eq!(
        got,
        [a2.clone(), a3.clone()],
        "then the rest of the line, in order"
    );

    // A new delivery of a line another node holds is not claimed on publish;
    // one of a fresh line is, unless its head waits for a retry.
    let p = publish("a", 700, Some("n1")).await;
    assert!(p.jobs.is_empty(), "a4 waits behind n2's line");
    let p = publish("c", 710, Some("n1")).await;
    assert_eq!(p.jobs.len(), 1, "c1 has no line ahead of it");
    let c1 = p.jobs[0].delivery.clone();
    db.record_outcomes(vec![outcome(
        &c1,
        711,
        Some(500),
        NextStep::Retry {
            at: at(5_000),
            keep_claim: true,
        },
    )])
    .await
    .unwrap();
    let p = publish("c", 712, Some("n1")).await;
    assert!(
        p.jobs.is_empty(),
        "c2 waits in the database behind c1's retry"
    );
    let p = publish("a", 720, Some("n2")).await;
    assert_eq!(p.jobs.len(), 0, "a5 waits behind a4, which nobody holds");
    db.record_outcomes(vec![
        outcome(&a2, 801, Some(200), NextStep::Succeeded),
        outcome(&a3, 802, Some(200), NextStep::Succeeded),
    ])
    .await
    .unwrap();
    let got = db.claim_due("n1", at(1000), 10, &[]).await.unwrap();
    assert_eq!(
        got.len(),
        2,
        "a4 then a5 once the line ahead is done: {got:?}"
    );
    assert!(got.iter().all(|j| j.payload.contains("\"a\"")));
}

/// Deliveries a replay adds to an ordered endpoint join its lines like
/// published ones: another node cannot take a follower while one holds the head.
pub async fn replayed_deliveries_join_their_line(db: Db) {
    use aviso_core::flow::DeliveryOrder;
    use aviso_core::ops::{Task, TaskSpec};
    let t = tenant(&db, "t").await;
    for ms in [10, 20] {
        let p = db
            .publish(event(&t, "A.X", json!({ "ms": ms }), ms), None)
            .await
            .unwrap();
        assert!(p.deliveries.is_empty(), "no endpoint yet");
    }
    let mut s = spec(&[]);
    s.policy.ordering = DeliveryOrder::Fifo;
    let ep = db.create_endpoint(endpoint_value(&t, s)).await.unwrap();
    let replay = TaskSpec::Replay {
        since: at(0),
        until: at(100),
    };
    let task = Task::new(ow(&t.id), ep.id.clone(), replay, None, at(100));
    let (task, _) = db.create_task(task).await.unwrap();
    db.claim_task("n1", at(200), at(30_000))
        .await
        .unwrap()
        .unwrap();
    let done = db
        .step_task(&task.id, "n1", at(200), at(30_000), 100)
        .await
        .unwrap();
    assert_eq!(done.queued, 2);
    let head = db.claim_due("n1", at(300), 1, &[]).await.unwrap();
    assert_eq!(head.len(), 1);
    assert!(
        head[0].payload.contains("10"),
        "the older event heads the line"
    );
    let got = db.claim_due("n2", at(300), 10, &[]).await.unwrap();
    assert!(
        got.is_empty(),
        "the follower waits behind n1's head: {got:?}"
    );
}

/// A fan-out wider than one insert statement (backends may batch rows) stores
/// every delivery with its own endpoint and ordering key, and claims exactly
/// those not waiting behind an unclaimed older delivery of their line.
pub async fn a_wide_fan_out_stores_and_claims_each_delivery(db: Db) {
    use aviso_core::flow::{DeliveryOrder, JsonPointer};
    use std::collections::BTreeMap;
    let t = tenant(&db, "t").await;
    let mut ordered = Vec::new();
    for i in 0..37 {
        if i % 9 == 4 {
            let mut s = spec(&[]);
            s.policy.ordering = DeliveryOrder::FifoKey(JsonPointer::parse("/k").unwrap());
            ordered.push(db.create_endpoint(endpoint_value(&t, s)).await.unwrap().id);
        } else {
            endpoint(&db, &t, &[]).await;
        }
    }
    // An unclaimed older delivery on each ordered endpoint's line "a".
    let older = db
        .publish(event(&t, "A.X", json!({ "k": "a" }), 10), None)
        .await
        .unwrap();
    assert_eq!(older.deliveries.len(), 37);
    let p = db
        .publish(event(&t, "A.X", json!({ "k": "a" }), 20), Some("n1"))
        .await
        .unwrap();
    assert_eq!(p.deliveries.len(), 37);
    let claimed: BTreeMap<_, _> = p
        .jobs
        .iter()
        .map(|j| (j.delivery.clone(), j.endpoint.clone()))
        .collect();
    assert_eq!(claimed.len(), 37 - ordered.len());
    for d in &p.deliveries {
        assert_eq!(
            claimed.get(&d.id),
            (!ordered.contains(&d.endpoint)).then_some(&d.endpoint),
            "claimed unless it waits behind its line"
        );
    }
    let (_, stored) = db.get_event(&t.id, &p.event.id).await.unwrap();
    let by_id = |ds: &[aviso_core::model::Delivery]| {
        ds.iter()
            .map(|d| {
                (
                    d.id.clone(),
                    (d.endpoint.clone(), d.status, d.next_attempt_at),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(by_id(&stored), by_id(&p.deliveries));

    // What this node did not claim is due for the scan: the older event's
    // deliveries and, behind them in their lines, this event's ordered ones.
    let mut due: Vec<_> = db
        .claim_due("n2", at(100), 100, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.delivery)
        .collect();
    due.sort();
    let mut expected: Vec<_> = older
        .deliveries
        .iter()
        .chain(
            p.deliveries
                .iter()
                .filter(|d| ordered.contains(&d.endpoint)),
        )
        .map(|d| d.id.clone())
        .collect();
    expected.sort();
    assert_eq!(due, expected);
}
