//! The route table: one module per resource.

pub(crate) mod deliveries;
pub(crate) mod endpoints;
pub(crate) mod event_types;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod keys;
pub(crate) mod operations;
pub(crate) mod partners;
pub(crate) mod portal_link;
pub(crate) mod tenants;

use crate::error::ApiError;
use crate::ApiState;
use axum::routing::MethodRouter;
use axum::Router;

/// The routes under `/v1/tenants/{tenant}` that also exist, with the same
/// handlers, under `/v1/partners/{partner}`.
pub(crate) const OWNER_SCOPED: [&str; 2] = ["/endpoints", "/deliveries"];

/// The route table being built: the router, and each path with its methods
/// (what the OpenAPI test compares with the document).
struct Table {
    router: Router<ApiState>,
    routes: Vec<(String, &'static str)>,
}

/// `route!(table, path, get => handler, post => handler, …)`: one path, its
/// methods, recorded in the table as they are added to the router.
macro_rules! route {
    ($t:expr, $path:expr, $($m:ident => $h:path),+ $(,)?) => {{
        let mut mr: MethodRouter<ApiState> = MethodRouter::new();
        $( mr = mr.$m($h); )+
        $t.add($path, &[$(stringify!($m)),+], mr);
    }};
}

impl Table {
    fn new() -> Self {
        Self {
            router: Router::new(),
            routes: Vec::new(),
        }
    }

    fn add(&mut self, path: &str, methods: &[&'static str], mr: MethodRouter<ApiState>) {
        self.routes
            .extend(methods.iter().map(|m| (path.to_owned(), *m)));
        self.router = std::mem::take(&mut self.router).route(path, mr);
    }

    fn health(&mut self) {
        route!(self, "/healthz", get => health::healthz);
        route!(self, "/readyz", get => health::readyz);
    }

    fn api(&mut self) {
        self.health();
        route!(self, "/v1/event-types", get => event_types::list, post => event_types::create);
        route!(self, "/v1/event-types/{name}", get => event_types::show, patch => event_types::update, delete => event_types::archive);
        route!(self, "/v1/tenants", get => tenants::list, post => tenants::create);
        route!(self, "/v1/tenants/{tenant}", get => tenants::show, patch => tenants::update, delete => tenants::delete);
        route!(self, "/v1/partners", get => partners::list, post => partners::create);
        route!(self, "/v1/partners/{partner}", get => partners::show);
        route!(self, "/v1/api-keys", post => keys::create);
        route!(self, "/v1/api-keys/{key}", delete => keys::delete);
        route!(self, "/v1/tasks/{task}", get => operations::show_task);
        route!(self, "/v1/tenants/{tenant}/events", get => events::list, post => events::publish);
        route!(self, "/v1/tenants/{tenant}/events/{evt}", get => events::show);
        route!(self, "/v1/tenants/{tenant}/portal-link", post => portal_link::create);
        // Endpoints, their deliveries and operations: the same handlers for a
        // tenant's endpoints and a partner's (see OWNER_SCOPED).
        for owner in ["/v1/tenants/{tenant}", "/v1/partners/{partner}"] {
            let at = |p: &str| format!("{owner}{p}");
            route!(self, &at("/endpoints"), get => endpoints::list, post => endpoints::create);
            route!(self, &at("/endpoints/{ep}"), get => endpoints::show, put => endpoints::replace, patch => endpoints::update, delete => endpoints::delete);
            route!(self, &at("/endpoints/{ep}/secret"), get => endpoints::secret);
            route!(self, &at("/endpoints/{ep}/secret/rotate"), post => endpoints::rotate_secret);
            route!(self, &at("/endpoints/{ep}/deliveries"), get => deliveries::list);
            route!(self, &at("/endpoints/{ep}/status-by-type"), get => deliveries::status_by_type);
            route!(self, &at("/endpoints/{ep}/stats"), get => deliveries::stats);
            route!(self, &at("/endpoints/{ep}/test"), post => operations::test);
            route!(self, &at("/endpoints/{ep}/tests"), get => operations::tests);
            route!(self, &at("/endpoints/{ep}/resend-failed"), post => operations::resend_failed);
            route!(self, &at("/endpoints/{ep}/send-latest"), post => operations::send_latest);
            route!(self, &at("/endpoints/{ep}/replay"), post => operations::replay);
            route!(self, &at("/deliveries/{dlv}"), get => deliveries::show);
            route!(self, &at("/deliveries/{dlv}/resend"), post => deliveries::resend);
        }
    }

    fn finish(self) -> Router<ApiState> {
        self.router
            .fallback(|| async { ApiError::not_found("route") })
            .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
    }
}

/// Only the health probes (a worker node's HTTP surface).
pub fn health_router() -> Router<ApiState> {
    let mut t = Table::new();
    t.health();
    t.router
}

/// Every route of the API.
pub fn router() -> Router<ApiState> {
    let mut t = Table::new();
    t.api();
    t.finish()
}

/// Every API route as (path, lower-case method): what the OpenAPI document
/// must describe.
pub fn table() -> Vec<(String, &'static str)> {
    let mut t = Table::new();
    t.api();
    t.routes
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
