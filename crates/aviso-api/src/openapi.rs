//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations, served at `GET /openapi.json`, and the Swagger UI page at
//! `GET /docs` (its assets are embedded in the binary by `swagger-ui-dist`).
//!
//! Endpoint routes are annotated once, with their tenant path; the partner
//! copy of each (`/v1/partners/{partner}/…`, the same handler) is added here.

use crate::routes;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use std::borrow::Cow;
use std::sync::OnceLock;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, Required};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// A JSON object; its fields are described in docs/api.md.
pub struct Resource;

impl PartialSchema for Resource {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("A JSON object (see docs/api.md for its fields)"))
            .into()
    }
}

impl ToSchema for Resource {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Resource")
    }
}

/// The one error shape: `{"error": {"code", "message", "field"}}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong, and where.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// Machine-readable: `bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `method_not_allowed`, `conflict`, `expired`,
    /// `payload_too_large`, `unsupported_media_type`, `validation_failed`,
    /// `unavailable`, `internal`.
    #[schema(example = "validation_failed")]
    code: String,
    /// For people.
    #[schema(example = "timeout must be between 1s and 120s")]
    message: String,
    /// The request field (JSON path or parameter) it is about.
    #[schema(example = "policy.timeout")]
    field: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Aviso",
        description = "Self-hosted webhook delivery. Every `/v1` operation takes `Authorization: Bearer <key>` (admin, tenant or partner key). Errors share one shape (`ErrorBody`). See docs/api.md.",
    ),
    paths(
        routes::health::healthz,
        routes::health::readyz,
        routes::event_types::list,
        routes::event_types::create,
        routes::event_types::show,
        routes::event_types::update,
        routes::event_types::archive,
        routes::tenants::list,
        routes::tenants::create,
        routes::tenants::show,
        routes::tenants::update,
        routes::tenants::delete,
        routes::partners::list,
        routes::partners::create,
        routes::partners::show,
        routes::keys::create,
        routes::keys::delete,
        routes::operations::show_task,
        routes::events::publish,
        routes::events::list,
        routes::events::show,
        routes::endpoints::list,
        routes::endpoints::create,
        routes::endpoints::show,
        routes::endpoints::replace,
        routes::endpoints::update,
        routes::endpoints::delete,
        routes::endpoints::secret,
        routes::endpoints::rotate_secret,
        routes::deliveries::list,
        routes::deliveries::status_by_type,
        routes::deliveries::stats,
        routes::operations::test,
        routes::operations::tests,
        routes::operations::resend_failed,
        routes::operations::send_latest,
        routes::operations::replay,
        routes::deliveries::show,
        routes::deliveries::resend,
        routes::portal_link::create,
    ),
    components(schemas(ErrorBody, ErrorDetail, Resource)),
    modifiers(&BearerKeys, &PartnerCopies),
)]
struct Spec;

/// Bearer keys on every `/v1` operation.
struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An Aviso API key: admin, tenant (`avk_…`) or partner"))
                    .build(),
            ),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for op in operations(item) {
                op.security = Some(vec![SecurityRequirement::new(
                    "api_key",
                    Vec::<String>::new(),
                )]);
            }
        }
    }
}

/// Each tenant endpoint route again under `/v1/partners/{partner}`.
struct PartnerCopies;

const TENANT: &str = "/v1/tenants/{tenant}";
const PARTNER: &str = "/v1/partners/{partner}";

impl Modify for PartnerCopies {
    fn modify(&self, doc: &mut Document) {
        let copies: Vec<_> = doc
            .paths
            .paths
            .iter()
            .filter(|(p, _)| {
                routes::OWNER_SCOPED
                    .iter()
                    .any(|s| p.starts_with(&format!("{TENANT}{s}")))
            })
            .map(|(p, item)| {
                let mut item = item.clone();
                for op in operations(&mut item) {
                    if let Some(id) = &mut op.operation_id {
                        id.push_str("_partner");
                    }
                    op.tags = Some(vec!["partners".into()]);
                    if let Some(params) = &mut op.parameters {
                        for param in params.iter_mut() {
                            if param.name == "tenant" && param.parameter_in == ParameterIn::Path {
                                *param = partner_param();
                            }
                        }
                    }
                }
                (p.replacen(TENANT, PARTNER, 1), item)
            })
            .collect();
        doc.paths.paths.extend(copies);
    }
}

fn partner_param() -> Parameter {
    ParameterBuilder::new()
        .name("partner")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("Partner id (`par_…`)"))
        .schema(Some(String::schema()))
        .build()
}

fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = Spec::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").into();
        doc.to_json().expect("the OpenAPI document serialises")
    })
}

/// `GET /openapi.json` and the docs page at `/docs`.
pub fn router() -> Router {
    let ui = swagger_ui_dist::ApiDefinition {
        uri_prefix: "/docs",
        api_definition: swagger_ui_dist::OpenApiSource::Uri("/openapi.json"),
        title: Some("Aviso API"),
    };
    Router::new()
        .route(
            "/openapi.json",
            get(|| async { ([(CONTENT_TYPE, "application/json")], document()) }),
        )
        .merge(swagger_ui_dist::generate_routes(ui))
}
