//! The scenarios: each starts a fresh server and receiver, measures, stops.

use super::child::{Db, Server};
use super::load::{closed_loop, open_loop, raw_ceiling, Api};
use super::receiver::{now_us, quantile_ms, Receiver, Seen};
use super::report::Row;
use super::BenchArgs;
use std::time::{Duration, Instant};

const CEILING_TIME: Duration = Duration::from_secs(3);

fn db(args: &BenchArgs) -> Db {
    match &args.database_url {
        Some(u) => Db::Url(u.clone()),
        None => Db::fresh_sqlite(),
    }
}

/// Waits until `expected` healthy arrivals, or until nothing arrived for 10 s.
async fn drain(rx: &Receiver, expected: u64) {
    let mut last = (rx.total(), Instant::now());
    while rx.total() < expected {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = rx.total();
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(10) {
            eprintln!("  drain stalled at {now}/{expected}");
            return;
        }
    }
}

/// Fills the server-side figures of a row measured since `cpu0`.
fn server_figures(r: &mut Row, server: &Server, cpu0: f64, ceiling: f64, delivered: u64) {
    r.cpu_s = server.cpu_seconds() - cpu0;
    r.cpu_us_per_delivery = if delivered > 0 {
        r.cpu_s * 1e6 / delivered as f64
    } else {
        f64::NAN
    };
    r.peak_rss_mib = server.peak_rss_mib();
    r.ceiling_per_s = ceiling;
    r.of_ceiling = r.deliveries_per_s / ceiling;
}

fn row(name: &str, seen: &Seen, t0_us: u64, accepted: u64, failed: u64, publish_s: f64) -> Row {
    let delivered: u64 = seen.by_endpoint.iter().sum();
    let span_s = (seen.last_at_us.saturating_sub(t0_us)) as f64 / 1e6;
    let l = &seen.latencies_us;
    Row {
        scenario: name.to_owned(),
        publish_per_s: accepted as f64 / publish_s,
        deliveries_per_s: if span_s > 0.0 {
            delivered as f64 / span_s
        } else {
            0.0
        },
        p50_ms: quantile_ms(l, 0.50),
        p95_ms: quantile_ms(l, 0.95),
        p99_ms: quantile_ms(l, 0.99),
        max_ms: quantile_ms(l, 1.0),
        duplicates: seen.duplicates,
        failed_publishes: failed,
        ..Row::default()
    }
}

/// One tenant, `endpoints` endpoints all subscribed to every event, the last
/// one `sick` (`fail` = 500, `slow` = 2 s) when given; `publishers` closed-loop
/// publishers for the measured duration.
pub async fn fanout(
    args: &BenchArgs,
    name: &str,
    publishers: usize,
    endpoints: usize,
    sick: Option<&str>,
) -> anyhow::Result<Row> {
    eprintln!("[{name}] starting server");
    let db = db(args);
    let server = Server::start(&db).await?;
    let rx = Receiver::start(endpoints).await?;
    let api = Api::new(&server.base);
    let urls: Vec<(String, &str)> = (0..endpoints)
        .map(|i| match sick {
            Some(kind) if i == endpoints - 1 => (format!("{}/{kind}/{i}", rx.base), "bench.event"),
            _ => (format!("{}/ok/{i}", rx.base), "bench.event"),
        })
        .collect();
    let tenant = api.setup(&urls).await?;
    eprintln!("[{name}] measuring the raw loopback ceiling");
    let ceiling = raw_ceiling(&rx.base, publishers, CEILING_TIME).await;
    rx.reset();
    let cpu0 = server.cpu_seconds();
    let t0_us = now_us();
    let t0 = Instant::now();
    eprintln!("[{name}] publishing for {:?}", args.duration);
    let (accepted, failed) = closed_loop(
        &api,
        &tenant,
        "bench.event",
        publishers,
        args.duration,
        u64::MAX,
    )
    .await;
    let publish_s = t0.elapsed().as_secs_f64();
    let healthy = endpoints as u64 - u64::from(sick.is_some());
    eprintln!(
        "[{name}] {accepted} events accepted; waiting for {} deliveries",
        accepted * healthy
    );
    drain(&rx, accepted * healthy).await;
    let seen = rx.snapshot();
    let mut r = row(name, &seen, t0_us, accepted, failed, publish_s);
    server_figures(
        &mut r,
        &server,
        cpu0,
        ceiling,
        seen.by_endpoint.iter().sum(),
    );
    if endpoints > 1 {
        r.notes = format!(
            "healthy endpoints: {healthy}, {:.0} deliveries/s each",
            r.deliveries_per_s / healthy as f64
        );
    }
    server.stop().await;
    db.remove();
    Ok(r)
}

