//! Event-type names (`CONTRATO.REGISTRADO`) and subscription patterns (`CONTRATO.*`).

use crate::text::Text;
use crate::ParseError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Longest event-type name accepted.
pub const MAX_NAME_LEN: usize = 128;

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A catalogue name: segments of letters, digits, `_` and `-`, joined by dots.
/// Held inline up to 30 bytes (a delivery's row and job each copy it).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventTypeName(Text);

impl EventTypeName {
    /// Parses and validates a name.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() || s.len() > MAX_NAME_LEN {
            return Err(ParseError::new(format!(
                "an event type name has 1 to {MAX_NAME_LEN} characters"
            )));
        }
        if !s.split('.').all(valid_segment) {
            return Err(ParseError::new(format!(
                "`{s}` is not an event type name: use segments of letters, digits, `_` or `-` joined by dots, e.g. `CONTRATO.REGISTRADO`"
            )));
        }
        Ok(Self(Text::new(s)))
    }

    /// Wraps a value read back from the store.
    pub fn from_trusted(s: String) -> Self {
        Self(Text::new(&s))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Which event types an endpoint wants: an exact name, `ENTITY.*`, or `*`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum EventTypePattern {
    /// Exactly this name.
    Exact(EventTypeName),
    /// Every name starting with this prefix (kept with its trailing dot).
    Prefix(String),
    /// Every name.
    All,
}

impl EventTypePattern {
    /// Parses `NAME`, `PREFIX.*` or `*`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s == "*" {
            return Ok(Self::All);
        }
        if let Some(prefix) = s.strip_suffix(".*") {
            EventTypeName::parse(prefix).map_err(|_| {
                ParseError::new(format!(
                    "`{s}` is not a valid pattern: use `NAME`, `PREFIX.*` or `*`"
                ))
            })?;
            return Ok(Self::Prefix(format!("{prefix}.")));
        }
        EventTypeName::parse(s).map(Self::Exact)
    }

    /// Whether an event of type `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Self::Exact(n) => n.as_str() == name,
            Self::Prefix(p) => name.starts_with(p.as_str()),
            Self::All => true,
        }
    }

    /// Whether this pattern is a wildcard.
    pub fn is_wildcard(&self) -> bool {
        !matches!(self, Self::Exact(_))
    }
}

/// True when `types` is empty (all) or one pattern matches `name`.
pub fn any_matches(types: &[EventTypePattern], name: &str) -> bool {
    types.is_empty() || types.iter().any(|p| p.matches(name))
}

impl fmt::Display for EventTypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for EventTypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for EventTypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(n) => f.write_str(n.as_str()),
            Self::Prefix(p) => write!(f, "{p}*"),
            Self::All => f.write_str("*"),
        }
    }
}

impl fmt::Debug for EventTypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
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
string_serde!(EventTypeName);
string_serde!(EventTypePattern);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_entity_event_shape() {
        for ok in [
            "CONTRATO.REGISTRADO",
            "invoice.paid",
            "MONTANTE_ENERGIA.AJUSTADO",
            "a-b.c",
        ] {
            assert_eq!(EventTypeName::parse(ok).unwrap().as_str(), ok);
        }
        // Longer than the inline 30 bytes, up to the limit: kept whole.
        let long = format!("{}.{}", "A".repeat(60), "B".repeat(67));
        assert_eq!(long.len(), MAX_NAME_LEN);
        assert_eq!(EventTypeName::parse(&long).unwrap().as_str(), long);
        assert!(EventTypeName::parse(&format!("{long}C")).is_err());
        for bad in [
            "",
            "CONTRATO.",
            ".X",
            "A..B",
            "CONTRATO.REGISTRADO ",
            "ação.x",
            "A/B",
        ] {
            assert!(EventTypeName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcards_match_by_prefix_only() {
        let p = EventTypePattern::parse("CONTRATO.*").unwrap();
        assert!(p.matches("CONTRATO.REGISTRADO"));
        assert!(!p.matches("CONTRATOX.REGISTRADO"));
        assert!(!p.matches("MONTANTE.AJUSTADO"));
        assert_eq!(p.to_string(), "CONTRATO.*");
        assert!(EventTypePattern::parse("*").unwrap().matches("x.y"));
        assert!(EventTypePattern::parse("CON*").is_err());
        assert!(any_matches(&[], "anything"));
    }
}
