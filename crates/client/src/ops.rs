//! Operations: liveness and readiness, Prometheus metrics, the OpenAPI
//! document and the overview behind `hermod stats`.

use hermod_api::Overview;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Result};

/// The answer of `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` (alive) or `ready`.
    pub status: String,
}

impl Client {
    /// Whether the process is alive.
    pub async fn healthz(&self) -> Result<Health> {
        self.call(Method::GET, &["healthz"]).decode().await
    }

    /// Whether the server takes requests; an error (503 `unavailable`)
    /// while it starts or shuts down.
    pub async fn readyz(&self) -> Result<Health> {
        self.call(Method::GET, &["readyz"]).decode().await
    }

    /// The Prometheus text exposition.
    pub async fn metrics(&self) -> Result<String> {
        self.call(Method::GET, &["metrics"]).text().await
    }

    /// The OpenAPI 3.1 document of the API.
    pub async fn openapi(&self) -> Result<serde_json::Value> {
        let segments = ["v1", "openapi.json"];
        self.call(Method::GET, &segments).decode().await
    }

    /// Every topic, queue and exchange with its live figures.
    pub async fn stats(&self) -> Result<Overview> {
        self.call(Method::GET, &["v1", "stats"]).decode().await
    }
}
