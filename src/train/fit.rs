//! Fitting the scorecard: binning of every candidate, selection (IV threshold, correlation,
//! coefficient sign), L2 strength by k-fold cross-validation, the logistic regression on WoE
//! values with `linfa-logistic`, and the points.
//!
//! # Selection (documented thresholds)
//!
//! * **IV below [`FitOptions::iv_threshold`] (default 0.02)** — dropped as unpredictive (the usual
//!   scorecard convention: IV < 0.02 "not useful", 0.02–0.1 weak, 0.1–0.3 medium, > 0.3 strong).
//! * **Correlation** — candidates are taken in decreasing IV; one whose WoE column (on the
//!   training rows) has |Pearson r| above [`FitOptions::max_correlation`] (default 0.7) with an
//!   already kept, stronger feature is dropped, naming that feature.
//! * **Sign** — with WoE oriented so that positive = safer, every coefficient of the PD logit must
//!   be negative. If some are not (collinearity), the one with the smallest IV among them is
//!   dropped for good, the correlation filter is re-run on the remaining candidates (so a feature
//!   dropped only for correlating with the sign-dropped one comes back) and the model refitted,
//!   until all signs are right. The loop ends because every round removes one candidate.
//!
//! # Regularisation
//!
//! `linfa-logistic` minimises `Σ log-loss + α/2 · ‖w‖²` (a *sum* over rows; the intercept is not
//! penalised). α is chosen from [`FitOptions::alphas`] by stratified k-fold cross-validation on the
//! training rows (folds from a ChaCha8 shuffle seeded with `seed`): in each fold the whole pipeline
//! (binning, selection, fit) is refitted on the other folds and the AUC measured on the held-out
//! fold. The α with the best mean AUC wins (ties: the larger α). The folds run on worker threads
//! (one per fold) and are gathered in fold order, so the result does not depend on scheduling.

use super::binning::{bin_categorical, bin_numeric_fine};
use super::metrics::auc;
use super::table::{ColumnData, Table};
use crate::scorecard::{Artifact, DroppedFeature, ScoreFeature, Value};
use anyhow::{Context, anyhow, bail};
use linfa::prelude::*;
use linfa_logistic::{FittedLogisticRegression, LogisticRegression};

use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Serialize;

/// Fitting settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    pub min_bin_share: f64,
    /// Quantile bins of a numeric feature before merging (see [`super::binning`]).
    pub fine_bins: usize,
    pub iv_threshold: f64,
    pub max_correlation: f64,
    pub alphas: Vec<f64>,
    pub cv_folds: usize,
    pub seed: u64,
    pub max_iterations: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            min_bin_share: 0.05,
            fine_bins: super::binning::FINE_BINS,
            iv_threshold: 0.02,
            max_correlation: 0.7,
            alphas: vec![0.01, 0.1, 1.0, 10.0, 100.0, 1000.0],
            cv_folds: 5,
            seed: 42,
            max_iterations: 1000,
        }
    }
}

/// Cross-validation result of one α.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CvResult {
    pub alpha: f64,
    pub mean_auc: f64,
    pub fold_aucs: Vec<f64>,
}

/// A fitted scorecard before scaling.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// Model features with coefficients (points not yet assigned).
    pub features: Vec<ScoreFeature>,
    pub intercept: f64,
    pub dropped: Vec<DroppedFeature>,
    pub alpha: f64,
    pub cv: Vec<CvResult>,
    /// Every candidate with its binning (for the report).
    pub candidates: Vec<ScoreFeature>,
}

/// The value of feature `f` in row `r`.
pub fn cell(table: &Table, f: usize, r: usize) -> Value<'_> {
    match &table.features[f].data {
        ColumnData::Numeric(v) => v[r].map_or(Value::Missing, Value::Number),
        ColumnData::Categorical(v) => v[r].as_deref().map_or(Value::Missing, Value::Category),
    }
}

