//! Aviso's storage: one use-case shaped [`Store`] trait and its backends.
//!
//! Backends translate their driver errors into [`StoreError`] here and
//! nowhere else. SQL dialect details stay inside each backend module.

mod json;
pub mod postgres;
pub mod sqlite;
mod tasks;

use async_trait::async_trait;
use aviso_core::model::{
    ApiKey, Attempt, Delivery, DeliveryStatus, Endpoint, Event, EventType, NewEvent, Owner,
    Partner, Tenant,
};
use aviso_core::name::{EventTypeName, EventTypePattern};
use aviso_core::ops::{EndpointTest, Task};
use aviso_core::{DeliveryId, EndpointId, EventId, KeyId, PartnerId, TaskId, TenantId, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// What went wrong in the store, in terms callers can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row (or not visible to the caller's tenant).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule or state rule was broken; the text says which.
    #[error("{0}")]
    Conflict(String),
    /// The request cannot be stored as given; the text says why.
    #[error("{0}")]
    Invalid(String),
    /// What was asked for is older than the retention period and was
    /// purged, at least in part; the text says what to do.
    #[error("{0}")]
    Expired(String),
    /// The database cannot be reached or is overloaded; try again.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else (a bug or a corrupt database).
    #[error("store error: {0}")]
    Other(String),
}

/// Why a feed cursor is answered `expired`.
pub(crate) const EXPIRED_CURSOR: &str = "events after this cursor were purged: they were older than the retention period; read the feed without a cursor to continue from the oldest event kept";

/// Result of a store call.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A page request: `after` is the key of the last item of the previous page.
#[derive(Clone, Debug, Default)]
pub struct PageRequest {
    /// Exclusive start key (an id, or a name for event types).
    pub after: Option<String>,
    /// Most items to return (the caller caps it at 250).
    pub limit: usize,
}

/// A page of results; `next` is the key to pass as `after` for the next page.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// Present when more items may follow.
    pub next: Option<String>,
}

/// One delivery ready to be attempted, with everything the sender needs.
#[derive(Clone, Debug)]
pub struct DispatchJob {
    /// The delivery.
    pub delivery: DeliveryId,
    /// Its event (the `webhook-id`).
    pub event: EventId,
    /// Where it goes.
    pub endpoint: EndpointId,
    /// The event's tenant.
    pub tenant: TenantId,
    /// The event's type.
    pub event_type: EventTypeName,
    /// The payload, byte for byte as published.
    pub payload: Arc<str>,
    /// Attempts made so far in all.
    pub attempts: u32,
    /// Attempts made so far in this round.
    pub round_attempts: u32,
    /// When this round began.
    pub round_started_at: Timestamp,
    /// When this attempt is due.
    pub due_at: Timestamp,
}

/// What happens to a delivery after an attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum NextStep {
    /// Delivered: status `succeeded`.
    Succeeded,
    /// Try again at `at`; `keep_claim` keeps the row claimed by this node
    /// (the job waits in this node's timer heap), otherwise the claim is released.
    Retry {
        /// Due time of the next attempt.
        at: Timestamp,
        /// Keep the claim (`locked_by`) on the row.
        keep_claim: bool,
    },
    /// The policy gave up: status `failed`, claim released.
    Failed,
}

/// One finished attempt and the delivery's next step, written together.
#[derive(Clone, Debug)]
pub struct AttemptOutcome {
    /// The attempt to record (its `delivery` field names the delivery).
    pub attempt: Attempt,
    /// The delivery's new state.
    pub next: NextStep,
}

/// What publishing produced.
#[derive(Clone, Debug)]
pub struct Published {
    /// The stored event (the first one, on an idempotent repeat).
    pub event: Event,
    /// Its deliveries.
    pub deliveries: Vec<Delivery>,
    /// False when the idempotency key matched an earlier event; nothing new was written.
    pub created: bool,
    /// Jobs for the new deliveries, claimed for the node given to `publish`
    /// (empty on a repeat).
    pub jobs: Vec<DispatchJob>,
}

/// Events feed query.
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    /// Only events after this `seq` (exclusive).
    pub after_seq: Option<i64>,
    /// Only events whose type matches one of these; empty means all.
    pub types: Vec<EventTypePattern>,
    /// Most events to return.
    pub limit: usize,
}

/// What one retention batch deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Finished deliveries.
    pub deliveries: u64,
    /// Their attempts.
    pub attempts: u64,
    /// Events no delivery referred to any more.
    pub events: u64,
}

