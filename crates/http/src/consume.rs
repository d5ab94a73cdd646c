//! Consuming: receive with long polling, ack, nack and extend for
//! `shared`/`ordered` subscriptions and queues; poll, commit, offsets and
//! seek for `stream` subscriptions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::Json;
use hermod_api::{
    AckRequest, CommitRequest, ExtendRequest, Messages, NackRequest, Offsets, PollRequest,
    PositionOut, ReceiptResult, ReceiptResults, ReceiveRequest, SeekRequest,
};
use hermod_core::subscription::Subscription;
use hermod_core::Receipt;

use crate::body::JsonBody;
use crate::convert;
use crate::error::ApiError;
use crate::resources::Target;
use crate::AppState;

/// Messages a receive returns when the request does not say.
const DEFAULT_MAX: usize = 10;
/// Bytes a poll returns when the request does not say.
const DEFAULT_POLL_BYTES: usize = 1 << 20;
/// How often a long poll looks again without a ring: delayed records and
/// expiring leases become visible without one.
const RECHECK: Duration = Duration::from_millis(250);

pub async fn receive(
    State(st): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    JsonBody(req): JsonBody<ReceiveRequest>,
) -> Result<Json<Messages>, ApiError> {
    let max = count(req.max, &st)?;
    let wait = wait(req.wait_ms, &st)?;
    let sub = subscription(&st, &params).await?;
    let visibility = req.visibility_ms;
    let got = long_poll(&st, &sub, wait, move |s| Ok(s.receive(max, visibility)?)).await?;
    let now = st.broker.clock().now_ms();
    for r in &got {
        st.metrics.delivery_latency(now - r.message.timestamp_ms);
    }
    Ok(Json(Messages {
        messages: got.into_iter().map(convert::received).collect(),
    }))
}

pub async fn poll(
    State(st): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    JsonBody(req): JsonBody<PollRequest>,
) -> Result<Json<Messages>, ApiError> {
    let max = count(req.max, &st)?;
    let wait = wait(req.wait_ms, &st)?;
    let max_bytes = req.max_bytes.unwrap_or(DEFAULT_POLL_BYTES).max(1);
    let sub = subscription(&st, &params).await?;
    let got = long_poll(&st, &sub, wait, move |s| Ok(s.poll(max, max_bytes)?)).await?;
    Ok(Json(Messages {
        messages: got.into_iter().map(convert::stored).collect(),
    }))
}

pub async fn ack(
    State(st): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    JsonBody(req): JsonBody<AckRequest>,
) -> Result<Json<ReceiptResults>, ApiError> {
    check_receipts(&req.receipts, &st)?;
    let sub = subscription(&st, &params).await?;
    let results = st
        .blocking(move |_| {
            let parsed: Vec<Result<Receipt, hermod_core::Error>> =
                req.receipts.iter().map(|r| r.parse()).collect();
            let valid: Vec<Receipt> = parsed
                .iter()
                .filter_map(|r| r.as_ref().ok().copied())
                .collect();
            let mut acked = sub.ack(&valid)?.into_iter();
            Ok(req
                .receipts
                .iter()
                .zip(parsed)
                .map(|(text, p)| {
                    outcome(
                        text,
                        p.and_then(|_| acked.next().expect("one result per receipt")),
                    )
                })
                .collect())
        })
        .await?;
    Ok(Json(ReceiptResults { results }))
}

pub async fn nack(
    State(st): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    JsonBody(req): JsonBody<NackRequest>,
) -> Result<Json<ReceiptResults>, ApiError> {
    check_receipts(&req.receipts, &st)?;
    let sub = subscription(&st, &params).await?;
    let delay_ms = req.delay_ms;
    each_receipt(&st, sub, req.receipts, move |s, r| s.nack(r, delay_ms)).await
}

pub async fn extend(
    State(st): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    JsonBody(req): JsonBody<ExtendRequest>,
) -> Result<Json<ReceiptResults>, ApiError> {
    check_receipts(&req.receipts, &st)?;
    let sub = subscription(&st, &params).await?;
    let visibility_ms = req.visibility_ms;
    each_receipt(&st, sub, req.receipts, move |s, r| {
        s.extend(r, visibility_ms)
    })
    .await
}

