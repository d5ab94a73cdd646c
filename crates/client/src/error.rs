//! The client's one error type. An answer the server gave on purpose (a 4xx
//! or 5xx with the API's JSON error body) is [`Error::Api`] with its stable
//! code; everything else (no connection, a body this client cannot read, a
//! bad base URL) has a code of its own, so callers match on [`Error::code`]
//! alone.

use hermod_api::ErrorBody;

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status and (usually) the API's
    /// error body.
    #[error("{message} (HTTP {status}, {code})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// The request did not get an answer: connection refused, reset, timed out.
    #[error("no answer from {url}: {}", root_cause(source))]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The server answered 2xx with a body this client cannot read; the
    /// client and server are probably of different versions.
    #[error("cannot read the answer from {url}: {reason}")]
    Decode { url: String, reason: String },
    /// The base URL given to [`crate::Client::new`] is not usable.
    #[error("invalid server URL `{url}`: {reason}; give one like http://127.0.0.1:9080")]
    InvalidUrl { url: String, reason: String },
    /// A server-sent event was larger than the client accepts.
    #[error("an event from {url} is larger than {limit_bytes} bytes")]
    EventTooLarge { url: String, limit_bytes: usize },
}

impl Error {
    /// A stable code: the API's own for [`Error::Api`], else `unreachable`,
    /// `timeout`, `transport`, `decode`, `invalid_url` or `event_too_large`.
    pub fn code(&self) -> &str {
        match self {
            Error::Api { code, .. } => code,
            Error::Transport { source, .. } if source.is_connect() => "unreachable",
            Error::Transport { source, .. } if source.is_timeout() => "timeout",
            Error::Transport { .. } => "transport",
            Error::Decode { .. } => "decode",
            Error::InvalidUrl { .. } => "invalid_url",
            Error::EventTooLarge { .. } => "event_too_large",
        }
    }

    /// The HTTP status of an [`Error::Api`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The message for people, without the code.
    pub fn message(&self) -> String {
        match self {
            Error::Api { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// The error for an error status and its body. A body that is not the
    /// API's error shape (a proxy's HTML page, say) still gives a code,
    /// `http_<status>`, and as much of the text as is useful.
    pub(crate) fn from_answer(status: u16, body: &[u8]) -> Error {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(b) => Error::Api {
                status,
                code: b.error.code,
                message: b.error.message,
            },
            Err(_) => Error::Api {
                status,
                code: format!("http_{status}"),
                message: unstructured_message(status, body),
            },
        }
    }
}

/// The innermost cause of a transport error ("Connection refused (os error
/// 111)"), which says more than reqwest's own "error sending request".
fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Up to 200 characters of a body that is not the API's error shape.
fn unstructured_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("the server answered HTTP {status} without a body");
    }
    let short: String = text.chars().take(200).collect();
    format!("the server answered HTTP {status}: {short}")
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_body_gives_code_and_message() {
        let body = br#"{"error":{"code":"not_found","message":"no topic `a`"}}"#;
        let e = Error::from_answer(404, body);
        assert_eq!(e.code(), "not_found");
        assert_eq!(e.status(), Some(404));
        assert_eq!(e.message(), "no topic `a`");
    }

    #[test]
    fn other_bodies_still_give_a_code() {
        let e = Error::from_answer(502, b"<html>Bad Gateway</html>");
        assert_eq!(e.code(), "http_502");
        assert!(e.message().contains("Bad Gateway"));
        let e = Error::from_answer(503, b"");
        assert!(e.message().contains("without a body"));
    }
}
