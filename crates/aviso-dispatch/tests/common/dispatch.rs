//! Starting and stopping a dispatcher over the in-memory store.

use super::{job, FakeStore};
use aviso_core::model::{DeliveryStatus, Endpoint};
use aviso_core::policy::{DeliveryPolicy, RetryPolicy, Schedule};
use aviso_core::Dur;
use aviso_dispatch::{DispatchHandle, Dispatcher, DispatcherConfig, SenderConfig};
use aviso_store::DispatchJob;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub const NODE: &str = "node-1";

pub fn config() -> DispatcherConfig {
    DispatcherConfig {
        node_id: NODE.into(),
        scan_interval: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(5),
        sender: SenderConfig {
            allow_http: true,
            allow_private_destinations: true,
            ..SenderConfig::default()
        },
        ..DispatcherConfig::default()
    }
}

pub fn schedule(delays: &[&str]) -> DeliveryPolicy {
    let delays = delays.iter().map(|d| Dur::parse(d).unwrap()).collect();
    DeliveryPolicy {
        retry: RetryPolicy::Schedule(Schedule(delays)),
        ..DeliveryPolicy::default()
    }
}

/// A running dispatcher and what stops it.
pub struct Running {
    pub handle: DispatchHandle,
    pub cancel: CancellationToken,
    pub tracker: TaskTracker,
}

impl Running {
    pub fn start(store: &Arc<FakeStore>, cfg: DispatcherConfig) -> Self {
        let (cancel, tracker) = (CancellationToken::new(), TaskTracker::new());
        let handle = Dispatcher::start(store.clone(), cfg, cancel.clone(), &tracker);
        Self {
            handle,
            cancel,
            tracker,
        }
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .expect("dispatcher stops");
    }
}

/// Adds `n` deliveries claimed for this node, as `publish` does.
pub fn published(store: &FakeStore, ep: &Endpoint, n: usize) -> Vec<DispatchJob> {
    (0..n)
        .map(|i| {
            let j = job(ep, &format!("{{\"n\":{i}}}"));
            store.add(&j, Some(NODE));
            j
        })
        .collect()
}

pub fn all_have(store: &FakeStore, jobs: &[DispatchJob], status: DeliveryStatus) -> bool {
    jobs.iter().all(|j| store.status(&j.delivery) == status)
}
