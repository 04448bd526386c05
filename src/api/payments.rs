use super::idempotency::IdempotencyKeyHeader;
use super::merchants::{find_merchant, merchant_id_from_path};
use super::{ApiError, AppState, CommonErrors, FieldError, Problem, read_json};
use crate::domain::{Channel, Currency, Money, MoneyJson, Payment, PaymentKind};
use crate::ingest::{PaymentField, RawPayment, parse_timestamp, validate_payment};
use crate::store::{Cursor, NewPayment, OnConflict, PaymentQuery};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A payment as the platform sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    /// Unique within the merchant; 1–64 characters: ASCII letters, digits, `.`, `_`, `:`, `-`.
    #[schema(example = "wx-20261120-000123", pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub payment_id: String,
    /// RFC 3339 with an offset; not before 2000-01-01, not more than 5 minutes ahead of our
    /// clock, at most microsecond precision.
    #[schema(value_type = String, format = DateTime, example = "2026-11-20T11:00:00+08:00")]
    pub occurred_at: String,
    /// Positive, in the merchant's settlement currency, at most 9999999999.99.
    #[schema(value_type = Money)]
    pub amount: MoneyJson,
    #[schema(value_type = PaymentKind)]
    pub kind: String,
    #[schema(value_type = Channel)]
    pub channel: String,
    /// An opaque pseudonymous payer token (1–128 visible characters).
    #[schema(example = "wxp_7f3a9c")]
    pub payer_ref: String,
}

/// A batch of 1 to 10,000 payments of one merchant, stored all or nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"payments": [
    {"payment_id": "p-1", "occurred_at": "2026-11-20T08:15:00+08:00", "amount": {"amount": "18.50", "currency": "CNY"}, "kind": "sale", "channel": "qr_code", "payer_ref": "wxp_7f3a9c"},
    {"payment_id": "p-2", "occurred_at": "2026-11-20T09:02:41+08:00", "amount": {"amount": "6.00", "currency": "CNY"}, "kind": "refund", "channel": "qr_code", "payer_ref": "wxp_7f3a9c"}
]}))]
pub struct PaymentBatch {
    pub payments: Vec<PaymentInput>,
}

/// What became of a batch.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"accepted": 2, "duplicates": 0}))]
pub struct BatchResult {
    /// Payments newly stored.
    pub accepted: u64,
    /// Payments already stored with identical content; not stored twice.
    pub duplicates: u64,
}

/// A stored payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub payment_id: String,
    pub occurred_at: DateTime<Utc>,
    pub amount: Money,
    pub kind: PaymentKind,
    pub channel: Channel,
    pub payer_ref: String,
}

impl From<Payment> for PaymentView {
    fn from(p: Payment) -> Self {
        PaymentView {
            payment_id: p.id.into(),
            occurred_at: p.occurred_at,
            amount: p.amount,
            kind: p.kind,
            channel: p.channel,
            payer_ref: p.payer_ref.into(),
        }
    }
}

/// A page of payments in time order.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentPageView {
    pub payments: Vec<PaymentView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only payments at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// Only payments before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

fn json_field(i: usize, f: PaymentField) -> String {
    let name = match f {
        PaymentField::PaymentId => "payment_id",
        PaymentField::OccurredAt => "occurred_at",
        PaymentField::Amount => "amount.amount",
        PaymentField::Currency => "amount.currency",
        PaymentField::Kind => "kind",
        PaymentField::Channel => "channel",
        PaymentField::PayerRef => "payer_ref",
    };
    format!("payments[{i}].{name}")
}

/// Validates every payment of a list (a batch, or an inline history), reporting every invalid
/// field as `payments[i].field`; `what` says what did not happen ("stored", "scored").
pub(super) fn validate_payments(
    inputs: &[PaymentInput],
    currency: Currency,
    what: &str,
) -> Result<Vec<Payment>, ApiError> {
    let now = Utc::now();
    let mut payments = Vec::with_capacity(inputs.len());
    let mut errors = Vec::new();
    let mut invalid = 0;
    for (i, p) in inputs.iter().enumerate() {
        let raw = RawPayment {
            payment_id: &p.payment_id,
            occurred_at: &p.occurred_at,
            amount: &p.amount.amount,
            currency: &p.amount.currency,
            kind: &p.kind,
            channel: &p.channel,
            payer_ref: &p.payer_ref,
        };
        match validate_payment(&raw, currency, now) {
            Ok(payment) => payments.push(payment),
            Err(problems) => {
                invalid += 1;
                errors.extend(
                    problems
                        .into_iter()
                        .map(|(f, e)| FieldError::new(json_field(i, f), e.to_string())),
                );
            }
        }
    }
    if invalid > 0 {
        return Err(ApiError::validation(
            format!(
                "{invalid} of {} payments are invalid; nothing was {what}",
                inputs.len()
            ),
            errors,
        ));
    }
    Ok(payments)
}

