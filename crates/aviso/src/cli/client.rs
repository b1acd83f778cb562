//! A small JSON client for the API: one request, the answer or a `Failure`
//! carrying the API's own error message and field.

use serde_json::Value;
use std::fmt;

/// Why a command failed; each kind has its exit code (`super::exit`).
#[derive(Debug)]
pub(crate) enum Failure {
    /// The API answered 4xx.
    Refused {
        status: u16,
        code: String,
        message: String,
        field: Option<String>,
    },
    /// No answer, or a 5xx.
    Unavailable(String),
    /// The command's own input could not be used (file, JSON).
    Input(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused {
                status,
                code,
                message,
                field,
            } => {
                write!(f, "{message} ({status} {code}")?;
                if let Some(field) = field {
                    write!(f, ", field `{field}`")?;
                }
                write!(f, ")")
            }
            Failure::Unavailable(m) | Failure::Input(m) => f.write_str(m),
        }
    }
}

pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    pub(crate) fn new(base: &str, key: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            base: base.trim_end_matches('/').to_owned(),
            key: key.map(str::to_owned),
        }
    }

    pub(crate) async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Failure> {
        self.send(self.http.get(self.url(path)).query(query)).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let req = match &self.key {
            Some(k) => req.bearer_auth(k),
            None => req,
        };
        let resp = req.send().await.map_err(|e| {
            Failure::Unavailable(format!(
                "cannot reach Aviso at {} ({e}); set AVISO_URL or --server",
                self.base
            ))
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| Failure::Unavailable(format!("reading the answer failed: {e}")))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let err = &body["error"];
        let message = err["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| body.to_string());
        if status >= 500 {
            return Err(Failure::Unavailable(format!(
                "the server failed ({status}): {message}"
            )));
        }
        let hint = if status == 401 && self.key.is_none() {
            "; set AVISO_KEY or --key"
        } else {
            ""
        };
        Err(Failure::Refused {
            status,
            code: err["code"].as_str().unwrap_or("error").to_owned(),
            message: format!("{message}{hint}"),
            field: err["field"].as_str().map(str::to_owned),
        })
    }
}
