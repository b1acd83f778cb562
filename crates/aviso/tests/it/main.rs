//! Integration tests: the real HTTP API, a real receiver on a loopback port.

mod api;
mod bench;
mod crash;
mod delivery;
mod support;
