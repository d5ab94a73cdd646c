//! Conversions between the wire types of `hermod-api` and the core's:
//! a published `MessageIn` becomes a `Message` (checked against the
//! server's limits), a stored record becomes a `MessageOut`.

use base64::Engine;
use bytes::Bytes;
use hermod_api::{encode_bytes, MessageIn, MessageOut, PublishRequest};
use hermod_core::record::{AttrType, Stored};
use hermod_core::{Message, Received};

use crate::error::ApiError;
use crate::Limits;

/// Longest delay or time to live a publish may ask for (SQS allows 15
/// minutes of delay; we allow a year of either).
const MAX_DELAY_MS: u64 = 365 * 24 * 3600 * 1000;

/// A publish body: a batch (`{"messages": [...]}`) or one message.
pub fn publish_request(bytes: &[u8], limits: &Limits) -> Result<PublishRequest, ApiError> {
    let value: serde_json::Value = crate::body::parse(bytes)?;
    let request = if value.get("messages").is_some() {
        serde_json::from_value::<PublishRequest>(value)
    } else {
        serde_json::from_value::<MessageIn>(value).map(|m| PublishRequest {
            messages: vec![m],
            partition: None,
        })
    }
    .map_err(|e| {
        ApiError::new(
            "invalid_body",
            format!("the request body does not fit: {e}"),
        )
    })?;
    if request.messages.is_empty() {
        return Err(ApiError::invalid(
            "no messages to publish: `messages` is empty",
        ));
    }
    if request.messages.len() > limits.max_batch {
        return Err(ApiError::limit(format!(
            "{} messages in one publish; the limit is {} (max_batch): split the batch",
            request.messages.len(),
            limits.max_batch
        )));
    }
    Ok(request)
}

/// The core message of a published one, with delay and time to live made
/// absolute at `now_ms`.
pub fn message(m: MessageIn, now_ms: i64, limits: &Limits) -> Result<Message, ApiError> {
    let value = value_bytes(m.value, m.value_base64)?;
    if value.len() > limits.max_message_bytes {
        return Err(ApiError::new(
            "message_too_large",
            format!(
                "the message value is {} bytes; the server's limit is {} (max_message_bytes)",
                value.len(),
                limits.max_message_bytes
            ),
        ));
    }
    let header_types = m
        .header_types
        .into_iter()
        .map(|(name, kind)| Ok((name, attr_type(&kind)?)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Message {
        key: m.key.map(Bytes::from),
        value,
        headers: m
            .headers
            .into_iter()
            .map(|(k, v)| (k, Bytes::from(v)))
            .collect(),
        header_types,
        routing_key: m.routing_key,
        not_before_ms: m
            .delay_ms
            .map(|d| offset_ms("delay_ms", now_ms, d))
            .transpose()?,
        expires_ms: m
            .ttl_ms
            .map(|t| offset_ms("ttl_ms", now_ms, t))
            .transpose()?,
        dedup_id: m.dedup_id,
        dead_letter: None,
    })
}

fn value_bytes(
    value: Option<serde_json::Value>,
    base64: Option<String>,
) -> Result<Bytes, ApiError> {
    match (value, base64) {
        (Some(_), Some(_)) => Err(ApiError::new(
            "invalid_message",
            "give either `value` or `value_base64`, not both",
        )),
        (None, None) => Err(ApiError::new(
            "invalid_message",
            "a message needs a `value` (text or JSON) or a `value_base64`",
        )),
        (Some(serde_json::Value::String(s)), None) => Ok(Bytes::from(s)),
        (Some(v), None) => Ok(Bytes::from(v.to_string())),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b.as_bytes())
            .map(Bytes::from)
            .map_err(|e| {
                ApiError::new(
                    "invalid_message",
                    format!("`value_base64` is not base64: {e}"),
                )
            }),
    }
}

fn attr_type(name: &str) -> Result<AttrType, ApiError> {
    match name {
        "string" => Ok(AttrType::String),
        "number" => Ok(AttrType::Number),
        "string_array" => Ok(AttrType::StringArray),
        other => Err(ApiError::new(
            "invalid_message",
            format!("unknown header type `{other}`: use `string`, `number` or `string_array`"),
        )),
    }
}

fn offset_ms(field: &str, now_ms: i64, ms: u64) -> Result<i64, ApiError> {
    if ms > MAX_DELAY_MS {
        return Err(ApiError::new(
            "invalid_message",
            format!("`{field}` is {ms} ms; at most {MAX_DELAY_MS} (a year) is allowed"),
        ));
    }
    Ok(now_ms + ms as i64)
}

/// A record read back.
pub fn stored(s: Stored) -> MessageOut {
    let (key, key_base64) = match &s.key {
        Some(k) => encode_bytes(k),
        None => (None, None),
    };
    let (value, value_base64) = encode_bytes(&s.value);
    MessageOut {
        id: s.id,
        partition: s.partition,
        offset: s.offset,
        timestamp_ms: s.timestamp_ms,
        key,
        key_base64,
        value,
        value_base64,
        headers: s
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect(),
        routing_key: s.routing_key,
        dedup_id: s.dedup_id,
        dead_letter: s.dead_letter,
        receipt: None,
        delivery_count: None,
    }
}

/// A record handed to a consumer, with its receipt.
pub fn received(r: Received) -> MessageOut {
    let mut out = stored(r.message);
    out.receipt = Some(r.receipt.to_string());
    out.delivery_count = Some(r.delivery_count);
    out
}
