//! The scorecard artifact and request-time scoring. Light on purpose: no linfa, no training code;
//! the artifact holds everything needed to score (bins, WoE, points, coefficients, scaling,
//! grade bands).
//!
//! # Artifact file
//!
//! One pretty-printed JSON object ([`Artifact`]). Its last field, `artifact_sha256`, is the
//! SHA-256 (lower-case hex) of the file's own bytes with that 64-digit value replaced by 64 `0`s.
//! [`Artifact::from_bytes`] recomputes it and refuses the file when it differs, so a corrupted,
//! edited or truncated artifact never scores. The hash is over bytes, not over a re-serialisation,
//! so it does not depend on how floats are printed.
//!
//! # Scoring
//!
//! features → bin of each feature (value bins are `lower ≤ x < upper`; a missing value, and for
//! categorical features a category not seen in training, falls in the `missing` bin) → WoE and
//! points of the bin → `score` = Σ points (in artifact feature order; the intercept and the base
//! score are spread evenly over the features, so the per-feature points add up to the score
//! exactly) → `pd` = σ(intercept + Σ coefficient × WoE), the logistic model itself →
//! grade from the PD bands.
//!
//! # Peer-relative inputs (format 2)
//!
//! A feature may read a catalog feature relative to the merchant's peers ([`PeerRelative`]):
//! `scale(value) − reference of the merchant's category`, e.g. the log-odds of the repeat
//! customers' share minus its median among merchants of the same category in the training data.
//! The category is only the peer group: a merchant that is typical of its category reads 0
//! whatever the category, so no category scores points of its own. An artifact with such
//! features is written as format 2; one without is written as format 1, which older builds read.
//!
//! Scaling: `score = offset + factor × ln(good odds)`, `factor = pdo / ln 2`,
//! `offset = base_score − factor × ln(base_odds)`. With the defaults (600 points at 50:1 good:bad
//! odds, 20 points to double the odds) a PD of 1/51 scores 600 and a PD of 1/101 about 620.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// Version of the artifact layout. Bumped on any incompatible change: 2 added peer-relative
/// features ([`PeerRelative`]), 3 peer groups split by days of history
/// ([`PeerRelative::history_bands`]). An artifact is written in the oldest version that holds
/// it ([`Artifact::needed_format_version`]).
pub const FORMAT_VERSION: u32 = 3;
/// The oldest layout this build reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
const HASH_FIELD: &str = "\"artifact_sha256\": \"";
const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How a bin selects values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BinRule {
    /// `lower ≤ x < upper`; `null` bounds are unbounded.
    Range {
        lower: Option<f64>,
        upper: Option<f64>,
    },
    /// Any of these categories (categorical features).
    Categories { values: Vec<String> },
    /// Missing values (and unseen categories).
    Missing,
}

/// One bin of a feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub label: String,
    pub rule: BinRule,
    /// Training rows in the bin, and defaults among them.
    pub count: u64,
    pub defaults: u64,
    /// ln(share of goods / share of bads), 0.5 pseudo-count per cell.
    pub woe: f64,
    pub points: f64,
}

/// A model input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreFeature {
    pub name: String,
    /// `numeric` or `categorical`.
    pub kind: String,
    /// The monotone direction the bins follow (`higher_is_safer` / `higher_is_riskier`;
    /// `categorical` for categories ordered by WoE).
    pub direction: String,
    pub information_value: f64,
    pub coefficient: f64,
    /// Value bins in order, then the missing bin (always present, last).
    pub bins: Vec<Bin>,
    /// Set when the feature reads a catalog feature relative to the merchant's peers; the bins
    /// are then bins of the relative value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative: Option<PeerRelative>,
}

/// How a peer-relative feature puts its source value on a scale where peers can be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerScale {
    /// `ln(p / (1 − p))` with `p` clamped to `[floor, 1 − floor]`: shares.
    Logit,
    /// `ln(max(x, floor))`: rates and amounts whose spread is multiplicative.
    Log,
}

impl PeerScale {
    pub fn apply(self, x: f64, floor: f64) -> f64 {
        match self {
            PeerScale::Logit => {
                let p = x.clamp(floor, 1.0 - floor);
                (p / (1.0 - p)).ln()
            }
            PeerScale::Log => x.max(floor).ln(),
        }
    }

    /// The source value whose scaled value is `y` (the inverse of [`PeerScale::apply`] above
    /// the floor).
    pub fn invert(self, y: f64) -> f64 {
        match self {
            PeerScale::Logit => logistic(y),
            PeerScale::Log => y.exp(),
        }
    }
}

