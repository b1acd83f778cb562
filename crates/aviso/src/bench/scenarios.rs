//! The scenarios: each starts a fresh server and receiver, measures, stops.

use super::child::{Db, Server};
use super::load::{closed_loop, open_loop, raw_ceiling, Api};
use super::receiver::{now_us, quantile_ms, Receiver};
use super::report::Row;
use super::BenchArgs;
use std::time::{Duration, Instant};

/// How long the raw ceiling is measured (shorter for runs shorter than this).
const CEILING_TIME: Duration = Duration::from_secs(3);

/// A server on a fresh database, a receiver, a tenant with endpoints, and the
/// raw loopback ceiling measured for that setup.
struct Rig {
    db: Db,
    server: Server,
    rx: Receiver,
    api: Api,
    tenant: String,
    ceiling: f64,
}

impl Rig {
    /// Starts everything; `endpoints(receiver_base)` lists (url, event type).
    async fn start(
        args: &BenchArgs,
        name: &str,
        n: usize,
        publishers: usize,
        endpoints: impl Fn(&str) -> Vec<(String, &'static str)>,
    ) -> anyhow::Result<Self> {
        eprintln!("[{name}] starting server");
        let db = match &args.database_url {
            Some(u) => Db::Url(u.clone()),
            None => Db::fresh_sqlite(),
        };
        let server = Server::start_binary(&args.server_exe()?, &db).await?;
        let rx = Receiver::start(n).await?;
        let api = Api::new(&server.base);
        let tenant = api.setup(&endpoints(&rx.base)).await?;
        eprintln!("[{name}] measuring the raw loopback ceiling");
        let ceiling = raw_ceiling(&rx.base, publishers, CEILING_TIME.min(args.duration)).await;
        Ok(Self {
            db,
            server,
            rx,
            api,
            tenant,
            ceiling,
        })
    }

    /// Publishes `bench.event` for `duration` (closed loop with `publishers`,
    /// or open loop at `rate`), waits for `healthy` deliveries of each event,
    /// and returns the figures.
    async fn measure(&self, name: &str, load: Load, healthy: u64, duration: Duration) -> Row {
        self.rx.reset();
        let cpu0 = self.server.cpu_seconds();
        let (t0_us, t0) = (now_us(), Instant::now());
        eprintln!("[{name}] publishing for {duration:?}");
        let (accepted, failed) = match load {
            Load::Closed(p) => {
                closed_loop(
                    &self.api,
                    &self.tenant,
                    "bench.event",
                    p,
                    duration,
                    u64::MAX,
                )
                .await
            }
            Load::Open(rate) => open_loop(&self.api, &self.tenant, rate, duration).await,
        };
        let publish_s = t0.elapsed().as_secs_f64();
        eprintln!(
            "[{name}] {accepted} events accepted; waiting for {} deliveries",
            accepted * healthy
        );
        drain(&self.rx, accepted * healthy).await;
        let seen = self.rx.snapshot();
        let delivered: u64 = seen.by_endpoint.iter().sum();
        let span_s = seen.last_at_us.saturating_sub(t0_us) as f64 / 1e6;
        let l = &seen.latencies_us;
        let cpu_s = self.server.cpu_seconds() - cpu0;
        let deliveries_per_s = if span_s > 0.0 {
            delivered as f64 / span_s
        } else {
            0.0
        };
        Row {
            scenario: name.to_owned(),
            publish_per_s: accepted as f64 / publish_s,
            deliveries_per_s,
            p50_ms: quantile_ms(l, 0.50),
            p95_ms: quantile_ms(l, 0.95),
            p99_ms: quantile_ms(l, 0.99),
            max_ms: quantile_ms(l, 1.0),
            peak_rss_mib: self.server.peak_rss_mib(),
            cpu_s,
            cpu_us_per_delivery: if delivered > 0 {
                cpu_s * 1e6 / delivered as f64
            } else {
                f64::NAN
            },
            duplicates: seen.duplicates,
            failed_publishes: failed,
            ceiling_per_s: self.ceiling,
            of_ceiling: deliveries_per_s / self.ceiling,
            ..Row::default()
        }
    }

    async fn finish(mut self) {
        self.server.stop().await;
        self.db.remove();
    }
}

/// How events are offered.
#[derive(Clone, Copy)]
enum Load {
    /// This many publishers, each sending its next event when the last was accepted.
    Closed(usize),
    /// This many events per second, whatever the answers.
    Open(u32),
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

/// One tenant, `n` endpoints all subscribed to every event, the last one
/// `sick` (`fail` = 500, `slow` = 2 s) when given.
pub async fn fanout(
    args: &BenchArgs,
    name: &str,
    publishers: usize,
    n: usize,
    sick: Option<&str>,
) -> anyhow::Result<Row> {
    let rig = Rig::start(args, name, n, publishers, |base| {
        (0..n)
            .map(|i| match sick {
                Some(kind) if i == n - 1 => (format!("{base}/{kind}/{i}"), "bench.event"),
                _ => (format!("{base}/ok/{i}"), "bench.event"),
            })
            .collect()
    })
    .await?;
    let healthy = n as u64 - u64::from(sick.is_some());
    let mut r = rig
        .measure(name, Load::Closed(publishers), healthy, args.duration)
        .await;
    r.healthy_endpoints = healthy;
    if n > 1 {
        r.notes = format!(
            "healthy endpoints: {healthy}, {:.0} deliveries/s each",
            r.deliveries_per_s / healthy as f64
        );
    }
    rig.finish().await;
    Ok(r)
}

/// One endpoint, events offered at a fixed rate: publish-to-arrival latency.
pub async fn latency(args: &BenchArgs, rate: u32) -> anyhow::Result<Row> {
    let name = format!("a: latency at {rate} events/s offered");
    let rig = Rig::start(args, &name, 1, 32, |base| {
        vec![(format!("{base}/ok/0"), "bench.event")]
    })
    .await?;
    let r = rig.measure(&name, Load::Open(rate), 1, args.duration).await;
    rig.finish().await;
    Ok(r)
}

/// (e) a healthy endpoint's throughput with and without a backlog of pending
/// deliveries for an endpoint that answers 500 to everything; (f) restart
/// with that backlog: time to serve and to work the backlog again.
pub async fn backlog(args: &BenchArgs) -> anyhow::Result<Vec<Row>> {
    let name = "e: healthy endpoint beside a backlog";
    let mut rig = Rig::start(args, name, 2, 32, |base| {
        vec![
            (format!("{base}/ok/0"), "bench.event"),
            (format!("{base}/fail/1"), "bench.backlog"),
        ]
    })
    .await?;
    let base = rig
        .measure(
            "e: baseline (no backlog)",
            Load::Closed(32),
            1,
            args.duration,
        )
        .await;

    eprintln!(
        "[{name}] piling up {} pending deliveries for the failing endpoint",
        args.backlog
    );
    let t = Instant::now();
    let (piled, _) = closed_loop(
        &rig.api,
        &rig.tenant,
        "bench.backlog",
        64,
        Duration::from_secs(3600),
        args.backlog,
    )
    .await;
    let fill_s = t.elapsed().as_secs_f64();
    let mut e = rig.measure(name, Load::Closed(32), 1, args.duration).await;
    e.notes = format!(
        "backlog {piled} events piled in {fill_s:.0}s; healthy rate {:.0}% of its {:.0}/s baseline",
        100.0 * e.deliveries_per_s / base.deliveries_per_s,
        base.deliveries_per_s
    );

    eprintln!("[f] restarting with the backlog");
    let hits_before = rig.rx.failed_hits();
    rig.server.stop().await;
    let t = Instant::now();
    rig.server = Server::start_binary(&args.server_exe()?, &rig.db).await?;
    let api = Api::new(&rig.server.base);
    while !api.ready().await {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready_s = t.elapsed().as_secs_f64();
    let worked_s = loop {
        if rig.rx.failed_hits() > hits_before {
            break Some(t.elapsed().as_secs_f64());
        }
        if t.elapsed() > Duration::from_secs(60) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let f = Row {
        scenario: "f: cold start with the backlog".into(),
        peak_rss_mib: rig.server.peak_rss_mib(),
        notes: format!(
            "URL printed after {:.3}s, /readyz 200 after {ready_s:.3}s, first backlog attempt after {}",
            rig.server.started_in.as_secs_f64(),
            worked_s.map_or("(none within 60s)".into(), |s| format!("{s:.3}s"))
        ),
        ..Row::default()
    };
    rig.finish().await;
    Ok(vec![base, e, f])
}
