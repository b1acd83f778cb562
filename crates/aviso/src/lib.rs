//! The `aviso` binary's library half: configuration and the server's wiring,
//! so integration tests can start a real server in-process.

pub mod bench;
pub mod cli;
pub mod config;
pub mod retention;
pub mod server;
pub mod signals;
pub mod tasks;
pub mod telemetry;
