//! Hermod's native HTTP/JSON API (`/v1`), `/metrics`, `/healthz` and
//! `/readyz`: an axum router over one `hermod_core::Broker`. Handlers are
//! thin: parse and check the request, call the core (on the blocking pool,
//! since the core does file I/O and syncs), convert the answer to the wire
//! types of `hermod-api`. Errors map to HTTP statuses through one table
//! (`hermod_api::codes`).

use std::sync::Arc;

use hermod_core::Broker;
use serde::{Deserialize, Serialize};

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

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub broker: Arc<Broker>,
    pub limits: Limits,
    /// Resolves when the server is shutting down: long polls return and
    /// event streams end, so a graceful shutdown does not wait on them.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// The whole HTTP API.
pub fn router(state: AppState) -> axum::Router {
    let _ = state;
    axum::Router::new()
}
