use super::features::parse_as_of;
use super::idempotency::IdempotencyKeyHeader;
use super::merchants::{MerchantInput, find_merchant_history};
use super::payments::{PaymentInput, validate_payments};
use super::{ApiError, AppState, CommonErrors, FieldError, Problem, RequestId, read_json};
use crate::domain::{Currency, MerchantId, Money, MoneyJson};
use crate::explain::Reason;
use crate::features::{
    CATALOG, FeatureValue, FeatureVector, History, MerchantProfile, PaymentFact, compute_history,
};
use crate::ingest::in_settlement_currency;
use crate::keys::{Caller, Role};
use crate::policy::{Decision, Grade, Knockout};
use crate::scoring::{DecisionInputs, Evaluation, evaluate};
use crate::store::DecisionRow;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

/// A lender's question: can this merchant borrow, how much, at what price, and why?
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"merchant_id": "m-0001", "as_of": "2026-11-21", "requested_amount": {"amount": "8000.00", "currency": "CNY"}}))]
pub struct ScoreRequest {
    pub merchant_id: String,
    /// Score as of this date (its 00:00 UTC) or RFC 3339 instant; default today 00:00 UTC. Only
    /// payments before it are used.
    pub as_of: Option<String>,
    /// What the merchant asked for; above the limit it is answered with the limit.
    #[schema(value_type = Option<Money>)]
    pub requested_amount: Option<MoneyJson>,
    /// Stateless scoring: the profile of a merchant that need not be stored (its
    /// `merchant_id` must equal the request's). Send it with `payments`; neither is stored.
    pub merchant: Option<MerchantInput>,
    /// Stateless scoring: the merchant's payment history (any order, unique payment ids, as
    /// many as the body limit allows: about 40,000 in 8 MiB), validated like a batch. Payments
    /// at or after `as_of` are ignored. Only the decision and its feature values are kept.
    pub payments: Option<Vec<PaymentInput>>,
}

/// A credit decision.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "decision_id": "5b0e6f3e-2c1d-4c9b-9a57-1f0c3e2a7d11", "merchant_id": "m-0001", "as_of": "2026-11-21T00:00:00Z",
    "model_version": "sc-2026.12-sim45", "model_sha256": "5a676f38c18b14a290d6be36a4fecbd849038255618b3a7d6c9170d55a34bfbe",
    "policy_version": "policy-2026.11-v1", "score": 612.4, "pd": 0.0131, "grade": "A", "decision": "approve",
    "credit_limit": {"amount": "4500.00", "currency": "CNY"}, "offered_amount": {"amount": "4500.00", "currency": "CNY"},
    "indicative_apr": "0.12", "suggested_repayment_share": "0.30", "thin_file": false,
    "reasons": [{"code": "R-REFUND_SHARE_90D", "feature": "refund_share_90d", "points_below_best": 6.2,
        "text": "Refunds as a share of sales by amount over the last 90 days — 6.2 points below the best band"}],
    "knockouts": [], "created_at": "2026-11-21T08:00:00Z"}))]
pub struct DecisionView {
    pub decision_id: String,
    pub merchant_id: String,
    pub as_of: DateTime<Utc>,
    pub model_version: String,
    pub model_sha256: String,
    pub policy_version: String,
    /// Scorecard points; the per-feature points in the audit record add up to it.
    pub score: f64,
    /// Probability of default within the term.
    pub pd: f64,
    pub grade: Grade,
    pub decision: Decision,
    pub credit_limit: Money,
    /// The requested amount capped at the limit (the limit if nothing was requested).
    pub offered_amount: Money,
    /// Indicative annual rate, as a decimal fraction.
    pub indicative_apr: Decimal,
    /// Share of daily net sales that repays the offered amount over the policy's term.
    pub suggested_repayment_share: Option<Decimal>,
    /// A short history: a starter limit instead of a decline.
    pub thin_file: bool,
    /// At most four principal reasons, furthest below the best points first.
    pub reasons: Vec<Reason>,
    /// Policy rules that fired.
    pub knockouts: Vec<Knockout>,
    pub created_at: DateTime<Utc>,
}

