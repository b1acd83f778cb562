//! How Aviso authenticates to a receiver, and the extra static headers it sends.

use crate::ParseError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// Shown instead of a secret when an endpoint is read back.
pub const REDACTED: &str = "********";

/// Receiver authentication: `"none"`, `{"basic": …}`, `{"bearer": …}` or `{"header": …}`.
/// Besides the object forms, `basic` takes `"user:pass"`, `bearer` a bare token
/// and `header` `"Name:value"` or a bare value (sent as `Authorization`).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "short::AuthRepr")]
pub enum ReceiverAuth {
    /// No credentials.
    #[default]
    None,
    /// HTTP Basic.
    Basic {
        /// User name (no `:`).
        username: HeaderValue,
        /// Password.
        password: HeaderValue,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: HeaderValue,
    },
    /// An API key in a named header (default `Authorization`).
    Header {
        /// Header name.
        name: HeaderName,
        /// Header value.
        value: HeaderValue,
    },
}

mod short;

impl ReceiverAuth {
    /// The header this auth adds to each request, if any.
    pub fn header(&self) -> Option<(String, String)> {
        use base64::Engine;
        match self {
            Self::None => None,
            Self::Basic { username, password } => {
                let raw = format!("{}:{}", username.0, password.0);
                let enc = base64::engine::general_purpose::STANDARD.encode(raw);
                Some(("Authorization".into(), format!("Basic {enc}")))
            }
            Self::Bearer { token } => Some(("Authorization".into(), format!("Bearer {}", token.0))),
            Self::Header { name, value } => Some((name.0.clone(), value.0.clone())),
        }
    }

    /// A copy with every secret replaced by [`REDACTED`], for reading back.
    pub fn redacted(&self) -> Self {
        let r = || HeaderValue(REDACTED.into());
        match self {
            Self::None => Self::None,
            Self::Basic { username, .. } => Self::Basic {
                username: username.clone(),
                password: r(),
            },
            Self::Bearer { .. } => Self::Bearer { token: r() },
            Self::Header { name, .. } => Self::Header {
                name: name.clone(),
                value: r(),
            },
        }
    }

    /// Checks cross-field rules serde cannot express.
    pub fn check(&self) -> Result<(), ParseError> {
        if let Self::Basic { username, .. } = self {
            if username.0.contains(':') {
                return Err(ParseError::new(
                    "a Basic auth username must not contain `:`",
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ReceiverAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Basic { username, .. } => write!(f, "Basic({}:{REDACTED})", username.0),
            Self::Bearer { .. } => write!(f, "Bearer({REDACTED})"),
            Self::Header { name, .. } => write!(f, "Header({}: {REDACTED})", name.0),
        }
    }
}

/// An HTTP header name: an RFC 9110 token of at most 256 characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct HeaderName(String);

impl HeaderName {
    /// Parses a header name.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if s.is_empty() || s.len() > 256 || !s.bytes().all(token) {
            return Err(ParseError::new(format!(
                "`{}` is not a valid header name",
                s.escape_debug()
            )));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An HTTP header value: visible ASCII, spaces and tabs; never CR, LF or NUL.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HeaderValue(String);

impl HeaderValue {
    /// Parses a header value.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.contains(['\r', '\n', '\0']) {
            return Err(ParseError::new(
                "a header value must not contain CR, LF or NUL",
            ));
        }
        if s.len() > 4096 || !s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
            return Err(ParseError::new(
                "a header value has at most 4096 visible ASCII characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The value as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
string_serde!(HeaderName);
string_serde!(HeaderValue);

/// Header names Aviso sets itself; endpoints may not override them.
const RESERVED: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// Extra static headers sent on every request to an endpoint.
#[derive(Clone, PartialEq, Eq, Default, Debug, Serialize)]
pub struct Headers(pub BTreeMap<HeaderName, HeaderValue>);

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<HeaderName, HeaderValue>::deserialize(d)?;
        if map.len() > 32 {
            return Err(serde::de::Error::custom("at most 32 extra headers"));
        }
        if let Some(name) = map
            .keys()
            .find(|n| RESERVED.contains(&n.0.to_ascii_lowercase().as_str()))
        {
            return Err(serde::de::Error::custom(format!(
                "header `{}` is set by Aviso and cannot be overridden",
                name.0
            )));
        }
        Ok(Self(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_shapes_parse() {
        let a: ReceiverAuth = serde_json::from_str(r#""none""#).unwrap();
        assert_eq!(a, ReceiverAuth::None);
        let a: ReceiverAuth =
            serde_json::from_str(r#"{"basic":{"username":"u","password":"p"}}"#).unwrap();
        assert_eq!(
            a.header().unwrap(),
            ("Authorization".into(), "Basic dTpw".into())
        );
        let a: ReceiverAuth = serde_json::from_str(r#"{"header":{"value":"k"}}"#).unwrap();
        assert_eq!(a.header().unwrap().0, "Authorization");
        assert!(
            serde_json::from_str::<ReceiverAuth>(r#"{"bearer":{"token":"a\r\nX: y"}}"#).is_err()
        );
        assert!(serde_json::from_str::<ReceiverAuth>(r#"{"digest":{}}"#).is_err());
        assert!(!format!("{:?}", a).contains('k'));
    }

    #[test]
    fn headers_refuse_injection_and_reserved_names() {
        assert!(serde_json::from_str::<Headers>(r#"{"X-Env":"prod"}"#).is_ok());
        assert!(serde_json::from_str::<Headers>(r#"{"X-Env":"a\nb"}"#).is_err());
        assert!(serde_json::from_str::<Headers>(r#"{"X Env":"a"}"#).is_err());
        assert!(serde_json::from_str::<Headers>(r#"{"Webhook-Signature":"a"}"#).is_err());
    }
}
