//! The one place where errors become HTTP responses: status code, Prometheus-style
//! `errorType`, a readable message, and `Retry-After` for overload.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gmc_model::ErrorClass;

/// An error answered to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable explanation.
    pub message: String,
    /// Seconds after which a retry may succeed (429/503 only).
    pub retry_after_secs: Option<u64>,
    /// Prometheus `errorType` when it does not follow from the status (e.g. `timeout`
    /// is a 503 like `unavailable`).
    pub error_type_override: Option<&'static str>,
}

impl ApiError {
    /// 400: the request will never succeed as sent.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 413: the body is larger than allowed.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// 415: a content type or encoding we do not speak.
    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
    }

    /// 429 with `Retry-After`: the server is saturated; retry later.
    pub fn overloaded(message: impl Into<String>, retry_after_secs: u64) -> Self {
        ApiError {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, message)
        }
    }

    /// 503 with `Retry-After`: storage cannot accept writes right now (I/O error, disk full).
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            retry_after_secs: Some(5),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    /// 500: a bug or unexpected failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// An error with an explicit Prometheus `errorType` (query API).
    pub fn typed(status: StatusCode, error_type: &'static str, message: String) -> Self {
        ApiError {
            error_type_override: Some(error_type),
            ..Self::new(status, message)
        }
    }

    /// An error of the given class.
    pub fn from_class(class: ErrorClass, message: impl Into<String>) -> Self {
        match class {
            ErrorClass::BadInput => Self::bad_request(message),
            ErrorClass::Limit => Self::bad_request(message),
            ErrorClass::NotFound => Self::not_found(message),
            ErrorClass::Unavailable => Self::unavailable(message),
            ErrorClass::Internal => Self::internal(message),
        }
    }

    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after_secs: None,
            error_type_override: None,
        }
    }

    /// Prometheus' `errorType` for this status.
    pub fn error_type(&self) -> &'static str {
        if let Some(t) = self.error_type_override {
            return t;
        }
        match self.status {
            StatusCode::BAD_REQUEST
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE => "bad_data",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::UNPROCESSABLE_ENTITY => "execution",
            _ => "internal",
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "status": "error",
            "errorType": self.error_type(),
            "error": self.message,
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
