//! The records Aviso stores and serves.

use crate::auth::{Headers, ReceiverAuth};
use crate::filter::PayloadFilter;
use crate::name::{EventTypeName, EventTypePattern};
use crate::policy::DeliveryPolicy;
use crate::signing::SigningSecret;
use crate::url::EndpointUrl;
use crate::{
    AttemptId, DeliveryId, EndpointId, EventId, KeyId, ParseError, PartnerId, TenantId, Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// A catalogue entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventType {
    /// `ENTITY.EVENT`.
    pub name: EventTypeName,
    /// What it means.
    pub description: String,
    /// Path for the portal tree, e.g. `Resultados da operação/Boletins`.
    pub group: Option<String>,
    /// Optional JSON Schema of the payload (documentation).
    pub schema: Option<Value>,
    /// Example payload, used by test sends.
    pub example: Option<Value>,
    /// Archived types accept no new events.
    pub archived: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// An integrator acting for many tenants (its client companies).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Partner {
    /// `par_…`.
    pub id: PartnerId,
    /// Display name.
    pub name: String,
    /// Free JSON object.
    pub metadata: Value,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A customer of the platform.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tenant {
    /// `ten_…`.
    pub id: TenantId,
    /// External id, e.g. a tax number; unique.
    pub uid: String,
    /// Display name.
    pub name: String,
    /// The partner acting for this tenant, if any.
    pub partner: Option<PartnerId>,
    /// Free JSON object.
    pub metadata: Value,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// What a user configures on an endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointSpec {
    /// Destination.
    pub url: EndpointUrl,
    /// Free text.
    pub description: String,
    /// Subscribed types; empty means all.
    pub event_types: Vec<EventTypePattern>,
    /// Active / inactive.
    pub enabled: bool,
    /// Receiver auth.
    pub auth: ReceiverAuth,
    /// Extra static headers.
    pub headers: Headers,
    /// Payload filter; empty means every payload.
    pub filter: PayloadFilter,
    /// Delivery policy.
    pub policy: DeliveryPolicy,
}

impl EndpointSpec {
    /// Whether an event of this type and payload should go to this endpoint.
    /// `payload` is parsed lazily, only when a filter needs it.
    pub fn wants(&self, event_type: &str, payload: impl FnOnce() -> Option<Value>) -> bool {
        self.enabled
            && crate::name::any_matches(&self.event_types, event_type)
            && (self.filter.is_empty() || payload().is_some_and(|p| self.filter.matches(&p)))
    }

    /// The ordering key of a delivery to this endpoint (`None` when its
    /// deliveries are unordered); `payload` is parsed only when needed.
    pub fn ordering_key(&self, payload: impl FnOnce() -> Option<Value>) -> Option<String> {
        match &self.policy.ordering {
            crate::flow::DeliveryOrder::None => None,
            order => order.key_of_value(payload().as_ref()),
        }
    }
}

/// The signing secrets of an endpoint: the current one, and during a rotation's
/// grace period the previous one too.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointSecrets {
    /// Signs every request.
    pub current: SigningSecret,
    /// Also signs, until `previous_expires_at`.
    pub previous: Option<SigningSecret>,
    /// End of the grace period.
    pub previous_expires_at: Option<Timestamp>,
}

impl EndpointSecrets {
    /// A fresh pair with no previous secret.
    pub fn new(current: SigningSecret) -> Self {
        Self {
            current,
            previous: None,
            previous_expires_at: None,
        }
    }

    /// The secrets that sign a request sent at `now`.
    pub fn active(&self, now: Timestamp) -> impl Iterator<Item = &SigningSecret> {
        let prev = match (&self.previous, self.previous_expires_at) {
            (Some(p), Some(exp)) if now < exp => Some(p),
            _ => None,
        };
        std::iter::once(&self.current).chain(prev)
    }
}

/// Who owns a scoped resource (an endpoint, a task): a tenant or a partner.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A tenant.
    Tenant(TenantId),
    /// A partner.
    Partner(PartnerId),
}

impl Owner {
    /// The owner's id as text (`ten_…` or `par_…`; the prefixes never clash).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Tenant(t) => t.as_str(),
            Self::Partner(p) => p.as_str(),
        }
    }

    /// Reads back an owner id stored as text.
    pub fn from_trusted(s: String) -> Self {
        if s.starts_with("par_") {
            Self::Partner(PartnerId::from_trusted(s))
        } else {
            Self::Tenant(TenantId::from_trusted(s))
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which tenants a partner endpoint covers.
#[derive(Clone, Debug, PartialEq)]
pub enum Coverage {
    /// Every tenant of the partner, present and future.
    AllTenants,
    /// These tenants (each one the partner's).
    Tenants(Vec<TenantId>),
}

/// Whose endpoint it is: a tenant's, or a partner's covering some of its tenants.
#[derive(Clone, Debug, PartialEq)]
pub enum EndpointOwner {
    /// Receives the tenant's events.
    Tenant(TenantId),
    /// Receives the events of every covered tenant of the partner.
    Partner {
        /// The partner.
        partner: PartnerId,
        /// Which of its tenants.
        covers: Coverage,
    },
}

impl EndpointOwner {
    /// The owner, without coverage.
    pub fn owner(&self) -> Owner {
        match self {
            Self::Tenant(t) => Owner::Tenant(t.clone()),
            Self::Partner { partner, .. } => Owner::Partner(partner.clone()),
        }
    }

    /// The owning tenant of a tenant endpoint.
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Self::Tenant(t) => Some(t),
            Self::Partner { .. } => None,
        }
    }

    /// The owning partner of a partner endpoint.
    pub fn partner(&self) -> Option<&PartnerId> {
        match self {
            Self::Tenant(_) => None,
            Self::Partner { partner, .. } => Some(partner),
        }
    }
}

