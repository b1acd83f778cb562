//! The admin console: sign in with the admin key; tenants, partners, the
//! event-type catalogue, API keys, and a live view of delivery rates,
//! queue depth and failing endpoints.

use crate::i18n::Lang;
use crate::layout::{field_error, page, text_field, Flash};
use crate::{
    enc, new_session, no_store, see_other, set_cookie, with_cookie, ApiFailure, Form, Web,
};
use aviso_api::auth::{principal_of_key, Principal};
use aviso_api::signed::Purpose;
use aviso_core::Timestamp;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde_json::{json, Map, Value};
use std::time::Duration;

const SESSION: &str = "aviso_admin";

pub(crate) fn routes() -> Router<Web> {
    Router::new()
        .route("/admin/login", get(login_form).post(login))
        .route("/admin", get(live))
        .route("/admin/", get(live))
        .route("/admin/live.json", get(live_json))
        .route("/admin/tenants", get(tenants).post(create_tenant))
        .route("/admin/tenants/{t}/portal", post(open_portal))
        .route("/admin/partners", get(partners).post(create_partner))
        .route(
            "/admin/event-types",
            get(event_types).post(create_event_type),
        )
        .route("/admin/keys", get(keys).post(create_key))
        .route("/admin/keys/revoke", post(revoke_key))
        .route("/admin/logout", post(logout))
}

/// A signed-in admin.
pub(crate) struct Admin {
    lang: Lang,
    session: String,
    csrf: String,
}

impl FromRequestParts<Web> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Response> {
        let q = Form::parse(parts.uri.query().unwrap_or("").as_bytes());
        let lang = Lang::of(&parts.headers, Some(q.get("lang")));
        let session = crate::cookie(&parts.headers, SESSION)
            .unwrap_or("")
            .to_owned();
        match web
            .signer()
            .verify(Purpose::AdminSession, &session, Timestamp::now())
        {
            Ok(s) if s == "admin" => Ok(Self {
                lang,
                csrf: web.signer().csrf(&session),
                session,
            }),
            _ => Err(see_other("/admin/login")),
        }
    }
}

const WHO: Principal = Principal::Admin;

impl Admin {
    fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }

    fn page(&self, status: StatusCode, title: &str, flash: &Flash, content: Markup) -> Response {
        let nav = [
            (self.t("overview"), "/admin".to_owned()),
            (self.t("tenants"), "/admin/tenants".to_owned()),
            (self.t("partners"), "/admin/partners".to_owned()),
            (self.t("catalogue"), "/admin/event-types".to_owned()),
            (self.t("keys"), "/admin/keys".to_owned()),
        ];
        no_store(
            (
                status,
                page(
                    self.lang,
                    title,
                    &nav,
                    Some(("/admin/logout", &self.csrf)),
                    flash,
                    content,
                ),
            )
                .into_response(),
        )
    }

    /// The refusal of a form without this session's CSRF token.
    fn refused(&self, web: &Web, f: &Form) -> Option<Response> {
        (!web.signer().csrf_ok(&self.session, f.get("csrf"))).then(|| {
            self.page(
                StatusCode::FORBIDDEN,
                self.t("admin"),
                &Some((false, self.t("forbidden").into())),
                html! {},
            )
        })
    }

    fn hidden_csrf(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }
}

/// The form errors of an API failure: (form field, message).
fn errors_of(e: &ApiFailure, fields: &[&str]) -> Vec<(String, String)> {
    let f = e.field.as_deref().unwrap_or("");
    let head = f.split(['.', '[']).next().unwrap_or("");
    let at = if fields.contains(&head) {
        head
    } else {
        "general"
    };
    vec![(at.to_owned(), e.message.clone())]
}

async fn login_form(headers: axum::http::HeaderMap) -> Response {
    let lang = Lang::of(&headers, None);
    login_page(lang, StatusCode::OK, &[])
}

fn login_page(lang: Lang, status: StatusCode, errors: &[(String, String)]) -> Response {
    let content = html! {
        form.login method="post" action="/admin/login" {
            (text_field("key", lang.t("admin_key"), "", None, "password", errors, "key", true))
            button.primary type="submit" { (lang.t("sign_in")) }
        }
    };
    no_store(
        (
            status,
            page(lang, lang.t("admin"), &[], None, &None, content),
        )
            .into_response(),
    )
}

