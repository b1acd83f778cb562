//! Rough SQLite throughput check: concurrent publishes, then claim + record.
//!
//! `cargo run --release -p aviso-store --example sqlite_throughput [events] [publishers]`

use aviso_core::auth::ReceiverAuth;
use aviso_core::model::{Attempt, Endpoint, EndpointSecrets, EndpointSpec, NewEvent, Tenant};
use aviso_core::name::EventTypeName;
use aviso_core::signing::SigningSecret;
use aviso_core::url::EndpointUrl;
use aviso_core::{AttemptId, EndpointId, EventId, TenantId, Timestamp};
use aviso_store::{AttemptOutcome, NextStep, Store};
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let publishers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);
    let path = std::env::temp_dir().join(format!("aviso-throughput-{}.db", std::process::id()));
    let db = aviso_store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let now = Timestamp::now();
    let tenant = Tenant {
        id: TenantId::new(),
        uid: "bench".into(),
        name: "bench".into(),
        partner: None,
        metadata: serde_json::json!({}),
        created_at: now,
        updated_at: now,
    };
    db.create_tenant(tenant.clone()).await.unwrap();
    for _ in 0..2 {
        let spec = EndpointSpec {
            url: EndpointUrl::parse("https://example.com/hook").unwrap(),
            description: String::new(),
            event_types: vec![],
            enabled: true,
            auth: ReceiverAuth::None,
            headers: Default::default(),
            filter: Default::default(),
            policy: Default::default(),
        };
        let ep = Endpoint {
            id: EndpointId::new(),
            owner: aviso_core::model::EndpointOwner::Tenant(tenant.id.clone()),
            spec,
            secrets: EndpointSecrets::new(SigningSecret::generate()),
            disabled_reason: None,
            created_at: now,
            updated_at: now,
        };
        db.create_endpoint(ep).await.unwrap();
    }

    let started = Instant::now();
    let per = events / publishers;
    let tasks: Vec<_> = (0..publishers)
        .map(|_| {
            let (db, tenant) = (db.clone(), tenant.id.clone());
            tokio::spawn(async move {
                for i in 0..per {
                    let ev = NewEvent {
                        id: EventId::new(),
                        tenant: tenant.clone(),
                        event_type: EventTypeName::parse("CONTRATO.REGISTRADO").unwrap(),
                        payload: format!(r#"{{"i":{i},"valor":123.45,"status":"ok"}}"#).into(),
                        idempotency_key: None,
                        created_at: Timestamp::now(),
                    };
                    db.publish(ev, None).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let total = per * publishers;
    println!(
        "publish: {total} events in {secs:.2}s = {:.0} events/s",
        total as f64 / secs
    );

    let started = Instant::now();
    let mut delivered = 0usize;
    let mut writers = Vec::new();
    loop {
        let jobs = db
            .claim_due("bench", Timestamp::now(), 2_000, &[])
            .await
            .unwrap();
        if jobs.is_empty() {
            break;
        }
        delivered += jobs.len();
        for chunk in jobs.chunks(250) {
            let outcomes: Vec<_> = chunk
                .iter()
                .map(|j| AttemptOutcome {
                    attempt: Attempt {
                        id: AttemptId::new(),
                        delivery: j.delivery.clone(),
                        at: Timestamp::now(),
                        duration_ms: 3,
                        status_code: Some(200),
                        error: None,
                        error_detail: None,
                        response_headers: vec![],
                        response_snippet: None,
                    },
                    next: NextStep::Succeeded,
                })
                .collect();
            let db: Arc<dyn Store> = db.clone();
            writers.push(tokio::spawn(async move {
                db.record_outcomes(outcomes).await.unwrap()
            }));
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "claim+record: {delivered} deliveries in {secs:.2}s = {:.0} deliveries/s",
        delivered as f64 / secs
    );
    drop(db);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
