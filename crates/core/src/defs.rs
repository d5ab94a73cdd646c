//! The definitions the broker keeps in its metadata log: topics, queues,
//! subscriptions, exchanges and bindings, with their settings and safe
//! defaults, and the [`Change`] records that create and delete them. These
//! are plain data (serde), validated by [`crate::catalog::Catalog`]; the
//! live objects are built from them by the broker.

use serde::{Deserialize, Serialize};

use crate::filter::Scope;
use crate::routing::ExchangeKind;

/// 1 MiB: the default largest record value (SQS allows 256 KiB, Kafka 1 MiB).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;
/// Most partitions a topic may have.
pub const MAX_PARTITIONS: u32 = 1024;
/// Longest name of a topic, queue, subscription or exchange (Kafka's limit).
pub const MAX_NAME_LEN: usize = 249;

/// When a publish is acknowledged, per topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityMode {
    /// After `fdatasync` (group commit). The default.
    #[default]
    Fsync,
    /// After the write; synced at most `ms` later.
    Interval { ms: u64 },
    /// Never on disk; lost on restart.
    Memory,
}

/// A topic's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicConfig {
    /// Number of partitions (1 to [`MAX_PARTITIONS`]); fixed at creation.
    pub partitions: u32,
    /// Records older than this are deleted (whole segments); `None` keeps them.
    pub retention_ms: Option<u64>,
    /// Oldest segments are deleted while a partition is larger than this.
    pub retention_bytes: Option<u64>,
    pub durability: DurabilityMode,
    /// Largest record value accepted.
    pub max_record_bytes: usize,
    /// A publish with a de-duplication id seen within this window is not
    /// appended again; 0 turns de-duplication off.
    pub dedup_window_ms: u64,
    /// Without an explicit id, use a hash of the body as de-duplication id.
    pub content_dedup: bool,
    /// Size of one segment file.
    pub segment_bytes: u64,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            partitions: 1,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            durability: DurabilityMode::Fsync,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            dedup_window_ms: 0,
            content_dedup: false,
            segment_bytes: 256 << 20,
        }
    }
}

/// How a subscription hands records to consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// Committed offsets per partition, seek, replay (Kafka consumer groups).
    Stream,
    /// Leases, acks, redelivery, dead letters (SQS standard, AMQP queues).
    #[default]
    Shared,
    /// `Shared`, but one record per key in flight, in key order (SQS FIFO).
    Ordered,
}

/// Where a new subscription starts reading its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    /// The oldest record still kept.
    Earliest,
    /// Only records published after the subscription was created.
    #[default]
    Latest,
    /// This offset in every partition (clamped to what the log holds).
    Offset(u64),
    /// The first record at or after this timestamp (ms since the epoch).
    Time(i64),
}

/// A filter policy (SNS filter-policy language) and what it looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    /// The policy's JSON text.
    pub policy: String,
    /// Headers (`attributes`, the default) or the JSON body (`body`).
    #[serde(default = "attributes_scope", with = "scope_name")]
    pub scope: Scope,
}

/// A subscription's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionConfig {
    pub mode: DeliveryMode,
    pub start: StartPosition,
    /// Records that do not match are skipped without being delivered.
    pub filter: Option<FilterSpec>,
    /// Lease length of a received record unless the receive names one.
    pub visibility_timeout_ms: u64,
    /// Deliveries after which a record is dead-lettered; 0 means unlimited.
    pub max_deliveries: u32,
    /// Topic (or queue) that dead-lettered records are appended to; without
    /// one they are dropped (and counted).
    pub dead_letter: Option<String>,
    /// Most records leased at once, per partition.
    pub max_in_flight: usize,
    /// Most records read ahead from the log, per partition.
    pub max_buffered: usize,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        SubscriptionConfig {
            mode: DeliveryMode::Shared,
            start: StartPosition::Latest,
            filter: None,
            visibility_timeout_ms: 30_000,
            max_deliveries: 0,
            dead_letter: None,
            max_in_flight: 20_000,
            max_buffered: 1_000,
        }
    }
}

/// What a queue does when a publish would pass its length limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Refuse the publish (the default).
    #[default]
    RejectPublish,
    /// Drop the oldest ready record (to the dead-letter queue if set).
    DropOldest,
}

/// A queue's settings: a topic with one `shared` (or, for FIFO, `ordered`)
/// subscription of the same name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Ordered per key (message group) with de-duplication (SQS FIFO).
    pub fifo: bool,
    pub partitions: u32,
    pub durability: DurabilityMode,
    pub max_record_bytes: usize,
    /// Unconsumed records older than this are deleted (SQS: 4 days).
    pub retention_ms: Option<u64>,
    pub visibility_timeout_ms: u64,
    /// Default delay before a new record becomes visible.
    pub delay_ms: u64,
    /// Default time a record may wait before it expires undelivered.
    pub message_ttl_ms: Option<u64>,
    pub max_deliveries: u32,
    pub dead_letter: Option<String>,
    /// Most unacked records; see `overflow`.
    pub max_length: Option<u64>,
    /// Most bytes of unacked record values; see `overflow`.
    pub max_length_bytes: Option<u64>,
    pub overflow: Overflow,
    /// 0 turns de-duplication off; FIFO queues default to 5 minutes.
    pub dedup_window_ms: Option<u64>,
    pub content_dedup: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            fifo: false,
            partitions: 1,
            durability: DurabilityMode::Fsync,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            retention_ms: Some(4 * 24 * 3600 * 1000),
            visibility_timeout_ms: 30_000,
            delay_ms: 0,
            message_ttl_ms: None,
            max_deliveries: 0,
            dead_letter: None,
            max_length: None,
            max_length_bytes: None,
            overflow: Overflow::RejectPublish,
            dedup_window_ms: None,
            content_dedup: false,
        }
    }
}

