//! The wire types of Hermod's HTTP/JSON API (`/v1`), shared by the server's
//! front (`hermod-http`) and the client (`hermod-client`), so the two cannot
//! disagree on a field. Definitions (topic, queue, subscription and exchange
//! settings, bindings) are the core's own serde types: they are already the
//! catalog's stable JSON form. Everything else a request or a response holds
//! is declared here; conversions to and from the core's types live in the
//! front.
//!
//! Bodies are JSON. A message value travels as `value` (text, or any JSON
//! value, which is stored as its compact text) or as `value_base64` for
//! bytes that are not UTF-8; a read-back value is `value` when it is UTF-8
//! text and `value_base64` otherwise. Keys follow the same rule.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};

pub use hermod_core::defs::{
    BindingDef, DeliveryMode, DurabilityMode, ExchangeConfig, FilterSpec, Overflow, QueueConfig,
    StartPosition, SubscriptionConfig, TopicConfig,
};
pub use hermod_core::filter::Scope;
pub use hermod_core::record::DeadLetterInfo;
pub use hermod_core::routing::ExchangeKind;
pub use hermod_core::trace::{Event, Traced};

/// The error body of every 4xx and 5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A stable `code` (see [`codes`]) and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// The stable error codes of the HTTP API and their HTTP statuses. The
/// core's codes keep their names; the rest are the front's own.
pub mod codes {
    /// Every code the API answers with, and its HTTP status.
    pub const STATUS: &[(&str, u16)] = &[
        ("invalid_name", 400),
        ("invalid_config", 400),
        ("invalid_binding", 400),
        ("invalid_message", 400),
        ("invalid_receipt", 400),
        ("invalid_request", 400),
        ("offset_out_of_range", 400),
        ("malformed_body", 400),
        ("invalid_body", 400),
        ("limit_exceeded", 400),
        ("not_found", 404),
        ("no_such_route", 404),
        ("method_not_allowed", 405),
        ("already_exists", 409),
        ("in_use", 409),
        ("wrong_mode", 409),
        ("unknown_receipt", 410),
        ("lease_expired", 410),
        ("message_too_large", 413),
        ("body_too_large", 413),
        ("queue_full", 429),
        ("internal", 500),
        ("unavailable", 503),
        ("too_many_connections", 503),
    ];

    /// The HTTP status of `code` (500 for a code this table does not know).
    pub fn status(code: &str) -> u16 {
        STATUS
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(500, |(_, s)| *s)
    }
}

/// A message to publish.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageIn {
    /// The body: a string is stored as its UTF-8 bytes, any other JSON value
    /// as its compact JSON text. Exactly one of `value` and `value_base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
    /// Partition key (FIFO message group); text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Types of headers that filter policies should not read as strings:
    /// `number` or `string_array`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header_types: BTreeMap<String, String>,
    /// Routing key for an exchange (direct and topic exchanges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    /// Not delivered before this many milliseconds from now; replaces a
    /// queue's default delay when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Expires undelivered this many milliseconds from now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// De-duplication id: a second publish with it inside the topic's
    /// window is not appended again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_id: Option<String>,
}

impl MessageIn {
    /// A message with a text body.
    pub fn text(value: impl Into<String>) -> MessageIn {
        MessageIn {
            value: Some(serde_json::Value::String(value.into())),
            ..MessageIn::default()
        }
    }

    /// A message with a JSON body.
    pub fn json(value: serde_json::Value) -> MessageIn {
        MessageIn {
            value: Some(value),
            ..MessageIn::default()
        }
    }

    /// A message with a binary body.
    pub fn bytes(value: &[u8]) -> MessageIn {
        MessageIn {
            value_base64: Some(base64::engine::general_purpose::STANDARD.encode(value)),
            ..MessageIn::default()
        }
    }
}

/// A batch to publish. A publish body is either this or one [`MessageIn`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    pub messages: Vec<MessageIn>,
    /// Append every message to this partition instead of choosing by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
}

/// Where each published message ended up, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishResponse {
    pub messages: Vec<PublishedOut>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedOut {
    pub id: String,
    pub partition: u32,
    pub offset: u64,
    /// Not appended again: a duplicate of the record at this place, whose
    /// id `id` then is.
    pub duplicate: bool,
}

/// What publishing to an exchange did, per message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangePublishResponse {
    pub messages: Vec<RoutedOut>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutedOut {
    pub id: String,
    /// Each destination that took it, and where.
    pub routed: Vec<RoutedTo>,
    /// Bindings that did not take it, and why.
    pub missed: Vec<Missed>,
    /// No binding took it (it went to the alternate destination, if any).
    pub unroutable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutedTo {
    pub destination: String,
    pub partition: u32,
    pub offset: u64,
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missed {
    pub destination: String,
    pub reason: String,
}

/// A message read back, by `poll`, a partition read, `receive` or a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageOut {
    pub id: String,
    pub partition: u32,
    pub offset: u64,
    pub timestamp_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_id: Option<String>,
    /// Where a dead letter came from and why it left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<DeadLetterInfo>,
    /// The receipt to ack, nack or extend with (`receive` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// 1 on the first delivery (`receive` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_count: Option<u32>,
}

impl MessageOut {
    /// The body's bytes, whichever way it travelled.
    pub fn value_bytes(&self) -> Vec<u8> {
        decode_either(self.value.as_deref(), self.value_base64.as_deref())
    }

    /// The key's bytes, if it has one.
    pub fn key_bytes(&self) -> Option<Vec<u8>> {
        (self.key.is_some() || self.key_base64.is_some())
            .then(|| decode_either(self.key.as_deref(), self.key_base64.as_deref()))
    }
}

fn decode_either(text: Option<&str>, base64: Option<&str>) -> Vec<u8> {
    match (text, base64) {
        (Some(t), _) => t.as_bytes().to_vec(),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .unwrap_or_default(),
        (None, None) => Vec::new(),
    }
}

/// Encodes bytes as text when they are UTF-8, else as base64: `(text, base64)`.
pub fn encode_bytes(bytes: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(t) => (Some(t.to_string()), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
    }
}

/// Messages read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Messages {
    pub messages: Vec<MessageOut>,
}

