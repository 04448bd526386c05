//! Merchant features: the versioned catalog ([`catalog`]) and their computation ([`compute()`]).
//!
//! One implementation serves scoring, training and the simulator's self-checks: [`compute()`] is a
//! pure function of (merchant profile, payments, `as_of`). See [`catalog`] for the conventions
//! (day blocks counted back from `as_of`, observation start, missing values) and
//! [`FeatureId`] for the precise definition of each feature.

pub mod catalog;
mod compute;

pub use catalog::{CATALOG, CATALOG_VERSION, Direction, Family, FeatureDef, FeatureId, Unit};
pub use compute::{
    FeatureEntryJson, FeatureValue, FeatureValueJson, FeatureVector, FeatureVectorJson,
    MerchantProfile, PaymentFact, as_of_start_of_day, compute, facts_from_payments, payer_key,
};
