//! Idempotent creation, shared by the API's `PUT` routes and the server's
//! definitions file: creating what exists with the same settings succeeds
//! and changes nothing; what exists with other settings is an
//! `already_exists` error that says so. Each returns whether it created.

use hermod_api::{
    BindingDef, Definitions, ExchangeConfig, QueueConfig, SubscriptionConfig, TopicConfig,
};
use hermod_core::Broker;

use crate::error::ApiError;

pub fn topic(broker: &Broker, name: &str, config: TopicConfig) -> Result<bool, ApiError> {
    let existing = broker.catalog().topics.get(name).cloned();
    match existing {
        Some(def) if def.queue.is_some() => Err(differs("topic", name, "it is a queue")),
        Some(def) if def.config == config => Ok(false),
        Some(def) => Err(differs("topic", name, &diff(&def.config, &config))),
        None => created(broker.create_topic(name, config.clone()), || {
            topic(broker, name, config)
        }),
    }
}

pub fn queue(broker: &Broker, name: &str, config: QueueConfig) -> Result<bool, ApiError> {
    let existing = broker.catalog().topics.get(name).cloned();
    match existing {
        Some(def) => match def.queue {
            None => Err(differs("queue", name, "it is a topic, not a queue")),
            Some(q) if q == config => Ok(false),
            Some(q) => Err(differs("queue", name, &diff(&q, &config))),
        },
        None => created(broker.create_queue(name, config.clone()), || {
            queue(broker, name, config)
        }),
    }
}

pub fn subscription(
    broker: &Broker,
    topic: &str,
    name: &str,
    config: SubscriptionConfig,
) -> Result<bool, ApiError> {
    let key = (topic.to_string(), name.to_string());
    let existing = broker.catalog().subscriptions.get(&key).cloned();
    match existing {
        Some(def) if def.config == config => Ok(false),
        Some(def) => Err(differs(
            "subscription",
            &format!("{topic}/{name}"),
            &diff(&def.config, &config),
        )),
        None => created(
            broker.create_subscription(topic, name, config.clone()),
            || subscription(broker, topic, name, config),
        ),
    }
}

pub fn exchange(broker: &Broker, name: &str, config: ExchangeConfig) -> Result<bool, ApiError> {
    let existing = broker.catalog().exchanges.get(name).cloned();
    match existing {
        Some(def) if def.config == config => Ok(false),
        Some(def) => Err(differs("exchange", name, &diff(&def.config, &config))),
        None => created(broker.create_exchange(name, config.clone()), || {
            exchange(broker, name, config)
        }),
    }
}

pub fn binding(broker: &Broker, def: BindingDef) -> Result<bool, ApiError> {
    if broker.catalog().bindings.contains(&def) {
        return Ok(false);
    }
    broker.bind(def)?;
    Ok(true)
}

/// Creates everything a definitions file names, in an order that works:
/// exchanges, then queues and topics (dead-letter queues first, since a
/// queue names its dead-letter queue), then subscriptions and bindings.
pub fn definitions(broker: &Broker, defs: &Definitions) -> Result<(), ApiError> {
    for (name, config) in &defs.exchanges {
        exchange(broker, name, config.clone())?;
    }
    for (name, config) in &defs.topics {
        topic(broker, name, config.clone())?;
    }
    let mut queues: Vec<_> = defs.queues.iter().collect();
    // A dead-letter queue must exist before a queue that names it.
    queues.sort_by_key(|(name, _)| {
        !defs
            .queues
            .values()
            .any(|q| q.dead_letter.as_deref() == Some(name.as_str()))
    });
    for (name, config) in queues {
        queue(broker, name, config.clone())?;
    }
    for s in &defs.subscriptions {
        subscription(broker, &s.topic, &s.name, s.config.clone())?;
    }
    for b in &defs.bindings {
        binding(broker, b.clone())?;
    }
    Ok(())
}

/// The outcome of a create: made now, or, when a concurrent create won the
/// race, whatever comparing with the winner says.
fn created<T>(
    result: hermod_core::Result<T>,
    again: impl FnOnce() -> Result<bool, ApiError>,
) -> Result<bool, ApiError> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code() == "already_exists" => again(),
        Err(e) => Err(e.into()),
    }
}

fn differs(kind: &str, name: &str, how: &str) -> ApiError {
    ApiError::new(
        "already_exists",
        format!("{kind} `{name}` already exists with other settings ({how}); delete it first or use its settings"),
    )
}

/// The settings that differ, as `field: old -> new`.
fn diff<T: serde::Serialize>(old: &T, new: &T) -> String {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return "settings differ".to_string();
    };
    let changes: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .map(|(k, v)| {
            format!(
                "{k}: {v} -> {}",
                b.get(k).unwrap_or(&serde_json::Value::Null)
            )
        })
        .collect();
    if changes.is_empty() {
        "settings differ".to_string()
    } else {
        changes.join(", ")
    }
}
