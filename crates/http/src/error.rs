//! `ApiError`: what a failed request answers, a stable code (see
//! `hermod_api::codes`) and a message for people, as JSON with the code's
//! HTTP status. Core errors keep their codes; errors that mean the node
//! must stop are logged as such.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hermod_api::{codes, ErrorBody, ErrorDetail};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new("invalid_request", message)
    }

    pub fn limit(message: impl Into<String>) -> ApiError {
        ApiError::new("limit_exceeded", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new("internal", message)
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(codes::status(self.code)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code.to_string(),
            message: self.message.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

impl From<hermod_core::Error> for ApiError {
    fn from(e: hermod_core::Error) -> ApiError {
        if e.is_fatal() {
            tracing::error!(error = %e, "storage failure: this node must be restarted");
        } else if e.code() == "internal" {
            tracing::warn!(error = %e, "request failed inside the broker");
        }
        ApiError::new(e.code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.detail(),
        };
        (self.status(), axum::Json(body)).into_response()
    }
}

/// The answer to a path no route serves.
pub async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        "no_such_route",
        format!(
            "no such route: {}; the API is described at /v1/openapi.json",
            uri.path()
        ),
    )
}

/// The answer to a method a route does not serve.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        "method_not_allowed",
        format!(
            "{method} is not served on {}; see /v1/openapi.json",
            uri.path()
        ),
    )
}