pub async fn offsets(
    State(st): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Offsets>, ApiError> {
    let sub = subscription(&st, &params).await?;
    st.blocking(move |_| positions(&sub)).await
}

pub async fn commit(
    State(st): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    JsonBody(req): JsonBody<CommitRequest>,
) -> Result<Json<Offsets>, ApiError> {
    let sub = subscription(&st, &params).await?;
    st.blocking(move |_| {
        match req.offsets {
            None => sub.commit_positions()?,
            Some(offsets) => {
                for o in offsets {
                    sub.commit(o.partition, o.offset)?;
                }
            }
        }
        positions(&sub)
    })
    .await
}

pub async fn seek(
    State(st): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    JsonBody(req): JsonBody<SeekRequest>,
) -> Result<Json<Offsets>, ApiError> {
    let sub = subscription(&st, &params).await?;
    st.blocking(move |_| {
        sub.seek(req.partition, req.offset)?;
        positions(&sub)
    })
    .await
}

/// The subscription a route names.
pub async fn subscription(
    st: &AppState,
    params: &HashMap<String, String>,
) -> Result<Arc<Subscription>, ApiError> {
    let target = Target::from_params(params)?;
    target.resolve(&st.broker)
}

/// Calls `attempt` until it finds something, the wait is over or the
/// server shuts down; wakes at the topic's doorbell (a publish or a nack)
/// and every `RECHECK` (delays and leases end without a ring).
pub async fn long_poll<T, F>(
    st: &AppState,
    sub: &Arc<Subscription>,
    wait: Duration,
    attempt: F,
) -> Result<Vec<T>, ApiError>
where
    T: Send + 'static,
    F: Fn(&Subscription) -> Result<Vec<T>, ApiError> + Send + Sync + Clone + 'static,
{
    let deadline = Instant::now() + wait;
    let mut shutdown = st.shutdown.clone();
    loop {
        let seen = sub.topic().doorbell().rings();
        let (s, f) = (sub.clone(), attempt.clone());
        let got = st.blocking(move |_| f(&s)).await?;
        let now = Instant::now();
        if !got.is_empty() || now >= deadline || st.shutting_down() {
            return Ok(got);
        }
        let nap = (deadline - now).min(RECHECK);
        tokio::select! {
            _ = sub.topic().doorbell().rung_after(seen) => {}
            _ = tokio::time::sleep(nap) => {}
            _ = shutdown.wait_for(|down| *down) => {}
        }
    }
}

/// The number of messages a receive asks for, checked against the limit.
pub fn count(max: Option<usize>, st: &AppState) -> Result<usize, ApiError> {
    let max = max.unwrap_or(DEFAULT_MAX);
    if max == 0 {
        return Err(ApiError::invalid("`max` must be at least 1"));
    }
    if max > st.limits.max_receive {
        return Err(ApiError::limit(format!(
            "`max` is {max}; the server returns at most {} messages a call (max_receive)",
            st.limits.max_receive
        )));
    }
    Ok(max)
}

fn wait(wait_ms: Option<u64>, st: &AppState) -> Result<Duration, ApiError> {
    let wait_ms = wait_ms.unwrap_or(0);
    if wait_ms > st.limits.max_wait_ms {
        return Err(ApiError::limit(format!(
            "`wait_ms` is {wait_ms}; the longest wait is {} ms (max_wait_ms)",
            st.limits.max_wait_ms
        )));
    }
    Ok(Duration::from_millis(wait_ms))
}

fn check_receipts(receipts: &[String], st: &AppState) -> Result<(), ApiError> {
    if receipts.is_empty() {
        return Err(ApiError::invalid("`receipts` is empty"));
    }
    if receipts.len() > st.limits.max_batch {
        return Err(ApiError::limit(format!(
            "{} receipts in one call; the limit is {} (max_batch)",
            receipts.len(),
            st.limits.max_batch
        )));
    }
    Ok(())
}

async fn each_receipt<F>(
    st: &AppState,
    sub: Arc<Subscription>,
    receipts: Vec<String>,
    op: F,
) -> Result<Json<ReceiptResults>, ApiError>
where
    F: Fn(&Subscription, &Receipt) -> hermod_core::Result<()> + Send + 'static,
{
    let results = st
        .blocking(move |_| {
            Ok(receipts
                .iter()
                .map(|text| {
                    let result = text.parse::<Receipt>().and_then(|r| op(&sub, &r));
                    outcome(text, result)
                })
                .collect())
        })
        .await?;
    Ok(Json(ReceiptResults { results }))
}

fn outcome(receipt: &str, result: hermod_core::Result<()>) -> ReceiptResult {
    match result {
        Ok(()) => ReceiptResult {
            receipt: receipt.to_string(),
            ok: true,
            error: None,
        },
        Err(e) => ReceiptResult {
            receipt: receipt.to_string(),
            ok: false,
            error: Some(ApiError::from(e).detail()),
        },
    }
}

fn positions(sub: &Subscription) -> Result<Json<Offsets>, ApiError> {
    let partitions = sub
        .positions()?
        .into_iter()
        .map(|p| PositionOut {
            partition: p.partition,
            position: p.position,
            committed: p.committed,
            log_start: p.log_start,
            log_end: p.log_end,
            lag: p.lag(),
        })
        .collect();
    Ok(Json(Offsets { partitions }))
}
