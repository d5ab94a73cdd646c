//! The definitions file (`--definitions`, type `hermod_api::Definitions`,
//! TOML or JSON): read at start and applied with the same idempotent
//! creates as the API's `PUT` routes (`hermod_http::ensure`): what exists
//! with the same settings is left alone, what exists with other settings
//! stops the start with a message naming the resource and the settings
//! that differ.

use std::path::Path;

use anyhow::Context;
use hermod_api::Definitions;
use hermod_core::Broker;
pub use hermod_http::ensure::Applied;

use super::config::read_small_file;

/// Largest definitions file read.
const MAX_DEFINITIONS_FILE_BYTES: u64 = 16 << 20;

/// Reads a definitions file: JSON if its name ends in `.json`, else TOML.
pub fn load(path: &Path) -> anyhow::Result<Definitions> {
    let text = read_small_file(path, MAX_DEFINITIONS_FILE_BYTES)
        .with_context(|| format!("cannot read definitions file {}", path.display()))?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let parsed = if is_json {
        serde_json::from_str(&text).map_err(anyhow::Error::from)
    } else {
        toml::from_str(&text).map_err(anyhow::Error::from)
    };
    parsed.with_context(|| format!("bad definitions file {}", path.display()))
}

/// Creates what is missing; checks what exists.
pub fn apply(broker: &Broker, defs: &Definitions) -> anyhow::Result<Applied> {
    Ok(hermod_http::ensure::definitions(broker, defs)?)
}

#[cfg(test)]
mod tests {
    use hermod_api::{QueueConfig, SubscriptionConfig, SubscriptionDefinition};
    use hermod_core::BrokerConfig;

    use super::*;

    const TOML: &str = r#"
        [topics.orders]
        partitions = 3
        [queues.jobs]
        visibility_timeout_ms = 5000
        dead_letter = "jobs-dlq"
        max_deliveries = 3
        [queues.jobs-dlq]
        [exchanges.events]
        kind = "topic"
        [[subscriptions]]
        topic = "orders"
        name = "billing"
        config = { mode = "stream", start = "earliest" }
        [[bindings]]
        exchange = "events"
        destination = "orders"
        key = "order.*"
    "#;

    fn open(dir: &Path) -> Broker {
        Broker::open(BrokerConfig::new(dir)).unwrap()
    }

    fn defs() -> Definitions {
        toml::from_str(TOML).unwrap()
    }

    #[test]
    fn creates_everything_then_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path());
        let first = apply(&broker, &defs()).unwrap();
        assert_eq!(
            first,
            Applied {
                created: 6,
                unchanged: 0
            }
        );
        let catalog = broker.catalog();
        assert_eq!(catalog.topics["orders"].config.partitions, 3);
        assert_eq!(
            catalog.topics["jobs"]
                .queue
                .as_ref()
                .unwrap()
                .visibility_timeout_ms,
            5000
        );
        assert_eq!(catalog.bindings.len(), 1);
        let again = apply(&broker, &defs()).unwrap();
        assert_eq!(
            again,
            Applied {
                created: 0,
                unchanged: 6
            }
        );
        broker.close().unwrap();
    }

    #[test]
    fn a_changed_setting_names_the_resource_and_the_difference() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path());
        apply(&broker, &defs()).unwrap();
        let mut changed = defs();
        changed.topics.get_mut("orders").unwrap().partitions = 4;
        let e = format!("{:#}", apply(&broker, &changed).unwrap_err());
        assert!(
            e.contains("topic `orders` already exists with other settings"),
            "{e}"
        );
        assert!(e.contains("partitions: 3 -> 4"), "{e}");
        let mut changed = defs();
        changed.subscriptions[0].config.visibility_timeout_ms = 1;
        let e = format!("{:#}", apply(&broker, &changed).unwrap_err());
        assert!(e.contains("subscription `orders/billing`"), "{e}");
    }

    #[test]
    fn a_queue_named_like_a_topic_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path());
        let mut d = defs();
        d.queues.insert("orders".into(), QueueConfig::default());
        let e = format!("{:#}", apply(&broker, &d).unwrap_err());
        assert!(
            e.contains("queue `orders`") && e.contains("it is a topic, not a queue"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_reference_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path());
        let d = Definitions {
            subscriptions: vec![SubscriptionDefinition {
                topic: "nowhere".into(),
                name: "s".into(),
                config: SubscriptionConfig::default(),
            }],
            ..Definitions::default()
        };
        let e = format!("{:#}", apply(&broker, &d).unwrap_err());
        assert!(
            e.contains("subscription `nowhere/s`") && e.contains("not_found"),
            "{e}"
        );
    }

    #[test]
    fn json_and_toml_files_load_and_unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("d.json");
        std::fs::write(&json, r#"{"topics": {"t": {"partitions": 2}}}"#).unwrap();
        assert_eq!(load(&json).unwrap().topics["t"].partitions, 2);
        let toml = dir.path().join("d.toml");
        std::fs::write(&toml, "[topics.t]\npartitionz = 2\n").unwrap();
        let e = format!("{:#}", load(&toml).unwrap_err());
        assert!(e.contains("partitionz") && e.contains("d.toml"), "{e}");
    }

    /// The README's example definitions file parses and applies.
    #[test]
    fn the_readme_example_applies() {
        let readme = include_str!("../../../../README.md");
        let start = readme
            .find("```toml\n")
            .expect("the README has a TOML example")
            + 8;
        let end = start + readme[start..].find("```").unwrap();
        let defs: Definitions = toml::from_str(&readme[start..end]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path());
        let applied = apply(&broker, &defs).unwrap();
        assert_eq!(applied.created, 6);
        broker.close().unwrap();
    }
}
