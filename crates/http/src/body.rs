//! Request bodies: `JsonBody<T>` reads JSON into a wire type and answers a
//! clear 4xx when it cannot: `body_too_large` past the server's limit,
//! `malformed_body` for text that is not JSON, `invalid_body` for JSON of
//! the wrong shape (an unknown field, a missing one, a wrong type). An
//! empty body reads as `{}`, so settings that all have defaults may be
//! left out. Any content type is accepted: `curl -d` sends a form type.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct JsonBody<T>(pub T);

/// A body read whole, for handlers that look at it before choosing a type.
pub struct RawBody(pub Bytes);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse(&bytes).map(JsonBody)
    }
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        "body_too_large",
                        "the request body is larger than the server's limit (max_body_bytes); send smaller batches",
                    )
                } else {
                    ApiError::new("malformed_body", format!("cannot read the request body: {e}"))
                }
            })
    }
}

/// Parses a JSON body, telling bad JSON from JSON of the wrong shape.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::new(
            "invalid_body",
            format!("the request body does not fit: {e}"),
        ),
        _ => ApiError::new(
            "malformed_body",
            format!("the request body is not valid JSON: {e}"),
        ),
    })
}
