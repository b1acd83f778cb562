//! Prefixed, time-sortable ids (`evt_01J…`): a ULID behind a resource prefix.

use crate::text::Text;
use crate::ParseError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Mutex;

/// ULIDs are only time-ordered to the millisecond; a process-wide monotonic
/// generator keeps ids made in the same millisecond in creation order too.
fn next_ulid() -> ulid::Ulid {
    static GEN: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());
    let mut g = GEN.lock().unwrap_or_else(|p| p.into_inner());
    g.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Text);

        const _: () = assert!($prefix.len() <= 3, "an id's text must fit inline");

        impl $name {
            /// The resource prefix, without the underscore.
            pub const PREFIX: &'static str = $prefix;

            /// A new id, sortable by creation time (strictly increasing within this process).
            pub fn new() -> Self {
                Self(Text::prefixed($prefix, next_ulid()))
            }

            /// Parses `prefix_<ULID>`.
            pub fn parse(s: &str) -> Result<Self, ParseError> {
                let rest = s
                    .strip_prefix(concat!($prefix, "_"))
                    .ok_or_else(|| ParseError::new(format!("expected an id starting with `{}_`", $prefix)))?;
                ulid::Ulid::from_string(rest)
                    .map_err(|_| ParseError::new(format!("`{s}` is not a valid {} id", $prefix)))?;
                Ok(Self(Text::new(s)))
            }

            /// Wraps a value read back from the store, which only holds valid ids.
            pub fn from_trusted(s: String) -> Self {
                Self(Text::new(&s))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            /// When the id was made (its ULID's millisecond).
            pub fn created_at(&self) -> crate::Timestamp {
                let ms = self
                    .as_str()
                    .split_once('_')
                    .and_then(|(_, u)| ulid::Ulid::from_string(u).ok())
                    .map_or(0, |u| u.timestamp_ms());
                crate::Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(/// An event.
    EventId, "evt");
prefixed_id!(/// An endpoint (subscription).
    EndpointId, "ep");
prefixed_id!(/// A delivery: one event to one endpoint.
    DeliveryId, "dlv");
prefixed_id!(/// One HTTP attempt of a delivery.
    AttemptId, "att");
prefixed_id!(/// A tenant.
    TenantId, "ten");
prefixed_id!(/// A partner.
    PartnerId, "par");
prefixed_id!(/// An API key.
    KeyId, "key");
prefixed_id!(/// A background task (a bulk operation).
    TaskId, "tsk");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_wrong_prefix() {
        let id = EventId::new();
        assert!(id.as_str().starts_with("evt_"));
        assert_eq!(EventId::parse(id.as_str()).unwrap(), id);
        assert!(EventId::parse(&id.as_str().replace("evt_", "ep_")).is_err());
        assert!(EventId::parse("evt_notaulid").is_err());
    }

    /// Made, parsed or read back, an id is the same inline text.
    #[test]
    fn ids_are_held_inline_however_made() {
        let made = DeliveryId::new();
        assert_eq!(made.as_str().len(), 30);
        assert!(matches!(made.0, Text::Inline { .. }));
        let parsed = DeliveryId::parse(made.as_str()).unwrap();
        let read = DeliveryId::from_trusted(made.as_str().to_owned());
        assert_eq!(parsed, made);
        assert_eq!(read, made);
        assert!(matches!(read.0, Text::Inline { .. }));
        assert_eq!(EndpointId::new().as_str().len(), 29);
        assert_eq!(std::mem::size_of::<EventId>(), 32);
    }

    /// Equal ids hash alike, however they were made.
    #[test]
    fn equal_ids_hash_alike() {
        use std::collections::HashSet;
        let id = TenantId::new();
        let set: HashSet<TenantId> = [id.clone()].into();
        assert!(set.contains(&TenantId::from_trusted(id.as_str().to_owned())));
        assert!(!set.contains(&TenantId::new()));
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let ids: Vec<TenantId> = (0..1000).map(|_| TenantId::new()).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ids made in the same millisecond stay ordered"
        );
    }
}
