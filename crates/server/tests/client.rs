//! End to end through the Rust client (`hermod-client`) against the real
//! binary: every client method, so every route, with its answer checked
//! for content; every path of the served OpenAPI document called once;
//! and the error classes as `Error::code()` gives them. One server (with a
//! low `--max-message-bytes`) serves the whole file; each part names its
//! own resources.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::Server;
use futures_util::StreamExt;
use hermod_client::api::{
    AckRequest, BindingDef, CommitRequest, DeliveryMode, Event, ExchangeConfig, ExchangeKind,
    ExtendRequest, MessageIn, NackRequest, PartitionOffset, PollRequest, PublishRequest,
    QueueConfig, ReceiveRequest, RedriveRequest, SeekRequest, StartPosition, SubscriptionConfig,
    TopicConfig,
};
use hermod_client::{AckMode, Client, Error, EventsOptions, ReadOptions, Source};

/// The server's `--max-message-bytes`.
const MAX_MESSAGE_BYTES: usize = 1000;
/// Longest wait for something that should happen promptly.
const PROMPTLY: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_method_answers_as_documented() {
    let limit = MAX_MESSAGE_BYTES.to_string();
    let mut server = Server::start(&["--max-message-bytes", &limit]);
    let client = Client::new(&server.url()).unwrap();
    topics(&client).await;
    queues(&client).await;
    stream_subscriptions(&client).await;
    shared_subscriptions(&client).await;
    exchanges(&client).await;
    publishing(&client).await;
    operations(&client).await;
    events(&client).await;
    errors(&client).await;
    openapi_paths(&client, &server).await;
    server.stop();
}

#[tokio::test]
async fn no_server_listening_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = Client::new(&format!("127.0.0.1:{port}")).unwrap();
    let error = client.list_topics().await.unwrap_err();
    assert_eq!(error.code(), "unreachable", "{error}");
    assert_eq!(error.status(), None);
    let error = Client::new("ftp://x").unwrap_err();
    assert_eq!(error.code(), "invalid_url", "{error}");
}

/// The error of a call that must fail.
fn code<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    result.expect_err("the call should fail").code().to_owned()
}

fn text(value: &str) -> MessageIn {
    MessageIn::text(value)
}

fn batch(values: &[&str]) -> PublishRequest {
    PublishRequest {
        messages: values.iter().map(|v| text(v)).collect(),
        partition: None,
    }
}

fn one(message: MessageIn) -> PublishRequest {
    PublishRequest {
        messages: vec![message],
        partition: None,
    }
}

fn receive(max: usize, wait_ms: u64) -> ReceiveRequest {
    ReceiveRequest {
        max: Some(max),
        visibility_ms: None,
        wait_ms: Some(wait_ms),
    }
}

fn values(messages: &[hermod_client::api::MessageOut]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8(m.value_bytes()).unwrap())
        .collect()
}

async fn topics(client: &Client) {
    let config = TopicConfig {
        partitions: 2,
        dedup_window_ms: 60_000,
        ..TopicConfig::default()
    };
    let created = client.create_topic("c-topic", &config).await.unwrap();
    assert_eq!(created.name, "c-topic");
    assert_eq!(created.config, config);
    assert_eq!(created.partitions.len(), 2);
    assert_eq!(created.published, 0);
    // The same settings again: the same topic.
    let again = client.create_topic("c-topic", &config).await.unwrap();
    assert_eq!((again.name, again.config), (created.name, created.config));
    // Other settings: already_exists (409).
    let other = TopicConfig {
        partitions: 3,
        ..config.clone()
    };
    let error = client.create_topic("c-topic", &other).await.unwrap_err();
    assert_eq!(
        (error.code(), error.status()),
        ("already_exists", Some(409))
    );

    client
        .create_queue("c-not-a-topic", &QueueConfig::default())
        .await
        .unwrap();
    let list = client.list_topics().await.unwrap();
    let names: Vec<&str> = list.topics.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"c-topic"), "{names:?}");
    assert!(
        !names.contains(&"c-not-a-topic"),
        "queues are not topics: {names:?}"
    );

    let described = client.topic("c-topic").await.unwrap();
    assert_eq!(described.config, config);
    assert_eq!(
        described
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect::<Vec<_>>(),
        [0, 1]
    );
    client.delete_topic("c-topic").await.unwrap();
    assert_eq!(code(client.topic("c-topic").await), "not_found");
    client.delete_queue("c-not-a-topic").await.unwrap();
}

