//! Rough store throughput check: concurrent publishes, then claim + record,
//! then the retention purge of everything, timing one publisher's commits
//! before and during the purge (does the purge stall live writes?).
//!
//! `cargo run --release -p aviso-store --example store_throughput [events] [publishers] [database-url]`
//! (default: a fresh SQLite file; a PostgreSQL URL must name an empty database).

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
    let url = args
        .next()
        .unwrap_or_else(|| format!("sqlite://{}", path.display()));
    let db = aviso_store::open(&url).await.unwrap();
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

    // One publisher alone, then the same publisher while the purge runs, in
    // batches of PURGE_BATCH rows with PURGE_PAUSE_MS between them (the
    // server's defaults: 200 and 20).
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let batch = env("PURGE_BATCH", 200) as usize;
    let pause = std::time::Duration::from_millis(env("PURGE_PAUSE_MS", 20));
    let two_s = Instant::now() + std::time::Duration::from_secs(2);
    let solo = publish_while(&db, &tenant.id, || Instant::now() < two_s).await;
    let purger = {
        let db = db.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let before = Timestamp::now().plus(std::time::Duration::from_secs(1));
            let mut sum = aviso_store::Purged::default();
            loop {
                let p = db.purge(before, batch).await.unwrap();
                if p.total() == 0 {
                    break;
                }
                sum += p;
                tokio::time::sleep(pause).await;
            }
            (sum, started.elapsed().as_secs_f64())
        })
    };
    let during = publish_while(&db, &tenant.id, || !purger.is_finished()).await;
    let (sum, secs) = purger.await.unwrap();
    println!(
        "purge: {} deliveries, {} attempts, {} events in {secs:.2}s = {:.0} rows/s (batches of {batch}, {pause:?} apart)",
        sum.deliveries,
        sum.attempts,
        sum.events,
        sum.total() as f64 / secs
    );
    println!("one publisher alone:        {solo}");
    println!("one publisher during purge: {during}");
    drop(db);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Publishes one event at a time while `go` holds; reports count, mean and worst commit time.
async fn publish_while(db: &Arc<dyn Store>, tenant: &TenantId, go: impl Fn() -> bool) -> String {
    let started = Instant::now();
    let (mut n, mut worst) = (0u32, 0f64);
    while go() {
        let t = Instant::now();
        let ev = NewEvent {
            id: EventId::new(),
            tenant: tenant.clone(),
            event_type: EventTypeName::parse("CONTRATO.REGISTRADO").unwrap(),
            payload: r#"{"live":true}"#.into(),
            idempotency_key: None,
            created_at: Timestamp::now(),
        };
        db.publish(ev, None).await.unwrap();
        worst = worst.max(t.elapsed().as_secs_f64() * 1e3);
        n += 1;
    }
    let mean = started.elapsed().as_secs_f64() * 1e3 / f64::from(n.max(1));
    format!("{n} publishes, mean {mean:.2} ms, worst {worst:.1} ms")
}
