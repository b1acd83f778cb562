//! Request extractors that answer bad input with the API's error shape,
//! naming the field: JSON bodies (size-capped, unknown fields refused) and
//! query strings.

use crate::error::ApiError;
use crate::ApiState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::de::DeserializeOwned;

/// A JSON body parsed into `T`, with errors that name the offending field.
pub struct JsonBody<T>(pub T);

/// Parses JSON bytes into `T`: syntax errors are 400, type and value errors 422,
/// both naming the path of the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(de);
    let value = parsed.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let err = match inner.classify() {
            serde_json::error::Category::Data => ApiError::invalid(clean(&inner)),
            _ => ApiError::bad_request(format!("malformed JSON: {inner}")),
        };
        err.at(path)
    })?;
    Ok(value)
}

/// serde's messages end with " at line 1 column 9"; the field path says more.
fn clean(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

impl<T: DeserializeOwned> FromRequest<ApiState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state.cfg.max_body_bytes).await?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request(
                "request body is empty; send a JSON object",
            ));
        }
        parse_json(&bytes).map(JsonBody)
    }
}

/// An optional JSON body: an empty body parses as `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<ApiState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state.cfg.max_body_bytes).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

async fn read_body(req: Request, limit: usize) -> Result<bytes::Bytes, ApiError> {
    if let Some(ct) = req.headers().get(http::header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        if !ct.starts_with("application/json") && !ct.contains("+json") {
            return Err(ApiError::bad_request(format!(
                "Content-Type must be application/json, not `{ct}`"
            ))
            .at("Content-Type"));
        }
    }
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| ApiError::too_large(limit))
}

/// Query-string parameters parsed into `T` (unknown parameters refused).
pub struct QueryArgs<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(q)
            .map(QueryArgs)
            .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))
    }
}

/// `?limit=&cursor=` for list endpoints.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Page size, 1 to 250 (default 50).
    pub limit: Option<usize>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Largest page.
pub const MAX_LIMIT: usize = 250;

/// Checks a `limit` parameter: 1 to 250, default 50.
pub fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(
            ApiError::bad_request(format!("limit must be between 1 and {MAX_LIMIT}")).at("limit"),
        ),
    }
}

impl ListArgs {
    /// The store page request these arguments describe.
    pub fn page(&self) -> Result<aviso_store::PageRequest, ApiError> {
        Ok(aviso_store::PageRequest {
            after: self.cursor.as_deref().map(decode_cursor).transpose()?,
            limit: page_limit(self.limit)?,
        })
    }
}

/// Makes a store key opaque for clients.
pub fn encode_cursor(key: &str) -> String {
    B64.encode(key)
}

/// Reads back a cursor made by [`encode_cursor`].
pub fn decode_cursor(c: &str) -> Result<String, ApiError> {
    B64.decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad_request("cursor is not one this server issued").at("cursor"))
}

/// `{"data": [...], "next_cursor": ...}`.
pub fn list_body<T: serde::Serialize>(items: Vec<T>, next: Option<String>) -> serde_json::Value {
    serde_json::json!({"data": items, "next_cursor": next.as_deref().map(encode_cursor)})
}