async fn login(State(web): State<Web>, headers: axum::http::HeaderMap, body: Bytes) -> Response {
    let lang = Lang::of(&headers, None);
    let f = Form::parse(&body);
    match principal_of_key(&web.state, f.get("key")).await {
        Ok(Principal::Admin) => {
            let session = new_session(&web, Purpose::AdminSession, "admin");
            no_store(with_cookie(
                see_other("/admin"),
                set_cookie(SESSION, &session, "/admin", web.cfg.session_ttl),
            ))
        }
        _ => login_page(
            lang,
            StatusCode::UNAUTHORIZED,
            &[("key".into(), lang.t("wrong_key").into())],
        ),
    }
}

async fn logout(State(web): State<Web>, a: Admin, body: Bytes) -> Response {
    if let Some(r) = a.refused(&web, &Form::parse(&body)) {
        return r;
    }
    with_cookie(
        see_other("/admin/login"),
        set_cookie(SESSION, "", "/admin", Duration::ZERO),
    )
}

/// The live view: figures filled in by the page's script from `/admin/live.json`.
async fn live(a: Admin) -> Response {
    let tile = |id: &str, key: &str| {
        html! { div.tile { span.label { (a.t(key)) } span.value id=(id) data-live=(id) { "…" } } }
    };
    let content = html! {
        div.tiles data-live-source="/admin/live.json" {
            (tile("publish_rate", "publish_rate"))
            (tile("delivery_rate", "delivery_rate"))
            (tile("failure_rate", "failure_rate"))
            (tile("in_flight", "in_flight"))
            (tile("queue_ready", "queue_ready"))
            (tile("queue_lanes", "queue_lanes"))
            (tile("queue_scheduled", "queue_scheduled"))
            (tile("circuits_open", "circuits_open"))
        }
        p.hint id="metrics-note" hidden { (a.t("metrics_off")) }
        h2 { (a.t("failing_endpoints")) }
        table.failing {
            thead { tr { th { (a.t("tenant")) } th { (a.t("endpoint")) } th { (a.t("failed_count")) } th { (a.t("status")) } } }
            tbody id="failing" {}
        }
        p.empty id="none-failing" hidden { (a.t("none_failing")) }
    };
    a.page(StatusCode::OK, a.t("overview"), &None, content)
}

