//! `Store` for [`SqliteStore`]: writes go to the writer thread, reads to the pool.

use super::{dispatch, publish, reads, retention, writes, SqliteStore};
use crate::{
    AttemptOutcome, DispatchJob, EventQuery, Page, PageRequest, Published, Purged, Result, Store,
};
use async_trait::async_trait;
use aviso_core::model::{
    ApiKey, Attempt, Delivery, DeliveryStatus, Endpoint, Event, EventType, NewEvent, Tenant,
};
use aviso_core::{DeliveryId, EndpointId, EventId, KeyId, TenantId, Timestamp};
use tracing::instrument;

#[async_trait]
impl Store for SqliteStore {
    #[instrument(skip_all)]
    async fn ping(&self) -> Result<()> {
        self.read(|c| reads::ping(c)).await
    }

    #[instrument(skip_all, fields(name = %et.name))]
    async fn create_event_type(&self, et: EventType) -> Result<EventType> {
        self.write(move |c| writes::create_event_type(&c.conn, et))
            .await
    }

    #[instrument(skip_all, fields(name = name))]
    async fn get_event_type(&self, name: &str) -> Result<EventType> {
        let name = name.to_owned();
        self.read(move |c| reads::get_event_type(c, &name)).await
    }

    #[instrument(skip_all)]
    async fn list_event_types(&self, page: PageRequest) -> Result<Page<EventType>> {
        self.read(move |c| reads::list_event_types(c, page)).await
    }

    #[instrument(skip_all, fields(name = %et.name))]
    async fn update_event_type(&self, et: EventType) -> Result<EventType> {
        self.write(move |c| writes::update_event_type(&c.conn, et))
            .await
    }

    #[instrument(skip_all, fields(tenant = %t.id))]
    async fn create_tenant(&self, t: Tenant) -> Result<Tenant> {
        self.write(move |c| writes::create_tenant(&c.conn, t)).await
    }

    #[instrument(skip_all, fields(tenant = id_or_uid))]
    async fn get_tenant(&self, id_or_uid: &str) -> Result<Tenant> {
        let key = id_or_uid.to_owned();
        self.read(move |c| reads::get_tenant(c, &key)).await
    }

    #[instrument(skip_all)]
    async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>> {
        self.read(move |c| reads::list_tenants(c, page)).await
    }

    #[instrument(skip_all, fields(tenant = %t.id))]
    async fn update_tenant(&self, t: Tenant) -> Result<Tenant> {
        self.write(move |c| writes::update_tenant(&c.conn, t)).await
    }

    #[instrument(skip_all, fields(tenant = %id))]
    async fn delete_tenant(&self, id: &TenantId) -> Result<()> {
        let id = id.clone();
        self.write(move |c| writes::delete_tenant(c, &id)).await
    }

