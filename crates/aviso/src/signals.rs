//! Reacting to what other nodes sharing the database did (PostgreSQL
//! `LISTEN/NOTIFY`): wake the dispatcher, drop stale cached endpoints and keys.

use aviso_api::auth::KeyCache;
use aviso_api::catalog::Catalog;
use aviso_core::model::Owner;
use aviso_dispatch::DispatchHandle;
use aviso_store::{Store, StoreSignal};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Follows the store's signals until `cancel` fires; does nothing on a
/// backend without signals (SQLite, where this process is the only writer).
pub fn follow(
    store: &Arc<dyn Store>,
    dispatch: Option<DispatchHandle>,
    keys: Arc<KeyCache>,
    catalog: Arc<Catalog>,
    tracker: &TaskTracker,
    cancel: CancellationToken,
) {
    let Some(mut rx) = store.signals() else {
        return;
    };
    let store = store.clone();
    tracker.spawn(async move {
        loop {
            let signal = tokio::select! {
                _ = cancel.cancelled() => return,
                s = rx.recv() => s,
            };
            let signal = match signal {
                Ok(s) => s,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "missed store signals; rescanning");
                    StoreSignal::Resync
                }
                Err(RecvError::Closed) => return,
            };
            apply(&signal, dispatch.as_ref(), &keys, &catalog);
            if signal == StoreSignal::Resync {
                if let Some(d) = &dispatch {
                    // Any endpoint may have changed unheard: drop every cached one.
                    if let Err(e) = forget_all_endpoints(store.as_ref(), d).await {
                        tracing::warn!(error = %e, "could not list endpoints to refresh them");
                    }
                }
            }
        }
    });
}

/// What one signal means for this node.
fn apply(
    signal: &StoreSignal,
    dispatch: Option<&DispatchHandle>,
    keys: &KeyCache,
    catalog: &Catalog,
) {
    tracing::debug!(?signal, "store signal");
    match signal {
        StoreSignal::WorkDue => {
            if let Some(d) = dispatch {
                d.wake();
            }
        }
        StoreSignal::EndpointChanged(id) => {
            if let Some(d) = dispatch {
                d.invalidate_endpoint(id);
            }
        }
        // Sent when a key or a tenant is deleted: cached tenants may be gone too.
        StoreSignal::KeysChanged => {
            keys.clear();
            catalog.tenants_changed();
        }
        StoreSignal::Resync => {
            keys.clear();
            catalog.tenants_changed();
            catalog.event_types_changed();
            if let Some(d) = dispatch {
                d.wake();
            }
        }
    }
}

/// Invalidates every endpoint in the store, tenants' and partners' (after
/// signals may have been lost).
async fn forget_all_endpoints(
    store: &dyn Store,
    dispatch: &DispatchHandle,
) -> aviso_store::Result<()> {
    let page = |after| aviso_store::PageRequest { after, limit: 250 };
    let forget_owner = |owner: Owner| async move {
        let mut after = None;
        loop {
            let eps = store.list_endpoints(&owner, page(after)).await?;
            for ep in &eps.items {
                dispatch.invalidate_endpoint(&ep.id);
            }
            match eps.next {
                Some(n) => after = Some(n),
                None => return aviso_store::Result::Ok(()),
            }
        }
    };
    let mut tenants_after = None;
    loop {
        let tenants = store.list_tenants(page(tenants_after)).await?;
        for t in &tenants.items {
            forget_owner(Owner::Tenant(t.id.clone())).await?;
        }
        match tenants.next {
            Some(n) => tenants_after = Some(n),
            None => break,
        }
    }
    let mut partners_after = None;
    loop {
        let partners = store.list_partners(page(partners_after)).await?;
        for p in &partners.items {
            forget_owner(Owner::Partner(p.id.clone())).await?;
        }
        match partners.next {
            Some(n) => partners_after = Some(n),
            None => return Ok(()),
        }
    }
}
