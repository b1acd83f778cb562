//! The input forms of [`ReceiverAuth`]: objects, or the short strings some
//! providers document (`"user:pass"`, `"Name:value"`, a bare key).

use super::{HeaderName, HeaderValue, ReceiverAuth};
use crate::ParseError;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::marker::PhantomData;

/// What a client may write for `auth`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum AuthRepr {
    None,
    Basic(StrOrObject<BasicFields>),
    Bearer(StrOrObject<BearerFields>),
    Header(StrOrObject<HeaderFields>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BasicFields {
    username: HeaderValue,
    password: HeaderValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BearerFields {
    token: HeaderValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HeaderFields {
    #[serde(default = "authorization")]
    name: HeaderName,
    value: HeaderValue,
}

fn authorization() -> HeaderName {
    HeaderName("Authorization".into())
}

/// A value written either as a short string or as its object form.
pub(super) struct StrOrObject<T>(T);

/// Parsing of a short string form.
pub(super) trait Short: Sized {
    fn short(s: &str) -> Result<Self, ParseError>;
}

impl Short for BasicFields {
    /// `user:pass`.
    fn short(s: &str) -> Result<Self, ParseError> {
        let (u, p) = s
            .split_once(':')
            .ok_or_else(|| ParseError::new("Basic auth as a string is `user:password`"))?;
        Ok(Self {
            username: HeaderValue::parse(u)?,
            password: HeaderValue::parse(p)?,
        })
    }
}

impl Short for BearerFields {
    fn short(s: &str) -> Result<Self, ParseError> {
        Ok(Self {
            token: HeaderValue::parse(s)?,
        })
    }
}

impl Short for HeaderFields {
    /// `Name:value` when the part before the first `:` is a header name,
    /// otherwise the whole string is the value of `Authorization`.
    fn short(s: &str) -> Result<Self, ParseError> {
        if let Some((name, value)) = s.split_once(':') {
            if let Ok(name) = HeaderName::parse(name.trim()) {
                return Ok(Self {
                    name,
                    value: HeaderValue::parse(value.trim())?,
                });
            }
        }
        Ok(Self {
            name: authorization(),
            value: HeaderValue::parse(s)?,
        })
    }
}

impl<'de, T: Short + Deserialize<'de>> Deserialize<'de> for StrOrObject<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Short + Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = StrOrObject<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an object")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                T::short(s).map(StrOrObject).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(StrOrObject)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl TryFrom<AuthRepr> for ReceiverAuth {
    type Error = ParseError;

    fn try_from(r: AuthRepr) -> Result<Self, ParseError> {
        Ok(match r {
            AuthRepr::None => Self::None,
            AuthRepr::Basic(StrOrObject(b)) => Self::Basic {
                username: b.username,
                password: b.password,
            },
            AuthRepr::Bearer(StrOrObject(b)) => Self::Bearer { token: b.token },
            AuthRepr::Header(StrOrObject(h)) => Self::Header {
                name: h.name,
                value: h.value,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ReceiverAuth {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn short_forms_parse_to_the_object_forms() {
        let h = parse(r#"{"header":"X-Api-Key: k1"}"#).header().unwrap();
        assert_eq!(h, ("X-Api-Key".into(), "k1".into()));
        let h = parse(r#"{"header":"k2"}"#).header().unwrap();
        assert_eq!(h, ("Authorization".into(), "k2".into()));
        let h = parse(r#"{"header":"Basic dTpw"}"#).header().unwrap();
        assert_eq!(h, ("Authorization".into(), "Basic dTpw".into()));
        let h = parse(r#"{"basic":"u:p"}"#).header().unwrap();
        assert_eq!(h, ("Authorization".into(), "Basic dTpw".into()));
        let h = parse(r#"{"bearer":"t"}"#).header().unwrap();
        assert_eq!(h.1, "Bearer t");
        let normalised = serde_json::to_string(&parse(r#"{"header":"k2"}"#)).unwrap();
        assert_eq!(
            normalised,
            r#"{"header":{"name":"Authorization","value":"k2"}}"#
        );
    }

    #[test]
    fn bad_forms_are_refused_with_a_reason() {
        for bad in [
            r#"{"basic":"nocolon"}"#,
            r#"{"header":"X-Key: a\nb"}"#,
            r#"{"header":{"value":"v","extra":1}}"#,
            r#"{"header":5}"#,
        ] {
            assert!(serde_json::from_str::<ReceiverAuth>(bad).is_err(), "{bad}");
        }
    }
}
