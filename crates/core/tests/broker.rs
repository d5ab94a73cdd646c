//! The broker end to end in one process, on a real file system with an
//! injected clock: queues, subscriptions in every mode, exchanges, dead
//! letters, limits, restarts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hermod_core::defs::{
    BindingDef, DeliveryMode, ExchangeConfig, FilterSpec, Overflow, QueueConfig, StartPosition,
    SubscriptionConfig, TopicConfig,
};
use hermod_core::filter::Scope;
use hermod_core::routing::ExchangeKind;
use hermod_core::trace::Event;
use hermod_core::{Broker, BrokerConfig, Error, Message};
use hermod_storage::clock::ManualClock;

struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            clock: ManualClock::new(1_000_000),
        }
    }

    fn open(&self) -> Broker {
        let mut config = BrokerConfig::new(self.dir.path());
        config.clock = self.clock.clone();
        Broker::open(config).unwrap()
    }
}

fn text(value: &str) -> Message {
    Message {
        value: Bytes::copy_from_slice(value.as_bytes()),
        ..Message::default()
    }
}

fn keyed(key: &str, value: &str) -> Message {
    Message {
        key: Some(Bytes::copy_from_slice(key.as_bytes())),
        ..text(value)
    }
}

fn with_header(mut m: Message, name: &str, value: &str) -> Message {
    m.headers
        .push((name.to_owned(), Bytes::copy_from_slice(value.as_bytes())));
    m
}

fn values(received: &[hermod_core::Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| String::from_utf8(r.message.value.to_vec()).unwrap())
        .collect()
}

