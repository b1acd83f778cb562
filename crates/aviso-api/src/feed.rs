//! Wakes long-polling readers of a tenant's event feed when this node
//! publishes to that tenant. Publishes on other nodes are seen by the
//! readers' periodic re-check.

use aviso_core::TenantId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// One [`Notify`] per tenant with waiting readers.
#[derive(Default)]
pub struct FeedWaker {
    waiting: Mutex<HashMap<TenantId, Arc<Notify>>>,
}

impl FeedWaker {
    /// The tenant's notifier; hold it while waiting, then pass it to [`FeedWaker::done`].
    pub fn subscribe(&self, tenant: &TenantId) -> Arc<Notify> {
        let mut m = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(tenant.clone()).or_default().clone()
    }

    /// A reader stopped waiting: forget the notifier once nobody else holds it.
    pub fn done(&self, tenant: &TenantId, n: Arc<Notify>) {
        let mut m = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        drop(n);
        if m.get(tenant).is_some_and(|n| Arc::strong_count(n) == 1) {
            m.remove(tenant);
        }
    }

    /// Something was published to the tenant: wake its readers.
    pub fn published(&self, tenant: &TenantId) {
        let m = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get(tenant) {
            n.notify_waiters();
        }
    }
}
