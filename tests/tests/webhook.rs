//! The webhook sender against a real HTTP listener on loopback: down, then
//! failing, then back; a message refused for good; a 429's and a 503's `Retry-After`;
//! messages paced to the webhook's rate.

use std::time::Duration;

use distans_e2e::{webhook, webhook_timed};
use distans_notifier::{Delivery, Metrics, Pacer, Sender};
use distans_runtime::Health;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A sender to a webhook on loopback that answers `statuses` in turn, then
/// 200; its metrics; and the bodies the webhook received.
async fn sender_to_webhook(statuses: Vec<u16>, health: Health) -> (Sender, Metrics, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(webhook(listener, statuses, tx));
    let metrics = Metrics::default();
    let sender = Sender::new(&format!("http://127.0.0.1:{port}/hook"), metrics.clone(), health).expect("client");
    (sender, metrics, rx)
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
    assert_eq!(result.expect("task").ok(), Some(Delivery::Accepted));
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

#[tokio::test]
async fn a_message_refused_for_good_is_counted_not_retried_and_the_next_one_goes() {
    let health = Health::default();
    health.set_ready();
    let (sender, metrics, mut rx) = sender_to_webhook(vec![400], health.clone()).await;
    let stop = CancellationToken::new();

    let refused = tokio::time::timeout(Duration::from_secs(10), sender.send(&json!({"n": 1}), &stop))
        .await
        .expect("answered without retrying");
    assert!(matches!(&refused, Ok(Delivery::Refused(r)) if r.status.as_u16() == 400), "{refused:?}");
    assert_eq!((metrics.webhook_refused.get(), metrics.webhook_failures.get()), (1, 0), "counted once, no retry");
    assert!(!health.is_ready(), "not ready after a refusal");
    assert!(rx.try_recv().is_err(), "nothing delivered");

    let next = sender.send(&json!({"n": 2}), &stop).await;
    assert_eq!(next.ok(), Some(Delivery::Accepted));
    assert!(health.is_ready(), "ready again once the webhook accepts");
    let received = rx.recv().await.expect("the next message");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&received).expect("json"), json!({"n": 2}));
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_it_asks_for() {
    let (sender, metrics, mut rx) = sender_to_webhook(vec![429], Health::default()).await;
    let started = tokio::time::Instant::now();
    let result = sender.send(&json!({"n": 1}), &CancellationToken::new()).await;
    assert_eq!(result.ok(), Some(Delivery::Accepted));
    // The backoff alone would have waited at most 200 ms; the webhook said 2 s.
    assert!(started.elapsed() >= Duration::from_secs(2), "retried after {:?}", started.elapsed());
    assert_eq!((metrics.webhook_failures.get(), metrics.webhook_refused.get()), (1, 0));
    assert!(rx.recv().await.is_some(), "delivered");
}

#[tokio::test]
async fn a_503_is_retried_after_the_wait_it_asks_for() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, mut rx) = mpsc::unbounded_channel();
    // 503 with `Retry-After: 2` (the test webhook adds it to 429 and 503).
    tokio::spawn(webhook(listener, vec![503], tx));
    let metrics = Metrics::default();
    let sender =
        Sender::new(&format!("http://127.0.0.1:{port}/hook"), metrics.clone(), Health::default()).expect("client");
    let started = tokio::time::Instant::now();
    let result = sender.send(&json!({"n": 1}), &CancellationToken::new()).await;
    assert_eq!(result.ok(), Some(Delivery::Accepted));
    assert!(started.elapsed() >= Duration::from_secs(2), "retried after {:?}", started.elapsed());
    assert_eq!((metrics.webhook_failures.get(), metrics.webhook_refused.get()), (1, 0), "transient, not refused");
    assert!(rx.recv().await.is_some(), "delivered");
    assert!(rx.try_recv().is_err(), "once");
}

/// The burst: 125 messages in 1.6 s to a Slack webhook that allows
/// one a second. Paced at 5 a second, six messages sent at once by clones
/// of one sender arrive at least 200 ms apart (a little less allowed for
/// the loopback's jitter between the call's start and its arrival).
#[tokio::test]
async fn messages_arrive_no_faster_than_the_pace() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(webhook_timed(listener, vec![], tx));
    let pacer = Pacer::per_second(5.0).expect("a rate");
    let sender = Sender::new(&format!("http://127.0.0.1:{port}/hook"), Metrics::default(), Health::default())
        .expect("client")
        .paced(pacer);
    let stop = CancellationToken::new();
    let sends: Vec<_> = (0..6)
        .map(|n| {
            let (sender, stop) = (sender.clone(), stop.clone());
            tokio::spawn(async move { sender.send(&json!({"n": n}), &stop).await })
        })
        .collect();
    for send in sends {
        assert_eq!(send.await.expect("task").ok(), Some(Delivery::Accepted));
    }
    let mut arrivals = Vec::new();
    while let Ok((at, _)) = rx.try_recv() {
        arrivals.push(at);
    }
    assert_eq!(arrivals.len(), 6, "all delivered");
    arrivals.sort_unstable();
    let gaps: Vec<u128> = arrivals.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
    assert!(gaps.iter().all(|&gap| gap >= 180), "at most 5 a second: gaps {gaps:?} ms");
    let span = (arrivals[5] - arrivals[0]).as_millis();
    assert!(span >= 5 * 200 - 20, "six messages span at least five spacings: {span} ms");
}
