//! Aviso's HTTP API: `/v1` resources, health probes, one error shape.
//!
//! Handlers are thin: extract, call the store or dispatcher, shape the answer.

pub mod auth;
pub mod catalog;
pub mod error;
pub mod extract;
pub mod feed;
pub mod openapi;
mod routes;
mod schemas;
pub mod signed;

pub use routes::table as route_table;
pub mod scope;
mod views;

use aviso_core::policy::DeliveryPolicy;
use aviso_core::Dur;
use aviso_dispatch::{DispatchHandle, Sender};
use aviso_store::Store;
use axum::Router;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Settings the API needs.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Accept `http://` endpoint URLs.
    pub allow_http: bool,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Fills the policy fields an endpoint leaves out.
    pub default_policy: DeliveryPolicy,
    /// How long a rotated-out secret keeps signing.
    pub secret_rotation_grace: Dur,
    /// Hash of the admin key given in config, if any.
    pub admin_key_hash: Option<String>,
    /// How long finished work is kept: older records answer 410 `expired`.
    pub retention: Dur,
    /// Signs portal links and the web pages' sessions.
    pub signer: signed::Signer,
    /// The address browsers reach Aviso at (`portal.public_url`), for
    /// absolute portal links; `None`: from the request's `Host`.
    pub public_url: Option<String>,
}

/// Shared state of every handler: one reference-counted pointer.
///
/// axum clones the state for every request (and an extractor may clone it
/// again); with each part its own `Arc`, one request counted a dozen shared
/// reference counts up and down, cache lines the cores passed back and forth
/// (1.5 % of the server's CPU in the one-endpoint benchmark).
#[derive(Clone)]
pub struct ApiState(Arc<ApiParts>);

/// The parts of [`ApiState`], reached through it.
#[derive(Clone)]
pub struct ApiParts {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// The dispatcher's fast path; `None` on an API-only node (`--role api`),
    /// whose published work other nodes pick up.
    pub dispatch: Option<DispatchHandle>,
    /// Settings.
    pub cfg: Arc<ApiConfig>,
    /// Verified API keys.
    pub keys: Arc<auth::KeyCache>,
    /// Cached tenants and event types.
    pub catalog: Arc<catalog::Catalog>,
    /// Sends test requests (`POST …/endpoints/{ep}/test`) with the
    /// dispatcher's guard, auth, signing and success rules.
    pub sender: Option<Sender>,
    /// Wakes long-polling feed readers.
    pub feed: Arc<feed::FeedWaker>,
    /// Wakes this node's task runner when a task is created.
    pub tasks: Arc<Notify>,
    /// Fires when the server stops: long polls answer at once.
    pub stopping: CancellationToken,
}

impl ApiState {
    /// Bundles the parts.
    pub fn new(store: Arc<dyn Store>, dispatch: DispatchHandle, cfg: ApiConfig) -> Self {
        let mut state = Self::without_dispatcher(store, cfg);
        state.parts().dispatch = Some(dispatch);
        state
    }

    /// Bundles the parts for a node that runs no dispatcher.
    pub fn without_dispatcher(store: Arc<dyn Store>, cfg: ApiConfig) -> Self {
        Self(Arc::new(ApiParts {
            store,
            dispatch: None,
            cfg: Arc::new(cfg),
            keys: Arc::default(),
            catalog: Arc::default(),
            sender: None,
            feed: Arc::default(),
            tasks: Arc::default(),
            stopping: CancellationToken::new(),
        }))
    }

    /// Adds the sender for test requests.
    pub fn with_sender(mut self, sender: Sender) -> Self {
        self.parts().sender = Some(sender);
        self
    }

    /// Ties long polls to the server's shutdown.
    pub fn with_stopping(mut self, stopping: CancellationToken) -> Self {
        self.parts().stopping = stopping;
        self
    }

    /// The parts, to set while building (copied first if already shared).
    fn parts(&mut self) -> &mut ApiParts {
        Arc::make_mut(&mut self.0)
    }
}

impl std::ops::Deref for ApiState {
    type Target = ApiParts;

    fn deref(&self) -> &ApiParts {
        &self.0
    }
}

/// The whole HTTP surface.
pub fn router(state: ApiState) -> Router {
    layered(routes::router(), state).merge(openapi::router())
}

/// Only `/healthz` and `/readyz`: the HTTP surface of a worker node.
pub fn health_router(state: ApiState) -> Router {
    layered(routes::health_router(), state)
}

fn layered(routes: Router<ApiState>, state: ApiState) -> Router {
    routes
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(error::ApiError::internal(
                "handler panicked",
            ))
        }))
        .with_state(state)
}
