//! The offline retraining pipeline: dataset → monotone WoE scorecard (linfa-logistic) and a
//! challenger (random forest of linfa-trees) → out-of-time evaluation with segments → a
//! self-verifying artifact under `<out_dir>/<version>/` with `report.md` and PNG plots.
//!
//! # Defaults (and why)
//!
//! * **Grades** by PD: A < 1.5 %, B 1.5–3 %, C 3–6 %, D 6–12 %, E ≥ 12 %. Each band doubles the PD
//!   of the previous one, i.e. roughly one "points to double the odds" (20 points) per grade, and
//!   the C/D boundary sits just above the 5 % portfolio default rate the lending policy is sized
//!   for.
//! * **Policy cut-off**: approve PD < 6 %, i.e. grades A–C (the lending policy approves A–C and
//!   refers D). Used for the approval rates and adverse impact ratios of the report.
//! * **Out-of-time split**: train on loans disbursed before the cut, test on the rest; default cut
//!   = the loan date at the 70 % quantile. Tables without a date column get a seeded random 70/30
//!   split.
//! * **Scaling**: 600 points at 50:1 good:bad odds, 20 points to double the odds.
//! * **Out-of-time recalibration**: the latest 20 % of the training rows by loan date (the
//!   *calibration slice*, just before the test window) are held out of the fit; bins, WoE,
//!   selection, α and the logistic regression are fitted on the earlier rows (the *development
//!   rows*), then the intercept and one common slope of the logit are refitted on the calibration
//!   slice: `logit' = a + b·logit`. Scaling every coefficient by the same `b > 0` keeps the points
//!   additive and monotone and the ranking unchanged; only the level and the steepness of the PD
//!   move to the most recent data available before the test window. This is the usual practice
//!   when a population drifts (here the simulated histories lengthen over calendar time, so later
//!   loans are scored from fuller histories and the score separates them better). 20 % is chosen
//!   by argument, not by test results: enough rows for two parameters (about 6,000 loans and 300
//!   defaults in the shipped model's data) while keeping 80 % for the scorecard itself. 0 turns it
//!   off; a table without a date column has no "recent" rows, so it is never recalibrated.

pub mod binning;
pub mod challenger;
pub mod dataset;
pub mod evaluate;
pub mod fit;
pub mod from_store;
pub mod metrics;
pub mod peer;
pub mod plots;
pub mod report;
pub mod table;

use crate::scorecard::{Artifact, DataFingerprint, FORMAT_VERSION, GradeBand, Scaling};
use anyhow::{Context, bail};
use chrono::NaiveDate;
use evaluate::{EvalSet, Scored};
use fit::FitOptions;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use table::{Table, TableOptions};

/// Where the out-of-time split falls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OotCut {
    /// Loans on or after this date are the test set.
    Date(NaiveDate),
    /// The cut is the loan date at this quantile of the loan dates (0 < q < 1).
    Quantile(f64),
}

/// Settings of `train`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    pub data: PathBuf,
    /// Label column (default `label`).
    pub label: Option<String>,
    /// For non-binary labels: the value meaning default.
    pub positive_label: Option<String>,
    pub id_columns: Vec<String>,
    pub date_column: Option<String>,
    pub segment_columns: Vec<String>,
    pub exclude_columns: Vec<String>,
    /// The model goes to `out_dir/version/`.
    pub out_dir: PathBuf,
    pub version: String,
    pub seed: u64,
    pub oot_cut: Option<OotCut>,
    /// Share of the training rows, the latest by loan date, held out of the fit to refit the
    /// intercept and slope of the logit (module docs); 0 = no recalibration. Ignored without a
    /// date column.
    pub recalibration_share: f64,
    /// `loan_id,true_pd[,ex_ante_pd]` file (the simulator's truth) for the oracle comparison.
    pub truth: Option<PathBuf>,
    pub base_score: f64,
    pub base_odds: f64,
    pub pdo: f64,
    pub grade_bands: Vec<GradeBand>,
    pub policy_max_pd: f64,
    pub fit: FitOptions,
    /// Written into the artifact; `None` = `SOURCE_DATE_EPOCH` if set, else now. Set it for a
    /// byte-identical rebuild.
    pub created_at: Option<String>,
    /// A line for the report stating how to reproduce this model.
    pub reproduce: Option<String>,
    pub challenger: bool,
    pub plots: bool,
    /// Catalog datasets: add the peer-relative candidates of [`peer`] (default on; off
    /// reproduces models trained before they existed).
    pub peer_relative: bool,
}

