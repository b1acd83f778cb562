//! The one error type of the API and its JSON shape:
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`.

use aviso_store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An error answered to an API client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// Names the request field (a JSON path or parameter) the error is about.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        let f = field.into();
        self.field = (!f.is_empty() && f != ".").then_some(f);
        self
    }

    /// 400: the request could not be read (malformed JSON, bad parameter).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 422: well-formed but invalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
    }

    /// 401: missing or unknown key.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: a valid key that may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: nothing here for this caller.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 410: older than the retention period; if it existed, it was purged.
    pub fn expired(what: &str, retention: aviso_core::Dur) -> Self {
        Self::new(
            StatusCode::GONE,
            "expired",
            format!(
                "{what} is older than the retention period ({retention}): if it existed, it has been purged"
            ),
        )
    }

    /// 409: clashes with the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 413: body over the cap.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        )
    }

    /// 405: the path exists, the method does not.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this path",
        )
    }

    /// 503: try again later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500: logged, never explained to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found("resource"),
            StoreError::Conflict(m) => Self::conflict(m),
            StoreError::Invalid(m) => Self::invalid(m),
            StoreError::Expired(m) => Self::new(StatusCode::GONE, "expired", m),
            StoreError::Unavailable(m) => {
                tracing::warn!(cause = %m, "store unavailable");
                Self::unavailable("the database is unavailable; nothing was changed, try again")
            }
            StoreError::Other(m) => Self::internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut err = json!({"code": self.code, "message": self.message});
        if let Some(f) = self.field {
            err["field"] = json!(f);
        }
        (self.status, Json(json!({ "error": err }))).into_response()
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// Maps a store `NotFound` to a 404 naming the resource.
pub trait OrNotFound<T> {
    /// Names what was not found.
    fn or_not_found(self, what: &str) -> ApiResult<T>;
}

impl<T> OrNotFound<T> for Result<T, StoreError> {
    fn or_not_found(self, what: &str) -> ApiResult<T> {
        self.map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(what),
            other => other.into(),
        })
    }
}

/// Maps a store `NotFound` of a record made at `created_at` to 410 `expired`
/// when retention could have purged it by now, else to a 404.
pub fn or_expired<T>(
    r: Result<T, StoreError>,
    what: &str,
    created_at: aviso_core::Timestamp,
    retention: aviso_core::Dur,
) -> ApiResult<T> {
    let horizon = aviso_core::Timestamp::now().minus(retention.get());
    match r {
        Err(StoreError::NotFound) if created_at < horizon => {
            Err(ApiError::expired(what, retention))
        }
        other => other.or_not_found(what),
    }
}
