//! Dispatcher and sender settings.

use std::net::IpAddr;
use std::time::Duration;

/// Settings of the dispatcher loop.
#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    /// This node's name, written as the claim owner (`locked_by`).
    pub node_id: String,
    /// Capacity of the fast-path ready queue.
    pub ready_queue: usize,
    /// Most jobs waiting in one endpoint's lane before its claims are released.
    pub lane_queue: usize,
    /// Most retries held in this node's timer heap.
    pub timer_capacity: usize,
    /// How often the store is scanned for due work.
    pub scan_interval: Duration,
    /// Most deliveries claimed per scan.
    pub scan_batch: usize,
    /// How long in-flight sends may run on after shutdown begins.
    pub shutdown_grace: Duration,
    /// Most outcomes written in one store call.
    pub outcome_batch: usize,
    /// While an endpoint's circuit is open, one probe goes out per this interval.
    pub circuit_probe_interval: Duration,
    /// A 410 Gone answer disables the endpoint (it always stops that delivery's retries).
    pub disable_on_gone: bool,
    /// HTTP sender settings.
    pub sender: SenderConfig,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            node_id: "aviso".into(),
            ready_queue: 10_000,
            lane_queue: 1_000,
            timer_capacity: 100_000,
            scan_interval: Duration::from_secs(1),
            scan_batch: 1_000,
            shutdown_grace: Duration::from_secs(10),
            outcome_batch: 512,
            circuit_probe_interval: Duration::from_secs(10),
            disable_on_gone: false,
            sender: SenderConfig::default(),
        }
    }
}

/// Settings of the HTTP sender.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    /// Allow plain `http` destinations.
    pub allow_http: bool,
    /// Allow private, loopback, link-local and metadata addresses (dev and tests).
    pub allow_private_destinations: bool,
    /// Most response body bytes kept per attempt.
    pub response_snippet_bytes: usize,
    /// The `User-Agent` of every request.
    pub user_agent: String,
    /// Outbound proxy for every request (`http://`, `https://` or `socks5://` URL).
    pub proxy: Option<String>,
    /// Local address outgoing connections bind to.
    pub bind_address: Option<IpAddr>,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            allow_http: false,
            allow_private_destinations: false,
            response_snippet_bytes: 4096,
            user_agent: concat!("Aviso/", env!("CARGO_PKG_VERSION")).into(),
            proxy: None,
            bind_address: None,
        }
    }
}
