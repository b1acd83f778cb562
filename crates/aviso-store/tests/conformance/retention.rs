//! Retention: batches purge old finished work and nothing else.

use super::support::*;
use aviso_store::{EventQuery, NextStep, Purged};
use serde_json::json;

pub async fn purge_removes_old_finished_work_only(db: Db) {
    let t = tenant(&db, "t").await;
    endpoint(&db, &t, &[]).await;
    let quiet = tenant(&db, "quiet").await; // no endpoints: its events get no deliveries
    let publish = |tn: &aviso_core::model::Tenant, ms: i64| {
        let (db, ev) = (db.clone(), event(tn, "A.X", json!({ "ms": ms }), ms));
        async move { db.publish(ev, None).await.unwrap() }
    };
    let old_ok = publish(&t, 10).await;
    let old_pending = publish(&t, 15).await;
    let old_failed = publish(&t, 18).await;
    let new_ok = publish(&t, 5_000).await;
    let old_quiet = publish(&quiet, 12).await;
    let new_quiet = publish(&quiet, 6_000).await;
    let dlv = |p: &aviso_store::Published| p.deliveries[0].id.clone();
    db.record_outcomes(vec![
        outcome(&dlv(&old_ok), 20, Some(200), NextStep::Succeeded),
        outcome(
            &dlv(&old_pending),
            25,
            Some(500),
            NextStep::Retry {
                at: at(90_000),
                keep_claim: false,
            },
        ),
        outcome(&dlv(&old_failed), 30, Some(500), NextStep::Failed),
        outcome(&dlv(&new_ok), 5_010, Some(200), NextStep::Succeeded),
    ])
    .await
    .unwrap();

    let first = db.purge(at(1_000), 1).await.unwrap();
    assert_eq!(
        (first.deliveries, first.attempts, first.events),
        (1, 1, 1),
        "batches are bounded: {first:?}"
    );
    let mut total = first;
    loop {
        let p = db.purge(at(1_000), 1).await.unwrap();
        if p.total() == 0 {
            break;
        }
        total += p;
    }
    assert_eq!(
        (total.deliveries, total.attempts, total.events),
        (2, 2, 3),
        "{total:?}"
    );

    for gone in [&old_ok, &old_failed] {
        assert_not_found(db.get_event(&t.id, &gone.event.id).await);
        assert_not_found(db.get_delivery(&ow(&t.id), &dlv(gone)).await);
    }
    assert_not_found(db.get_event(&quiet.id, &old_quiet.event.id).await);
    let (_, ds) = db.get_event(&t.id, &old_pending.event.id).await.unwrap();
    assert_eq!(ds.len(), 1, "a pending delivery keeps its event");
    let (_, attempts) = db
        .get_delivery(&ow(&t.id), &dlv(&old_pending))
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1, "and its attempts");
    let (_, attempts) = db.get_delivery(&ow(&t.id), &dlv(&new_ok)).await.unwrap();
    assert_eq!(attempts.len(), 1, "newer work stays whole");
    let feed = db
        .list_events(
            &quiet.id,
            EventQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        feed.iter().map(|e| &e.id).collect::<Vec<_>>(),
        [&new_quiet.event.id]
    );
    let from = |after_seq| EventQuery {
        after_seq: Some(after_seq),
        limit: 10,
        ..Default::default()
    };
    assert!(
        matches!(
            db.list_events(&quiet.id, from(0)).await,
            Err(aviso_store::StoreError::Expired(_))
        ),
        "a cursor before a purged event is expired"
    );
    let feed = db
        .list_events(&quiet.id, from(old_quiet.event.seq))
        .await
        .unwrap();
    assert_eq!(feed.len(), 1, "a cursor past every purged event reads on");
    assert_eq!(
        db.purge(at(1_000), 100).await.unwrap(),
        Purged::default(),
        "nothing left to purge"
    );
}
