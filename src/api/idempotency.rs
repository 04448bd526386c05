//! `Idempotency-Key` on the POSTs that create something (`/v1/scores`, payment batches,
//! `/v1/loans`): a retry with the same key and the same request gets the first answer again —
//! same status, same body, the same `decision_id` — without the work being done twice.
//!
//! The database decides who owns a key (one statement claims it; see
//! [`Store::claim_idempotency_key`]), so replicas sharing a PostgreSQL agree. While the first
//! request runs, a second one with the key waits briefly for its answer, then gets a 409 with
//! `Retry-After`. Only answers worth replaying are kept: 2xx, and the 4xx that depend on the
//! request alone (400, 413, 415, 422). Anything else — 5xx, a 404 or 409 that depends on what is
//! stored, a request abandoned by the timeout — releases the key, so a retry runs again.
//! Keys expire after `idempotency_ttl_secs`; expired rows are ignored and purged lazily.
//!
//! Neither the key nor the body is ever logged.

use super::{ApiError, AppState};
use crate::store::{Claim, KeyClaim, Store, StoredResponse};
use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use utoipa::IntoParams;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Set on a response that is a replay of the first answer to the key.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key.
pub const MAX_KEY_LEN: usize = 255;

/// How keys behave.
#[derive(Debug, Clone)]
pub struct IdempotencyOptions {
    /// How long a key and its answer count.
    pub ttl: Duration,
    /// How long a claim holds while its request runs before another request may take the key
    /// over (its owner died); longer than the request timeout, so a live request keeps its key.
    pub lease: Duration,
    /// How long a request waits for the answer of another request holding its key.
    pub wait: Duration,
}

impl IdempotencyOptions {
    pub fn new(ttl: Duration, request_timeout: Duration) -> Self {
        IdempotencyOptions {
            ttl,
            lease: request_timeout + Duration::from_secs(5),
            wait: (request_timeout / 2).min(Duration::from_secs(5)),
        }
    }
}

impl Default for IdempotencyOptions {
    fn default() -> Self {
        IdempotencyOptions::new(Duration::from_secs(24 * 3600), Duration::from_secs(30))
    }
}

/// The header, for the OpenAPI description of the routes that take it.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKeyHeader {
    /// Makes a retry safe: the same key with the same request (method, path and body, byte for
    /// byte) answers the first response again (same status and body, with
    /// `Idempotent-Replayed: true`) instead of doing the work twice; with a different request it
    /// is a 422. 1–255 visible ASCII characters, e.g. a UUID; per caller; kept 24 hours (the
    /// service's default). While the first request is still running, a second one waits
    /// briefly, then gets a 409 with `Retry-After`. Only 2xx answers and refusals of the request
    /// itself (400, 413, 415, 422) are kept; after any other answer (404, 409, 5xx) the key can
    /// be used again.
    #[param(
        rename = "Idempotency-Key",
        value_type = String,
        required = false,
        pattern = r"^[!-~]{1,255}$",
        example = "3f1c2a9e-7b4d-4e8a-9c55-0d2e6b1f8a47"
    )]
    pub idempotency_key: Option<String>,
}

/// Marks a response as depending on stored data rather than on the request alone (such as a
/// 422 naming a merchant that is not stored yet), so that it is not replayed.
#[derive(Debug, Clone, Copy)]
pub struct DependsOnStoredData;

/// Called by a handler whose error answer would change once other data is stored.
pub fn depends_on_stored_data(req: &HttpRequest) {
    req.extensions_mut().insert(DependsOnStoredData);
}

/// Whose keys these are: the caller's principal (its first API key's id, kept across
/// rotations, so a retry with the rotated key still finds its answer). The guard runs after the
/// key check, so a caller is always known; `anonymous` only if it is not.
pub fn caller_scope(req: &HttpRequest) -> String {
    req.extensions()
        .get::<crate::keys::Caller>()
        .map_or_else(|| "anonymous".to_string(), |c| c.principal.clone())
}

/// The key, if the request has a valid one; a 422 naming the header if it is malformed.
fn key_of(req: &ServiceRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all(HEADER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if values.next().is_some() {
        return Err(ApiError::invalid_field(
            "Idempotency-Key",
            "send the header once",
        ));
    }
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(ApiError::invalid_field(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters (no spaces)"),
        ));
    }
    // Only visible ASCII, checked above.
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// What the request asks, as a hash: method, path with query, and body.
fn request_hash(req: &HttpRequest, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(req.method().as_str());
    h.update(b"\n");
    h.update(
        req.uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
    );
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Reads the body (at most `limit` bytes) so it can be hashed, and puts it back for the handler.
async fn take_body(req: &mut ServiceRequest, limit: usize) -> Result<web::Bytes, ApiError> {
    let payload = req.take_payload();
    let body = super::read_body(req.headers(), payload, limit)
        .await?
        .freeze();
    req.set_payload(actix_web::dev::Payload::from(body.clone()));
    Ok(body)
}

/// Whether an answer is kept for replay: success, and refusals that depend on the request alone.
fn worth_replaying(status: StatusCode, req: &HttpRequest) -> bool {
    if status.is_success() {
        return true;
    }
    matches!(
        status,
        StatusCode::BAD_REQUEST
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNPROCESSABLE_ENTITY
    ) && !req.extensions().contains::<DependsOnStoredData>()
}

/// The headers a replay repeats.
const REPLAYED_HEADERS: [HeaderName; 3] = [
    header::CONTENT_TYPE,
    header::LOCATION,
    header::CONTENT_LANGUAGE,
];

fn replay(stored: &StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut res = HttpResponse::build(status);
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            res.insert_header((name, value));
        }
    }
    res.insert_header((
        HeaderName::from_static(REPLAYED_HEADER),
        HeaderValue::from_static("true"),
    ));
    res.body(stored.body.clone())
}

