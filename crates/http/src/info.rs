//! Descriptions with live figures: topics, queues, subscriptions and
//! exchanges as the API shows them (settings, partitions, depth, in
//! flight, lag, counters and rates).

use std::sync::atomic::Ordering::Relaxed;

use hermod_api::{ExchangeInfo, Overview, PartitionInfo, QueueInfo, SubscriptionInfo, TopicInfo};
use hermod_core::catalog::Catalog;
use hermod_core::subscription::Subscription;
use hermod_core::topic::Topic;
use hermod_core::Broker;

use crate::error::ApiError;
use crate::rates::Rates;

pub fn topic(broker: &Broker, rates: &Rates, name: &str) -> Result<TopicInfo, ApiError> {
    topic_in(broker, &broker.catalog(), rates, name)
}

/// A topic's description, its subscriptions found in `catalog` (one copy
/// of the catalog serves a whole list).
fn topic_in(
    broker: &Broker,
    catalog: &Catalog,
    rates: &Rates,
    name: &str,
) -> Result<TopicInfo, ApiError> {
    let t = broker.topic(name)?;
    let subscriptions = catalog
        .subscriptions
        .keys()
        .filter(|(topic, _)| topic == name)
        .filter_map(|(topic, sub)| subscription(broker, rates, topic, sub).ok())
        .collect();
    let stats = t.stats();
    Ok(TopicInfo {
        name: name.to_string(),
        config: t.def().config.clone(),
        partitions: partitions(&t)?,
        published: stats.published.load(Relaxed),
        published_bytes: stats.published_bytes.load(Relaxed),
        duplicates: stats.duplicates.load(Relaxed),
        rates: rates.topic(name),
        subscriptions,
    })
}

pub fn subscription(
    broker: &Broker,
    rates: &Rates,
    topic: &str,
    name: &str,
) -> Result<SubscriptionInfo, ApiError> {
    let s = broker.subscription(topic, name)?;
    let st = s.stats();
    let depth = s.depth();
    Ok(SubscriptionInfo {
        topic: topic.to_string(),
        name: name.to_string(),
        config: s.def().config.clone(),
        depth,
        in_flight: s.in_flight(),
        lag: depth,
        delivered: st.delivered.load(Relaxed),
        acked: st.acked.load(Relaxed),
        nacked: st.nacked.load(Relaxed),
        expired: st.expired.load(Relaxed),
        filtered: st.filtered.load(Relaxed),
        dead_lettered: st.dead_lettered.load(Relaxed),
        rates: rates.subscription(topic, name),
    })
}

pub fn queue(broker: &Broker, rates: &Rates, name: &str) -> Result<QueueInfo, ApiError> {
    let s = broker.queue(name)?;
    let t = s.topic().clone();
    let config = t.def().queue.clone().ok_or_else(|| not_a_queue(name))?;
    queue_info(rates, name, config, &t, &s)
}

fn queue_info(
    rates: &Rates,
    name: &str,
    config: hermod_api::QueueConfig,
    t: &Topic,
    s: &Subscription,
) -> Result<QueueInfo, ApiError> {
    let st = s.stats();
    let sub_rates = rates.subscription(name, name);
    Ok(QueueInfo {
        name: name.to_string(),
        config,
        partitions: partitions(t)?,
        depth: s.depth(),
        in_flight: s.in_flight(),
        published: t.stats().published.load(Relaxed),
        delivered: st.delivered.load(Relaxed),
        acked: st.acked.load(Relaxed),
        nacked: st.nacked.load(Relaxed),
        expired: st.expired.load(Relaxed),
        dead_lettered: st.dead_lettered.load(Relaxed),
        rates: hermod_api::Rates {
            published_per_s: rates.topic(name).published_per_s,
            ..sub_rates
        },
    })
}

pub fn exchange(broker: &Broker, name: &str) -> Result<ExchangeInfo, ApiError> {
    exchange_in(&broker.catalog(), name)
}

fn exchange_in(catalog: &Catalog, name: &str) -> Result<ExchangeInfo, ApiError> {
    let def = catalog.exchanges.get(name).ok_or_else(|| {
        ApiError::new(
            "not_found",
            format!("exchange `{name}` does not exist; list them with GET /v1/exchanges"),
        )
    })?;
    Ok(ExchangeInfo {
        name: name.to_string(),
        config: def.config.clone(),
        bindings: catalog
            .bindings
            .iter()
            .filter(|b| b.exchange == name)
            .cloned()
            .collect(),
    })
}

/// Every topic (not the queues), in name order, skipping what was deleted
/// meanwhile.
pub fn topics(broker: &Broker, rates: &Rates) -> Vec<TopicInfo> {
    let catalog = broker.catalog();
    catalog
        .topics
        .values()
        .filter(|d| d.queue.is_none())
        .filter_map(|d| topic_in(broker, &catalog, rates, &d.name).ok())
        .collect()
}

/// Every queue, in name order, skipping what was deleted meanwhile.
pub fn queues(broker: &Broker, rates: &Rates) -> Vec<QueueInfo> {
    let catalog = broker.catalog();
    catalog
        .topics
        .values()
        .filter(|d| d.queue.is_some())
        .filter_map(|d| queue(broker, rates, &d.name).ok())
        .collect()
}

pub fn exchanges(broker: &Broker) -> Vec<ExchangeInfo> {
    let catalog = broker.catalog();
    catalog
        .exchanges
        .keys()
        .filter_map(|name| exchange_in(&catalog, name).ok())
        .collect()
}

/// Everything, skipping what was deleted while the overview was made.
pub fn overview(broker: &Broker, rates: &Rates) -> Overview {
    Overview {
        topics: topics(broker, rates),
        queues: queues(broker, rates),
        exchanges: exchanges(broker),
    }
}

fn partitions(t: &Topic) -> Result<Vec<PartitionInfo>, ApiError> {
    (0..t.partitions())
        .map(|p| {
            let r = t.partition_range(p)?;
            Ok(PartitionInfo {
                partition: p,
                log_start: r.start,
                log_end: r.end,
                size_bytes: r.size_bytes,
            })
        })
        .collect()
}

pub fn not_a_queue(name: &str) -> ApiError {
    ApiError::new(
        "not_found",
        format!("queue `{name}` does not exist (a topic of that name does; use /v1/topics/{name})"),
    )
}
