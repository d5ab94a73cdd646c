//! The streaming consume: Server-Sent Events of a subscription or a queue.
//! Each message is an event `message` whose data is its `MessageOut` JSON.
//! `shared`/`ordered` subscriptions hand out leases (ack each receipt with
//! the ack route, or ask for `ack=auto`: acked as it is written, at most
//! once); `stream` subscriptions advance their position (commit with the
//! offsets route). The stream ends after `max` messages (if given) or when
//! the server shuts down.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use hermod_api::{DeliveryMode, MessageOut};
use hermod_core::subscription::Subscription;

use crate::consume::{count, long_poll, subscription};
use crate::convert;
use crate::error::ApiError;
use crate::AppState;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    #[default]
    Manual,
    Auto,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    max: Option<usize>,
    visibility_ms: Option<u64>,
    #[serde(default)]
    ack: AckMode,
}

struct Feed {
    st: AppState,
    sub: Arc<Subscription>,
    /// Most messages one fetch takes.
    batch: usize,
    /// Messages still to send before the stream ends (`max`), if limited.
    remaining: Option<usize>,
    visibility_ms: Option<u64>,
    ack: AckMode,
    ready: VecDeque<MessageOut>,
}

pub async fn events(
    State(st): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // `max` ends the stream; one fetch takes at most one receive's worth
    // and never more than is left, so no lease is taken past the end.
    if q.max == Some(0) {
        return Err(ApiError::invalid("`max` must be at least 1"));
    }
    let batch = count(q.max.map(|m| m.min(st.limits.max_receive)), &st)?;
    let sub = subscription(&st, &params).await?;
    let feed = Feed {
        st,
        sub,
        batch,
        remaining: q.max,
        visibility_ms: q.visibility_ms,
        ack: q.ack,
        ready: VecDeque::new(),
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let message = feed.next().await?;
        let data = serde_json::to_string(&message).unwrap_or_default();
        let event = Event::default().event("message").id(message.id).data(data);
        Some((Ok(event), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

impl Feed {
    /// The next message, or `None` when the stream must end (shutdown, or
    /// the subscription failed: deleted, or storage refused).
    async fn next(&mut self) -> Option<MessageOut> {
        if self.remaining == Some(0) {
            return None;
        }
        while self.ready.is_empty() {
            if self.st.shutting_down() {
                return None;
            }
            match self.fetch().await {
                Ok(got) => self.ready.extend(got),
                Err(e) => {
                    tracing::info!(error = %e.message, "event stream ended");
                    return None;
                }
            }
        }
        if let Some(remaining) = &mut self.remaining {
            *remaining -= 1;
        }
        self.ready.pop_front()
    }

    async fn fetch(&self) -> Result<Vec<MessageOut>, ApiError> {
        let wait = Duration::from_millis(self.st.limits.max_wait_ms);
        let max = self.batch.min(self.remaining.unwrap_or(usize::MAX));
        if self.sub.def().config.mode == DeliveryMode::Stream {
            let got = long_poll(
                &self.st,
                &self.sub,
                wait,
                move |s| Ok(s.poll(max, 1 << 20)?),
            )
            .await?;
            return Ok(got.into_iter().map(convert::stored).collect());
        }
        let (visibility, auto) = (self.visibility_ms, self.ack == AckMode::Auto);
        let got = long_poll(&self.st, &self.sub, wait, move |s| {
            let got = s.receive(max, visibility)?;
            if auto && !got.is_empty() {
                let receipts: Vec<_> = got.iter().map(|r| r.receipt).collect();
                s.ack(&receipts)?;
            }
            Ok(got)
        })
        .await?;
        Ok(got.into_iter().map(convert::received).collect())
    }
}
