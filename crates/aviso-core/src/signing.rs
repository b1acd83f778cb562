//! Standard Webhooks signing: `whsec_` secrets and `v1,<base64 HMAC-SHA256>` signatures.

use crate::ParseError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;
use std::fmt;

/// A per-endpoint signing secret: `whsec_` + base64 of 24 to 64 random bytes.
#[derive(Clone)]
pub struct SigningSecret {
    key: Vec<u8>,
    /// HMAC-SHA256 with the key already absorbed: each signature starts
    /// from a copy instead of hashing the padded key twice again.
    keyed: Hmac<Sha256>,
}

impl PartialEq for SigningSecret {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for SigningSecret {}

impl SigningSecret {
    fn from_key(key: Vec<u8>) -> Self {
        let keyed = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC accepts any key length");
        Self { key, keyed }
    }

    /// A fresh secret of 32 random bytes.
    pub fn generate() -> Self {
        let mut key = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Self::from_key(key)
    }

    /// Parses `whsec_<base64>`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::new("a secret is `whsec_` followed by base64 of 24 to 64 bytes");
        let b = s.strip_prefix("whsec_").ok_or_else(bad)?;
        let key = B64.decode(b).map_err(|_| bad())?;
        if !(24..=64).contains(&key.len()) {
            return Err(bad());
        }
        Ok(Self::from_key(key))
    }

    /// The `whsec_…` text form.
    pub fn expose(&self) -> String {
        format!("whsec_{}", B64.encode(&self.key))
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut out = String::with_capacity(SIGNATURE_LEN);
        self.sign_into(msg_id, timestamp, body, &mut out);
        out
    }

    /// Appends [`SigningSecret::sign`]'s value to `out` (one buffer for the
    /// whole header: it is made for every attempt).
    fn sign_into(&self, msg_id: &str, timestamp: i64, body: &[u8], out: &mut String) {
        let mut mac = self.keyed.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(itoa::Buffer::new().format(timestamp).as_bytes());
        mac.update(b".");
        mac.update(body);
        out.push_str("v1,");
        B64.encode_string(mac.finalize().into_bytes(), out);
    }
}

/// `v1,` and the base64 of a 32-byte HMAC.
const SIGNATURE_LEN: usize = 3 + 44;

/// The `webhook-signature` value: one `v1,…` per active secret, space separated.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a SigningSecret>,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut out = String::with_capacity(SIGNATURE_LEN);
    for (i, secret) in secrets.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        secret.sign_into(msg_id, timestamp, body, &mut out);
    }
    out
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("whsec_********")
    }
}

impl Serialize for SigningSecret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.expose())
    }
}

impl<'de> Deserialize<'de> for SigningSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // Test vector from the Standard Webhooks specification's reference libraries.
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    /// During a rotation the header carries one signature per secret, in
    /// order, space separated; with one secret, just its signature.
    #[test]
    fn the_header_joins_one_signature_per_secret() {
        let (old, new) = (SigningSecret::generate(), SigningSecret::generate());
        let (id, ts, body) = ("evt_1", 1_700_000_000, br#"{"a":1}"#.as_slice());
        assert_eq!(
            signature_header([&new, &old], id, ts, body),
            format!("{} {}", new.sign(id, ts, body), old.sign(id, ts, body))
        );
        let one = signature_header([&new], id, ts, body);
        assert_eq!(one, new.sign(id, ts, body));
        assert_eq!(one.len(), SIGNATURE_LEN);
    }

    #[test]
    fn generated_secrets_round_trip() {
        let s = SigningSecret::generate();
        assert_eq!(SigningSecret::parse(&s.expose()).unwrap(), s);
        assert!(SigningSecret::parse("whsec_c2hvcnQ=").is_err());
        assert!(!format!("{s:?}").contains(&s.expose()[6..]));
    }
}