/// One endpoint, events offered at a fixed rate: publish-to-arrival latency.
pub async fn latency(args: &BenchArgs, rate: u32) -> anyhow::Result<Row> {
    let name = format!("a: latency at {rate} events/s offered");
    eprintln!("[{name}] starting server");
    let db = db(args);
    let server = Server::start(&db).await?;
    let rx = Receiver::start(1).await?;
    let api = Api::new(&server.base);
    let tenant = api
        .setup(&[(format!("{}/ok/0", rx.base), "bench.event")])
        .await?;
    let ceiling = raw_ceiling(&rx.base, 32, CEILING_TIME).await;
    rx.reset();
    let cpu0 = server.cpu_seconds();
    let (t0_us, t0) = (now_us(), Instant::now());
    let (accepted, failed) = open_loop(&api, &tenant, rate, args.duration).await;
    let publish_s = t0.elapsed().as_secs_f64();
    drain(&rx, accepted).await;
    let seen = rx.snapshot();
    let mut r = row(&name, &seen, t0_us, accepted, failed, publish_s);
    server_figures(
        &mut r,
        &server,
        cpu0,
        ceiling,
        seen.by_endpoint.iter().sum(),
    );
    server.stop().await;
    db.remove();
    Ok(r)
}

/// (e) a healthy endpoint's throughput with and without a backlog of pending
/// deliveries for an endpoint that answers 500 to everything; (f) restart
/// with that backlog: time to serve and to work the backlog again.
pub async fn backlog(args: &BenchArgs) -> anyhow::Result<Vec<Row>> {
    let name = "e: healthy endpoint beside a backlog";
    eprintln!("[{name}] starting server");
    let db = db(args);
    let server = Server::start(&db).await?;
    let rx = Receiver::start(2).await?;
    let api = Api::new(&server.base);
    let tenant = api
        .setup(&[
            (format!("{}/ok/0", rx.base), "bench.event"),
            (format!("{}/fail/1", rx.base), "bench.backlog"),
        ])
        .await?;
    let ceiling = raw_ceiling(&rx.base, 32, CEILING_TIME).await;

    eprintln!("[{name}] baseline without backlog");
    rx.reset();
    let cpu0 = server.cpu_seconds();
    let (t0_us, t0) = (now_us(), Instant::now());
    let (accepted, failed) =
        closed_loop(&api, &tenant, "bench.event", 32, args.duration, u64::MAX).await;
    let publish_s = t0.elapsed().as_secs_f64();
    drain(&rx, accepted).await;
    let seen = rx.snapshot();
    let mut base = row(
        "e: baseline (no backlog)",
        &seen,
        t0_us,
        accepted,
        failed,
        publish_s,
    );
    server_figures(
        &mut base,
        &server,
        cpu0,
        ceiling,
        seen.by_endpoint.iter().sum(),
    );

    eprintln!(
        "[{name}] piling up {} pending deliveries for the failing endpoint",
        args.backlog
    );
    let t = Instant::now();
    let (piled, _) = closed_loop(
        &api,
        &tenant,
        "bench.backlog",
        64,
        Duration::from_secs(3600),
        args.backlog,
    )
    .await;
    let fill_s = t.elapsed().as_secs_f64();

    eprintln!("[{name}] measuring the healthy endpoint beside the backlog");
    rx.reset();
    let cpu0 = server.cpu_seconds();
    let (t0_us, t0) = (now_us(), Instant::now());
    let (accepted, failed) =
        closed_loop(&api, &tenant, "bench.event", 32, args.duration, u64::MAX).await;
    let publish_s = t0.elapsed().as_secs_f64();
    drain(&rx, accepted).await;
    let seen = rx.snapshot();
    let mut e = row(name, &seen, t0_us, accepted, failed, publish_s);
    server_figures(
        &mut e,
        &server,
        cpu0,
        ceiling,
        seen.by_endpoint.iter().sum(),
    );
    e.notes = format!(
        "backlog {piled} events piled in {fill_s:.0}s; healthy rate {:.0}% of its {:.0}/s baseline",
        100.0 * e.deliveries_per_s / base.deliveries_per_s,
        base.deliveries_per_s
    );

    eprintln!("[f] restarting with the backlog");
    server.stop().await;
    let hits_before = rx.failed_hits();
    let t = Instant::now();
    let server = Server::start(&db).await?;
    let api = Api::new(&server.base);
    while !api.ready().await {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready_s = t.elapsed().as_secs_f64();
    let worked_s = loop {
        if rx.failed_hits() > hits_before {
            break Some(t.elapsed().as_secs_f64());
        }
        if t.elapsed() > Duration::from_secs(60) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let f = Row {
        scenario: "f: cold start with the backlog".into(),
        peak_rss_mib: server.peak_rss_mib(),
        notes: format!(
            "URL printed after {:.3}s, /readyz 200 after {ready_s:.3}s, first backlog attempt after {}",
            server.started_in.as_secs_f64(),
            worked_s.map_or("(none within 60s)".into(), |s| format!("{s:.3}s"))
        ),
        ..Row::default()
    };
    server.stop().await;
    db.remove();
    Ok(vec![base, e, f])
}
