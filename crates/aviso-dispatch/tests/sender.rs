//! The HTTP sender against a real receiver on a loopback port.

mod common;

use aviso_core::auth::{HeaderName, HeaderValue, ReceiverAuth};
use aviso_core::model::{AttemptError, Endpoint};
use aviso_core::policy::{DeliveryPolicy, SuccessCodes, Timeout};
use aviso_core::Dur;
use aviso_dispatch::{Sender, SenderConfig};
use common::{endpoint, job, Receiver};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn open_sender() -> Sender {
    Sender::new(SenderConfig {
        allow_http: true,
        allow_private_destinations: true,
        user_agent: "Aviso-test/1".into(),
        ..SenderConfig::default()
    })
    .unwrap()
}

fn guarded_sender() -> Sender {
    Sender::new(SenderConfig {
        allow_http: true,
        ..SenderConfig::default()
    })
    .unwrap()
}

fn header<'a>(r: &'a common::Received, name: &str) -> &'a str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("missing {name}"))
        .to_str()
        .unwrap()
}

/// An endpoint at `rx`'s `/hook` with bearer auth `t0ken` and `X-Env: prod`.
fn authed_endpoint(rx: &Receiver) -> Endpoint {
    let mut ep = endpoint(&rx.url("/hook"), DeliveryPolicy::default());
    ep.spec.auth = ReceiverAuth::Bearer {
        token: HeaderValue::parse("t0ken").unwrap(),
    };
    ep.spec.headers.0.insert(
        HeaderName::parse("X-Env").unwrap(),
        HeaderValue::parse("prod").unwrap(),
    );
    ep
}

#[tokio::test]
async fn sends_the_exact_body_signed_with_auth_and_extra_headers() {
    let rx = Receiver::start().await;
    let ep = authed_endpoint(&rx);
    let payload = "{\"a\": 1,   \"name\":\"Jos\u{e9}\" }";
    let j = job(&ep, payload);

    let attempt = open_sender().send(&ep, &j).await;

    assert_eq!((attempt.status_code, attempt.error), (Some(200), None));
    assert_eq!(attempt.delivery, j.delivery);
    assert_eq!(attempt.response_snippet.as_deref(), Some("ok"));
    assert!(attempt
        .response_headers
        .iter()
        .any(|(k, _)| k == "content-length"));
    let got = rx.requests().pop().unwrap();
    assert_eq!(got.body.as_ref(), payload.as_bytes());
    assert_eq!(header(&got, "content-type"), "application/json");
    assert_eq!(header(&got, "user-agent"), "Aviso-test/1");
    assert_eq!(header(&got, "webhook-id"), j.event.as_str());
    assert_eq!(header(&got, "authorization"), "Bearer t0ken");
    assert_eq!(header(&got, "x-env"), "prod");
    let ts: i64 = header(&got, "webhook-timestamp").parse().unwrap();
    assert!((ts - aviso_core::Timestamp::now().unix_seconds()).abs() < 60);
    let wh = standardwebhooks::Webhook::new(&ep.secrets.current.expose()).unwrap();
    wh.verify(&got.body, &got.headers)
        .expect("signature verifies");
}

#[tokio::test]
async fn basic_and_header_auth_arrive() {
    let rx = Receiver::start().await;
    let mut ep = endpoint(&rx.url("/"), DeliveryPolicy::default());
    let sender = open_sender();
    ep.spec.auth = ReceiverAuth::Basic {
        username: HeaderValue::parse("u").unwrap(),
        password: HeaderValue::parse("p").unwrap(),
    };
    sender.send(&ep, &job(&ep, "{}")).await;
    ep.spec.auth = ReceiverAuth::Header {
        name: HeaderName::parse("X-Api-Key").unwrap(),
        value: HeaderValue::parse("k1").unwrap(),
    };
    sender.send(&ep, &job(&ep, "{}")).await;
    let got = rx.requests();
    assert_eq!(header(&got[0], "authorization"), "Basic dTpw");
    assert_eq!(header(&got[1], "x-api-key"), "k1");
    assert!(got[1].headers.get("authorization").is_none());
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let rx = Receiver::start().await;
    let ep = endpoint(&rx.url("/redirect"), DeliveryPolicy::default());
    let attempt = open_sender().send(&ep, &job(&ep, "{}")).await;
    assert_eq!(
        (attempt.status_code, attempt.error),
        (Some(302), Some(AttemptError::Status))
    );
    assert!(attempt
        .response_headers
        .iter()
        .any(|(k, v)| k == "location" && v == "/landed"));
    assert_eq!(rx.count(), 1, "the redirect target was not requested");
}

