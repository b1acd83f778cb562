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
use std::sync::OnceLock;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, Required};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

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
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerKeys, &PartnerCopies, &PageExamples),
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

/// Each list page's example: one item (its schema's example) and no next page.
struct PageExamples;

impl Modify for PageExamples {
    fn modify(&self, doc: &mut Document) {
        let Some(components) = doc.components.as_mut() else {
            return;
        };
        let item_examples: std::collections::BTreeMap<String, serde_json::Value> = components
            .schemas
            .iter()
            .filter_map(|(name, s)| match s {
                RefOr::T(Schema::Object(o)) => o.example.clone().map(|e| (name.clone(), e)),
                _ => None,
            })
            .collect();
        for (name, schema) in components.schemas.iter_mut() {
            if !name.ends_with("Page") {
                continue;
            }
            let RefOr::T(Schema::Object(page)) = schema else {
                continue;
            };
            let item = page.properties.get("data").and_then(|d| match d {
                RefOr::T(Schema::Array(a)) => match &a.items {
                    utoipa::openapi::schema::ArrayItems::RefOrSchema(r) => match r.as_ref() {
                        RefOr::Ref(r) => r.ref_location.rsplit('/').next().map(str::to_owned),
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            });
            if let Some(example) = item.and_then(|i| item_examples.get(&i)) {
                page.example = Some(serde_json::json!({"data": [example], "next_cursor": null}));
            }
        }
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn resolve<'a>(doc: &'a Value, r: &str) -> &'a Value {
        let name = r.strip_prefix("#/components/schemas/").expect("local ref");
        let s = &doc["components"]["schemas"][name];
        assert!(s.is_object(), "{r} does not resolve");
        s
    }

    /// Every `$ref` in the document resolves.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    /// The schema of a body: a named, typed component with an example.
    fn check_body(doc: &Value, what: &str, content: &Value) {
        let schema = &content["application/json"]["schema"];
        let r = schema["$ref"]
            .as_str()
            .or_else(|| {
                // `Option<T>` bodies are `oneOf: [null, $ref]`.
                schema["oneOf"]
                    .as_array()
                    .and_then(|a| a.iter().find_map(|s| s["$ref"].as_str()))
            })
            .unwrap_or_else(|| panic!("{what}: body is not a named schema: {schema}"));
        let s = resolve(doc, r);
        let typed = s["properties"].is_object()
            || s["oneOf"].is_array()
            || s["enum"].is_array()
            || s["additionalProperties"] == Value::Bool(false);
        assert!(typed, "{what}: {r} is an untyped object");
        assert!(s.get("example").is_some(), "{what}: {r} has no example");
    }

    #[test]
    fn every_operation_has_typed_bodies_with_examples_and_every_ref_resolves() {
        let doc: Value = serde_json::from_str(super::document()).unwrap();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.len() > 50);
        for r in all {
            resolve(&doc, r);
        }
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let what = format!("{method} {path}");
                if let Some(body) = op.get("requestBody") {
                    check_body(&doc, &what, &body["content"]);
                }
                for (status, res) in op["responses"].as_object().unwrap() {
                    match (status.starts_with('2'), res.get("content")) {
                        (true, Some(c)) => check_body(&doc, &what, c),
                        (false, Some(c)) => {
                            let r = c["application/json"]["schema"]["$ref"].as_str();
                            assert!(r.is_some(), "{what} {status}: untyped error body");
                        }
                        (true, None) => assert_eq!(status, "204", "{what}: {status} has no body"),
                        (false, None) => {}
                    }
                }
                checked += 1;
            }
        }
        assert!(checked >= 58, "{checked} operations");
    }
}