/// One feature's part of the score, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordedPoints {
    pub feature: String,
    pub bin: String,
    pub points: f64,
    pub points_below_best: f64,
}

/// A feature value as recorded, by name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordedValue {
    pub feature: String,
    #[schema(value_type = RecordedFeatureValue)]
    pub value: FeatureValue,
}

// The schema of `FeatureValue`'s serde form, which lives with the features; only the schema
// of this type is used.
/// A recorded feature value, exactly as the audit log keeps it: `{"money": 1250}` (minor units
/// of the record's `currency`), `{"count": 12}`, `{"ratio": 0.25}`, or `"missing"`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum RecordedFeatureValue {
    Money(i64),
    Count(i64),
    Ratio(f64),
    Missing,
}

/// The audit record of a decision: the answer and everything it was made from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    pub decision: DecisionView,
    pub currency: String,
    /// Every catalog feature as of `as_of`, in catalog order.
    pub feature_values: Vec<RecordedValue>,
    #[schema(value_type = Object)]
    pub inputs: DecisionInputs,
    pub points: Vec<RecordedPoints>,
    pub request_id: String,
    /// The public id of the API key that asked (`anonymous` for decisions made before keys).
    pub caller: String,
    /// That key's name when it asked.
    #[serde(default)]
    pub caller_name: Option<String>,
    /// The payment history came with the request (stateless scoring) and was not stored.
    #[serde(default)]
    pub inline_history: bool,
}

impl AuditRecord {
    /// The feature vector the decision was made from.
    pub fn features(&self) -> Option<FeatureVector> {
        let currency = Currency::parse(&self.currency).ok()?;
        let values: Vec<FeatureValue> = self.feature_values.iter().map(|v| v.value).collect();
        FeatureVector::from_values(self.decision.as_of, currency, &values)
    }
}

fn view(
    id: &MerchantId,
    model_version: &str,
    model_sha256: &str,
    policy_version: &str,
    as_of: DateTime<Utc>,
    e: &Evaluation,
) -> DecisionView {
    DecisionView {
        // Time-ordered (UUIDv7): the audit log's primary key then grows at its end, so a
        // commit of decisions touches the last pages of the index instead of random ones.
        decision_id: uuid::Uuid::now_v7().to_string(),
        merchant_id: id.to_string(),
        as_of,
        model_version: model_version.to_string(),
        model_sha256: model_sha256.to_string(),
        policy_version: policy_version.to_string(),
        score: e.result.score,
        pd: e.result.pd,
        grade: e.grade,
        decision: e.terms.decision,
        credit_limit: e.terms.credit_limit,
        offered_amount: e.terms.offered,
        indicative_apr: e.terms.indicative_apr,
        suggested_repayment_share: e.terms.suggested_repayment_share,
        thin_file: e.terms.thin_file,
        reasons: e.reasons.clone(),
        knockouts: e.terms.knockouts.clone(),
        created_at: Utc::now(),
    }
}