    #[instrument(skip_all, fields(tenant = %ep.tenant, endpoint = %ep.id))]
    async fn create_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        self.write(move |c| writes::create_endpoint(c, ep)).await
    }

    #[instrument(skip_all, fields(tenant = %tenant, endpoint = %id))]
    async fn get_endpoint(&self, tenant: &TenantId, id: &EndpointId) -> Result<Endpoint> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.read(move |c| reads::get_endpoint(c, &tenant, &id))
            .await
    }

    #[instrument(skip_all, fields(endpoint = %id))]
    async fn get_endpoint_by_id(&self, id: &EndpointId) -> Result<Endpoint> {
        let id = id.clone();
        self.read(move |c| reads::get_endpoint_by_id(c, &id)).await
    }

    #[instrument(skip_all, fields(tenant = %tenant))]
    async fn list_endpoints(&self, tenant: &TenantId, page: PageRequest) -> Result<Page<Endpoint>> {
        let tenant = tenant.clone();
        self.read(move |c| reads::list_endpoints(c, &tenant, page))
            .await
    }

    #[instrument(skip_all, fields(tenant = %ep.tenant, endpoint = %ep.id))]
    async fn update_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        self.write(move |c| writes::update_endpoint(c, ep)).await
    }

    #[instrument(skip_all, fields(tenant = %tenant, endpoint = %id))]
    async fn delete_endpoint(&self, tenant: &TenantId, id: &EndpointId) -> Result<()> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.write(move |c| writes::delete_endpoint(c, &tenant, &id))
            .await
    }

    #[instrument(skip_all, fields(key = %key.id))]
    async fn create_api_key(&self, key: ApiKey) -> Result<ApiKey> {
        self.write(move |c| writes::create_api_key(&c.conn, key))
            .await
    }

    #[instrument(skip_all)]
    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let hash = hash.to_owned();
        self.read(move |c| reads::find_api_key(c, &hash)).await
    }

    #[instrument(skip_all, fields(key = %id))]
    async fn delete_api_key(&self, id: &KeyId) -> Result<()> {
        let id = id.clone();
        self.write(move |c| writes::delete_api_key(&c.conn, &id))
            .await
    }

    #[instrument(skip_all)]
    async fn has_admin_key(&self) -> Result<bool> {
        self.read(|c| reads::has_admin_key(c)).await
    }

    #[instrument(skip_all, fields(tenant = %ev.tenant, event = %ev.id))]
    async fn publish(&self, ev: NewEvent, claim_for: Option<&str>) -> Result<Published> {
        let claim_for = claim_for.map(str::to_owned);
        self.write(move |c| publish::publish(c, ev, claim_for))
            .await
    }

    #[instrument(skip_all, fields(tenant = %tenant, event = %id))]
    async fn get_event(&self, tenant: &TenantId, id: &EventId) -> Result<(Event, Vec<Delivery>)> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.read(move |c| reads::get_event(c, &tenant, &id)).await
    }

    #[instrument(skip_all, fields(tenant = %tenant))]
    async fn list_events(&self, tenant: &TenantId, q: EventQuery) -> Result<Vec<Event>> {
        let tenant = tenant.clone();
        self.read(move |c| reads::list_events(c, &tenant, q)).await
    }

    #[instrument(skip_all, fields(tenant = %tenant, endpoint = %endpoint))]
    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        endpoint: &EndpointId,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<Delivery>> {
        let (tenant, endpoint) = (tenant.clone(), endpoint.clone());
        self.read(move |c| reads::list_deliveries(c, &tenant, &endpoint, status, page))
            .await
    }

    #[instrument(skip_all, fields(tenant = %tenant, delivery = %id))]
    async fn get_delivery(
        &self,
        tenant: &TenantId,
        id: &DeliveryId,
    ) -> Result<(Delivery, Vec<Attempt>)> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.read(move |c| reads::get_delivery(c, &tenant, &id))
            .await
    }

    #[instrument(skip_all, fields(tenant = %tenant, delivery = %id))]
    async fn resend_delivery(
        &self,
        tenant: &TenantId,
        id: &DeliveryId,
        now: Timestamp,
    ) -> Result<Delivery> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.write(move |c| dispatch::resend_delivery(&c.conn, &tenant, &id, now))
            .await
    }

    #[instrument(skip_all, fields(node = node, limit = limit))]
    async fn claim_due(
        &self,
        node: &str,
        due_before: Timestamp,
        limit: usize,
        exclude: &[EndpointId],
    ) -> Result<Vec<DispatchJob>> {
        let (node, exclude) = (node.to_owned(), exclude.to_vec());
        self.write(move |c| dispatch::claim_due(&c.conn, &node, due_before, limit, &exclude))
            .await
    }

    #[instrument(skip_all)]
    async fn next_due_at(&self) -> Result<Option<Timestamp>> {
        self.read(|c| reads::next_due_at(c)).await
    }

    #[instrument(skip_all, fields(count = ids.len()))]
    async fn release_claims(&self, ids: &[DeliveryId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        self.write(move |c| dispatch::release_claims(&c.conn, &ids))
            .await
    }

    #[instrument(skip_all)]
    async fn recover_claims(&self) -> Result<u64> {
        self.write(|c| dispatch::recover_claims(&c.conn)).await
    }

    #[instrument(skip_all, fields(count = outcomes.len()))]
    async fn record_outcomes(&self, outcomes: Vec<AttemptOutcome>) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        self.write(move |c| dispatch::record_outcomes(&c.conn, outcomes))
            .await
    }

    #[instrument(skip_all, fields(limit = limit))]
    async fn purge(&self, before: Timestamp, limit: usize) -> Result<Purged> {
        self.write(move |c| retention::purge(&c.conn, before, limit))
            .await
    }
}
