//! Parsers of command-line values that clap cannot derive: durability
//! (`interval:5`), start positions, `--header k=v`, filter policies and
//! `--config JSON`, plus the value enums shared by several commands. Each
//! parser's error says what is accepted.

use hermod_api::{DeliveryMode, DurabilityMode, FilterSpec, StartPosition};
use hermod_core::filter::Scope;
use hermod_core::routing::ExchangeKind;
use serde::de::DeserializeOwned;

/// `fsync`, `memory` or `interval:MS`.
pub(crate) fn durability(text: &str) -> Result<DurabilityMode, String> {
    match text {
        "fsync" => Ok(DurabilityMode::Fsync),
        "memory" => Ok(DurabilityMode::Memory),
        _ => match text.strip_prefix("interval:").map(str::parse) {
            Some(Ok(ms)) => Ok(DurabilityMode::Interval { ms }),
            _ => Err(format!(
                "`{text}` is not a durability; use fsync, memory or interval:MS (e.g. interval:5)"
            )),
        },
    }
}

/// `earliest`, `latest` or an offset.
pub(crate) fn start(text: &str) -> Result<StartPosition, String> {
    match text {
        "earliest" => Ok(StartPosition::Earliest),
        "latest" => Ok(StartPosition::Latest),
        _ => text.parse().map(StartPosition::Offset).map_err(|_| {
            format!("`{text}` is not a start position; use earliest, latest or an offset")
        }),
    }
}

/// `KEY=VALUE`; the value may hold `=` and be empty, the key may not.
pub(crate) fn header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not a header; use KEY=VALUE")),
    }
}

/// A filter from `--filter POLICY_JSON` and `--filter-scope`. The policy
/// travels as text, but is checked to be JSON here so a typo is reported
/// before anything is sent.
pub(crate) fn filter(
    policy: Option<&str>,
    scope: Option<ScopeArg>,
) -> anyhow::Result<Option<FilterSpec>> {
    let Some(policy) = policy else {
        anyhow::ensure!(scope.is_none(), "--filter-scope needs a --filter");
        return Ok(None);
    };
    if let Err(e) = serde_json::from_str::<serde_json::Value>(policy) {
        anyhow::bail!("--filter is not JSON ({e}); give a policy like '{{\"type\": [\"order\"]}}'");
    }
    Ok(Some(FilterSpec {
        policy: policy.to_owned(),
        scope: scope.unwrap_or(ScopeArg::Attributes).into(),
    }))
}

/// The settings of `--config JSON`, or the defaults.
pub(crate) fn config<T: DeserializeOwned + Default>(json: Option<&str>) -> anyhow::Result<T> {
    let Some(json) = json else {
        return Ok(T::default());
    };
    serde_json::from_str(json).map_err(|e| {
        anyhow::anyhow!("--config is not valid ({e}); see `describe --json` of one for the fields")
    })
}

/// `--filter-scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ScopeArg {
    /// The message's headers.
    Attributes,
    /// The message's JSON body.
    Body,
}

impl From<ScopeArg> for Scope {
    fn from(scope: ScopeArg) -> Scope {
        match scope {
            ScopeArg::Attributes => Scope::Attributes,
            ScopeArg::Body => Scope::Body,
        }
    }
}

/// `--mode` of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ModeArg {
    /// Offsets, commit and replay.
    Stream,
    /// Leases, acks and redelivery.
    Shared,
    /// Like shared, one message per key at a time, in key order.
    Ordered,
}

impl From<ModeArg> for DeliveryMode {
    fn from(mode: ModeArg) -> DeliveryMode {
        match mode {
            ModeArg::Stream => DeliveryMode::Stream,
            ModeArg::Shared => DeliveryMode::Shared,
            ModeArg::Ordered => DeliveryMode::Ordered,
        }
    }
}

/// `--kind` of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum KindArg {
    /// Every binding.
    Fanout,
    /// Bindings whose key equals the routing key.
    Direct,
    /// Bindings whose pattern matches the routing key.
    Topic,
    /// Bindings whose filter matches the headers.
    Headers,
}

impl From<KindArg> for ExchangeKind {
    fn from(kind: KindArg) -> ExchangeKind {
        match kind {
            KindArg::Fanout => ExchangeKind::Fanout,
            KindArg::Direct => ExchangeKind::Direct,
            KindArg::Topic => ExchangeKind::Topic,
            KindArg::Headers => ExchangeKind::Headers,
        }
    }
}

#[cfg(test)]
mod tests {
    use hermod_api::TopicConfig;

    use super::*;

    #[test]
    fn durabilities() {
        assert_eq!(durability("fsync"), Ok(DurabilityMode::Fsync));
        assert_eq!(durability("memory"), Ok(DurabilityMode::Memory));
        assert_eq!(
            durability("interval:5"),
            Ok(DurabilityMode::Interval { ms: 5 })
        );
        for bad in ["interval:", "interval:x", "interval", "sync", ""] {
            assert!(
                durability(bad).unwrap_err().contains("interval:MS"),
                "{bad}"
            );
        }
    }

    #[test]
    fn start_positions() {
        assert_eq!(start("earliest"), Ok(StartPosition::Earliest));
        assert_eq!(start("latest"), Ok(StartPosition::Latest));
        assert_eq!(start("42"), Ok(StartPosition::Offset(42)));
        assert!(start("-1").is_err());
        assert!(start("first").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(header("k=v"), Ok(("k".into(), "v".into())));
        assert_eq!(header("k=a=b"), Ok(("k".into(), "a=b".into())));
        assert_eq!(header("k="), Ok(("k".into(), String::new())));
        assert!(header("=v").is_err());
        assert!(header("kv").is_err());
    }

    #[test]
    fn filters() {
        let spec = filter(Some(r#"{"a":["b"]}"#), Some(ScopeArg::Body)).unwrap();
        let spec = spec.unwrap();
        assert_eq!(
            (spec.policy.as_str(), spec.scope),
            (r#"{"a":["b"]}"#, Scope::Body)
        );
        let spec = filter(Some("{}"), None).unwrap().unwrap();
        assert_eq!(spec.scope, Scope::Attributes);
        assert!(filter(None, None).unwrap().is_none());
        assert!(filter(None, Some(ScopeArg::Body)).is_err());
        assert!(filter(Some("{a"), None).is_err());
    }

    #[test]
    fn configs() {
        let c: TopicConfig = config(Some(r#"{"partitions": 4}"#)).unwrap();
        assert_eq!(c.partitions, 4);
        let c: TopicConfig = config(None).unwrap();
        assert_eq!(c, TopicConfig::default());
        assert!(config::<TopicConfig>(Some(r#"{"partition": 4}"#)).is_err());
    }
}