impl std::ops::AddAssign for Purged {
    fn add_assign(&mut self, o: Self) {
        self.deliveries += o.deliveries;
        self.attempts += o.attempts;
        self.events += o.events;
    }
}

impl Purged {
    /// Rows deleted in all.
    pub fn total(&self) -> u64 {
        self.deliveries + self.attempts + self.events
    }
}

/// Which of an endpoint's deliveries to list (all conditions must hold).
#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    /// Only this status.
    pub status: Option<DeliveryStatus>,
    /// Only event types this pattern matches.
    pub event_type: Option<EventTypePattern>,
    /// Only deliveries created at or after this time.
    pub since: Option<Timestamp>,
    /// Only deliveries created before this time.
    pub until: Option<Timestamp>,
}

/// One subscribed event type of one covered tenant: its latest event, if
/// any, and that event's delivery to the endpoint.
#[derive(Clone, Debug)]
pub struct LatestOfType {
    /// The catalogue type.
    pub event_type: EventTypeName,
    /// The covered tenant.
    pub tenant: TenantId,
    /// The tenant's latest event of the type.
    pub event: Option<Event>,
    /// That event's newest delivery to the endpoint (none when it was
    /// published before the endpoint existed or did not match its filter).
    pub delivery: Option<Delivery>,
}

/// Something another node sharing the database did that this node must react to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSignal {
    /// Deliveries became due that no node holds (published without a claim,
    /// resent, released, or left by a dead node): scan now.
    WorkDue,
    /// An endpoint was updated or deleted: drop cached copies.
    EndpointChanged(EndpointId),
    /// An API key or tenant was deleted: drop cached keys.
    KeysChanged,
    /// Signals may have been missed (the listener reconnected): scan now and drop caches.
    Resync,
}

