//! `Store` for [`SqliteStore`]: writes go to the writer thread, reads to the pool.

use super::{audit, dispatch, publish, reads, retention, tasks, writes, SqliteStore};
use crate::{
    AttemptOutcome, DeliveryFilter, DispatchJob, EventQuery, LatestOfType, Page, PageRequest,
    Published, Purged, Result, Store,
};
use async_trait::async_trait;
use aviso_core::model::{
    ApiKey, Attempt, Delivery, DeliveryStatus, Endpoint, Event, EventType, NewEvent, Owner,
    Partner, Tenant,
};
use aviso_core::ops::{EndpointTest, Task};
use aviso_core::{DeliveryId, EndpointId, EventId, KeyId, PartnerId, TaskId, TenantId, Timestamp};
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
        self.write(move |c| writes::update_tenant(c, t)).await
    }

    #[instrument(skip_all, fields(partner = %partner))]
    async fn list_partner_tenants(
        &self,
        partner: &PartnerId,
        page: PageRequest,
    ) -> Result<Page<Tenant>> {
        let partner = partner.clone();
        self.read(move |c| reads::list_partner_tenants(c, &partner, page))
            .await
    }

    #[instrument(skip_all, fields(partner = %p.id))]
    async fn create_partner(&self, p: Partner) -> Result<Partner> {
        self.write(move |c| writes::create_partner(&c.conn, p))
            .await
    }

    #[instrument(skip_all, fields(partner = %id))]
    async fn get_partner(&self, id: &PartnerId) -> Result<Partner> {
        let id = id.clone();
        self.read(move |c| reads::get_partner(c, &id)).await
    }

    #[instrument(skip_all)]
    async fn list_partners(&self, page: PageRequest) -> Result<Page<Partner>> {
        self.read(move |c| reads::list_partners(c, page)).await
    }

    #[instrument(skip_all, fields(tenant = %id))]
    async fn delete_tenant(&self, id: &TenantId) -> Result<()> {
        let id = id.clone();
        self.write(move |c| writes::delete_tenant(c, &id)).await
    }

    #[instrument(skip_all, fields(owner = %ep.owner.owner(), endpoint = %ep.id))]
    async fn create_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        self.write(move |c| writes::create_endpoint(c, ep)).await
    }

    #[instrument(skip_all, fields(owner = %owner, endpoint = %id))]
    async fn get_endpoint(&self, owner: &Owner, id: &EndpointId) -> Result<Endpoint> {
        let (owner, id) = (owner.clone(), id.clone());
        self.read(move |c| reads::get_endpoint(c, &owner, &id))
            .await
    }

    #[instrument(skip_all, fields(endpoint = %id))]
    async fn get_endpoint_by_id(&self, id: &EndpointId) -> Result<Endpoint> {
        let id = id.clone();
        self.read(move |c| reads::get_endpoint_by_id(c, &id)).await
    }

    #[instrument(skip_all, fields(owner = %owner))]
    async fn list_endpoints(&self, owner: &Owner, page: PageRequest) -> Result<Page<Endpoint>> {
        let owner = owner.clone();
        self.read(move |c| reads::list_endpoints(c, &owner, page))
            .await
    }

    #[instrument(skip_all, fields(owner = %ep.owner.owner(), endpoint = %ep.id))]
    async fn update_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        self.write(move |c| writes::update_endpoint(c, ep)).await
    }

    #[instrument(skip_all, fields(owner = %owner, endpoint = %id))]
    async fn delete_endpoint(&self, owner: &Owner, id: &EndpointId) -> Result<()> {
        let (owner, id) = (owner.clone(), id.clone());
        self.write(move |c| writes::delete_endpoint(c, &owner, &id))
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

    #[instrument(level = "debug", skip_all, fields(tenant = %ev.tenant, event = %ev.id))]
    async fn publish(&self, ev: NewEvent, claim_for: Option<&str>) -> Result<Published> {
        let claim_for = claim_for.map(str::to_owned);
        self.write_bare(move |c| publish::publish(c, ev, claim_for))
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

    #[instrument(skip_all, fields(owner = %owner, endpoint = %endpoint))]
    async fn list_deliveries(
        &self,
        owner: &Owner,
        endpoint: &EndpointId,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<Delivery>> {
        let (owner, endpoint) = (owner.clone(), endpoint.clone());
        self.read(move |c| reads::list_deliveries(c, &owner, &endpoint, filter, page))
            .await
    }

    #[instrument(skip_all, fields(owner = %owner, delivery = %id))]
    async fn get_delivery(
        &self,
        owner: &Owner,
        id: &DeliveryId,
    ) -> Result<(Delivery, Vec<Attempt>)> {
        let (owner, id) = (owner.clone(), id.clone());
        self.read(move |c| reads::get_delivery(c, &owner, &id))
            .await
    }

    #[instrument(skip_all, fields(owner = %owner, delivery = %id))]
    async fn resend_delivery(
        &self,
        owner: &Owner,
        id: &DeliveryId,
        now: Timestamp,
    ) -> Result<Delivery> {
        let (owner, id) = (owner.clone(), id.clone());
        self.write(move |c| dispatch::resend_delivery(&c.conn, &owner, &id, now))
            .await
    }

    #[instrument(skip_all, fields(owner = %owner, endpoint = %endpoint))]
    async fn delivery_stats(
        &self,
        owner: &Owner,
        endpoint: &EndpointId,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<Vec<(DeliveryStatus, u64)>> {
        let (owner, endpoint) = (owner.clone(), endpoint.clone());
        self.read(move |c| audit::delivery_stats(c, &owner, &endpoint, since, until))
            .await
    }

    #[instrument(skip_all, fields(owner = %owner, endpoint = %endpoint))]
    async fn latest_events(
        &self,
        owner: &Owner,
        endpoint: &EndpointId,
    ) -> Result<Vec<LatestOfType>> {
        let (owner, endpoint) = (owner.clone(), endpoint.clone());
        self.read(move |c| audit::latest_events(c, &owner, &endpoint))
            .await
    }

    #[instrument(skip_all, fields(endpoint = %test.endpoint))]
    async fn record_endpoint_test(&self, test: EndpointTest) -> Result<()> {
        self.write(move |c| audit::record_endpoint_test(&c.conn, test))
            .await
    }

    #[instrument(skip_all, fields(owner = %owner, endpoint = %endpoint))]
    async fn list_endpoint_tests(
        &self,
        owner: &Owner,
        endpoint: &EndpointId,
        page: PageRequest,
    ) -> Result<Page<EndpointTest>> {
        let (owner, endpoint) = (owner.clone(), endpoint.clone());
        self.read(move |c| audit::list_endpoint_tests(c, &owner, &endpoint, page))
            .await
    }

    #[instrument(skip_all, fields(task = %task.id))]
    async fn create_task(&self, task: Task) -> Result<(Task, bool)> {
        self.write(move |c| tasks::create_task(&c.conn, task)).await
    }

    #[instrument(skip_all, fields(task = %id))]
    async fn get_task(&self, id: &TaskId) -> Result<Task> {
        let id = id.clone();
        self.read(move |c| tasks::get_task(c, &id)).await
    }

    #[instrument(skip_all, fields(node = node))]
    async fn claim_task(
        &self,
        node: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Task>> {
        let node = node.to_owned();
        self.write(move |c| tasks::claim_task(&c.conn, &node, now, lease_until))
            .await
    }

    #[instrument(skip_all, fields(task = %id, node = node))]
    async fn step_task(
        &self,
        id: &TaskId,
        node: &str,
        now: Timestamp,
        lease_until: Timestamp,
        batch: usize,
    ) -> Result<Task> {
        let (id, node) = (id.clone(), node.to_owned());
        self.write(move |c| tasks::step_task(&c.conn, &id, &node, now, lease_until, batch))
            .await
    }

    #[instrument(level = "debug", skip_all, fields(node = node, limit = limit))]
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

    #[instrument(level = "debug", skip_all, fields(count = ids.len()))]
    async fn release_claims(&self, ids: &[DeliveryId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        self.write(move |c| dispatch::release_claims(&c.conn, &ids))
            .await
    }

    #[instrument(skip_all)]
    async fn recover_claims(&self, node: &str) -> Result<u64> {
        // Rows inserted after this are this process's own.
        let last = self
            .write(|c| {
                tasks::recover_tasks(&c.conn)?;
                dispatch::last_delivery_row(&c.conn)
            })
            .await?;
        let mut released = 0;
        let mut from = 0;
        while from < last {
            let (node, to) = (
                node.to_owned(),
                from.saturating_add(dispatch::RECOVER_BATCH),
            );
            released += self
                .write(move |c| dispatch::recover_claims(&c.conn, &node, from, to))
                .await?;
            from = to;
        }
        Ok(released)
    }

    #[instrument(level = "debug", skip_all, fields(count = outcomes.len()))]
    async fn record_outcomes(&self, outcomes: Vec<AttemptOutcome>) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        self.write_bare(move |c| dispatch::record_outcomes(&c.conn, outcomes))
            .await
    }

    #[instrument(skip_all, fields(limit = limit))]
    async fn purge(&self, before: Timestamp, limit: usize) -> Result<Purged> {
        self.write(move |c| retention::purge(&c.conn, before, limit))
            .await
    }
}