/// Bins every candidate feature on the rows `idx`.
pub fn bin_candidates(
    table: &Table,
    idx: &[usize],
    min_share: f64,
    fine_bins: usize,
) -> Vec<ScoreFeature> {
    let labels: Vec<bool> = idx.iter().map(|&i| table.label[i]).collect();
    table
        .features
        .iter()
        .map(|c| match &c.data {
            ColumnData::Numeric(v) => {
                let vals: Vec<Option<f64>> = idx.iter().map(|&i| v[i]).collect();
                bin_numeric_fine(&c.name, &vals, &labels, c.direction, min_share, fine_bins)
            }
            ColumnData::Categorical(v) => {
                let vals: Vec<Option<String>> = idx.iter().map(|&i| v[i].clone()).collect();
                bin_categorical(&c.name, &vals, &labels, min_share)
            }
        })
        .collect()
}

/// WoE matrix (rows `idx`, columns = `cols` of the table with their binnings).
fn woe_matrix(table: &Table, idx: &[usize], cols: &[(usize, &ScoreFeature)]) -> Array2<f64> {
    let mut x = Array2::<f64>::zeros((idx.len(), cols.len()));
    for (j, &(f, sf)) in cols.iter().enumerate() {
        for (i, &r) in idx.iter().enumerate() {
            x[[i, j]] = sf.bins[sf.bin_index(cell(table, f, r))].woe;
        }
    }
    x
}

fn pearson(a: ndarray::ArrayView1<f64>, b: ndarray::ArrayView1<f64>) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.sum() / n, b.sum() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b.iter()) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// A logistic fit oriented as `logit(P(default)) = intercept + x·params`.
pub struct LogitFit {
    pub intercept: f64,
    pub params: Vec<f64>,
    pub model: FittedLogisticRegression<f64, usize>,
    /// Whether linfa's positive class is "default" (see [`fit_logistic`]).
    pub positive_is_default: bool,
}

impl LogitFit {
    /// P(default) of rows of `x` as linfa computes it.
    pub fn linfa_pd(&self, x: &Array2<f64>) -> Vec<f64> {
        let p = self.model.predict_probabilities(x);
        if self.positive_is_default {
            p.to_vec()
        } else {
            p.iter().map(|v| 1.0 - v).collect()
        }
    }
}

/// Fits `logit(PD) = intercept + x·w` with linfa-logistic (L2 strength `alpha`).
///
/// linfa-logistic 0.8 models the probability of its *positive* class, which it chooses as the
/// more frequent of the two labels (`label_classes` compares the class counts) — with a minority
/// of defaults, that is "no default". The fit is therefore re-oriented from
/// `model.labels().pos.class`: when the positive class is 0, intercept and coefficients are
/// negated, which is exactly the logit of the other class.
pub fn fit_logistic(
    x: &Array2<f64>,
    y: &[bool],
    alpha: f64,
    max_iterations: u64,
) -> anyhow::Result<LogitFit> {
    let targets: Array1<usize> = y.iter().map(|&v| usize::from(v)).collect();
    let ds = linfa::Dataset::new(x.clone(), targets);
    let model = LogisticRegression::default()
        .alpha(alpha)
        .with_intercept(true)
        .max_iterations(max_iterations)
        .gradient_tolerance(1e-6 * (y.len() as f64).max(1.0))
        .fit(&ds)
        .map_err(|e| anyhow!("logistic regression failed: {e}"))?;
    let positive_is_default = model.labels().pos.class == 1;
    let sign = if positive_is_default { 1.0 } else { -1.0 };
    Ok(LogitFit {
        intercept: sign * model.intercept(),
        params: model.params().iter().map(|w| sign * w).collect(),
        model,
        positive_is_default,
    })
}

/// (model feature indices, dropped, intercept, coefficients).
type Selected = (Vec<usize>, Vec<DroppedFeature>, f64, Vec<f64>);

