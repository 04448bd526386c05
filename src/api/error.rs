//! One error type for the whole API, answered as RFC 9457 `application/problem+json`.
//!
//! Its `Display` is a fixed title per kind: it is what the request log shows, so no detail that
//! may echo client data (an amount, a payer reference) ever reaches a log line.

use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;
use utoipa::ToSchema;

/// One field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Where in the request: a JSON path into the body (`payments[3].amount.amount`), a query
    /// parameter or a path segment.
    #[schema(example = "payments[3].amount.amount")]
    pub field: String,
    #[schema(example = "1.005 has 3 decimal places; CNY allows at most 2")]
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "/problems/validation",
    "title": "The request is not valid",
    "status": 422,
    "detail": "1 of 2 payments is invalid; nothing was stored",
    "errors": [{"field": "payments[1].amount.amount", "message": "0.00 must be greater than zero (the kind says whether money came in or went back)"}]
}))]
pub struct Problem {
    /// A URI reference naming the kind of problem; stable, documented in the README.
    #[serde(rename = "type")]
    #[schema(example = "/problems/validation")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The fields at fault, when the problem is with the request's content.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<FieldError>,
}

/// Why a request carries no usable API key (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header that is not `Bearer smk_…`.
    Malformed,
    /// A well-formed key that is unknown or revoked (the two are not told apart).
    Invalid,
}

/// Everything a handler can answer other than success.
pub enum ApiError {
    /// 401: no API key, or one that is malformed, unknown or revoked.
    Unauthorized(KeyProblem),
    /// 403: a valid key whose role does not reach this route or this merchant.
    Forbidden(String),
    /// 429: the key's rate limit is spent; retry after this many seconds.
    RateLimited { retry_after_secs: u64 },
    /// 400: the body is not JSON, has unknown fields or values of the wrong type.
    MalformedBody(FieldError),
    /// 400: a query parameter cannot be read.
    BadQuery(Vec<FieldError>),
    /// 404
    NotFound(String),
    /// 409: the request contradicts what is stored.
    Conflict {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 413
    PayloadTooLarge { limit: usize },
    /// 415
    UnsupportedMediaType,
    /// 422: well-formed but invalid content.
    Validation {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 503: the store is unreachable or busy; try again.
    Unavailable,
    /// 503: no scoring model is loaded (none in the models directory verified).
    NoModel,
    /// 503: the request did not finish within the request timeout (seconds); try again.
    Timeout { after_secs: u64 },
    /// 500: logged with its cause chain; the client learns only that something failed.
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn validation(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        ApiError::Validation {
            detail: detail.into(),
            errors,
        }
    }

    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let e = FieldError::new(field, message);
        ApiError::Validation {
            detail: format!("{} is invalid: {}", e.field, e.message),
            errors: vec![e],
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Unauthorized(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "A valid API key is required",
            ),
            ApiError::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "The API key does not allow this",
            ),
            ApiError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            ApiError::MalformedBody(_) => (
                StatusCode::BAD_REQUEST,
                "malformed-body",
                "The request body cannot be read",
            ),
            ApiError::BadQuery(_) => (
                StatusCode::BAD_REQUEST,
                "bad-query",
                "A query parameter cannot be read",
            ),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::Conflict { .. } => (
                StatusCode::CONFLICT,
                "conflict",
                "The request conflicts with stored data",
            ),
            ApiError::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "The request body is too large",
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported content type",
            ),
            ApiError::Validation { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "The request is not valid",
            ),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The service is temporarily unavailable",
            ),
            ApiError::NoModel => (
                StatusCode::SERVICE_UNAVAILABLE,
                "no-model",
                "No scoring model is loaded",
            ),
            ApiError::Timeout { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "The request took too long",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }

    /// The problem document this error is answered with.
    pub fn problem(&self) -> Problem {
        let (status, kind, title) = self.parts();
        let (detail, errors) = match self {
            ApiError::Unauthorized(problem) => (
                match problem {
                    KeyProblem::Missing => {
                        "send an API key in the Authorization header: Bearer smk_…"
                    }
                    KeyProblem::Malformed => {
                        "the Authorization header must be Bearer followed by an API key (smk_ and 64 hex digits)"
                    }
                    KeyProblem::Invalid => "the API key is unknown or revoked",
                }
                .to_string(),
                vec![],
            ),
            ApiError::Forbidden(detail) => (detail.clone(), vec![]),
            ApiError::RateLimited { retry_after_secs } => (
                format!(
                    "this API key has used up its rate limit; retry in {retry_after_secs} s"
                ),
                vec![],
            ),
            ApiError::MalformedBody(e) => (format!("{}: {}", e.field, e.message), vec![e.clone()]),
            ApiError::BadQuery(errors) => (
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
                errors.clone(),
            ),
            ApiError::NotFound(detail) => (detail.clone(), vec![]),
            ApiError::Conflict { detail, errors } | ApiError::Validation { detail, errors } => {
                (detail.clone(), errors.clone())
            }
            ApiError::PayloadTooLarge { limit } => (
                format!("the body is larger than the limit of {limit} bytes; send a smaller batch"),
                vec![],
            ),
            ApiError::UnsupportedMediaType => (
                "send the body as JSON with Content-Type: application/json".to_string(),
                vec![FieldError::new("Content-Type", "must be application/json")],
            ),
            ApiError::Unavailable => (
                "the database cannot be reached right now; retry shortly".to_string(),
                vec![],
            ),
            ApiError::NoModel => (
                "no model artifact in the models directory could be loaded; see GET /v1/models and activate one"
                    .to_string(),
                vec![],
            ),
            ApiError::Timeout { after_secs } => (
                format!(
                    "the request did not finish within {after_secs} s and was abandoned; retry shortly \
                     (writes are all or nothing, and a retried payment or loan is not stored twice)"
                ),
                vec![],
            ),
            ApiError::Internal(_) => (
                "the request failed on our side and has been logged".to_string(),
                vec![],
            ),
        };
        Problem {
            problem_type: format!("/problems/{kind}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

/// Only the kind: field messages may echo client data (amounts, payer references) and must not
/// reach a log through `{:?}`. An internal error shows its cause chain, which is ours.
impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Internal(e) => write!(f, "Internal({e:?})"),
            other => write!(f, "ApiError({})", other.parts().1),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.parts().2)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(e) => tracing::error!(error = ?e, "request failed"),
            ApiError::Unavailable => tracing::warn!("store unavailable"),
            ApiError::Timeout { .. } => tracing::warn!("request timed out"),
            _ => {}
        }
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        match self {
            ApiError::Unavailable | ApiError::NoModel | ApiError::Timeout { .. } => {
                res.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
            }
            ApiError::RateLimited { retry_after_secs } => {
                res.insert_header((header::RETRY_AFTER, *retry_after_secs));
            }
            // RFC 6750: no error code when no key was sent at all.
            ApiError::Unauthorized(problem) => {
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(match problem {
                        KeyProblem::Missing => r#"Bearer realm="smecredit""#,
                        KeyProblem::Malformed => {
                            r#"Bearer realm="smecredit", error="invalid_request""#
                        }
                        KeyProblem::Invalid => r#"Bearer realm="smecredit", error="invalid_token""#,
                    }),
                ));
            }
            _ => {}
        }
        res.body(serde_json::to_string(&self.problem()).unwrap_or_default())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "store unavailable");
                ApiError::Unavailable
            }
            StoreError::Config(m) => ApiError::Internal(anyhow::anyhow!(m)),
            StoreError::Other(e) => ApiError::Internal(e),
        }
    }
}
