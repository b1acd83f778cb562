//! The tenant portal: a tenant's customer manages its webhook integrations
//! (the grid-data portal's page, CONTRACTS.md §2): list, new/edit form with a
//! product tree, details with the last delivery per product, Send / Send all /
//! Resend pending, delivery log and attempts, signing secret, on/off switch.

use crate::i18n::Lang;
use crate::layout::{field_error, page, status_badge, text_field, when, Flash};
use crate::{
    enc, new_session, no_store, see_other, set_cookie, with_cookie, ApiFailure, Form, Web,
};
use aviso_api::auth::Principal;
use aviso_api::signed::{Purpose, Refused};
use aviso_core::{TenantId, Timestamp};
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const SESSION: &str = "aviso_portal";

pub(crate) fn routes() -> Router<Web> {
    Router::new()
        .route("/portal/enter", get(enter))
        .route("/portal", get(list))
        .route("/portal/", get(list))
        .route("/portal/new", get(new_form).post(create))
        .route("/portal/i/{ep}", get(details))
        .route("/portal/i/{ep}/edit", get(edit_form).post(update))
        .route("/portal/i/{ep}/send", post(send))
        .route("/portal/i/{ep}/send-all", post(send_all))
        .route("/portal/i/{ep}/resend-pending", post(resend_pending))
        .route("/portal/i/{ep}/toggle", post(toggle))
        .route("/portal/i/{ep}/secret", get(secret))
        .route("/portal/i/{ep}/rotate", post(rotate))
        .route("/portal/i/{ep}/log", get(log))
        .route("/portal/d/{dlv}", get(delivery))
        .route("/portal/d/{dlv}/resend", post(resend_delivery))
        .route("/portal/logout", post(logout))
}

/// Query parameters as pairs.
fn query(q: &Option<String>) -> Form {
    Form::parse(q.as_deref().unwrap_or("").as_bytes())
}

/// `GET /portal/enter?token=…`: a link from `POST /v1/tenants/{t}/portal-link`
/// becomes a session cookie for that tenant.
async fn enter(State(web): State<Web>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let q = query(&q);
    let lang = Lang::of(&headers, Some(q.get("lang")));
    let tenant = match web
        .signer()
        .verify(Purpose::PortalLink, q.get("token"), Timestamp::now())
    {
        Ok(t) => t,
        Err(Refused::Invalid | Refused::Expired) => return bad_link(lang),
    };
    let Ok(id) = TenantId::parse(&tenant) else {
        return bad_link(lang);
    };
    // The tenant may have been deleted since the link was made.
    if web
        .get(&Principal::Tenant(id.clone()), &format!("/v1/tenants/{id}"))
        .await
        .is_err()
    {
        return bad_link(lang);
    }
    let session = new_session(&web, Purpose::PortalSession, id.as_str());
    let mut r = see_other("/portal");
    r = with_cookie(
        r,
        set_cookie(SESSION, &session, "/portal", web.cfg.session_ttl),
    );
    no_store(r)
}

fn bad_link(lang: Lang) -> Response {
    no_store(
        (
            StatusCode::FORBIDDEN,
            crate::layout::message(lang, lang.t("integrations"), lang.t("bad_link")),
        )
            .into_response(),
    )
}

/// A signed-in portal visitor: its tenant, language and CSRF token.
pub(crate) struct Visitor {
    who: Principal,
    tenant: TenantId,
    lang: Lang,
    session: String,
    csrf: String,
}

impl FromRequestParts<Web> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Response> {
        let q = query(&parts.uri.query().map(str::to_owned));
        let lang = Lang::of(&parts.headers, Some(q.get("lang")));
        let session = crate::cookie(&parts.headers, SESSION)
            .unwrap_or("")
            .to_owned();
        let tenant = web
            .signer()
            .verify(Purpose::PortalSession, &session, Timestamp::now())
            .ok()
            .and_then(|t| TenantId::parse(&t).ok());
        let Some(tenant) = tenant else {
            return Err(no_store(
                (
                    StatusCode::UNAUTHORIZED,
                    crate::layout::message(lang, lang.t("integrations"), lang.t("signed_out")),
                )
                    .into_response(),
            ));
        };
        Ok(Self {
            who: Principal::Tenant(tenant.clone()),
            csrf: web.signer().csrf(&session),
            tenant,
            lang,
            session,
        })
    }
}

impl Visitor {
    fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }

    /// `/v1/tenants/{t}` + `rest`.
    fn api(&self, rest: &str) -> String {
        format!("/v1/tenants/{}{rest}", self.tenant)
    }

    fn ep(&self, ep: &str, rest: &str) -> String {
        self.api(&format!("/endpoints/{}{rest}", enc(ep)))
    }

    /// The refusal of a form without this session's CSRF token.
    fn refused(&self, web: &Web, form: &Form) -> Option<Response> {
        (!web.signer().csrf_ok(&self.session, form.get("csrf")))
            .then(|| self.message(StatusCode::FORBIDDEN, "forbidden"))
    }

    fn message(&self, status: StatusCode, key: &str) -> Response {
        no_store(
            (
                status,
                crate::layout::message(self.lang, self.t("integrations"), self.t(key)),
            )
                .into_response(),
        )
    }

    /// A page of the portal.
    fn page(&self, status: StatusCode, title: &str, flash: &Flash, content: Markup) -> Response {
        let nav = [(self.t("integrations"), "/portal".to_owned())];
        no_store(
            (
                status,
                page(
                    self.lang,
                    title,
                    &nav,
                    Some(("/portal/logout", &self.csrf)),
                    flash,
                    content,
                ),
            )
                .into_response(),
        )
    }

    /// The API's error as a page (404 → not found; others show the message).
    fn failure(&self, e: &ApiFailure) -> Response {
        if e.status == 404 {
            return self.message(StatusCode::NOT_FOUND, "not_found");
        }
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_GATEWAY);
        self.page(
            status,
            self.t("error"),
            &Some((false, e.message.clone())),
            html! { p { a href="/portal" { (self.t("back")) } } },
        )
    }

    fn hidden_csrf(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }
}