/// Selection and fit on rows `idx` with a given α, from binnings fitted on the same rows.
fn select_and_fit(
    table: &Table,
    idx: &[usize],
    candidates: &[ScoreFeature],
    alpha: f64,
    opts: &FitOptions,
) -> anyhow::Result<Selected> {
    let y: Vec<bool> = idx.iter().map(|&i| table.label[i]).collect();
    let mut dropped = Vec::new();
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        candidates[b]
            .information_value
            .total_cmp(&candidates[a].information_value)
            .then(a.cmp(&b))
    });
    let mut strong = Vec::new();
    for &f in &order {
        let iv = candidates[f].information_value;
        if iv < opts.iv_threshold {
            dropped.push(DroppedFeature {
                name: candidates[f].name.clone(),
                information_value: iv,
                reason: format!("IV {iv:.4} below the threshold {}", opts.iv_threshold),
            });
        } else {
            strong.push(f);
        }
    }
    let all_cols: Vec<(usize, &ScoreFeature)> =
        strong.iter().map(|&f| (f, &candidates[f])).collect();
    let x_all = woe_matrix(table, idx, &all_cols);
    // correlation filter and sign check in a loop until stable: a feature dropped for a wrong
    // sign leaves the pool, and the correlation filter is re-run on what remains, so features
    // that were dropped only for correlating with it are reconsidered
    let mut sign_dropped: Vec<usize> = Vec::new(); // positions in `strong`
    let mut sign_reasons: Vec<DroppedFeature> = Vec::new();
    loop {
        let mut kept: Vec<usize> = Vec::new(); // positions in `strong`
        let mut corr_reasons: Vec<DroppedFeature> = Vec::new();
        for j in 0..strong.len() {
            if sign_dropped.contains(&j) {
                continue;
            }
            let clash = kept.iter().find_map(|&k| {
                let r = pearson(x_all.column(j), x_all.column(k));
                (r.abs() > opts.max_correlation).then_some((k, r))
            });
            match clash {
                Some((k, r)) => corr_reasons.push(DroppedFeature {
                    name: candidates[strong[j]].name.clone(),
                    information_value: candidates[strong[j]].information_value,
                    reason: format!(
                        "WoE correlation {r:.3} with the stronger {} (|r| > {})",
                        candidates[strong[k]].name, opts.max_correlation
                    ),
                }),
                None => kept.push(j),
            }
        }
        if kept.is_empty() {
            bail!("no feature passed the selection (IV threshold, correlation, coefficient sign)");
        }
        let x = x_all.select(ndarray::Axis(1), &kept);
        let m = fit_logistic(&x, &y, alpha, opts.max_iterations)?;
        let w: Vec<f64> = m.params.clone();
        let wrong: Vec<usize> = (0..kept.len()).filter(|&i| w[i] >= 0.0).collect();
        if wrong.is_empty() {
            let feats = kept.iter().map(|&j| strong[j]).collect();
            dropped.extend(corr_reasons);
            dropped.extend(sign_reasons);
            return Ok((feats, dropped, m.intercept, w));
        }
        // drop the weakest wrong-signed feature, re-run the correlation filter and refit
        let &worst = wrong
            .iter()
            .min_by(|&&a, &&b| {
                candidates[strong[kept[a]]]
                    .information_value
                    .total_cmp(&candidates[strong[kept[b]]].information_value)
            })
            .context("non-empty")?;
        let f = strong[kept[worst]];
        sign_reasons.push(DroppedFeature {
            name: candidates[f].name.clone(),
            information_value: candidates[f].information_value,
            reason: format!(
                "coefficient {:.4} has the wrong sign next to the other features (collinearity)",
                w[worst]
            ),
        });
        sign_dropped.push(kept[worst]);
    }
}

/// Stratified k folds of `idx`: fold number per position.
pub fn stratified_folds(labels: &[bool], k: usize, seed: u64) -> Vec<usize> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut fold = vec![0usize; labels.len()];
    for class in [true, false] {
        let mut pos: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        pos.shuffle(&mut rng);
        for (j, &p) in pos.iter().enumerate() {
            fold[p] = j % k;
        }
    }
    fold
}

