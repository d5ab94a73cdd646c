//! Server-Sent Events streams of a queue or subscription (`.../events`):
//! the response body is fed to the sans-IO [`crate::sse::SseParser`] and
//! each `message` event becomes a [`MessageOut`]. Other events and comments
//! (keep-alives) are skipped. The stream ends when the server closes it. An
//! event that is not a message is an `Err` item and the stream goes on; a
//! broken connection (or an oversized event) is a last `Err` item.

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use hermod_api::MessageOut;
use reqwest::Method;
use serde::Serialize;

use crate::sse::{SseEvent, SseParser};
use crate::transport::transport;
use crate::{Client, Error, Result, Source};

/// Messages as the server sends them.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<MessageOut>> + Send>>;

/// Who acks what a stream delivers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    /// The consumer acks each message's receipt (at-least-once).
    #[default]
    Manual,
    /// The server acks a message once written to the stream (at-most-once).
    Auto,
}

/// The query of an events request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EventsOptions {
    /// The server ends the stream after this many messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// Lease length of each delivered message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility_ms: Option<u64>,
    pub ack: AckMode,
}

impl Client {
    /// Opens the event stream of a queue or subscription. Errors the server
    /// answers before streaming (not found, wrong mode) are returned here.
    pub async fn events(&self, source: Source<'_>, options: &EventsOptions) -> Result<EventStream> {
        let segments = source.action("events");
        let call = self.call(Method::GET, &segments).query(options);
        let (url, response) = call.header_accept_events().send().await?;
        let reader = Reader {
            url,
            body: Box::pin(response.bytes_stream()),
            parser: SseParser::default(),
            ready: VecDeque::new(),
            done: false,
        };
        Ok(Box::pin(futures_util::stream::unfold(reader, Reader::next)))
    }
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The state of one stream between items.
struct Reader {
    url: String,
    body: Body,
    parser: SseParser,
    /// Items parsed from a chunk and not yet handed out.
    ready: VecDeque<Result<MessageOut>>,
    /// An error was queued; nothing follows it.
    done: bool,
}

impl Reader {
    async fn next(mut self) -> Option<(Result<MessageOut>, Reader)> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some((item, self));
            }
            if self.done {
                return None;
            }
            match self.body.next().await? {
                Ok(chunk) => self.parse(&chunk),
                Err(source) => self.fail(transport(&self.url, source)),
            }
        }
    }

    fn parse(&mut self, chunk: &[u8]) {
        match self.parser.push(chunk) {
            Ok(events) => {
                let url = &self.url;
                let messages = events.into_iter().filter_map(|e| to_message(url, e));
                self.ready.extend(messages);
            }
            Err(e) => self.fail(Error::EventTooLarge {
                url: self.url.clone(),
                limit_bytes: e.limit_bytes,
            }),
        }
    }

    fn fail(&mut self, error: Error) {
        self.ready.push_back(Err(error));
        self.done = true;
    }
}

/// The message a `message` event carries; other events are not messages.
fn to_message(url: &str, event: SseEvent) -> Option<Result<MessageOut>> {
    (event.event == "message").then(|| {
        serde_json::from_str(&event.data).map_err(|e| Error::Decode {
            url: url.to_owned(),
            reason: format!("an event's data is not a message: {e}"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(chunks: &[&'static str]) -> EventStream {
        let chunks: Vec<reqwest::Result<Bytes>> = chunks
            .iter()
            .map(|c| Ok(Bytes::from_static(c.as_bytes())))
            .collect();
        let reader = Reader {
            url: "http://h/v1/queues/q/events".to_owned(),
            body: Box::pin(futures_util::stream::iter(chunks)),
            parser: SseParser::default(),
            ready: VecDeque::new(),
            done: false,
        };
        Box::pin(futures_util::stream::unfold(reader, Reader::next))
    }

    const M1: &str = r#"{"id":"m1","partition":0,"offset":4,"timestamp_ms":1,"value":"hi","receipt":"r1","delivery_count":1}"#;

    #[tokio::test]
    async fn message_events_become_messages() {
        let first = format!(": keep-alive\n\nevent: message\nid: m1\ndata: {M1}\n\n");
        let chunks: &[&'static str] = &[first.leak(), "event: other\ndata: x\n\n"];
        let items: Vec<_> = reader(chunks).collect().await;
        assert_eq!(items.len(), 1);
        let message = items[0].as_ref().unwrap();
        assert_eq!((message.id.as_str(), message.offset), ("m1", 4));
        assert_eq!(message.receipt.as_deref(), Some("r1"));
    }

    #[tokio::test]
    async fn a_bad_event_is_an_error_and_the_stream_goes_on() {
        let second = format!("data: {M1}\n\n");
        let chunks: &[&'static str] = &["data: {\n\n", second.leak()];
        let items: Vec<_> = reader(chunks).collect().await;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap_err().code(), "decode");
        assert_eq!(items[1].as_ref().unwrap().id, "m1");
    }
}
