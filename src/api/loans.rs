use super::idempotency::IdempotencyKeyHeader;
use super::merchants::{find_merchant, merchant_id_from_path};
use super::{ApiError, AppState, CommonErrors, FieldError, Problem, read_json};
use crate::domain::{LoanId, MerchantId, Money, MoneyJson, OutcomeKind};
use crate::ingest::{RawLoan, validate_loan, validate_outcome};
use crate::store::{LoanWrite, NewLoan, OutcomeWrite, StoredLoan};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A loan disbursed to a merchant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"loan_id": "L-2026-0001", "merchant_id": "m-0001", "disbursed_on": "2026-05-01",
    "principal": {"amount": "5000.00", "currency": "CNY"}, "term_days": 90}))]
pub struct LoanInput {
    /// Unique across the service; 1–64 characters: ASCII letters, digits, `.`, `_`, `:`, `-`.
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub loan_id: String,
    #[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub merchant_id: String,
    /// `YYYY-MM-DD`, not in the future.
    #[schema(value_type = String, format = Date)]
    pub disbursed_on: String,
    /// Positive, in the merchant's settlement currency.
    #[schema(value_type = Money)]
    pub principal: MoneyJson,
    /// 1 to 3650.
    #[schema(minimum = 1, maximum = 3650)]
    #[serde(deserialize_with = "whole_number")]
    pub term_days: i64,
}

/// A JSON integer, also when written with a zero fraction (`90.0`): JSON does not tell the two
/// apart, JSON Schema's `integer` admits both, and a client's serializer may send either.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        // Within ±2^53 every whole f64 is exactly that integer.
        Some(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => Ok(f as i64),
        _ => Err(serde::de::Error::invalid_value(
            serde::de::Unexpected::Other(&n.to_string()),
            &"a whole number",
        )),
    }
}

/// What became of a loan.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"outcome": "defaulted", "defaulted_on": "2026-07-15"}))]
pub struct OutcomeInput {
    #[schema(value_type = OutcomeKind)]
    pub outcome: String,
    /// Required for `defaulted` and `written_off`, absent for `repaid`; not before the
    /// disbursement, not in the future.
    #[schema(value_type = Option<String>, format = Date)]
    pub defaulted_on: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeView {
    pub outcome: OutcomeKind,
    pub defaulted_on: Option<NaiveDate>,
    pub recorded_at: DateTime<Utc>,
}

/// A loan and, once known, its outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoanView {
    #[schema(value_type = String)]
    pub loan_id: LoanId,
    #[schema(value_type = String)]
    pub merchant_id: MerchantId,
    pub disbursed_on: NaiveDate,
    pub principal: Money,
    pub term_days: u32,
    /// The last day of the term.
    pub due_on: NaiveDate,
    pub outcome: Option<OutcomeView>,
}