/// Fits the scorecard on rows `train` of `table`.
pub fn fit_scorecard(
    table: &Table,
    train: &[usize],
    opts: &FitOptions,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Fitted> {
    let labels: Vec<bool> = train.iter().map(|&i| table.label[i]).collect();
    if !labels.iter().any(|&l| l) || labels.iter().all(|&l| l) {
        bail!("the training rows need both defaults and non-defaults");
    }
    let mut cv: Vec<CvResult> = opts
        .alphas
        .iter()
        .map(|&alpha| CvResult {
            alpha,
            mean_auc: 0.0,
            fold_aucs: Vec::new(),
        })
        .collect();
    if opts.cv_folds >= 2 && opts.alphas.len() > 1 {
        let folds = stratified_folds(&labels, opts.cv_folds, opts.seed);
        // one thread per fold (each refits binning, selection and every α on its own rows); the
        // results are gathered in fold order, so the outcome does not depend on scheduling
        let run_fold = |k: usize| -> anyhow::Result<Vec<f64>> {
            let fit_idx: Vec<usize> = (0..train.len())
                .filter(|&j| folds[j] != k)
                .map(|j| train[j])
                .collect();
            let val_idx: Vec<usize> = (0..train.len())
                .filter(|&j| folds[j] == k)
                .map(|j| train[j])
                .collect();
            let cands = bin_candidates(table, &fit_idx, opts.min_bin_share, opts.fine_bins);
            let yv: Vec<bool> = val_idx.iter().map(|&i| table.label[i]).collect();
            let mut aucs = Vec::with_capacity(opts.alphas.len());
            for &alpha in &opts.alphas {
                let (feats, _, b0, w) = select_and_fit(table, &fit_idx, &cands, alpha, opts)?;
                let cols: Vec<(usize, &ScoreFeature)> =
                    feats.iter().map(|&f| (f, &cands[f])).collect();
                let xv = woe_matrix(table, &val_idx, &cols);
                let z: Vec<f64> = xv
                    .rows()
                    .into_iter()
                    .map(|r| b0 + r.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>())
                    .collect();
                aucs.push(auc(&z, &yv).unwrap_or(0.5));
                progress.inc(1);
            }
            Ok(aucs)
        };
        let results: Vec<anyhow::Result<Vec<f64>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..opts.cv_folds)
                .map(|k| {
                    let run_fold = &run_fold;
                    s.spawn(move || run_fold(k))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a cross-validation thread panicked")))
                })
                .collect()
        });
        for r in results {
            for (c, a) in cv.iter_mut().zip(r?) {
                c.fold_aucs.push(a);
            }
        }
        for c in cv.iter_mut() {
            c.mean_auc = c.fold_aucs.iter().sum::<f64>() / c.fold_aucs.len() as f64;
        }
    }
    let best = cv
        .iter()
        .enumerate()
        .max_by(|(ia, a), (ib, b)| {
            a.mean_auc
                .total_cmp(&b.mean_auc)
                .then(a.alpha.total_cmp(&b.alpha))
                .then(ib.cmp(ia))
        })
        .map(|(_, c)| c.alpha)
        .ok_or_else(|| anyhow!("no regularisation strength to try"))?;
    let candidates = bin_candidates(table, train, opts.min_bin_share, opts.fine_bins);
    let (feats, mut dropped, intercept, w) = select_and_fit(table, train, &candidates, best, opts)?;
    progress.inc(1);
    let features = feats
        .iter()
        .zip(&w)
        .map(|(&f, &c)| ScoreFeature {
            coefficient: c,
            ..candidates[f].clone()
        })
        .collect();
    dropped.sort_by(|a, b| b.information_value.total_cmp(&a.information_value));
    Ok(Fitted {
        features,
        intercept,
        dropped,
        alpha: best,
        cv,
        candidates,
    })
}

/// The out-of-time recalibration (module docs of [`super`]): `logit' = intercept + slope·logit`,
/// fitted with `linfa-logistic` (no penalty) on the calibration slice, the latest training rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recalibration {
    /// Share of the training rows asked for.
    pub share: f64,
    pub rows: usize,
    pub defaults: usize,
    pub first_date: Option<String>,
    pub last_date: Option<String>,
    pub intercept: f64,
    pub slope: f64,
    /// AUC of the development fit on the slice (recalibration does not change it).
    pub auc: Option<f64>,
    /// Mean PD and largest |observed − predicted| over score deciles on the slice with the
    /// development fit: out of sample, the evidence that the level or steepness moved.
    pub mean_pd_before: f64,
    pub max_gap_before: f64,
    /// The same after recalibration (in sample for the two refitted numbers).
    pub mean_pd_after: f64,
    pub max_gap_after: f64,
}

