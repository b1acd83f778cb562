//! `Store` for [`PostgresStore`]: publishes go to the group-commit writer,
//! every other call runs on a pooled connection in its own transaction.

use super::error::db_err;
use super::{audit, dispatch, in_tx, leases, reads, retention, tasks, writes, PostgresStore};
use crate::{
    AttemptOutcome, DeliveryFilter, DispatchJob, EventQuery, LatestOfType, Page, PageRequest,
    Published, Purged, Result, Store, StoreSignal,
};
use async_trait::async_trait;
use aviso_core::model::{
    ApiKey, Attempt, Delivery, DeliveryStatus, Endpoint, Event, EventType, NewEvent, Owner,
    Partner, Tenant,
};
use aviso_core::ops::{EndpointTest, Task};
use aviso_core::{DeliveryId, EndpointId, EventId, KeyId, PartnerId, TaskId, TenantId, Timestamp};
use deadpool_postgres::Object;
use tokio::sync::broadcast;
use tokio_postgres::IsolationLevel;
use tracing::instrument;

/// Runs `$body` in a read-only `REPEATABLE READ` transaction: one snapshot for several statements.
macro_rules! in_snapshot {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut conn: Object = $store.conn().await?;
        let $tx = conn
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db_err)?;
        let out = $body.await?;
        $tx.commit().await.map_err(db_err)?;
        Ok(out)
    }};
}

#[async_trait]
impl Store for PostgresStore {
    #[instrument(skip_all)]
    async fn ping(&self) -> Result<()> {
        reads::ping(&self.conn().await?).await
    }

    #[instrument(skip_all, fields(name = %et.name))]
    async fn create_event_type(&self, et: EventType) -> Result<EventType> {
        writes::create_event_type(&self.conn().await?, et).await
    }

    #[instrument(skip_all, fields(name = name))]
    async fn get_event_type(&self, name: &str) -> Result<EventType> {
        reads::get_event_type(&self.conn().await?, name).await
    }

    #[instrument(skip_all)]
    async fn list_event_types(&self, page: PageRequest) -> Result<Page<EventType>> {
        reads::list_event_types(&self.conn().await?, page).await
    }

    #[instrument(skip_all, fields(name = %et.name))]
    async fn update_event_type(&self, et: EventType) -> Result<EventType> {
        writes::update_event_type(&self.conn().await?, et).await
    }

    #[instrument(skip_all, fields(tenant = %t.id))]
    async fn create_tenant(&self, t: Tenant) -> Result<Tenant> {
        writes::create_tenant(&self.conn().await?, t).await
    }

    #[instrument(skip_all, fields(tenant = id_or_uid))]
    async fn get_tenant(&self, id_or_uid: &str) -> Result<Tenant> {
        reads::get_tenant(&self.conn().await?, id_or_uid).await
    }

    #[instrument(skip_all)]
    async fn list_tenants(&self, page: PageRequest) -> Result<Page<Tenant>> {
        reads::list_tenants(&self.conn().await?, page).await
    }

    #[instrument(skip_all, fields(tenant = %t.id))]
    async fn update_tenant(&self, t: Tenant) -> Result<Tenant> {
        in_tx!(self, |tx| writes::update_tenant(&tx, t))
    }

    #[instrument(skip_all, fields(partner = %partner))]
    async fn list_partner_tenants(
        &self,
        partner: &PartnerId,
        page: PageRequest,
    ) -> Result<Page<Tenant>> {
        reads::list_partner_tenants(&self.conn().await?, partner, page).await
    }

    #[instrument(skip_all, fields(partner = %p.id))]
    async fn create_partner(&self, p: Partner) -> Result<Partner> {
        writes::create_partner(&self.conn().await?, p).await
    }

    #[instrument(skip_all, fields(partner = %id))]
    async fn get_partner(&self, id: &PartnerId) -> Result<Partner> {
        reads::get_partner(&self.conn().await?, id).await
    }

    #[instrument(skip_all)]
    async fn list_partners(&self, page: PageRequest) -> Result<Page<Partner>> {
        reads::list_partners(&self.conn().await?, page).await
    }