fn reused_with_another_request() -> ApiError {
    ApiError::invalid_field(
        "Idempotency-Key",
        "this key was already used with a different request (method, path or body); use a new key for a new request",
    )
}

fn still_in_progress() -> HttpResponse {
    let mut res = HttpResponse::from_error(ApiError::Conflict {
        detail: "a request with this Idempotency-Key is still in progress; retry after the Retry-After seconds to get its answer".to_string(),
        errors: vec![super::FieldError::new("Idempotency-Key", "in use by a request in progress")],
    });
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

/// A claimed key: completed with the answer, or released — also when the request is abandoned
/// (the timeout drops it), from `Drop`.
struct Held {
    store: Store,
    scope: String,
    key: String,
    owner: String,
    settled: bool,
}

impl Held {
    async fn complete(mut self, response: &StoredResponse) {
        self.settled = true;
        match self
            .store
            .complete_idempotency_key(&self.scope, &self.key, &self.owner, response)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("idempotency key was taken over before its answer was stored")
            }
            // The answer still goes out; a retry after the lease runs the request again.
            Err(e) => {
                tracing::warn!(error = %e, "the answer to an idempotency key could not be stored")
            }
        }
    }

    async fn release(mut self) {
        self.settled = true;
        if let Err(e) = self
            .store
            .release_idempotency_key(&self.scope, &self.key, &self.owner)
            .await
        {
            tracing::warn!(error = %e, "an idempotency key could not be released; it frees itself when its lease ends");
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, scope, key, owner) = (
            self.store.clone(),
            std::mem::take(&mut self.scope),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.owner),
        );
        runtime.spawn(async move {
            if let Err(e) = store.release_idempotency_key(&scope, &key, &owner).await {
                tracing::warn!(error = %e, "an abandoned idempotency key could not be released; it frees itself when its lease ends");
            }
        });
    }
}

/// Purges expired keys now and then (at most every ten minutes per process), off the request.
fn purge_now_and_then(store: &Store, now: i64) {
    static LAST: AtomicI64 = AtomicI64::new(0);
    const EVERY: i64 = 10 * 60 * 1_000_000;
    let last = LAST.load(Ordering::Relaxed);
    if now - last < EVERY
        || LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let store = store.clone();
    tokio::spawn(async move {
        match store.purge_idempotency_keys(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "expired idempotency keys purged"),
            Err(e) => tracing::warn!(error = %e, "expired idempotency keys could not be purged"),
        }
    });
}

/// What became of the claim.
enum Outcome {
    Run(Held),
    Answer(HttpResponse),
}

/// Claims the key, or waits for the answer of the request that holds it.
async fn claim_or_wait(
    store: &Store,
    options: &IdempotencyOptions,
    scope: &str,
    key: &str,
    hash: &str,
) -> Result<Outcome, ApiError> {
    let deadline = tokio::time::Instant::now() + options.wait;
    let mut pause = Duration::from_millis(20);
    loop {
        let now = now_micros();
        let owner = uuid::Uuid::new_v4().to_string();
        let claim = KeyClaim {
            scope,
            key,
            request_hash: hash,
            owner: &owner,
            now,
            expires_at: now.saturating_add(micros(options.ttl)),
            lease_until: now.saturating_add(micros(options.lease)),
        };
        let mut held = match store.claim_idempotency_key(&claim).await? {
            Claim::Claimed => {
                purge_now_and_then(store, now);
                return Ok(Outcome::Run(Held {
                    store: store.clone(),
                    scope: scope.to_string(),
                    key: key.to_string(),
                    owner,
                    settled: false,
                }));
            }
            Claim::Held(stored) => Some(stored),
            Claim::Vanished => None,
        };
        // Another request holds the key: poll (reading only) until it answers, lets go, or the
        // wait is over.
        while let Some(stored) = held {
            if stored.request_hash != hash && stored.expires_at > now_micros() {
                return Err(reused_with_another_request());
            }
            if let Some(response) = &stored.response {
                tracing::info!(status = response.status, "idempotent replay");
                return Ok(Outcome::Answer(replay(response)));
            }
            if stored.is_free_for(hash, now_micros()) {
                break;
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Ok(Outcome::Answer(still_in_progress()));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
            held = store.idempotency_key(scope, key).await?;
        }
    }
}

/// Stores a replayable answer and rebuilds the response around its bytes.
async fn settle(
    held: Held,
    res: ServiceResponse<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let status = res.status();
    if !worth_replaying(status, res.request()) {
        held.release().await;
        return Ok(res.map_into_boxed_body());
    }
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = match body::to_bytes(body).await {
        Ok(bytes) => bytes,
        Err(e) => {
            held.release().await;
            let e: Box<dyn std::error::Error> = e.into();
            return Ok(ServiceResponse::new(
                req,
                HttpResponse::from_error(ApiError::Internal(anyhow::anyhow!(
                    "reading a response to keep for an idempotency key: {e}"
                ))),
            ));
        }
    };
    let headers = REPLAYED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = head.headers().get(name)?.to_str().ok()?;
            Some((name.as_str().to_string(), value.to_string()))
        })
        .collect();
    held.complete(&StoredResponse {
        status: status.as_u16(),
        headers,
        body: bytes.to_vec(),
    })
    .await;
    Ok(ServiceResponse::new(
        req,
        head.set_body(bytes).map_into_boxed_body(),
    ))
}

