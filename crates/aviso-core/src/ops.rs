//! Operations on an endpoint: recorded test sends and background bulk tasks.

use crate::model::{Attempt, Owner};
use crate::name::EventTypeName;
use crate::{EndpointId, EventId, ParseError, TaskId, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One test send to an endpoint (`POST …/endpoints/{ep}/test`), kept for audit.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointTest {
    /// The endpoint.
    pub endpoint: EndpointId,
    /// The `webhook-id` the test request carried (not a stored event).
    pub event: EventId,
    /// `aviso.test` or the chosen catalogue type.
    pub event_type: EventTypeName,
    /// The body sent.
    pub payload: Arc<str>,
    /// Whether the endpoint's success rule accepted the answer.
    pub succeeded: bool,
    /// The attempt (its id is the test's id).
    pub attempt: Attempt,
}

/// What a bulk task does; stored as JSON, shown as the task's `kind` and parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskSpec {
    /// Every failed delivery of the endpoint goes out again; with
    /// `latest_per_type`, only the failed delivery of the latest event of
    /// each type (per tenant, for a partner endpoint).
    ResendFailed {
        /// Only the latest failed event of each type.
        latest_per_type: bool,
    },
    /// The latest event of every subscribed type (per covered tenant) is sent again.
    SendLatest,
    /// Every event in `[since, until)` that matches the endpoint is sent,
    /// including events published before the endpoint existed.
    Replay {
        /// Window start (inclusive).
        since: Timestamp,
        /// Window end (exclusive; never later than the task's creation).
        until: Timestamp,
    },
}

impl TaskSpec {
    /// The kind's wire name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ResendFailed { .. } => "resend_failed",
            Self::SendLatest => "send_latest",
            Self::Replay { .. } => "replay",
        }
    }
}

/// Where a task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting for a node to pick it up.
    Queued,
    /// A node is working through it, batch by batch.
    Running,
    /// Every batch is done.
    Succeeded,
    /// Stopped; `error` says why.
    Failed,
}

impl TaskStatus {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Parses the storage name.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Ok(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => return Err(ParseError::new(format!("`{s}` is not a task status"))),
        })
    }

    /// Whether the task is over.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// A bulk operation on one endpoint, run in the background in batches.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// `tsk_…`.
    pub id: TaskId,
    /// The endpoint's owner: who may see the task.
    pub owner: Owner,
    /// The endpoint worked on.
    pub endpoint: EndpointId,
    /// What to do.
    pub spec: TaskSpec,
    /// Where it stands.
    pub status: TaskStatus,
    /// The `Idempotency-Key` it was created with.
    pub idempotency_key: Option<String>,
    /// Items to go through, once known (after the first batch).
    pub total: Option<u64>,
    /// Items gone through so far.
    pub processed: u64,
    /// Deliveries made pending so far (resent or created).
    pub queued: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
}

impl Task {
    /// A new queued task.
    pub fn new(
        owner: Owner,
        endpoint: EndpointId,
        spec: TaskSpec,
        idempotency_key: Option<String>,
        now: Timestamp,
    ) -> Self {
        Self {
            id: TaskId::new(),
            owner,
            endpoint,
            spec,
            status: TaskStatus::Queued,
            idempotency_key,
            total: None,
            processed: 0,
            queued: 0,
            error: None,
            created_at: now,
            updated_at: now,
            finished_at: None,
        }
    }
}
