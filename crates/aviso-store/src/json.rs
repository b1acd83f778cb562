//! JSON text forms shared by the backends (both keep JSON as text).

use crate::{Result, StoreError};
use aviso_core::auth::{Headers, ReceiverAuth};
use aviso_core::filter::PayloadFilter;
use aviso_core::model::EndpointSpec;
use aviso_core::name::EventTypePattern;
use aviso_core::policy::DeliveryPolicy;
use aviso_core::url::EndpointUrl;
use serde::{Deserialize, Serialize};

/// The stored form of an [`EndpointSpec`] (which is not itself serde):
/// auth is kept in full, never redacted.
#[derive(Serialize, Deserialize)]
struct SpecJson {
    url: EndpointUrl,
    description: String,
    event_types: Vec<EventTypePattern>,
    enabled: bool,
    auth: ReceiverAuth,
    headers: Headers,
    filter: PayloadFilter,
    policy: DeliveryPolicy,
}

/// Serialises an endpoint spec for `endpoints.spec_json`.
pub(crate) fn spec_to_json(s: &EndpointSpec) -> Result<String> {
    to_json(&SpecJson {
        url: s.url.clone(),
        description: s.description.clone(),
        event_types: s.event_types.clone(),
        enabled: s.enabled,
        auth: s.auth.clone(),
        headers: s.headers.clone(),
        filter: s.filter.clone(),
        policy: s.policy.clone(),
    })
}

/// Parses `endpoints.spec_json`.
pub(crate) fn spec_from_json(s: &str) -> serde_json::Result<EndpointSpec> {
    let j: SpecJson = serde_json::from_str(s)?;
    Ok(EndpointSpec {
        url: j.url,
        description: j.description,
        event_types: j.event_types,
        enabled: j.enabled,
        auth: j.auth,
        headers: j.headers,
        filter: j.filter,
        policy: j.policy,
    })
}

/// Serialises a value stored as JSON text.
pub(crate) fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Other(format!("cannot encode JSON: {e}")))
}