/// Middleware body, for `Resource::wrap(from_fn(…))` on the routes that take the header. Other
/// methods, and requests without the header, pass through untouched.
pub async fn guard<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() != Method::POST {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let key = match key_of(&req) {
        Ok(Some(key)) => key,
        Ok(None) => {
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_boxed_body);
        }
        Err(e) => return Ok(req.error_response(e)),
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let body = match take_body(&mut req, state.limits.max_body_bytes).await {
        Ok(body) => body,
        Err(e) => return Ok(req.error_response(e)),
    };
    let scope = caller_scope(req.request());
    let hash = request_hash(req.request(), &body);
    drop(body);
    let outcome = claim_or_wait(&state.store, &state.idempotency, &scope, &key, &hash).await;
    match outcome {
        Err(e) => Ok(req.error_response(e)),
        Ok(Outcome::Answer(res)) => Ok(req.into_response(res)),
        Ok(Outcome::Run(held)) => match next.call(req).await {
            Ok(res) => settle(held, res).await,
            Err(e) => {
                // An error that did not become a response: nothing worth replaying.
                held.release().await;
                Err(e)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;
    use actix_web::test::TestRequest;

    #[test]
    fn keys_are_visible_ascii_up_to_255_characters() {
        let ok = TestRequest::post()
            .insert_header((HEADER, "3f1c2a9e-7b4d"))
            .to_srv_request();
        assert_eq!(key_of(&ok).unwrap().as_deref(), Some("3f1c2a9e-7b4d"));
        let none = TestRequest::post().to_srv_request();
        assert!(key_of(&none).unwrap().is_none());
        for bad in ["", "has space", &"k".repeat(256)] {
            let req = TestRequest::post()
                .insert_header((HEADER, bad))
                .to_srv_request();
            let e = key_of(&req).unwrap_err();
            assert_eq!(e.status_code(), StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
            assert_eq!(e.problem().errors[0].field, "Idempotency-Key");
        }
        let longest = TestRequest::post()
            .insert_header((HEADER, "k".repeat(255)))
            .to_srv_request();
        assert!(key_of(&longest).unwrap().is_some());
    }

    #[test]
    fn the_hash_covers_method_path_and_body() {
        let a = TestRequest::post().uri("/v1/scores").to_http_request();
        let b = TestRequest::post().uri("/v1/loans").to_http_request();
        assert_eq!(request_hash(&a, b"{}"), request_hash(&a, b"{}"));
        assert_ne!(request_hash(&a, b"{}"), request_hash(&a, b"{ }"));
        assert_ne!(request_hash(&a, b"{}"), request_hash(&b, b"{}"));
    }

    #[test]
    fn the_caller_scope_is_the_keys_principal_never_the_credential() {
        let anonymous = TestRequest::post().to_http_request();
        assert_eq!(caller_scope(&anonymous), "anonymous");
        let with_key = TestRequest::post()
            .insert_header((header::AUTHORIZATION, "Bearer secret"))
            .to_http_request();
        with_key.extensions_mut().insert(crate::keys::Caller {
            key_id: "k2".to_string(),
            principal: "k1".to_string(),
            name: "lender".to_string(),
            role: crate::keys::Role::Lender,
            merchant_id: None,
        });
        assert_eq!(caller_scope(&with_key), "k1");
    }

    #[test]
    fn only_answers_that_depend_on_the_request_alone_are_replayed() {
        let req = TestRequest::post().to_http_request();
        assert!(worth_replaying(StatusCode::OK, &req));
        assert!(worth_replaying(StatusCode::CREATED, &req));
        assert!(worth_replaying(StatusCode::UNPROCESSABLE_ENTITY, &req));
        assert!(!worth_replaying(StatusCode::NOT_FOUND, &req));
        assert!(!worth_replaying(StatusCode::CONFLICT, &req));
        assert!(!worth_replaying(StatusCode::SERVICE_UNAVAILABLE, &req));
        assert!(!worth_replaying(StatusCode::INTERNAL_SERVER_ERROR, &req));
        depends_on_stored_data(&req);
        assert!(!worth_replaying(StatusCode::UNPROCESSABLE_ENTITY, &req));
    }
}
