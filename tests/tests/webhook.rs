//! The webhook sender against a real HTTP listener on loopback: down, then
//! failing, then back.

use std::time::Duration;

use distans_e2e::webhook;
use distans_notifier::{Metrics, Sender};
use distans_runtime::Health;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_message_waits_while_the_webhook_is_down_and_arrives_when_it_is_back() {
    // A port nobody listens on yet: the webhook is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let metrics = Metrics::default();
    let sender =
        Sender::new(&format!("http://127.0.0.1:{port}/hook"), metrics.clone(), Health::default()).expect("client");
    let stop = CancellationToken::new();
    let body = json!({"kind": "digest", "findings": 3});
    let sending = tokio::spawn({
        let (sender, body, stop) = (sender.clone(), body.clone(), stop.clone());
        async move { sender.send(&body, &stop).await }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!sending.is_finished(), "nothing accepted it yet");
    assert!(metrics.webhook_failures.get() >= 2, "retried: {}", metrics.webhook_failures.get());

    // The webhook comes back, first failing once with 503, then accepting.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("rebind the port");
    tokio::spawn(webhook(listener, vec![503], tx));
    let result = tokio::time::timeout(Duration::from_secs(20), sending).await.expect("delivered in time");
    assert!(result.expect("task").is_ok());
    let received = rx.recv().await.expect("a body");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&received).expect("json"), body);
    assert!(rx.try_recv().is_err(), "delivered once");
}

#[tokio::test]
async fn stopping_abandons_a_message_without_claiming_it_was_sent() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let sender =
        Sender::new(&format!("http://127.0.0.1:{port}/"), Metrics::default(), Health::default()).expect("client");
    let stop = CancellationToken::new();
    let sending = tokio::spawn({
        let stop = stop.clone();
        async move { sender.send(&json!({}), &stop).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    assert!(sending.await.expect("task").is_err());
}
