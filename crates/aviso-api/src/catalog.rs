//! A read-through cache of the records nearly every request looks up: tenants
//! (by id and by uid) and event types. Publishing would otherwise pay two
//! database round trips before its one write.
//!
//! Writes made through this API invalidate at once, so one node is always
//! exact; entries also expire after a few seconds, which bounds how stale a
//! change made by another node can be.

use aviso_core::model::{EventType, Tenant};
use aviso_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(5);
const MAX_ENTRIES: usize = 100_000;

struct Map<V>(RwLock<HashMap<String, (V, Instant)>>);

impl<V: Clone> Map<V> {
    fn get(&self, k: &str) -> Option<V> {
        let g = self.0.read().ok()?;
        g.get(k)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(v, _)| v.clone())
    }

    fn put(&self, keys: impl IntoIterator<Item = String>, v: V) {
        if let Ok(mut g) = self.0.write() {
            if g.len() >= MAX_ENTRIES {
                g.clear();
            }
            let now = Instant::now();
            for k in keys {
                g.insert(k, (v.clone(), now));
            }
        }
    }

    fn clear(&self) {
        if let Ok(mut g) = self.0.write() {
            g.clear();
        }
    }
}

impl<V> Default for Map<V> {
    fn default() -> Self {
        Self(RwLock::new(HashMap::new()))
    }
}

/// Cached tenants and event types.
#[derive(Default)]
pub struct Catalog {
    tenants: Map<Arc<Tenant>>,
    event_types: Map<Arc<EventType>>,
}

async fn through<V: Clone, F, Fut>(
    map: &Map<V>,
    key: &str,
    load: F,
    keys: impl Fn(&V) -> Vec<String>,
) -> Result<V, StoreError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<V, StoreError>>,
{
    if let Some(v) = map.get(key) {
        return Ok(v);
    }
    let v = load().await?;
    map.put(keys(&v), v.clone());
    Ok(v)
}

impl Catalog {
    /// A tenant by id or uid.
    pub async fn tenant(
        &self,
        store: &dyn Store,
        id_or_uid: &str,
    ) -> Result<Arc<Tenant>, StoreError> {
        through(
            &self.tenants,
            id_or_uid,
            || async { store.get_tenant(id_or_uid).await.map(Arc::new) },
            |t| vec![t.id.to_string(), t.uid.clone()],
        )
        .await
    }

    /// An event type by name.
    pub async fn event_type(
        &self,
        store: &dyn Store,
        name: &str,
    ) -> Result<Arc<EventType>, StoreError> {
        through(
            &self.event_types,
            name,
            || async { store.get_event_type(name).await.map(Arc::new) },
            |e| vec![e.name.to_string()],
        )
        .await
    }

    /// Forgets every tenant (after a tenant changed or was deleted: its uid may have moved).
    pub fn tenants_changed(&self) {
        self.tenants.clear();
    }

    /// Forgets every event type.
    pub fn event_types_changed(&self) {
        self.event_types.clear();
    }
}
