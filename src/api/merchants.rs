use super::{ApiError, AppState, CommonErrors, FieldError, Problem, read_json};
use crate::domain::{Category, Merchant, MerchantId, Money, RegionCode, RegionType};
use crate::features::History;
use crate::ingest::{RawMerchant, validate_merchant};
use crate::store::{HistorySummary, MerchantWrite, StoredMerchant};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A merchant profile as the platform sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "merchant_id": "m-0001", "name": "老王早餐店", "category": "food_stall",
    "region_type": "county", "region_code": "330782", "currency": "CNY", "onboarded_on": "2024-03-01"
}))]
pub struct MerchantInput {
    /// 1–64 characters: ASCII letters, digits, `.`, `_`, `:`, `-`.
    #[schema(example = "m-0001", pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
    pub merchant_id: String,
    /// Display name, any script, 1–200 characters.
    pub name: String,
    /// The platform's business category as a slug.
    #[schema(example = "food_stall")]
    pub category: String,
    #[schema(value_type = RegionType)]
    pub region_type: String,
    /// Administrative region code, as a slug.
    #[schema(example = "330782")]
    pub region_code: String,
    /// Settlement currency (ISO 4217); every payment of the merchant must be in it.
    #[schema(example = "CNY")]
    pub currency: String,
    /// The day the merchant joined the platform, `YYYY-MM-DD`; not in the future.
    #[schema(value_type = String, format = Date, example = "2024-03-01")]
    pub onboarded_on: String,
}

impl MerchantInput {
    /// The validated merchant; errors name fields with `prefix` (`""` or `"merchant."`).
    pub(super) fn validate(&self, prefix: &str) -> Result<Merchant, ApiError> {
        let raw = RawMerchant {
            merchant_id: &self.merchant_id,
            name: &self.name,
            category: &self.category,
            region_type: &self.region_type,
            region_code: &self.region_code,
            currency: &self.currency,
            onboarded_on: &self.onboarded_on,
        };
        validate_merchant(&raw, Utc::now().date_naive()).map_err(|errors| {
            let errors: Vec<FieldError> = errors
                .into_iter()
                .map(|(f, e)| FieldError::new(format!("{prefix}{f}"), e.to_string()))
                .collect();
            ApiError::validation(
                format!("{} field(s) of the merchant are invalid", errors.len()),
                errors,
            )
        })
    }
}

/// What the store holds of a merchant's payment history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    pub payment_count: i64,
    pub sale_count: i64,
    pub first_payment_at: Option<DateTime<Utc>>,
    pub last_payment_at: Option<DateTime<Utc>>,
    /// Sales minus refunds minus chargebacks over the whole history.
    pub net_sales: Money,
}

/// A merchant with a summary of its history.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "merchant_id": "m-0001", "name": "老王早餐店", "category": "food_stall",
    "region_type": "county", "region_code": "330782", "currency": "CNY", "onboarded_on": "2024-03-01",
    "created_at": "2026-11-21T08:00:00Z", "updated_at": "2026-11-21T08:00:00Z",
    "history": {"payment_count": 3, "sale_count": 2, "first_payment_at": "2026-11-01T01:02:03Z",
        "last_payment_at": "2026-11-20T11:00:00Z", "net_sales": {"amount": "25.50", "currency": "CNY"}}
}))]
pub struct MerchantView {
    pub merchant_id: MerchantId,
    pub name: String,
    pub category: Category,
    pub region_type: RegionType,
    pub region_code: RegionCode,
    #[schema(value_type = String, example = "CNY")]
    pub currency: crate::domain::Currency,
    pub onboarded_on: NaiveDate,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub history: HistoryView,
}

impl MerchantView {
    fn new(stored: StoredMerchant, h: HistorySummary) -> Self {
        let m = stored.merchant;
        MerchantView {
            merchant_id: m.id,
            name: m.name,
            category: m.category,
            region_type: m.region_type,
            region_code: m.region_code,
            currency: m.currency,
            onboarded_on: m.onboarded_on,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
            history: HistoryView {
                payment_count: h.payment_count,
                sale_count: h.sale_count,
                first_payment_at: h.first_payment_at,
                last_payment_at: h.last_payment_at,
                net_sales: h.net_sales,
            },
        }
    }
}

/// Parses the `{merchant_id}` path segment (422 when it cannot be an id).
pub(super) fn merchant_id_from_path(raw: &str) -> Result<MerchantId, ApiError> {
    MerchantId::parse(raw).map_err(|e| ApiError::invalid_field("merchant_id", e.to_string()))
}

/// Looks a merchant up, 404 if unknown.
pub(super) async fn find_merchant(
    state: &AppState,
    id: &MerchantId,
) -> Result<StoredMerchant, ApiError> {
    state
        .store
        .merchant(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("merchant {id} is not known")))
}

/// A stored merchant with its history as of `as_of`, or 404.
pub(super) async fn find_merchant_history(
    state: &AppState,
    id: &MerchantId,
    as_of: DateTime<Utc>,
) -> Result<(StoredMerchant, History), ApiError> {
    state
        .store
        .merchant_history(id, as_of)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("merchant {id} is not known")))
}

/// Create a merchant, or update its profile.
///
/// Sending the same profile again changes nothing (200). The settlement currency of a merchant
/// with stored payments cannot change (409).
#[utoipa::path(post, path = "/v1/merchants", tag = "merchants",
    request_body = MerchantInput,
    responses(
        (status = 201, description = "Created", body = MerchantView),
        (status = 200, description = "Updated, or unchanged", body = MerchantView),
        (status = 400, description = "The body is not JSON, or has unknown fields or wrongly typed values", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The currency cannot change: the merchant has payments", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn upsert(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input: MerchantInput = read_json(&req, body, state.limits.max_body_bytes).await?;
    let merchant = input.validate("")?;
    let (stored, write) = state.store.upsert_merchant(&merchant).await?;
    let status = match write {
        MerchantWrite::Created => actix_web::http::StatusCode::CREATED,
        MerchantWrite::Updated | MerchantWrite::Unchanged => actix_web::http::StatusCode::OK,
        MerchantWrite::CurrencyLocked { stored } => {
            return Err(ApiError::Conflict {
                detail: format!(
                    "merchant {} has payments in {stored}; its settlement currency cannot change",
                    merchant.id
                ),
                errors: vec![FieldError::new("currency", format!("must stay {stored}"))],
            });
        }
    };
    let summary = state.store.history_summary(&stored).await?;
    let location = format!("/v1/merchants/{}", stored.merchant.id);
    Ok(HttpResponse::build(status)
        .insert_header((header::LOCATION, location))
        .json(MerchantView::new(stored, summary)))
}

/// A merchant's profile and a summary of its payment history.
#[utoipa::path(get, path = "/v1/merchants/{merchant_id}", tag = "merchants", operation_id = "get_merchant",
    params(("merchant_id" = String, Path, description = "The platform's merchant id", pattern = r"^[A-Za-z0-9._:-]{1,64}$")),
    responses(
        (status = 200, description = "The merchant", body = MerchantView),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id cannot be a merchant id", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn get(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = merchant_id_from_path(&path)?;
    let stored = find_merchant(&state, &id).await?;
    let summary = state.store.history_summary(&stored).await?;
    Ok(HttpResponse::Ok().json(MerchantView::new(stored, summary)))
}
