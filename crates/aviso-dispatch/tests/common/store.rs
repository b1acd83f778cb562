//! An in-memory [`Store`] keeping only what the dispatcher touches.

use async_trait::async_trait;
use aviso_core::model::{
    ApiKey, Attempt, Delivery, DeliveryStatus, Endpoint, Event, EventType, NewEvent, Owner,
    Partner, Tenant,
};
use aviso_core::ops::{EndpointTest, Task};
use aviso_core::{DeliveryId, EndpointId, EventId, KeyId, PartnerId, TaskId, TenantId, Timestamp};
use aviso_store::{
    AttemptOutcome, DeliveryFilter, DispatchJob, EventQuery, LatestOfType, NextStep, Page,
    PageRequest, Published, Purged, Result, Store, StoreError,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One delivery row.
#[derive(Clone, Debug)]
pub struct Row {
    pub job: DispatchJob,
    pub status: DeliveryStatus,
    pub claimed_by: Option<String>,
}

#[derive(Default)]
pub struct FakeState {
    pub endpoints: HashMap<EndpointId, Endpoint>,
    pub rows: HashMap<DeliveryId, Row>,
    pub outcomes: Vec<AttemptOutcome>,
    /// `record_outcomes` fails this many more times.
    pub fail_writes: usize,
    /// Calls of `claim_due`.
    pub scans: usize,
    /// Deliveries returned by `claim_due`, in order.
    pub scanned: Vec<DeliveryId>,
    /// Deliveries whose claims were released, in order.
    pub released: Vec<DeliveryId>,
}

/// A store keeping only what the dispatcher touches.
#[derive(Default)]
pub struct FakeStore {
    pub state: Mutex<FakeState>,
}

impl FakeStore {
    pub fn with_endpoint(ep: &Endpoint) -> Arc<Self> {
        let s = Arc::new(Self::default());
        s.state
            .lock()
            .unwrap()
            .endpoints
            .insert(ep.id.clone(), ep.clone());
        s
    }

    /// Adds a pending delivery, claimed for `claim_for` when given (as `publish` does).
    pub fn add(&self, job: &DispatchJob, claim_for: Option<&str>) {
        let row = Row {
            job: job.clone(),
            status: DeliveryStatus::Pending,
            claimed_by: claim_for.map(str::to_owned),
        };
        self.state
            .lock()
            .unwrap()
            .rows
            .insert(job.delivery.clone(), row);
    }

    pub fn row(&self, id: &DeliveryId) -> Row {
        self.state.lock().unwrap().rows[id].clone()
    }

    pub fn status(&self, id: &DeliveryId) -> DeliveryStatus {
        self.row(id).status
    }

    pub fn endpoint(&self, id: &EndpointId) -> Endpoint {
        self.state.lock().unwrap().endpoints[id].clone()
    }

    pub fn outcomes_for(&self, id: &DeliveryId) -> Vec<AttemptOutcome> {
        let st = self.state.lock().unwrap();
        st.outcomes
            .iter()
            .filter(|o| &o.attempt.delivery == id)
            .cloned()
            .collect()
    }
}

fn unused<T>() -> Result<T> {
    Err(StoreError::Other("unused".into()))
}

#[async_trait]
impl Store for FakeStore {
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
    async fn create_event_type(&self, _: EventType) -> Result<EventType> {
        unused()
    }
    async fn get_event_type(&self, _: &str) -> Result<EventType> {
        unused()
    }
    async fn list_event_types(&self, _: PageRequest) -> Result<Page<EventType>> {
        unused()
    }
    async fn update_event_type(&self, _: EventType) -> Result<EventType> {
        unused()
    }
    async fn create_tenant(&self, _: Tenant) -> Result<Tenant> {
        unused()
    }
    async fn get_tenant(&self, _: &str) -> Result<Tenant> {
        unused()
    }
    async fn list_tenants(&self, _: PageRequest) -> Result<Page<Tenant>> {
        unused()
    }
    async fn update_tenant(&self, _: Tenant) -> Result<Tenant> {
        unused()
    }
    async fn delete_tenant(&self, _: &TenantId) -> Result<()> {
        unused()
    }
    async fn create_endpoint(&self, _: Endpoint) -> Result<Endpoint> {
        unused()
    }
    async fn get_endpoint(&self, _: &Owner, _: &EndpointId) -> Result<Endpoint> {
        unused()
    }
    async fn get_endpoint_by_id(&self, id: &EndpointId) -> Result<Endpoint> {
        self.state
            .lock()
            .unwrap()
            .endpoints
            .get(id)
            .cloned()
            .ok_or(StoreError::NotFound)
    }
    async fn list_endpoints(&self, _: &Owner, _: PageRequest) -> Result<Page<Endpoint>> {
        unused()
    }
    async fn update_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        let mut st = self.state.lock().unwrap();
        if !ep.spec.enabled {
            for r in st.rows.values_mut() {
                if r.job.endpoint == ep.id && r.status == DeliveryStatus::Pending {
                    (r.status, r.claimed_by) = (DeliveryStatus::Cancelled, None);
                }
            }
        }
        st.endpoints.insert(ep.id.clone(), ep.clone());
        Ok(ep)
    }
    async fn delete_endpoint(&self, _: &Owner, _: &EndpointId) -> Result<()> {
        unused()
    }
    async fn create_api_key(&self, _: ApiKey) -> Result<ApiKey> {
        unused()
    }
    async fn find_api_key(&self, _: &str) -> Result<Option<ApiKey>> {
        unused()
    }
    async fn delete_api_key(&self, _: &KeyId) -> Result<()> {
        unused()
    }
    async fn has_admin_key(&self) -> Result<bool> {
        unused()
    }
    async fn publish(&self, _: NewEvent, _: Option<&str>) -> Result<Published> {
        unused()
    }
    async fn get_event(&self, _: &TenantId, _: &EventId) -> Result<(Event, Vec<Delivery>)> {
        unused()
    }
    async fn list_events(&self, _: &TenantId, _: EventQuery) -> Result<Vec<Event>> {
        unused()
    }
    async fn list_deliveries(
        &self,
        _: &Owner,
        _: &EndpointId,
        _: DeliveryFilter,
        _: PageRequest,
    ) -> Result<Page<Delivery>> {
        unused()
    }
    async fn get_delivery(&self, _: &Owner, _: &DeliveryId) -> Result<(Delivery, Vec<Attempt>)> {
        unused()
    }
    async fn resend_delivery(&self, _: &Owner, _: &DeliveryId, _: Timestamp) -> Result<Delivery> {
        unused()
    }
    async fn list_partner_tenants(&self, _: &PartnerId, _: PageRequest) -> Result<Page<Tenant>> {
        unused()
    }
    async fn create_partner(&self, _: Partner) -> Result<Partner> {
        unused()
    }
    async fn get_partner(&self, _: &PartnerId) -> Result<Partner> {
        unused()
    }
    async fn list_partners(&self, _: PageRequest) -> Result<Page<Partner>> {
        unused()
    }
    async fn delivery_stats(
        &self,
        _: &Owner,
        _: &EndpointId,
        _: Option<Timestamp>,
        _: Option<Timestamp>,
    ) -> Result<Vec<(DeliveryStatus, u64)>> {
        unused()
    }
    async fn latest_events(&self, _: &Owner, _: &EndpointId) -> Result<Vec<LatestOfType>> {
        unused()
    }
    async fn record_endpoint_test(&self, _: EndpointTest) -> Result<()> {
        unused()
    }
    async fn list_endpoint_tests(
        &self,
        _: &Owner,
        _: &EndpointId,
        _: PageRequest,
    ) -> Result<Page<EndpointTest>> {
        unused()
    }
    async fn create_task(&self, _: Task) -> Result<(Task, bool)> {
        unused()
    }
    async fn get_task(&self, _: &TaskId) -> Result<Task> {
        unused()
    }
    async fn claim_task(&self, _: &str, _: Timestamp, _: Timestamp) -> Result<Option<Task>> {
        unused()
    }
    async fn step_task(
        &self,
        _: &TaskId,
        _: &str,
        _: Timestamp,
        _: Timestamp,
        _: usize,
    ) -> Result<Task> {
        unused()
    }

    async fn claim_due(
        &self,
        node: &str,
        due_before: Timestamp,
        limit: usize,
        exclude: &[EndpointId],
    ) -> Result<Vec<DispatchJob>> {
        let mut st = self.state.lock().unwrap();
        let st = &mut *st;
        st.scans += 1;
        let mut due: Vec<&mut Row> = st
            .rows
            .values_mut()
            .filter(|r| {
                r.status == DeliveryStatus::Pending
                    && r.claimed_by.is_none()
                    && r.job.due_at <= due_before
                    && !exclude.contains(&r.job.endpoint)
                    && st
                        .endpoints
                        .get(&r.job.endpoint)
                        .is_some_and(|e| e.spec.enabled)
            })
            .collect();
        due.sort_by_key(|r| r.job.due_at);
        let mut out = Vec::new();
        for r in due.into_iter().take(limit) {
            r.claimed_by = Some(node.to_owned());
            out.push(r.job.clone());
        }
        st.scanned.extend(out.iter().map(|j| j.delivery.clone()));
        Ok(out)
    }
    async fn next_due_at(&self) -> Result<Option<Timestamp>> {
        let st = self.state.lock().unwrap();
        let due = st
            .rows
            .values()
            .filter(|r| r.status == DeliveryStatus::Pending && r.claimed_by.is_none());
        Ok(due.map(|r| r.job.due_at).min())
    }
    async fn release_claims(&self, ids: &[DeliveryId]) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        for id in ids {
            if let Some(r) = st.rows.get_mut(id) {
                r.claimed_by = None;
            }
            st.released.push(id.clone());
        }
        Ok(())
    }
    async fn recover_claims(&self, node: &str) -> Result<u64> {
        let mut st = self.state.lock().unwrap();
        st.rows
            .values_mut()
            .filter(|r| r.claimed_by.as_deref() != Some(node))
            .for_each(|r| r.claimed_by = None);
        Ok(0)
    }
    async fn record_outcomes(&self, outcomes: Vec<AttemptOutcome>) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        if st.fail_writes > 0 {
            st.fail_writes -= 1;
            return Err(StoreError::Unavailable("database is locked".into()));
        }
        for o in outcomes {
            if let Some(r) = st.rows.get_mut(&o.attempt.delivery) {
                if r.status == DeliveryStatus::Pending {
                    r.job.attempts += 1;
                    r.job.round_attempts += 1;
                    match &o.next {
                        NextStep::Succeeded => {
                            (r.status, r.claimed_by) = (DeliveryStatus::Succeeded, None)
                        }
                        NextStep::Failed => {
                            (r.status, r.claimed_by) = (DeliveryStatus::Failed, None)
                        }
                        NextStep::Retry { at, keep_claim } => {
                            r.job.due_at = *at;
                            if !keep_claim {
                                r.claimed_by = None;
                            }
                        }
                    }
                }
            }
            st.outcomes.push(o);
        }
        Ok(())
    }
    async fn purge(&self, _before: Timestamp, _limit: usize) -> Result<Purged> {
        unreachable!("the dispatcher never purges")
    }
}