async fn queues(client: &Client) {
    let dlq = client
        .create_queue("c-dlq", &QueueConfig::default())
        .await
        .unwrap();
    assert_eq!((dlq.name.as_str(), dlq.depth), ("c-dlq", 0));
    let config = QueueConfig {
        max_deliveries: 1,
        dead_letter: Some("c-dlq".to_owned()),
        ..QueueConfig::default()
    };
    let src = client.create_queue("c-src", &config).await.unwrap();
    assert_eq!(src.config, config);
    let again = client.create_queue("c-src", &config).await.unwrap();
    assert_eq!(again.config, config);
    let other = QueueConfig {
        fifo: true,
        ..config.clone()
    };
    assert_eq!(
        code(client.create_queue("c-src", &other).await),
        "already_exists"
    );

    let list = client.list_queues().await.unwrap();
    let names: Vec<&str> = list.queues.iter().map(|q| q.name.as_str()).collect();
    assert!(
        names.contains(&"c-src") && names.contains(&"c-dlq"),
        "{names:?}"
    );

    // Delivered once and given back: dead-lettered (max_deliveries 1).
    let published = client
        .publish_queue("c-src", &batch(&["poison"]))
        .await
        .unwrap();
    assert_eq!(published.messages.len(), 1);
    let got = client
        .receive(Source::Queue("c-src"), &receive(1, 0))
        .await
        .unwrap();
    assert_eq!(values(&got.messages), ["poison"]);
    assert_eq!(got.messages[0].id, published.messages[0].id);
    let receipt = got.messages[0].receipt.clone().unwrap();
    let nacked = client
        .nack(
            Source::Queue("c-src"),
            &NackRequest {
                receipts: vec![receipt],
                delay_ms: 0,
            },
        )
        .await
        .unwrap();
    assert!(nacked.results[0].ok, "{nacked:?}");
    let dlq = client.queue("c-dlq").await.unwrap();
    assert_eq!(dlq.depth, 1, "{dlq:?}");
    let src = client.queue("c-src").await.unwrap();
    assert_eq!((src.depth, src.dead_lettered), (0, 1), "{src:?}");

    // Redrive moves it back to its source.
    let moved = client
        .redrive("c-dlq", &RedriveRequest { max: None })
        .await
        .unwrap();
    assert_eq!(moved.moved, 1);
    assert_eq!(client.queue("c-dlq").await.unwrap().depth, 0);
    let src = client.queue("c-src").await.unwrap();
    assert_eq!(src.depth, 1, "{src:?}");
    let back = client
        .receive(Source::Queue("c-src"), &receive(1, 0))
        .await
        .unwrap();
    assert_eq!(values(&back.messages), ["poison"]);

    // Depth counts every unfinished message, in flight too; purge drops all.
    client
        .publish_queue("c-src", &batch(&["a", "b"]))
        .await
        .unwrap();
    let src = client.queue("c-src").await.unwrap();
    assert_eq!((src.depth, src.in_flight), (3, 1), "{src:?}");
    let purged = client.purge(Source::Queue("c-src")).await.unwrap();
    assert_eq!(purged.purged, 3);
    let src = client.queue("c-src").await.unwrap();
    assert_eq!((src.depth, src.in_flight), (0, 0), "{src:?}");

    client.delete_queue("c-src").await.unwrap();
    assert_eq!(code(client.queue("c-src").await), "not_found");
}

