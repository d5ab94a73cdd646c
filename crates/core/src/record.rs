//! Messages as publishers give them and as the log stores them. The core
//! keeps what SQS, SNS and AMQP need beyond a Kafka record (message id,
//! delay, expiry, de-duplication id, routing key, attribute types, where a
//! dead letter came from) in record headers whose names start with
//! `hermod.`, so a Kafka consumer sees them as ordinary headers and every
//! front reads the same bytes. Publishers may not set such headers
//! themselves.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use hermod_storage::batch::{self, Header, Record};

use crate::filter::AttributeValue;

/// Prefix of the headers the broker reserves for itself.
pub const RESERVED_PREFIX: &str = "hermod.";
const ID: &str = "hermod.id";
const NOT_BEFORE: &str = "hermod.not-before";
const EXPIRES: &str = "hermod.expires";
const DEDUP: &str = "hermod.dedup-id";
const ROUTING_KEY: &str = "hermod.routing-key";
const TYPES: &str = "hermod.types";
/// Dead-letter headers: where the record was, why it left, how often it was delivered.
const DLQ_TOPIC: &str = "hermod.dlq.topic";
const DLQ_SUBSCRIPTION: &str = "hermod.dlq.subscription";
const DLQ_PARTITION: &str = "hermod.dlq.partition";
const DLQ_OFFSET: &str = "hermod.dlq.offset";
const DLQ_REASON: &str = "hermod.dlq.reason";
const DLQ_DELIVERIES: &str = "hermod.dlq.deliveries";

/// Where a dead-lettered record came from and why it left.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetterInfo {
    pub topic: String,
    pub subscription: String,
    pub partition: u32,
    pub offset: u64,
    /// `max_deliveries`, `overflow` or `expired`.
    pub reason: String,
    pub deliveries: u32,
}

/// How filter policies read a header (SNS attribute data types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Number,
    StringArray,
}

/// A message to publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Partition key (Kafka key, SQS FIFO message group).
    pub key: Option<Bytes>,
    pub value: Bytes,
    /// Headers (message attributes, AMQP properties); names must not start
    /// with `hermod.`.
    pub headers: Vec<(String, Bytes)>,
    /// Types of headers that are not strings, for filter policies.
    pub header_types: Vec<(String, AttrType)>,
    /// Routing key it was published with (AMQP), kept for consumers.
    pub routing_key: Option<String>,
    /// Not deliverable before this time (ms since the epoch).
    pub not_before_ms: Option<i64>,
    /// Not delivered after this time; counted as expired instead.
    pub expires_ms: Option<i64>,
    /// De-duplication id (SQS `MessageDeduplicationId`).
    pub dedup_id: Option<String>,
    /// Set by the broker on a copy it moves to a dead-letter destination.
    pub dead_letter: Option<DeadLetterInfo>,
}

/// A record read back from a topic, with the reserved headers decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub partition: u32,
    pub offset: u64,
    pub timestamp_ms: i64,
    /// The message id given at publish, or one derived from the record's
    /// place for records that came without one (a Kafka producer's).
    pub id: String,
    pub key: Option<Bytes>,
    pub value: Bytes,
    /// The user's headers; reserved ones are decoded into the fields below.
    pub headers: Vec<(String, Bytes)>,
    pub header_types: Vec<(String, AttrType)>,
    pub routing_key: Option<String>,
    pub not_before_ms: Option<i64>,
    pub expires_ms: Option<i64>,
    pub dedup_id: Option<String>,
    pub dead_letter: Option<DeadLetterInfo>,
}

impl Stored {
    /// The headers typed for filter policies (strings unless typed).
    pub fn attributes(&self) -> Vec<(&str, AttributeValue<'_>)> {
        typed_attributes(&self.headers, &self.header_types)
    }

    /// Size counted against limits and in byte metrics.
    pub fn size(&self) -> usize {
        self.value.len()
            + self.key.as_ref().map_or(0, Bytes::len)
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>()
    }

    /// The message as it would be published again (a dead letter moved, a
    /// redrive back to its source), keeping id, key, headers and expiry.
    pub fn to_message(&self) -> Message {
        Message {
            key: self.key.clone(),
            value: self.value.clone(),
            headers: self.headers.clone(),
            header_types: self.header_types.clone(),
            routing_key: self.routing_key.clone(),
            not_before_ms: None,
            expires_ms: self.expires_ms,
            dedup_id: None,
            dead_letter: None,
        }
    }

    /// The value of a header, if present and UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        let (_, v) = self.headers.iter().find(|(n, _)| n == name)?;
        std::str::from_utf8(v).ok()
    }
}

/// Headers typed for filter policies: strings unless `types` says
/// otherwise; values that are not UTF-8 are left out.
pub fn typed_attributes<'a>(
    headers: &'a [(String, Bytes)],
    types: &[(String, AttrType)],
) -> Vec<(&'a str, AttributeValue<'a>)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            let text = std::str::from_utf8(value).ok()?;
            let kind = types
                .iter()
                .find(|(n, _)| n == name)
                .map_or(AttrType::String, |(_, t)| *t);
            Some((name.as_str(), attribute(kind, text)))
        })
        .collect()
}

