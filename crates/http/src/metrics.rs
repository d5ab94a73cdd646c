//! `/metrics` in the Prometheus text format. Latency histograms (publish,
//! delivery, disk sync) live for the process; everything else (messages
//! in and out, bytes, depth, in flight, lag, dead letters, connections) is
//! read from the broker at each scrape, so a scrape always shows the
//! current figures and nothing is counted twice.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::error::ApiError;
use crate::AppState;

type Labels = Vec<(&'static str, String)>;

/// The process's latency histograms.
#[derive(Debug)]
pub struct Metrics {
    publish: Histogram,
    delivery: Histogram,
    sync: Histogram,
}

static GLOBAL: OnceLock<Arc<Metrics>> = OnceLock::new();

impl Metrics {
    /// The one set of histograms of this process (disk syncs are observed
    /// by the storage layer through a plain function, hence global).
    pub fn global() -> Arc<Metrics> {
        GLOBAL
            .get_or_init(|| {
                hermod_storage::io::observe_syncs(|d| {
                    if let Some(m) = GLOBAL.get() {
                        m.sync.observe(d.as_secs_f64());
                    }
                });
                Arc::new(Metrics {
                    // 100 µs to about 52 s.
                    publish: Histogram::new(exponential_buckets(0.0001, 2.0, 20)),
                    // 1 ms to about 9 days: a delivery can wait in a backlog.
                    delivery: Histogram::new(exponential_buckets(0.001, 4.0, 16)),
                    // 10 µs to about 5 s.
                    sync: Histogram::new(exponential_buckets(0.00001, 2.0, 20)),
                })
            })
            .clone()
    }

    /// A publish request, from its arrival to its durable answer.
    pub fn publish_latency(&self, d: Duration) {
        self.publish.observe(d.as_secs_f64());
    }

    /// A delivery, from the record's publish time to its hand-over.
    pub fn delivery_latency(&self, ms: i64) {
        self.delivery.observe(ms.max(0) as f64 / 1000.0);
    }
}

pub async fn metrics(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let text = st
        .blocking({
            let st = st.clone();
            move |_| render(&st)
        })
        .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

fn render(st: &AppState) -> Result<String, ApiError> {
    let mut registry = Registry::with_prefix("hermod");
    let m = &st.metrics;
    registry.register(
        "publish_latency_seconds",
        "Publish requests, arrival to durable answer",
        m.publish.clone(),
    );
    registry.register(
        "delivery_latency_seconds",
        "Deliveries, publish time to hand-over",
        m.delivery.clone(),
    );
    registry.register(
        "sync_latency_seconds",
        "fdatasync calls of the data files",
        m.sync.clone(),
    );
    broker_figures(st, &mut registry);
    connection_figures(st, &mut registry);
    let mut out = String::new();
    encode(&mut out, &registry).map_err(|e| ApiError::internal(format!("metrics: {e}")))?;
    Ok(out)
}

fn broker_figures(st: &AppState, registry: &mut Registry) {
    let counter = || Family::<Labels, Counter>::default();
    let gauge = || Family::<Labels, Gauge>::default();
    let (published, published_bytes, duplicates) = (counter(), counter(), counter());
    let (delivered, acked, nacked, expired, dead) =
        (counter(), counter(), counter(), counter(), counter());
    let (depth, in_flight, lag) = (gauge(), gauge(), gauge());
    let catalog = st.broker.catalog();
    for name in catalog.topics.keys() {
        let Ok(t) = st.broker.topic(name) else {
            continue;
        };
        let l = vec![("topic", name.clone())];
        let s = t.stats();
        published
            .get_or_create(&l)
            .inc_by(s.published.load(Relaxed));
        published_bytes
            .get_or_create(&l)
            .inc_by(s.published_bytes.load(Relaxed));
        duplicates
            .get_or_create(&l)
            .inc_by(s.duplicates.load(Relaxed));
    }
    for (topic, name) in catalog.subscriptions.keys() {
        let Ok(sub) = st.broker.subscription(topic, name) else {
            continue;
        };
        let l = vec![("topic", topic.clone()), ("subscription", name.clone())];
        let s = sub.stats();
        delivered
            .get_or_create(&l)
            .inc_by(s.delivered.load(Relaxed));
        acked.get_or_create(&l).inc_by(s.acked.load(Relaxed));
        nacked.get_or_create(&l).inc_by(s.nacked.load(Relaxed));
        expired.get_or_create(&l).inc_by(s.expired.load(Relaxed));
        dead.get_or_create(&l).inc_by(s.dead_lettered.load(Relaxed));
        let d = sub.depth() as i64;
        depth.get_or_create(&l).set(d);
        in_flight.get_or_create(&l).set(sub.in_flight() as i64);
        lag.get_or_create(&l).set(d);
    }
    registry.register(
        "messages_published",
        "Messages appended, per topic (queues included)",
        published,
    );
    registry.register(
        "published_bytes",
        "Bytes of message values appended, per topic",
        published_bytes,
    );
    registry.register(
        "duplicates",
        "Publishes not appended as duplicates, per topic",
        duplicates,
    );
    registry.register(
        "messages_delivered",
        "Deliveries, per subscription",
        delivered,
    );
    registry.register("messages_acked", "Acks, per subscription", acked);
    registry.register("messages_nacked", "Nacks, per subscription", nacked);
    registry.register(
        "messages_expired",
        "Records that expired undelivered, per subscription",
        expired,
    );
    registry.register(
        "messages_dead_lettered",
        "Records dead-lettered, per subscription",
        dead,
    );
    registry.register(
        "subscription_depth",
        "Unfinished records (ready, delayed, in flight)",
        depth,
    );
    registry.register(
        "subscription_in_flight",
        "Records leased right now",
        in_flight,
    );
    registry.register(
        "subscription_lag",
        "Records not yet consumed (after the committed offsets for stream subscriptions)",
        lag,
    );
}

fn connection_figures(st: &AppState, registry: &mut Registry) {
    let open = Gauge::<i64>::default();
    open.set(st.stats.connections_open.load(Relaxed) as i64);
    let accepted = Counter::<u64>::default();
    accepted.inc_by(st.stats.connections_accepted.load(Relaxed));
    let refused = Counter::<u64>::default();
    refused.inc_by(st.stats.connections_refused.load(Relaxed));
    registry.register("connections_open", "Open HTTP connections", open);
    registry.register(
        "connections_accepted",
        "HTTP connections accepted",
        accepted,
    );
    registry.register(
        "connections_refused",
        "HTTP connections refused at the limit",
        refused,
    );
}