/// Store a batch of a merchant's payments.
///
/// All or nothing: if any payment is invalid, the answer lists every invalid field and nothing
/// is stored. A payment whose id is already stored with the same content is a duplicate
/// (counted, not stored twice), so a batch can safely be re-sent. The same id with different
/// content is a conflict (409) and nothing of the batch is stored. An accepted batch is
/// committed to disk before the answer.
#[utoipa::path(post, path = "/v1/merchants/{merchant_id}/payments", tag = "payments",
    params(("merchant_id" = String, Path, description = "The platform's merchant id", pattern = r"^[A-Za-z0-9._:-]{1,64}$"), IdempotencyKeyHeader),
    request_body = PaymentBatch,
    responses(
        (status = 200, description = "Stored", body = BatchResult),
        (status = 400, description = "The body is not JSON, or has unknown fields or wrongly typed values", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A payment id is stored with different content, and nothing was stored; or a request with the same Idempotency-Key is still in progress (retry after Retry-After)", body = Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/conflict", "title": "The request conflicts with stored data", "status": 409,
                "detail": "1 payment id is already stored with different content: p-1; nothing of this batch was stored",
                "errors": [{"field": "payments[0].payment_id", "message": "p-1 is already stored with different content"}]})),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Payments are invalid, and nothing was stored; or the Idempotency-Key is malformed or was used with a different request", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn ingest(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let result = store_batch(&req, &path, body, &state).await;
    match &result {
        Ok(stored) => state
            .metrics
            .observe_batch_stored(stored.accepted, stored.duplicates),
        // Refused for what it holds or names (unreadable, invalid, conflicting, no such
        // merchant); a 5xx is our failure, not the batch's.
        Err(e) if e.status_code().is_client_error() => state.metrics.observe_batch_rejected(),
        Err(_) => {}
    }
    result.map(|stored| HttpResponse::Ok().json(stored))
}

async fn store_batch(
    req: &HttpRequest,
    path: &str,
    body: web::Payload,
    state: &web::Data<AppState>,
) -> Result<BatchResult, ApiError> {
    let id = merchant_id_from_path(path)?;
    let batch: PaymentBatch = read_json(req, body, state.limits.max_body_bytes).await?;
    let n = batch.payments.len();
    if n == 0 {
        return Err(ApiError::invalid_field(
            "payments",
            "the batch is empty; send 1 to 10000 payments",
        ));
    }
    if n > state.limits.max_batch {
        return Err(ApiError::invalid_field(
            "payments",
            format!(
                "the batch has {n} payments; at most {} are allowed",
                state.limits.max_batch
            ),
        ));
    }
    let merchant = find_merchant(state, &id).await?;
    let payments = validate_payments(&batch.payments, merchant.merchant.currency, "stored")?;
    let rows: Vec<NewPayment<'_>> = payments
        .iter()
        .map(|payment| NewPayment {
            merchant_key: merchant.key,
            payment,
        })
        .collect();
    let outcome = state
        .store
        .insert_payments(&rows, OnConflict::RejectBatch)
        .await?;
    if !outcome.conflicts.is_empty() {
        let ids: Vec<&str> = outcome
            .conflicts
            .iter()
            .map(|i| payments[*i].id.as_str())
            .collect();
        return Err(ApiError::Conflict {
            detail: format!(
                "{} payment id(s) already stored with different content: {}; nothing of this batch was stored",
                ids.len(),
                ids.join(", ")
            ),
            errors: outcome
                .conflicts
                .iter()
                .map(|i| {
                    FieldError::new(
                        format!("payments[{i}].payment_id"),
                        format!(
                            "{} is already stored with different content",
                            payments[*i].id
                        ),
                    )
                })
                .collect(),
        });
    }
    tracing::info!(
        accepted = outcome.accepted,
        duplicates = outcome.duplicates,
        "payments stored"
    );
    Ok(BatchResult {
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
    })
}

/// A merchant's payments in time order, paged by cursor.
#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/payments", tag = "payments", operation_id = "list_payments",
    params(("merchant_id" = String, Path, description = "The platform's merchant id", pattern = r"^[A-Za-z0-9._:-]{1,64}$"), ListQuery),
    responses(
        (status = 200, description = "A page of payments", body = PaymentPageView),
        (status = 400, description = "A query parameter cannot be read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A query parameter is invalid", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn list(
    path: web::Path<String>,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = merchant_id_from_path(&path)?;
    let mut errors = Vec::new();
    let mut time = |name: &str, v: &Option<String>| match v.as_deref().map(parse_timestamp) {
        Some(Err(e)) => {
            errors.push(FieldError::new(name, e.to_string()));
            None
        }
        Some(Ok(t)) => Some(t),
        None => None,
    };
    let from = time("from", &query.from);
    let to = time("to", &query.to);
    let after = match query.cursor.as_deref() {
        Some(c) => {
            let cursor = Cursor::decode(c);
            if cursor.is_none() {
                errors.push(FieldError::new(
                    "cursor",
                    "not a cursor this service issued",
                ));
            }
            cursor
        }
        None => None,
    };
    let limit = query.limit.unwrap_or(state.limits.default_page);
    if limit == 0 || limit > state.limits.max_page {
        errors.push(FieldError::new(
            "limit",
            format!("must be between 1 and {}", state.limits.max_page),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation("the query is invalid", errors));
    }
    let merchant = find_merchant(&state, &id).await?;
    let page = state
        .store
        .payments(
            &merchant,
            &PaymentQuery {
                from,
                to,
                after,
                limit,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(PaymentPageView {
        payments: page.payments.into_iter().map(PaymentView::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}
