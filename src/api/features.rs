use super::merchants::{find_merchant_history, merchant_id_from_path};
use super::{ApiError, AppState, CommonErrors, Problem};
use crate::domain::MerchantId;
use crate::features::{
    CATALOG, CATALOG_VERSION, FeatureDef, FeatureVectorJson, MerchantProfile, as_of_start_of_day,
    compute_history,
};
use crate::ingest::parse_timestamp;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The feature catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct Catalog {
    #[schema(example = "v1")]
    pub catalog_version: &'static str,
    pub features: &'static [FeatureDef],
}

/// A merchant's features as of an instant.
#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantFeatures {
    #[schema(value_type = String)]
    pub merchant_id: MerchantId,
    #[serde(flatten)]
    pub vector: FeatureVectorJson,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    /// The instant the features are computed as of: a date (`2026-06-30`, meaning its start,
    /// 00:00 UTC) or an RFC 3339 time. Only payments strictly before it are used. Default: today,
    /// 00:00 UTC (so today's payments count from tomorrow).
    #[param(example = "2026-06-30")]
    pub as_of: Option<String>,
}

/// Parses `as_of`: a date (its 00:00 UTC) or an RFC 3339 time, not in the future. Without one,
/// 00:00 UTC today: the kind of instant the model was trained on (loans are disbursed on dates,
/// and their features are as of that date's midnight), read from the day summaries, and the same
/// all day, so a decision made in the morning is made again in the afternoon.
pub(super) fn parse_as_of(raw: Option<&str>) -> Result<DateTime<Utc>, ApiError> {
    let now = Utc::now();
    let Some(raw) = raw else {
        return Ok(as_of_start_of_day(now.date_naive()));
    };
    let t = match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) => as_of_start_of_day(d),
        Err(_) => {
            parse_timestamp(raw).map_err(|e| ApiError::invalid_field("as_of", e.to_string()))?
        }
    };
    if t > now {
        return Err(ApiError::invalid_field(
            "as_of",
            format!("{} is in the future", t.to_rfc3339()),
        ));
    }
    Ok(t)
}

/// The feature catalog: names, descriptions in English and Chinese, units, windows, the
/// direction of risk, and when each feature is missing.
#[utoipa::path(get, path = "/v1/features", tag = "features",
    responses((status = 200, description = "The catalog", body = Catalog)))]
pub async fn catalog() -> HttpResponse {
    HttpResponse::Ok().json(Catalog {
        catalog_version: CATALOG_VERSION,
        features: &CATALOG,
    })
}

/// A merchant's features as of an instant, with their catalog metadata.
///
/// Point in time: only payments strictly before `as_of` are read. A feature that cannot be
/// computed is `null`, never a silent 0.
#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/features", tag = "features",
    params(("merchant_id" = String, Path, description = "The platform's merchant id", pattern = r"^[A-Za-z0-9._:-]{1,64}$"), AsOfQuery),
    responses(
        (status = 200, description = "The features", body = MerchantFeatures),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`as_of` or the id is invalid", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn merchant_features(
    path: web::Path<String>,
    query: web::Query<AsOfQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = merchant_id_from_path(&path)?;
    let as_of = parse_as_of(query.as_of.as_deref())?;
    let (merchant, history) = find_merchant_history(&state, &id, as_of).await?;
    let vector = compute_history(&MerchantProfile::from(&merchant.merchant), &history);
    Ok(HttpResponse::Ok().json(MerchantFeatures {
        merchant_id: id,
        vector: vector.to_json(),
    }))
}
