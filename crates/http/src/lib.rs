//! Hermod's native HTTP/JSON API (`/v1`), `/metrics`, `/healthz` and
//! `/readyz`: an axum router over one `hermod_core::Broker`. Handlers are
//! thin: parse and check the request, call the core (where it may block,
//! since the core does file I/O and syncs), convert the answer to the wire
//! types of `hermod-api`. Errors map to HTTP statuses through one table
//! (`hermod_api::codes`).

mod body;
mod consume;
mod convert;
pub mod ensure;
mod error;
mod events;
mod info;
mod metrics;
mod publish;
mod rates;
mod resources;
mod routes;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use hermod_core::Broker;
use serde::{Deserialize, Serialize};

pub use crate::error::ApiError;
pub use crate::metrics::Metrics;
pub use crate::routes::{router, routes, OPENAPI};

/// The server's request limits; each is configurable and hit with a clear
/// error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Largest message value (a topic's own `max_record_bytes` also applies).
    pub max_message_bytes: usize,
    /// Most messages in one publish.
    pub max_batch: usize,
    /// Most open connections; more are answered 503 and closed.
    pub max_connections: usize,
    /// Longest long-poll wait.
    pub max_wait_ms: u64,
    /// Most messages one receive or poll returns.
    pub max_receive: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_message_bytes: 1 << 20,
            max_batch: 1_000,
            max_connections: 1_024,
            max_wait_ms: 20_000,
            max_receive: 1_000,
        }
    }
}

/// Connection counters, kept by the server's listener and exported here.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub connections_open: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub broker: Arc<Broker>,
    pub limits: Limits,
    /// Turns true when the server is shutting down: long polls return,
    /// event streams end and `/readyz` answers 503, so a graceful shutdown
    /// does not wait on them.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    pub stats: Arc<ServerStats>,
    pub metrics: Arc<Metrics>,
    pub(crate) rates: Arc<rates::Rates>,
}

impl AppState {
    /// The state of a server over `broker`.
    pub fn new(
        broker: Arc<Broker>,
        limits: Limits,
        shutdown: tokio::sync::watch::Receiver<bool>,
        stats: Arc<ServerStats>,
    ) -> AppState {
        AppState {
            broker,
            limits,
            shutdown,
            stats,
            metrics: Metrics::global(),
            rates: Arc::default(),
        }
    }

    /// Samples the counters that rates are computed from; the server calls
    /// it once a second (with its upkeep tick).
    pub fn sample_rates(&self) {
        self.rates.sample(&self.broker);
    }

    pub(crate) fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Runs `f` where it may block: the core does file I/O and syncs.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Broker) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let broker = self.broker.clone();
        let flavor = tokio::runtime::Handle::current().runtime_flavor();
        if flavor == tokio::runtime::RuntimeFlavor::MultiThread {
            // On this worker thread: its other tasks move to another
            // worker, and the request avoids two thread hand-offs.
            return tokio::task::block_in_place(move || f(&broker));
        }
        tokio::task::spawn_blocking(move || f(&broker))
            .await
            .map_err(|e| ApiError::internal(format!("request task failed: {e}")))?
    }
}
