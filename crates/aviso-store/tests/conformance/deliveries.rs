//! A delivery's life after dispatch: resends, cancellation, listing, deletion.

use super::support::*;
use aviso_core::model::DeliveryStatus;
use aviso_core::{DeliveryId, EndpointId};
use aviso_store::NextStep;
use serde_json::json;

pub async fn resend_rules(db: Db) {
    let t = tenant(&db, "t").await;
    let ep = endpoint(&db, &t, &[]).await;
    let id = one_delivery(&db, &t, 0).await;
    assert_conflict(
        db.resend_delivery(&ow(&t.id), &id, at(1)).await,
        "already pending",
    );
    db.record_outcomes(vec![outcome(
        &id,
        5,
        Some(500),
        NextStep::Retry {
            at: at(10),
            keep_claim: false,
        },
    )])
    .await
    .unwrap();
    db.record_outcomes(vec![outcome(&id, 10, Some(500), NextStep::Failed)])
        .await
        .unwrap();
    assert_eq!(status(&db, &t, &id).await, DeliveryStatus::Failed);

    let d = db.resend_delivery(&ow(&t.id), &id, at(100)).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!((d.attempts, d.round_attempts), (2, 0));
    assert_eq!(
        (d.round_started_at, d.next_attempt_at, d.updated_at),
        (at(100), Some(at(100)), at(100))
    );
    assert_eq!(db.get_delivery(&ow(&t.id), &id).await.unwrap().0, d);
    let jobs = db.claim_due("n1", at(100), 10, &[]).await.unwrap();
    assert_eq!(
        (jobs.len(), jobs[0].round_started_at, jobs[0].round_attempts),
        (1, at(100), 0)
    );
    db.record_outcomes(vec![outcome(&id, 101, Some(200), NextStep::Succeeded)])
        .await
        .unwrap();
    let (d, attempts) = db.get_delivery(&ow(&t.id), &id).await.unwrap();
    assert_eq!(
        (d.status, d.attempts, d.round_attempts, attempts.len()),
        (DeliveryStatus::Succeeded, 3, 1, 3)
    );

    let mut off = ep.clone();
    off.spec.enabled = false;
    db.update_endpoint(off).await.unwrap();
    assert_conflict(
        db.resend_delivery(&ow(&t.id), &id, at(200)).await,
        "endpoint is disabled",
    );
    assert_not_found(
        db.resend_delivery(&ow(&t.id), &DeliveryId::new(), at(200))
            .await,
    );
}

pub async fn disabling_an_endpoint_cancels_pending(db: Db) {
    let t = tenant(&db, "t").await;
    let ep = endpoint(&db, &t, &[]).await;
    let keep = endpoint(&db, &t, &[]).await;
    let done = one_delivery_on(&db, &t, &ep, 0).await;
    db.record_outcomes(vec![outcome(&done, 1, Some(200), NextStep::Succeeded)])
        .await
        .unwrap();
    let waiting = one_delivery_on(&db, &t, &ep, 2).await;
    let claimed = db
        .publish(event(&t, "A.X", json!({}), 3), Some("n1"))
        .await
        .unwrap();

    let mut off = ep.clone();
    off.spec.enabled = false;
    off.disabled_reason = Some("manual".into());
    off.updated_at = at(50);
    db.update_endpoint(off).await.unwrap();
    assert_eq!(status(&db, &t, &done).await, DeliveryStatus::Succeeded);
    let (w, _) = db.get_delivery(&ow(&t.id), &waiting).await.unwrap();
    assert_eq!(
        (w.status, w.next_attempt_at),
        (DeliveryStatus::Cancelled, None)
    );
    for d in &claimed.deliveries {
        let want = if d.endpoint == ep.id {
            DeliveryStatus::Cancelled
        } else {
            DeliveryStatus::Pending
        };
        assert_eq!(status(&db, &t, &d.id).await, want);
    }
    let p = db
        .publish(event(&t, "A.X", json!({}), 60), None)
        .await
        .unwrap();
    assert_eq!(
        p.deliveries.iter().map(|d| &d.endpoint).collect::<Vec<_>>(),
        [&keep.id]
    );
    let jobs = db.claim_due("n2", at(1_000), 100, &[]).await.unwrap();
    assert!(jobs.iter().all(|j| j.endpoint == keep.id));

    let mut on = db.get_endpoint(&ow(&t.id), &ep.id).await.unwrap();
    on.spec.enabled = true;
    db.update_endpoint(on).await.unwrap();
    assert_eq!(
        db.publish(event(&t, "A.X", json!({}), 70), None)
            .await
            .unwrap()
            .deliveries
            .len(),
        2
    );
    assert_eq!(
        status(&db, &t, &waiting).await,
        DeliveryStatus::Cancelled,
        "re-enabling resumes nothing"
    );
}
pub async fn list_deliveries_newest_first(db: Db) {
    let t = tenant(&db, "t").await;
    let ep = endpoint(&db, &t, &[]).await;
    let mut ids = Vec::new();
    for ms in 0..5 {
        ids.push(one_delivery(&db, &t, ms).await);
    }
    db.record_outcomes(vec![outcome(&ids[1], 9, Some(200), NextStep::Succeeded)])
        .await
        .unwrap();
    ids.sort();
    ids.reverse();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let p = db
            .list_deliveries(&ow(&t.id), &ep.id, any(), page(after, 2))
            .await
            .unwrap();
        seen.extend(p.items.iter().map(|d| d.id.clone()));
        match p.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let pending = db
        .list_deliveries(
            &ow(&t.id),
            &ep.id,
            by_status(DeliveryStatus::Pending),
            page(None, 10),
        )
        .await
        .unwrap();
    assert_eq!(pending.items.len(), 4);
    assert!(pending
        .items
        .iter()
        .all(|d| d.status == DeliveryStatus::Pending));
    let done = db
        .list_deliveries(
            &ow(&t.id),
            &ep.id,
            by_status(DeliveryStatus::Succeeded),
            page(None, 10),
        )
        .await
        .unwrap();
    assert_eq!(done.items.len(), 1);
    assert!(done.next.is_none());
    assert_not_found(
        db.list_deliveries(&ow(&t.id), &EndpointId::new(), any(), page(None, 10))
            .await,
    );
}

pub async fn deleting_an_endpoint_removes_its_deliveries(db: Db) {
    let t = tenant(&db, "t").await;
    let ep = endpoint(&db, &t, &[]).await;
    let keep = endpoint(&db, &t, &[]).await;
    let p = db
        .publish(event(&t, "A.X", json!({}), 0), None)
        .await
        .unwrap();
    let gone = p
        .deliveries
        .iter()
        .find(|d| d.endpoint == ep.id)
        .unwrap()
        .id
        .clone();
    db.record_outcomes(vec![outcome(&gone, 1, Some(500), NextStep::Failed)])
        .await
        .unwrap();
    db.delete_endpoint(&ow(&t.id), &ep.id).await.unwrap();
    assert_not_found(db.get_delivery(&ow(&t.id), &gone).await);
    let (_, deliveries) = db.get_event(&t.id, &p.event.id).await.unwrap();
    assert_eq!(
        deliveries.iter().map(|d| &d.endpoint).collect::<Vec<_>>(),
        [&keep.id]
    );
    let p = db
        .publish(event(&t, "A.X", json!({}), 2), None)
        .await
        .unwrap();
    assert_eq!(p.deliveries.len(), 1, "deleted endpoint no longer routed");
}
