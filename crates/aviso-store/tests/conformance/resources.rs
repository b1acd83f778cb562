//! Catalogue, tenants, endpoints, API keys, isolation and deletion.

use super::support::*;
use aviso_core::auth::ReceiverAuth;
use aviso_core::model::EndpointOwner;
use aviso_core::model::{ApiKey, KeyScope};
use aviso_core::signing::SigningSecret;
use aviso_core::{EndpointId, KeyId, TenantId};
use aviso_store::{NextStep, StoreError};
use serde_json::json;

pub async fn ping_answers(db: Db) {
    db.ping().await.unwrap();
}

pub async fn event_types_crud_and_pages(db: Db) {
    for name in ["B.X", "A.X", "C.X", "A.Y", "B_Y.Z"] {
        db.create_event_type(event_type(name)).await.unwrap();
    }
    assert_conflict(db.create_event_type(event_type("A.X")).await, "A.X");
    assert_eq!(db.get_event_type("A.X").await.unwrap(), event_type("A.X"));
    assert_not_found(db.get_event_type("Z.Z").await);

    let mut names = Vec::new();
    let mut after = None;
    loop {
        let p = db.list_event_types(page(after, 2)).await.unwrap();
        assert!(p.items.len() <= 2);
        names.extend(p.items.iter().map(|t| t.name.to_string()));
        match p.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(names, ["A.X", "A.Y", "B.X", "B_Y.Z", "C.X"]);

    let mut changed = event_type("A.X");
    changed.description = "changed".into();
    changed.archived = true;
    changed.example = Some(json!({"k": [1, 2]}));
    changed.created_at = at(999); // not mutable: the stored value wins
    changed.updated_at = at(5);
    let stored = db.update_event_type(changed.clone()).await.unwrap();
    assert_eq!(stored.created_at, at(0));
    assert_eq!(stored.updated_at, at(5));
    assert_eq!(stored.description, "changed");
    assert!(stored.archived);
    assert_eq!(db.get_event_type("A.X").await.unwrap(), stored);
    assert_not_found(db.update_event_type(event_type("Q.Q")).await);
}

pub async fn tenants_crud_conflicts_and_pages(db: Db) {
    let a = tenant(&db, "11.222.333/0001-44").await;
    let b = tenant(&db, "b").await;
    let c = tenant(&db, "c").await;
    assert_eq!(db.get_tenant(a.id.as_str()).await.unwrap(), a);
    assert_eq!(db.get_tenant("11.222.333/0001-44").await.unwrap(), a);
    assert_not_found(db.get_tenant("nobody").await);
    assert_not_found(db.get_tenant(TenantId::new().as_str()).await);

    let mut dup = a.clone();
    dup.id = TenantId::new();
    dup.uid = "b".into();
    assert_conflict(db.create_tenant(dup).await, "`b`");

    let first = db.list_tenants(page(None, 2)).await.unwrap();
    let mut ids: Vec<_> = [&a, &b, &c].iter().map(|t| t.id.clone()).collect();
    ids.sort();
    assert_eq!(
        first.items.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        ids[..2]
    );
    let second = db.list_tenants(page(first.next.clone(), 2)).await.unwrap();
    assert_eq!(
        second
            .items
            .iter()
            .map(|t| t.id.clone())
            .collect::<Vec<_>>(),
        ids[2..]
    );
    assert!(second.next.is_none());
    assert_eq!(first.next.as_deref(), Some(ids[1].as_str()));

    let mut renamed = b.clone();
    renamed.uid = "b2".into();
    renamed.name = "Bee".into();
    renamed.metadata = json!({"x": true});
    renamed.updated_at = at(7);
    let stored = db.update_tenant(renamed.clone()).await.unwrap();
    assert_eq!(stored, renamed);
    assert_eq!(db.get_tenant("b2").await.unwrap(), renamed);
    assert_not_found(db.get_tenant("b").await);
    renamed.uid = "c".into();
    assert_conflict(db.update_tenant(renamed).await, "`c`");
    let mut ghost = c.clone();
    ghost.id = TenantId::new();
    ghost.uid = "ghost".into();
    assert_not_found(db.update_tenant(ghost).await);
    assert_not_found(db.delete_tenant(&TenantId::new()).await);
}

pub async fn endpoints_round_trip_update_and_pages(db: Db) {
    let t = tenant(&db, "t").await;
    let other = tenant(&db, "other").await;
    let mut full = spec(&["A.*", "B.X"]);
    full.auth = serde_json::from_value(json!({"bearer": {"token": "s3cret"}})).unwrap();
    full.headers = serde_json::from_value(json!({"X-Env": "prod"})).unwrap();
    full.filter = serde_json::from_value(json!({"/status": {"in": [1, 2]}})).unwrap();
    full.policy = serde_json::from_value::<aviso_core::policy::PolicyInput>(
        json!({"timeout": "5s", "max_in_flight": 3}),
    )
    .unwrap()
    .resolve(&Default::default())
    .unwrap();
    let mut ep = endpoint_value(&t, full);
    ep.secrets.previous = Some(SigningSecret::generate());
    ep.secrets.previous_expires_at = Some(at(1_000));
    let created = db.create_endpoint(ep.clone()).await.unwrap();
    assert_eq!(created, ep);
    let read = db.get_endpoint(&ow(&t.id), &ep.id).await.unwrap();
    assert_eq!(read, ep, "stored in full, auth not redacted");
    assert!(matches!(read.spec.auth, ReceiverAuth::Bearer { .. }));
    assert_eq!(db.get_endpoint_by_id(&ep.id).await.unwrap(), ep);
    assert_not_found(db.get_endpoint(&ow(&other.id), &ep.id).await);
    assert_not_found(db.get_endpoint_by_id(&EndpointId::new()).await);
    assert!(db
        .create_endpoint(endpoint_value(&t, spec(&[])))
        .await
        .is_ok());
    let mut orphan = endpoint_value(&t, spec(&[]));
    orphan.owner = EndpointOwner::Tenant(TenantId::new());
    assert!(
        db.create_endpoint(orphan).await.is_err(),
        "endpoint of a missing tenant"
    );

    for _ in 0..3 {
        endpoint(&db, &t, &[]).await;
    }
    endpoint(&db, &other, &[]).await;
    let all = db
        .list_endpoints(&ow(&t.id), page(None, 100))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 5);
    assert!(all.next.is_none());
    let ids: Vec<_> = all.items.iter().map(|e| e.id.clone()).collect();
    let sorted = {
        let mut s = ids.clone();
        s.sort();
        s
    };
    assert_eq!(ids, sorted, "ordered by id");
    let p1 = db.list_endpoints(&ow(&t.id), page(None, 3)).await.unwrap();
    let p2 = db
        .list_endpoints(&ow(&t.id), page(p1.next.clone(), 3))
        .await
        .unwrap();
    assert!(p1.next.is_some() && p2.next.is_none());
    let paged: Vec<_> = p1
        .items
        .iter()
        .chain(&p2.items)
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(paged, ids);

    let mut changed = ep.clone();
    changed.spec.description = "new".into();
    changed.spec.event_types = vec![];
    changed.secrets.current = SigningSecret::generate();
    changed.disabled_reason = Some("too many failures".into());
    changed.created_at = at(55);
    changed.updated_at = at(9);
    let stored = db.update_endpoint(changed.clone()).await.unwrap();
    assert_eq!(stored.created_at, at(0), "created_at is kept");
    changed.created_at = at(0);
    assert_eq!(stored, changed);
    assert_eq!(db.get_endpoint(&ow(&t.id), &ep.id).await.unwrap(), changed);
    let mut foreign = changed.clone();
    foreign.owner = EndpointOwner::Tenant(other.id.clone());
    assert_not_found(db.update_endpoint(foreign).await);

    assert_not_found(db.delete_endpoint(&ow(&other.id), &ep.id).await);
    db.delete_endpoint(&ow(&t.id), &ep.id).await.unwrap();
    assert_not_found(db.get_endpoint(&ow(&t.id), &ep.id).await);
    assert_not_found(db.delete_endpoint(&ow(&t.id), &ep.id).await);
}

