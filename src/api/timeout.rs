//! The per-request timeout: a request that has not been answered within
//! [`Limits::request_timeout`](super::Limits) is abandoned and answered 503 with `Retry-After`
//! (a 504 would say a gateway timed out; here the service itself gives up and asks to be asked
//! again). Abandoning drops the handler's future: an open transaction is rolled back, and an
//! idempotency key it held is released.
//!
//! The answer is an error rather than a response: the request itself went down with the dropped
//! future, and an app-wide middleware must not keep a copy of it while routing runs.
//! [`tag_request`](super::request_id::tag_request) still gives it its `X-Request-Id`.

use super::{ApiError, AppState};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

/// Middleware body, for `App::wrap(from_fn(…))`.
pub async fn limit_duration<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let Some(timeout) = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.limits.request_timeout)
    else {
        return next.call(req).await;
    };
    match tokio::time::timeout(timeout, next.call(req)).await {
        Ok(res) => res,
        Err(_) => Err(ApiError::Timeout {
            after_secs: timeout.as_secs_f64().ceil() as u64,
        }
        .into()),
    }
}