async fn stream_subscriptions(client: &Client) {
    client
        .create_topic("c-log", &TopicConfig::default())
        .await
        .unwrap();
    let config = SubscriptionConfig {
        mode: DeliveryMode::Stream,
        start: StartPosition::Earliest,
        ..SubscriptionConfig::default()
    };
    let sub = client
        .create_subscription("c-log", "reader", &config)
        .await
        .unwrap();
    assert_eq!((sub.topic.as_str(), sub.name.as_str()), ("c-log", "reader"));
    assert_eq!(sub.config, config);
    let again = client
        .create_subscription("c-log", "reader", &config)
        .await
        .unwrap();
    assert_eq!(again.config, config);
    let shared = SubscriptionConfig::default();
    assert_eq!(
        code(client.create_subscription("c-log", "reader", &shared).await),
        "already_exists"
    );

    let mut request = batch(&["s0", "s1", "s2"]);
    request.partition = Some(0);
    let published = client.publish_topic("c-log", &request).await.unwrap();
    let offsets: Vec<u64> = published.messages.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, [0, 1, 2]);

    let poll = PollRequest {
        max: Some(2),
        max_bytes: None,
        wait_ms: Some(0),
    };
    let got = client.poll("c-log", "reader", &poll).await.unwrap();
    assert_eq!(values(&got.messages), ["s0", "s1"]);
    assert!(got.messages.iter().all(|m| m.receipt.is_none()));

    let committed = client
        .commit("c-log", "reader", &CommitRequest { offsets: None })
        .await
        .unwrap();
    let p = committed.partitions[0];
    assert_eq!(
        (p.partition, p.position, p.committed, p.log_end, p.lag),
        (0, 2, 2, 3, 1)
    );
    let offsets = client.offsets("c-log", "reader").await.unwrap();
    assert_eq!(offsets, committed);
    let explicit = CommitRequest {
        offsets: Some(vec![PartitionOffset {
            partition: 0,
            offset: 1,
        }]),
    };
    let committed = client.commit("c-log", "reader", &explicit).await.unwrap();
    assert_eq!(committed.partitions[0].committed, 1);

    let seeked = client
        .seek(
            "c-log",
            "reader",
            &SeekRequest {
                partition: 0,
                offset: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(seeked.partitions[0].position, 0);
    let got = client.poll("c-log", "reader", &poll).await.unwrap();
    assert_eq!(values(&got.messages), ["s0", "s1"]);
    assert_eq!(got.messages[0].offset, 0);

    // A stream subscription has no leases.
    let wrong = client
        .receive(
            Source::Subscription {
                topic: "c-log",
                subscription: "reader",
            },
            &receive(1, 0),
        )
        .await;
    assert_eq!(code(wrong), "wrong_mode");
}

async fn shared_subscriptions(client: &Client) {
    let config = SubscriptionConfig {
        start: StartPosition::Earliest,
        ..SubscriptionConfig::default()
    };
    let sub = client
        .create_subscription("c-log", "workers", &config)
        .await
        .unwrap();
    assert_eq!(sub.config.mode, DeliveryMode::Shared);
    let source = Source::Subscription {
        topic: "c-log",
        subscription: "workers",
    };

    let list = client.list_subscriptions("c-log").await.unwrap();
    let names: Vec<&str> = list.subscriptions.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["reader", "workers"]);
    let described = client.subscription("c-log", "workers").await.unwrap();
    assert_eq!(
        (described.depth, described.in_flight),
        (3, 0),
        "{described:?}"
    );

    let got = client.receive(source, &receive(10, 0)).await.unwrap();
    assert_eq!(values(&got.messages), ["s0", "s1", "s2"]);
    assert!(got.messages.iter().all(|m| m.delivery_count == Some(1)));
    let receipts: Vec<String> = got
        .messages
        .iter()
        .map(|m| m.receipt.clone().unwrap())
        .collect();

    // Per-receipt results, in the order given.
    let extend = ExtendRequest {
        receipts: vec![receipts[0].clone(), "not-a-receipt".to_owned()],
        visibility_ms: 60_000,
    };
    let extended = client.extend(source, &extend).await.unwrap();
    assert_eq!(extended.results.len(), 2);
    assert!(extended.results[0].ok, "{extended:?}");
    assert_eq!(extended.results[0].receipt, receipts[0]);
    assert!(!extended.results[1].ok);
    let error = extended.results[1].error.as_ref().unwrap();
    assert_eq!(error.code, "invalid_receipt", "{error:?}");

    let ack = AckRequest {
        receipts: vec![receipts[0].clone(), receipts[1].clone()],
    };
    let acked = client.ack(source, &ack).await.unwrap();
    assert!(acked.results.iter().all(|r| r.ok), "{acked:?}");
    let ack_again = AckRequest {
        receipts: vec![receipts[0].clone()],
    };
    let acked_again = client.ack(source, &ack_again).await.unwrap();
    assert!(!acked_again.results[0].ok, "{acked_again:?}");
    assert_eq!(
        acked_again.results[0].error.as_ref().unwrap().code,
        "unknown_receipt"
    );

    let nack = NackRequest {
        receipts: vec![receipts[2].clone()],
        delay_ms: 0,
    };
    let nacked = client.nack(source, &nack).await.unwrap();
    assert!(nacked.results[0].ok, "{nacked:?}");
    let again = client.receive(source, &receive(10, 0)).await.unwrap();
    assert_eq!(values(&again.messages), ["s2"]);
    assert_eq!(again.messages[0].delivery_count, Some(2));

    let poll = PollRequest::default();
    assert_eq!(
        code(client.poll("c-log", "workers", &poll).await),
        "wrong_mode"
    );

    client
        .publish_topic("c-log", &batch(&["s3", "s4"]))
        .await
        .unwrap();
    let purged = client.purge(source).await.unwrap();
    assert_eq!(purged.purged, 3, "s2 in flight, s3 and s4 ready");
    client
        .delete_subscription("c-log", "workers")
        .await
        .unwrap();
    assert_eq!(
        code(client.subscription("c-log", "workers").await),
        "not_found"
    );
    let names: Vec<String> = client
        .list_subscriptions("c-log")
        .await
        .unwrap()
        .subscriptions
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["reader"]);
}

