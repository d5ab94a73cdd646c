//! Publishing (to a topic, a queue or an exchange; one message or a
//! batch) and reading a partition from an offset.

use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::Json;
use hermod_api::{
    ExchangePublishResponse, Missed, PartitionRead, PublishResponse, PublishedOut, RoutedOut,
    RoutedTo,
};
use hermod_core::routing::Miss;

use crate::body::RawBody;
use crate::convert;
use crate::error::ApiError;
use crate::AppState;

/// Most bytes one partition read returns, unless the request asks for less.
const MAX_READ_BYTES: usize = 4 << 20;

pub async fn to_topic(
    State(st): State<AppState>,
    Path(topic): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<PublishResponse>, ApiError> {
    publish(st, topic, false, body).await
}

pub async fn to_queue(
    State(st): State<AppState>,
    Path(queue): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<PublishResponse>, ApiError> {
    publish(st, queue, true, body).await
}

async fn publish(
    st: AppState,
    topic: String,
    queue: bool,
    body: axum::body::Bytes,
) -> Result<Json<PublishResponse>, ApiError> {
    let request = convert::publish_request(&body, &st.limits)?;
    let limits = st.limits.clone();
    let started = Instant::now();
    let answer = st
        .blocking(move |b| {
            if queue {
                b.queue(&topic)?;
            }
            let now = b.clock().now_ms();
            let messages = request
                .messages
                .into_iter()
                .map(|m| convert::message(m, now, &limits))
                .collect::<Result<Vec<_>, _>>()?;
            let published = b.publish(&topic, messages, request.partition)?;
            Ok(PublishResponse {
                messages: published
                    .into_iter()
                    .map(|p| PublishedOut {
                        id: p.id,
                        partition: p.partition,
                        offset: p.offset,
                        duplicate: p.duplicate,
                    })
                    .collect(),
            })
        })
        .await?;
    st.metrics.publish_latency(started.elapsed());
    Ok(Json(answer))
}

pub async fn to_exchange(
    State(st): State<AppState>,
    Path(exchange): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<ExchangePublishResponse>, ApiError> {
    let request = convert::publish_request(&body, &st.limits)?;
    if request.partition.is_some() {
        return Err(ApiError::invalid(
            "an exchange publish cannot name a partition: the bindings choose destinations",
        ));
    }
    let limits = st.limits.clone();
    let started = Instant::now();
    let answer = st
        .blocking(move |b| {
            let now = b.clock().now_ms();
            let messages = request
                .messages
                .into_iter()
                .map(|m| convert::message(m, now, &limits))
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = Vec::with_capacity(messages.len());
            for m in messages {
                out.push(routed(b.publish_to_exchange(&exchange, m)?));
            }
            Ok(ExchangePublishResponse { messages: out })
        })
        .await?;
    st.metrics.publish_latency(started.elapsed());
    Ok(Json(answer))
}

fn routed(r: hermod_core::Routed) -> RoutedOut {
    RoutedOut {
        id: r.id,
        routed: r
            .published
            .into_iter()
            .map(|(destination, p)| RoutedTo {
                destination,
                partition: p.partition,
                offset: p.offset,
                duplicate: p.duplicate,
            })
            .collect(),
        missed: r
            .missed
            .into_iter()
            .map(|(destination, miss)| Missed {
                destination,
                reason: match miss {
                    Miss::Key => "key",
                    Miss::Filter => "filter",
                }
                .to_string(),
            })
            .collect(),
        unroutable: r.unroutable,
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    #[serde(default)]
    offset: u64,
    max: Option<usize>,
    max_bytes: Option<usize>,
}

pub async fn read_partition(
    State(st): State<AppState>,
    Path((topic, partition)): Path<(String, u32)>,
    Query(q): Query<ReadQuery>,
) -> Result<Json<PartitionRead>, ApiError> {
    let max = q.max.unwrap_or(100).min(st.limits.max_receive).max(1);
    let max_bytes = q.max_bytes.unwrap_or(MAX_READ_BYTES).min(MAX_READ_BYTES);
    st.blocking(move |b| {
        let t = b.topic(&topic)?;
        let range = t.partition_range(partition)?;
        let (records, next_offset) = t.read_up_to(partition, q.offset, max_bytes, max)?;
        let messages: Vec<_> = records.into_iter().map(convert::stored).collect();
        Ok(Json(PartitionRead {
            messages,
            next_offset,
            log_start: range.start,
            log_end: range.end,
        }))
    })
    .await
}
