//! Prefixed, time-sortable ids (`evt_01J…`): a ULID behind a resource prefix.

use crate::ParseError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

/// ULIDs are only time-ordered to the millisecond; a process-wide monotonic
/// generator keeps ids made in the same millisecond in creation order too.
fn next_ulid() -> ulid::Ulid {
    static GEN: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());
    let mut g = GEN.lock().unwrap_or_else(|p| p.into_inner());
    g.generate().unwrap_or_else(|_| ulid::Ulid::new())
}

/// Longest id text held inline: a three-letter prefix, `_` and a ULID.
const INLINE: usize = 3 + 1 + ulid::ULID_LEN;

/// An id's text, inline when it fits, which every id Aviso makes does.
///
/// Ids are copied on every step of a delivery (its row, its dispatch job,
/// its attempt, the sender's and the dispatcher's maps), often on one thread
/// and dropped on another; inline, making, copying and dropping one is a copy
/// of 32 bytes instead of an allocation and a cross-thread free.
#[derive(Clone)]
enum Text {
    /// `bytes[..len]` is the text: always whole UTF-8, copied from a `&str`.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// Longer text (only ever read back from a store written by hand).
    Heap(Box<str>),
}

impl Text {
    fn new(s: &str) -> Self {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Self::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            Self::Heap(s.into())
        }
    }

    /// `prefix_<ULID>`, written in place.
    fn prefixed(prefix: &str, ulid: ulid::Ulid) -> Self {
        let len = prefix.len() + 1 + ulid::ULID_LEN;
        debug_assert!(len <= INLINE, "prefixes are at most three letters");
        let mut bytes = [0; INLINE];
        bytes[..prefix.len()].copy_from_slice(prefix.as_bytes());
        bytes[prefix.len()] = b'_';
        let mut text = [0; ulid::ULID_LEN];
        ulid.array_to_str(&mut text);
        bytes[prefix.len() + 1..len].copy_from_slice(&text);
        Self::Inline {
            len: len as u8,
            bytes,
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Inline { len, bytes } => {
                let bytes = &bytes[..usize::from(*len)];
                // SAFETY: `Inline` is only built from the bytes of a whole
                // `&str` (`new`) or from ASCII (`prefixed`: an ASCII prefix,
                // `_` and Crockford base32), so `bytes` is valid UTF-8.
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
            Self::Heap(s) => s,
        }
    }
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Text);

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

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $name {}

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_str().hash(state)
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> Ordering {
                self.as_str().cmp(other.as_str())
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

    /// Made, parsed or read back, an id is the same text; one too long to
    /// hold inline (never made here, but a store may hold anything) too.
    #[test]
    fn inline_and_long_ids_keep_their_text_and_order() {
        let made = DeliveryId::new();
        assert_eq!(made.as_str().len(), 30);
        assert!(matches!(made.0, Text::Inline { .. }));
        let parsed = DeliveryId::parse(made.as_str()).unwrap();
        let read = DeliveryId::from_trusted(made.as_str().to_owned());
        assert_eq!(parsed, made);
        assert_eq!(read, made);
        assert_eq!(made.clone().as_str(), made.as_str());
        assert_eq!(EndpointId::new().as_str().len(), 29);

        let long = "ep_".to_owned() + &"x".repeat(40);
        let kept = EndpointId::from_trusted(long.clone());
        assert!(matches!(kept.0, Text::Heap(_)));
        assert_eq!(kept.as_str(), long);
        assert_eq!(kept.clone(), kept);
        let short = EndpointId::from_trusted("ep_y".into());
        assert!(kept < short, "ordered as their text");
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
