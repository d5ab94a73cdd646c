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

/// What applying definitions did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub created: usize,
    pub unchanged: usize,
}

impl Applied {
    fn count(&mut self, made: bool) {
        if made {
            self.created += 1;
        } else {
            self.unchanged += 1;
        }
    }
}

/// Creates everything a definitions file names, in an order that resolves
/// references: topics, queues (each one's dead-letter queue first),
/// exchanges (an alternate names a topic or queue), subscriptions,
/// bindings. An error names the resource it stopped at.
pub fn definitions(broker: &Broker, defs: &Definitions) -> Result<Applied, ApiError> {
    let mut applied = Applied::default();
    for (name, config) in &defs.topics {
        applied.count(topic(broker, name, config.clone()).map_err(at("topic", name))?);
    }
    for (name, config) in queues_in_order(defs) {
        applied.count(queue(broker, name, config.clone()).map_err(at("queue", name))?);
    }
    for (name, config) in &defs.exchanges {
        applied.count(exchange(broker, name, config.clone()).map_err(at("exchange", name))?);
    }
    for s in &defs.subscriptions {
        let made = subscription(broker, &s.topic, &s.name, s.config.clone());
        applied.count(made.map_err(at("subscription", &format!("{}/{}", s.topic, s.name)))?);
    }
    for b in &defs.bindings {
        let name = format!("{} -> {}", b.exchange, b.destination);
        applied.count(binding(broker, b.clone()).map_err(at("binding", &name))?);
    }
    Ok(applied)
}

/// Prefixes an error with the resource it is about, unless it names it.
fn at<'a>(kind: &'a str, name: &'a str) -> impl Fn(ApiError) -> ApiError + 'a {
    move |e| {
        let what = format!("{kind} `{name}`");
        if e.message.contains(&what) {
            return e;
        }
        ApiError::new(e.code, format!("{what}: {}", e.message))
    }
}

/// The queues, each one's dead-letter queue (when also defined) first. A
/// cycle is left in name order; creating it then fails, naming the missing
/// dead-letter queue.
fn queues_in_order(defs: &Definitions) -> Vec<(&String, &QueueConfig)> {
    let mut pending: Vec<_> = defs.queues.iter().collect();
    let mut ordered: Vec<(&String, &QueueConfig)> = Vec::with_capacity(pending.len());
    for _ in 0..defs.queues.len() {
        let (ready, waiting): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, config)| {
            config.dead_letter.as_deref().is_none_or(|target| {
                !defs.queues.contains_key(target) || ordered.iter().any(|(n, _)| *n == target)
            })
        });
        ordered.extend(ready);
        pending = waiting;
        if pending.is_empty() {
            break;
        }
    }
    ordered.extend(pending);
    ordered
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