async fn exchanges(client: &Client) {
    client
        .create_queue("c-red", &QueueConfig::default())
        .await
        .unwrap();
    client
        .create_topic("c-blue", &TopicConfig::default())
        .await
        .unwrap();
    let earliest = SubscriptionConfig {
        start: StartPosition::Earliest,
        ..SubscriptionConfig::default()
    };
    client
        .create_subscription("c-blue", "all", &earliest)
        .await
        .unwrap();

    let direct = ExchangeConfig {
        kind: ExchangeKind::Direct,
        alternate: None,
    };
    let created = client.create_exchange("c-x", &direct).await.unwrap();
    assert_eq!((created.name.as_str(), &created.config), ("c-x", &direct));
    assert!(created.bindings.is_empty());
    assert_eq!(
        client.create_exchange("c-x", &direct).await.unwrap(),
        created
    );
    let fanout = ExchangeConfig {
        kind: ExchangeKind::Fanout,
        alternate: None,
    };
    assert_eq!(
        code(client.create_exchange("c-x", &fanout).await),
        "already_exists"
    );
    client.create_exchange("c-fan", &fanout).await.unwrap();

    let red = BindingDef {
        exchange: "c-x".to_owned(),
        destination: "c-red".to_owned(),
        key: Some("red".to_owned()),
        filter: None,
    };
    let blue = BindingDef {
        destination: "c-blue".to_owned(),
        key: Some("blue".to_owned()),
        ..red.clone()
    };
    let fan = BindingDef {
        exchange: "c-fan".to_owned(),
        key: None,
        ..red.clone()
    };
    assert_eq!(client.bind(&red).await.unwrap(), red);
    assert_eq!(
        client.bind(&red).await.unwrap(),
        red,
        "binding twice is the same binding"
    );
    assert_eq!(client.bind(&blue).await.unwrap(), blue);
    assert_eq!(client.bind(&fan).await.unwrap(), fan);

    let all = client.list_bindings(None).await.unwrap().bindings;
    for b in [&red, &blue, &fan] {
        assert!(all.contains(b), "{b:?} not in {all:?}");
    }
    assert_eq!(all.iter().filter(|b| **b == red).count(), 1, "{all:?}");
    let of_x = client.list_bindings(Some("c-x")).await.unwrap().bindings;
    assert_eq!(of_x.len(), 2, "{of_x:?}");
    assert!(of_x.contains(&red) && of_x.contains(&blue));
    let of_fan = client.list_bindings(Some("c-fan")).await.unwrap().bindings;
    assert_eq!(of_fan, std::slice::from_ref(&fan));

    let info = client.exchange("c-x").await.unwrap();
    assert_eq!(info.bindings.len(), 2, "{info:?}");
    let list = client.list_exchanges().await.unwrap();
    let names: Vec<&str> = list.exchanges.iter().map(|e| e.name.as_str()).collect();
    assert!(
        names.contains(&"c-x") && names.contains(&"c-fan"),
        "{names:?}"
    );

    // Routed by key: red to the queue, blue to the topic, green nowhere.
    let messages = ["red", "blue", "green"]
        .into_iter()
        .map(|key| MessageIn {
            routing_key: Some(key.to_owned()),
            ..text(&format!("{key} message"))
        })
        .collect();
    let request = PublishRequest {
        messages,
        partition: None,
    };
    let answer = client.publish_exchange("c-x", &request).await.unwrap();
    let routed: Vec<Vec<&str>> = answer
        .messages
        .iter()
        .map(|m| m.routed.iter().map(|r| r.destination.as_str()).collect())
        .collect();
    assert_eq!(routed, [vec!["c-red"], vec!["c-blue"], vec![]]);
    let unroutable: Vec<bool> = answer.messages.iter().map(|m| m.unroutable).collect();
    assert_eq!(unroutable, [false, false, true]);
    let missed = &answer.messages[0].missed;
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(
        (missed[0].destination.as_str(), missed[0].reason.as_str()),
        ("c-blue", "key")
    );
    let got = client
        .receive(Source::Queue("c-red"), &receive(10, 0))
        .await
        .unwrap();
    assert_eq!(values(&got.messages), ["red message"]);
    assert_eq!(got.messages[0].routing_key.as_deref(), Some("red"));
    let blue_source = Source::Subscription {
        topic: "c-blue",
        subscription: "all",
    };
    let got = client.receive(blue_source, &receive(10, 0)).await.unwrap();
    assert_eq!(values(&got.messages), ["blue message"]);

    client.unbind(&red).await.unwrap();
    assert_eq!(
        client.list_bindings(Some("c-x")).await.unwrap().bindings,
        std::slice::from_ref(&blue)
    );
    assert_eq!(code(client.unbind(&red).await), "not_found");

    // An exchange's alternate cannot go; a bound topic can, and takes its
    // bindings with it.
    let alternate = ExchangeConfig {
        kind: ExchangeKind::Fanout,
        alternate: Some("c-blue".into()),
    };
    client.create_exchange("c-alt", &alternate).await.unwrap();
    assert_eq!(code(client.delete_topic("c-blue").await), "in_use");
    client.delete_exchange("c-alt").await.unwrap();
    client.delete_topic("c-blue").await.unwrap();
    assert_eq!(
        client.list_bindings(Some("c-x")).await.unwrap().bindings,
        []
    );
    client.delete_exchange("c-x").await.unwrap();
    assert_eq!(code(client.exchange("c-x").await), "not_found");
}