pub async fn api_keys(db: Db) {
    let t = tenant(&db, "t").await;
    assert!(!db.has_admin_key().await.unwrap());
    let tenant_key = ApiKey {
        id: KeyId::new(),
        scope: KeyScope::Tenant(t.id.clone()),
        name: "ci".into(),
        hash: "aa".repeat(32),
        created_at: at(1),
    };
    db.create_api_key(tenant_key.clone()).await.unwrap();
    assert!(!db.has_admin_key().await.unwrap());
    let admin = ApiKey {
        id: KeyId::new(),
        scope: KeyScope::Admin,
        name: "root".into(),
        hash: "bb".repeat(32),
        created_at: at(2),
    };
    db.create_api_key(admin.clone()).await.unwrap();
    assert!(db.has_admin_key().await.unwrap());
    assert_eq!(
        db.find_api_key(&"aa".repeat(32)).await.unwrap(),
        Some(tenant_key.clone())
    );
    assert_eq!(
        db.find_api_key(&"bb".repeat(32)).await.unwrap(),
        Some(admin.clone())
    );
    assert_eq!(db.find_api_key("cc").await.unwrap(), None);
    let dup = ApiKey {
        id: KeyId::new(),
        ..admin.clone()
    };
    assert!(matches!(
        db.create_api_key(dup).await,
        Err(StoreError::Conflict(_))
    ));
    db.delete_api_key(&admin.id).await.unwrap();
    assert!(!db.has_admin_key().await.unwrap());
    assert_eq!(db.find_api_key(&"bb".repeat(32)).await.unwrap(), None);
    assert_not_found(db.delete_api_key(&admin.id).await);
}