/// A read of one partition from an offset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionRead {
    pub messages: Vec<MessageOut>,
    /// The offset to read next.
    pub next_offset: u64,
    pub log_start: u64,
    pub log_end: u64,
}

/// Receive from a `shared` or `ordered` subscription or a queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveRequest {
    /// Most messages to return (default 10; at most the server's limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<usize>,
    /// Lease length; the subscription's visibility timeout if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility_ms: Option<u64>,
    /// Long polling: wait up to this long for a first message (default 0;
    /// at most the server's limit, 20 s by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// Poll a `stream` subscription from its position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// Ack receipts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    pub receipts: Vec<String>,
}

/// Give receipts back, visible again after `delay_ms` (default 0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NackRequest {
    pub receipts: Vec<String>,
    #[serde(default)]
    pub delay_ms: u64,
}

/// Make leases last `visibility_ms` from now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    pub receipts: Vec<String>,
    pub visibility_ms: u64,
}

/// The outcome of an ack, nack or extend, per receipt in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptResults {
    pub results: Vec<ReceiptResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptResult {
    pub receipt: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// Commit offsets of a `stream` subscription; without `offsets`, commits
/// the current positions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsets: Option<Vec<PartitionOffset>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionOffset {
    pub partition: u32,
    pub offset: u64,
}

/// Move a `stream` subscription's read position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeekRequest {
    pub partition: u32,
    pub offset: u64,
}

/// A `stream` subscription's positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offsets {
    pub partitions: Vec<PositionOut>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionOut {
    pub partition: u32,
    /// Next offset `poll` reads.
    pub position: u64,
    /// Durably committed offset (where a restart resumes).
    pub committed: u64,
    pub log_start: u64,
    pub log_end: u64,
    pub lag: u64,
}

/// Move dead letters back to where they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedriveRequest {
    /// Most messages to move (default: all there are, up to the server's
    /// receive limit × 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedriveResponse {
    pub moved: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeResponse {
    pub purged: u64,
}

/// Per-second rates over the last few seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub published_per_s: f64,
    pub delivered_per_s: f64,
    pub acked_per_s: f64,
}

/// A topic and its live figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicInfo {
    pub name: String,
    pub config: TopicConfig,
    pub partitions: Vec<PartitionInfo>,
    pub published: u64,
    pub published_bytes: u64,
    pub duplicates: u64,
    pub rates: Rates,
    pub subscriptions: Vec<SubscriptionInfo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    pub partition: u32,
    pub log_start: u64,
    pub log_end: u64,
    pub size_bytes: u64,
}

/// A subscription and its live figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionInfo {
    pub topic: String,
    pub name: String,
    pub config: SubscriptionConfig,
    /// Unfinished records: ready, delayed and in flight (`shared`/`ordered`;
    /// `in_flight` counts the last); records after the committed offsets
    /// (`stream`).
    pub depth: u64,
    pub in_flight: u64,
    /// Records after the committed offsets (`stream`); equals `depth` there.
    pub lag: u64,
    pub delivered: u64,
    pub acked: u64,
    pub nacked: u64,
    pub expired: u64,
    pub filtered: u64,
    pub dead_lettered: u64,
    pub rates: Rates,
}

/// A queue and its live figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueInfo {
    pub name: String,
    pub config: QueueConfig,
    pub partitions: Vec<PartitionInfo>,
    /// Unfinished messages: ready, delayed and in flight (`in_flight`
    /// counts the last).
    pub depth: u64,
    pub in_flight: u64,
    pub published: u64,
    pub delivered: u64,
    pub acked: u64,
    pub nacked: u64,
    pub expired: u64,
    pub dead_lettered: u64,
    pub rates: Rates,
}

/// An exchange and its bindings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeInfo {
    pub name: String,
    pub config: ExchangeConfig,
    pub bindings: Vec<BindingDef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicList {
    pub topics: Vec<TopicInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueList {
    pub queues: Vec<QueueInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionList {
    pub subscriptions: Vec<SubscriptionInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeList {
    pub exchanges: Vec<ExchangeInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingList {
    pub bindings: Vec<BindingDef>,
}

/// Everything at once, for `hermod stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub topics: Vec<TopicInfo>,
    pub queues: Vec<QueueInfo>,
    pub exchanges: Vec<ExchangeInfo>,
}

/// A message's trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceResponse {
    pub id: String,
    pub events: Vec<Traced>,
}

/// Definitions to create at start (`hermod serve --definitions FILE`,
/// TOML or JSON), idempotently: what exists with the same settings is left
/// alone, what exists with other settings is an error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Definitions {
    pub topics: BTreeMap<String, TopicConfig>,
    pub queues: BTreeMap<String, QueueConfig>,
    pub exchanges: BTreeMap<String, ExchangeConfig>,
    pub subscriptions: Vec<SubscriptionDefinition>,
    pub bindings: Vec<BindingDef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionDefinition {
    pub topic: String,
    pub name: String,
    #[serde(default)]
    pub config: SubscriptionConfig,
}