async fn publishing(client: &Client) {
    let config = TopicConfig {
        dedup_window_ms: 60_000,
        ..TopicConfig::default()
    };
    client.create_topic("c-pub", &config).await.unwrap();
    let reader = SubscriptionConfig {
        mode: DeliveryMode::Stream,
        start: StartPosition::Earliest,
        ..SubscriptionConfig::default()
    };
    client
        .create_subscription("c-pub", "r", &reader)
        .await
        .unwrap();

    // One message with key and headers.
    let headers = BTreeMap::from([("type".to_owned(), "OrderCompleted".to_owned())]);
    let message = MessageIn {
        key: Some("customer-42".to_owned()),
        headers: headers.clone(),
        ..MessageIn::json(serde_json::json!({"order": 7}))
    };
    let single = client.publish_topic("c-pub", &one(message)).await.unwrap();
    assert_eq!(single.messages.len(), 1);
    assert!(!single.messages[0].duplicate);
    let first_id = single.messages[0].id.clone();

    // A batch, and a de-duplicated publish.
    let batch_answer = client
        .publish_topic("c-pub", &batch(&["b1", "b2"]))
        .await
        .unwrap();
    let offsets: Vec<u64> = batch_answer.messages.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, [1, 2]);
    let dedup = |value: &str| MessageIn {
        dedup_id: Some("order-7".to_owned()),
        ..text(value)
    };
    let first = client
        .publish_topic("c-pub", &one(dedup("d")))
        .await
        .unwrap();
    let second = client
        .publish_topic("c-pub", &one(dedup("d again")))
        .await
        .unwrap();
    assert!(!first.messages[0].duplicate);
    assert!(second.messages[0].duplicate, "{second:?}");
    assert_eq!(second.messages[0].offset, first.messages[0].offset);

    // Read back by offset, without a subscription.
    let read = client
        .read_partition(
            "c-pub",
            0,
            &ReadOptions {
                offset: Some(0),
                max: Some(2),
                max_bytes: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(read.messages.len(), 2);
    let m = &read.messages[0];
    assert_eq!(m.id, first_id);
    assert_eq!(m.value.as_deref(), Some(r#"{"order":7}"#));
    assert_eq!(m.key.as_deref(), Some("customer-42"));
    assert_eq!(m.headers, headers);
    assert_eq!((read.next_offset, read.log_start, read.log_end), (2, 0, 4));
    let rest = client
        .read_partition(
            "c-pub",
            0,
            &ReadOptions {
                offset: Some(2),
                ..ReadOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(values(&rest.messages), ["b2", "d"]);
    assert_eq!(rest.messages[1].dedup_id.as_deref(), Some("order-7"));

    // A delayed message is not received at once.
    client
        .create_queue("c-later", &QueueConfig::default())
        .await
        .unwrap();
    let delayed = MessageIn {
        delay_ms: Some(500),
        ..text("later")
    };
    let started = Instant::now();
    client
        .publish_queue("c-later", &one(delayed))
        .await
        .unwrap();
    let now = client
        .receive(Source::Queue("c-later"), &receive(1, 0))
        .await
        .unwrap();
    assert!(now.messages.is_empty(), "{now:?}");
    let later = client
        .receive(Source::Queue("c-later"), &receive(1, 5_000))
        .await
        .unwrap();
    assert_eq!(values(&later.messages), ["later"]);
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );

    // Trace: published, delivered, acked.
    let traced_id = later.messages[0].id.clone();
    let receipt = later.messages[0].receipt.clone().unwrap();
    client
        .ack(
            Source::Queue("c-later"),
            &AckRequest {
                receipts: vec![receipt],
            },
        )
        .await
        .unwrap();
    let trace = client.trace(&traced_id).await.unwrap();
    assert_eq!(trace.id, traced_id);
    let kinds: Vec<&str> = trace
        .events
        .iter()
        .map(|t| match &t.event {
            Event::Published { .. } => "published",
            Event::Delivered { .. } => "delivered",
            Event::Acked { .. } => "acked",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["published", "delivered", "acked"], "{trace:?}");
    assert!(trace.events.iter().all(|t| t.time_ms > 1_600_000_000_000));
}

async fn operations(client: &Client) {
    assert_eq!(client.healthz().await.unwrap().status, "ok");
    assert_eq!(client.readyz().await.unwrap().status, "ready");

    let stats = client.stats().await.unwrap();
    let pub_topic = stats
        .topics
        .iter()
        .find(|t| t.name == "c-pub")
        .expect("c-pub in stats");
    assert_eq!(pub_topic.published, 4, "{pub_topic:?}");
    assert_eq!(pub_topic.duplicates, 1, "{pub_topic:?}");
    let later = stats
        .queues
        .iter()
        .find(|q| q.name == "c-later")
        .expect("c-later in stats");
    assert_eq!((later.depth, later.acked), (0, 1), "{later:?}");
    assert!(stats.exchanges.iter().any(|e| e.name == "c-fan"));

    let metrics = client.metrics().await.unwrap();
    let published = metrics
        .lines()
        .find(|l| l.starts_with("hermod_messages_published") && l.contains(r#"topic="c-pub""#))
        .unwrap_or_else(|| panic!("no published counter of c-pub in:\n{metrics}"));
    assert!(published.ends_with(" 4"), "{published}");

    let doc = client.openapi().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["paths"]["/v1/topics/{topic}"]["put"].is_object());
}

async fn events(client: &Client) {
    client
        .create_queue("c-ev", &QueueConfig::default())
        .await
        .unwrap();
    let options = EventsOptions {
        max: Some(2),
        visibility_ms: None,
        ack: AckMode::Auto,
    };
    let mut stream = client
        .events(Source::Queue("c-ev"), &options)
        .await
        .unwrap();
    // Published after the stream opened.
    client
        .publish_queue("c-ev", &batch(&["e1", "e2"]))
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        let next = tokio::time::timeout(PROMPTLY, stream.next()).await;
        let message = next
            .expect("a message in time")
            .expect("the stream goes on")
            .unwrap();
        assert!(message.receipt.is_some());
        got.push(message);
    }
    assert_eq!(values(&got), ["e1", "e2"]);
    // `max` ends the stream.
    let end = tokio::time::timeout(PROMPTLY, stream.next()).await;
    assert!(
        matches!(end, Ok(None)),
        "the stream should end after max: {end:?}"
    );
    // ack=auto: nothing waits or is in flight afterwards.
    let deadline = Instant::now() + PROMPTLY;
    loop {
        let queue = client.queue("c-ev").await.unwrap();
        if (queue.depth, queue.in_flight, queue.acked) == (0, 0, 2) {
            break;
        }
        assert!(Instant::now() < deadline, "not auto-acked: {queue:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Manual acks on a subscription stream; errors come before streaming.
    let manual = EventsOptions {
        max: Some(1),
        ..EventsOptions::default()
    };
    let source = Source::Subscription {
        topic: "c-log",
        subscription: "nope",
    };
    let error = client
        .events(source, &manual)
        .await
        .err()
        .expect("no such subscription");
    assert_eq!(error.code(), "not_found");
    let mut stream = client.events(Source::Queue("c-ev"), &manual).await.unwrap();
    client.publish_queue("c-ev", &batch(&["e3"])).await.unwrap();
    let next = tokio::time::timeout(PROMPTLY, stream.next()).await.unwrap();
    let message = next.unwrap().unwrap();
    assert_eq!(message.value.as_deref(), Some("e3"));
    let receipts = vec![message.receipt.unwrap()];
    let acked = client
        .ack(Source::Queue("c-ev"), &AckRequest { receipts })
        .await
        .unwrap();
    assert!(acked.results[0].ok);
}

async fn errors(client: &Client) {
    let error = client.topic("c-missing").await.unwrap_err();
    assert_eq!((error.code(), error.status()), ("not_found", Some(404)));
    assert!(error.message().contains("c-missing"), "{}", error.message());

    let error = client
        .create_topic("bad name!", &TopicConfig::default())
        .await
        .unwrap_err();
    assert_eq!(
        (error.code(), error.status()),
        ("invalid_name", Some(400)),
        "{error}"
    );

    let big = "x".repeat(MAX_MESSAGE_BYTES + 1);
    let error = client
        .publish_queue("c-ev", &batch(&[&big]))
        .await
        .unwrap_err();
    assert_eq!(
        (error.code(), error.status()),
        ("message_too_large", Some(413)),
        "{error}"
    );
    let fits = "x".repeat(MAX_MESSAGE_BYTES);
    client
        .publish_queue("c-ev", &batch(&[&fits]))
        .await
        .unwrap();
    client.purge(Source::Queue("c-ev")).await.unwrap();

    let error = client
        .receive(Source::Queue("c-ev"), &receive(1_000_000, 0))
        .await
        .unwrap_err();
    assert_eq!(
        (error.code(), error.status()),
        ("limit_exceeded", Some(400)),
        "{error}"
    );
    let error = client
        .receive(Source::Queue("c-ev"), &receive(1, 3_600_000))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "limit_exceeded", "{error}");

    let stream_source = Source::Subscription {
        topic: "c-log",
        subscription: "reader",
    };
    let error = client
        .ack(
            stream_source,
            &AckRequest {
                receipts: vec!["r".into()],
            },
        )
        .await;
    assert_eq!(code(error), "wrong_mode");

    let error = client
        .publish_queue("c-ev", &PublishRequest::default())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalid_request", "{error}");
}

/// Every (method, path) of the served OpenAPI document answers something
/// other than `no_such_route` or `method_not_allowed`, path parameters
/// replaced by names that exist. A wrong-shaped body (`invalid_body`),
/// which the typed client cannot send, is checked here too.
async fn openapi_paths(client: &Client, server: &Server) {
    client
        .create_topic("oa-t", &TopicConfig::default())
        .await
        .unwrap();
    client
        .create_subscription("oa-t", "oa-s", &SubscriptionConfig::default())
        .await
        .unwrap();
    client
        .create_queue("oa-q", &QueueConfig::default())
        .await
        .unwrap();
    let fanout = ExchangeConfig {
        kind: ExchangeKind::Fanout,
        alternate: None,
    };
    client.create_exchange("oa-x", &fanout).await.unwrap();
    let id = client
        .publish_topic("oa-t", &batch(&["x"]))
        .await
        .unwrap()
        .messages[0]
        .id
        .clone();

    let doc = client.openapi().await.unwrap();
    let mut calls = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete"].contains(&method.as_str()) {
                let concrete = path
                    .replace("{topic}", "oa-t")
                    .replace("{subscription}", "oa-s")
                    .replace("{queue}", "oa-q")
                    .replace("{exchange}", "oa-x")
                    .replace("{partition}", "0")
                    .replace("{id}", &id);
                assert!(!concrete.contains('{'), "unknown parameter in {path}");
                calls.push((method.to_uppercase(), concrete, path.clone()));
            }
        }
    }
    assert!(calls.len() >= 45, "{} operations documented", calls.len());
    // Deletes last, so every other call finds its resources.
    calls.sort_by_key(|(method, _, _)| method == "DELETE");
    let port = server.port;
    let answers = tokio::task::spawn_blocking(move || {
        calls
            .into_iter()
            .map(|(method, concrete, path)| {
                let answer = if concrete.ends_with("/events") {
                    events_status(port, &concrete)
                } else {
                    let body = (method != "GET").then_some("{}");
                    let r = common::http(port, &method, &concrete, body);
                    let code = serde_json::from_str::<serde_json::Value>(&r.body)
                        .ok()
                        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    (r.status, code)
                };
                (method, path, answer)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (method, path, (status, code)) in &answers {
        assert!(
            code != "no_such_route" && code != "method_not_allowed" && *status != 0,
            "{method} {path}: {status} {code}"
        );
        assert!(*status < 500, "{method} {path}: {status} {code}");
    }
    let bindings_delete = answers
        .iter()
        .find(|(m, p, _)| m == "DELETE" && p == "/v1/bindings")
        .map(|(_, _, a)| a.clone());
    assert_eq!(bindings_delete, Some((400, "invalid_body".to_owned())));
}

/// The status of an events request; the stream itself is left unread.
fn events_status(port: u16, path: &str) -> (u16, String) {
    let mut stream = common::connect(port);
    common::send(&mut stream, "GET", &format!("{path}?max=1"), None, false);
    let mut line = String::new();
    BufReader::new(&mut stream).read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, String::new())
}
