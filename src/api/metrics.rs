//! `GET /metrics`: the counters in the Prometheus text format, and the middleware that counts
//! every request by its route template.

use super::{AppState, CommonErrors};
use crate::metrics::Gauges;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use std::time::Instant;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Metrics in the Prometheus text exposition format.
///
/// Requests and latency by route template, decisions by outcome and grade, payments ingested
/// and batches refused, the active model and the database pools' connections.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Every series, in the Prometheus text exposition format 0.0.4",
            body = String, content_type = "text/plain; version=0.0.4; charset=utf-8",
            example = json!("# TYPE smecredit_active_model gauge\nsmecredit_active_model{version=\"sc-2026.12-sim45\"} 1\n")),
        CommonErrors,
    ))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let gauges = Gauges {
        active_model: state.models.current().map(|m| m.version.clone()),
        pools: state.store.pool_usage(),
    };
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(state.metrics.render(&gauges))
}

/// Middleware body: counts the request under its matched route template (never the raw path,
/// which holds ids) and its status, and observes how long it took.
pub async fn count_request<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    let route = req.match_pattern();
    let outcome = next.call(req).await;
    if let Some(state) = state {
        let status = match &outcome {
            Ok(res) => res.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        state.metrics.observe_request(
            method.as_str(),
            route.as_deref(),
            status.as_u16(),
            started.elapsed(),
        );
    }
    outcome
}
