//! Destination URLs, checked on the way in.

use crate::ParseError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Longest destination URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// An absolute `http`/`https` URL with a host and no credentials.
///
/// Whether plain `http` is allowed is a server setting, checked by the API with
/// [`EndpointUrl::is_https`].
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointUrl(url::Url);

impl EndpointUrl {
    /// Parses and validates a destination URL.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.len() > MAX_URL_LEN {
            return Err(ParseError::new(format!(
                "a URL has at most {MAX_URL_LEN} characters"
            )));
        }
        let u = url::Url::parse(s)
            .map_err(|e| ParseError::new(format!("`{s}` is not a valid URL: {e}")))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(ParseError::new(format!(
                "URL scheme must be https or http, not `{}`",
                u.scheme()
            )));
        }
        if u.host_str().is_none_or(str::is_empty) {
            return Err(ParseError::new("URL must have a host"));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(ParseError::new(
                "URL must not carry credentials; use `auth` instead",
            ));
        }
        if u.fragment().is_some() {
            return Err(ParseError::new("URL must not have a fragment"));
        }
        // The stored form is the normalised one (percent-encoded, punycode host),
        // which can be longer than what was sent; it must fit as well, or the URL
        // would be accepted and then refused when read back.
        if u.as_str().len() > MAX_URL_LEN {
            return Err(ParseError::new(format!(
                "a URL has at most {MAX_URL_LEN} characters once percent-encoded \
                 (this one has {})",
                u.as_str().len()
            )));
        }
        Ok(Self(u))
    }

    /// Whether the scheme is https.
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    /// The parsed URL.
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl fmt::Debug for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl Serialize for EndpointUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for EndpointUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_urls_and_refuses_the_rest() {
        assert!(EndpointUrl::parse("https://example.com/hook?x=1")
            .unwrap()
            .is_https());
        assert!(!EndpointUrl::parse("http://127.0.0.1:9/hook")
            .unwrap()
            .is_https());
        for bad in [
            "ftp://x.com",
            "https://user:pw@x.com",
            "not a url",
            "https://x.com/#frag",
            "file:///etc/passwd",
        ] {
            assert!(EndpointUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(EndpointUrl::parse(&format!("https://x.com/{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn a_url_that_grows_past_the_limit_when_encoded_is_refused_and_every_accepted_one_reads_back() {
        // 700 `<` are 700 characters sent but 2100 once percent-encoded.
        let grows = format!("https://x.com/{}", "<".repeat(700));
        assert!(grows.len() <= MAX_URL_LEN);
        let err = EndpointUrl::parse(&grows).unwrap_err();
        assert!(err.to_string().contains("percent-encoded"), "{err}");
        // Whatever is accepted parses again from its stored form.
        let fits = format!("https://x.com/{}", "<".repeat(600));
        let u = EndpointUrl::parse(&fits).unwrap();
        assert!(u.as_str().len() <= MAX_URL_LEN);
        assert_eq!(EndpointUrl::parse(u.as_str()).unwrap(), u);
    }
}
