//! Unit tests of the catalog: every naming, settings and reference rule
//! `check` enforces, what `apply` does (cascading deletes, ids), and the
//! catalog's JSON form.

use hermod_core::catalog::{validate_name, Catalog, CatalogError, MAX_RECORD_BYTES};
use hermod_core::defs::{
    BindingDef, Change, DeliveryMode, DurabilityMode, ExchangeConfig, ExchangeDef, FilterSpec,
    QueueConfig, SubscriptionConfig, SubscriptionDef, TopicConfig, TopicDef, MAX_NAME_LEN,
};
use hermod_core::filter::Scope;
use hermod_core::routing::ExchangeKind;

fn topic_with(name: &str, id: u64, config: TopicConfig) -> TopicDef {
    TopicDef {
        id,
        name: name.into(),
        config,
        queue: None,
    }
}

fn topic(name: &str, id: u64) -> TopicDef {
    topic_with(name, id, TopicConfig::default())
}

fn queue(name: &str, id: u64, q: QueueConfig) -> TopicDef {
    TopicDef {
        id,
        name: name.into(),
        config: q.topic_config(),
        queue: Some(q),
    }
}

/// The subscription a queue gets.
fn queue_subscription(def: &TopicDef, id: u64) -> SubscriptionDef {
    let q = def.queue.as_ref().unwrap();
    SubscriptionDef {
        id,
        topic: def.name.clone(),
        name: def.name.clone(),
        config: q.subscription_config(),
        start_offsets: vec![0; q.partitions as usize],
    }
}

fn sub_with(topic: &str, name: &str, id: u64, config: SubscriptionConfig) -> SubscriptionDef {
    SubscriptionDef {
        id,
        topic: topic.into(),
        name: name.into(),
        config,
        start_offsets: vec![0],
    }
}

fn sub(topic: &str, name: &str, id: u64) -> SubscriptionDef {
    sub_with(topic, name, id, SubscriptionConfig::default())
}

fn exchange(name: &str, kind: ExchangeKind, alternate: Option<&str>) -> ExchangeDef {
    ExchangeDef {
        name: name.into(),
        config: ExchangeConfig {
            kind,
            alternate: alternate.map(Into::into),
        },
    }
}

fn binding(x: &str, destination: &str, key: Option<&str>) -> BindingDef {
    BindingDef {
        exchange: x.into(),
        destination: destination.into(),
        key: key.map(Into::into),
        filter: None,
    }
}

fn filter(policy: &str, scope: Scope) -> Option<FilterSpec> {
    Some(FilterSpec {
        policy: policy.into(),
        scope,
    })
}

/// Checks and applies a change that must be accepted.
fn ok(catalog: &mut Catalog, change: Change) {
    catalog
        .check(&change)
        .unwrap_or_else(|e| panic!("{change:?} refused: {e}"));
    catalog.apply(&change).unwrap();
}

/// The field of the `InvalidConfig` error `check` gives, with its message.
fn config_error(catalog: &Catalog, change: Change) -> (String, String) {
    match catalog.check(&change) {
        Err(e @ CatalogError::InvalidConfig { .. }) => {
            let message = e.to_string();
            let CatalogError::InvalidConfig { field, .. } = e else {
                unreachable!()
            };
            (field, message)
        }
        other => panic!("expected InvalidConfig for {change:?}, got {other:?}"),
    }
}

fn refused_field(catalog: &Catalog, change: Change) -> String {
    config_error(catalog, change).0
}

/// A catalog with topics `orders` (id 0) and `dlq` (id 1).
fn two_topics() -> Catalog {
    let mut c = Catalog::default();
    ok(&mut c, Change::CreateTopic(topic("orders", 0)));
    ok(&mut c, Change::CreateTopic(topic("dlq", 1)));
    c
}

#[test]
fn names_allow_kafka_characters_only() {
    for good in [
        "a",
        "Orders_2024-01.v2",
        ".hidden",
        "..x",
        &"n".repeat(MAX_NAME_LEN),
    ] {
        validate_name("topic", good).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    let long = "n".repeat(MAX_NAME_LEN + 1);
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "a b",
        "café",
        "tab\there",
        "a:b",
        "*",
        &long,
    ] {
        let err = validate_name("queue", bad).unwrap_err();
        assert!(
            matches!(&err, CatalogError::InvalidName { kind: "queue", name, .. } if name == bad),
            "{bad:?}: {err:?}"
        );
    }
    let message = validate_name("topic", "a/b").unwrap_err().to_string();
    assert_eq!(
        message,
        "invalid topic name \"a/b\": contains '/'; names are 1 to 249 characters \
         of A-Z, a-z, 0-9, '.', '_' and '-'"
    );
    let message = validate_name("topic", &long).unwrap_err().to_string();
    assert!(message.contains("is 250 characters long"), "{message}");
    assert!(message.len() < 250, "a long name is cut short: {message}");
    let message = validate_name("topic", "").unwrap_err().to_string();
    assert!(message.contains("is empty"), "{message}");
}

