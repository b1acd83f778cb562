//! Many `aviso serve` processes on one PostgreSQL database: nodes die, restart,
//! and the database itself restarts, and every accepted event still arrives,
//! never with more requests in flight per endpoint than its `max_in_flight`.
//! Skipped (with a printed note) when `AVISO_TEST_DATABASE_URL` is unset.

use crate::cluster::{
    accepted_count, admin_post, admin_url, holdings, publish, set_up, Counting, Node, Published,
    Schema, Targets,
};
use crate::support::{wait_for, ADMIN_KEY};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// These tests restart nodes and PostgreSQL itself: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_share_a_database_through_kill_9_and_restart() {
    let Some(admin) = admin_url() else { return };
    let _serial = SERIAL.lock().await;
    const EVENTS: usize = 900;
    let schema = Schema::create(&admin).await;
    let (rx4, rx2) = (
        Counting::start(Duration::from_millis(20)).await,
        Counting::start(Duration::from_millis(20)).await,
    );
    let mut nodes = vec![
        Node::start(&schema.url, "all").await,
        Node::start(&schema.url, "all").await,
        Node::start(&schema.url, "all").await,
    ];
    let tenant = set_up(&nodes[0].base, &[(&rx4, 4), (&rx2, 2)]).await;
    // The first event goes through node 0, which thereby owns both endpoints
    // (it claims on publish), so the kill -9 below most likely hits an owner.
    let http = reqwest::Client::new();
    let (s, b) = admin_post(
        &http,
        format!("{}/v1/tenants/{tenant}/events", nodes[0].base),
        json!({"type": "order.paid", "payload": {"warm": true}}),
    )
    .await;
    assert_eq!(s, 202, "{b}");
    let targets: Targets = Arc::new(Mutex::new(
        nodes.iter().map(|n| Some(n.base.clone())).collect(),
    ));
    let out = Arc::new(Mutex::new(Published::default()));
    let producing = tokio::spawn({
        let (targets, out, tenant) = (targets.clone(), out.clone(), tenant.clone());
        async move { publish(targets, &tenant, EVENTS, 12, out).await }
    });

    // Mid-run: kill -9 one node, then restart another gracefully.
    wait_for("a third of the events", Duration::from_secs(60), || async {
        accepted_count(&out) >= EVENTS / 3 && rx2.summary().0 >= 30
    })
    .await;
    let before = holdings(&schema.url).await;
    targets.lock().unwrap()[0] = None;
    nodes[0].child.kill().await.unwrap();
    // Its lease runs out and a live node's keeper sweeps it: no restart needed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let after = loop {
        let now = holdings(&schema.url).await;
        if now.len() < before.len() {
            break now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the killed node's lease was never swept"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (killed_claims, killed_endpoints) = before
        .iter()
        .find(|(node, _)| !after.contains_key(*node))
        .map(|(_, h)| *h)
        .unwrap();
    wait_for(
        "two thirds of the events",
        Duration::from_secs(60),
        || async { accepted_count(&out) >= 2 * EVENTS / 3 },
    )
    .await;
    targets.lock().unwrap()[1] = None;
    let restarted = nodes.remove(1);
    restarted.stop().await;
    let again = Node::start(&schema.url, "all").await;
    targets.lock().unwrap()[1] = Some(again.base.clone());
    nodes.insert(1, again);
    producing.await.unwrap();

    let mut accepted = out.lock().unwrap().accepted.clone();
    assert_eq!(accepted.len(), EVENTS);
    accepted.push(b["id"].as_str().unwrap().to_owned());
    for rx in [&rx4, &rx2] {
        wait_for(
            "every accepted event at every receiver",
            Duration::from_secs(180),
            || async { rx.has_all(&accepted) },
        )
        .await;
    }
    let (n4, dups4, peak4) = rx4.summary();
    let (n2, dups2, peak2) = rx2.summary();
    println!(
        "multi-node test: {EVENTS} events on 3 nodes (one kill -9 while holding {killed_claims} \
         claims and owning {killed_endpoints} endpoints, one restart); \
         endpoint max_in_flight=4: {n4} events, {dups4} duplicates, peak {peak4} in flight; \
         endpoint max_in_flight=2: {n2} events, {dups2} duplicates, peak {peak2} in flight"
    );
    assert!(peak4 <= 4, "max_in_flight 4 exceeded: {peak4}");
    assert!(peak2 <= 2, "max_in_flight 2 exceeded: {peak2}");
    for node in nodes.drain(1..) {
        node.stop().await;
    }
    schema.drop_now().await;
}

/// `pg_ctlcluster VERSION main restart`, when this machine has it.
fn restart_postgres() -> bool {
    let Some(version) = std::fs::read_dir("/etc/postgresql")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
    else {
        return false;
    };
    std::process::Command::new("pg_ctlcluster")
        .args([
            "--skip-systemctl-redirect",
            &version,
            "main",
            "restart",
            "-m",
            "fast",
        ])
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_under_load_loses_no_accepted_event() {
    let Some(admin) = admin_url() else { return };
    if !std::path::Path::new("/etc/postgresql").exists() {
        println!("skipped: no local PostgreSQL cluster to restart (pg_ctlcluster)");
        return;
    }
    let _serial = SERIAL.lock().await;
    const EVENTS: usize = 1500;
    let schema = Schema::create(&admin).await;
    let rx = Counting::start(Duration::from_millis(2)).await;
    // An API-only node and a worker: the worker hears about new work through NOTIFY.
    let api = Node::start(&schema.url, "api").await;
    let worker = Node::start(&schema.url, "worker").await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/v1/tenants", worker.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "a worker serves no public API");
    let r = http
        .get(format!("{}/healthz", worker.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let tenant = set_up(&api.base, &[(&rx, 16)]).await;
    let targets: Targets = Arc::new(Mutex::new(vec![Some(api.base.clone())]));
    let out = Arc::new(Mutex::new(Published::default()));
    let producing = tokio::spawn({
        let (targets, out, tenant) = (targets.clone(), out.clone(), tenant.clone());
        async move { publish(targets, &tenant, EVENTS, 8, out).await }
    });
    wait_for("some events delivered", Duration::from_secs(60), || async {
        rx.summary().0 >= 100
    })
    .await;
    let before = accepted_count(&out);
    let restarted = tokio::task::spawn_blocking(restart_postgres).await.unwrap();
    assert!(restarted, "pg_ctlcluster restart failed");
    let after_restart = accepted_count(&out);
    producing.await.unwrap();
    let (accepted, unavailable, bodies) = {
        let o = out.lock().unwrap();
        (
            o.accepted.clone(),
            o.unavailable,
            o.unavailable_bodies.clone(),
        )
    };
    assert_eq!(
        accepted.len(),
        EVENTS,
        "publishing recovered without restarting a node"
    );
    wait_for(
        "every accepted event after the database restart",
        Duration::from_secs(180),
        || async { rx.has_all(&accepted) },
    )
    .await;
    assert!(
        unavailable > 0,
        "the restart went unnoticed: no publish met the outage"
    );
    for b in &bodies {
        assert_eq!(b["error"]["code"], "unavailable", "{b}");
    }
    let (n, dups, _) = rx.summary();
    println!(
        "postgres restart test: {EVENTS} events accepted ({before} before the restart, \
         {after_restart} by the time pg_ctlcluster returned), {unavailable} answered 503 meanwhile, \
         {n} delivered, {dups} duplicates"
    );
    worker.stop().await;
    api.stop().await;
    schema.drop_now().await;
}
