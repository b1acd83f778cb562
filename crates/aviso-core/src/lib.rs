//! Aviso's domain: ids, names, delivery policies, receiver auth, filters and
//! signing. Everything here is pure (no IO) so every other crate can share it.

pub mod auth;
pub mod duration;
pub mod filter;
pub mod flow;
pub mod id;
pub mod model;
pub mod name;
pub mod ops;
pub mod policy;
pub mod signing;
mod text;
pub mod time;
pub mod url;

pub use duration::Dur;
pub use id::*;
pub use time::Timestamp;

/// A value that failed to parse at the boundary; the message says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl ParseError {
    /// Builds an error from anything printable.
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}
