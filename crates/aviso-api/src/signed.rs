//! Short signed tokens for the web pages: portal links, portal and admin
//! sessions, and the CSRF tokens of their forms. A token is
//! `<fields joined by '.'>.<base64url HMAC-SHA256>`, the MAC taken over a
//! purpose label and the fields, so a token made for one purpose is refused
//! for every other.

use aviso_core::Timestamp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;

/// What a token was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// `POST /v1/tenants/{t}/portal-link`: enter the portal as one tenant.
    PortalLink,
    /// The portal's session cookie.
    PortalSession,
    /// The admin console's session cookie.
    AdminSession,
    /// A form's CSRF token, bound to one session token.
    Csrf,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Self::PortalLink => "aviso/portal-link/v1",
            Self::PortalSession => "aviso/portal-session/v1",
            Self::AdminSession => "aviso/admin-session/v1",
            Self::Csrf => "aviso/csrf/v1",
        }
    }
}

/// Why a token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a token of this server and purpose (or altered).
    Invalid,
    /// Past its expiry.
    Expired,
}

/// The server's signing key for web tokens.
#[derive(Clone)]
pub struct Signer([u8; 32]);

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer(…)")
    }
}

impl Signer {
    /// A key derived from a configured secret (any length).
    pub fn from_secret(secret: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"aviso web token key\0");
        h.update(secret.as_bytes());
        Self(h.finalize().into())
    }

    /// A random key: tokens end with this process.
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        Self(k)
    }

    fn mac(&self, purpose: Purpose, fields: &[&str]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(purpose.label().as_bytes());
        for f in fields {
            mac.update(b"\0");
            mac.update(f.as_bytes());
        }
        B64.encode(mac.finalize().into_bytes())
    }

    /// A token carrying `subject` (no '.') until `expires`.
    pub fn issue(&self, purpose: Purpose, subject: &str, expires: Timestamp) -> String {
        let mut nonce = [0u8; 9];
        rand::thread_rng().fill_bytes(&mut nonce);
        let exp = expires.unix_seconds().to_string();
        let nonce = B64.encode(nonce);
        let mac = self.mac(purpose, &[subject, &exp, &nonce]);
        format!("{subject}.{exp}.{nonce}.{mac}")
    }

    /// The subject of a valid, unexpired token of `purpose`.
    pub fn verify(&self, purpose: Purpose, token: &str, now: Timestamp) -> Result<String, Refused> {
        let mut parts = token.split('.');
        let (Some(subject), Some(exp), Some(nonce), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(Refused::Invalid);
        };
        let want = self.mac(purpose, &[subject, exp, nonce]);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            want.as_bytes(),
            mac.as_bytes(),
        )) {
            return Err(Refused::Invalid);
        }
        let exp: i64 = exp.parse().map_err(|_| Refused::Invalid)?;
        if now.unix_seconds() >= exp {
            return Err(Refused::Expired);
        }
        Ok(subject.to_owned())
    }

    /// The CSRF token of the session `session` (stable for that session).
    pub fn csrf(&self, session: &str) -> String {
        self.mac(Purpose::Csrf, &[session])
    }

    /// Whether `token` is the CSRF token of `session`.
    pub fn csrf_ok(&self, session: &str, token: &str) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            self.csrf(session).as_bytes(),
            token.as_bytes(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tokens_hold_their_subject_until_they_expire() {
        let s = Signer::from_secret("s3cret");
        let now = Timestamp::now();
        let t = s.issue(
            Purpose::PortalLink,
            "ten_1",
            now.plus(Duration::from_secs(60)),
        );
        assert_eq!(s.verify(Purpose::PortalLink, &t, now), Ok("ten_1".into()));
        assert_eq!(
            s.verify(Purpose::PortalLink, &t, now.plus(Duration::from_secs(61))),
            Err(Refused::Expired)
        );
    }

    #[test]
    fn altered_foreign_or_misused_tokens_are_refused() {
        let s = Signer::from_secret("s3cret");
        let now = Timestamp::now();
        let t = s.issue(
            Purpose::PortalLink,
            "ten_1",
            now.plus(Duration::from_secs(60)),
        );
        let other = t.replacen("ten_1", "ten_2", 1);
        assert_eq!(
            s.verify(Purpose::PortalLink, &other, now),
            Err(Refused::Invalid)
        );
        assert_eq!(
            s.verify(Purpose::PortalSession, &t, now),
            Err(Refused::Invalid)
        );
        let foreign = Signer::from_secret("other");
        assert_eq!(
            foreign.verify(Purpose::PortalLink, &t, now),
            Err(Refused::Invalid)
        );
        let later = t.replacen(
            &format!(".{}.", now.plus(Duration::from_secs(60)).unix_seconds()),
            &format!(".{}.", now.plus(Duration::from_secs(6000)).unix_seconds()),
            1,
        );
        assert_eq!(
            s.verify(Purpose::PortalLink, &later, now),
            Err(Refused::Invalid)
        );
        assert!(s.csrf_ok("sess", &s.csrf("sess")));
        assert!(!s.csrf_ok("sess2", &s.csrf("sess")));
    }
}
