//! The webhook sender against a real HTTP listener on loopback: down, then
//! failing, then back.

use std::time::Duration;

use distans_notifier::{Metrics, Sender};
use distans_runtime::Health;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Serves POSTs: answers `statuses` in turn (then 200), and passes each body on.
async fn webhook(listener: TcpListener, mut statuses: Vec<u16>, bodies: mpsc::UnboundedSender<String>) {
    statuses.reverse();
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { return };
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        let body = loop {
            let Ok(n) = stream.read(&mut buffer).await else { break None };
            if n == 0 {
                break None;
            }
            request.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    break Some(body.to_string());
                }
            }
        };
        let status = statuses.pop().unwrap_or(200);
        let response = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        let _ = stream.write_all(response.as_bytes()).await;
        if let (Some(body), 200) = (body, status) {
            let _ = bodies.send(body);
        }
    }
}

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