#[test]
fn every_create_checks_its_name() {
    let mut c = two_topics();
    let bad = |e: Result<(), CatalogError>| matches!(e, Err(CatalogError::InvalidName { .. }));
    assert!(bad(c.check(&Change::CreateTopic(topic("a/b", 9)))));
    let q = queue("bad name", 9, QueueConfig::default());
    assert!(matches!(
        c.check(&Change::CreateTopic(q)),
        Err(CatalogError::InvalidName { kind: "queue", .. })
    ));
    assert!(bad(
        c.check(&Change::CreateSubscription(sub("orders", "..", 9)))
    ));
    let x = exchange("", ExchangeKind::Fanout, None);
    assert!(bad(c.check(&Change::CreateExchange(x))));
    ok(
        &mut c,
        Change::CreateSubscription(sub("orders", "billing", 2)),
    );
}

#[test]
fn topics_and_queues_share_one_namespace() {
    let mut c = two_topics();
    assert_eq!(
        c.check(&Change::CreateTopic(topic("orders", 9))),
        Err(CatalogError::AlreadyExists {
            kind: "topic",
            name: "orders".into()
        })
    );
    let q = queue("orders", 9, QueueConfig::default());
    let err = c.check(&Change::CreateTopic(q)).unwrap_err();
    assert_eq!(err.to_string(), "topic \"orders\" already exists");
    ok(
        &mut c,
        Change::CreateTopic(queue("jobs", 9, QueueConfig::default())),
    );
    assert!(matches!(
        c.check(&Change::CreateTopic(topic("jobs", 10))),
        Err(CatalogError::AlreadyExists { kind: "queue", .. })
    ));
    // Exchanges are a namespace of their own, as in AMQP.
    let x = exchange("orders", ExchangeKind::Fanout, None);
    ok(&mut c, Change::CreateExchange(x));
}

#[test]
fn topic_settings_are_range_checked() {
    let c = Catalog::default();
    let refused =
        |config: TopicConfig| refused_field(&c, Change::CreateTopic(topic_with("t", 0, config)));
    let base = TopicConfig::default;
    assert_eq!(
        refused(TopicConfig {
            partitions: 0,
            ..base()
        }),
        "partitions"
    );
    assert_eq!(
        refused(TopicConfig {
            partitions: 1025,
            ..base()
        }),
        "partitions"
    );
    let (_, message) = config_error(
        &c,
        Change::CreateTopic(topic_with(
            "t",
            0,
            TopicConfig {
                partitions: 0,
                ..base()
            },
        )),
    );
    assert_eq!(
        message,
        "invalid partitions: must be between 1 and 1024, got 0"
    );
    assert_eq!(
        refused(TopicConfig {
            max_record_bytes: 0,
            ..base()
        }),
        "max_record_bytes"
    );
    let too_big = MAX_RECORD_BYTES + 1;
    assert_eq!(
        refused(TopicConfig {
            max_record_bytes: too_big,
            ..base()
        }),
        "max_record_bytes"
    );
    assert_eq!(
        refused(TopicConfig {
            segment_bytes: (64 << 10) - 1,
            ..base()
        }),
        "segment_bytes"
    );
    let (_, message) = config_error(
        &c,
        Change::CreateTopic(topic_with(
            "t",
            0,
            TopicConfig {
                segment_bytes: 1,
                ..base()
            },
        )),
    );
    assert!(message.contains("65536 (64 KiB)"), "{message}");
    assert_eq!(
        refused(TopicConfig {
            segment_bytes: 5 << 30,
            ..base()
        }),
        "segment_bytes"
    );
    assert_eq!(
        refused(TopicConfig {
            retention_ms: Some(0),
            ..base()
        }),
        "retention_ms"
    );
    assert_eq!(
        refused(TopicConfig {
            retention_bytes: Some(0),
            ..base()
        }),
        "retention_bytes"
    );
    let durability = DurabilityMode::Interval { ms: 0 };
    assert_eq!(
        refused(TopicConfig {
            durability,
            ..base()
        }),
        "durability"
    );
    assert_eq!(
        refused(TopicConfig {
            content_dedup: true,
            ..base()
        }),
        "content_dedup"
    );

    let edges = TopicConfig {
        partitions: 1024,
        max_record_bytes: MAX_RECORD_BYTES,
        segment_bytes: 64 << 10,
        retention_ms: None,
        retention_bytes: Some(1),
        durability: DurabilityMode::Interval { ms: 1 },
        dedup_window_ms: 1,
        content_dedup: true,
    };
    c.check(&Change::CreateTopic(topic_with("t", 0, edges)))
        .unwrap();
    let memory = TopicConfig {
        durability: DurabilityMode::Memory,
        partitions: 1,
        ..base()
    };
    c.check(&Change::CreateTopic(topic_with("t", 0, memory)))
        .unwrap();
}