/// The default share of the training rows used for the out-of-time recalibration (module docs).
pub const DEFAULT_RECALIBRATION_SHARE: f64 = 0.2;

/// The default grade bands (module docs).
pub fn default_grade_bands() -> Vec<GradeBand> {
    let edges = [0.0, 0.015, 0.03, 0.06, 0.12, 1.0];
    ["A", "B", "C", "D", "E"]
        .iter()
        .enumerate()
        .map(|(i, g)| GradeBand {
            grade: (*g).to_string(),
            min_pd: edges[i],
            max_pd: edges[i + 1],
        })
        .collect()
}

impl TrainOptions {
    pub fn new(data: PathBuf, out_dir: PathBuf, version: String) -> TrainOptions {
        TrainOptions {
            data,
            label: None,
            positive_label: None,
            id_columns: Vec::new(),
            date_column: None,
            segment_columns: Vec::new(),
            exclude_columns: Vec::new(),
            out_dir,
            version,
            seed: 42,
            oot_cut: None,
            recalibration_share: DEFAULT_RECALIBRATION_SHARE,
            truth: None,
            base_score: 600.0,
            base_odds: 50.0,
            pdo: 20.0,
            grade_bands: default_grade_bands(),
            policy_max_pd: 0.06,
            fit: FitOptions::default(),
            created_at: None,
            reproduce: None,
            challenger: true,
            plots: true,
            peer_relative: true,
        }
    }

    fn table_options(&self) -> TableOptions {
        TableOptions {
            label: self.label.clone(),
            positive_label: self.positive_label.clone(),
            id_columns: self.id_columns.clone(),
            date_column: self.date_column.clone(),
            segment_columns: self.segment_columns.clone(),
            exclude_columns: self.exclude_columns.clone(),
        }
    }
}

/// What `train` produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainSummary {
    pub model_dir: PathBuf,
    pub artifact_sha256: String,
    pub train_rows: usize,
    pub test_rows: usize,
    pub features: Vec<String>,
    pub alpha: f64,
    pub test_auc: Option<f64>,
    pub test_max_calibration_gap: f64,
    /// AUC of the simulator's ex-ante PDs on the test rows (the target's oracle).
    pub ex_ante_oracle_auc: Option<f64>,
    /// AUC of the simulator's hindsight PDs (the outcomes' own) on the test rows.
    pub hindsight_oracle_auc: Option<f64>,
    /// The out-of-time recalibration (`None` when off).
    pub recalibration: Option<fit::Recalibration>,
    pub challenger_auc: Option<f64>,
    pub psi: f64,
}

/// What `evaluate` produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalSummary {
    pub rows: usize,
    pub auc: Option<f64>,
    pub max_calibration_gap: f64,
    pub report: PathBuf,
}

fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}} {{elapsed_precise}}"
    )) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The train/test split: (train, test, description).