/// The storage operations Aviso needs, shaped by use case.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap liveness check of the database.
    async fn ping(&self) -> Result<()>;

    // --- event types ---
    /// Creates a type; `Conflict` if the name exists.
    async fn create_event_type(&self, et: EventType) -> Result<EventType>;
    /// One type by name.
    async fn get_event_type(&self, name: &str) -> Result<EventType>;
    /// Types ordered by name; `after` is a name.
    async fn list_event_types(&self, page: PageRequest) -> Result<Page<EventType>>;
    /// Replaces a type's mutable fields; `NotFound` if absent.
    async fn update_event_type(&self, et: EventType) -> Result<EventType>;

    // --- tenants ---
    /// Creates a tenant; `Conflict` if the uid exists.
    async fn create_tenant(&self, t: Tenant) -> Result<Tenant>;
    /// One tenant by id (`ten_…`) or by uid.
    async fn get_tenant(&self, id_or_uid: &str) -> Result<Tenant>;
    /// Tenants ordered by id.
    async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>>;
    /// A partner's tenants ordered by id.
    async fn list_partner_tenants(
        &self,
        partner: &PartnerId,
        page: PageRequest,
    ) -> Result<Page<Tenant>>;
    /// Replaces uid, name, partner and metadata; `Conflict` if the new uid is
    /// taken, `Invalid` if the partner does not exist.
    async fn update_tenant(&self, t: Tenant) -> Result<Tenant>;
    /// Deletes a tenant and everything it owns (endpoints, events, deliveries, attempts, keys).
    async fn delete_tenant(&self, id: &TenantId) -> Result<()>;

    // --- partners ---
    /// Creates a partner.
    async fn create_partner(&self, p: Partner) -> Result<Partner>;
    /// One partner.
    async fn get_partner(&self, id: &PartnerId) -> Result<Partner>;
    /// Partners ordered by id.
    async fn list_partners(&self, page: PageRequest) -> Result<Page<Partner>>;

    // --- endpoints ---
    /// Creates an endpoint for its owner. A partner endpoint's listed tenants
    /// must all be the partner's (`Invalid` otherwise).
    async fn create_endpoint(&self, ep: Endpoint) -> Result<Endpoint>;
    /// One endpoint of an owner.
    async fn get_endpoint(&self, owner: &Owner, id: &EndpointId) -> Result<Endpoint>;
    /// One endpoint by id alone (for the dispatcher).
    async fn get_endpoint_by_id(&self, id: &EndpointId) -> Result<Endpoint>;
    /// An owner's endpoints ordered by id.
    async fn list_endpoints(&self, owner: &Owner, page: PageRequest) -> Result<Page<Endpoint>>;
    /// Replaces spec, secrets, disabled_reason and (partner endpoints) coverage;
    /// `NotFound` if absent for that owner. Disabling an endpoint cancels its
    /// pending deliveries.
    async fn update_endpoint(&self, ep: Endpoint) -> Result<Endpoint>;
    /// Deletes an endpoint with its deliveries and their attempts.
    async fn delete_endpoint(&self, owner: &Owner, id: &EndpointId) -> Result<()>;

    // --- API keys ---
    /// Stores a key (its hash); `Conflict` on a duplicate hash.
    async fn create_api_key(&self, key: ApiKey) -> Result<ApiKey>;
    /// The key with this hash, if any.
    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>>;
    /// Deletes a key.
    async fn delete_api_key(&self, id: &KeyId) -> Result<()>;
    /// Whether any admin key is stored.
    async fn has_admin_key(&self) -> Result<bool>;

    // --- events ---
    /// Stores an event and one pending delivery per matching endpoint of its
    /// tenant and per matching partner endpoint covering the tenant (enabled,
    /// event-type patterns, payload filter), in one transaction.
    /// With an idempotency key already used by the tenant, returns the first
    /// event and its deliveries and writes nothing. New deliveries are claimed
    /// for `claim_for` when given, so the scan does not pick them up too.
    async fn publish(&self, ev: NewEvent, claim_for: Option<&str>) -> Result<Published>;
    /// One event of a tenant with its deliveries.
    async fn get_event(&self, tenant: &TenantId, id: &EventId) -> Result<(Event, Vec<Delivery>)>;
    /// A tenant's events in commit order (`seq` ascending).
    async fn list_events(&self, tenant: &TenantId, q: EventQuery) -> Result<Vec<Event>>;

    // --- deliveries (scoped by the owner of their endpoint) ---
    /// An owner's endpoint's deliveries, newest first (by id, so pages stay
    /// exact while rows are added), filtered; `after` is a delivery id.
    async fn list_deliveries(
        &self,
        owner: &Owner,
        endpoint: &EndpointId,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<Delivery>>;
    /// One delivery to one of the owner's endpoints, with its attempts (oldest first).
    async fn get_delivery(
        &self,
        owner: &Owner,
        id: &DeliveryId,
    ) -> Result<(Delivery, Vec<Attempt>)>;
    /// Puts a finished delivery back to `pending`, due now, in a new round,
    /// unclaimed; `Conflict` if it is already pending or its endpoint is disabled.
    async fn resend_delivery(
        &self,
        owner: &Owner,
        id: &DeliveryId,
        now: Timestamp,
    ) -> Result<Delivery>;
    /// Counts of an endpoint's deliveries by status, created in `[since, until)`.
    async fn delivery_stats(
        &self,
        owner: &Owner,
        endpoint: &EndpointId,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<Vec<(DeliveryStatus, u64)>>;
    /// For every catalogue type the endpoint subscribes to and every tenant it
    /// covers, the latest event of that type (if any) with its delivery to the
    /// endpoint; ordered by type, then tenant.
    async fn latest_events(
        &self,
        owner: &Owner,
        endpoint: &EndpointId,
    ) -> Result<Vec<LatestOfType>>;

    // --- test sends ---
    /// Records a test send.
    async fn record_endpoint_test(&self, test: EndpointTest) -> Result<()>;
    /// An owner's endpoint's test sends, newest first; `after` is an attempt id.
    async fn list_endpoint_tests(
        &self,
        owner: &Owner,
        endpoint: &EndpointId,
        page: PageRequest,
    ) -> Result<Page<EndpointTest>>;

    // --- background tasks ---
    /// Stores a queued task. With an idempotency key the owner already used,
    /// returns that task instead (`false`), or `Conflict` if it was for a
    /// different operation.
    async fn create_task(&self, task: Task) -> Result<(Task, bool)>;
    /// One task.
    async fn get_task(&self, id: &TaskId) -> Result<Task>;
    /// Takes the oldest unfinished task no live node holds, for `node` until
    /// `lease_until`.
    async fn claim_task(
        &self,
        node: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Task>>;
    /// Runs the next batch (at most `batch` items) of a task `node` holds, in
    /// one transaction with its progress, and renews the hold. New pending
    /// deliveries are unclaimed and due `now`, for the dispatchers' scan.
    /// `Conflict` if another node holds the task now.
    async fn step_task(
        &self,
        id: &TaskId,
        node: &str,
        now: Timestamp,
        lease_until: Timestamp,
        batch: usize,
    ) -> Result<Task>;

    // --- dispatch ---
    /// Claims up to `limit` pending, unclaimed deliveries of enabled endpoints
    /// due at or before `due_before`, oldest due first, for `node`, skipping
    /// the endpoints in `exclude` (whose lanes are full on this node).
    async fn claim_due(
        &self,
        node: &str,
        due_before: Timestamp,
        limit: usize,
        exclude: &[EndpointId],
    ) -> Result<Vec<DispatchJob>>;
    /// The earliest due time among pending, unclaimed deliveries.
    async fn next_due_at(&self) -> Result<Option<Timestamp>>;
    /// Releases claims so the scan can pick the rows up again.
    async fn release_claims(&self, ids: &[DeliveryId]) -> Result<()>;
    /// Releases claims held by nodes that are gone, never those of `node`
    /// (the caller's own). On SQLite, where one process owns the database,
    /// that is every other claim, released in batches so publishing goes on
    /// meanwhile; called at start, and may run beside the dispatcher.
    async fn recover_claims(&self, node: &str) -> Result<u64>;
    /// Records attempts and updates their deliveries, all in one transaction.
    /// Outcomes for deliveries that no longer exist are skipped; a delivery
    /// that is no longer `pending` (cancelled meanwhile) gets its attempt
    /// recorded but keeps its status.
    async fn record_outcomes(&self, outcomes: Vec<AttemptOutcome>) -> Result<()>;

    // --- retention ---
    /// One batch of the retention purge: deletes up to `limit` finished
    /// (succeeded, failed, cancelled) deliveries last changed before `before`
    /// with their attempts, then up to `limit` events created before `before`
    /// that no delivery refers to any more. Pending deliveries and their
    /// events are never purged. Call again while a batch deletes anything.
    async fn purge(&self, before: Timestamp, limit: usize) -> Result<Purged>;

    // --- many nodes ---
    /// Node `node` stops for good (a graceful shutdown, after its dispatcher
    /// has drained): other nodes may take its remaining work at once instead
    /// of waiting for its lease to run out. Nothing to do where one process
    /// owns the database.
    async fn leave(&self, node: &str) -> Result<()> {
        let _ = node;
        Ok(())
    }

    /// Signals from every node sharing the database (this one included), or
    /// `None` when one process owns the database and nothing else can change it.
    fn signals(&self) -> Option<broadcast::Receiver<StoreSignal>> {
        None
    }
}

/// Backend tuning that applies where the backend has the notion.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// PostgreSQL: how long a node's claims outlive its last lease renewal.
    pub lease: Duration,
    /// PostgreSQL: most connections per process.
    pub pool_size: usize,
    /// PostgreSQL: one live node at a time sends to an endpoint.
    pub exclusive_endpoints: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        let pg = postgres::PostgresOptions::default();
        Self {
            lease: pg.lease,
            pool_size: pg.pool_size,
            exclusive_endpoints: pg.exclusive_endpoints,
        }
    }
}

