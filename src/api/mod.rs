//! The REST API: routes per resource, one error type answered as problem+json, request ids,
//! access control and rate limits per API key, and the OpenAPI document generated from the
//! handlers' annotations.

pub mod auth;
mod eligibility;
pub mod error;
mod features;
mod health;
pub mod idempotency;
mod keys;
mod loans;
mod merchants;
pub mod metrics;
mod models;
mod payments;
pub mod rate_limit;
pub mod request_id;
mod scores;
pub mod timeout;

pub use error::{ApiError, FieldError, KeyProblem, Problem};
pub use models::ACTIVE_MODEL_SETTING;
pub use request_id::{RequestId, RequestSpan};
pub use scores::{AuditRecord, DecisionView};

use crate::store::Store;
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, web};
use auth::SecurityAddon;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;

/// Limits on what one request may ask.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_batch: usize,
    pub default_page: u32,
    pub max_page: u32,
    /// A request not answered within this is abandoned and answered 503 (see [`timeout`]).
    pub request_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 * 1024 * 1024,
            max_batch: 10_000,
            default_page: 100,
            max_page: 1_000,
            request_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// The deepest JSON a body may nest (objects and arrays). The deepest valid request nests 4
/// levels; a limit well above that refuses pathological bodies before any parsing work.
pub const MAX_JSON_DEPTH: usize = 32;

/// What every handler gets: the store, the limits, the models (the active one behind an atomic
/// swap), the lending policy, the API keys (with their short cache) and their rate limits.
/// Nothing is loaded per request.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    /// The audit log's group-committing writer.
    pub decisions: crate::store::DecisionLog,
    pub limits: Limits,
    pub models: std::sync::Arc<crate::scoring::ModelRegistry>,
    pub policy: std::sync::Arc<crate::policy::Policy>,
    pub keys: std::sync::Arc<crate::keys::KeyRing>,
    pub rate_limits: std::sync::Arc<rate_limit::RateLimits>,
    pub idempotency: idempotency::IdempotencyOptions,
    /// What `/metrics` shows.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

/// Registers every route of the API, each protected route behind the key check its entry in
/// [`auth::ROUTES`] asks for.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use auth::require;
    cfg.service(web::resource("/healthz").route(web::get().to(health::healthz)))
        .service(web::resource("/readyz").route(web::get().to(health::readyz)))
        .service(
            web::resource("/metrics").route(
                web::get()
                    .to(metrics::metrics)
                    .wrap(require("GET", "/metrics")),
            ),
        )
        .service(
            web::resource("/v1/merchants").route(
                web::post()
                    .to(merchants::upsert)
                    .wrap(require("POST", "/v1/merchants")),
            ),
        )
        .service(
            web::resource("/v1/merchants/{merchant_id}").route(
                web::get()
                    .to(merchants::get)
                    .wrap(require("GET", "/v1/merchants/{merchant_id}")),
            ),
        )
        .service(
            web::resource("/v1/merchants/{merchant_id}/payments")
                .route(
                    web::post()
                        .to(payments::ingest)
                        .wrap(from_fn(idempotency::guard))
                        .wrap(require("POST", "/v1/merchants/{merchant_id}/payments")),
                )
                .route(
                    web::get()
                        .to(payments::list)
                        .wrap(require("GET", "/v1/merchants/{merchant_id}/payments")),
                ),
        )
        .service(
            web::resource("/v1/features").route(
                web::get()
                    .to(features::catalog)
                    .wrap(require("GET", "/v1/features")),
            ),
        )
        .service(
            web::resource("/v1/merchants/{merchant_id}/features").route(
                web::get()
                    .to(features::merchant_features)
                    .wrap(require("GET", "/v1/merchants/{merchant_id}/features")),
            ),
        )
        .service(
            web::resource("/v1/merchants/{merchant_id}/loans").route(
                web::get()
                    .to(loans::list_for_merchant)
                    .wrap(require("GET", "/v1/merchants/{merchant_id}/loans")),
            ),
        )
        .service(
            web::resource("/v1/merchants/{merchant_id}/eligibility").route(
                web::get()
                    .to(eligibility::eligibility)
                    .wrap(require("GET", "/v1/merchants/{merchant_id}/eligibility")),
            ),
        )
        .service(
            web::resource("/v1/scores").route(
                web::post()
                    .to(scores::score)
                    .wrap(from_fn(idempotency::guard))
                    .wrap(require("POST", "/v1/scores")),
            ),
        )
        .service(
            web::resource("/v1/decisions/{decision_id}").route(
                web::get()
                    .to(scores::decision)
                    .wrap(require("GET", "/v1/decisions/{decision_id}")),
            ),
        )
        .service(
            web::resource("/v1/models").route(
                web::get()
                    .to(models::list)
                    .wrap(require("GET", "/v1/models")),
            ),
        )
        .service(
            web::resource("/v1/models/{version}/activate").route(
                web::post()
                    .to(models::activate)
                    .wrap(require("POST", "/v1/models/{version}/activate")),
            ),
        )
        .service(
            web::resource("/v1/loans").route(
                web::post()
                    .to(loans::create)
                    .wrap(from_fn(idempotency::guard))
                    .wrap(require("POST", "/v1/loans")),
            ),
        )
        .service(
            web::resource("/v1/loans/{loan_id}").route(
                web::get()
                    .to(loans::get)
                    .wrap(require("GET", "/v1/loans/{loan_id}")),
            ),
        )
        .service(
            web::resource("/v1/loans/{loan_id}/outcome").route(
                web::post()
                    .to(loans::record_outcome)
                    .wrap(require("POST", "/v1/loans/{loan_id}/outcome")),
            ),
        )
        .service(
            web::resource("/v1/keys")
                .route(web::get().to(keys::list).wrap(require("GET", "/v1/keys")))
                .route(
                    web::post()
                        .to(keys::create)
                        .wrap(require("POST", "/v1/keys")),
                ),
        )
        .service(
            web::resource("/v1/keys/{key_id}/revoke").route(
                web::post()
                    .to(keys::revoke)
                    .wrap(require("POST", "/v1/keys/{key_id}/revoke")),
            ),
        )
        .service(
            web::resource("/v1/keys/{key_id}/rotate").route(
                web::post()
                    .to(keys::rotate)
                    .wrap(require("POST", "/v1/keys/{key_id}/rotate")),
            ),
        );
}