#[tokio::test]
async fn only_listed_statuses_count_as_success() {
    let rx = Receiver::start().await;
    rx.answer_always(202);
    let sender = open_sender();
    for (codes, error) in [("201", Some(AttemptError::Status)), ("200,202", None)] {
        let success = SuccessCodes::parse(codes).unwrap();
        let ep = endpoint(
            &rx.url("/"),
            DeliveryPolicy {
                success,
                ..DeliveryPolicy::default()
            },
        );
        let attempt = sender.send(&ep, &job(&ep, "{}")).await;
        assert_eq!(
            (attempt.status_code, attempt.error),
            (Some(202), error),
            "{codes}"
        );
    }
}

#[tokio::test]
async fn a_slow_receiver_times_out() {
    let rx = Receiver::start().await;
    let policy = DeliveryPolicy {
        timeout: Timeout(Dur(Duration::from_millis(300))),
        ..DeliveryPolicy::default()
    };
    let ep = endpoint(&rx.url("/slow"), policy);
    let attempt = open_sender().send(&ep, &job(&ep, "{}")).await;
    assert_eq!(
        attempt.error,
        Some(AttemptError::Timeout),
        "{:?}",
        attempt.error_detail
    );
    assert!(attempt.duration_ms < 3_000);
}

/// A receiver that answers its status and then stalls in the middle of the
/// body: the status counts, the snippet keeps what arrived, and the attempt
/// ends at its timeout rather than waiting for the rest.
#[tokio::test]
async fn a_body_stalled_past_the_timeout_keeps_the_status_and_what_arrived() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let _ = sock.read(&mut buf).await;
        sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let policy = DeliveryPolicy {
        timeout: Timeout(Dur(Duration::from_millis(500))),
        ..DeliveryPolicy::default()
    };
    let ep = endpoint(&format!("http://{addr}/"), policy);
    let attempt = open_sender().send(&ep, &job(&ep, "{}")).await;
    assert_eq!(attempt.status_code, Some(200));
    assert_eq!(attempt.error, None, "{:?}", attempt.error_detail);
    assert_eq!(attempt.response_snippet.as_deref(), Some("partial"));
    assert!(attempt.duration_ms < 5_000, "{}", attempt.duration_ms);
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let ep = endpoint(&format!("http://{addr}/"), DeliveryPolicy::default());
    let attempt = open_sender().send(&ep, &job(&ep, "{}")).await;
    assert_eq!(
        attempt.error,
        Some(AttemptError::Connect),
        "{:?}",
        attempt.error_detail
    );
    assert!(attempt.status_code.is_none() && attempt.error_detail.is_some());
}

#[tokio::test]
async fn an_unknown_name_is_a_dns_error() {
    let ep = endpoint("http://no-such-host.invalid/", DeliveryPolicy::default());
    let attempt = open_sender().send(&ep, &job(&ep, "{}")).await;
    assert_eq!(
        attempt.error,
        Some(AttemptError::Dns),
        "{:?}",
        attempt.error_detail
    );
}

