//! Human durations: `100ms`, `5s`, `5m`, `2h`, `7d`, and sums like `1h30m`.

use crate::ParseError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration written the way people write them in config and API bodies.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

impl Dur {
    /// Parses `100ms`, `5s`, `5m`, `2h`, `7d`, `1h30m`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let bad = || {
            ParseError::new(format!(
                "`{s}` is not a duration (use e.g. `100ms`, `5s`, `5m`, `2h`, `7d`)"
            ))
        };
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            if digits == 0 {
                return Err(bad());
            }
            let n: u128 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit_ms: u128 = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(bad()),
            };
            rest = &rest[unit_len..];
            total = total
                .checked_add(n.checked_mul(unit_ms).ok_or_else(bad)?)
                .ok_or_else(bad)?;
        }
        if total > 365 * 86_400_000 {
            return Err(ParseError::new(format!("`{s}` is longer than a year")));
        }
        Ok(Self(Duration::from_millis(total as u64)))
    }

    /// The std duration.
    pub fn get(self) -> Duration {
        self.0
    }

    /// Builds from whole seconds.
    pub fn from_secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }

    /// Builds from milliseconds.
    pub fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }
}

impl fmt::Display for Dur {
    /// Normalised: the largest units first, e.g. `1h30m`, `100ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000u128),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(Dur::parse("100ms").unwrap().0, Duration::from_millis(100));
        assert_eq!(Dur::parse("5m").unwrap().0, Duration::from_secs(300));
        assert_eq!(Dur::parse("7d").unwrap().0, Duration::from_secs(7 * 86_400));
        assert_eq!(Dur::parse("1h30m").unwrap().0, Duration::from_secs(5400));
    }

    #[test]
    fn rejects_nonsense() {
        for s in ["", "5", "m", "5x", "-5s", "5 s", "400d"] {
            assert!(Dur::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn displays_normalised() {
        assert_eq!(Dur::parse("90m").unwrap().to_string(), "1h30m");
        assert_eq!(Dur::parse("1500ms").unwrap().to_string(), "1s500ms");
        assert_eq!(Dur::parse("24h").unwrap().to_string(), "1d");
    }
}