/// `GET /portal`: the integrations list.
async fn list(State(web): State<Web>, v: Visitor) -> Response {
    let eps = match web.all(&v.who, &v.api("/endpoints"), 1000).await {
        Ok(e) => e,
        Err(e) => return v.failure(&e),
    };
    let since = Timestamp::now()
        .minus(Duration::from_secs(86400))
        .to_rfc3339();
    let mut rows = Vec::new();
    for ep in &eps {
        let id = ep["id"].as_str().unwrap_or_default();
        let failed = web
            .get(&v.who, &v.ep(id, &format!("/stats?since={}", enc(&since))))
            .await
            .ok()
            .and_then(|s| s["by_status"]["failed"].as_u64())
            .unwrap_or(0);
        rows.push((ep, failed));
    }
    let content = html! {
        p { a.button.primary href="/portal/new" { (v.t("new")) } }
        @if rows.is_empty() {
            p.empty { (v.t("no_integrations")) }
        } @else {
            ul.cards {
                @for (ep, failed) in &rows {
                    @let id = ep["id"].as_str().unwrap_or_default();
                    li.card data-endpoint=(id) {
                        div.card-head {
                            a.title href=(format!("/portal/i/{id}")) {
                                @let d = ep["description"].as_str().unwrap_or_default();
                                (if d.is_empty() { ep["url"].as_str().unwrap_or_default() } else { d })
                            }
                            (enabled_badge(&v, ep))
                            @if *failed > 0 {
                                span.badge.failing title=(format!("{failed} {}", v.t("failing_hint"))) { (v.t("failing")) " (" (failed) ")" }
                            }
                        }
                        p.url { code { (ep["url"].as_str().unwrap_or_default()) } }
                        (buttons(&v, id, ep))
                    }
                }
            }
        }
    };
    v.page(StatusCode::OK, v.t("integrations"), &None, content)
}

fn enabled_badge(v: &Visitor, ep: &Value) -> Markup {
    if ep["enabled"].as_bool() == Some(true) {
        html! { span.badge.on { (v.t("active")) } }
    } else {
        html! { span.badge.off { (v.t("inactive")) } }
    }
}

/// The buttons of one integration.
fn buttons(v: &Visitor, id: &str, ep: &Value) -> Markup {
    let action = |a: &str| format!("/portal/i/{id}/{a}");
    html! {
        div.actions {
            form method="post" action=(action("send")) { (v.hidden_csrf()) button type="submit" { (v.t("send")) } }
            form method="post" action=(action("send-all")) { (v.hidden_csrf()) button type="submit" { (v.t("send_all")) } }
            form method="post" action=(action("resend-pending")) { (v.hidden_csrf()) button type="submit" { (v.t("resend_pending")) } }
            a.button href=(action("edit")) { (v.t("edit")) }
            a.button href=(format!("/portal/i/{id}")) { (v.t("details")) }
            form method="post" action=(action("toggle")) {
                (v.hidden_csrf())
                @if ep["enabled"].as_bool() == Some(true) {
                    input type="hidden" name="enabled" value="false";
                    button type="submit" role="switch" aria-checked="true" { (v.t("deactivate")) }
                } @else {
                    input type="hidden" name="enabled" value="true";
                    button type="submit" role="switch" aria-checked="false" { (v.t("activate")) }
                }
            }
        }
    }
}

/// `GET /portal/i/{ep}`: configuration, buttons and the last delivery of
/// each selected product.
async fn details(
    State(web): State<Web>,
    v: Visitor,
    Path(ep): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let flash = flash_of(&v, &query(&q));
    details_page(&web, &v, &ep, StatusCode::OK, flash).await
}

