//! Liveness and readiness probes.

use crate::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    operation_id = "health_healthz",
    summary = "Liveness: the process answers",
    responses(
        (status = 200, description = "Alive", body = crate::schemas::Health)
    )
)]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The process can reach its database.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    operation_id = "health_readyz",
    summary = "Readiness: the database answers",
    responses(
        (status = 200, description = "Ready", body = crate::schemas::Health),
        (status = 503, description = "Not ready", body = crate::schemas::Health)
    )
)]
pub async fn readyz(State(s): State<ApiState>) -> (StatusCode, Json<Value>) {
    match s.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
        }
    }
}