pub fn split(
    table: &Table,
    cut: Option<OotCut>,
    seed: u64,
) -> anyhow::Result<(Vec<usize>, Vec<usize>, String)> {
    let n = table.rows();
    match &table.dates {
        Some(dates) => {
            let cut_date = match cut.unwrap_or(OotCut::Quantile(0.7)) {
                OotCut::Date(d) => d,
                OotCut::Quantile(q) => {
                    if !(q > 0.0 && q < 1.0) {
                        bail!("the out-of-time quantile must be strictly between 0 and 1, got {q}");
                    }
                    let mut s = dates.clone();
                    s.sort();
                    s[((q * n as f64) as usize).min(n - 1)]
                }
            };
            let train: Vec<usize> = (0..n).filter(|&i| dates[i] < cut_date).collect();
            let test: Vec<usize> = (0..n).filter(|&i| dates[i] >= cut_date).collect();
            if train.is_empty() || test.is_empty() {
                bail!("the out-of-time cut {cut_date} leaves an empty train or test set");
            }
            Ok((
                train,
                test,
                format!(
                    "out of time: train = loans before {cut_date}, test = loans on or after it"
                ),
            ))
        }
        None => {
            let q = match cut {
                Some(OotCut::Quantile(q)) => q,
                Some(OotCut::Date(_)) => bail!("an out-of-time date cut needs a date column"),
                None => 0.7,
            };
            let mut idx: Vec<usize> = (0..n).collect();
            idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
            let k = ((q * n as f64) as usize).clamp(1, n.saturating_sub(1));
            let mut train = idx[..k].to_vec();
            let mut test = idx[k..].to_vec();
            train.sort_unstable();
            test.sort_unstable();
            Ok((
                train,
                test,
                format!(
                    "random (no date column): {:.0} % train, seed {seed}",
                    q * 100.0
                ),
            ))
        }
    }
}

