//! Partners and their endpoints, audit reads, test sends and background tasks.

use super::support::*;
use aviso_core::model::{Coverage, DeliveryStatus, EndpointOwner, Owner, Partner, Tenant};
use aviso_core::name::EventTypePattern;
use aviso_core::ops::{EndpointTest, Task, TaskSpec, TaskStatus};
use aviso_core::{EventId, PartnerId, TenantId};
use aviso_store::{DeliveryFilter, NextStep, StoreError};
use serde_json::json;

async fn partner(db: &Db, name: &str) -> Partner {
    let p = Partner {
        id: PartnerId::new(),
        name: name.into(),
        metadata: json!({}),
        created_at: at(0),
        updated_at: at(0),
    };
    db.create_partner(p).await.unwrap()
}

async fn partner_tenant(db: &Db, uid: &str, p: &Partner) -> Tenant {
    let mut t = tenant(db, uid).await;
    t.partner = Some(p.id.clone());
    db.update_tenant(t).await.unwrap()
}

fn partner_endpoint(p: &Partner, covers: Coverage) -> aviso_core::model::Endpoint {
    let stand_in = Tenant {
        id: TenantId::new(),
        uid: String::new(),
        name: String::new(),
        partner: None,
        metadata: json!({}),
        created_at: at(0),
        updated_at: at(0),
    };
    let mut ep = endpoint_value(&stand_in, spec(&[]));
    ep.owner = EndpointOwner::Partner {
        partner: p.id.clone(),
        covers,
    };
    ep
}

/// Endpoints a publish for `t` routes to.
async fn routed(db: &Db, t: &Tenant) -> Vec<aviso_core::EndpointId> {
    let p = db
        .publish(event(t, "A.X", json!({}), 1), None)
        .await
        .unwrap();
    let mut to: Vec<_> = p.deliveries.iter().map(|d| d.endpoint.clone()).collect();
    to.sort();
    to
}

pub async fn partners_scope_endpoints_and_routes(db: Db) {
    let (p, q) = (partner(&db, "p").await, partner(&db, "q").await);
    assert_eq!(db.get_partner(&p.id).await.unwrap(), p);
    assert_eq!(
        db.list_partners(page(None, 10)).await.unwrap().items.len(),
        2
    );
    let a = partner_tenant(&db, "a", &p).await;
    let b = partner_tenant(&db, "b", &p).await;
    let c = tenant(&db, "c").await;
    let mut ghost = tenant(&db, "ghost").await;
    ghost.partner = Some(PartnerId::new());
    assert!(matches!(
        db.update_tenant(ghost).await,
        Err(StoreError::Invalid(_))
    ));
    let mine = db
        .list_partner_tenants(&p.id, page(None, 10))
        .await
        .unwrap();
    assert_eq!(mine.items, vec![a.clone(), b.clone()]);

    let listed = db
        .create_endpoint(partner_endpoint(&p, Coverage::Tenants(vec![a.id.clone()])))
        .await
        .unwrap();
    let everyone = db
        .create_endpoint(partner_endpoint(&p, Coverage::AllTenants))
        .await
        .unwrap();
    assert!(matches!(
        db.create_endpoint(partner_endpoint(&p, Coverage::Tenants(vec![c.id.clone()])))
            .await,
        Err(StoreError::Invalid(_))
    ));
    let pp = Owner::Partner(p.id.clone());
    assert_eq!(db.get_endpoint(&pp, &listed.id).await.unwrap(), listed);
    assert_not_found(db.get_endpoint(&ow(&a.id), &listed.id).await);
    assert_not_found(
        db.get_endpoint(&Owner::Partner(q.id.clone()), &listed.id)
            .await,
    );
    let all = db.list_endpoints(&pp, page(None, 10)).await.unwrap();
    assert_eq!(all.items.len(), 2);

    let mut both = vec![listed.id.clone(), everyone.id.clone()];
    both.sort();
    assert_eq!(routed(&db, &a).await, both, "each covering endpoint once");
    assert_eq!(routed(&db, &b).await, vec![everyone.id.clone()]);
    assert!(routed(&db, &c).await.is_empty());

    // Coverage follows the list and the tenant's partner.
    let mut moved = listed.clone();
    moved.owner = EndpointOwner::Partner {
        partner: p.id.clone(),
        covers: Coverage::Tenants(vec![b.id.clone()]),
    };
    assert_eq!(db.update_endpoint(moved.clone()).await.unwrap(), moved);
    assert_eq!(routed(&db, &b).await.len(), 2);
    let mut left = a.clone();
    left.partner = None;
    db.update_tenant(left).await.unwrap();
    assert!(
        routed(&db, &a).await.is_empty(),
        "a tenant that left its partner"
    );

    // Deliveries are scoped by their endpoint's owner.
    let page_p = db
        .list_deliveries(&pp, &everyone.id, DeliveryFilter::default(), page(None, 50))
        .await
        .unwrap();
    assert_eq!(page_p.items.len(), 3);
    let d = &page_p.items[0];
    assert!(db.get_delivery(&pp, &d.id).await.is_ok());
    assert_not_found(db.get_delivery(&ow(&d.tenant), &d.id).await);
    assert_not_found(
        db.delete_endpoint(&Owner::Partner(q.id.clone()), &listed.id)
            .await,
    );
    db.delete_endpoint(&pp, &listed.id).await.unwrap();
    assert_not_found(db.get_endpoint(&pp, &listed.id).await);
}