impl QueueConfig {
    /// The de-duplication window in force: 5 minutes for FIFO queues unless set.
    pub fn effective_dedup_window_ms(&self) -> u64 {
        match (self.dedup_window_ms, self.fifo) {
            (Some(ms), _) => ms,
            (None, true) => 5 * 60 * 1000,
            (None, false) => 0,
        }
    }

    /// The topic under the queue.
    pub fn topic_config(&self) -> TopicConfig {
        TopicConfig {
            partitions: self.partitions,
            retention_ms: self.retention_ms,
            retention_bytes: None,
            durability: self.durability,
            max_record_bytes: self.max_record_bytes,
            dedup_window_ms: self.effective_dedup_window_ms(),
            content_dedup: self.content_dedup,
            segment_bytes: 64 << 20,
        }
    }

    /// The queue's one subscription.
    pub fn subscription_config(&self) -> SubscriptionConfig {
        SubscriptionConfig {
            mode: if self.fifo {
                DeliveryMode::Ordered
            } else {
                DeliveryMode::Shared
            },
            start: StartPosition::Earliest,
            filter: None,
            visibility_timeout_ms: self.visibility_timeout_ms,
            max_deliveries: self.max_deliveries,
            dead_letter: self.dead_letter.clone(),
            ..SubscriptionConfig::default()
        }
    }
}

/// An exchange's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    #[serde(with = "kind_name")]
    pub kind: ExchangeKind,
    /// Where a message that matches no binding goes (a topic or queue);
    /// without one it is reported unroutable and dropped.
    #[serde(default)]
    pub alternate: Option<String>,
}

/// A binding from an exchange to a topic or queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingDef {
    pub exchange: String,
    pub destination: String,
    /// Routing key (direct) or pattern (topic); ignored by fanout and headers.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub filter: Option<FilterSpec>,
}

/// A topic as the metadata log records it. The id is unique for the life of
/// the data directory (a topic deleted and created again gets a new one), and
/// names its directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDef {
    pub id: u64,
    pub name: String,
    pub config: TopicConfig,
    /// Set when the topic is the storage of a queue of the same name.
    pub queue: Option<QueueConfig>,
}

/// A subscription as the metadata log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionDef {
    pub id: u64,
    pub topic: String,
    pub name: String,
    pub config: SubscriptionConfig,
    /// The start position resolved to one offset per partition at creation,
    /// so a restart does not move it.
    pub start_offsets: Vec<u64>,
}

/// An exchange as the metadata log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeDef {
    pub name: String,
    pub config: ExchangeConfig,
}

/// One change to the catalog; the metadata log is a sequence of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum Change {
    CreateTopic(TopicDef),
    DeleteTopic { name: String },
    CreateSubscription(SubscriptionDef),
    DeleteSubscription { topic: String, name: String },
    CreateExchange(ExchangeDef),
    DeleteExchange { name: String },
    Bind(BindingDef),
    Unbind(BindingDef),
}

fn attributes_scope() -> Scope {
    Scope::Attributes
}

/// `Scope` as `"attributes"` or `"body"`.
mod scope_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::filter::Scope;

    pub fn serialize<S: Serializer>(scope: &Scope, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match scope {
            Scope::Attributes => "attributes",
            Scope::Body => "body",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Scope, D::Error> {
        match String::deserialize(d)?.as_str() {
            "attributes" => Ok(Scope::Attributes),
            "body" => Ok(Scope::Body),
            other => Err(serde::de::Error::custom(format!(
                "unknown filter scope `{other}`, expected `attributes` or `body`"
            ))),
        }
    }
}

/// `ExchangeKind` as `"fanout"`, `"direct"`, `"topic"` or `"headers"`.
mod kind_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::routing::ExchangeKind;

    pub fn serialize<S: Serializer>(kind: &ExchangeKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match kind {
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Direct => "direct",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ExchangeKind, D::Error> {
        match String::deserialize(d)?.as_str() {
            "fanout" => Ok(ExchangeKind::Fanout),
            "direct" => Ok(ExchangeKind::Direct),
            "topic" => Ok(ExchangeKind::Topic),
            "headers" => Ok(ExchangeKind::Headers),
            other => Err(serde::de::Error::custom(format!(
                "unknown exchange kind `{other}`, expected fanout, direct, topic or headers"
            ))),
        }
    }
}