/// Query strings that cannot be read are a 400 problem naming the parameter.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::BadQuery(vec![FieldError::new("query", err.to_string())]).into()
    })
}

/// Anything that matches no route.
pub async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "there is no {} {}",
        req.method(),
        req.path()
    )))
}

/// Reads a request body of at most `limit` bytes (413 beyond it, and at once when the declared
/// length is larger); for [`read_json`] and the idempotency guard, which hashes the body.
pub(super) async fn read_body<S>(
    headers: &header::HeaderMap,
    mut payload: S,
    limit: usize,
) -> Result<web::BytesMut, ApiError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>> + Unpin,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::MalformedBody(FieldError::new(
                "body",
                format!("the body could not be read: {e}"),
            ))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads a JSON body: `application/json` (415 otherwise), at most `limit` bytes (413), nested at
/// most [`MAX_JSON_DEPTH`] deep, and of the expected shape (400 naming the field at fault, with
/// unknown fields refused).
pub async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json"
        && !(essence.starts_with("application/") && essence.ends_with("+json"))
    {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = read_body(req.headers(), payload, limit).await?;
    if nests_deeper_than(&body, MAX_JSON_DEPTH) {
        return Err(ApiError::MalformedBody(FieldError::new(
            "body",
            format!("the JSON nests deeper than {MAX_JSON_DEPTH} levels"),
        )));
    }
    let mut de = serde_json::Deserializer::from_slice(&body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::MalformedBody(FieldError::new(field, e.into_inner().to_string()))
    })?;
    de.end()
        .map_err(|e| ApiError::MalformedBody(FieldError::new("body", e.to_string())))?;
    Ok(value)
}

/// Whether JSON text nests objects and arrays more than `max` deep, by one pass over its bytes
/// (brackets inside strings do not count). Malformed text is left to the parser.
fn nests_deeper_than(json: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The OpenAPI document, generated from the handlers; `openapi/openapi.json` is a snapshot of it.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "smecredit",
        description = "Credit eligibility scoring for small and micro merchants from their payment histories. \
Money is a decimal string with its ISO 4217 currency, never a JSON number. Times are RFC 3339. \
Errors are RFC 9457 problem documents (application/problem+json). \
Every route but /healthz, /readyz, /openapi.json and /docs needs an API key (`Authorization: Bearer smk_…`) \
whose role reaches it: each operation names the roles it accepts; 401 without a valid key, 403 for a key \
of another role (or another merchant), 429 with `Retry-After` when the key's rate limit is spent."
    ),
    modifiers(&SecurityAddon),
    paths(
        health::healthz,
        health::readyz,
        metrics::metrics,
        merchants::upsert,
        merchants::get,
        payments::ingest,
        payments::list,
        features::catalog,
        features::merchant_features,
        scores::score,
        scores::decision,
        eligibility::eligibility,
        models::list,
        models::activate,
        loans::create,
        loans::get,
        loans::record_outcome,
        loans::list_for_merchant,
        keys::list,
        keys::create,
        keys::revoke,
        keys::rotate,
    ),
    components(schemas(Problem, FieldError)),
    tags(
        (name = "merchants", description = "Merchants as the payment platform describes them"),
        (name = "payments", description = "Payment histories, ingested exactly once"),
        (name = "features", description = "Point-in-time features of a merchant's history, and their catalog"),
        (name = "scores", description = "Credit decisions for lenders, and their audit records"),
        (name = "models", description = "Model artifacts: list, verify and switch without a restart"),
        (name = "loans", description = "Loans and their outcomes: the labels for retraining"),
        (name = "keys", description = "API keys and their roles, for admins"),
        (name = "operations", description = "Liveness, readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// The spec as committed in `openapi/openapi.json`.
pub fn openapi_json() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}

/// The problem responses every route may give, for `#[utoipa::path]`.
#[derive(utoipa::IntoResponses)]
pub enum CommonErrors {
    /// The store cannot be reached (`/problems/unavailable`), or the request did not finish
    /// within the request timeout (`/problems/timeout`); retry after the `Retry-After` seconds.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(#[to_schema] Problem),
    /// Something failed on our side; it was logged with its cause.
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
}

#[cfg(test)]
mod tests {
    use super::nests_deeper_than;

    #[test]
    fn nesting_depth_counts_brackets_outside_strings() {
        assert!(!nests_deeper_than(br#"{"a": [1, {"b": 2}]}"#, 3));
        assert!(nests_deeper_than(br#"{"a": [1, {"b": 2}]}"#, 2));
        assert!(!nests_deeper_than(br#"{"a": "[[[[[[", "b": "\"{{{{"}"#, 1));
        let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
        assert!(nests_deeper_than(deep.as_bytes(), 32));
        let ok = format!("{}{}", "[".repeat(32), "]".repeat(32));
        assert!(!nests_deeper_than(ok.as_bytes(), 32));
    }
}