#[test]
fn ids_of_live_topics_and_subscriptions_are_not_reused() {
    let mut c = two_topics();
    ok(
        &mut c,
        Change::CreateSubscription(sub("orders", "billing", 2)),
    );
    assert_eq!(refused_field(&c, Change::CreateTopic(topic("t", 1))), "id");
    let (_, message) = config_error(&c, Change::CreateTopic(topic("t", 2)));
    assert_eq!(
        message,
        "invalid id: 2 is already the id of subscription \"orders/billing\""
    );
    assert_eq!(
        refused_field(&c, Change::CreateSubscription(sub("orders", "s", 0))),
        "id"
    );
}

#[test]
fn ids_are_allocated_and_bumped_past_every_id_applied() {
    let mut c = Catalog::default();
    assert_eq!((c.allocate_id(), c.allocate_id(), c.next_id), (0, 1, 2));
    // Replay applies ids it did not allocate: it must never hand them out.
    c.apply(&Change::CreateTopic(topic("t", 10))).unwrap();
    assert_eq!(c.next_id, 11);
    c.apply(&Change::CreateSubscription(sub("t", "s", 20)))
        .unwrap();
    assert_eq!(c.next_id, 21);
    c.apply(&Change::CreateTopic(topic("u", 3))).unwrap();
    assert_eq!(c.next_id, 21, "a lower id does not move it back");
    c.apply(&Change::DeleteTopic { name: "t".into() }).unwrap();
    assert_eq!(
        c.allocate_id(),
        21,
        "a deleted topic's id is not handed out again"
    );
}

#[test]
fn queue_settings_are_checked() {
    let c = two_topics();
    let refused = |q: QueueConfig| refused_field(&c, Change::CreateTopic(queue("q", 5, q)));
    let base = QueueConfig::default;
    assert_eq!(
        refused(QueueConfig {
            max_length: Some(0),
            ..base()
        }),
        "max_length"
    );
    assert_eq!(
        refused(QueueConfig {
            max_length_bytes: Some(0),
            ..base()
        }),
        "max_length_bytes"
    );
    assert_eq!(
        refused(QueueConfig {
            message_ttl_ms: Some(0),
            ..base()
        }),
        "message_ttl_ms"
    );
    let twelve_hours = 12 * 3600 * 1000;
    assert_eq!(
        refused(QueueConfig {
            delay_ms: twelve_hours + 1,
            ..base()
        }),
        "delay_ms"
    );
    let long_lease = QueueConfig {
        visibility_timeout_ms: twelve_hours + 1,
        ..base()
    };
    assert_eq!(refused(long_lease), "visibility_timeout_ms");
    assert_eq!(
        refused(QueueConfig {
            partitions: 0,
            ..base()
        }),
        "partitions"
    );
    let dl = Some("dlq".to_owned());
    let no_limit = QueueConfig {
        dead_letter: dl.clone(),
        ..base()
    };
    let (field, message) = config_error(&c, Change::CreateTopic(queue("q", 5, no_limit)));
    assert_eq!(field, "max_deliveries");
    assert!(
        message.contains(
            "set max_deliveries to say after how many deliveries a record is dead-lettered"
        ),
        "{message}"
    );
    let into_itself = QueueConfig {
        dead_letter: Some("q".into()),
        max_deliveries: 3,
        ..base()
    };
    let (field, message) = config_error(&c, Change::CreateTopic(queue("q", 5, into_itself)));
    assert_eq!(
        (field.as_str(), message.as_str()),
        (
            "dead_letter",
            "invalid dead_letter: \"q\" cannot dead-letter into itself"
        )
    );
    let missing = QueueConfig {
        dead_letter: Some("nope".into()),
        max_deliveries: 3,
        ..base()
    };
    assert_eq!(
        c.check(&Change::CreateTopic(queue("q", 5, missing))),
        Err(CatalogError::NotFound {
            kind: "dead-letter topic",
            name: "nope".into()
        })
    );

    let edges = QueueConfig {
        fifo: true,
        delay_ms: twelve_hours,
        visibility_timeout_ms: twelve_hours,
        max_length: Some(1),
        dead_letter: dl,
        max_deliveries: 1,
        content_dedup: true,
        ..base()
    };
    c.check(&Change::CreateTopic(queue("q", 5, edges))).unwrap();
    // A standard queue with content de-duplication needs a window.
    let no_window = QueueConfig {
        content_dedup: true,
        ..base()
    };
    assert_eq!(refused(no_window), "content_dedup");
}