/// The typed view of one header value.
pub fn attribute(kind: AttrType, text: &str) -> AttributeValue<'_> {
    match kind {
        AttrType::String => AttributeValue::String(text),
        AttrType::Number => AttributeValue::Number(text),
        AttrType::StringArray => AttributeValue::StringArray(text),
    }
}

/// Hands out message ids: 128 bits, a random per-process prefix and a
/// counter, printed like a UUID.
#[derive(Debug)]
pub struct IdGenerator {
    prefix: u64,
    counter: AtomicU64,
}

impl Default for IdGenerator {
    fn default() -> Self {
        IdGenerator::new()
    }
}

impl IdGenerator {
    /// A generator with a fresh random prefix (from the standard library's
    /// randomly seeded hasher, so no extra dependency is needed).
    pub fn new() -> IdGenerator {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(std::process::id() as u64);
        IdGenerator {
            prefix: h.finish(),
            counter: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        uuid_text(self.prefix, n)
    }
}

/// The id of a record that was stored without one: its place in the log.
pub fn derived_id(topic_id: u64, partition: u32, offset: u64) -> String {
    uuid_text((topic_id << 32) | u64::from(partition), offset)
}

fn uuid_text(high: u64, low: u64) -> String {
    let v = (u128::from(high) << 64) | u128::from(low);
    let hex = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Why a message cannot be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("header `{0}` is reserved: names starting with `hermod.` belong to the broker")]
    ReservedHeader(String),
    #[error("message of {size} bytes is larger than this topic's limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("header type given for `{0}`, which is not a header of the message")]
    UnknownTypedHeader(String),
}

/// Checks a message a publisher gave.
pub fn validate(message: &Message, max_bytes: usize) -> Result<(), MessageError> {
    for (name, _) in &message.headers {
        if name.starts_with(RESERVED_PREFIX) {
            return Err(MessageError::ReservedHeader(name.clone()));
        }
    }
    for (name, _) in &message.header_types {
        if !message.headers.iter().any(|(n, _)| n == name) {
            return Err(MessageError::UnknownTypedHeader(name.clone()));
        }
    }
    let size = message.value.len()
        + message.key.as_ref().map_or(0, Bytes::len)
        + message
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len())
            .sum::<usize>();
    if size > max_bytes {
        return Err(MessageError::TooLarge {
            size,
            max: max_bytes,
        });
    }
    Ok(())
}

/// The storage record of a message with its id, at `timestamp_ms`. The
/// caller's extra headers (dead-letter origin) are appended after the
/// user's, and are reserved names only the broker writes.
pub fn to_record(message: &Message, id: &str, timestamp_ms: i64) -> Record {
    let mut headers: Vec<Header> = message
        .headers
        .iter()
        .map(|(k, v)| header(k, v.clone()))
        .collect();
    headers.push(header(ID, Bytes::copy_from_slice(id.as_bytes())));
    let mut text = |name: &str, value: String| headers.push(header(name, Bytes::from(value)));
    if let Some(t) = message.not_before_ms {
        text(NOT_BEFORE, t.to_string());
    }
    if let Some(t) = message.expires_ms {
        text(EXPIRES, t.to_string());
    }
    if let Some(d) = &message.dedup_id {
        text(DEDUP, d.clone());
    }
    if let Some(r) = &message.routing_key {
        text(ROUTING_KEY, r.clone());
    }
    if !message.header_types.is_empty() {
        text(TYPES, encode_types(&message.header_types));
    }
    if let Some(d) = &message.dead_letter {
        text(DLQ_TOPIC, d.topic.clone());
        text(DLQ_SUBSCRIPTION, d.subscription.clone());
        text(DLQ_PARTITION, d.partition.to_string());
        text(DLQ_OFFSET, d.offset.to_string());
        text(DLQ_REASON, d.reason.clone());
        text(DLQ_DELIVERIES, d.deliveries.to_string());
    }
    Record {
        offset: 0,
        timestamp: timestamp_ms,
        key: message.key.clone(),
        value: Some(message.value.clone()),
        headers,
    }
}

/// Encodes messages (already given ids) into one batch.
pub fn encode_batch(records: &[Record]) -> Vec<u8> {
    batch::encode(records, &batch::BatchOptions::default())
}

