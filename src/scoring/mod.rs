//! Scoring a merchant: features → scorecard → policy → reasons. [`evaluate`] is pure, so the
//! request path and the audit log's reproduction run the very same code.

pub mod registry;

pub use registry::{ActiveModel, ModelError, ModelInfo, ModelRegistry};

use crate::domain::Money;
use crate::explain::{Contribution, Reason, reasons};
use crate::features::{FeatureId, FeatureVector};
use crate::policy::{Grade, Policy, PolicyInput, Terms};
use crate::scorecard::{Artifact, ScoreResult};
use serde::{Deserialize, Serialize};

/// What the policy needs besides the features, recorded with every decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionInputs {
    /// Net sales of the 180 days before `as_of`, in minor units.
    pub net_sales_180d_minor: i64,
    /// Whether the merchant had any payment before `as_of`.
    pub has_history: bool,
    pub requested: Option<Money>,
    /// The merchant's category: the peer group of a model's peer-relative features (absent in
    /// decisions made before models had them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

impl DecisionInputs {
    /// The policy's inputs from a merchant's history, with the amount asked for and the
    /// merchant's category.
    pub fn of(
        history: &crate::features::History,
        requested: Option<Money>,
        category: &str,
    ) -> DecisionInputs {
        DecisionInputs {
            net_sales_180d_minor: history.net_sales(180),
            has_history: history.has_payments(),
            requested,
            category: Some(category.to_string()),
        }
    }
}

/// The scorecard's and the policy's answers.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub result: ScoreResult,
    pub grade: Grade,
    pub terms: Terms,
    pub reasons: Vec<Reason>,
    pub contributions: Vec<Contribution>,
}

/// Scores a feature vector with a model and applies the policy.
pub fn evaluate(
    artifact: &Artifact,
    policy: &Policy,
    features: &FeatureVector,
    inputs: &DecisionInputs,
) -> Evaluation {
    let result = artifact.score(features, inputs.category.as_deref());
    // The artifact's bands are A–E; an unknown label is treated as the worst grade.
    let grade: Grade = result.grade.parse().unwrap_or(Grade::E);
    let contributions: Vec<Contribution> = artifact
        .features
        .iter()
        .zip(&result.features)
        .filter_map(|(f, p)| {
            let source = f.source_name();
            let id = FeatureId::from_name(source)?;
            let worst = f
                .bins
                .iter()
                .map(|b| b.points)
                .fold(f64::INFINITY, f64::min);
            Some(Contribution {
                feature: id,
                comparison: crate::explain::Comparison::of(f),
                points: p.points,
                best_points: p.points + p.points_below_best,
                worst_points: worst,
            })
        })
        .collect();
    let terms = policy.decide(&PolicyInput {
        grade,
        features,
        net_sales_180d_minor: inputs.net_sales_180d_minor,
        currency: features.currency,
        has_history: inputs.has_history,
        requested: inputs.requested,
    });
    Evaluation {
        reasons: reasons(&contributions),
        result,
        grade,
        terms,
        contributions,
    }
}