async fn details_page(
    web: &Web,
    v: &Visitor,
    ep: &str,
    status: StatusCode,
    flash: Flash,
) -> Response {
    let view = match web.get(&v.who, &v.ep(ep, "")).await {
        Ok(e) => e,
        Err(e) => return v.failure(&e),
    };
    let grid = web
        .get(&v.who, &v.ep(ep, "/status-by-type"))
        .await
        .map(|g| g["data"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default();
    let auth = auth_kind(&view["auth"]);
    let title = match view["description"].as_str() {
        Some(d) if !d.is_empty() => d.to_owned(),
        _ => view["url"].as_str().unwrap_or_default().to_owned(),
    };
    let content = html! {
        dl.summary {
            dt { (v.t("url")) } dd { code { (view["url"].as_str().unwrap_or_default()) } }
            dt { (v.t("status")) } dd {
                (enabled_badge(v, &view))
                @if let Some(r) = view["disabled_reason"].as_str() { " " small { (r) } }
            }
            dt { (v.t("auth")) } dd { (v.t(match auth { "basic" => "auth_basic", "key" => "auth_key", _ => "auth_none" })) }
        }
        (buttons(v, ep, &view))
        p.links {
            a href=(format!("/portal/i/{ep}/log")) { (v.t("log")) }
            " · "
            a href=(format!("/portal/i/{ep}/secret")) { (v.t("reveal")) }
        }
        h2 { (v.t("details")) }
        table.grid {
            thead { tr { th { (v.t("product")) } th { (v.t("last_event")) } th { (v.t("last_delivery")) } } }
            tbody {
                @for row in &grid {
                    tr data-type=(row["event_type"].as_str().unwrap_or_default()) {
                        td { (row["event_type"].as_str().unwrap_or_default()) }
                        td {
                            @match row["event"]["created_at"].as_str() {
                                Some(t) => (when(t)),
                                None => em { (v.t("never")) },
                            }
                        }
                        td {
                            @if let Some(d) = row["delivery"].as_object() {
                                a href=(format!("/portal/d/{}", d.get("id").and_then(Value::as_str).unwrap_or_default())) {
                                    (status_badge(v.lang, d.get("status").and_then(Value::as_str).unwrap_or_default()))
                                }
                                @if let Some(c) = d.get("last_status_code").and_then(Value::as_u64) { " HTTP " (c) }
                            } @else if row["event"].is_object() {
                                em { (v.t("not_delivered")) }
                            } @else {
                                "—"
                            }
                        }
                    }
                }
            }
        }
    };
    v.page(status, &title, &flash, content)
}

/// The message a redirect after an action asks for (`?done=…`).
fn flash_of(v: &Visitor, q: &Form) -> Flash {
    let n = q.get("n");
    let n = if n.chars().all(|c| c.is_ascii_digit()) {
        n
    } else {
        ""
    };
    match q.get("done") {
        "created" => Some((true, v.t("created").into())),
        "saved" => Some((true, v.t("saved").into())),
        "test_ok" => Some((true, format!("{} HTTP {n}.", v.t("test_ok")))),
        "test_failed" => {
            let what = match q.get("e") {
                "timeout" | "connect" | "dns" | "tls" | "blocked" => q.get("e").to_owned(),
                _ if !n.is_empty() => format!("HTTP {n}"),
                _ => String::new(),
            };
            Some((false, format!("{}: {what}", v.t("test_failed"))))
        }
        "queued" => Some((true, v.t("queued").into())),
        "on" => Some((true, v.t("switched_on").into())),
        "off" => Some((true, v.t("switched_off").into())),
        _ => None,
    }
}

/// What the form offers for the stored auth: `none`, `basic` or `key`.
fn auth_kind(auth: &Value) -> &'static str {
    if auth.get("basic").is_some() {
        "basic"
    } else if auth.get("header").is_some() || auth.get("bearer").is_some() {
        "key"
    } else {
        "none"
    }
}

/// The form's values (what was stored, or what was just submitted).
#[derive(Default)]
struct Fields {
    description: String,
    url: String,
    auth: String,
    username: String,
    types: Vec<String>,
    success: String,
    retry: String,
    schedule: String,
    every: String,
    for_: String,
    initial: String,
    factor: String,
    max_interval: String,
    max_attempts: String,
    max_age: String,
    timeout: String,
    max_in_flight: String,
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Fields {
    fn of_view(view: &Value) -> Self {
        let p = &view["policy"];
        let r = &p["retry"];
        let (retry, schedule) = if let Some(list) = r["schedule"].as_array() {
            (
                "schedule",
                list.iter().map(s).collect::<Vec<_>>().join(", "),
            )
        } else if r.get("fixed").is_some() {
            ("fixed", String::new())
        } else if r.get("exponential").is_some() {
            ("exponential", String::new())
        } else {
            ("default", String::new())
        };
        let e = &r["exponential"];
        Self {
            description: s(&view["description"]),
            url: s(&view["url"]),
            auth: auth_kind(&view["auth"]).into(),
            username: s(&view["auth"]["basic"]["username"]),
            types: view["event_types"]
                .as_array()
                .map(|a| a.iter().map(s).collect())
                .unwrap_or_default(),
            success: s(&p["success"]),
            retry: retry.into(),
            schedule,
            every: s(&r["fixed"]["every"]),
            for_: s(&r["fixed"]["for"]),
            initial: s(&e["initial"]),
            factor: s(&e["factor"]),
            max_interval: s(&e["max_interval"]),
            max_attempts: s(&e["max_attempts"]),
            max_age: s(&e["max_age"]),
            timeout: s(&p["timeout"]),
            max_in_flight: s(&p["max_in_flight"]),
        }
    }

    fn of_form(f: &Form) -> Self {
        Self {
            description: f.get("description").into(),
            url: f.get("url").into(),
            auth: f.get("auth").into(),
            username: f.get("username").into(),
            types: f.all("event_types"),
            success: f.get("success").into(),
            retry: f.get("retry").into(),
            schedule: f.get("schedule").into(),
            every: f.get("every").into(),
            for_: f.get("for").into(),
            initial: f.get("initial").into(),
            factor: f.get("factor").into(),
            max_interval: f.get("max_interval").into(),
            max_attempts: f.get("max_attempts").into(),
            max_age: f.get("max_age").into(),
            timeout: f.get("timeout").into(),
            max_in_flight: f.get("max_in_flight").into(),
        }
    }
}

/// A number when it reads as one; the text otherwise, so the API names the
/// field in its error.
fn number_or_text(t: &str) -> Value {
    serde_json::from_str::<serde_json::Number>(t)
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(t.to_owned()))
}

/// The API body of a submitted form. `current`: the stored endpoint, when
/// editing (an empty password or key then keeps the stored one).
fn endpoint_body(f: &Form, current: Option<&Value>) -> Value {
    let mut b = Map::new();
    b.insert("description".into(), json!(f.get("description")));
    b.insert("url".into(), json!(f.get("url")));
    b.insert("event_types".into(), json!(f.all("event_types")));
    let stored = current.map(|c| auth_kind(&c["auth"]));
    let auth = match f.get("auth") {
        "basic"
            if f.get("password").is_empty()
                && stored == Some("basic")
                && current
                    .map(|c| s(&c["auth"]["basic"]["username"]))
                    .as_deref()
                    == Some(f.get("username")) =>
        {
            None
        }
        "basic" => {
            Some(json!({"basic": {"username": f.get("username"), "password": f.get("password")}}))
        }
        "key" if f.get("key").is_empty() && stored == Some("key") => None,
        "key" => Some(json!({"header": {"value": f.get("key")}})),
        _ => Some(json!("none")),
    };
    if let Some(a) = auth {
        b.insert("auth".into(), a);
    }
    let mut p = Map::new();
    for (name, key) in [("success", "success"), ("timeout", "timeout")] {
        if !f.get(name).is_empty() {
            p.insert(key.into(), json!(f.get(name)));
        }
    }
    if !f.get("max_in_flight").is_empty() {
        p.insert(
            "max_in_flight".into(),
            number_or_text(f.get("max_in_flight")),
        );
    }
    let retry = match f.get("retry") {
        "schedule" => Some(
            json!({"schedule": f.get("schedule").split(',').map(str::trim).filter(|x| !x.is_empty()).collect::<Vec<_>>()}),
        ),
        "fixed" => Some(json!({"fixed": {"every": f.get("every"), "for": f.get("for")}})),
        "exponential" => {
            let mut e = Map::new();
            for k in ["initial", "max_interval", "max_age"] {
                if !f.get(k).is_empty() {
                    e.insert(k.into(), json!(f.get(k)));
                }
            }
            for k in ["factor", "max_attempts"] {
                if !f.get(k).is_empty() {
                    e.insert(k.into(), number_or_text(f.get(k)));
                }
            }
            Some(json!({"exponential": e}))
        }
        _ => None,
    };
    if let Some(r) = retry {
        p.insert("retry".into(), r);
    }
    if !p.is_empty() {
        b.insert("policy".into(), Value::Object(p));
    }
    Value::Object(b)
}

/// Which form field an API error is about.
fn form_field(api_field: Option<&str>) -> String {
    let f = api_field.unwrap_or("");
    let f = f.strip_prefix("policy.").unwrap_or(f);
    let head = f.split(['.', '[']).next().unwrap_or("");
    match head {
        "url" | "description" | "auth" | "event_types" | "success" | "retry" | "timeout"
        | "max_in_flight" => head.to_owned(),
        _ => "general".to_owned(),
    }
}

/// The products (event types) grouped by their catalogue `group` path.
#[derive(Default)]
struct Tree {
    types: Vec<(String, String)>,
    groups: BTreeMap<String, Tree>,
}

impl Tree {
    fn of(types: &[Value], other: &str) -> Self {
        let mut root = Tree::default();
        for t in types {
            if t["archived"].as_bool() == Some(true) {
                continue;
            }
            let name = s(&t["name"]);
            let label = match t["description"].as_str() {
                Some(d) if !d.is_empty() => d.to_owned(),
                _ => name.clone(),
            };
            let group = t["group"].as_str().unwrap_or(other);
            let mut node = &mut root;
            for part in group.split('/').map(str::trim).filter(|p| !p.is_empty()) {
                node = node.groups.entry(part.to_owned()).or_default();
            }
            node.types.push((name, label));
        }
        root
    }

    fn render(&self, selected: &[String], path: &str) -> Markup {
        html! {
            @for (name, label) in &self.types {
                div.product {
                    label {
                        input type="checkbox" name="event_types" value=(name)
                            checked[selected.iter().any(|s| s == name)];
                        " " (label)
                        @if label != name { " " small.code { (name) } }
                    }
                }
            }
            @for (group, sub) in &self.groups {
                @let id = format!("{path}/{group}");
                fieldset.group data-group=(id) {
                    legend {
                        label {
                            input type="checkbox" class="group-toggle" aria-label=(group);
                            " " (group)
                        }
                    }
                    (sub.render(selected, &id))
                }
            }
        }
    }
}

/// The new/edit form.
#[allow(clippy::too_many_arguments)]
async fn form_page(
    web: &Web,
    v: &Visitor,
    action: &str,
    title: &str,
    fields: &Fields,
    editing: bool,
    errors: &[(String, String)],
    status: StatusCode,
) -> Response {
    let types = match web.all(&v.who, "/v1/event-types", 5000).await {
        Ok(t) => t,
        Err(e) => return v.failure(&e),
    };
    let tree = Tree::of(&types, v.t("other"));
    let d = &web.state.cfg.default_policy;
    let default_retry = serde_json::to_value(&d.retry).unwrap_or(Value::Null);
    let dflt = |x: String| format!("{}: {x}", v.t("default"));
    let err = |f: &str| field_error(errors, f);
    let flash = if errors.is_empty() {
        None
    } else {
        Some((false, v.t("fix_errors").to_owned()))
    };
    let auth_is = |k: &str| fields.auth == k || (fields.auth.is_empty() && k == "none");
    let retry_is = |k: &str| fields.retry == k || (fields.retry.is_empty() && k == "default");
    let content = html! {
        form.endpoint method="post" action=(action) novalidate {
            (v.hidden_csrf())
            (err("general"))
            div.field {
                label for="description" { (v.t("description")) }
                textarea id="description" name="description" rows="2" { (fields.description) }
                (err("description"))
            }
            (text_field("url", v.t("url"), &fields.url, Some("https://"), "url", errors, "url", true))
            fieldset.auth {
                legend { (v.t("auth")) }
                div.choice {
                    label { input type="radio" name="auth" value="basic" checked[auth_is("basic")]; " " (v.t("auth_basic")) }
                    div.sub data-when="basic" {
                        (text_field("username", v.t("username"), &fields.username, None, "text", &[], "", false))
                        div.field {
                            label for="password" { (v.t("password")) }
                            input id="password" name="password" type="password" autocomplete="new-password"
                                placeholder=[(editing && fields.auth == "basic").then(|| v.t("keep_secret"))];
                        }
                    }
                }
                div.choice {
                    label { input type="radio" name="auth" value="key" checked[auth_is("key")]; " " (v.t("auth_key")) }
                    div.sub data-when="key" {
                        div.field {
                            label for="key" { (v.t("key_value")) }
                            input id="key" name="key" type="password" autocomplete="off"
                                placeholder=[(editing && fields.auth == "key").then(|| v.t("keep_secret"))];
                        }
                    }
                }
                div.choice {
                    label { input type="radio" name="auth" value="none" checked[auth_is("none")]; " " (v.t("auth_none")) }
                }
                (err("auth"))
            }
            fieldset.products {
                legend { (v.t("products")) }
                p.hint { (v.t("products_hint")) }
                div.tree { (tree.render(&fields.types, "")) }
                (err("event_types"))
            }
            details.settings open[errors.iter().any(|(f, _)| ["success", "retry", "timeout", "max_in_flight"].contains(&f.as_str()))] {
                summary { (v.t("delivery_settings")) }
                p.hint { (v.t("defaults_hint")) }
                (text_field("success", v.t("success"), &fields.success, Some(&dflt(s(&json!(d.success)))), "text", errors, "success", false))
                (text_field("timeout", v.t("timeout"), &fields.timeout, Some(&dflt(s(&json!(d.timeout)))), "text", errors, "timeout", false))
                (text_field("max_in_flight", v.t("max_in_flight"), &fields.max_in_flight, Some(&dflt(s(&json!(d.max_in_flight)))), "text", errors, "max_in_flight", false))
                fieldset.retry {
                    legend { (v.t("retry")) }
                    @if !editing {
                        label { input type="radio" name="retry" value="default" checked[retry_is("default")]; " " (v.t("retry_default")) " " small.code { (default_retry.to_string()) } }
                    }
                    label { input type="radio" name="retry" value="schedule" checked[retry_is("schedule")]; " " (v.t("retry_schedule")) }
                    div.sub data-when="schedule" {
                        (text_field("schedule", v.t("waits"), &fields.schedule, Some("5s, 5m, 30m, 2h"), "text", &[], "", false))
                    }
                    label { input type="radio" name="retry" value="fixed" checked[retry_is("fixed")]; " " (v.t("retry_fixed")) }
                    div.sub data-when="fixed" {
                        (text_field("every", v.t("every"), &fields.every, Some("5m"), "text", &[], "", false))
                        (text_field("for", v.t("for"), &fields.for_, Some("24h"), "text", &[], "", false))
                    }
                    label { input type="radio" name="retry" value="exponential" checked[retry_is("exponential")]; " " (v.t("retry_exponential")) }
                    div.sub data-when="exponential" {
                        (text_field("initial", v.t("initial"), &fields.initial, Some("30s"), "text", &[], "", false))
                        (text_field("factor", v.t("factor"), &fields.factor, Some("2"), "text", &[], "", false))
                        (text_field("max_interval", v.t("max_interval"), &fields.max_interval, Some("1d"), "text", &[], "", false))
                        (text_field("max_attempts", v.t("max_attempts"), &fields.max_attempts, Some("10"), "text", &[], "", false))
                        (text_field("max_age", v.t("max_age"), &fields.max_age, Some("7d"), "text", &[], "", false))
                    }
                    (err("retry"))
                }
            }
            div.actions {
                button.primary type="submit" { (v.t("save")) }
                a.button href="/portal" { (v.t("cancel")) }
            }
        }
    };
    v.page(status, title, &flash, content)
}

async fn new_form(State(web): State<Web>, v: Visitor) -> Response {
    let title = format!("{} — {}", v.t("integrations"), v.t("new"));
    form_page(
        &web,
        &v,
        "/portal/new",
        &title,
        &Fields::default(),
        false,
        &[],
        StatusCode::OK,
    )
    .await
}

async fn create(State(web): State<Web>, v: Visitor, body: Bytes) -> Response {
    let f = Form::parse(&body);
    if let Some(r) = v.refused(&web, &f) {
        return r;
    }
    match web
        .call(
            &v.who,
            Method::POST,
            &v.api("/endpoints"),
            Some(&endpoint_body(&f, None)),
        )
        .await
    {
        Ok(ep) => see_other(&format!(
            "/portal/i/{}?done=created",
            ep["id"].as_str().unwrap_or_default()
        )),
        Err(e) if e.status == 422 || e.status == 400 => {
            let title = format!("{} — {}", v.t("integrations"), v.t("new"));
            let errors = [(form_field(e.field.as_deref()), e.message)];
            form_page(
                &web,
                &v,
                "/portal/new",
                &title,
                &Fields::of_form(&f),
                false,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => v.failure(&e),
    }
}

async fn edit_form(State(web): State<Web>, v: Visitor, Path(ep): Path<String>) -> Response {
    let view = match web.get(&v.who, &v.ep(&ep, "")).await {
        Ok(e) => e,
        Err(e) => return v.failure(&e),
    };
    let title = format!("{} — {}", v.t("edit"), s(&view["url"]));
    form_page(
        &web,
        &v,
        &format!("/portal/i/{ep}/edit"),
        &title,
        &Fields::of_view(&view),
        true,
        &[],
        StatusCode::OK,
    )
    .await
}

async fn update(
    State(web): State<Web>,
    v: Visitor,
    Path(ep): Path<String>,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    if let Some(r) = v.refused(&web, &f) {
        return r;
    }
    let view = match web.get(&v.who, &v.ep(&ep, "")).await {
        Ok(e) => e,
        Err(e) => return v.failure(&e),
    };
    match web
        .call(
            &v.who,
            Method::PATCH,
            &v.ep(&ep, ""),
            Some(&endpoint_body(&f, Some(&view))),
        )
        .await
    {
        Ok(_) => see_other(&format!("/portal/i/{ep}?done=saved")),
        Err(e) if e.status == 422 || e.status == 400 => {
            let title = format!("{} — {}", v.t("edit"), s(&view["url"]));
            let errors = [(form_field(e.field.as_deref()), e.message)];
            form_page(
                &web,
                &v,
                &format!("/portal/i/{ep}/edit"),
                &title,
                &Fields::of_form(&f),
                true,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => v.failure(&e),
    }
}

/// Runs a button's API call; on success goes back to the details page with
/// `done`, else shows the details page with the API's message.
#[allow(clippy::too_many_arguments)]
async fn action(
    web: &Web,
    v: &Visitor,
    ep: &str,
    body: &[u8],
    method: Method,
    rest: &str,
    payload: Option<Value>,
    done: impl FnOnce(&Value) -> String,
) -> Response {
    let f = Form::parse(body);
    if let Some(r) = v.refused(web, &f) {
        return r;
    }
    match web
        .call(&v.who, method, &v.ep(ep, rest), payload.as_ref())
        .await
    {
        Ok(answer) => see_other(&format!("/portal/i/{ep}?{}", done(&answer))),
        Err(e) if e.status == 404 => v.failure(&e),
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_GATEWAY);
            details_page(web, v, ep, status, Some((false, e.message))).await
        }
    }
}

/// *Send*: one test attempt now.
async fn send(State(web): State<Web>, v: Visitor, Path(ep): Path<String>, body: Bytes) -> Response {
    action(&web, &v, &ep, &body, Method::POST, "/test", None, |a| {
        let code = a["attempt"]["status_code"]
            .as_u64()
            .map(|c| c.to_string())
            .unwrap_or_default();
        if a["succeeded"].as_bool() == Some(true) {
            format!("done=test_ok&n={code}")
        } else {
            let e = a["attempt"]["error"].as_str().unwrap_or_default();
            format!("done=test_failed&n={code}&e={}", enc(e))
        }
    })
    .await
}

/// *Send all*: the latest publication of every selected product again.
async fn send_all(
    State(web): State<Web>,
    v: Visitor,
    Path(ep): Path<String>,
    body: Bytes,
) -> Response {
    action(
        &web,
        &v,
        &ep,
        &body,
        Method::POST,
        "/send-latest",
        None,
        |_| "done=queued".into(),
    )
    .await
}

/// *Resend pending*: the latest failed delivery of each product again.
async fn resend_pending(
    State(web): State<Web>,
    v: Visitor,
    Path(ep): Path<String>,
    body: Bytes,
) -> Response {
    action(
        &web,
        &v,
        &ep,
        &body,
        Method::POST,
        "/resend-failed",
        Some(json!({"latest_per_type": true})),
        |_| "done=queued".into(),
    )
    .await
}

/// The activate/deactivate switch.
async fn toggle(
    State(web): State<Web>,
    v: Visitor,
    Path(ep): Path<String>,
    body: Bytes,
) -> Response {
    let on = Form::parse(&body).get("enabled") == "true";
    action(
        &web,
        &v,
        &ep,
        &body,
        Method::PATCH,
        "",
        Some(json!({"enabled": on})),
        |_| format!("done={}", if on { "on" } else { "off" }),
    )
    .await
}

/// The signing secret, shown on demand.
async fn secret(State(web): State<Web>, v: Visitor, Path(ep): Path<String>) -> Response {
    match web.get(&v.who, &v.ep(&ep, "/secret")).await {
        Ok(sv) => secret_page(&v, &ep, &sv, None),
        Err(e) => v.failure(&e),
    }
}

fn secret_page(v: &Visitor, ep: &str, sv: &Value, flash: Flash) -> Response {
    let content = html! {
        p.hint { (v.t("secret_hint")) }
        p { code.secret id="secret" { (s(&sv["secret"])) } }
        form method="post" action=(format!("/portal/i/{ep}/rotate")) {
            (v.hidden_csrf())
            button type="submit" { (v.t("rotate")) }
        }
        p { a href=(format!("/portal/i/{ep}")) { (v.t("back")) } }
    };
    v.page(StatusCode::OK, v.t("secret"), &flash, content)
}

async fn rotate(
    State(web): State<Web>,
    v: Visitor,
    Path(ep): Path<String>,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    if let Some(r) = v.refused(&web, &f) {
        return r;
    }
    match web
        .call(&v.who, Method::POST, &v.ep(&ep, "/secret/rotate"), None)
        .await
    {
        Ok(view) => secret_page(&v, &ep, &view, Some((true, v.t("rotated").into()))),
        Err(e) => v.failure(&e),
    }
}

/// The delivery log with filters (status, product, since).
async fn log(
    State(web): State<Web>,
    v: Visitor,
    Path(ep): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = query(&q);
    let status = match q.get("status") {
        s @ ("pending" | "succeeded" | "failed" | "cancelled") => s,
        _ => "",
    };
    let mut params = vec![("limit".to_owned(), "50".to_owned())];
    if !status.is_empty() {
        params.push(("status".into(), status.into()));
    }
    if !q.get("event_type").is_empty() {
        params.push(("event_type".into(), q.get("event_type").into()));
    }
    // A `datetime-local` value is taken as UTC.
    let since = q.get("since");
    if !since.is_empty() {
        let t = if since.len() == 16 {
            format!("{since}:00Z")
        } else {
            since.to_owned()
        };
        params.push(("since".into(), t));
    }
    if !q.get("cursor").is_empty() {
        params.push(("cursor".into(), q.get("cursor").into()));
    }
    let qs: String = params
        .iter()
        .map(|(k, x)| format!("{k}={}", enc(x)))
        .collect::<Vec<_>>()
        .join("&");
    let (page_flash, rows, next) = match web
        .get(&v.who, &v.ep(&ep, &format!("/deliveries?{qs}")))
        .await
    {
        Ok(p) => (
            None,
            p["data"].as_array().cloned().unwrap_or_default(),
            p["next_cursor"].as_str().map(str::to_owned),
        ),
        Err(e) if e.status == 404 => return v.failure(&e),
        Err(e) => (Some((false, e.message)), Vec::new(), None),
    };
    let next_link = next.map(|c| {
        let mut kept: Vec<String> = ["status", "event_type", "since"]
            .iter()
            .filter(|k| !q.get(k).is_empty())
            .map(|k| format!("{k}={}", enc(q.get(k))))
            .collect();
        kept.push(format!("cursor={}", enc(&c)));
        format!("/portal/i/{ep}/log?{}", kept.join("&"))
    });
    let content = html! {
        form.filters method="get" action=(format!("/portal/i/{ep}/log")) {
            div.field {
                label for="status" { (v.t("status")) }
                select id="status" name="status" {
                    option value="" { (v.t("any")) }
                    @for st in ["pending", "succeeded", "failed", "cancelled"] {
                        option value=(st) selected[status == st] { (v.t(st)) }
                    }
                }
            }
            div.field {
                label for="event_type" { (v.t("event_type")) }
                input id="event_type" name="event_type" type="text" value=(q.get("event_type")) placeholder="ENTITY.*";
            }
            div.field {
                label for="since" { (v.t("since")) " (UTC)" }
                input id="since" name="since" type="datetime-local" value=(since);
            }
            button type="submit" { (v.t("filter")) }
        }
        table.log {
            thead { tr { th { (v.t("created_at")) } th { (v.t("product")) } th { (v.t("status")) } th { (v.t("attempts")) } th { (v.t("response")) } } }
            tbody {
                @for d in &rows {
                    tr {
                        td { a href=(format!("/portal/d/{}", s(&d["id"]))) { (when(&s(&d["created_at"]))) } }
                        td { (s(&d["event_type"])) }
                        td { (status_badge(v.lang, d["status"].as_str().unwrap_or_default())) }
                        td { (s(&d["attempt_count"])) }
                        td {
                            @if let Some(c) = d["last_status_code"].as_u64() { "HTTP " (c) }
                            @else if let Some(e) = d["last_error"].as_str() { (e) }
                        }
                    }
                }
            }
        }
        @if let Some(n) = next_link { p { a href=(n) { (v.t("next_page")) } } }
        p { a href=(format!("/portal/i/{ep}")) { (v.t("back")) } }
    };
    v.page(StatusCode::OK, v.t("log"), &page_flash, content)
}

/// One delivery with its attempts: request headers (secrets hidden),
/// response code, headers and the start of the body.
async fn delivery(State(web): State<Web>, v: Visitor, Path(dlv): Path<String>) -> Response {
    let d = match web
        .get(&v.who, &v.api(&format!("/deliveries/{}", enc(&dlv))))
        .await
    {
        Ok(d) => d,
        Err(e) => return v.failure(&e),
    };
    let ep = s(&d["endpoint"]);
    let view = web.get(&v.who, &v.ep(&ep, "")).await.unwrap_or(Value::Null);
    let event = web
        .get(&v.who, &v.api(&format!("/events/{}", enc(&s(&d["event"])))))
        .await
        .ok();
    let attempts = d["attempts"].as_array().cloned().unwrap_or_default();
    let content = html! {
        dl.summary {
            dt { (v.t("product")) } dd { (s(&d["event_type"])) }
            dt { (v.t("status")) } dd { (status_badge(v.lang, d["status"].as_str().unwrap_or_default())) }
            dt { (v.t("event")) } dd { code { (s(&d["event"])) } }
            dt { (v.t("created_at")) } dd { (when(&s(&d["created_at"]))) }
        }
        @if d["status"].as_str() != Some("pending") {
            form method="post" action=(format!("/portal/d/{dlv}/resend")) {
                (v.hidden_csrf())
                button type="submit" { (v.t("resend")) }
            }
        }
        h2 { (v.t("request_headers")) }
        pre.headers { (request_headers(&view, &s(&d["event"]))) }
        @if let Some(e) = &event {
            h2 { (v.t("payload")) }
            pre.payload { (serde_json::to_string_pretty(&e["payload"]).unwrap_or_default()) }
        }
        h2 { (v.t("attempts")) }
        @if attempts.is_empty() { p { (v.t("no_attempts")) } }
        @for (i, a) in attempts.iter().enumerate() {
            section.attempt data-attempt=(i + 1) {
                h3 { "#" (i + 1) " · " (when(&s(&a["at"]))) }
                dl.summary {
                    dt { (v.t("response")) } dd.code {
                        @if let Some(c) = a["status_code"].as_u64() { "HTTP " (c) } @else { "—" }
                    }
                    dt { (v.t("duration")) } dd { (s(&a["duration_ms"])) " ms" }
                    @if let Some(e) = a["error"].as_str() {
                        dt { (v.t("error")) } dd { (e) @if let Some(x) = a["error_detail"].as_str() { ": " (x) } }
                    }
                }
                @if let Some(h) = a["response_headers"].as_array().filter(|h| !h.is_empty()) {
                    h4 { (v.t("response_headers")) }
                    pre.headers { @for pair in h { (s(&pair[0])) ": " (s(&pair[1])) "\n" } }
                }
                @if let Some(b) = a["response_snippet"].as_str() {
                    @if !b.is_empty() { h4 { (v.t("response")) } pre.snippet { (b) } }
                }
            }
        }
        p { a href=(format!("/portal/i/{ep}/log")) { (v.t("back")) } }
    };
    v.page(
        StatusCode::OK,
        &format!("{} {}", v.t("delivery"), dlv),
        &None,
        content,
    )
}

/// The headers Aviso sends for `event` to the endpoint `view`, every secret
/// value replaced.
fn request_headers(view: &Value, event: &str) -> String {
    let mut out = format!(
        "content-type: application/json\nuser-agent: Aviso/{}\nwebhook-id: {event}\nwebhook-timestamp: <unix seconds of the attempt>\nwebhook-signature: v1,••••\n",
        env!("CARGO_PKG_VERSION")
    );
    let auth = &view["auth"];
    if auth.get("basic").is_some() {
        out.push_str("authorization: Basic ••••\n");
    } else if auth.get("bearer").is_some() {
        out.push_str("authorization: Bearer ••••\n");
    } else if let Some(h) = auth.get("header") {
        let name = h["name"]
            .as_str()
            .unwrap_or("authorization")
            .to_ascii_lowercase();
        out.push_str(&format!("{name}: ••••\n"));
    }
    if let Some(h) = view["headers"].as_object() {
        for k in h.keys() {
            out.push_str(&format!("{}: ••••\n", k.to_ascii_lowercase()));
        }
    }
    out
}

async fn resend_delivery(
    State(web): State<Web>,
    v: Visitor,
    Path(dlv): Path<String>,
    body: Bytes,
) -> Response {
    let f = Form::parse(&body);
    if let Some(r) = v.refused(&web, &f) {
        return r;
    }
    match web
        .call(
            &v.who,
            Method::POST,
            &v.api(&format!("/deliveries/{}/resend", enc(&dlv))),
            None,
        )
        .await
    {
        Ok(_) => see_other(&format!("/portal/d/{dlv}")),
        Err(e) => v.failure(&e),
    }
}

async fn logout(State(web): State<Web>, v: Visitor, body: Bytes) -> Response {
    if let Some(r) = v.refused(&web, &Form::parse(&body)) {
        return r;
    }
    let r = v.message(StatusCode::OK, "signed_out");
    with_cookie(r, set_cookie(SESSION, "", "/portal", Duration::ZERO))
}