impl From<StoredLoan> for LoanView {
    fn from(s: StoredLoan) -> Self {
        let due_on = s.loan.due_on();
        LoanView {
            loan_id: s.loan.id,
            merchant_id: s.loan.merchant_id,
            disbursed_on: s.loan.disbursed_on,
            principal: s.loan.principal,
            term_days: s.loan.term_days,
            due_on,
            outcome: s.outcome.map(|o| OutcomeView {
                outcome: o.outcome.kind(),
                defaulted_on: o.outcome.defaulted_on(),
                recorded_at: o.recorded_at,
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoanList {
    pub loans: Vec<LoanView>,
}

fn field_errors(errors: Vec<(&'static str, crate::domain::Invalid)>) -> Vec<FieldError> {
    errors
        .into_iter()
        .map(|(f, e)| FieldError::new(f, e.to_string()))
        .collect()
}

async fn find_loan(state: &AppState, raw: &str) -> Result<StoredLoan, ApiError> {
    let id = LoanId::parse(raw).map_err(|e| ApiError::invalid_field("loan_id", e.to_string()))?;
    state
        .store
        .loan(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("loan {id} is not known")))
}

/// Record a loan disbursed to a merchant.
///
/// Sending the same loan again changes nothing (200); the same loan id with other terms is a
/// conflict (409).
#[utoipa::path(post, path = "/v1/loans", tag = "loans", operation_id = "create_loan",
    params(IdempotencyKeyHeader),
    request_body = LoanInput,
    responses(
        (status = 201, description = "Recorded", body = LoanView),
        (status = 200, description = "Already recorded with the same terms", body = LoanView),
        (status = 400, description = "The body cannot be read", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The loan id is recorded with other terms, or a request with the same Idempotency-Key is still in progress (retry after Retry-After)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid, the merchant is unknown, or the principal is not in its currency; or the Idempotency-Key is malformed or was used with a different request", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn create(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input: LoanInput = read_json(&req, body, state.limits.max_body_bytes).await?;
    let merchant_id = MerchantId::parse(input.merchant_id.as_str())
        .map_err(|e| ApiError::invalid_field("merchant_id", e.to_string()))?;
    let merchant = state.store.merchant(&merchant_id).await?.ok_or_else(|| {
        // Once the merchant is stored, a retry with the same Idempotency-Key must run again.
        super::idempotency::depends_on_stored_data(&req);
        ApiError::invalid_field(
            "merchant_id",
            format!("{merchant_id} is not a known merchant"),
        )
    })?;
    let term = input.term_days.to_string();
    let raw = RawLoan {
        loan_id: &input.loan_id,
        merchant_id: &input.merchant_id,
        disbursed_on: &input.disbursed_on,
        principal: &input.principal.amount,
        currency: &input.principal.currency,
        term_days: &term,
    };
    let loan = validate_loan(&raw, merchant.merchant.currency, Utc::now().date_naive()).map_err(
        |errors| {
            let errors = field_errors(errors)
                .into_iter()
                .map(|e| match e.field.as_str() {
                    "principal" => FieldError::new("principal.amount", e.message),
                    "currency" => FieldError::new("principal.currency", e.message),
                    _ => e,
                })
                .collect::<Vec<_>>();
            ApiError::validation(
                format!("{} field(s) of the loan are invalid", errors.len()),
                errors,
            )
        },
    )?;
    let row = NewLoan {
        merchant_key: merchant.key,
        loan: &loan,
        outcome: None,
    };
    let (write, _) = state
        .store
        .insert_loans(std::slice::from_ref(&row))
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("storing a loan returned nothing")))?;
    let status = match write {
        LoanWrite::Created => StatusCode::CREATED,
        LoanWrite::Duplicate => StatusCode::OK,
        LoanWrite::Conflict(stored) => {
            return Err(ApiError::Conflict {
                detail: format!(
                    "loan {} is already recorded with other terms (merchant {}, disbursed {}, principal {}, {} days)",
                    loan.id,
                    stored.loan.merchant_id,
                    stored.loan.disbursed_on,
                    stored.loan.principal,
                    stored.loan.term_days
                ),
                errors: vec![FieldError::new(
                    "loan_id",
                    "already recorded with other terms",
                )],
            });
        }
    };
    let stored = state
        .store
        .loan(&loan.id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a stored loan vanished")))?;
    Ok(HttpResponse::build(status)
        .insert_header((header::LOCATION, format!("/v1/loans/{}", loan.id)))
        .json(LoanView::from(stored)))
}

/// A loan and its outcome.
#[utoipa::path(get, path = "/v1/loans/{loan_id}", tag = "loans", operation_id = "get_loan",
    params(("loan_id" = String, Path, description = "The loan id", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    responses(
        (status = 200, description = "The loan", body = LoanView),
        (status = 404, description = "No such loan", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id cannot be a loan id", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn get(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(LoanView::from(find_loan(&state, &path).await?)))
}

/// Record what became of a loan: the label for retraining.
///
/// Recording the same outcome again changes nothing; a default may later be written off (same
/// date). Any other change is a conflict (409).
#[utoipa::path(post, path = "/v1/loans/{loan_id}/outcome", tag = "loans",
    params(("loan_id" = String, Path, description = "The loan id", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    request_body = OutcomeInput,
    responses(
        (status = 200, description = "Recorded", body = LoanView),
        (status = 400, description = "The body cannot be read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such loan", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another outcome is recorded", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The outcome is invalid (e.g. dated before the disbursement)", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn record_outcome(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input: OutcomeInput = read_json(&req, body, state.limits.max_body_bytes).await?;
    let loan = find_loan(&state, &path).await?;
    let outcome = validate_outcome(
        &input.outcome,
        input.defaulted_on.as_deref(),
        loan.loan.disbursed_on,
        Utc::now().date_naive(),
    )
    .map_err(|errors| ApiError::validation("the outcome is invalid", field_errors(errors)))?;
    match state.store.record_outcome(&loan, outcome).await? {
        OutcomeWrite::Recorded | OutcomeWrite::Unchanged | OutcomeWrite::Updated => {}
        OutcomeWrite::Conflict(stored) => {
            return Err(ApiError::Conflict {
                detail: format!("loan {} is already recorded as {stored}", loan.loan.id),
                errors: vec![FieldError::new("outcome", format!("already {stored}"))],
            });
        }
    }
    let stored = find_loan(&state, &path).await?;
    Ok(HttpResponse::Ok().json(LoanView::from(stored)))
}

/// A merchant's loans, oldest first.
#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/loans", tag = "loans",
    params(("merchant_id" = String, Path, description = "The platform's merchant id", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    responses(
        (status = 200, description = "The loans", body = LoanList),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id cannot be a merchant id", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn list_for_merchant(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let merchant = find_merchant(&state, &merchant_id_from_path(&path)?).await?;
    let loans = state.store.merchant_loans(merchant.key).await?;
    Ok(HttpResponse::Ok().json(LoanList {
        loans: loans.into_iter().map(LoanView::from).collect(),
    }))
}