/// Score a merchant, stored or given inline: a decision with its price and reasons, logged for
/// audit.
///
/// Without `merchant` and `payments` the merchant is read from the store (404 if unknown); with
/// them (stateless scoring) nothing of the merchant is stored. The decision is committed to the
/// audit log before the answer. A merchant with no payments at
/// all is declined with the reason `no_trading_history`, not refused.
#[utoipa::path(post, path = "/v1/scores", tag = "scores",
    params(IdempotencyKeyHeader),
    request_body = ScoreRequest,
    responses(
        (status = 200, description = "The decision (approve, refer or decline)", body = DecisionView,
            examples(
                ("Approve" = (summary = "A steady merchant: grade A, the limit instead of the larger request", value = json!({
                    "decision_id": "01a24ef6-487a-7157-85a4-05cd43a253cf", "merchant_id": "m000002", "as_of": "2026-12-07T00:00:00Z",
                    "model_version": "sc-2026.12-sim45", "model_sha256": "5a676f38c18b14a290d6be36a4fecbd849038255618b3a7d6c9170d55a34bfbe",
                    "policy_version": "policy-2026.11-v1", "score": 661.69, "pd": 0.00235, "grade": "A", "decision": "approve",
                    "credit_limit": {"amount": "47400.00", "currency": "CNY"}, "offered_amount": {"amount": "47400.00", "currency": "CNY"},
                    "indicative_apr": "0.12", "suggested_repayment_share": "0.30", "thin_file": false,
                    "reasons": [{"code": "R-WORST_MONTHLY_DROP_12M", "feature": "worst_monthly_drop_12m", "points_below_best": 3.07,
                        "text": "Largest relative drop of net sales from one 30-day month to the next over the last 12 such months — 3.1 points below the best band"},
                        {"code": "R-NET_SALES_30D", "feature": "net_sales_30d", "points_below_best": 1.87,
                        "text": "Net sales (sales minus refunds minus chargebacks) over the last 30 days — 1.9 points below the best band"}],
                    "knockouts": [],
                    "created_at": "2026-12-07T05:24:52Z"}))),
                ("Refer" = (summary = "Grade D and a chargeback rule: a person looks at it", value = json!({
                    "decision_id": "01a24ef6-488c-7726-9793-5a9e53a706cd", "merchant_id": "m000007", "as_of": "2026-12-07T00:00:00Z",
                    "model_version": "sc-2026.12-sim45", "model_sha256": "5a676f38c18b14a290d6be36a4fecbd849038255618b3a7d6c9170d55a34bfbe",
                    "policy_version": "policy-2026.11-v1", "score": 549.39, "pd": 0.104, "grade": "D", "decision": "refer",
                    "credit_limit": {"amount": "3200.00", "currency": "CNY"}, "offered_amount": {"amount": "3200.00", "currency": "CNY"},
                    "indicative_apr": "0.24", "suggested_repayment_share": "0.18", "thin_file": false,
                    "reasons": [{"code": "R-REPEAT_PAYER_SALES_SHARE_90D_VS_CATEGORY", "feature": "repeat_payer_sales_share_90d_vs_category", "points_below_best": 78.96,
                        "text": "Share of gross sales amount (last 90 days) from payers with at least two sales in those 90 days, compared with merchants of the same category that have traded about as long — 79.0 points below the best band"},
                        {"code": "R-WEEKLY_NET_SALES_TREND_26W", "feature": "weekly_net_sales_trend_26w", "points_below_best": 8.69,
                        "text": "Least-squares slope of weekly net sales over the last 26 weeks, divided by the mean weekly net sales — 8.7 points below the best band"},
                        {"code": "R-NET_SALES_30D", "feature": "net_sales_30d", "points_below_best": 8.25,
                        "text": "Net sales (sales minus refunds minus chargebacks) over the last 30 days — 8.2 points below the best band"},
                        {"code": "R-REFUND_SHARE_90D_VS_CATEGORY", "feature": "refund_share_90d_vs_category", "points_below_best": 6.88,
                        "text": "Refunded amount as a share of gross sales amount over the last 90 days, compared with merchants of the same category — 6.9 points below the best band"}],
                    "knockouts": [{"rule": "high_chargebacks", "detail": "chargebacks were 1.4% of sales over 180 days (limit 1.0%)", "effect": "refer"}],
                    "created_at": "2026-12-07T05:24:53Z"}))),
                ("Decline" = (summary = "No sale in 30 days: declined by a named rule", value = json!({
                    "decision_id": "01a24ef6-489b-728c-a3ce-da62d1cf9af3", "merchant_id": "m000031", "as_of": "2026-12-07T00:00:00Z",
                    "model_version": "sc-2026.12-sim45", "model_sha256": "5a676f38c18b14a290d6be36a4fecbd849038255618b3a7d6c9170d55a34bfbe",
                    "policy_version": "policy-2026.11-v1", "score": 498.51, "pd": 0.403, "grade": "E", "decision": "decline",
                    "credit_limit": {"amount": "0.00", "currency": "CNY"}, "offered_amount": {"amount": "0.00", "currency": "CNY"},
                    "indicative_apr": "0", "suggested_repayment_share": null, "thin_file": false,
                    "reasons": [{"code": "R-REPEAT_PAYER_SALES_SHARE_90D_VS_CATEGORY", "feature": "repeat_payer_sales_share_90d_vs_category", "points_below_best": 117.38,
                        "text": "Share of gross sales amount (last 90 days) from payers with at least two sales in those 90 days, compared with merchants of the same category that have traded about as long — 117.4 points below the best band"},
                        {"code": "R-NET_SALES_30D", "feature": "net_sales_30d", "points_below_best": 15.27,
                        "text": "Net sales (sales minus refunds minus chargebacks) over the last 30 days — 15.3 points below the best band"},
                        {"code": "R-WEEKLY_NET_SALES_TREND_26W", "feature": "weekly_net_sales_trend_26w", "points_below_best": 11.75,
                        "text": "Least-squares slope of weekly net sales over the last 26 weeks, divided by the mean weekly net sales — 11.8 points below the best band"},
                        {"code": "R-NET_SALES_365D", "feature": "net_sales_365d", "points_below_best": 11.31,
                        "text": "Net sales (sales minus refunds minus chargebacks) over the last 365 days — 11.3 points below the best band"}],
                    "knockouts": [{"rule": "no_recent_sales", "detail": "no sale in the last 30 days (last sale 81 days ago)", "effect": "decline"},
                        {"rule": "sales_collapse", "detail": "net sales of the last 90 days fell 91% against the 90 days before", "effect": "refer"}],
                    "created_at": "2026-12-07T05:24:53Z"})))
            )),
        (status = 400, description = "The body cannot be read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with the same Idempotency-Key is still in progress; retry after Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid, or the Idempotency-Key is malformed or was used with a different request", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn score(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
) -> Result<HttpResponse, ApiError> {
    let input: ScoreRequest = read_json(&req, body, state.limits.max_body_bytes).await?;
    let id = MerchantId::parse(input.merchant_id.as_str())
        .map_err(|e| ApiError::invalid_field("merchant_id", e.to_string()))?;
    let as_of = parse_as_of(input.as_of.as_deref())?;
    let Some(model) = state.models.current() else {
        return Err(ApiError::NoModel);
    };
    // The merchant and its history: from the store, or given inline (nothing of it stored).
    let (merchant_key, profile, currency, category, history) =
        match (&input.merchant, &input.payments) {
            (None, None) => {
                let (merchant, history) = find_merchant_history(&state, &id, as_of).await?;
                let m = &merchant.merchant;
                (
                    Some(merchant.key),
                    MerchantProfile::from(m),
                    m.currency,
                    m.category.as_str().to_string(),
                    history,
                )
            }
            (Some(m), Some(payments)) => {
                let merchant = m.validate("merchant.")?;
                if merchant.id != id {
                    return Err(ApiError::invalid_field(
                        "merchant.merchant_id",
                        format!("must equal merchant_id ({id})"),
                    ));
                }
                let payments = validate_payments(payments, merchant.currency, "scored")?;
                let mut first_index: HashMap<&str, usize> = HashMap::with_capacity(payments.len());
                for (i, p) in payments.iter().enumerate() {
                    if let Some(j) = first_index.insert(p.id.as_str(), i) {
                        return Err(ApiError::invalid_field(
                            format!("payments[{i}].payment_id"),
                            format!("{} is also payments[{j}]; payment ids must be unique", p.id),
                        ));
                    }
                }
                let facts: Vec<PaymentFact> = payments.iter().map(PaymentFact::from).collect();
                let history = History::from_facts(&facts, as_of);
                (
                    None,
                    MerchantProfile::from(&merchant),
                    merchant.currency,
                    merchant.category.as_str().to_string(),
                    history,
                )
            }
            (Some(_), None) => {
                return Err(ApiError::invalid_field(
                    "payments",
                    "an inline merchant needs its payment history (an empty list if it has none)",
                ));
            }
            (None, Some(_)) => {
                return Err(ApiError::invalid_field(
                    "merchant",
                    "an inline payment history needs the merchant's profile",
                ));
            }
        };
    let requested = match &input.requested_amount {
        None => None,
        Some(m) => {
            let parsed = in_settlement_currency(&m.currency, currency)
                .and_then(|c| Money::parse(&m.amount, c))
                .and_then(|m| {
                    if m.is_positive() {
                        Ok(m)
                    } else {
                        Err(crate::domain::Invalid::new("must be greater than zero"))
                    }
                });
            Some(parsed.map_err(|e| ApiError::invalid_field("requested_amount", e.to_string()))?)
        }
    };
    let features = compute_history(&profile, &history);
    let inputs = DecisionInputs::of(&history, requested, &category);
    let evaluation = evaluate(&model.artifact, &state.policy, &features, &inputs);
    let decision = view(
        &id,
        &model.version,
        &model.artifact.artifact_sha256,
        &state.policy.version,
        as_of,
        &evaluation,
    );
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let record = AuditRecord {
        decision: decision.clone(),
        currency: currency.code().to_string(),
        feature_values: CATALOG
            .iter()
            .zip(features.values())
            .map(|(def, v)| RecordedValue {
                feature: def.name.to_string(),
                value: *v,
            })
            .collect(),
        inputs,
        points: evaluation
            .result
            .features
            .iter()
            .map(|p| RecordedPoints {
                feature: p.name.clone(),
                bin: p.bin.clone(),
                points: p.points,
                points_below_best: p.points_below_best,
            })
            .collect(),
        request_id: request_id.clone(),
        caller: caller.key_id.clone(),
        caller_name: Some(caller.name.clone()),
        inline_history: merchant_key.is_none(),
    };
    state
        .decisions
        .append(DecisionRow {
            decision_id: decision.decision_id.clone(),
            merchant_key,
            model_version: model.version.clone(),
            policy_version: state.policy.version.clone(),
            decision: decision.decision.as_str().to_string(),
            caller: record.caller.clone(),
            request_id,
            created_at: decision.created_at,
            record: serde_json::to_string(&record).map_err(|e| ApiError::Internal(e.into()))?,
        })
        .await?;
    tracing::info!(decision = decision.decision.as_str(), grade = %decision.grade, model = %model.version, "decision made");
    state
        .metrics
        .observe_decision(decision.decision.as_str(), &decision.grade.to_string());
    Ok(HttpResponse::Ok().json(decision))
}

/// The full audit record of a decision: inputs, per-feature points, model and policy versions.
#[utoipa::path(get, path = "/v1/decisions/{decision_id}", tag = "scores",
    params(("decision_id" = String, Path, description = "The decision id: a UUID, lower case", pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")),
    responses(
        (status = 200, description = "The audit record", body = AuditRecord),
        (status = 404, description = "No such decision", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn decision(
    path: web::Path<String>,
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || {
        ApiError::NotFound(format!(
            "decision {} is not known",
            path.chars().take(64).collect::<String>()
        ))
    };
    let row = state.store.decision(&path).await?.ok_or_else(not_found)?;
    // Another lender's decision is answered as if it did not exist, so that a lender cannot
    // learn which decision ids are real.
    if caller.role != Role::Admin && !made_by(&state, &row.caller, &caller).await? {
        return Err(not_found());
    }
    let record: AuditRecord = serde_json::from_str(&row.record).map_err(|e| {
        ApiError::Internal(anyhow::Error::new(e).context("reading an audit record"))
    })?;
    Ok(HttpResponse::Ok().json(record))
}

/// Whether the decision's caller (a key id) is the caller's key or another key of its rotation
/// chain.
async fn made_by(
    state: &AppState,
    decision_caller: &str,
    caller: &Caller,
) -> Result<bool, ApiError> {
    if decision_caller == caller.key_id {
        return Ok(true);
    }
    Ok(state
        .store
        .api_key(decision_caller)
        .await?
        .is_some_and(|k| k.principal == caller.principal))
}

/// Why a field was refused, for the models routes.
pub(super) fn model_problem(e: crate::scoring::ModelError) -> ApiError {
    match e {
        crate::scoring::ModelError::NotFound(m) => ApiError::NotFound(m),
        crate::scoring::ModelError::Invalid(m) => ApiError::Validation {
            detail: format!("the model cannot be used: {m}"),
            errors: vec![FieldError::new("version", m)],
        },
    }
}
