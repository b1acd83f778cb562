//! Short text held inline: ids and event-type names.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

/// Longest text held inline: an id (a three-letter prefix, `_` and a ULID);
/// most event-type names fit too.
pub(crate) const INLINE: usize = 3 + 1 + ulid::ULID_LEN;

/// Text inline when it fits, boxed when longer.
///
/// Ids and event-type names are copied on every step of a delivery (its row,
/// its dispatch job, its attempt, the dispatcher's maps), often on one thread
/// and dropped on another. Inline, making, copying and dropping one is a
/// copy of 32 bytes instead of an allocation and a free across threads.
/// Equality, hashing and order are those of the text, whichever form holds it.
#[derive(Clone)]
pub(crate) enum Text {
    /// `bytes[..len]` is the text: always whole UTF-8, copied from a `&str`.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// Longer text.
    Heap(Box<str>),
}

impl Text {
    pub(crate) fn new(s: &str) -> Self {
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

    /// `prefix_<ULID>`, written in place; `prefix` is at most three ASCII letters.
    pub(crate) fn prefixed(prefix: &str, ulid: ulid::Ulid) -> Self {
        let len = prefix.len() + 1 + ulid::ULID_LEN;
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

    pub(crate) fn as_str(&self) -> &str {
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

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Inline or boxed, text compares, hashes and orders as itself.
    #[test]
    fn both_forms_compare_hash_and_order_as_their_text() {
        let short = Text::new("ep_y");
        let long_text = "ep_".to_owned() + &"x".repeat(40);
        let long = Text::new(&long_text);
        assert!(matches!(short, Text::Inline { .. }));
        assert!(matches!(long, Text::Heap(_)));
        assert_eq!(long.as_str(), long_text);
        assert_eq!(long.clone(), long);
        assert!(long < short, "ordered as their text");
        let at_cap = "a".repeat(INLINE);
        assert!(matches!(Text::new(&at_cap), Text::Inline { .. }));
        assert_eq!(Text::new(&at_cap).as_str(), at_cap);
        assert!(matches!(Text::new(&(at_cap + "b")), Text::Heap(_)));
        let set: HashSet<Text> = [Text::new("evt_1")].into();
        assert!(set.contains(&Text::new("evt_1")));
        assert!(!set.contains(&Text::new("evt_2")));
        assert_eq!(std::mem::size_of::<Text>(), 32);
    }

    #[test]
    fn non_ascii_text_keeps_its_bytes() {
        let t = Text::new("ação");
        assert!(matches!(t, Text::Inline { .. }));
        assert_eq!(t.as_str(), "ação");
    }
}
