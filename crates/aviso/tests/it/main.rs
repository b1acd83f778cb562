//! Integration tests: the real HTTP API, a real receiver on a loopback port.

mod api;
mod bench;
mod cli;
mod cluster;
mod contracts;
mod crash;
mod delivery;
mod failures;
mod multinode;
mod observability;
mod openapi;
mod operations;
mod partners;
mod policies;
mod polling;
mod portal;
mod retention;
mod support;
mod tasks;
