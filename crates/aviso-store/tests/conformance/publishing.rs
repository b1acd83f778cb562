//! Publishing: routing, filters, idempotency, the events feed, group commit.

use super::support::*;
use aviso_core::model::DeliveryStatus;
use aviso_core::name::EventTypePattern;
use aviso_core::EndpointId;
use aviso_store::EventQuery;
use serde_json::json;
use std::collections::BTreeSet;

fn targets(p: &aviso_store::Published) -> BTreeSet<EndpointId> {
    p.deliveries.iter().map(|d| d.endpoint.clone()).collect()
}

pub async fn publish_routes_by_type(db: Db) {
    let t = tenant(&db, "t").await;
    let other = tenant(&db, "other").await;
    let exact = endpoint(&db, &t, &["A.X"]).await;
    let prefix = endpoint(&db, &t, &["A.*"]).await;
    let empty = endpoint(&db, &t, &[]).await;
    let star = endpoint(&db, &t, &["*"]).await;
    let b_only = endpoint(&db, &t, &["B.Y", "C.*"]).await;
    let mut off = endpoint_value(&t, spec(&["*"]));
    off.spec.enabled = false;
    db.create_endpoint(off).await.unwrap();
    endpoint(&db, &other, &[]).await;

    let p = db
        .publish(event(&t, "A.X", json!({"n": 1}), 10), None)
        .await
        .unwrap();
    assert!(p.created);
    assert_eq!(
        targets(&p),
        [&exact, &prefix, &empty, &star]
            .iter()
            .map(|e| e.id.clone())
            .collect()
    );
    for d in &p.deliveries {
        assert_eq!(d.event, p.event.id);
        assert_eq!(d.tenant, t.id);
        assert_eq!(d.event_type.as_str(), "A.X");
        assert_eq!(d.status, DeliveryStatus::Pending);
        assert_eq!((d.attempts, d.round_attempts), (0, 0));
        assert_eq!(d.round_started_at, at(10));
        assert_eq!(d.next_attempt_at, Some(at(10)));
        assert_eq!((d.last_status_code, d.last_error), (None, None));
    }
    assert_eq!(p.jobs.len(), 4);
    for j in &p.jobs {
        assert_eq!(&*j.payload, r#"{"n":1}"#);
        assert_eq!(j.due_at, at(10));
        assert!(p
            .deliveries
            .iter()
            .any(|d| d.id == j.delivery && d.endpoint == j.endpoint));
    }
    let (stored, deliveries) = db.get_event(&t.id, &p.event.id).await.unwrap();
    assert_eq!(stored, p.event);
    assert_eq!(
        deliveries
            .iter()
            .map(|d| d.id.clone())
            .collect::<BTreeSet<_>>(),
        p.deliveries
            .iter()
            .map(|d| d.id.clone())
            .collect::<BTreeSet<_>>()
    );

    let p = db
        .publish(event(&t, "A.XY", json!({}), 11), None)
        .await
        .unwrap();
    assert_eq!(
        targets(&p),
        [&prefix, &empty, &star]
            .iter()
            .map(|e| e.id.clone())
            .collect()
    );
    let p = db
        .publish(event(&t, "C.Z.W", json!({}), 12), None)
        .await
        .unwrap();
    assert_eq!(
        targets(&p),
        [&b_only, &empty, &star]
            .iter()
            .map(|e| e.id.clone())
            .collect()
    );
    let p = db
        .publish(event(&t, "AX.X", json!({}), 13), None)
        .await
        .unwrap();
    assert_eq!(
        targets(&p),
        [&empty, &star].iter().map(|e| e.id.clone()).collect()
    );

    // A new endpoint takes part in routing at once.
    let late = endpoint(&db, &t, &["D.D"]).await;
    let p = db
        .publish(event(&t, "D.D", json!({}), 14), None)
        .await
        .unwrap();
    assert!(targets(&p).contains(&late.id));
}

pub async fn publish_applies_payload_filter(db: Db) {
    let t = tenant(&db, "t").await;
    let mut s = spec(&[]);
    s.filter = serde_json::from_value(json!({"/status": {"eq": "paid"}})).unwrap();
    let filtered = db.create_endpoint(endpoint_value(&t, s)).await.unwrap();
    let open = endpoint(&db, &t, &[]).await;
    let p = db
        .publish(event(&t, "A.X", json!({"status": "paid"}), 0), None)
        .await
        .unwrap();
    assert_eq!(targets(&p), [filtered.id.clone(), open.id.clone()].into());
    let p = db
        .publish(event(&t, "A.X", json!({"status": "open"}), 1), None)
        .await
        .unwrap();
    assert_eq!(targets(&p), [open.id.clone()].into());
    let p = db
        .publish(event(&t, "A.X", json!([1, 2]), 2), None)
        .await
        .unwrap();
    assert_eq!(targets(&p), [open.id].into());
}

pub async fn publish_is_idempotent_per_tenant(db: Db) {
    let t = tenant(&db, "t").await;
    let u = tenant(&db, "u").await;
    endpoint(&db, &t, &[]).await;
    let mut first = event(&t, "A.X", json!({"v": 1}), 0);
    first.idempotency_key = Some("order-1".into());
    let a = db.publish(first, Some("n1")).await.unwrap();
    assert!(a.created);
    assert_eq!(a.jobs.len(), 1);

    endpoint(&db, &t, &[]).await; // would get a delivery if anything were written
    let mut again = event(&t, "A.X", json!({"v": 2}), 5);
    again.idempotency_key = Some("order-1".into());
    let b = db.publish(again, Some("n1")).await.unwrap();
    assert!(!b.created);
    assert!(b.jobs.is_empty());
    assert_eq!(b.event, a.event);
    assert_eq!(
        b.deliveries.iter().map(|d| &d.id).collect::<Vec<_>>(),
        a.deliveries.iter().map(|d| &d.id).collect::<Vec<_>>()
    );
    assert_eq!(
        db.list_events(
            &t.id,
            EventQuery {
                limit: 10,
                ..Default::default()
            }
        )
        .await
        .unwrap()
        .len(),
        1
    );

    let mut other_key = event(&t, "A.X", json!({}), 6);
    other_key.idempotency_key = Some("order-2".into());
    assert!(db.publish(other_key, None).await.unwrap().created);
    let mut other_tenant = event(&u, "A.X", json!({}), 7);
    other_tenant.idempotency_key = Some("order-1".into());
    assert!(db.publish(other_tenant, None).await.unwrap().created);
}

pub async fn list_events_by_seq_and_type(db: Db) {
    let t = tenant(&db, "t").await;
    let u = tenant(&db, "u").await;
    let types = ["A.X", "A.Y", "AB.X", "B_C.Z", "BXC.Z", "A.X"];
    let mut seqs = Vec::new();
    for (i, ty) in types.iter().enumerate() {
        seqs.push(
            db.publish(event(&t, ty, json!({"i": i}), i as i64), None)
                .await
                .unwrap()
                .event
                .seq,
        );
        db.publish(event(&u, ty, json!({}), i as i64), None)
            .await
            .unwrap();
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq grows in commit order: {seqs:?}"
    );

    let q = |after_seq, types: &[&str], limit| EventQuery {
        after_seq,
        types: types
            .iter()
            .map(|t| EventTypePattern::parse(t).unwrap())
            .collect(),
        limit,
    };
    let names = |evs: Vec<aviso_core::model::Event>| {
        evs.iter()
            .map(|e| e.event_type.to_string())
            .collect::<Vec<_>>()
    };
    let all = db.list_events(&t.id, q(None, &[], 100)).await.unwrap();
    assert_eq!(names(all.clone()), types);
    assert!(all.iter().all(|e| e.tenant == t.id));
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs);
    assert_eq!(all[1].payload.as_ref(), r#"{"i":1}"#);

    let page = db
        .list_events(&t.id, q(Some(seqs[1]), &[], 2))
        .await
        .unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs[2..4]);
    assert!(db
        .list_events(&t.id, q(Some(seqs[5]), &[], 10))
        .await
        .unwrap()
        .is_empty());

    assert_eq!(
        names(db.list_events(&t.id, q(None, &["A.X"], 10)).await.unwrap()),
        ["A.X", "A.X"]
    );
    assert_eq!(
        names(db.list_events(&t.id, q(None, &["A.*"], 10)).await.unwrap()),
        ["A.X", "A.Y", "A.X"]
    );
    assert_eq!(
        names(
            db.list_events(&t.id, q(None, &["B_C.*"], 10))
                .await
                .unwrap()
        ),
        ["B_C.Z"]
    );
    assert_eq!(
        names(
            db.list_events(&t.id, q(None, &["A.Y", "AB.*"], 10))
                .await
                .unwrap()
        ),
        ["A.Y", "AB.X"]
    );
    assert_eq!(
        db.list_events(&t.id, q(None, &["A.Y", "*"], 10))
            .await
            .unwrap()
            .len(),
        6
    );
    assert!(db
        .list_events(&t.id, q(None, &["Q.Q"], 10))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        names(
            db.list_events(&t.id, q(Some(seqs[0]), &["A.X"], 10))
                .await
                .unwrap()
        ),
        ["A.X"]
    );
}

pub async fn concurrent_publishes_all_commit_in_order(db: Db) {
    let t = tenant(&db, "t").await;
    endpoint(&db, &t, &[]).await;
    endpoint(&db, &t, &["A.*"]).await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (db, ev) = (db.clone(), event(&t, "A.X", json!({"i": i}), i));
            tokio::spawn(async move { db.publish(ev, None).await })
        })
        .collect();
    let mut published = Vec::new();
    for task in tasks {
        let p = task.await.unwrap().unwrap();
        assert!(p.created);
        assert_eq!(p.deliveries.len(), 2);
        published.push(p.event);
    }
    let seqs: BTreeSet<i64> = published.iter().map(|e| e.seq).collect();
    assert_eq!(seqs.len(), 200, "every event has its own seq");
    let feed = db
        .list_events(
            &t.id,
            EventQuery {
                limit: 500,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(feed.len(), 200);
    assert!(feed.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(feed.iter().map(|e| e.seq).collect::<BTreeSet<_>>(), seqs);
    let jobs = db.claim_due("n1", at(1_000), 1_000, &[]).await.unwrap();
    assert_eq!(jobs.len(), 400);
}
