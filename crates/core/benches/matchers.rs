//! Micro-benchmarks of the two matchers on the routing path, with criterion:
//! the SNS filter-policy matcher (a five-key policy with exact, prefix,
//! numeric-range and anything-but rules, against a matching and a
//! non-matching message, on attributes and on a JSON body) and the AMQP
//! topic-pattern matcher (`*` and `#` patterns against a short and a long
//! routing key). Each iteration matches one message.
//!
//! Run with `cargo bench -p hermod-core --bench matchers`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hermod_core::filter::{AttributeValue, FilterPolicy, Scope};
use hermod_core::pattern::TopicPattern;
use serde_json::json;

use AttributeValue::{Number as N, String as S};

/// A typical subscription policy: five keys (SNS's limit), one of each kind
/// of rule plus an exact rule with two values.
const POLICY: &str = r#"{
    "store": ["example_corp"],
    "event": [{"prefix": "order-"}],
    "price_usd": [{"numeric": [">=", 100, "<", 500]}],
    "customer_interests": [{"anything-but": ["rugby", "tennis"]}],
    "region": ["eu-west-1", "eu-central-1"]
}"#;

/// The routing keys the topic patterns are matched against.
const SHORT_KEY: &str = "stock.ibm.nyse";
const LONG_KEY: &str = "audit.eu.west.1.svc.orders.v2.payments.gateway.db.eu.critical";

fn filter(c: &mut Criterion) {
    let mut group = configure(c, "filter_policy");
    let attributes = FilterPolicy::parse_for(POLICY, Scope::Attributes).unwrap();
    let body = FilterPolicy::parse_for(POLICY, Scope::Body).unwrap();
    for (name, price, want) in [("match", "250", true), ("no_match", "750", false)] {
        let attrs = message_attributes(price);
        assert_eq!(attributes.matches_attributes(&attrs), want);
        group.bench_function(BenchmarkId::new("attributes", name), |b| {
            b.iter(|| attributes.matches_attributes(black_box(&attrs)));
        });
        let json = message_body(price);
        assert_eq!(body.matches_body(&json), want);
        let id = BenchmarkId::new(format!("body_{}B", json.len()), name);
        group.bench_function(id, |b| {
            b.iter(|| body.matches_body(black_box(&json)));
        });
        // Baseline: parsing the body into a `serde_json::Value`, which body
        // matching starts with.
        if want {
            let id = BenchmarkId::new(format!("body_{}B", json.len()), "baseline_json_parse");
            group.bench_function(id, |b| {
                b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&json)).unwrap());
            });
        }
    }
    group.finish();
}

fn pattern(c: &mut Criterion) {
    let mut group = configure(c, "topic_pattern");
    let cases = [
        ("stock.*.nyse", SHORT_KEY, "short", true),
        ("stock.*.nyse", LONG_KEY, "long", false),
        ("audit.#", SHORT_KEY, "short", false),
        ("audit.#", LONG_KEY, "long", true),
        ("#.eu.*.critical", SHORT_KEY, "short", false),
        ("#.eu.*.critical", LONG_KEY, "long", false),
        ("#.eu.#.critical", LONG_KEY, "long", true),
    ];
    for (text, key, key_name, want) in cases {
        let pattern = TopicPattern::parse(text).unwrap();
        assert_eq!(pattern.matches(key), want, "{text} against {key}");
        group.bench_function(BenchmarkId::new(text, key_name), |b| {
            b.iter(|| pattern.matches(black_box(key)));
        });
    }
    group.finish();
}

criterion_group!(benches, filter, pattern);
criterion_main!(benches);

/// A group of short CPU-bound benchmarks, counted in messages matched.
fn configure<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    group
}

/// The policy's five attributes plus two it does not name, as a message
/// usually carries; `price` decides whether it matches.
fn message_attributes(price: &str) -> Vec<(&'static str, AttributeValue<'_>)> {
    vec![
        ("store", S("example_corp")),
        ("event", S("order-created")),
        ("price_usd", N(price)),
        ("customer_interests", S("football")),
        ("region", S("eu-west-1")),
        ("trace_id", S("5f1c7a2e-0b7d-4a5e-9a61-3c2d8e4f9b10")),
        ("content_type", S("application/json")),
    ]
}

/// The same fields in a JSON body of about 1 KiB, with an order's lines.
fn message_body(price: &str) -> Vec<u8> {
    let price: f64 = price.parse().unwrap();
    let lines: Vec<_> = (0..8)
        .map(|i| json!({"sku": format!("SKU-{i:05}"), "quantity": i + 1, "unit_price": 12.5, "title": "A product with a plausible name"}))
        .collect();
    json!({
        "store": "example_corp",
        "event": "order-created",
        "price_usd": price,
        "customer_interests": "football",
        "region": "eu-west-1",
        "order_id": "ord-2026-11-22-000123",
        "customer": {"id": "c-42", "email": "someone@example.com"},
        "lines": lines,
    })
    .to_string()
    .into_bytes()
}