fn created_at(opt: &Option<String>) -> String {
    if let Some(s) = opt {
        return s.clone();
    }
    if let Some(t) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
    {
        return t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    }
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Everything the report needs.
pub struct TrainOutcome {
    pub artifact: Artifact,
    pub table: Table,
    pub train_idx: Vec<usize>,
    pub test_idx: Vec<usize>,
    pub split: String,
    pub fitted: fit::Fitted,
    pub train_scored: Scored,
    pub test_scored: Scored,
    pub train_eval: EvalSet,
    pub test_eval: EvalSet,
    pub psi: f64,
    pub challenger: Option<(Vec<f64>, metrics::Metrics)>,
    /// Rows the scorecard was fitted on (the training rows before the calibration slice).
    pub dev_idx: Vec<usize>,
    /// The calibration slice (empty without recalibration).
    pub cal_idx: Vec<usize>,
    pub recalibration: Option<fit::Recalibration>,
    pub options: TrainOptions,
}

/// Trains, evaluates and writes the artifact, report and plots.
pub fn run_train(opts: &TrainOptions) -> anyhow::Result<TrainSummary> {
    let outcome = train_in_memory(opts)?;
    let dir = opts.out_dir.join(&opts.version);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let bytes = outcome.artifact.to_bytes()?;
    std::fs::write(dir.join("model.json"), &bytes)?;
    // the written file must load and verify
    let loaded = Artifact::load(&dir)?;
    if opts.plots {
        plots::write_plots(&outcome, &dir)?;
    }
    report::write_report(&outcome, &dir, opts.plots)?;
    Ok(TrainSummary {
        model_dir: dir,
        artifact_sha256: loaded.artifact_sha256,
        train_rows: outcome.train_idx.len(),
        test_rows: outcome.test_idx.len(),
        features: outcome
            .artifact
            .features
            .iter()
            .map(|f| f.name.clone())
            .collect(),
        alpha: outcome.fitted.alpha,
        test_auc: outcome.test_eval.metrics.auc,
        test_max_calibration_gap: outcome.test_eval.max_calibration_gap,
        ex_ante_oracle_auc: outcome
            .test_eval
            .oracle
            .as_ref()
            .and_then(|o| o.ex_ante_auc),
        hindsight_oracle_auc: outcome
            .test_eval
            .oracle
            .as_ref()
            .and_then(|o| o.hindsight_auc),
        recalibration: outcome.recalibration.clone(),
        challenger_auc: outcome.challenger.as_ref().and_then(|c| c.1.auc),
        psi: outcome.psi,
    })
}

/// The whole training run without writing anything.
pub fn train_in_memory(opts: &TrainOptions) -> anyhow::Result<TrainOutcome> {
    let table = table::read_table(&opts.data, &opts.table_options())?;
    train_table(table, opts)
}

/// [`train_in_memory`] on a table already read.
pub fn train_table(mut table: Table, opts: &TrainOptions) -> anyhow::Result<TrainOutcome> {
    let truth = opts
        .truth
        .as_deref()
        .map(dataset::read_truth_csv)
        .transpose()?;
    let (train_idx, test_idx, split_desc) = split(&table, opts.oot_cut, opts.seed)?;
    let (dev_idx, cal_idx) = recalibration_split(&table, &train_idx, opts.recalibration_share)?;
    let peers = if table.catalog && opts.peer_relative {
        peer::add_candidates(&mut table, &dev_idx)?
    } else {
        Vec::new()
    };
    let steps = (opts.fit.cv_folds * opts.fit.alphas.len() + 1) as u64;
    let bar = progress_bar(steps, "fitting scorecard");
    let fit_opts = FitOptions {
        seed: opts.seed,
        ..opts.fit.clone()
    };
    let mut fitted = fit::fit_scorecard(&table, &dev_idx, &fit_opts, &bar)?;
    bar.finish_and_clear();
    for f in &mut fitted.features {
        f.relative = peers
            .iter()
            .find(|p| crate::scorecard::relative_name(&p.source, &p.group_by) == f.name)
            .cloned();
    }
    let recalibration = if cal_idx.is_empty() {
        None
    } else {
        let r = fit::recalibrate(&table, &mut fitted, &cal_idx, opts.recalibration_share)?;
        Some(r)
    };

    let scaling = Scaling::new(opts.base_score, opts.base_odds, opts.pdo);
    let y_all = &table.label;
    let dates = table.dates.as_ref();
    let first = dates.and_then(|d| d.iter().min()).map(|d| d.to_string());
    let last = dates.and_then(|d| d.iter().max()).map(|d| d.to_string());
    let mut artifact = Artifact {
        format_version: FORMAT_VERSION,
        model_version: opts.version.clone(),
        created_at: created_at(&opts.created_at),
        feature_catalog_version: if table.catalog {
            crate::features::CATALOG_VERSION.to_string()
        } else {
            "generic".to_string()
        },
        label: table.label_name.clone(),
        intercept: fitted.intercept,
        scaling,
        grade_bands: opts.grade_bands.clone(),
        policy_max_pd: opts.policy_max_pd,
        features: fitted.features.clone(),
        dropped_features: fitted.dropped.clone(),
        training: serde_json::json!({
            "seed": opts.seed,
            "split": split_desc,
            "min_bin_share": fit_opts.min_bin_share,
            "fine_bins": fit_opts.fine_bins,
            "iv_threshold": fit_opts.iv_threshold,
            "max_correlation": fit_opts.max_correlation,
            "cv_folds": fit_opts.cv_folds,
            "development_rows": dev_idx.len(),
            "recalibration": recalibration,
            "alpha": fitted.alpha,
            "cv": fitted.cv,
            "solver": "linfa-logistic 0.8 (L-BFGS), loss = sum of log-loss + alpha/2 |w|^2",
        }),
        data: DataFingerprint {
            sha256: table.sha256.clone(),
            rows: table.rows() as u64,
            train_rows: train_idx.len() as u64,
            test_rows: test_idx.len() as u64,
            first_date: first,
            last_date: last,
            default_rate: y_all.iter().filter(|&&b| b).count() as f64 / table.rows() as f64,
        },
        metrics: serde_json::Value::Null,
        artifact_sha256: String::new(),
    };
    // listed only when offered, so that a model trained without them (`--no-peer-relative`)
    // is byte for byte what it was before they existed
    if !peers.is_empty()
        && let Some(t) = artifact.training.as_object_mut()
    {
        t.insert(
            "peer_relative_candidates".to_string(),
            peers
                .iter()
                .map(|p| crate::scorecard::relative_name(&p.source, &p.group_by))
                .collect::<Vec<_>>()
                .into(),
        );
    }
    artifact.format_version = artifact.needed_format_version();
    fit::assign_points(&mut artifact);
    // score with exactly what a loader will see
    let provisional = Artifact::from_bytes(&artifact.to_bytes()?)?;
    let train_scored = evaluate::score_rows(&provisional, &table, &train_idx)?;
    let test_scored = evaluate::score_rows(&provisional, &table, &test_idx)?;
    let train_eval = evaluate::eval_set(
        &provisional,
        &table,
        &train_idx,
        &train_scored,
        truth.as_ref(),
    );
    let test_eval = evaluate::eval_set(
        &provisional,
        &table,
        &test_idx,
        &test_scored,
        truth.as_ref(),
    );
    let psi = evaluate::score_psi(&train_scored, &test_scored);
    artifact.metrics = serde_json::json!({
        "train": {"metrics": train_eval.metrics, "max_calibration_gap": train_eval.max_calibration_gap},
        "test": {
            "metrics": test_eval.metrics,
            "calibration": test_eval.calibration,
            "max_calibration_gap": test_eval.max_calibration_gap,
            "approval_rate": test_eval.approval_rate,
            "segments": test_eval.segments,
            "oracle": test_eval.oracle,
        },
        "score_psi_train_vs_test": psi,
    });
    let artifact = Artifact::from_bytes(&artifact.to_bytes()?)?;

    let challenger = if opts.challenger {
        let bar = progress_bar(1, "fitting challenger forest");
        let forest = challenger::Forest::fit(&table, &train_idx, opts.seed)?;
        let pd = forest.predict(&table, &test_idx);
        bar.finish_and_clear();
        let y: Vec<bool> = test_idx.iter().map(|&i| table.label[i]).collect();
        let m = metrics::metrics(&pd, &y);
        Some((pd, m))
    } else {
        None
    };
    Ok(TrainOutcome {
        artifact,
        table,
        train_idx,
        test_idx,
        split: split_desc,
        fitted,
        train_scored,
        test_scored,
        train_eval,
        test_eval,
        psi,
        challenger,
        dev_idx,
        cal_idx,
        recalibration,
        options: opts.clone(),
    })
}

/// Splits the training rows into development rows (fit) and the calibration slice: the latest
/// `share` of them by loan date, cut at a date (rows of the cut date go to the slice), like the
/// out-of-time split. No slice when `share` is 0 or the table has no dates.
pub fn recalibration_split(
    table: &Table,
    train: &[usize],
    share: f64,
) -> anyhow::Result<(Vec<usize>, Vec<usize>)> {
    if !(0.0..1.0).contains(&share) {
        bail!("the recalibration share must be at least 0 and below 1, got {share}");
    }
    let Some(dates) = table.dates.as_ref().filter(|_| share > 0.0) else {
        return Ok((train.to_vec(), Vec::new()));
    };
    let mut s: Vec<NaiveDate> = train.iter().map(|&i| dates[i]).collect();
    s.sort();
    let n = s.len();
    let cut = s[(((1.0 - share) * n as f64) as usize).min(n.saturating_sub(1))];
    let dev: Vec<usize> = train.iter().copied().filter(|&i| dates[i] < cut).collect();
    let cal: Vec<usize> = train.iter().copied().filter(|&i| dates[i] >= cut).collect();
    if dev.is_empty() || cal.is_empty() {
        bail!(
            "the recalibration cut {cut} leaves no development rows or no calibration rows \
             ({} and {} of {n} training rows); lower --recalibration-share or use 0",
            dev.len(),
            cal.len()
        );
    }
    Ok((dev, cal))
}

/// Evaluates an artifact on a dataset; writes `evaluation.md` (and plots) into `out`.
pub fn run_evaluate(
    model_dir: &Path,
    data_csv: &Path,
    out: &Path,
    truth: Option<&Path>,
) -> anyhow::Result<EvalSummary> {
    let artifact = Artifact::load(model_dir)?;
    let mut table = table::read_table(
        data_csv,
        &TableOptions {
            label: Some(artifact.label.clone()),
            ..TableOptions::default()
        },
    )?;
    if table.catalog {
        artifact.check_catalog()?;
    }
    peer::add_artifact_columns(&mut table, &artifact)?;
    let truth: Option<HashMap<String, dataset::TruePd>> =
        truth.map(dataset::read_truth_csv).transpose()?;
    let idx: Vec<usize> = (0..table.rows()).collect();
    let scored = evaluate::score_rows(&artifact, &table, &idx)?;
    let ev = evaluate::eval_set(&artifact, &table, &idx, &scored, truth.as_ref());
    std::fs::create_dir_all(out)?;
    let path = out.join("evaluation.md");
    report::write_evaluation(&artifact, data_csv, &table, &ev, &path)?;
    Ok(EvalSummary {
        rows: idx.len(),
        auc: ev.metrics.auc,
        max_calibration_gap: ev.max_calibration_gap,
        report: path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// A generic table whose score gets steeper and riskier over the calendar: a default's
    /// log-odds are `−3 + k·x` with `k` rising from 0.6 to 1.8 over 400 days and a level rising
    /// by 0.5 — the kind of drift the recalibration is for.
    fn drifting_table(with_dates: bool) -> Table {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let start = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let mut csv = String::from(if with_dates {
            "day,x,label\n"
        } else {
            "x,label\n"
        });
        for i in 0..12_000 {
            let t = f64::from(i) / 12_000.0;
            let x: f64 = rng.random_range(-2.0..2.0);
            let logit = -3.0 + 0.5 * t + (0.6 + 1.2 * t) * x;
            let y = rng.random::<f64>() < 1.0 / (1.0 + (-logit).exp());
            let date = start + chrono::Duration::days((t * 400.0) as i64);
            if with_dates {
                csv.push_str(&format!("{date},{x:.4},{}\n", u8::from(y)));
            } else {
                csv.push_str(&format!("{x:.4},{}\n", u8::from(y)));
            }
        }
        let opts = TableOptions {
            date_column: with_dates.then(|| "day".to_string()),
            ..TableOptions::default()
        };
        table::read_table_bytes(csv.as_bytes(), &opts, String::new()).unwrap()
    }

    fn options() -> TrainOptions {
        let mut o = TrainOptions::new("-".into(), "-".into(), "t".into());
        o.challenger = false;
        o.plots = false;
        o.fit.alphas = vec![1.0];
        o
    }

    #[test]
    fn the_latest_training_rows_refit_level_and_slope_and_the_points_stay_monotone() {
        let out = train_table(drifting_table(true), &options()).unwrap();
        let r = out.recalibration.clone().unwrap();
        // the slice is the latest 20 % of the training rows, cut at a date
        let dates = out.table.dates.as_ref().unwrap();
        let last_dev = out.dev_idx.iter().map(|&i| dates[i]).max().unwrap();
        let first_cal = out.cal_idx.iter().map(|&i| dates[i]).min().unwrap();
        assert!(last_dev < first_cal);
        let share = out.cal_idx.len() as f64 / out.train_idx.len() as f64;
        assert!((share - 0.2).abs() < 0.01, "{share}");
        // the drift makes the recent score steeper and riskier than the development fit says
        assert!(r.slope > 1.05, "{r:?}");
        assert!(r.max_gap_after <= r.max_gap_before, "{r:?}");
        assert!(
            (r.mean_pd_after - r.defaults as f64 / r.rows as f64).abs() < 1e-3,
            "{r:?}"
        );
        // one feature: the bins' points still fall as the risk rises
        let f = &out.artifact.features[0];
        assert!(f.coefficient < 0.0);
        let pts: Vec<f64> = f
            .bins
            .iter()
            .filter(|b| !matches!(b.rule, crate::scorecard::BinRule::Missing))
            .map(|b| b.points)
            .collect();
        assert!(pts.windows(2).all(|w| w[0] >= w[1]) || pts.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(
            out.artifact.training["recalibration"]["slope"].as_f64(),
            Some(r.slope)
        );
    }

    #[test]
    fn recalibration_is_off_at_share_zero_and_without_dates_and_checks_its_share() {
        let mut o = options();
        o.recalibration_share = 0.0;
        let out = train_table(drifting_table(true), &o).unwrap();
        assert!(out.recalibration.is_none() && out.cal_idx.is_empty());
        assert_eq!(out.dev_idx, out.train_idx);

        let out = train_table(drifting_table(false), &options()).unwrap();
        assert!(out.recalibration.is_none(), "no dates, nothing recent");

        let mut o = options();
        o.recalibration_share = 1.0;
        let e = train_table(drifting_table(true), &o).err().unwrap();
        assert!(e.to_string().contains("got 1"), "{e}");
    }
}
