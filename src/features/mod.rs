//! Merchant features: the versioned catalog ([`catalog`]) and their computation ([`compute()`]).
//!
//! One implementation serves scoring, training and the simulator's self-checks: [`compute()`] is a
//! pure function of (merchant profile, payments, `as_of`). Its first step buckets the payments
//! into a [`History`]; as of a midnight, the same history can be built from per-day
//! [`DaySummary`] rows that the store maintains at ingestion, which is how the service reads a
//! stored merchant without reading its payments. See [`catalog`] for the conventions
//! (day blocks counted back from `as_of`, observation start, missing values) and
//! [`FeatureId`] for the precise definition of each feature.

pub mod catalog;
mod compute;

pub use catalog::{CATALOG, CATALOG_VERSION, Direction, Family, FeatureDef, FeatureId, Unit};
pub use compute::{
    DaySummary, FeatureEntryJson, FeatureValue, FeatureValueJson, FeatureVector, FeatureVectorJson,
    History, MerchantProfile, PayerSales, PaymentFact, as_of_start_of_day, compact_payer_sales,
    compute, compute_history, facts_from_payments, payer_key, summarize_days, utc_day,
};