/// A subscription owned by a tenant or a partner.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    /// `ep_…`.
    pub id: EndpointId,
    /// Owner (and, for a partner, the tenants covered).
    pub owner: EndpointOwner,
    /// Configuration.
    pub spec: EndpointSpec,
    /// Signing secrets.
    pub secrets: EndpointSecrets,
    /// Why the server disabled it, if it did.
    pub disabled_reason: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// An event about to be stored.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// `evt_…`.
    pub id: EventId,
    /// Owner.
    pub tenant: TenantId,
    /// Its type (exists, not archived).
    pub event_type: EventTypeName,
    /// The payload, byte for byte as published (valid JSON).
    pub payload: Arc<str>,
    /// Unique per tenant when given.
    pub idempotency_key: Option<String>,
    /// Publish time.
    pub created_at: Timestamp,
}

/// A stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// `evt_…`.
    pub id: EventId,
    /// Owner.
    pub tenant: TenantId,
    /// Its type.
    pub event_type: EventTypeName,
    /// The payload, byte for byte as published.
    pub payload: Arc<str>,
    /// Idempotency key, if given.
    pub idempotency_key: Option<String>,
    /// Publish time.
    pub created_at: Timestamp,
    /// Commit order within the store; the polling feed's cursor.
    pub seq: i64,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The endpoint accepted it.
    Succeeded,
    /// The policy gave up; resendable.
    Failed,
    /// Stopped by a user or because the endpoint went away.
    Cancelled,
}

impl DeliveryStatus {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Ok(match s {
            "pending" => Self::Pending,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => {
                return Err(ParseError::new(format!(
                    "`{s}` is not a delivery status (pending, succeeded, failed, cancelled)"
                )))
            }
        })
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an attempt did not get a successful answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptError {
    /// No answer within the timeout.
    Timeout,
    /// Could not connect.
    Connect,
    /// Name resolution failed.
    Dns,
    /// TLS handshake or certificate failure.
    Tls,
    /// The destination is not allowed (private address, scheme).
    Blocked,
    /// An answer whose status does not count as success.
    Status,
}

impl AttemptError {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::Blocked => "blocked",
            Self::Status => "status",
        }
    }

    /// Parses the storage name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "timeout" => Self::Timeout,
            "connect" => Self::Connect,
            "dns" => Self::Dns,
            "tls" => Self::Tls,
            "blocked" => Self::Blocked,
            "status" => Self::Status,
            _ => return None,
        })
    }
}

/// One event to one endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// `dlv_…`.
    pub id: DeliveryId,
    /// The event.
    pub event: EventId,
    /// The endpoint.
    pub endpoint: EndpointId,
    /// The event's tenant.
    pub tenant: TenantId,
    /// The event's type.
    pub event_type: EventTypeName,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made in all.
    pub attempts: u32,
    /// Attempts in the current round (a resend starts a new round).
    pub round_attempts: u32,
    /// When the current round began.
    pub round_started_at: Timestamp,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<Timestamp>,
    /// Last status code received.
    pub last_status_code: Option<u16>,
    /// Last error class.
    pub last_error: Option<AttemptError>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// One HTTP try of a delivery.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attempt {
    /// `att_…`.
    pub id: AttemptId,
    /// The delivery.
    #[serde(skip)]
    pub delivery: DeliveryId,
    /// When the request started.
    pub at: Timestamp,
    /// How long until the answer (or the error).
    pub duration_ms: u64,
    /// Response status, if any answer came.
    pub status_code: Option<u16>,
    /// Error class, if it did not succeed.
    pub error: Option<AttemptError>,
    /// Human detail of the error.
    pub error_detail: Option<String>,
    /// Response headers (name, value).
    pub response_headers: Vec<(String, String)>,
    /// The start of the response body, capped.
    pub response_snippet: Option<String>,
}

/// What an API key may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyScope {
    /// Everything.
    Admin,
    /// One tenant's resources.
    Tenant(TenantId),
    /// A partner's tenants (create, list) and its partner endpoints.
    Partner(PartnerId),
}

/// A stored API key (the secret itself is never stored, only its hash).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    /// `key_…`.
    pub id: KeyId,
    /// What it may do.
    pub scope: KeyScope,
    /// Label.
    pub name: String,
    /// Hex SHA-256 of the key.
    pub hash: String,
    /// Creation time.
    pub created_at: Timestamp,
}
