//! Flow-control parts of a delivery policy: rate limit, ordering, and the
//! adaptive behaviour's auto-disable delay.

use crate::{Dur, ParseError};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::time::Duration;

/// Requests per second to one endpoint: more than 0, at most 10,000.
#[derive(Clone, Copy, PartialEq, Debug, Serialize)]
pub struct RateLimit(pub f64);

impl<'de> Deserialize<'de> for RateLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !(v.is_finite() && v > 0.0 && v <= 10_000.0) {
            return Err(serde::de::Error::custom(
                "rate_limit must be a number of requests per second, more than 0 and at most 10000",
            ));
        }
        Ok(Self(v))
    }
}

/// A JSON pointer (`/contrato/id`) naming the ordering key in a payload.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct JsonPointer(String);

impl JsonPointer {
    /// Parses a pointer: starts with `/`, at most 256 characters.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if !s.starts_with('/') || s.len() > 256 {
            return Err(ParseError::new(format!(
                "`{}` is not a JSON pointer (it must start with `/`, at most 256 characters)",
                s.escape_debug()
            )));
        }
        Ok(Self(s.to_owned()))
    }

    /// The pointer as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for JsonPointer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// In which order an endpoint's deliveries go out.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DeliveryOrder {
    /// In parallel, up to the in-flight limit (the default).
    #[default]
    None,
    /// One at a time in publish order; a failing head holds the rest back.
    Fifo,
    /// In publish order per value of this pointer; different values go in parallel.
    FifoKey(JsonPointer),
}

impl DeliveryOrder {
    /// The ordering key of a payload: `None` when unordered. Under `fifo_key`
    /// a payload without the pointer (or not JSON) falls in the empty key.
    pub fn key_of(&self, payload: &str) -> Option<String> {
        match self {
            Self::None => None,
            _ => self.key_of_value(serde_json::from_str::<Value>(payload).ok().as_ref()),
        }
    }

    /// [`Self::key_of`] for a payload already parsed (`None` when it is not JSON).
    pub fn key_of_value(&self, payload: Option<&Value>) -> Option<String> {
        match self {
            Self::None => None,
            Self::Fifo => Some(String::new()),
            Self::FifoKey(ptr) => Some(match payload.and_then(|v| v.pointer(ptr.as_str())) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            }),
        }
    }
}

/// How long an unbroken failure lasts before the endpoint is disabled: 1 s to 1 year.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub struct DisableAfter(pub Dur);

impl Default for DisableAfter {
    fn default() -> Self {
        Self(Dur::from_secs(5 * 86_400))
    }
}

impl<'de> Deserialize<'de> for DisableAfter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Dur::deserialize(d)?;
        if v.0 < Duration::from_secs(1) {
            return Err(serde::de::Error::custom(
                "disable_after must be at least 1s",
            ));
        }
        Ok(Self(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_bounds() {
        assert_eq!(serde_json::from_str::<RateLimit>("50").unwrap().0, 50.0);
        assert_eq!(serde_json::from_str::<RateLimit>("0.5").unwrap().0, 0.5);
        for bad in ["0", "-1", "10001", "\"5\""] {
            assert!(serde_json::from_str::<RateLimit>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ordering_shapes_and_keys() {
        let o: DeliveryOrder = serde_json::from_str(r#""none""#).unwrap();
        assert_eq!(o.key_of("{}"), None);
        let o: DeliveryOrder = serde_json::from_str(r#""fifo""#).unwrap();
        assert_eq!(o.key_of("{}"), Some(String::new()));
        let o: DeliveryOrder = serde_json::from_str(r#"{"fifo_key":"/contrato/id"}"#).unwrap();
        assert_eq!(o.key_of(r#"{"contrato":{"id":"c-1"}}"#), Some("c-1".into()));
        assert_eq!(o.key_of(r#"{"contrato":{"id":7}}"#), Some("7".into()));
        assert_eq!(o.key_of("[]"), Some(String::new()));
        assert_eq!(
            serde_json::to_string(&o).unwrap(),
            r#"{"fifo_key":"/contrato/id"}"#
        );
        for bad in [
            r#""lifo""#,
            r#"{"fifo_key":"contrato"}"#,
            r#"{"fifo_key":1}"#,
        ] {
            assert!(serde_json::from_str::<DeliveryOrder>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn disable_after_has_a_floor() {
        assert!(serde_json::from_str::<DisableAfter>(r#""500ms""#).is_err());
        assert_eq!(
            serde_json::from_str::<DisableAfter>(r#""5d""#).unwrap(),
            DisableAfter::default()
        );
    }
}
