//! The dispatcher's public face: starting it, and the handle the API uses to
//! feed it committed deliveries, wake it and invalidate cached endpoints.

use crate::actor::Actor;
use crate::config::DispatcherConfig;
use crate::sender::Sender;
use aviso_core::{DeliveryId, EndpointId};
use aviso_store::{DispatchJob, Store};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Starts the dispatcher's tasks.
pub struct Dispatcher;

impl Dispatcher {
    /// Starts the dispatcher on `tracker`; it stops when `cancel` fires.
    ///
    /// The caller should call [`Store::recover_claims`] with this node's id
    /// once per process start (before or beside this). Panics only if the
    /// HTTP client's TLS backend cannot start.
    pub fn start(
        store: Arc<dyn Store>,
        cfg: DispatcherConfig,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) -> DispatchHandle {
        Self::try_start(store, cfg, cancel, tracker)
            .expect("the HTTP client's TLS backend failed to start")
    }

    /// Like [`Dispatcher::start`], returning the HTTP client's build error instead of panicking.
    pub fn try_start(
        store: Arc<dyn Store>,
        cfg: DispatcherConfig,
        cancel: CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<DispatchHandle, reqwest::Error> {
        let sender = Sender::new(cfg.sender.clone())?;
        let (ready_tx, ready_rx) = mpsc::channel(cfg.ready_queue.max(1));
        let (invalidate_tx, invalidate_rx) = mpsc::unbounded_channel();
        let wake = Arc::new(Wake::default());
        let handle = DispatchHandle {
            inner: Arc::new(Inner {
                node_id: cfg.node_id.clone(),
                ready_tx,
                wake: wake.clone(),
                invalidate_tx,
                store: store.clone(),
                tracker: tracker.clone(),
            }),
        };
        let actor = Actor::new(
            store,
            cfg,
            sender,
            cancel,
            tracker.clone(),
            ready_rx,
            invalidate_rx,
            wake,
        );
        tracker.spawn(actor.run());
        Ok(handle)
    }
}

/// How a [`DispatchHandle`] wakes the dispatcher: one stored permit, so a
/// burst of wake-ups costs one scan, and what each asked for.
#[derive(Default)]
pub(crate) struct Wake {
    notify: Notify,
    /// Something became due (a resend, a replay): scan now.
    due: AtomicBool,
    /// Jobs overflowed the ready queue and their claims are released: scan
    /// once the queue is empty. Scanning at every overflow would, under a
    /// sustained overload, scan back to back for work that has no room.
    shed: AtomicBool,
}

impl Wake {
    fn due(&self) {
        self.due.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    fn shed(&self) {
        self.shed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// Waits for a wake-up.
    pub(crate) async fn notified(&self) {
        self.notify.notified().await
    }

    /// Whether a scan was asked for now; clears the request.
    pub(crate) fn take_due(&self) -> bool {
        self.due.swap(false, Ordering::AcqRel)
    }

    /// Whether shed jobs wait for a scan; clears the request.
    pub(crate) fn take_shed(&self) -> bool {
        self.shed.load(Ordering::Relaxed) && self.shed.swap(false, Ordering::AcqRel)
    }
}

/// Feeds the running dispatcher; cheap to clone.
#[derive(Clone)]
pub struct DispatchHandle {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: String,
    ready_tx: mpsc::Sender<DispatchJob>,
    wake: Arc<Wake>,
    invalidate_tx: mpsc::UnboundedSender<EndpointId>,
    store: Arc<dyn Store>,
    tracker: TaskTracker,
}

impl DispatchHandle {
    /// This node's name: pass it as `claim_for` to [`Store::publish`].
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Queues jobs claimed for this node; never blocks. Jobs that do not fit
    /// get their claims released, and the dispatcher scans for them once it
    /// has drained its queue (not only at its next periodic scan).
    pub fn submit(&self, jobs: Vec<DispatchJob>) {
        let mut overflow: Vec<DeliveryId> = Vec::new();
        for job in jobs {
            match self.inner.ready_tx.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(job) | TrySendError::Closed(job)) => {
                    overflow.push(job.delivery)
                }
            }
        }
        if !overflow.is_empty() {
            tracing::debug!(count = overflow.len(), "ready queue full; releasing claims");
            let wake = self.inner.wake.clone();
            spawn_release(
                &self.inner.tracker,
                self.inner.store.clone(),
                overflow,
                move || wake.shed(),
            );
        }
    }

    /// Something became due (a resend, a replay): scan the store now.
    pub fn wake(&self) {
        self.inner.wake.due();
    }

    /// An endpoint was updated or deleted: drop its cached configuration.
    pub fn invalidate_endpoint(&self, id: &EndpointId) {
        // Fails only once the dispatcher has stopped, when there is no cache left.
        let _ = self.inner.invalidate_tx.send(id.clone());
    }
}

impl fmt::Debug for DispatchHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatchHandle")
            .field("node_id", &self.inner.node_id)
            .finish_non_exhaustive()
    }
}

/// Releases claims in the background (best effort: the lease expires anyway),
/// then calls `done`.
pub(crate) fn spawn_release(
    tracker: &TaskTracker,
    store: Arc<dyn Store>,
    ids: Vec<DeliveryId>,
    done: impl FnOnce() + Send + 'static,
) {
    tracker.spawn(async move {
        release(&*store, &ids).await;
        done();
    });
}

/// Releases claims now, logging a failure.
pub(crate) async fn release(store: &dyn Store, ids: &[DeliveryId]) {
    if let Err(err) = store.release_claims(ids).await {
        tracing::warn!(error = %err, count = ids.len(), "releasing claims failed");
    }
}