#[tokio::test]
async fn the_response_snippet_is_capped() {
    let rx = Receiver::start().await;
    let ep = endpoint(&rx.url("/big"), DeliveryPolicy::default());
    let sender = Sender::new(SenderConfig {
        allow_http: true,
        allow_private_destinations: true,
        response_snippet_bytes: 100,
        ..SenderConfig::default()
    })
    .unwrap();
    let attempt = sender.send(&ep, &job(&ep, "{}")).await;
    assert_eq!(attempt.status_code, Some(200));
    assert_eq!(attempt.response_snippet.unwrap(), "a".repeat(100));
}

async fn assert_blocked(sender: &Sender, ep: &Endpoint, rx: &Receiver) {
    let attempt = sender.send(ep, &job(ep, "{}")).await;
    assert_eq!(
        attempt.error,
        Some(AttemptError::Blocked),
        "{}: {:?}",
        ep.spec.url,
        attempt.error_detail
    );
    assert!(attempt.status_code.is_none());
    assert_eq!(rx.count(), 0, "{} got a request", ep.spec.url);
}

#[tokio::test]
async fn private_destinations_are_blocked_without_sending() {
    let rx = Receiver::start().await;
    let port = rx.addr.port();
    let sender = guarded_sender();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://localhost:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/".to_owned(),
    ] {
        assert_blocked(&sender, &endpoint(&url, DeliveryPolicy::default()), &rx).await;
    }
}

#[tokio::test]
async fn plain_http_is_blocked_unless_allowed() {
    let rx = Receiver::start().await;
    let sender = Sender::new(SenderConfig {
        allow_private_destinations: true,
        ..SenderConfig::default()
    })
    .unwrap();
    assert_blocked(
        &sender,
        &endpoint(&rx.url("/"), DeliveryPolicy::default()),
        &rx,
    )
    .await;
}

#[tokio::test]
async fn a_failed_handshake_is_a_tls_error() {
    let rx = Receiver::start().await;
    let ep = endpoint(&format!("https://{}/", rx.addr), DeliveryPolicy::default());
    let attempt = open_sender().send(&ep, &job(&ep, "{}")).await;
    assert_eq!(
        attempt.error,
        Some(AttemptError::Tls),
        "{:?}",
        attempt.error_detail
    );
}

/// What preparing an endpoint once saves per attempt: 2,000 sends of one
/// job to a loopback receiver, with the endpoint prepared once
/// (`AVISO_SEND_COST=prepared`) or for every attempt (anything else). A
/// fixed amount of work, counted with `valgrind --tool=callgrind`:
/// `AVISO_SEND_COST=prepared valgrind --tool=callgrind <sender test binary> --ignored --test-threads 1 send_cost`
#[tokio::test(flavor = "current_thread")]
#[ignore = "a measurement, not a test"]
async fn send_cost() {
    let rx = Receiver::start().await;
    let ep = authed_endpoint(&rx);
    let j = job(
        &ep,
        r#"{"n": 1, "pad": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
    );
    let sender = open_sender();
    let prepared = std::env::var("AVISO_SEND_COST").is_ok_and(|v| v == "prepared");
    let target = sender.target(std::sync::Arc::new(ep.clone()));
    for _ in 0..2_000 {
        let attempt = if prepared {
            sender.send_to(&target, &j).await
        } else {
            sender.send(&ep, &j).await
        };
        assert_eq!(attempt.status_code, Some(200));
    }
    println!(
        "2,000 sends, endpoint prepared {}",
        if prepared { "once" } else { "per attempt" }
    );
}

/// A bare HTTP/1.1 receiver on a loopback port that counts the connections
/// it accepts, keeps each request's head, answers 200 `ok`, and closes a
/// connection (without saying so) after `answers_per_connection` answers.
struct Bare {
    url: String,
    connections: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Bare {
    /// A bare receiver, an endpoint at it and a sender that may reach it.
    async fn with_sender(answers_per_connection: usize) -> (Self, Endpoint, Sender) {
        let rx = Self::start(answers_per_connection).await;
        let ep = endpoint(&rx.url, DeliveryPolicy::default());
        (rx, ep, open_sender())
    }

    async fn start(answers_per_connection: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook?x=1", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (count, kept) = (connections.clone(), heads.clone());
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let kept = kept.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    for _ in 0..answers_per_connection {
                        let Some(head) = read_request(&mut sock, &mut buf).await else {
                            return;
                        };
                        kept.lock().unwrap().push(head);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        sock.write_all(answer).await.unwrap();
                    }
                });
            }
        });
        Self {
            url,
            connections,
            heads,
        }
    }
}

