//! The one way requests are made: [`Call`] builds a request to a path of
//! the API, sends it, turns error statuses into [`Error::Api`] and decodes
//! the body. Every route method of [`Client`] is a line or two over this.

use reqwest::{Method, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::{path, Client};

/// How long to wait for a TCP connection: long enough for a busy server,
/// short enough that a wrong `--server` is reported promptly. Requests
/// themselves have no overall timeout, since long polls and event streams
/// are meant to last.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The HTTP client every [`Client`] starts with.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        // Only TLS set-up or a broken system resolver configuration fails
        // here; without TLS built in, the plain client is the fallback.
        .unwrap_or_default()
}

/// A request being built.
#[derive(Debug)]
pub(crate) struct Call {
    url: String,
    builder: reqwest::RequestBuilder,
}

impl Client {
    /// A request with `method` to the path made of `segments`.
    pub(crate) fn call(&self, method: Method, segments: &[&str]) -> Call {
        let url = path::join(&self.base, segments);
        let builder = self.http.request(method, &url);
        Call { url, builder }
    }
}

impl Call {
    /// Sends `body` as JSON.
    pub(crate) fn json<B: Serialize + ?Sized>(self, body: &B) -> Call {
        Call {
            builder: self.builder.json(body),
            ..self
        }
    }

    /// Adds query parameters (fields that are `None` are left out).
    pub(crate) fn query<Q: Serialize + ?Sized>(self, query: &Q) -> Call {
        Call {
            builder: self.builder.query(query),
            ..self
        }
    }

    /// Asks for a Server-Sent Events stream.
    pub(crate) fn header_accept_events(self) -> Call {
        Call {
            builder: self
                .builder
                .header(reqwest::header::ACCEPT, "text/event-stream"),
            ..self
        }
    }

    /// Sends the request; an error status becomes [`Error::Api`].
    pub(crate) async fn send(self) -> Result<(String, Response)> {
        let response = match self.builder.send().await {
            Ok(r) => r,
            Err(source) => return Err(transport(&self.url, source)),
        };
        let status = response.status();
        if status.is_client_error() || status.is_server_error() {
            let body = response.bytes().await.unwrap_or_default();
            return Err(Error::from_answer(status.as_u16(), &body));
        }
        Ok((self.url, response))
    }

    /// Sends the request and decodes the JSON answer.
    pub(crate) async fn decode<T: DeserializeOwned>(self) -> Result<T> {
        let (url, response) = self.send().await?;
        let body = response
            .bytes()
            .await
            .map_err(|source| transport(&url, source))?;
        serde_json::from_slice(&body).map_err(|e| Error::Decode {
            url,
            reason: e.to_string(),
        })
    }

    /// Sends the request and returns the answer as text.
    pub(crate) async fn text(self) -> Result<String> {
        let (url, response) = self.send().await?;
        response
            .text()
            .await
            .map_err(|source| transport(&url, source))
    }

    /// Sends the request and ignores the (empty) answer.
    pub(crate) async fn empty(self) -> Result<()> {
        self.send().await.map(|_| ())
    }
}

pub(crate) fn transport(url: &str, source: reqwest::Error) -> Error {
    Error::Transport {
        url: url.to_owned(),
        source,
    }
}