/// Refits the intercept and one common slope of `fitted`'s logit on rows `cal` and applies them:
/// intercept `a + b·β₀`, every coefficient `b·βⱼ`. A common `b > 0` keeps the points additive
/// and monotone and the ranking of any two merchants unchanged; a slope that is not positive
/// means the scorecard does not rank the slice at all, which is refused.
pub fn recalibrate(
    table: &Table,
    fitted: &mut Fitted,
    cal: &[usize],
    share: f64,
) -> anyhow::Result<Recalibration> {
    let cols: Vec<(usize, &ScoreFeature)> = fitted
        .features
        .iter()
        .map(|sf| {
            table
                .features
                .iter()
                .position(|c| c.name == sf.name)
                .map(|f| (f, sf))
                .ok_or_else(|| anyhow!("the data has no column {:?}", sf.name))
        })
        .collect::<anyhow::Result<_>>()?;
    let x = woe_matrix(table, cal, &cols);
    let z: Vec<f64> = x
        .rows()
        .into_iter()
        .map(|r| {
            fitted.intercept
                + r.iter()
                    .zip(&fitted.features)
                    .map(|(v, f)| v * f.coefficient)
                    .sum::<f64>()
        })
        .collect();
    let y: Vec<bool> = cal.iter().map(|&i| table.label[i]).collect();
    let defaults = y.iter().filter(|&&v| v).count();
    if defaults == 0 || defaults == y.len() {
        bail!(
            "the calibration slice ({} rows, {defaults} defaults) needs both defaults and \
             non-defaults; lower the recalibration share or set it to 0",
            y.len()
        );
    }
    let zx = Array2::from_shape_vec((z.len(), 1), z.clone())
        .map_err(|e| anyhow!("calibration matrix: {e}"))?;
    let m = fit_logistic(&zx, &y, 0.0, 1000)?;
    let (a, b) = (m.intercept, m.params[0]);
    if !(b > 0.0 && b.is_finite() && a.is_finite()) {
        bail!(
            "the recalibration slope is {b:.4} (intercept {a:.4}): the scorecard fitted on the \
             development rows does not rank the calibration slice; train without recalibration \
             (share 0)"
        );
    }
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let neg: Vec<f64> = z.iter().map(|v| -v).collect();
    let before: Vec<f64> = z.iter().map(|&v| sig(v)).collect();
    let after: Vec<f64> = z.iter().map(|&v| sig(a + b * v)).collect();
    let gap = |pd: &[f64]| {
        super::metrics::calibration(&neg, pd, &y, 10)
            .iter()
            .map(|c| (c.observed - c.predicted).abs())
            .fold(0.0, f64::max)
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let dates = table.dates.as_ref();
    let r = Recalibration {
        share,
        rows: cal.len(),
        defaults,
        first_date: dates
            .and_then(|d| cal.iter().map(|&i| d[i]).min())
            .map(|d| d.to_string()),
        last_date: dates
            .and_then(|d| cal.iter().map(|&i| d[i]).max())
            .map(|d| d.to_string()),
        intercept: a,
        slope: b,
        auc: auc(&z, &y),
        mean_pd_before: mean(&before),
        max_gap_before: gap(&before),
        mean_pd_after: mean(&after),
        max_gap_after: gap(&after),
    };
    fitted.intercept = a + b * fitted.intercept;
    for f in &mut fitted.features {
        f.coefficient *= b;
    }
    Ok(r)
}

/// Sets the points of every bin from the coefficients, intercept and scaling:
/// `points = −factor·β·WoE + (offset − factor·intercept)/k` for `k` model features, so that
/// `Σ points = offset − factor·logit(PD)` = the score.
pub fn assign_points(a: &mut Artifact) {
    let k = a.features.len().max(1) as f64;
    let share = (a.scaling.offset - a.scaling.factor * a.intercept) / k;
    let factor = a.scaling.factor;
    for f in &mut a.features {
        let beta = f.coefficient;
        for b in &mut f.bins {
            b.points = -factor * beta * b.woe + share;
        }
    }
}

/// WoE rows of `idx` under the artifact's features (what the logistic model sees).
pub fn artifact_woe_matrix(
    a: &Artifact,
    table: &Table,
    idx: &[usize],
) -> anyhow::Result<Array2<f64>> {
    let cols: Vec<(usize, &ScoreFeature)> = a
        .features
        .iter()
        .map(|sf| {
            table
                .features
                .iter()
                .position(|c| c.name == sf.name)
                .map(|f| (f, sf))
                .ok_or_else(|| {
                    anyhow!("the data has no column {:?}, which the model uses", sf.name)
                })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(woe_matrix(table, idx, &cols))
}