/// A model input that reads a catalog feature relative to the merchant's peers:
/// `scale(source value) − reference`, the reference being the median of the scaled value among
/// the training rows of the merchant's group (its category, and with
/// [`history_bands`](Self::history_bands) also how long it has traded). A missing source value
/// stays missing. Why: the simulated (and real) kinds of business differ in their typical
/// repeat-customer share, refund and chargeback rates at the same health, so a model reading
/// the raw values takes a category's baseline for risk; relative to its peers, a merchant is
/// judged by how it trades compared with shops like it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerRelative {
    /// The catalog feature read.
    pub source: String,
    pub scale: PeerScale,
    pub floor: f64,
    /// What groups the peers: `category`, the merchant's category slug.
    pub group_by: String,
    /// Reference (median scaled value) per group: per category (`grocery`) and, with history
    /// bands, per category and band (`grocery/30-59d`).
    pub references: BTreeMap<String, f64>,
    /// The reference of a group the training data did not have: the median over all its rows.
    pub default_reference: f64,
    /// Cuts in days of history (the catalog's `days_of_history`) that split each category into
    /// bands, e.g. `[30, 60, 90]`: under 30 days, 30–59, 60–89, 90 and more. Why: a share read
    /// over the last 90 days covers less than 90 days for a merchant that started trading more
    /// recently, and a repeat customer needs time to come back, so a young shop's repeat share
    /// reads low by construction. Compared with shops that have traded about as long, it is read
    /// for what it says about the shop. A band with too few training rows has no reference of
    /// its own; its merchants are read against the whole category. Empty: category only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history_bands: Vec<u32>,
}

/// Who a merchant's peers are: its category and how many days of payments it has (the
/// catalog's `days_of_history`), as far as known.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Peers<'a> {
    pub category: Option<&'a str>,
    pub days_of_history: Option<f64>,
}

impl<'a> Peers<'a> {
    pub fn new(category: Option<&'a str>, days_of_history: Option<f64>) -> Peers<'a> {
        Peers {
            category,
            days_of_history,
        }
    }

    /// The peers of a merchant of `category` whose catalog row is `row`
    /// (`FeatureVector::to_f64_row()` order).
    pub fn of_row(category: Option<&'a str>, row: &[Option<f64>]) -> Peers<'a> {
        let days = row
            .get(crate::features::FeatureId::DaysOfHistory as usize)
            .copied()
            .flatten();
        Peers::new(category, days)
    }
}

impl PeerRelative {
    /// Whether the peers are also grouped by days of history.
    pub fn by_history(&self) -> bool {
        !self.history_bands.is_empty()
    }

    /// The label of the history band of `days` (`30-59d`, `90d+`), if the feature has bands.
    pub fn history_band(&self, days: f64) -> Option<String> {
        if !self.by_history() || !days.is_finite() {
            return None;
        }
        let i = self
            .history_bands
            .iter()
            .take_while(|&&cut| days >= f64::from(cut))
            .count();
        let from = if i == 0 { 0 } else { self.history_bands[i - 1] };
        Some(match self.history_bands.get(i) {
            Some(&to) => format!("{from}-{}d", to - 1),
            None => format!("{from}d+"),
        })
    }

    /// The key of the references of a category's history band (`grocery/30-59d`), if the
    /// feature has bands.
    pub fn band_key(&self, category: &str, days_of_history: f64) -> Option<String> {
        self.history_band(days_of_history)
            .map(|band| format!("{category}/{band}"))
    }

    /// The reference of the merchant's peers: its category and history band if the training
    /// data had that group, else its category, else all merchants.
    pub fn reference(&self, peers: Peers<'_>) -> f64 {
        let Some(category) = peers.category else {
            return self.default_reference;
        };
        peers
            .days_of_history
            .and_then(|d| self.band_key(category, d))
            .and_then(|key| self.references.get(&key))
            .or_else(|| self.references.get(category))
            .copied()
            .unwrap_or(self.default_reference)
    }

    /// The relative value of a source value for a merchant with these `peers`.
    pub fn value(&self, source: Option<f64>, peers: Peers<'_>) -> Option<f64> {
        let x = source.filter(|x| x.is_finite())?;
        Some(self.scale.apply(x, self.floor) - self.reference(peers))
    }

    /// The source value at which a merchant with these `peers` reads `relative` (for next
    /// steps: the source value to reach to enter a better bin).
    pub fn source_value(&self, relative: f64, peers: Peers<'_>) -> f64 {
        self.scale.invert(relative + self.reference(peers))
    }
}

/// Points scaling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scaling {
    pub base_score: f64,
    /// Good:bad odds at the base score (50 means 50:1).
    pub base_odds: f64,
    pub pdo: f64,
    pub factor: f64,
    pub offset: f64,
}

impl Scaling {
    pub fn new(base_score: f64, base_odds: f64, pdo: f64) -> Scaling {
        let factor = pdo / std::f64::consts::LN_2;
        Scaling {
            base_score,
            base_odds,
            pdo,
            factor,
            offset: base_score - factor * base_odds.ln(),
        }
    }