pub async fn tenants_cannot_see_each_other(db: Db) {
    let a = tenant(&db, "a").await;
    let b = tenant(&db, "b").await;
    let ep = endpoint(&db, &a, &[]).await;
    let p = db
        .publish(event(&a, "A.X", json!({}), 0), None)
        .await
        .unwrap();
    let d = &p.deliveries[0];
    db.record_outcomes(vec![outcome(&d.id, 1, Some(500), NextStep::Failed)])
        .await
        .unwrap();

    assert_not_found(db.get_endpoint(&ow(&b.id), &ep.id).await);
    assert_not_found(db.get_event(&b.id, &p.event.id).await);
    assert_not_found(db.get_delivery(&ow(&b.id), &d.id).await);
    assert_not_found(
        db.list_deliveries(&ow(&b.id), &ep.id, any(), page(None, 10))
            .await,
    );
    assert_not_found(db.resend_delivery(&ow(&b.id), &d.id, at(2)).await);
    assert!(db
        .list_events(&b.id, Default::default())
        .await
        .unwrap()
        .is_empty());
    assert!(db
        .list_endpoints(&ow(&b.id), page(None, 10))
        .await
        .unwrap()
        .items
        .is_empty());
    // The owner still sees everything.
    assert_eq!(db.get_event(&a.id, &p.event.id).await.unwrap().1.len(), 1);
    assert_eq!(db.get_delivery(&ow(&a.id), &d.id).await.unwrap().1.len(), 1);
}

pub async fn delete_tenant_cascades(db: Db) {
    let gone = tenant(&db, "gone").await;
    let kept = tenant(&db, "kept").await;
    let ep = endpoint(&db, &gone, &[]).await;
    let kept_ep = endpoint(&db, &kept, &[]).await;
    let key = ApiKey {
        id: KeyId::new(),
        scope: KeyScope::Tenant(gone.id.clone()),
        name: "k".into(),
        hash: "dd".repeat(32),
        created_at: at(0),
    };
    db.create_api_key(key).await.unwrap();
    let p = db
        .publish(event(&gone, "A.X", json!({}), 0), None)
        .await
        .unwrap();
    db.record_outcomes(vec![outcome(
        &p.deliveries[0].id,
        1,
        Some(500),
        NextStep::Retry {
            at: at(50),
            keep_claim: false,
        },
    )])
    .await
    .unwrap();
    let q = db
        .publish(event(&kept, "A.X", json!({}), 100), None)
        .await
        .unwrap();

    db.delete_tenant(&gone.id).await.unwrap();
    assert_not_found(db.get_tenant(gone.id.as_str()).await);
    assert_not_found(db.get_endpoint_by_id(&ep.id).await);
    assert_eq!(db.find_api_key(&"dd".repeat(32)).await.unwrap(), None);
    assert_not_found(db.get_event(&gone.id, &p.event.id).await);
    assert_not_found(db.get_delivery(&ow(&gone.id), &p.deliveries[0].id).await);
    assert!(db
        .list_events(&gone.id, Default::default())
        .await
        .unwrap()
        .is_empty());
    // Publishing for the deleted tenant routes nowhere (or fails), never to old endpoints.
    if let Ok(r) = db.publish(event(&gone, "A.X", json!({}), 5), None).await {
        assert!(r.deliveries.is_empty());
    }
    assert_eq!(db.next_due_at().await.unwrap(), Some(at(100)));
    let jobs = db.claim_due("n1", at(1_000), 10, &[]).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].delivery, q.deliveries[0].id);
    assert_eq!(db.get_endpoint_by_id(&kept_ep.id).await.unwrap(), kept_ep);
}