pub async fn audit_filters_stats_latest_and_tests(db: Db) {
    db.create_event_type(event_type("A.X")).await.unwrap();
    db.create_event_type(event_type("B.Y")).await.unwrap();
    let t = tenant(&db, "t").await;
    let ep = endpoint(&db, &t, &[]).await;
    let mut ids = Vec::new();
    for (ty, ms) in [("A.X", 10), ("B.Y", 20), ("A.X", 30)] {
        let p = db
            .publish(event(&t, ty, json!({}), ms), None)
            .await
            .unwrap();
        ids.push(p.deliveries[0].id.clone());
    }
    db.record_outcomes(vec![outcome(&ids[0], 11, Some(500), NextStep::Failed)])
        .await
        .unwrap();
    let o = ow(&t.id);
    let list = |f: DeliveryFilter| {
        let (db, o, ep) = (db.clone(), o.clone(), ep.id.clone());
        async move {
            db.list_deliveries(&o, &ep, f, page(None, 10))
                .await
                .unwrap()
                .items
                .len()
        }
    };
    let ty = |p: &str| Some(EventTypePattern::parse(p).unwrap());
    assert_eq!(list(by_status(DeliveryStatus::Failed)).await, 1);
    assert_eq!(
        list(DeliveryFilter {
            event_type: ty("A.*"),
            ..any()
        })
        .await,
        2
    );
    assert_eq!(
        list(DeliveryFilter {
            event_type: ty("B.Y"),
            ..any()
        })
        .await,
        1
    );
    assert_eq!(
        list(DeliveryFilter {
            since: Some(at(20)),
            ..any()
        })
        .await,
        2
    );
    assert_eq!(
        list(DeliveryFilter {
            until: Some(at(20)),
            ..any()
        })
        .await,
        1
    );
    let stats = db.delivery_stats(&o, &ep.id, None, None).await.unwrap();
    let n = |s: DeliveryStatus| stats.iter().find(|(x, _)| *x == s).map_or(0, |(_, n)| *n);
    assert_eq!(
        (n(DeliveryStatus::Failed), n(DeliveryStatus::Pending)),
        (1, 2)
    );
    let early = db
        .delivery_stats(&o, &ep.id, None, Some(at(15)))
        .await
        .unwrap();
    assert_eq!(early, vec![(DeliveryStatus::Failed, 1)]);
    assert_not_found(
        db.delivery_stats(&Owner::Tenant(TenantId::new()), &ep.id, None, None)
            .await,
    );

    let latest = db.latest_events(&o, &ep.id).await.unwrap();
    let kinds: Vec<_> = latest
        .iter()
        .map(|l| {
            (
                l.event_type.to_string(),
                l.event.as_ref().map(|e| e.created_at),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![("A.X".into(), Some(at(30))), ("B.Y".into(), Some(at(20)))]
    );
    assert_eq!(latest[0].delivery.as_ref().unwrap().id, ids[2]);

    let mut attempt = outcome(&ids[0], 40, Some(204), NextStep::Succeeded).attempt;
    attempt.error = None;
    let test = EndpointTest {
        endpoint: ep.id.clone(),
        event: EventId::new(),
        event_type: aviso_core::name::EventTypeName::parse("aviso.test").unwrap(),
        payload: "{\"ping\":1}".into(),
        succeeded: true,
        attempt,
    };
    db.record_endpoint_test(test.clone()).await.unwrap();
    let tests = db
        .list_endpoint_tests(&o, &ep.id, page(None, 10))
        .await
        .unwrap();
    assert_eq!(tests.items.len(), 1);
    let got = &tests.items[0];
    assert_eq!(
        (&got.event, got.succeeded, &got.attempt.id),
        (&test.event, true, &test.attempt.id)
    );
    assert_eq!(got.attempt.status_code, Some(204));
}

pub async fn tasks_run_in_batches_and_are_idempotent(db: Db) {
    let t = tenant(&db, "t").await;
    let ep = endpoint(&db, &t, &["A.*"]).await;
    let o = ow(&t.id);
    for ms in 0..5 {
        let id = one_delivery(&db, &t, ms).await;
        db.record_outcomes(vec![outcome(&id, ms + 1, Some(500), NextStep::Failed)])
            .await
            .unwrap();
    }
    let spec = TaskSpec::ResendFailed {
        latest_per_type: false,
    };
    let new = |spec: TaskSpec, key: &str| {
        Task::new(o.clone(), ep.id.clone(), spec, Some(key.into()), at(100))
    };
    let (task, created) = db.create_task(new(spec.clone(), "k")).await.unwrap();
    assert!(created);
    let (again, created) = db.create_task(new(spec.clone(), "k")).await.unwrap();
    assert_eq!((again.id.clone(), created), (task.id.clone(), false));
    assert_conflict(
        db.create_task(new(TaskSpec::SendLatest, "k")).await,
        "Idempotency-Key",
    );
    assert_eq!(db.get_task(&task.id).await.unwrap(), task);

    let claimed = db
        .claim_task("n1", at(200), at(30_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claimed.id.clone(), claimed.status),
        (task.id.clone(), TaskStatus::Running)
    );
    assert!(
        db.claim_task("n2", at(300), at(30_000))
            .await
            .unwrap()
            .is_none(),
        "held"
    );
    assert_conflict(
        db.step_task(&task.id, "n2", at(300), at(30_000), 2).await,
        "another node",
    );
    let mut steps = Vec::new();
    loop {
        let s = db
            .step_task(&task.id, "n1", at(400), at(30_000), 2)
            .await
            .unwrap();
        steps.push((s.processed, s.queued));
        if s.status.is_finished() {
            assert_eq!(
                (s.status, s.total, s.finished_at),
                (TaskStatus::Succeeded, Some(5), Some(at(400)))
            );
            break;
        }
        assert!(steps.len() < 5, "{steps:?}");
    }
    assert_eq!(steps, vec![(2, 2), (4, 4), (5, 5)]);
    let pending = db
        .list_deliveries(
            &o,
            &ep.id,
            by_status(DeliveryStatus::Pending),
            page(None, 10),
        )
        .await
        .unwrap();
    assert_eq!(pending.items.len(), 5);
    assert!(pending
        .items
        .iter()
        .all(|d| d.round_attempts == 0 && d.next_attempt_at == Some(at(400))));

    // A lapsed hold passes to another node; replay adds new deliveries.
    let replay = TaskSpec::Replay {
        since: at(0),
        until: at(3),
    };
    let (r, _) = db.create_task(new(replay, "r")).await.unwrap();
    assert!(db
        .claim_task("n1", at(500), at(600))
        .await
        .unwrap()
        .is_some());
    let taken = db
        .claim_task("n2", at(700), at(30_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.id, r.id);
    let done = db
        .step_task(&r.id, "n2", at(700), at(30_000), 100)
        .await
        .unwrap();
    assert_eq!(
        (done.status, done.total, done.queued),
        (TaskStatus::Succeeded, Some(3), 3)
    );
    let stats = db.delivery_stats(&o, &ep.id, None, None).await.unwrap();
    assert_eq!(stats, vec![(DeliveryStatus::Pending, 8)]);
    assert!(
        db.claim_task("n1", at(800), at(900))
            .await
            .unwrap()
            .is_none(),
        "nothing left"
    );
}

/// A partner endpoint disabled while its tenants publish: every delivery
/// made before the change is cancelled, none is made after, so nothing is
/// left pending for it (publishes see the change whole or not at all).
pub async fn disabling_a_partner_endpoint_races_no_publish(db: Db) {
    let p = partner(&db, "p").await;
    let a = partner_tenant(&db, "a", &p).await;
    let b = partner_tenant(&db, "b", &p).await;
    let ep = db
        .create_endpoint(partner_endpoint(&p, Coverage::AllTenants))
        .await
        .unwrap();
    let publishers: Vec<_> = (0..4)
        .map(|i| {
            let (db, t) = (db.clone(), if i % 2 == 0 { a.clone() } else { b.clone() });
            tokio::spawn(async move {
                for n in 0..60 {
                    db.publish(event(&t, "A.X", json!({"n": n}), n), None)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut off = ep.clone();
    off.spec.enabled = false;
    off.updated_at = at(1_000);
    db.update_endpoint(off).await.unwrap();
    for p in publishers {
        p.await.unwrap();
    }
    let pending = db
        .list_deliveries(
            &Owner::Partner(p.id.clone()),
            &ep.id,
            by_status(DeliveryStatus::Pending),
            page(None, 250),
        )
        .await
        .unwrap();
    assert!(
        pending.items.is_empty(),
        "{} left pending",
        pending.items.len()
    );
}