    /// The PD a score stands for.
    pub fn pd_of_score(&self, score: f64) -> f64 {
        1.0 / (1.0 + ((score - self.offset) / self.factor).exp())
    }

    pub fn score_of_pd(&self, pd: f64) -> f64 {
        self.offset + self.factor * ((1.0 - pd) / pd).ln()
    }
}

/// A risk grade: PDs in `[min_pd, max_pd)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeBand {
    pub grade: String,
    pub min_pd: f64,
    pub max_pd: f64,
}

/// Where the training data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// SHA-256 of the training data file's bytes.
    pub sha256: String,
    pub rows: u64,
    pub train_rows: u64,
    pub test_rows: u64,
    pub first_date: Option<String>,
    pub last_date: Option<String>,
    pub default_rate: f64,
}

/// The self-describing model artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub format_version: u32,
    pub model_version: String,
    pub created_at: String,
    /// `v1` for catalog models; `generic` for models of arbitrary feature tables.
    pub feature_catalog_version: String,
    pub label: String,
    pub intercept: f64,
    pub scaling: Scaling,
    pub grade_bands: Vec<GradeBand>,
    /// PD below which an applicant is approved in the report's approval rates.
    pub policy_max_pd: f64,
    pub features: Vec<ScoreFeature>,
    /// Candidates not used, with the reason.
    pub dropped_features: Vec<DroppedFeature>,
    pub training: serde_json::Value,
    pub data: DataFingerprint,
    pub metrics: serde_json::Value,
    pub artifact_sha256: String,
}

/// A candidate feature left out of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedFeature {
    pub name: String,
    pub information_value: f64,
    pub reason: String,
}

/// One feature's part of a score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeaturePoints {
    pub name: String,
    pub bin: String,
    pub woe: f64,
    pub points: f64,
    /// Points lost against the feature's best bin (≥ 0): the reason-code ranking.
    pub points_below_best: f64,
}

/// The result of scoring one applicant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreResult {
    pub score: f64,
    pub pd: f64,
    pub grade: String,
    pub features: Vec<FeaturePoints>,
}

/// A feature value as the scorecard reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Number(f64),
    Category(&'a str),
    Missing,
}

/// Why an artifact was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactError(pub String);

