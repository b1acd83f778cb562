//! Fixed egress: the outbound proxy and the bind address, against real
//! loopback servers.

mod common;

use aviso_core::model::AttemptError;
use aviso_core::policy::DeliveryPolicy;
use aviso_dispatch::{Sender, SenderConfig};
use common::{endpoint, job, Receiver};
use std::net::IpAddr;

#[tokio::test]
async fn deliveries_go_through_the_configured_proxy() {
    let proxy = Receiver::start().await;
    let sender = Sender::new(SenderConfig {
        allow_http: true,
        allow_private_destinations: true,
        proxy: Some(format!("http://{}", proxy.addr)),
        ..SenderConfig::default()
    })
    .unwrap();
    // Nothing listens at the destination: only the proxy can answer.
    let ep = endpoint("http://127.0.0.1:9/hooks/in", DeliveryPolicy::default());
    let attempt = sender.send(&ep, &job(&ep, "{}")).await;
    assert_eq!(attempt.status_code, Some(200), "{:?}", attempt.error_detail);
    let got = proxy.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].uri, "http://127.0.0.1:9/hooks/in", "a proxy request");
}

#[tokio::test]
async fn behind_a_proxy_names_of_private_addresses_are_still_refused() {
    let proxy = Receiver::start().await;
    let sender = Sender::new(SenderConfig {
        allow_http: true,
        proxy: Some(format!("http://{}", proxy.addr)),
        ..SenderConfig::default()
    })
    .unwrap();
    for url in ["http://localhost:9/in", "http://10.0.0.1/in"] {
        let ep = endpoint(url, DeliveryPolicy::default());
        let attempt = sender.send(&ep, &job(&ep, "{}")).await;
        assert_eq!(attempt.error, Some(AttemptError::Blocked), "{url}");
    }
    assert_eq!(proxy.count(), 0, "nothing reached the proxy");
}

#[tokio::test]
async fn connections_leave_from_the_bind_address() {
    let rx = Receiver::start().await;
    let from: IpAddr = "127.0.0.2".parse().unwrap();
    let sender = Sender::new(SenderConfig {
        allow_http: true,
        allow_private_destinations: true,
        bind_address: Some(from),
        ..SenderConfig::default()
    })
    .unwrap();
    let ep = endpoint(&rx.url("/"), DeliveryPolicy::default());
    let attempt = sender.send(&ep, &job(&ep, "{}")).await;
    assert_eq!(attempt.status_code, Some(200), "{:?}", attempt.error_detail);
    assert_eq!(rx.requests()[0].peer.ip(), from);
}

#[tokio::test]
async fn a_proxy_with_an_internal_name_is_reachable_when_private_destinations_are_not() {
    let proxy = Receiver::start().await;
    let sender = Sender::new(SenderConfig {
        allow_http: true,
        proxy: Some(format!("http://localhost:{}", proxy.addr.port())),
        ..SenderConfig::default()
    })
    .unwrap();
    let ep = endpoint("http://1.1.1.1/in", DeliveryPolicy::default());
    let attempt = sender.send(&ep, &job(&ep, "{}")).await;
    assert_eq!(attempt.status_code, Some(200), "{:?}", attempt.error_detail);
    assert_eq!(proxy.requests()[0].uri, "http://1.1.1.1/in");
}