#[test]
fn the_shop_scenario_fans_out_filters_dead_letters_and_redrives() {
    let f = Fixture::new();
    let broker = f.open();
    let exchange = ExchangeConfig {
        kind: ExchangeKind::Fanout,
        alternate: None,
    };
    broker.create_exchange("shop-events", exchange).unwrap();
    broker.create_queue("mail", QueueConfig::default()).unwrap();
    broker
        .create_queue("coupon-dlq", QueueConfig::default())
        .unwrap();
    let coupon = QueueConfig {
        max_deliveries: 3,
        dead_letter: Some("coupon-dlq".into()),
        visibility_timeout_ms: 10_000,
        ..QueueConfig::default()
    };
    broker.create_queue("coupon", coupon).unwrap();
    let bind = |dest: &str, filter: Option<&str>| BindingDef {
        exchange: "shop-events".into(),
        destination: dest.into(),
        key: None,
        filter: filter.map(|p| FilterSpec {
            policy: p.into(),
            scope: Scope::Attributes,
        }),
    };
    broker.bind(bind("mail", None)).unwrap();
    broker
        .bind(bind("coupon", Some(r#"{"type": ["OrderCompleted"]}"#)))
        .unwrap();

    let joined = with_header(text(r#"{"member": 7}"#), "type", "MemberJoined");
    let routed = broker.publish_to_exchange("shop-events", joined).unwrap();
    assert_eq!(routed.published.len(), 1);
    assert_eq!(routed.missed.len(), 1, "the coupon binding did not match");
    let order = with_header(text(r#"{"order": 42}"#), "type", "OrderCompleted");
    let routed = broker.publish_to_exchange("shop-events", order).unwrap();
    let order_id = routed.id.clone();
    assert_eq!(routed.published.len(), 2);

    let mail = broker.queue("mail").unwrap();
    let got = mail.receive(10, None).unwrap();
    assert_eq!(values(&got), [r#"{"member": 7}"#, r#"{"order": 42}"#]);
    let receipts: Vec<_> = got.iter().map(|r| r.receipt).collect();
    assert!(mail.ack(&receipts).unwrap().iter().all(|r| r.is_ok()));

    // The coupon handler fails three times: nack, lease expiry, nack.
    let coupon = broker.queue("coupon").unwrap();
    let first = coupon.receive(10, None).unwrap();
    assert_eq!(values(&first), [r#"{"order": 42}"#]);
    assert_eq!(first[0].delivery_count, 1);
    coupon.nack(&first[0].receipt, 0).unwrap();
    let second = coupon.receive(10, None).unwrap();
    assert_eq!(second[0].delivery_count, 2);
    f.clock.advance(10_001);
    let third = coupon.receive(10, None).unwrap();
    assert_eq!(third[0].delivery_count, 3, "lease expiry redelivers");
    coupon.nack(&third[0].receipt, 0).unwrap();
    assert!(coupon.receive(10, None).unwrap().is_empty());

    let dlq = broker.queue("coupon-dlq").unwrap();
    let dead = dlq.receive(10, Some(1)).unwrap();
    assert_eq!(values(&dead), [r#"{"order": 42}"#]);
    let origin = dead[0].message.dead_letter.clone().unwrap();
    assert_eq!(origin.topic, "coupon");
    assert_eq!(origin.subscription, "coupon");
    assert_eq!(origin.reason, "max_deliveries");
    assert_eq!(origin.deliveries, 3);
    assert_eq!(dead[0].message.id, order_id, "the message keeps its id");
    f.clock.advance(2);

    // After the fix, the message goes back to the coupon queue.
    assert_eq!(broker.redrive("coupon-dlq", 100).unwrap(), 1);
    let back = coupon.receive(10, None).unwrap();
    assert_eq!(values(&back), [r#"{"order": 42}"#]);
    assert!(back[0].message.dead_letter.is_none());
    coupon.ack(&[back[0].receipt]).unwrap();
    assert_eq!(coupon.depth(), 0);
    assert_eq!(dlq.depth(), 0);

    let trace = broker.trace(&order_id).unwrap();
    let kinds: Vec<&str> = trace
        .iter()
        .map(|t| match &t.event {
            Event::Published { .. } => "published",
            Event::Delivered { .. } => "delivered",
            Event::Acked { .. } => "acked",
            Event::Nacked { .. } => "nacked",
            Event::DeadLettered { .. } => "dead-lettered",
            _ => "other",
        })
        .collect();
    assert!(kinds.contains(&"dead-lettered"), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "acked").count(),
        3,
        "{kinds:?}"
    );
}

#[test]
fn acks_delivery_counts_and_definitions_survive_a_restart() {
    let f = Fixture::new();
    let broker = f.open();
    broker.create_queue("q", QueueConfig::default()).unwrap();
    let batch: Vec<Message> = (0..10).map(|i| text(&format!("m{i}"))).collect();
    broker.publish("q", batch, None).unwrap();
    let q = broker.queue("q").unwrap();
    let got = q.receive(4, None).unwrap();
    assert_eq!(values(&got), ["m0", "m1", "m2", "m3"]);
    q.ack(&[got[0].receipt, got[2].receipt]).unwrap();
    let stale = got[1].receipt;
    drop(q);
    // No clean close: what was acknowledged must already be durable.
    drop(broker);

    let broker = f.open();
    let q = broker.queue("q").unwrap();
    assert!(matches!(
        q.ack(&[stale]).unwrap()[0],
        Err(Error::UnknownReceipt)
    ));
    let got = q.receive(100, None).unwrap();
    let vals = values(&got);
    assert_eq!(vals, ["m1", "m3", "m4", "m5", "m6", "m7", "m8", "m9"]);
    assert_eq!(got[0].delivery_count, 2, "delivered before the restart");
    assert_eq!(got[2].delivery_count, 1);
    broker.close().unwrap();
}

#[test]
fn visibility_timeout_extend_and_nack_delay_follow_the_clock() {
    let f = Fixture::new();
    let broker = f.open();
    broker.create_queue("q", QueueConfig::default()).unwrap();
    broker.publish("q", vec![text("a")], None).unwrap();
    let q = broker.queue("q").unwrap();
    let got = q.receive(1, Some(1000)).unwrap();
    f.clock.advance(900);
    q.extend(&got[0].receipt, 1000).unwrap();
    f.clock.advance(900);
    assert!(q.receive(1, None).unwrap().is_empty(), "extended");
    q.nack(&got[0].receipt, 5000).unwrap();
    assert!(q.receive(1, None).unwrap().is_empty(), "nack delay");
    f.clock.advance(5000);
    let again = q.receive(1, Some(1000)).unwrap();
    assert_eq!(again[0].delivery_count, 2);
    f.clock.advance(1000);
    assert!(matches!(
        q.extend(&again[0].receipt, 10),
        Err(Error::LeaseExpired)
    ));
}

#[test]
fn delays_and_expiry_come_from_the_message_or_the_queue() {
    let f = Fixture::new();
    let broker = f.open();
    let config = QueueConfig {
        delay_ms: 1000,
        message_ttl_ms: Some(5000),
        ..QueueConfig::default()
    };
    broker.create_queue("q", config).unwrap();
    let mut later = text("later");
    later.not_before_ms = Some(1_000_000 + 3000);
    broker
        .publish("q", vec![text("default"), later], None)
        .unwrap();
    let q = broker.queue("q").unwrap();
    assert!(q.receive(10, None).unwrap().is_empty());
    f.clock.advance(1000);
    assert_eq!(values(&q.receive(10, None).unwrap()), ["default"]);
    f.clock.advance(4000);
    assert!(
        q.receive(10, None).unwrap().is_empty(),
        "later expired at 5 s"
    );
    assert_eq!(
        q.stats().expired.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn ordered_queues_keep_key_order_with_one_in_flight_per_key() {
    let f = Fixture::new();
    let broker = f.open();
    let config = QueueConfig {
        fifo: true,
        ..QueueConfig::default()
    };
    broker.create_queue("orders.fifo", config).unwrap();
    let batch = vec![
        keyed("a", "a1"),
        keyed("b", "b1"),
        keyed("a", "a2"),
        keyed("b", "b2"),
        keyed("c", "c1"),
    ];
    broker.publish("orders.fifo", batch, None).unwrap();
    let q = broker.queue("orders.fifo").unwrap();
    let got = q.receive(10, None).unwrap();
    assert_eq!(values(&got), ["a1", "b1", "c1"]);
    q.ack(&[got[1].receipt]).unwrap();
    let more = q.receive(10, None).unwrap();
    assert_eq!(values(&more), ["b2"]);
    q.nack(&got[0].receipt, 0).unwrap();
    let retry = q.receive(10, None).unwrap();
    assert_eq!(values(&retry), ["a1"], "a2 waits until a1 is acked");
}

#[test]
fn de_duplication_returns_the_original_and_survives_a_restart() {
    let f = Fixture::new();
    let broker = f.open();
    let config = QueueConfig {
        fifo: true,
        content_dedup: true,
        ..QueueConfig::default()
    };
    broker.create_queue("q.fifo", config).unwrap();
    let mut m = keyed("g", "body");
    m.dedup_id = Some("order-42".into());
    let first = broker.publish("q.fifo", vec![m.clone()], None).unwrap();
    let again = broker.publish("q.fifo", vec![m.clone()], None).unwrap();
    assert!(again[0].duplicate);
    assert_eq!(again[0].offset, first[0].offset);
    assert_eq!(
        again[0].id, first[0].id,
        "a duplicate answers with the original's id"
    );
    let by_content = broker
        .publish("q.fifo", vec![keyed("g", "same"), keyed("g", "same")], None)
        .unwrap();
    assert!(!by_content[0].duplicate && by_content[1].duplicate);
    assert_eq!(by_content[0].id, by_content[1].id, "also within one batch");
    drop(broker);

    let broker = f.open();
    let after = broker.publish("q.fifo", vec![m.clone()], None).unwrap();
    assert!(after[0].duplicate, "the window is rebuilt from the log");
    f.clock.advance(5 * 60 * 1000 + 1);
    let later = broker.publish("q.fifo", vec![m], None).unwrap();
    assert!(!later[0].duplicate, "outside the window");
    assert_eq!(broker.queue("q.fifo").unwrap().depth(), 3);
}

#[test]
fn length_limits_reject_or_drop_the_oldest_to_the_dead_letter_queue() {
    let f = Fixture::new();
    let broker = f.open();
    let reject = QueueConfig {
        max_length: Some(2),
        ..QueueConfig::default()
    };
    broker.create_queue("small", reject).unwrap();
    broker
        .publish("small", vec![text("1"), text("2")], None)
        .unwrap();
    let full = broker.publish("small", vec![text("3")], None);
    assert!(matches!(full, Err(Error::QueueFull { .. })), "{full:?}");

    broker
        .create_queue("dropped", QueueConfig::default())
        .unwrap();
    let drop_oldest = QueueConfig {
        max_length: Some(2),
        overflow: Overflow::DropOldest,
        dead_letter: Some("dropped".into()),
        max_deliveries: 5,
        ..QueueConfig::default()
    };
    broker.create_queue("head", drop_oldest).unwrap();
    for v in ["1", "2", "3", "4"] {
        broker.publish("head", vec![text(v)], None).unwrap();
    }
    let head = broker.queue("head").unwrap();
    assert_eq!(values(&head.receive(10, None).unwrap()), ["3", "4"]);
    let dropped = broker.queue("dropped").unwrap().receive(10, None).unwrap();
    assert_eq!(values(&dropped), ["1", "2"]);
    assert_eq!(
        dropped[0].message.dead_letter.as_ref().unwrap().reason,
        "overflow"
    );
}

#[test]
fn stream_subscriptions_poll_commit_seek_and_resume_from_the_commit() {
    let f = Fixture::new();
    let broker = f.open();
    let topic = TopicConfig {
        partitions: 2,
        ..TopicConfig::default()
    };
    broker.create_topic("events", topic).unwrap();
    let stream = SubscriptionConfig {
        mode: DeliveryMode::Stream,
        start: StartPosition::Earliest,
        ..SubscriptionConfig::default()
    };
    broker
        .create_subscription("events", "analytics", stream)
        .unwrap();
    let batch: Vec<Message> = (0..10)
        .map(|i| keyed(&format!("k{i}"), &format!("e{i}")))
        .collect();
    broker.publish("events", batch, None).unwrap();
    let sub = broker.subscription("events", "analytics").unwrap();
    let got = sub.poll(100, 1 << 20).unwrap();
    assert_eq!(got.len(), 10);
    let lag: u64 = sub.positions().unwrap().iter().map(|p| p.lag()).sum();
    assert_eq!(lag, 10, "nothing committed yet");
    sub.commit_positions().unwrap();
    let lag: u64 = sub.positions().unwrap().iter().map(|p| p.lag()).sum();
    assert_eq!(lag, 0);
    sub.seek(0, 0).unwrap();
    let replay = sub.poll(100, 1 << 20).unwrap();
    assert_eq!(replay.len() as u64, sub.positions().unwrap()[0].log_end);
    assert!(matches!(sub.receive(1, None), Err(Error::WrongMode { .. })));
    assert!(matches!(
        sub.seek(0, 999),
        Err(Error::OffsetOutOfRange { .. })
    ));
    drop(sub);
    drop(broker);

    let broker = f.open();
    let sub = broker.subscription("events", "analytics").unwrap();
    assert!(
        sub.poll(100, 1 << 20).unwrap().is_empty(),
        "resumes at the commit"
    );
    broker.publish("events", vec![text("new")], None).unwrap();
    assert_eq!(sub.poll(100, 1 << 20).unwrap().len(), 1);
}

#[test]
fn a_subscription_filter_skips_records_and_latest_skips_the_past() {
    let f = Fixture::new();
    let broker = f.open();
    broker.create_topic("t", TopicConfig::default()).unwrap();
    broker
        .publish("t", vec![with_header(text("old"), "kind", "x")], None)
        .unwrap();
    let config = SubscriptionConfig {
        filter: Some(FilterSpec {
            policy: r#"{"amount": [{"numeric": [">", 100]}]}"#.into(),
            scope: Scope::Body,
        }),
        ..SubscriptionConfig::default()
    };
    broker.create_subscription("t", "big", config).unwrap();
    let batch = vec![
        text(r#"{"amount": 5}"#),
        text(r#"{"amount": 500}"#),
        text("not json"),
    ];
    broker.publish("t", batch, None).unwrap();
    let sub = broker.subscription("t", "big").unwrap();
    let got = sub.receive(10, None).unwrap();
    assert_eq!(values(&got), [r#"{"amount": 500}"#]);
    assert_eq!(
        sub.stats()
            .filtered
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    let bad = SubscriptionConfig {
        filter: Some(FilterSpec {
            policy: r#"{"a": [{"numeric": [">"]}]}"#.into(),
            scope: Scope::Attributes,
        }),
        ..SubscriptionConfig::default()
    };
    let err = broker.create_subscription("t", "bad", bad).unwrap_err();
    assert_eq!(err.code(), "invalid_config", "{err}");
}

#[test]
fn exchanges_route_by_key_pattern_and_headers_and_report_unroutable() {
    let f = Fixture::new();
    let broker = f.open();
    for q in ["eu", "all", "big", "lost"] {
        broker.create_queue(q, QueueConfig::default()).unwrap();
    }
    let ex = |kind, alternate: Option<&str>| ExchangeConfig {
        kind,
        alternate: alternate.map(String::from),
    };
    broker
        .create_exchange("direct", ex(ExchangeKind::Direct, None))
        .unwrap();
    broker
        .create_exchange("topic", ex(ExchangeKind::Topic, Some("lost")))
        .unwrap();
    broker
        .create_exchange("headers", ex(ExchangeKind::Headers, None))
        .unwrap();
    let bind = |exchange: &str, dest: &str, key: Option<&str>, filter: Option<&str>| BindingDef {
        exchange: exchange.into(),
        destination: dest.into(),
        key: key.map(String::from),
        filter: filter.map(|p| FilterSpec {
            policy: p.into(),
            scope: Scope::Attributes,
        }),
    };
    broker.bind(bind("direct", "eu", Some("eu"), None)).unwrap();
    broker
        .bind(bind("topic", "eu", Some("order.eu.*"), None))
        .unwrap();
    broker
        .bind(bind("topic", "all", Some("order.#"), None))
        .unwrap();
    broker
        .bind(bind("headers", "big", None, Some(r#"{"size": ["big"]}"#)))
        .unwrap();
    let dup = broker.bind(bind("direct", "eu", Some("eu"), None));
    assert!(dup.is_err(), "a duplicate binding is refused");

    let routed = |ex: &str, key: &str, m: Message| {
        let m = Message {
            routing_key: Some(key.into()),
            ..m
        };
        let r = broker.publish_to_exchange(ex, m).unwrap();
        let mut dests: Vec<String> = r.published.into_iter().map(|(d, _)| d).collect();
        dests.sort();
        (dests, r.unroutable)
    };
    assert_eq!(
        routed("direct", "eu", text("x")),
        (vec!["eu".into()], false)
    );
    assert_eq!(routed("direct", "us", text("x")), (vec![], true));
    assert_eq!(
        routed("topic", "order.eu.paid", text("x")),
        (vec!["all".into(), "eu".into()], false)
    );
    assert_eq!(
        routed("topic", "invoice", text("x")),
        (vec!["lost".into()], true),
        "unroutable goes to the alternate"
    );
    let big = with_header(text("x"), "size", "big");
    assert_eq!(routed("headers", "", big), (vec!["big".into()], false));
    assert!(matches!(
        broker.publish_to_exchange("nope", text("x")),
        Err(Error::Catalog(_))
    ));
}

#[test]
fn bad_input_gets_clear_errors_and_changes_nothing() {
    let f = Fixture::new();
    let broker = f.open();
    let err = broker
        .create_queue("bad name!", QueueConfig::default())
        .unwrap_err();
    assert_eq!(err.code(), "invalid_name");
    let zero = TopicConfig {
        partitions: 0,
        ..TopicConfig::default()
    };
    assert_eq!(
        broker.create_topic("t", zero).unwrap_err().code(),
        "invalid_config"
    );
    broker.create_queue("q", QueueConfig::default()).unwrap();
    assert_eq!(
        broker
            .create_queue("q", QueueConfig::default())
            .unwrap_err()
            .code(),
        "already_exists"
    );
    let big = Message {
        value: Bytes::from(vec![0; (1 << 20) + 1]),
        ..Message::default()
    };
    assert_eq!(
        broker.publish("q", vec![big], None).unwrap_err().code(),
        "message_too_large"
    );
    let reserved = with_header(text("x"), "hermod.id", "mine");
    assert_eq!(
        broker
            .publish("q", vec![reserved], None)
            .unwrap_err()
            .code(),
        "invalid_message"
    );
    assert_eq!(
        broker
            .publish("missing", vec![text("x")], None)
            .unwrap_err()
            .code(),
        "not_found"
    );
    let no_dlq = QueueConfig {
        dead_letter: Some("missing".into()),
        max_deliveries: 3,
        ..QueueConfig::default()
    };
    assert_eq!(
        broker.create_queue("q2", no_dlq).unwrap_err().code(),
        "not_found"
    );
    assert!("zz".parse::<hermod_core::Receipt>().is_err());
    assert_eq!(broker.queue("q").unwrap().depth(), 0);
    assert_eq!(broker.catalog().topics.len(), 1);
}

#[test]
fn deleting_and_recreating_a_queue_starts_empty() {
    let f = Fixture::new();
    let broker = f.open();
    broker.create_queue("q", QueueConfig::default()).unwrap();
    broker.publish("q", vec![text("old")], None).unwrap();
    broker.delete_queue("q").unwrap();
    assert_eq!(broker.queue("q").unwrap_err().code(), "not_found");
    broker.create_queue("q", QueueConfig::default()).unwrap();
    broker.publish("q", vec![text("new")], None).unwrap();
    drop(broker);
    let broker = f.open();
    let got = broker.queue("q").unwrap().receive(10, None).unwrap();
    assert_eq!(values(&got), ["new"]);
}

#[test]
fn purge_empties_a_queue_and_consumed_segments_are_deleted() {
    let f = Fixture::new();
    let broker = f.open();
    broker.create_queue("q", QueueConfig::default()).unwrap();
    let batch: Vec<Message> = (0..100).map(|i| text(&format!("{i:0>1000}"))).collect();
    broker.publish("q", batch, None).unwrap();
    let q = broker.queue("q").unwrap();
    assert_eq!(q.purge().unwrap(), 100);
    assert_eq!(q.depth(), 0);
    assert!(q.receive(10, None).unwrap().is_empty());
    broker.tick().unwrap();
}

#[test]
fn a_waiting_receive_wakes_when_a_record_arrives() {
    let f = Fixture::new();
    let broker = Arc::new(f.open());
    broker.create_queue("q", QueueConfig::default()).unwrap();
    let q = broker.queue("q").unwrap();
    let publisher = {
        let broker = broker.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            broker.publish("q", vec![text("hello")], None).unwrap();
        })
    };
    let started = std::time::Instant::now();
    let got = broker
        .receive_wait(&q, 1, None, Duration::from_secs(30))
        .unwrap();
    assert_eq!(values(&got), ["hello"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    publisher.join().unwrap();
}

/// Regression: dead letters and redriven records were appended through the
/// de-duplication check, so with content de-duplication a second dead letter
/// with the same body as an earlier one (or a record redriven within five
/// minutes of its first publish) was dropped as a "duplicate", and the
/// record it came from finished anyway: the message was lost.
#[test]
fn dead_letters_and_redriven_records_are_never_dropped_as_duplicates() {
    let f = Fixture::new();
    let broker = f.open();
    let content_dedup = QueueConfig {
        fifo: true,
        content_dedup: true,
        ..QueueConfig::default()
    };
    broker
        .create_queue("dlq.fifo", content_dedup.clone())
        .unwrap();
    let source = QueueConfig {
        max_deliveries: 1,
        dead_letter: Some("dlq.fifo".into()),
        ..content_dedup
    };
    broker.create_queue("q.fifo", source).unwrap();
    let same_body = |id: &str| Message {
        dedup_id: Some(id.into()),
        ..keyed("g", "same body")
    };
    let published = broker
        .publish("q.fifo", vec![same_body("1"), same_body("2")], None)
        .unwrap();
    assert!(published.iter().all(|p| !p.duplicate));
    let q = broker.queue("q.fifo").unwrap();
    for _ in 0..2 {
        let got = q.receive(1, None).unwrap();
        q.nack(&got[0].receipt, 0).unwrap();
    }
    let dlq = broker.queue("dlq.fifo").unwrap();
    assert_eq!(dlq.depth(), 2, "both dead letters arrive");

    // Back to the source, well within its window.
    assert_eq!(broker.redrive("dlq.fifo", 10).unwrap(), 2);
    assert_eq!(dlq.depth(), 0);
    assert_eq!(q.depth(), 2, "both redriven records arrive");
    let back = q.receive(10, None).unwrap();
    assert_eq!(values(&back), ["same body"], "one group, one at a time");
    q.ack(&[back[0].receipt]).unwrap();
    assert_eq!(values(&q.receive(10, None).unwrap()), ["same body"]);

    // Publishes by clients are still de-duplicated, also after a restart.
    let again = broker
        .publish("q.fifo", vec![same_body("1")], None)
        .unwrap();
    assert!(again[0].duplicate);
    assert_eq!(again[0].offset, published[0].offset);
    let by_content = vec![keyed("g", "new body"), keyed("g", "new body")];
    let by_content = broker.publish("q.fifo", by_content, None).unwrap();
    assert!(!by_content[0].duplicate && by_content[1].duplicate);
    drop((q, dlq));
    drop(broker);
    let broker = f.open();
    let again = broker
        .publish("q.fifo", vec![same_body("2")], None)
        .unwrap();
    assert!(again[0].duplicate);
    assert_eq!(again[0].offset, published[1].offset);
    let again = broker.publish("q.fifo", vec![keyed("g", "new body")], None);
    assert!(again.unwrap()[0].duplicate);
}

#[test]
fn a_backlog_deeper_than_the_read_ahead_is_delivered_once_in_order() {
    // 3,000 small records in one batch: one log read returns all of them,
    // the delivery buffer (1,000) takes a third, and later fills start from
    // the records kept from that read. A nack and a purge in between must
    // not lose or repeat any.
    let f = Fixture::new();
    let broker = f.open();
    broker.create_queue("q", QueueConfig::default()).unwrap();
    let batch: Vec<Message> = (0..3000).map(|i| text(&format!("{i}"))).collect();
    broker.publish("q", batch, None).unwrap();
    let q = broker.queue("q").unwrap();
    let mut seen = Vec::new();
    let first = q.receive(7, None).unwrap();
    q.nack(&first[0].receipt, 0).unwrap();
    let receipts: Vec<_> = first[1..].iter().map(|r| r.receipt).collect();
    q.ack(&receipts).unwrap();
    seen.extend(values(&first[1..]));
    loop {
        let got = q.receive(10, None).unwrap();
        if got.is_empty() {
            break;
        }
        let receipts: Vec<_> = got.iter().map(|r| r.receipt).collect();
        assert!(q.ack(&receipts).unwrap().iter().all(|r| r.is_ok()));
        seen.extend(values(&got));
    }
    let mut expected: Vec<String> = (1..3000).map(|i| i.to_string()).collect();
    expected.insert(6, "0".to_string());
    assert_eq!(seen, expected);
    assert_eq!(q.depth(), 0);

    // A purge drops what was read ahead but not delivered.
    let batch: Vec<Message> = (0..3000).map(|i| text(&format!("b{i}"))).collect();
    broker.publish("q", batch, None).unwrap();
    let got = q.receive(10, None).unwrap();
    assert_eq!(values(&got)[0], "b0");
    assert_eq!(q.purge().unwrap(), 3000);
    assert!(q.receive(10, None).unwrap().is_empty());
    broker.publish("q", vec![text("after")], None).unwrap();
    assert_eq!(values(&q.receive(10, None).unwrap()), vec!["after"]);
}
