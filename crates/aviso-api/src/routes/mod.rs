//! The route table: one module per resource.

mod deliveries;
mod endpoints;
mod event_types;
mod events;
mod health;
mod keys;
mod operations;
mod partners;
mod tenants;

use crate::error::ApiError;
use crate::ApiState;
use axum::routing::{get, post};
use axum::Router;

/// Only the health probes (a worker node's HTTP surface).
pub fn health_router() -> Router<ApiState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
}

/// Every route of the API.
pub fn router() -> Router<ApiState> {
    let t = "/v1/tenants/{tenant}";
    let p = "/v1/partners/{partner}";
    let mut r = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route(
            "/v1/event-types",
            get(event_types::list).post(event_types::create),
        )
        .route(
            "/v1/event-types/{name}",
            get(event_types::show)
                .patch(event_types::update)
                .delete(event_types::archive),
        )
        .route("/v1/tenants", get(tenants::list).post(tenants::create))
        .route(
            t,
            get(tenants::show)
                .patch(tenants::update)
                .delete(tenants::delete),
        )
        .route("/v1/partners", get(partners::list).post(partners::create))
        .route(p, get(partners::show))
        .route("/v1/api-keys", post(keys::create))
        .route("/v1/api-keys/{key}", axum::routing::delete(keys::delete))
        .route("/v1/tasks/{task}", get(operations::show_task))
        .route(
            &format!("{t}/events"),
            get(events::list).post(events::publish),
        )
        .route(&format!("{t}/events/{{evt}}"), get(events::show));
    // Endpoints, their deliveries and operations: the same handlers for a
    // tenant's endpoints and a partner's.
    for owner in [t, p] {
        r = r
            .route(
                &format!("{owner}/endpoints"),
                get(endpoints::list).post(endpoints::create),
            )
            .route(
                &format!("{owner}/endpoints/{{ep}}"),
                get(endpoints::show)
                    .put(endpoints::replace)
                    .patch(endpoints::update)
                    .delete(endpoints::delete),
            )
            .route(
                &format!("{owner}/endpoints/{{ep}}/secret"),
                get(endpoints::secret),
            )
            .route(
                &format!("{owner}/endpoints/{{ep}}/secret/rotate"),
                post(endpoints::rotate_secret),
            )
            .route(
                &format!("{owner}/endpoints/{{ep}}/deliveries"),
                get(deliveries::list),
            )
            .route(
                &format!("{owner}/endpoints/{{ep}}/status-by-type"),
                get(deliveries::status_by_type),
            )
            .route(
                &format!("{owner}/endpoints/{{ep}}/stats"),
                get(deliveries::stats),
            )
            .route(
                &format!("{owner}/endpoints/{{ep}}/test"),
                post(operations::test),
            )
            .route(
                &format!("{owner}/endpoints/{{ep}}/tests"),
                get(operations::tests),
            )
            .route(
                &format!("{owner}/endpoints/{{ep}}/resend-failed"),
                post(operations::resend_failed),
            )
            .route(
                &format!("{owner}/endpoints/{{ep}}/send-latest"),
                post(operations::send_latest),
            )
            .route(
                &format!("{owner}/endpoints/{{ep}}/replay"),
                post(operations::replay),
            )
            .route(
                &format!("{owner}/deliveries/{{dlv}}"),
                get(deliveries::show),
            )
            .route(
                &format!("{owner}/deliveries/{{dlv}}/resend"),
                post(deliveries::resend),
            );
    }
    r.fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
}

/// Checks a free-text field: length bounds and no control characters.
pub(crate) fn check_text(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(
            ApiError::invalid(format!("{field} must have {min} to {max} characters")).at(field),
        );
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(
            ApiError::invalid(format!("{field} must not contain control characters")).at(field),
        );
    }
    Ok(())
}