    #[instrument(skip_all, fields(tenant = %id))]
    async fn delete_tenant(&self, id: &TenantId) -> Result<()> {
        in_tx!(self, |tx| writes::delete_tenant(&tx, id))
    }

    #[instrument(skip_all, fields(owner = %ep.owner.owner(), endpoint = %ep.id))]
    async fn create_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        in_tx!(self, |tx| writes::create_endpoint(&tx, ep))
    }

    #[instrument(skip_all, fields(owner = %owner, endpoint = %id))]
    async fn get_endpoint(&self, owner: &Owner, id: &EndpointId) -> Result<Endpoint> {
        reads::get_endpoint(&self.conn().await?, owner, id).await
    }

    #[instrument(skip_all, fields(endpoint = %id))]
    async fn get_endpoint_by_id(&self, id: &EndpointId) -> Result<Endpoint> {
        reads::get_endpoint_by_id(&self.conn().await?, id).await
    }

    #[instrument(skip_all, fields(owner = %owner))]
    async fn list_endpoints(&self, owner: &Owner, page: PageRequest) -> Result<Page<Endpoint>> {
        reads::list_endpoints(&self.conn().await?, owner, page).await
    }

    #[instrument(skip_all, fields(owner = %ep.owner.owner(), endpoint = %ep.id))]
    async fn update_endpoint(&self, ep: Endpoint) -> Result<Endpoint> {
        in_tx!(self, |tx| writes::update_endpoint(&tx, ep))
    }

    #[instrument(skip_all, fields(owner = %owner, endpoint = %id))]
    async fn delete_endpoint(&self, owner: &Owner, id: &EndpointId) -> Result<()> {
        in_tx!(self, |tx| writes::delete_endpoint(&tx, owner, id))
    }

    #[instrument(skip_all, fields(key = %key.id))]
    async fn create_api_key(&self, key: ApiKey) -> Result<ApiKey> {
        writes::create_api_key(&self.conn().await?, key).await
    }

    #[instrument(skip_all)]
    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        reads::find_api_key(&self.conn().await?, hash).await
    }

    #[instrument(skip_all, fields(key = %id))]
    async fn delete_api_key(&self, id: &KeyId) -> Result<()> {
        in_tx!(self, |tx| writes::delete_api_key(&tx, id))
    }

    #[instrument(skip_all)]
    async fn has_admin_key(&self) -> Result<bool> {
        reads::has_admin_key(&self.conn().await?).await
    }

    #[instrument(level = "debug", skip_all, fields(tenant = %ev.tenant, event = %ev.id))]
    async fn publish(&self, ev: NewEvent, claim_for: Option<&str>) -> Result<Published> {
        self.writer.publish(ev, claim_for.map(str::to_owned)).await
    }

    #[instrument(skip_all, fields(tenant = %tenant, event = %id))]
    async fn get_event(&self, tenant: &TenantId, id: &EventId) -> Result<(Event, Vec<Delivery>)> {
        in_snapshot!(self, |tx| reads::get_event(&tx, tenant, id))
    }

    #[instrument(skip_all, fields(tenant = %tenant))]
    async fn list_events(&self, tenant: &TenantId, q: EventQuery) -> Result<Vec<Event>> {
        reads::list_events(&self.conn().await?, tenant, q).await
    }

    #[instrument(skip_all, fields(owner = %owner, endpoint = %endpoint))]
    async fn list_deliveries(
        &self,
        owner: &Owner,
        endpoint: &EndpointId,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<Delivery>> {
        in_snapshot!(self, |tx| reads::list_deliveries(
            &tx, owner, endpoint, filter, page
        ))
    }

    #[instrument(skip_all, fields(owner = %owner, delivery = %id))]
    async fn get_delivery(
        &self,
        owner: &Owner,
        id: &DeliveryId,
    ) -> Result<(Delivery, Vec<Attempt>)> {
        in_snapshot!(self, |tx| reads::get_delivery(&tx, owner, id))
    }

    #[instrument(skip_all, fields(owner = %owner, delivery = %id))]
    async fn resend_delivery(
        &self,
        owner: &Owner,
        id: &DeliveryId,
        now: Timestamp,
    ) -> Result<Delivery> {
        in_tx!(self, |tx| dispatch::resend_delivery(&tx, owner, id, now))
    }

    #[instrument(skip_all, fields(owner = %owner, endpoint = %endpoint))]
    async fn delivery_stats(
        &self,
        owner: &Owner,
        endpoint: &EndpointId,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<Vec<(DeliveryStatus, u64)>> {
        audit::delivery_stats(&self.conn().await?, owner, endpoint, since, until).await
    }

    #[instrument(skip_all, fields(owner = %owner, endpoint = %endpoint))]
    async fn latest_events(
        &self,
        owner: &Owner,
        endpoint: &EndpointId,
    ) -> Result<Vec<LatestOfType>> {
        in_snapshot!(self, |tx| audit::latest_events(&tx, owner, endpoint))
    }

    #[instrument(skip_all, fields(endpoint = %test.endpoint))]
    async fn record_endpoint_test(&self, test: EndpointTest) -> Result<()> {
        audit::record_endpoint_test(&self.conn().await?, test).await
    }

    #[instrument(skip_all, fields(owner = %owner, endpoint = %endpoint))]
    async fn list_endpoint_tests(
        &self,
        owner: &Owner,
        endpoint: &EndpointId,
        page: PageRequest,
    ) -> Result<Page<EndpointTest>> {
        in_snapshot!(self, |tx| audit::list_endpoint_tests(
            &tx, owner, endpoint, page
        ))
    }

    #[instrument(skip_all, fields(task = %task.id))]
    async fn create_task(&self, task: Task) -> Result<(Task, bool)> {
        in_tx!(self, |tx| tasks::create_task(&tx, task))
    }

    #[instrument(skip_all, fields(task = %id))]
    async fn get_task(&self, id: &TaskId) -> Result<Task> {
        tasks::get_task(&self.conn().await?, id).await
    }

    #[instrument(skip_all, fields(node = node))]
    async fn claim_task(
        &self,
        node: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<Task>> {
        in_tx!(self, |tx| tasks::claim_task(&tx, node, now, lease_until))
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
        in_tx!(self, |tx| tasks::step_task(
            &tx,
            id,
            node,
            now,
            lease_until,
            batch
        ))
    }

    #[instrument(level = "debug", skip_all, fields(node = node, limit = limit))]
    async fn claim_due(
        &self,
        node: &str,
        due_before: Timestamp,
        limit: usize,
        exclude: &[EndpointId],
    ) -> Result<Vec<DispatchJob>> {
        in_tx!(self, |tx| dispatch::claim_due(
            &tx,
            &self.leases,
            node,
            due_before,
            limit,
            exclude
        ))
    }

    #[instrument(skip_all)]
    async fn next_due_at(&self) -> Result<Option<Timestamp>> {
        reads::next_due_at(&self.conn().await?).await
    }

    #[instrument(level = "debug", skip_all, fields(count = ids.len()))]
    async fn release_claims(&self, ids: &[DeliveryId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        in_tx!(self, |tx| dispatch::release_claims(&tx, ids))
    }

    /// Other nodes may be running: releases only the claims of nodes whose
    /// lease ran out (or that never had one).
    #[instrument(skip_all)]
    async fn recover_claims(&self, node: &str) -> Result<u64> {
        in_tx!(self, |tx| leases::recover(&tx, node))
    }

    #[instrument(level = "debug", skip_all, fields(count = outcomes.len()))]
    async fn record_outcomes(&self, outcomes: Vec<AttemptOutcome>) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        in_tx!(self, |tx| dispatch::record_outcomes(&tx, outcomes))
    }

    #[instrument(skip_all, fields(limit = limit))]
    async fn purge(&self, before: Timestamp, limit: usize) -> Result<Purged> {
        in_tx!(self, |tx| retention::purge(&tx, before, limit))
    }

    #[instrument(skip_all, fields(node = node))]
    async fn leave(&self, node: &str) -> Result<()> {
        let released: u64 = in_tx!(self, |tx| leases::leave(&tx, &self.leases, node))?;
        if released > 0 {
            tracing::info!(released, "released claims on leaving");
        }
        Ok(())
    }

    fn signals(&self) -> Option<broadcast::Receiver<StoreSignal>> {
        Some(self.signals.subscribe())
    }
}