/// Decodes a stored record; `topic_id` derives an id for records stored
/// without one.
pub fn from_record(record: Record, topic_id: u64, partition: u32) -> Stored {
    let offset = record.offset.max(0) as u64;
    let mut stored = Stored {
        partition,
        offset,
        timestamp_ms: record.timestamp,
        id: String::new(),
        key: record.key,
        value: record.value.unwrap_or_default(),
        headers: Vec::with_capacity(record.headers.len()),
        header_types: Vec::new(),
        routing_key: None,
        not_before_ms: None,
        expires_ms: None,
        dedup_id: None,
        dead_letter: None,
    };
    for h in record.headers {
        let value = h.value.unwrap_or_default();
        let text = || String::from_utf8_lossy(&value).into_owned();
        match h.key.as_str() {
            ID => stored.id = text(),
            NOT_BEFORE => stored.not_before_ms = text().parse().ok(),
            EXPIRES => stored.expires_ms = text().parse().ok(),
            DEDUP => stored.dedup_id = Some(text()),
            ROUTING_KEY => stored.routing_key = Some(text()),
            TYPES => stored.header_types = decode_types(&text()),
            k if k.starts_with("hermod.dlq.") => {
                let d = stored.dead_letter.get_or_insert_with(Default::default);
                match k {
                    DLQ_TOPIC => d.topic = text(),
                    DLQ_SUBSCRIPTION => d.subscription = text(),
                    DLQ_PARTITION => d.partition = text().parse().unwrap_or(0),
                    DLQ_OFFSET => d.offset = text().parse().unwrap_or(0),
                    DLQ_REASON => d.reason = text(),
                    DLQ_DELIVERIES => d.deliveries = text().parse().unwrap_or(0),
                    _ => {}
                }
            }
            _ => stored.headers.push((h.key, value)),
        }
    }
    if stored.id.is_empty() {
        stored.id = derived_id(topic_id, partition, offset);
    }
    stored
}

fn header(key: &str, value: Bytes) -> Header {
    Header {
        key: key.to_owned(),
        value: Some(value),
    }
}

/// `name=n,other=a`: Number and StringArray; strings are the default.
fn encode_types(types: &[(String, AttrType)]) -> String {
    let parts: Vec<String> = types
        .iter()
        .filter_map(|(name, t)| match t {
            AttrType::String => None,
            AttrType::Number => Some(format!("{name}=n")),
            AttrType::StringArray => Some(format!("{name}=a")),
        })
        .collect();
    parts.join(",")
}

fn decode_types(text: &str) -> Vec<(String, AttrType)> {
    text.split(',')
        .filter_map(|part| {
            let (name, t) = part.rsplit_once('=')?;
            let kind = match t {
                "n" => AttrType::Number,
                "a" => AttrType::StringArray,
                _ => return None,
            };
            Some((name.to_owned(), kind))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_headers_round_trip_and_stay_hidden() {
        let message = Message {
            key: Some(Bytes::from_static(b"k")),
            value: Bytes::from_static(b"{\"a\":1}"),
            headers: vec![("price".into(), Bytes::from_static(b"12.5"))],
            header_types: vec![("price".into(), AttrType::Number)],
            routing_key: Some("order.completed".into()),
            not_before_ms: Some(5),
            expires_ms: Some(9),
            dedup_id: Some("d1".into()),
            dead_letter: Some(DeadLetterInfo {
                topic: "orders".into(),
                subscription: "coupons".into(),
                partition: 1,
                offset: 2,
                reason: "max_deliveries".into(),
                deliveries: 3,
            }),
        };
        let mut record = to_record(&message, "the-id", 77);
        record.offset = 3;
        let stored = from_record(record, 1, 2);
        assert_eq!(stored.id, "the-id");
        assert_eq!(stored.offset, 3);
        assert_eq!(stored.timestamp_ms, 77);
        assert_eq!(stored.headers, message.headers);
        assert_eq!(stored.header_types, message.header_types);
        assert_eq!(stored.routing_key.as_deref(), Some("order.completed"));
        assert_eq!(
            (stored.not_before_ms, stored.expires_ms),
            (Some(5), Some(9))
        );
        assert_eq!(stored.dedup_id.as_deref(), Some("d1"));
        assert_eq!(stored.dead_letter, message.dead_letter);
        assert_eq!(
            stored.attributes(),
            vec![("price", AttributeValue::Number("12.5"))]
        );
        assert_eq!(stored.to_message().value, message.value);
    }

    #[test]
    fn records_without_an_id_get_one_from_their_place() {
        let record = Record {
            offset: 7,
            timestamp: 1,
            key: None,
            value: Some(Bytes::from_static(b"x")),
            headers: vec![],
        };
        let stored = from_record(record, 3, 1);
        assert_eq!(stored.id, derived_id(3, 1, 7));
        assert_eq!(stored.id.len(), 36);
    }

    #[test]
    fn ids_are_unique_and_uuid_shaped() {
        let ids = IdGenerator::new();
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_ne!(IdGenerator::new().next(), a, "a new process prefix");
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let mut m = Message {
            value: Bytes::from(vec![0; 10]),
            ..Message::default()
        };
        assert_eq!(validate(&m, 10), Ok(()));
        assert_eq!(
            validate(&m, 9),
            Err(MessageError::TooLarge { size: 10, max: 9 })
        );
        m.headers.push(("hermod.id".into(), Bytes::new()));
        assert!(matches!(
            validate(&m, 100),
            Err(MessageError::ReservedHeader(_))
        ));
        m.headers.clear();
        m.header_types.push(("x".into(), AttrType::Number));
        assert!(matches!(
            validate(&m, 100),
            Err(MessageError::UnknownTypedHeader(_))
        ));
    }
}
