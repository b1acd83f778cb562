//! Aviso's dispatcher: takes claimed deliveries (fast path and store scan),
//! spreads them over per-endpoint lanes, sends them over HTTP and writes each
//! attempt's outcome back to the store.

mod actor;
mod config;
mod decision;
mod dispatcher;
mod guard;
mod health;
mod lanes;
mod outcomes;
mod pool;
mod rate;
mod sender;
mod telemetry;
mod timers;

pub use config::{DispatcherConfig, SenderConfig};
pub use dispatcher::{DispatchHandle, Dispatcher};
pub use guard::is_forbidden;
pub use sender::{Sender, Target};
