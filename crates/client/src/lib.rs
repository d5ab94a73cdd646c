//! A Rust client for Hermod's HTTP/JSON API, used by the `hermod` CLI and
//! the end-to-end tests. One [`Client`] method per route of the API, typed
//! with the wire types of `hermod-api` (re-exported as [`api`]); errors are
//! one [`Error`] with a stable [`Error::code`]. The methods are spread over
//! files by what they touch: `resources` (create, list, describe, delete,
//! purge, redrive), `messages` (publish, read, receive, ack and the rest),
//! `ops` (health, metrics, stats), `events` (Server-Sent Events streams).

mod error;
mod events;
mod messages;
mod ops;
mod path;
mod resources;
pub mod sse;
mod transport;

pub use error::{Error, Result};
pub use events::{AckMode, EventStream, EventsOptions};
pub use hermod_api as api;
pub use messages::ReadOptions;
pub use ops::Health;

/// A connection to one Hermod server. Cheap to clone: clones share one
/// connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The base URL without a trailing `/`.
    base: String,
}

/// Where messages are received from: a queue, or a subscription of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    Queue(&'a str),
    Subscription {
        topic: &'a str,
        subscription: &'a str,
    },
}

impl Client {
    /// A client of the server at `base_url` (`http://host:port`, or a bare
    /// `host:port`). Nothing is sent until the first request.
    pub fn new(base_url: &str) -> Result<Client> {
        let base = path::normalise_base(base_url).map_err(|reason| Error::InvalidUrl {
            url: base_url.to_owned(),
            reason,
        })?;
        Ok(Client {
            http: transport::http_client(),
            base,
        })
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base
    }
}

impl<'a> Source<'a> {
    /// The path segments of the queue or subscription.
    fn segments(&self) -> Vec<&'a str> {
        match *self {
            Source::Queue(queue) => vec!["v1", "queues", queue],
            Source::Subscription {
                topic,
                subscription,
            } => vec!["v1", "topics", topic, "subscriptions", subscription],
        }
    }

    /// The segments of one of its sub-resources (`receive`, `ack`, ...).
    fn action(&self, action: &'static str) -> Vec<&'a str> {
        let mut segments = self.segments();
        segments.push(action);
        segments
    }
}