#[test]
fn a_queues_topic_settings_must_agree_with_the_queue() {
    let c = Catalog::default();
    let mut def = queue("q", 0, QueueConfig::default());
    def.config.partitions = 4;
    assert_eq!(refused_field(&c, Change::CreateTopic(def)), "config");
    // Segment size and byte retention are the topic's alone.
    let mut def = queue("q", 0, QueueConfig::default());
    def.config.segment_bytes = 1 << 20;
    def.config.retention_bytes = Some(1 << 30);
    c.check(&Change::CreateTopic(def)).unwrap();
}

#[test]
fn a_queue_has_one_subscription_of_its_own_kind() {
    let mut c = two_topics();
    let fifo = queue(
        "jobs.fifo",
        5,
        QueueConfig {
            fifo: true,
            ..QueueConfig::default()
        },
    );
    ok(&mut c, Change::CreateTopic(fifo.clone()));
    assert_eq!(c.queues_without_subscription().count(), 1);

    let mut shared = queue_subscription(&fifo, 6);
    shared.config.mode = DeliveryMode::Shared;
    let (field, message) = config_error(&c, Change::CreateSubscription(shared));
    assert_eq!(field, "mode");
    assert!(
        message.contains("FIFO queue's subscription must be ordered"),
        "{message}"
    );

    let mut other = queue_subscription(&fifo, 6);
    other.name = "spy".into();
    assert_eq!(
        refused_field(&c, Change::CreateSubscription(other)),
        "topic"
    );

    let mut lease = queue_subscription(&fifo, 6);
    lease.config.visibility_timeout_ms = 1;
    assert_eq!(
        refused_field(&c, Change::CreateSubscription(lease)),
        "config"
    );

    let mut tuned = queue_subscription(&fifo, 6);
    tuned.config.max_in_flight = 10;
    ok(&mut c, Change::CreateSubscription(tuned));
    assert_eq!(c.queues_without_subscription().count(), 0);

    let standard = queue("jobs", 7, QueueConfig::default());
    ok(&mut c, Change::CreateTopic(standard.clone()));
    let mut ordered = queue_subscription(&standard, 8);
    ordered.config.mode = DeliveryMode::Ordered;
    assert_eq!(
        refused_field(&c, Change::CreateSubscription(ordered)),
        "mode"
    );
    ok(
        &mut c,
        Change::CreateSubscription(queue_subscription(&standard, 8)),
    );
}

