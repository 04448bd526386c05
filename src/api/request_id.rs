//! Every request carries an id: the client's `X-Request-Id` when it sends a sane one, a fresh
//! UUID otherwise. It is echoed in the response and names the request's tracing span.

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

pub const HEADER: &str = "x-request-id";

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    /// The client's id if it is 1–128 visible ASCII characters, else a new UUID.
    pub fn from_request(req: &ServiceRequest) -> RequestId {
        let given = req
            .headers()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()));
        RequestId(given.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string))
    }
}

/// Middleware body: tags the request with its id and echoes it in the response.
pub async fn tag_request<B: MessageBody>(
    req: ServiceRequest,
    next: actix_web::middleware::Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let id = RequestId::from_request(&req);
    req.extensions_mut().insert(id.clone());
    let value = HeaderValue::from_str(&id.0).ok();
    match next.call(req).await {
        Ok(mut res) => {
            if let Some(value) = value {
                res.headers_mut()
                    .insert(HeaderName::from_static(HEADER), value);
            }
            Ok(res)
        }
        // An error that never became a response (the request timeout): its response, with the id.
        Err(e) => {
            let mut res = e.error_response();
            if let Some(value) = value {
                res.headers_mut()
                    .insert(HeaderName::from_static(HEADER), value);
            }
            Err(actix_web::error::InternalError::from_response(e, res).into())
        }
    }
}

/// The request span: method, path and request id, the public id of the API key once it is
/// checked; at the end, the status and (for errors) the error's fixed title. Never the body, the
/// query's values beyond the path, headers, or a key itself.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            request_id = %id,
            method = %request.method(),
            path = %request.path(),
            key_id = tracing::field::Empty,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let (status, error) = match outcome {
            Ok(res) => (res.status(), res.response().error().map(|e| e.to_string())),
            Err(e) => (e.as_response_error().status_code(), Some(e.to_string())),
        };
        span.record("status", status.as_u16());
        span.in_scope(|| match error {
            Some(error) if status.is_server_error() => tracing::error!(%error, "request failed"),
            Some(error) => tracing::info!(%error, "request refused"),
            None => tracing::info!("request served"),
        });
    }
}