/// The sum of every sample of `metric` whose labels contain `label` (all when "").
fn metric(text: &str, metric: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            let (base, labels) = match name.split_once('{') {
                Some((b, rest)) => (b, rest),
                None => (name, ""),
            };
            (base == metric && labels.contains(label)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// `GET /admin/live.json`: counters (the page turns them into rates), queue
/// depths, and the endpoints with failed deliveries in the last hour.
async fn live_json(State(web): State<Web>, _a: Admin) -> Response {
    let m = web.cfg.metrics.as_ref().map(|f| f());
    let figures = m.as_deref().map(|t| {
        json!({
            "events_published": metric(t, "aviso_events_published_total", ""),
            "deliveries_succeeded": metric(t, "aviso_deliveries_finished_total", "status=\"succeeded\""),
            "deliveries_failed": metric(t, "aviso_deliveries_finished_total", "status=\"failed\""),
            "attempts": metric(t, "aviso_attempts_total", ""),
            "in_flight": metric(t, "aviso_in_flight_requests", ""),
            "queue_ready": metric(t, "aviso_queue_depth", "queue=\"ready\""),
            "queue_lanes": metric(t, "aviso_queue_depth", "queue=\"lanes\""),
            "queue_scheduled": metric(t, "aviso_queue_depth", "queue=\"scheduled\""),
            "circuits_open": metric(t, "aviso_circuits_open", ""),
        })
    });
    let since = Timestamp::now()
        .minus(Duration::from_secs(3600))
        .to_rfc3339();
    let mut failing = Vec::new();
    let tenants = web.all(&WHO, "/v1/tenants", 500).await.unwrap_or_default();
    for t in &tenants {
        let tid = t["id"].as_str().unwrap_or_default();
        let eps = web
            .all(&WHO, &format!("/v1/tenants/{tid}/endpoints"), 500)
            .await
            .unwrap_or_default();
        for ep in &eps {
            let eid = ep["id"].as_str().unwrap_or_default();
            let failed = web
                .get(
                    &WHO,
                    &format!(
                        "/v1/tenants/{tid}/endpoints/{eid}/stats?since={}",
                        enc(&since)
                    ),
                )
                .await
                .ok()
                .and_then(|s| s["by_status"]["failed"].as_u64())
                .unwrap_or(0);
            let reason = ep["disabled_reason"].as_str();
            if failed > 0 || reason.is_some() {
                failing.push(json!({
                    "tenant": t["name"], "tenant_id": tid, "endpoint": eid,
                    "url": ep["url"], "failed": failed,
                    "enabled": ep["enabled"], "disabled_reason": reason,
                }));
            }
        }
    }
    let body = json!({"at": Timestamp::now().to_rfc3339(), "metrics": figures, "failing": failing});
    no_store(([(CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

async fn tenants(State(web): State<Web>, a: Admin) -> Response {
    tenants_page(&web, &a, StatusCode::OK, None, &[], &Form(Vec::new())).await
}

async fn tenants_page(
    web: &Web,
    a: &Admin,
    status: StatusCode,
    flash: Flash,
    errors: &[(String, String)],
    f: &Form,
) -> Response {
    let list = web.all(&WHO, "/v1/tenants", 1000).await.unwrap_or_default();
    let content = html! {
        form.inline-form method="post" action="/admin/tenants" {
            (a.hidden_csrf())
            (field_error(errors, "general"))
            (text_field("uid", a.t("uid"), f.get("uid"), Some("12345678000199"), "text", errors, "uid", true))
            (text_field("name", a.t("name"), f.get("name"), None, "text", errors, "name", true))
            button.primary type="submit" { (a.t("create")) }
        }
        table {
            thead { tr { th { "id" } th { (a.t("uid")) } th { (a.t("name")) } th { (a.t("partner")) } th {} } }
            tbody {
                @for t in &list {
                    @let id = t["id"].as_str().unwrap_or_default();
                    tr {
                        td { code { (id) } }
                        td { (t["uid"].as_str().unwrap_or_default()) }
                        td { (t["name"].as_str().unwrap_or_default()) }
                        td { (t["partner"].as_str().unwrap_or("—")) }
                        td {
                            form method="post" action=(format!("/admin/tenants/{id}/portal")) {
                                (a.hidden_csrf())
                                button type="submit" { (a.t("open_portal")) }
                            }
                        }
                    }
                }
            }
        }
    };
    a.page(status, a.t("tenants"), &flash, content)
}

async fn create_tenant(State(web): State<Web>, a: Admin, body: Bytes) -> Response {
    let f = Form::parse(&body);
    if let Some(r) = a.refused(&web, &f) {
        return r;
    }
    let b = json!({"uid": f.get("uid"), "name": f.get("name")});
    match web.call(&WHO, Method::POST, "/v1/tenants", Some(&b)).await {
        Ok(_) => see_other("/admin/tenants"),
        Err(e) => {
            let errors = errors_of(&e, &["uid", "name"]);
            tenants_page(&web, &a, status_of(&e), None, &errors, &f).await
        }
    }
}

fn status_of(e: &ApiFailure) -> StatusCode {
    StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_GATEWAY)
}

/// Opens the tenant portal as that tenant (support).
async fn open_portal(
    State(web): State<Web>,
    a: Admin,
    Path(t): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(r) = a.refused(&web, &Form::parse(&body)) {
        return r;
    }
    let b = json!({"lang": a.lang.code()});
    match web
        .call(
            &WHO,
            Method::POST,
            &format!("/v1/tenants/{}/portal-link", enc(&t)),
            Some(&b),
        )
        .await
    {
        Ok(link) => see_other(link["path"].as_str().unwrap_or("/portal")),
        Err(e) => a.page(
            status_of(&e),
            a.t("tenants"),
            &Some((false, e.message)),
            html! {},
        ),
    }
}

async fn partners(State(web): State<Web>, a: Admin) -> Response {
    partners_page(&web, &a, StatusCode::OK, &[], &Form(Vec::new())).await
}

async fn partners_page(
    web: &Web,
    a: &Admin,
    status: StatusCode,
    errors: &[(String, String)],
    f: &Form,
) -> Response {
    let list = web
        .all(&WHO, "/v1/partners", 1000)
        .await
        .unwrap_or_default();
    let content = html! {
        form.inline-form method="post" action="/admin/partners" {
            (a.hidden_csrf())
            (field_error(errors, "general"))
            (text_field("name", a.t("name"), f.get("name"), None, "text", errors, "name", true))
            button.primary type="submit" { (a.t("create")) }
        }
        table {
            thead { tr { th { "id" } th { (a.t("name")) } th { (a.t("created_at")) } } }
            tbody {
                @for p in &list {
                    tr {
                        td { code { (p["id"].as_str().unwrap_or_default()) } }
                        td { (p["name"].as_str().unwrap_or_default()) }
                        td { (crate::layout::when(p["created_at"].as_str().unwrap_or_default())) }
                    }
                }
            }
        }
    };
    a.page(status, a.t("partners"), &None, content)
}

async fn create_partner(State(web): State<Web>, a: Admin, body: Bytes) -> Response {
    let f = Form::parse(&body);
    if let Some(r) = a.refused(&web, &f) {
        return r;
    }
    match web
        .call(
            &WHO,
            Method::POST,
            "/v1/partners",
            Some(&json!({"name": f.get("name")})),
        )
        .await
    {
        Ok(_) => see_other("/admin/partners"),
        Err(e) => partners_page(&web, &a, status_of(&e), &errors_of(&e, &["name"]), &f).await,
    }
}

async fn event_types(State(web): State<Web>, a: Admin) -> Response {
    event_types_page(&web, &a, StatusCode::OK, &[], &Form(Vec::new())).await
}

async fn event_types_page(
    web: &Web,
    a: &Admin,
    status: StatusCode,
    errors: &[(String, String)],
    f: &Form,
) -> Response {
    let list = web
        .all(&WHO, "/v1/event-types", 5000)
        .await
        .unwrap_or_default();
    let content = html! {
        form.stacked method="post" action="/admin/event-types" {
            (a.hidden_csrf())
            (field_error(errors, "general"))
            (text_field("name", a.t("name"), f.get("name"), Some("CONTRATO.REGISTRADO"), "text", errors, "name", true))
            (text_field("description", a.t("description"), f.get("description"), None, "text", errors, "description", false))
            (text_field("group", a.t("group"), f.get("group"), Some("Resultados da operação/Boletins"), "text", errors, "group", false))
            div.field {
                label for="example" { (a.t("example")) }
                textarea id="example" name="example" rows="4" { (f.get("example")) }
                (field_error(errors, "example"))
            }
            button.primary type="submit" { (a.t("create")) }
        }
        table {
            thead { tr { th { (a.t("name")) } th { (a.t("description")) } th { (a.t("group")) } th { (a.t("example")) } } }
            tbody {
                @for t in &list {
                    tr.archived[t["archived"].as_bool() == Some(true)] {
                        td { code { (t["name"].as_str().unwrap_or_default()) } @if t["archived"].as_bool() == Some(true) { " " small { (a.t("archived")) } } }
                        td { (t["description"].as_str().unwrap_or_default()) }
                        td { (t["group"].as_str().unwrap_or("—")) }
                        td { @if !t["example"].is_null() { code.example { (t["example"].to_string()) } } }
                    }
                }
            }
        }
    };
    a.page(status, a.t("catalogue"), &None, content)
}

async fn create_event_type(State(web): State<Web>, a: Admin, body: Bytes) -> Response {
    let f = Form::parse(&body);
    if let Some(r) = a.refused(&web, &f) {
        return r;
    }
    let mut b = Map::new();
    b.insert("name".into(), json!(f.get("name")));
    for k in ["description", "group"] {
        if !f.get(k).is_empty() {
            b.insert(k.into(), json!(f.get(k)));
        }
    }
    if !f.get("example").is_empty() {
        match serde_json::from_str::<Value>(f.get("example")) {
            Ok(v) => {
                b.insert("example".into(), v);
            }
            Err(e) => {
                let errors = [("example".to_owned(), format!("example is not JSON: {e}"))];
                return event_types_page(&web, &a, StatusCode::UNPROCESSABLE_ENTITY, &errors, &f)
                    .await;
            }
        }
    }
    match web
        .call(
            &WHO,
            Method::POST,
            "/v1/event-types",
            Some(&Value::Object(b)),
        )
        .await
    {
        Ok(_) => see_other("/admin/event-types"),
        Err(e) => {
            let errors = errors_of(&e, &["name", "description", "group", "example"]);
            event_types_page(&web, &a, status_of(&e), &errors, &f).await
        }
    }
}

async fn keys(State(web): State<Web>, a: Admin) -> Response {
    keys_page(&web, &a, StatusCode::OK, None, &[], &Form(Vec::new())).await
}

async fn keys_page(
    web: &Web,
    a: &Admin,
    status: StatusCode,
    flash: Flash,
    errors: &[(String, String)],
    f: &Form,
) -> Response {
    let tenants = web.all(&WHO, "/v1/tenants", 1000).await.unwrap_or_default();
    let partners = web
        .all(&WHO, "/v1/partners", 1000)
        .await
        .unwrap_or_default();
    let content = html! {
        form.stacked method="post" action="/admin/keys" {
            (a.hidden_csrf())
            (field_error(errors, "general"))
            div.field {
                label for="owner" { (a.t("tenant")) " / " (a.t("partner")) }
                select id="owner" name="owner" {
                    @for t in &tenants {
                        @let id = t["id"].as_str().unwrap_or_default();
                        option value=(format!("tenant:{id}")) { (a.t("tenant")) ": " (t["name"].as_str().unwrap_or_default()) " (" (id) ")" }
                    }
                    @for p in &partners {
                        @let id = p["id"].as_str().unwrap_or_default();
                        option value=(format!("partner:{id}")) { (a.t("partner")) ": " (p["name"].as_str().unwrap_or_default()) " (" (id) ")" }
                    }
                }
                (field_error(errors, "tenant"))
                (field_error(errors, "partner"))
            }
            (text_field("name", a.t("name"), f.get("name"), Some("erp"), "text", errors, "name", false))
            button.primary type="submit" { (a.t("create")) }
        }
        h2 { (a.t("revoke")) }
        form.inline-form method="post" action="/admin/keys/revoke" {
            (a.hidden_csrf())
            (text_field("id", a.t("key_id"), "", Some("key_…"), "text", errors, "key", true))
            button type="submit" { (a.t("revoke")) }
        }
    };
    a.page(status, a.t("keys"), &flash, content)
}

async fn create_key(State(web): State<Web>, a: Admin, body: Bytes) -> Response {
    let f = Form::parse(&body);
    if let Some(r) = a.refused(&web, &f) {
        return r;
    }
    let mut b = Map::new();
    if let Some((kind @ ("tenant" | "partner"), id)) = f.get("owner").split_once(':') {
        b.insert(kind.into(), json!(id));
    }
    b.insert("name".into(), json!(f.get("name")));
    match web
        .call(&WHO, Method::POST, "/v1/api-keys", Some(&Value::Object(b)))
        .await
    {
        Ok(k) => {
            let text = format!(
                "{} {} = {}",
                a.t("key_created"),
                k["id"].as_str().unwrap_or_default(),
                k["key"].as_str().unwrap_or_default()
            );
            keys_page(
                &web,
                &a,
                StatusCode::CREATED,
                Some((true, text)),
                &[],
                &Form(Vec::new()),
            )
            .await
        }
        Err(e) => {
            let errors = errors_of(&e, &["tenant", "partner", "name"]);
            keys_page(&web, &a, status_of(&e), None, &errors, &f).await
        }
    }
}

async fn revoke_key(State(web): State<Web>, a: Admin, body: Bytes) -> Response {
    let f = Form::parse(&body);
    if let Some(r) = a.refused(&web, &f) {
        return r;
    }
    match web
        .call(
            &WHO,
            Method::DELETE,
            &format!("/v1/api-keys/{}", enc(f.get("id"))),
            None,
        )
        .await
    {
        Ok(_) => {
            keys_page(
                &web,
                &a,
                StatusCode::OK,
                Some((true, a.t("revoked").into())),
                &[],
                &Form(Vec::new()),
            )
            .await
        }
        Err(e) => {
            let errors = vec![("key".to_owned(), e.message.clone())];
            keys_page(&web, &a, status_of(&e), None, &errors, &Form(Vec::new())).await
        }
    }
}