#[test]
fn a_queues_subscription_goes_only_with_the_queue() {
    let mut c = Catalog::default();
    let q = queue("jobs", 0, QueueConfig::default());
    ok(&mut c, Change::CreateTopic(q.clone()));
    ok(
        &mut c,
        Change::CreateSubscription(queue_subscription(&q, 1)),
    );
    let delete_sub = Change::DeleteSubscription {
        topic: "jobs".into(),
        name: "jobs".into(),
    };
    let err = c.check(&delete_sub).unwrap_err();
    assert!(matches!(
        err,
        CatalogError::InUse {
            kind: "subscription",
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "cannot delete subscription \"jobs/jobs\": it is queue \"jobs\"'s own subscription; \
         delete the queue instead"
    );
    assert!(
        c.apply(&delete_sub).is_err(),
        "apply keeps the invariant too"
    );
    ok(
        &mut c,
        Change::DeleteTopic {
            name: "jobs".into(),
        },
    );
    assert!(c.topics.is_empty() && c.subscriptions.is_empty());
}

#[test]
fn subscription_settings_are_checked() {
    let c = two_topics();
    let refused = |config: SubscriptionConfig| {
        refused_field(
            &c,
            Change::CreateSubscription(sub_with("orders", "s", 5, config)),
        )
    };
    let base = SubscriptionConfig::default;
    assert_eq!(
        refused(SubscriptionConfig {
            max_in_flight: 0,
            ..base()
        }),
        "max_in_flight"
    );
    assert_eq!(
        refused(SubscriptionConfig {
            max_in_flight: 1_000_001,
            ..base()
        }),
        "max_in_flight"
    );
    assert_eq!(
        refused(SubscriptionConfig {
            max_buffered: 0,
            ..base()
        }),
        "max_buffered"
    );
    assert_eq!(
        refused(SubscriptionConfig {
            max_buffered: 100_001,
            ..base()
        }),
        "max_buffered"
    );
    let long_lease = SubscriptionConfig {
        visibility_timeout_ms: 12 * 3600 * 1000 + 1,
        ..base()
    };
    assert_eq!(refused(long_lease), "visibility_timeout_ms");
    let dl = Some("dlq".to_owned());
    let (field, message) = config_error(
        &c,
        Change::CreateSubscription(sub_with(
            "orders",
            "s",
            5,
            SubscriptionConfig {
                dead_letter: dl.clone(),
                ..base()
            },
        )),
    );
    assert_eq!(field, "max_deliveries");
    assert!(
        message.contains("set max_deliveries to say after how many deliveries"),
        "{message}"
    );
    let own = SubscriptionConfig {
        dead_letter: Some("orders".into()),
        max_deliveries: 5,
        ..base()
    };
    assert_eq!(refused(own), "dead_letter");
    let missing = SubscriptionConfig {
        dead_letter: Some("gone".into()),
        max_deliveries: 5,
        ..base()
    };
    assert_eq!(
        c.check(&Change::CreateSubscription(sub_with(
            "orders", "s", 5, missing
        ))),
        Err(CatalogError::NotFound {
            kind: "dead-letter topic",
            name: "gone".into()
        })
    );

    let not_json = SubscriptionConfig {
        filter: filter("{", Scope::Attributes),
        ..base()
    };
    assert_eq!(refused(not_json), "filter");
    let nested = filter(r#"{"a":{"b":["c"]}}"#, Scope::Attributes);
    let (field, message) = config_error(
        &c,
        Change::CreateSubscription(sub_with(
            "orders",
            "s",
            5,
            SubscriptionConfig {
                filter: nested,
                ..base()
            },
        )),
    );
    assert_eq!(field, "filter");
    assert!(
        message.contains("attribute policies cannot nest objects"),
        "{message}"
    );

    let good = SubscriptionConfig {
        mode: DeliveryMode::Ordered,
        filter: filter(r#"{"a":{"b":["c"]}}"#, Scope::Body),
        dead_letter: dl,
        max_deliveries: 5,
        max_in_flight: 1_000_000,
        max_buffered: 100_000,
        visibility_timeout_ms: 0,
        ..base()
    };
    c.check(&Change::CreateSubscription(sub_with(
        "orders", "s", 5, good,
    )))
    .unwrap();
}

#[test]
fn stream_subscriptions_never_dead_letter() {
    let c = two_topics();
    let stream = |dead_letter: Option<&str>, max_deliveries| SubscriptionConfig {
        mode: DeliveryMode::Stream,
        dead_letter: dead_letter.map(Into::into),
        max_deliveries,
        ..SubscriptionConfig::default()
    };
    let create = |config| Change::CreateSubscription(sub_with("orders", "s", 5, config));
    assert_eq!(
        refused_field(&c, create(stream(Some("dlq"), 3))),
        "dead_letter"
    );
    assert_eq!(refused_field(&c, create(stream(None, 3))), "max_deliveries");
    c.check(&create(stream(None, 0))).unwrap();
}

#[test]
fn a_subscription_needs_its_topic_and_one_start_offset_per_partition() {
    let mut c = two_topics();
    assert_eq!(
        c.check(&Change::CreateSubscription(sub("nope", "s", 5))),
        Err(CatalogError::NotFound {
            kind: "topic",
            name: "nope".into()
        })
    );
    let wide = TopicConfig {
        partitions: 3,
        ..TopicConfig::default()
    };
    ok(&mut c, Change::CreateTopic(topic_with("wide", 2, wide)));
    let (field, message) = config_error(&c, Change::CreateSubscription(sub("wide", "s", 5)));
    assert_eq!(field, "start_offsets");
    assert!(
        message.contains("has 1 entries but topic \"wide\" has 3 partitions"),
        "{message}"
    );
    let mut three = sub("wide", "s", 5);
    three.start_offsets = vec![0, 7, 9];
    ok(&mut c, Change::CreateSubscription(three.clone()));
    three.id = 6;
    assert_eq!(
        c.check(&Change::CreateSubscription(three)),
        Err(CatalogError::AlreadyExists {
            kind: "subscription",
            name: "wide/s".into()
        })
    );
    // The same name on another topic is another subscription.
    ok(&mut c, Change::CreateSubscription(sub("orders", "s", 6)));
}

#[test]
fn exchanges_need_a_new_name_and_an_existing_alternate() {
    let mut c = two_topics();
    let missing = exchange("x", ExchangeKind::Direct, Some("nope"));
    assert_eq!(
        c.check(&Change::CreateExchange(missing)),
        Err(CatalogError::NotFound {
            kind: "alternate topic",
            name: "nope".into()
        })
    );
    ok(
        &mut c,
        Change::CreateExchange(exchange("x", ExchangeKind::Direct, Some("dlq"))),
    );
    let again = exchange("x", ExchangeKind::Fanout, None);
    assert_eq!(
        c.check(&Change::CreateExchange(again))
            .unwrap_err()
            .to_string(),
        "exchange \"x\" already exists"
    );
    assert!(matches!(
        c.check(&Change::DeleteExchange { name: "y".into() }),
        Err(CatalogError::NotFound {
            kind: "exchange",
            ..
        })
    ));
}

#[test]
fn bindings_are_checked_as_the_exchange_would() {
    let mut c = two_topics();
    for (name, kind) in [
        ("fan", ExchangeKind::Fanout),
        ("direct", ExchangeKind::Direct),
        ("topic", ExchangeKind::Topic),
        ("headers", ExchangeKind::Headers),
    ] {
        ok(&mut c, Change::CreateExchange(exchange(name, kind, None)));
    }
    let bind = |b: BindingDef| Change::Bind(b);
    assert!(matches!(
        c.check(&bind(binding("nope", "orders", None))),
        Err(CatalogError::NotFound {
            kind: "exchange",
            ..
        })
    ));
    assert_eq!(
        c.check(&bind(binding("fan", "nope", None))),
        Err(CatalogError::NotFound {
            kind: "destination topic",
            name: "nope".into()
        })
    );
    let err = c
        .check(&bind(binding("headers", "orders", None)))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid binding: a headers exchange needs a filter policy on the attributes"
    );
    let long = "a".repeat(300);
    assert!(matches!(
        c.check(&bind(binding("topic", "orders", Some(&long)))),
        Err(CatalogError::Binding(m)) if m.contains("255")
    ));
    let mut bad_filter = binding("direct", "orders", Some("k"));
    bad_filter.filter = filter(r#"{"a":"b"}"#, Scope::Body);
    assert!(matches!(
        c.check(&bind(bad_filter)),
        Err(CatalogError::Binding(_))
    ));

    ok(&mut c, bind(binding("direct", "orders", Some("k"))));
    assert!(matches!(
        c.check(&bind(binding("direct", "orders", Some("k")))),
        Err(CatalogError::Binding(m)) if m.contains("already bound")
    ));
    assert!(c
        .apply(&bind(binding("direct", "orders", Some("k"))))
        .is_err());
    ok(&mut c, bind(binding("direct", "orders", Some("j"))));
    ok(&mut c, bind(binding("direct", "dlq", Some("k"))));
    // A fanout exchange ignores keys: another key is the same binding.
    ok(&mut c, bind(binding("fan", "orders", Some("a"))));
    assert!(matches!(
        c.check(&bind(binding("fan", "orders", Some("b")))),
        Err(CatalogError::Binding(_))
    ));
    let mut filtered = binding("fan", "orders", None);
    filtered.filter = filter(r#"{"type":["a"]}"#, Scope::Body);
    ok(&mut c, bind(filtered));
    let mut headers = binding("headers", "orders", None);
    headers.filter = filter(r#"{"type":["a"]}"#, Scope::Attributes);
    ok(&mut c, bind(headers));
    ok(&mut c, bind(binding("topic", "orders", Some("a.*.#"))));
    let direct: Vec<_> = c.bindings_of("direct").map(|b| b.key.as_deref()).collect();
    assert_eq!(direct, vec![Some("k"), Some("j"), Some("k")]);
    assert_eq!(c.bindings_of("fan").count(), 2);
}

#[test]
fn unbind_removes_what_the_exchange_would() {
    let mut c = two_topics();
    ok(
        &mut c,
        Change::CreateExchange(exchange("direct", ExchangeKind::Direct, None)),
    );
    ok(
        &mut c,
        Change::CreateExchange(exchange("fan", ExchangeKind::Fanout, None)),
    );
    ok(&mut c, Change::Bind(binding("direct", "orders", Some("k"))));
    ok(&mut c, Change::Bind(binding("direct", "orders", Some("j"))));
    let mut filtered = binding("fan", "orders", Some("x"));
    filtered.filter = filter(r#"{"type":["a"]}"#, Scope::Body);
    ok(&mut c, Change::Bind(filtered));
    ok(&mut c, Change::Bind(binding("fan", "orders", None)));

    let missing = Change::Unbind(binding("direct", "orders", Some("nope")));
    let err = c.check(&missing).unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::NotFound {
                kind: "binding",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "binding \"direct -> orders (key 'nope')\" does not exist"
    );
    assert!(matches!(
        c.check(&Change::Unbind(binding("gone", "orders", None))),
        Err(CatalogError::NotFound {
            kind: "exchange",
            ..
        })
    ));
    ok(
        &mut c,
        Change::Unbind(binding("direct", "orders", Some("k"))),
    );
    let left: Vec<_> = c.bindings_of("direct").map(|b| b.key.as_deref()).collect();
    assert_eq!(left, vec![Some("j")]);
    // Fanout ignores keys, and unbinding ignores filters: both go.
    ok(
        &mut c,
        Change::Unbind(binding("fan", "orders", Some("other"))),
    );
    assert_eq!(c.bindings_of("fan").count(), 0);
}

#[test]
fn deleting_a_topic_takes_its_subscriptions_and_bindings() {
    let mut c = two_topics();
    ok(&mut c, Change::CreateTopic(topic("orders.eu", 2)));
    ok(&mut c, Change::CreateSubscription(sub("orders", "a", 3)));
    ok(&mut c, Change::CreateSubscription(sub("orders", "b", 4)));
    ok(&mut c, Change::CreateSubscription(sub("orders.eu", "a", 5)));
    ok(
        &mut c,
        Change::CreateExchange(exchange("x", ExchangeKind::Fanout, None)),
    );
    ok(&mut c, Change::Bind(binding("x", "orders", None)));
    ok(&mut c, Change::Bind(binding("x", "dlq", None)));
    let names: Vec<_> = c
        .subscriptions_of("orders")
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, vec!["a", "b"]);
    ok(
        &mut c,
        Change::DeleteTopic {
            name: "orders".into(),
        },
    );
    assert_eq!(c.subscriptions_of("orders").count(), 0);
    assert_eq!(c.subscriptions_of("orders.eu").count(), 1);
    let left: Vec<_> = c.bindings.iter().map(|b| b.destination.as_str()).collect();
    assert_eq!(left, vec!["dlq"]);
    assert_eq!(
        c.check(&Change::DeleteTopic {
            name: "orders".into()
        }),
        Err(CatalogError::NotFound {
            kind: "topic",
            name: "orders".into()
        })
    );
}

#[test]
fn a_topic_in_use_as_dead_letter_or_alternate_is_not_deleted() {
    let mut c = two_topics();
    let config = SubscriptionConfig {
        dead_letter: Some("dlq".into()),
        max_deliveries: 3,
        ..SubscriptionConfig::default()
    };
    ok(
        &mut c,
        Change::CreateSubscription(sub_with("orders", "s", 2, config)),
    );
    let delete = Change::DeleteTopic { name: "dlq".into() };
    let err = c.check(&delete).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot delete topic \"dlq\": subscription \"orders/s\" dead-letters into it"
    );
    ok(
        &mut c,
        Change::DeleteSubscription {
            topic: "orders".into(),
            name: "s".into(),
        },
    );

    let q = QueueConfig {
        dead_letter: Some("dlq".into()),
        max_deliveries: 3,
        ..QueueConfig::default()
    };
    // The queue alone, without its subscription, still holds the target.
    ok(&mut c, Change::CreateTopic(queue("jobs", 3, q)));
    assert!(
        matches!(c.check(&delete), Err(CatalogError::InUse { by, .. }) if by.contains("queue \"jobs\""))
    );
    ok(
        &mut c,
        Change::DeleteTopic {
            name: "jobs".into(),
        },
    );

    ok(
        &mut c,
        Change::CreateExchange(exchange("x", ExchangeKind::Topic, Some("dlq"))),
    );
    let err = c.check(&delete).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("exchange \"x\" uses it as its alternate"),
        "{err}"
    );
    assert!(
        c.apply(&delete).is_err(),
        "apply keeps references whole too"
    );
    ok(&mut c, Change::DeleteExchange { name: "x".into() });

    // A topic's own subscription dead-lettering elsewhere does not hold it.
    ok(&mut c, delete);
    assert_eq!(c.topics.keys().collect::<Vec<_>>(), vec!["orders"]);
}

#[test]
fn deleting_an_exchange_takes_its_bindings() {
    let mut c = two_topics();
    ok(
        &mut c,
        Change::CreateExchange(exchange("x", ExchangeKind::Fanout, None)),
    );
    ok(
        &mut c,
        Change::CreateExchange(exchange("y", ExchangeKind::Fanout, None)),
    );
    ok(&mut c, Change::Bind(binding("x", "orders", None)));
    ok(&mut c, Change::Bind(binding("y", "orders", None)));
    ok(&mut c, Change::DeleteExchange { name: "x".into() });
    assert_eq!(c.bindings, vec![binding("y", "orders", None)]);
    assert!(!c.exchanges.contains_key("x"));
}

#[test]
fn deleting_a_missing_subscription_is_refused() {
    let c = two_topics();
    let err = c
        .check(&Change::DeleteSubscription {
            topic: "orders".into(),
            name: "s".into(),
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "subscription \"orders/s\" does not exist");
}

#[test]
fn apply_checks_structure_but_not_todays_settings() {
    // A log written under looser rules must still replay.
    let mut c = Catalog::default();
    let loose = TopicConfig {
        partitions: 0,
        ..TopicConfig::default()
    };
    c.apply(&Change::CreateTopic(topic_with("t", 0, loose.clone())))
        .unwrap();
    let before = c.clone();
    let again = Change::CreateTopic(topic_with("t", 1, loose));
    assert!(matches!(
        c.apply(&again),
        Err(CatalogError::AlreadyExists { .. })
    ));
    assert!(c
        .apply(&Change::DeleteExchange { name: "x".into() })
        .is_err());
    assert!(c
        .apply(&Change::CreateSubscription(sub("nope", "s", 4)))
        .is_err());
    assert_eq!(c, before, "a refused apply changes nothing");
}

#[test]
fn the_catalog_round_trips_through_json() {
    let mut c = two_topics();
    let q = queue(
        "jobs",
        2,
        QueueConfig {
            fifo: true,
            ..QueueConfig::default()
        },
    );
    ok(&mut c, Change::CreateTopic(q.clone()));
    ok(
        &mut c,
        Change::CreateSubscription(queue_subscription(&q, 3)),
    );
    let config = SubscriptionConfig {
        filter: filter(r#"{"a":["b"]}"#, Scope::Body),
        ..SubscriptionConfig::default()
    };
    ok(
        &mut c,
        Change::CreateSubscription(sub_with("orders", "s", 4, config)),
    );
    ok(
        &mut c,
        Change::CreateExchange(exchange("x", ExchangeKind::Headers, Some("dlq"))),
    );
    let mut b = binding("x", "jobs", None);
    b.filter = filter(r#"{"a":["b"]}"#, Scope::Attributes);
    ok(&mut c, Change::Bind(b));
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.contains(r#""subscriptions":[{"#), "a list: {json}");
    let back: Catalog = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);

    let twice = r#"{"subscriptions":[
        {"id":1,"topic":"t","name":"s","config":{},"start_offsets":[0]},
        {"id":2,"topic":"t","name":"s","config":{},"start_offsets":[0]}]}"#;
    let err = serde_json::from_str::<Catalog>(twice).unwrap_err();
    assert!(err.to_string().contains("listed twice"), "{err}");
}