/// Reads one request (head and `content-length` body) from `sock`; its head.
async fn read_request(sock: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                buf.drain(..end + 4 + len);
                return Some(head);
            }
        }
        let mut chunk = [0u8; 4096];
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test]
async fn one_connection_carries_requests_one_after_another() {
    let (rx, ep, sender) = Bare::with_sender(usize::MAX).await;
    for _ in 0..5 {
        let attempt = sender.send(&ep, &job(&ep, "{}")).await;
        assert_eq!(attempt.status_code, Some(200), "{:?}", attempt.error_detail);
        assert_eq!(attempt.response_snippet.as_deref(), Some("ok"));
    }
    assert_eq!(rx.connections.load(Ordering::SeqCst), 1);
    let heads = rx.heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 5);
    let host = rx
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    for head in heads {
        assert!(head.starts_with("POST /hook?x=1 HTTP/1.1\r\n"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("\r\nhost: {host}\r\n")),
            "{head}"
        );
    }
}

#[tokio::test]
async fn a_connection_the_receiver_closed_is_replaced() {
    let (rx, ep, sender) = Bare::with_sender(1).await;
    for _ in 0..3 {
        let attempt = sender.send(&ep, &job(&ep, "{}")).await;
        assert_eq!(attempt.status_code, Some(200), "{:?}", attempt.error_detail);
    }
    assert_eq!(rx.connections.load(Ordering::SeqCst), 3);
    assert_eq!(rx.heads.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn concurrent_requests_each_take_a_connection_and_leave_it_for_the_next() {
    let (rx, ep, sender) = Bare::with_sender(usize::MAX).await;
    for _ in 0..3 {
        let sends = (0..4).map(|_| {
            let (sender, ep) = (sender.clone(), ep.clone());
            tokio::spawn(async move { sender.send(&ep, &job(&ep, "{}")).await })
        });
        for attempt in futures_join(sends).await {
            assert_eq!(attempt.status_code, Some(200), "{:?}", attempt.error_detail);
        }
    }
    assert_eq!(rx.heads.lock().unwrap().len(), 12);
    let opened = rx.connections.load(Ordering::SeqCst);
    assert!(
        (1..=4).contains(&opened),
        "{opened} connections for 4 at a time"
    );
}

async fn futures_join<T>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks.collect::<Vec<_>>() {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_kept_connection_closed_while_idle_is_not_used() {
    // The receiver answers once, then closes the connection only when told
    // (its keep-alive running out while the connection sits in the pool).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let mut buf = Vec::new();
        let (mut first, _) = listener.accept().await.unwrap();
        read_request(&mut first, &mut buf).await.unwrap();
        first.write_all(answer).await.unwrap();
        close_rx.await.unwrap();
        drop(first);
        closed_tx.send(()).unwrap();
        let (mut second, _) = listener.accept().await.unwrap();
        buf.clear();
        read_request(&mut second, &mut buf).await.unwrap();
        second.write_all(answer).await.unwrap();
    });
    let ep = endpoint(&url, DeliveryPolicy::default());
    let sender = open_sender();
    let first = sender.send(&ep, &job(&ep, "{}")).await;
    assert_eq!(first.status_code, Some(200), "{:?}", first.error_detail);
    close_tx.send(()).unwrap();
    closed_rx.await.unwrap();
    let second = sender.send(&ep, &job(&ep, "{}")).await;
    assert_eq!(second.status_code, Some(200), "{:?}", second.error_detail);
    server.await.unwrap();
}
