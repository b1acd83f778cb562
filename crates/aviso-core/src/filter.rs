//! Payload filters: small predicates on JSON pointers, applied at fan-out.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One predicate: every operator given must hold.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Predicate {
    /// The value at the pointer equals this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eq: Option<Value>,
    /// The value at the pointer is one of these.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub in_: Option<Vec<Value>>,
    /// The pointer resolves (`true`) or not (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
}

impl Predicate {
    fn holds(&self, v: Option<&Value>) -> bool {
        self.exists.is_none_or(|want| want == v.is_some())
            && self.eq.as_ref().is_none_or(|e| v == Some(e))
            && self
                .in_
                .as_ref()
                .is_none_or(|set| v.is_some_and(|v| set.contains(v)))
    }
}

/// `{"/status": {"in": [2, 3]}}`: all predicates must hold.
#[derive(Clone, PartialEq, Debug, Default, Serialize)]
pub struct PayloadFilter(pub BTreeMap<String, Predicate>);

impl PayloadFilter {
    /// Whether `payload` passes every predicate.
    pub fn matches(&self, payload: &Value) -> bool {
        self.0.iter().all(|(ptr, p)| p.holds(payload.pointer(ptr)))
    }

    /// Whether there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for PayloadFilter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, Predicate>::deserialize(d)?;
        if map.len() > 16 {
            return Err(serde::de::Error::custom(
                "a filter has at most 16 predicates",
            ));
        }
        if let Some(bad) = map.keys().find(|k| !k.starts_with('/')) {
            return Err(serde::de::Error::custom(format!(
                "`{bad}` is not a JSON pointer (it must start with `/`)"
            )));
        }
        if let Some((k, _)) = map
            .iter()
            .find(|(_, p)| p.eq.is_none() && p.in_.is_none() && p.exists.is_none())
        {
            return Err(serde::de::Error::custom(format!(
                "predicate `{k}` needs `eq`, `in` or `exists`"
            )));
        }
        Ok(Self(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_filter_of_the_identity_contract() {
        let f: PayloadFilter =
            serde_json::from_value(json!({"/status": {"in": [2, 3, 4, 5]}})).unwrap();
        assert!(f.matches(&json!({"id": "x", "status": 3})));
        assert!(!f.matches(&json!({"id": "x", "status": 1})));
        assert!(!f.matches(&json!({"id": "x"})));
    }

    #[test]
    fn eq_and_exists() {
        let f: PayloadFilter =
            serde_json::from_value(json!({"/a/b": {"eq": "x"}, "/c": {"exists": false}})).unwrap();
        assert!(f.matches(&json!({"a": {"b": "x"}})));
        assert!(!f.matches(&json!({"a": {"b": "x"}, "c": 1})));
        assert!(serde_json::from_value::<PayloadFilter>(json!({"status": {"eq": 1}})).is_err());
        assert!(serde_json::from_value::<PayloadFilter>(json!({"/s": {}})).is_err());
    }
}