impl std::fmt::Display for ArtifactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArtifactError {}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn logistic(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl ScoreFeature {
    /// Index of the bin a value falls in.
    pub fn bin_index(&self, v: Value<'_>) -> usize {
        let missing = self.bins.len() - 1;
        match v {
            Value::Missing => missing,
            Value::Number(x) if !x.is_finite() => missing,
            Value::Number(x) => self
                .bins
                .iter()
                .position(|b| match &b.rule {
                    BinRule::Range { lower, upper } => {
                        lower.is_none_or(|l| x >= l) && upper.is_none_or(|u| x < u)
                    }
                    _ => false,
                })
                .unwrap_or(missing),
            Value::Category(c) => self
                .bins
                .iter()
                .position(|b| match &b.rule {
                    BinRule::Categories { values } => values.iter().any(|s| s == c),
                    _ => false,
                })
                .unwrap_or(missing),
        }
    }

    /// The catalog (or table) feature this input reads: its own name, or the source of a
    /// peer-relative feature.
    pub fn source_name(&self) -> &str {
        self.relative
            .as_ref()
            .map_or(self.name.as_str(), |r| r.source.as_str())
    }

    fn best_points(&self) -> f64 {
        self.bins
            .iter()
            .map(|b| b.points)
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

impl Artifact {
    /// The pretty JSON bytes with `artifact_sha256` filled in (the value in `self` is ignored).
    pub fn to_bytes(&self) -> Result<Vec<u8>, ArtifactError> {
        let mut a = self.clone();
        a.artifact_sha256 = ZERO_HASH.to_string();
        let mut bytes = serde_json::to_vec_pretty(&a)
            .map_err(|e| ArtifactError(format!("cannot serialise the artifact: {e}")))?;
        bytes.push(b'\n');
        let at = hash_position(&bytes)?;
        let digest = sha256_hex(&bytes);
        bytes[at..at + 64].copy_from_slice(digest.as_bytes());
        Ok(bytes)
    }

    /// Parses and verifies an artifact: the embedded SHA-256 must match the bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Artifact, ArtifactError> {
        let at = hash_position(bytes).map_err(|_| {
            ArtifactError(
                "not a smecredit model artifact, or truncated: no artifact_sha256 field at its end"
                    .to_string(),
            )
        })?;
        let claimed = std::str::from_utf8(&bytes[at..at + 64])
            .map_err(|_| ArtifactError("artifact_sha256 is not hex".to_string()))?
            .to_string();
        let mut zeroed = bytes.to_vec();
        zeroed[at..at + 64].copy_from_slice(ZERO_HASH.as_bytes());
        let actual = sha256_hex(&zeroed);
        if actual != claimed {
            return Err(ArtifactError(format!(
                "artifact checksum mismatch: the file says sha256 {claimed} but its content hashes to {actual}; the artifact is corrupted or was edited, refusing to load it"
            )));
        }
        let mut a: Artifact = serde_json::from_slice(bytes)
            .map_err(|e| ArtifactError(format!("artifact is not valid JSON: {e}")))?;
        a.artifact_sha256 = claimed;
        a.validate()?;
        Ok(a)
    }

    /// Loads `model.json` from a model directory (or the file itself).
    pub fn load(path: &Path) -> Result<Artifact, ArtifactError> {
        let file = if path.is_dir() {
            path.join("model.json")
        } else {
            path.to_path_buf()
        };
        let bytes = std::fs::read(&file)
            .map_err(|e| ArtifactError(format!("cannot read {}: {e}", file.display())))?;
        Artifact::from_bytes(&bytes).map_err(|e| ArtifactError(format!("{}: {e}", file.display())))
    }

    /// Checks the structure beyond the checksum.
    pub fn validate(&self) -> Result<(), ArtifactError> {
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&self.format_version) {
            return Err(ArtifactError(format!(
                "artifact format version {} is not supported (this build reads {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})",
                self.format_version
            )));
        }
        if self.format_version < 2
            && let Some(f) = self.features.iter().find(|f| f.relative.is_some())
        {
            return Err(ArtifactError(format!(
                "feature {}: peer-relative features need artifact format 2, the file says {}",
                f.name, self.format_version
            )));
        }
        if self.format_version < 3
            && let Some(f) = self
                .features
                .iter()
                .find(|f| f.relative.as_ref().is_some_and(PeerRelative::by_history))
        {
            return Err(ArtifactError(format!(
                "feature {}: peer groups by days of history need artifact format 3, the file says {}",
                f.name, self.format_version
            )));
        }
        for f in &self.features {
            if let Some(r) = &f.relative
                && (r.group_by != PEER_GROUP_BY
                    || r.history_bands.first() == Some(&0)
                    || r.history_bands.windows(2).any(|w| w[0] >= w[1])
                    || !r.floor.is_finite()
                    || r.floor <= 0.0
                    || (r.scale == PeerScale::Logit && r.floor >= 0.5)
                    || !r.default_reference.is_finite()
                    || r.references.values().any(|v| !v.is_finite()))
            {
                return Err(ArtifactError(format!(
                    "feature {}: its peer reference is malformed (group_by must be category, the history bands rising from above 0, the floor positive, the references finite)",
                    f.name
                )));
            }
        }
        if self.features.is_empty() {
            return Err(ArtifactError("the artifact has no features".into()));
        }
        for f in &self.features {
            if !matches!(f.bins.last().map(|b| &b.rule), Some(BinRule::Missing)) {
                return Err(ArtifactError(format!(
                    "feature {}: the last bin must be the missing bin",
                    f.name
                )));
            }
        }
        if self.grade_bands.is_empty() {
            return Err(ArtifactError("the artifact has no grade bands".into()));
        }
        Ok(())
    }

    /// For catalog models: refuses an artifact built on another catalog version or naming a
    /// feature the catalog lacks.
    pub fn check_catalog(&self) -> Result<(), ArtifactError> {
        use crate::features::{CATALOG_VERSION, FeatureId};
        if self.feature_catalog_version != CATALOG_VERSION {
            return Err(ArtifactError(format!(
                "the model was trained on feature catalog {:?}, this service computes {CATALOG_VERSION:?}",
                self.feature_catalog_version
            )));
        }
        for f in &self.features {
            let source = f.source_name();
            if FeatureId::from_name(source).is_none() {
                return Err(ArtifactError(format!(
                    "the model uses feature {source:?}, which catalog {CATALOG_VERSION} lacks"
                )));
            }
            if let Some(r) = &f.relative
                && f.name != relative_name(&r.source, &r.group_by)
            {
                return Err(ArtifactError(format!(
                    "feature {:?} reads {:?} relative to its {}, so its name must be {:?}",
                    f.name,
                    r.source,
                    r.group_by,
                    relative_name(&r.source, &r.group_by)
                )));
            }
        }
        Ok(())
    }

    /// Whether any feature reads a catalog feature relative to the merchant's peers.
    pub fn uses_peer_groups(&self) -> bool {
        self.features.iter().any(|f| f.relative.is_some())
    }

    /// Whether any peer-relative feature also groups its peers by days of history.
    pub fn uses_history_bands(&self) -> bool {
        self.features
            .iter()
            .any(|f| f.relative.as_ref().is_some_and(PeerRelative::by_history))
    }

    /// The grade of a PD.
    pub fn grade_of(&self, pd: f64) -> String {
        self.grade_bands
            .iter()
            .find(|g| pd >= g.min_pd && pd < g.max_pd)
            .or(self.grade_bands.last())
            .map_or_else(String::new, |g| g.grade.clone())
    }

    /// Scores one applicant; `value(name)` gives each model feature's value.
    pub fn score_with<'a, F>(&self, mut value: F) -> ScoreResult
    where
        F: FnMut(&str) -> Value<'a>,
    {
        let mut score = 0.0;
        let mut logit = self.intercept;
        let mut parts = Vec::with_capacity(self.features.len());
        for f in &self.features {
            let bin = &f.bins[f.bin_index(value(&f.name))];
            score += bin.points;
            logit += f.coefficient * bin.woe;
            parts.push(FeaturePoints {
                name: f.name.clone(),
                bin: bin.label.clone(),
                woe: bin.woe,
                points: bin.points,
                points_below_best: f.best_points() - bin.points,
            });
        }
        let pd = logistic(logit);
        ScoreResult {
            score,
            pd,
            grade: self.grade_of(pd),
            features: parts,
        }
    }

    /// Scores a catalog row (`FeatureVector::to_f64_row()` order) of a merchant of category
    /// `group` (with the row's days of history, the peer group of peer-relative features;
    /// `None` reads them against all merchants).
    pub fn score_row(&self, row: &[Option<f64>], group: Option<&str>) -> ScoreResult {
        use crate::features::FeatureId;
        let peers = Peers::of_row(group, row);
        let catalog = |name: &str| {
            FeatureId::from_name(name).and_then(|id| row.get(id as usize).copied().flatten())
        };
        let by_name: BTreeMap<&str, Option<f64>> = self
            .features
            .iter()
            .map(|f| {
                let v = match &f.relative {
                    Some(r) => r.value(catalog(&r.source), peers),
                    None => catalog(&f.name),
                };
                (f.name.as_str(), v)
            })
            .collect();
        self.score_with(|name| {
            by_name
                .get(name)
                .copied()
                .flatten()
                .map_or(Value::Missing, Value::Number)
        })
    }

    /// Scores a feature vector computed by the service for a merchant of category `group`.
    pub fn score(&self, fv: &crate::features::FeatureVector, group: Option<&str>) -> ScoreResult {
        self.score_row(&fv.to_f64_row(), group)
    }

    /// The format version an artifact of these features is written in: the oldest that holds
    /// them (3 with history bands, 2 with peer-relative features, else 1), so that older builds
    /// read every model they can score exactly and refuse the others by their version.
    pub fn needed_format_version(&self) -> u32 {
        if self.uses_history_bands() {
            3
        } else if self.uses_peer_groups() {
            2
        } else {
            1
        }
    }
}

/// What groups the peers of peer-relative features: the merchant's category, the only profile
/// attribute the service hands to scoring.
pub const PEER_GROUP_BY: &str = "category";

/// The name of the feature reading `source` relative to the merchant's `group_by`.
pub fn relative_name(source: &str, group_by: &str) -> String {
    format!("{source}_vs_{group_by}")
}

fn hash_position(bytes: &[u8]) -> Result<usize, ArtifactError> {
    let needle = HASH_FIELD.as_bytes();
    let pos = bytes
        .windows(needle.len())
        .rposition(|w| w == needle)
        .ok_or_else(|| ArtifactError("no artifact_sha256 field".into()))?;
    let at = pos + needle.len();
    let tail = &bytes[at..];
    // 64 hex digits, the closing quote, then only the end of the object
    let ok = tail.len() >= 65
        && tail[..64].iter().all(u8::is_ascii_hexdigit)
        && tail[64] == b'"'
        && tail[65..]
            .iter()
            .filter(|c| !c.is_ascii_whitespace())
            .eq(std::iter::once(&b'}'));
    if ok {
        Ok(at)
    } else {
        Err(ArtifactError("malformed artifact_sha256 field".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn tiny() -> Artifact {
        let scaling = Scaling::new(600.0, 50.0, 20.0);
        let bins = |w: [f64; 3]| {
            vec![
                Bin {
                    label: "< 10".into(),
                    rule: BinRule::Range {
                        lower: None,
                        upper: Some(10.0),
                    },
                    count: 10,
                    defaults: 2,
                    woe: w[0],
                    points: 0.0,
                },
                Bin {
                    label: ">= 10".into(),
                    rule: BinRule::Range {
                        lower: Some(10.0),
                        upper: None,
                    },
                    count: 10,
                    defaults: 1,
                    woe: w[1],
                    points: 0.0,
                },
                Bin {
                    label: "missing".into(),
                    rule: BinRule::Missing,
                    count: 0,
                    defaults: 0,
                    woe: w[2],
                    points: 0.0,
                },
            ]
        };
        let mut a = Artifact {
            format_version: 1,
            model_version: "t".into(),
            created_at: "2026-11-21T00:00:00Z".into(),
            feature_catalog_version: "v1".into(),
            label: "label".into(),
            intercept: -3.0,
            scaling,
            grade_bands: vec![
                GradeBand {
                    grade: "A".into(),
                    min_pd: 0.0,
                    max_pd: 0.05,
                },
                GradeBand {
                    grade: "B".into(),
                    min_pd: 0.05,
                    max_pd: 1.0,
                },
            ],
            policy_max_pd: 0.05,
            features: vec![
                ScoreFeature {
                    name: "net_sales_30d".into(),
                    kind: "numeric".into(),
                    direction: "higher_is_safer".into(),
                    information_value: 0.1,
                    coefficient: -0.8,
                    bins: bins([-0.5, 0.4, 0.0]),
                    relative: None,
                },
                ScoreFeature {
                    name: "refund_share_90d".into(),
                    kind: "numeric".into(),
                    direction: "higher_is_riskier".into(),
                    information_value: 0.2,
                    coefficient: -1.1,
                    bins: bins([0.3, -0.7, 0.1]),
                    relative: None,
                },
            ],
            dropped_features: vec![],
            training: serde_json::json!({}),
            data: DataFingerprint {
                sha256: "x".into(),
                rows: 20,
                train_rows: 14,
                test_rows: 6,
                first_date: None,
                last_date: None,
                default_rate: 0.15,
            },
            metrics: serde_json::json!({"auc": 0.7}),
            artifact_sha256: String::new(),
        };
        crate::train::fit::assign_points(&mut a);
        a
    }

    #[test]
    fn corrupted_or_truncated_artifacts_are_refused() {
        let a = tiny();
        let bytes = a.to_bytes().unwrap();
        let back = Artifact::from_bytes(&bytes).unwrap();
        assert_eq!(back.features, a.features);
        // one digit of a coefficient changed
        let text = String::from_utf8(bytes.clone()).unwrap();
        let edited = text.replacen("-0.8", "-0.9", 1);
        assert_ne!(edited, text);
        let err = Artifact::from_bytes(edited.as_bytes()).unwrap_err();
        assert!(err.0.contains("checksum mismatch"), "{err}");
        // truncated
        let err = Artifact::from_bytes(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(err.0.contains("truncated"), "{err}");
        let err = Artifact::from_bytes(&bytes[..bytes.len() - 3]).unwrap_err();
        assert!(err.0.contains("truncated"), "{err}");
        // a flipped bit in the checksum itself
        let flipped = text.replacen("\"artifact_sha256\": \"", "\"artifact_sha256\": \"f", 1);
        let flipped = flipped.replacen(&format!("f{}", &back.artifact_sha256[..1]), "f", 1);
        assert!(Artifact::from_bytes(flipped.as_bytes()).is_err());
    }

    #[test]
    fn scores_add_up_and_pd_matches_the_score() {
        let a = tiny();
        for row in [
            [Some(5.0), Some(0.0)],
            [Some(10.0), None],
            [None, Some(3.0)],
            [Some(f64::NAN), Some(99.0)],
        ] {
            let r = a.score_with(|n| {
                let i = usize::from(n == "refund_share_90d");
                row[i].map_or(Value::Missing, Value::Number)
            });
            let sum: f64 = r.features.iter().map(|p| p.points).sum();
            assert_eq!(sum, r.score, "points add up exactly");
            assert!((a.scaling.pd_of_score(r.score) - r.pd).abs() < 1e-12);
            assert!(r.features.iter().all(|p| p.points_below_best >= 0.0));
        }
        let catalog = a.check_catalog();
        assert!(catalog.is_ok(), "{catalog:?}");
        let mut other = a.clone();
        other.feature_catalog_version = "v0".into();
        assert!(other.check_catalog().unwrap_err().0.contains("catalog"));
    }

    /// `tiny` with its refund share read relative to the category (format 2).
    fn tiny_relative() -> Artifact {
        let mut a = tiny();
        let f = &mut a.features[1];
        f.name = relative_name("refund_share_90d", "category");
        f.relative = Some(PeerRelative {
            source: "refund_share_90d".into(),
            scale: PeerScale::Log,
            floor: 1e-3,
            group_by: "category".into(),
            references: BTreeMap::from([
                ("grocery".to_string(), 0.01f64.ln()),
                ("retail".to_string(), 0.04f64.ln()),
            ]),
            default_reference: 0.02f64.ln(),
            history_bands: Vec::new(),
        });
        a.format_version = a.needed_format_version();
        a
    }

    #[test]
    fn a_peer_relative_feature_reads_the_rate_against_the_category() {
        let a = tiny_relative();
        assert_eq!(a.format_version, 2);
        assert!(a.check_catalog().is_ok(), "{:?}", a.check_catalog());
        let back = Artifact::from_bytes(&a.to_bytes().unwrap()).unwrap();
        assert_eq!(back.features, a.features, "round trip");
        let id = crate::features::FeatureId::RefundShare90d as usize;
        let mut row = vec![None; crate::features::FeatureId::ALL.len()];
        row[crate::features::FeatureId::NetSales30d as usize] = Some(12.0);
        // 4 % refunds: ln 4 above a grocery's 1 %, the typical rate of a retail shop; the bins
        // of the relative value split at 10 (`tiny`), so both fall in the first bin, but what
        // the model reads differs by exactly ln 4
        row[id] = Some(0.04);
        let rel = a.features[1].relative.as_ref().unwrap();
        assert!(
            (rel.value(row[id], Peers::new(Some("grocery"), None))
                .unwrap()
                - 4f64.ln())
            .abs()
                < 1e-12
        );
        assert!(
            rel.value(row[id], Peers::new(Some("retail"), None))
                .unwrap()
                .abs()
                < 1e-12
        );
        assert!(
            (rel.value(row[id], Peers::new(Some("bakery"), None))
                .unwrap()
                - 2f64.ln())
            .abs()
                < 1e-12
        );
        assert_eq!(
            rel.value(None, Peers::new(Some("retail"), None)),
            None,
            "missing stays missing"
        );
        // the rate at which a grocery reads just above 10 (the second bin) is, for a retail
        // shop, 4 times smaller relative to its category: the first bin
        let high = rel.source_value(10.0 + 1e-9, Peers::new(Some("grocery"), None));
        row[id] = Some(high);
        let r = back.score_row(&row, Some("grocery"));
        assert_eq!(r.features[1].bin, ">= 10");
        let r = back.score_row(&row, Some("retail"));
        assert_eq!(
            r.features[1].bin, "< 10",
            "the same rate is typical of retail"
        );
        let sum: f64 = r.features.iter().map(|p| p.points).sum();
        assert_eq!(sum, r.score);
        assert!((a.scaling.pd_of_score(r.score) - r.pd).abs() < 1e-12);
        row[id] = None;
        assert_eq!(
            back.score_row(&row, Some("retail")).features[1].bin,
            "missing"
        );
    }

    #[test]
    fn a_peer_relative_feature_needs_format_2_and_its_own_name() {
        let mut a = tiny_relative();
        a.format_version = 1;
        let err = Artifact::from_bytes(&a.to_bytes().unwrap()).unwrap_err();
        assert!(err.0.contains("format 2"), "{err}");
        let mut a = tiny_relative();
        a.features[1].name = "refund_share_90d".into();
        assert!(a.check_catalog().unwrap_err().0.contains("_vs_category"));
        let mut a = tiny_relative();
        if let Some(r) = a.features[1].relative.as_mut() {
            r.group_by = "region_type".into();
        }
        let err = Artifact::from_bytes(&a.to_bytes().unwrap()).unwrap_err();
        assert!(err.0.contains("group_by must be category"), "{err}");
        // without peer-relative features an artifact stays format 1, which older builds read
        assert_eq!(tiny().needed_format_version(), 1);
    }

    /// `tiny_relative` with the grocery peers split at 30, 60 and 90 days of history.
    fn tiny_banded() -> Artifact {
        let mut a = tiny_relative();
        if let Some(r) = a.features[1].relative.as_mut() {
            r.history_bands = vec![30, 60, 90];
            r.references
                .insert("grocery/0-29d".to_string(), 0.005f64.ln());
            r.references
                .insert("grocery/90d+".to_string(), 0.02f64.ln());
        }
        a.format_version = a.needed_format_version();
        a
    }

    #[test]
    fn history_bands_compare_a_merchant_with_peers_that_traded_about_as_long() {
        let a = tiny_banded();
        assert_eq!(a.format_version, 3);
        let back = Artifact::from_bytes(&a.to_bytes().unwrap()).unwrap();
        assert_eq!(back.features, a.features, "round trip");
        let rel = a.features[1].relative.as_ref().unwrap();
        let band = |d: f64| rel.history_band(d);
        assert_eq!(band(0.0).as_deref(), Some("0-29d"));
        assert_eq!(band(29.0).as_deref(), Some("0-29d"));
        assert_eq!(band(30.0).as_deref(), Some("30-59d"));
        assert_eq!(band(89.0).as_deref(), Some("60-89d"));
        assert_eq!(band(90.0).as_deref(), Some("90d+"));
        assert_eq!(band(f64::NAN), None);
        let grocery = |days| Peers::new(Some("grocery"), days);
        // 1 % refunds: twice the typical rate of a grocery under 30 days old, half that of an
        // established one
        let at = |peers| rel.value(Some(0.01), peers).unwrap();
        assert!((at(grocery(Some(10.0))) - 2f64.ln()).abs() < 1e-12);
        assert!((at(grocery(Some(400.0))) + 2f64.ln()).abs() < 1e-12);
        // a band without a reference of its own (30–59 days), or no history known: the category
        assert!(at(grocery(Some(45.0))).abs() < 1e-12);
        assert!(at(grocery(None)).abs() < 1e-12);
        // retail has no bands: its category
        assert!((at(Peers::new(Some("retail"), Some(10.0))) + 4f64.ln()).abs() < 1e-12);
        // the inverse, per band
        let back_to = rel.source_value(2f64.ln(), grocery(Some(10.0)));
        assert!((back_to - 0.01).abs() < 1e-12);
        // scoring reads the band from the row's days of history
        let mut row = vec![None; crate::features::FeatureId::ALL.len()];
        row[crate::features::FeatureId::RefundShare90d as usize] = Some(0.01);
        row[crate::features::FeatureId::DaysOfHistory as usize] = Some(10.0);
        assert_eq!(Peers::of_row(Some("grocery"), &row), grocery(Some(10.0)));
        // older layouts cannot hold bands; bands must rise from above 0
        let mut old = tiny_banded();
        old.format_version = 2;
        let err = Artifact::from_bytes(&old.to_bytes().unwrap()).unwrap_err();
        assert!(err.0.contains("format 3"), "{err}");
        for bad in [vec![0, 30], vec![60, 30], vec![30, 30]] {
            let mut a = tiny_banded();
            if let Some(r) = a.features[1].relative.as_mut() {
                r.history_bands = bad;
            }
            let err = Artifact::from_bytes(&a.to_bytes().unwrap()).unwrap_err();
            assert!(err.0.contains("history bands"), "{err}");
        }
    }

    #[test]
    fn scaling_defaults() {
        let s = Scaling::new(600.0, 50.0, 20.0);
        assert!((s.score_of_pd(1.0 / 51.0) - 600.0).abs() < 1e-9);
        assert!((s.score_of_pd(1.0 / 101.0) - 620.0).abs() < 0.3);
        assert!((s.pd_of_score(600.0) - 1.0 / 51.0).abs() < 1e-12);
        // doubling the odds adds exactly pdo points
        let o1 = s.score_of_pd(0.2);
        let odds = 4.0 * 2.0; // good:bad 4 → 8
        assert!((s.score_of_pd(1.0 / (1.0 + odds)) - o1 - 20.0).abs() < 1e-9);
    }
}