/// A database URL fit for logs and messages (any password replaced).
pub fn display_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Whether a database URL names a backend this build supports.
pub fn is_supported_url(url: &str) -> bool {
    url.starts_with("sqlite:") || is_postgres_url(url)
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the backend a database URL names and applies its migrations.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    open_with(url, OpenOptions::default()).await
}

/// Like [`open`], with tuning.
pub async fn open_with(url: &str, opts: OpenOptions) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?))
    } else if is_postgres_url(url) {
        let opts = postgres::PostgresOptions {
            lease: opts.lease,
            pool_size: opts.pool_size,
            exclusive_endpoints: opts.exclusive_endpoints,
        };
        Ok(Arc::new(postgres::PostgresStore::open(url, opts).await?))
    } else {
        Err(StoreError::Invalid(
            "unsupported database URL: use sqlite://PATH or postgres://USER@HOST/DB".into(),
        ))
    }
}

/// Reports one group commit to the `metrics` facade (docs/metrics.md): its
/// size in commands and how long it took, by backend and result.
pub(crate) fn commit_observed(
    backend: &'static str,
    commands: usize,
    started: std::time::Instant,
    ok: bool,
) {
    let result = if ok { "ok" } else { "error" };
    metrics::histogram!("aviso_store_commit_batch_size", "backend" => backend)
        .record(commands as f64);
    metrics::histogram!("aviso_store_commit_seconds", "backend" => backend, "result" => result)
        .record(started.elapsed().as_secs_f64());
}
