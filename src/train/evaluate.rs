//! Evaluation of an artifact on a table: metrics, calibration, PSI, segments with approval rates
//! and adverse impact ratios, and the oracle comparison when true PDs are known.

use super::dataset::TruePd;
use super::metrics::{CalibrationBin, Metrics, calibration, metrics, psi};
use super::table::Table;
use crate::scorecard::Artifact;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Adverse impact ratios below this are flagged (the "four-fifths rule").
pub const AIR_FLAG: f64 = 0.8;

/// Scores of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub score: Vec<f64>,
    pub pd: Vec<f64>,
    pub grade: Vec<String>,
}

/// Scores rows `idx` of `table` with the artifact.
pub fn score_rows(a: &Artifact, table: &Table, idx: &[usize]) -> anyhow::Result<Scored> {
    let cols: Vec<usize> = a
        .features
        .iter()
        .map(|sf| {
            table
                .features
                .iter()
                .position(|c| c.name == sf.name)
                .ok_or_else(|| {
                    anyhow::anyhow!("the data has no column {:?}, which the model uses", sf.name)
                })
        })
        .collect::<anyhow::Result<_>>()?;
    let name_pos: HashMap<&str, usize> = a
        .features
        .iter()
        .zip(&cols)
        .map(|(f, &c)| (f.name.as_str(), c))
        .collect();
    let mut out = Scored {
        score: Vec::with_capacity(idx.len()),
        pd: Vec::with_capacity(idx.len()),
        grade: Vec::with_capacity(idx.len()),
    };
    for &r in idx {
        let res = a.score_with(|name| {
            name_pos
                .get(name)
                .map_or(crate::scorecard::Value::Missing, |&c| {
                    super::fit::cell(table, c, r)
                })
        });
        out.score.push(res.score);
        out.pd.push(res.pd);
        out.grade.push(res.grade);
    }
    Ok(out)
}

/// One segment's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentRow {
    pub column: String,
    pub value: String,
    pub metrics: Metrics,
    pub approval_rate: f64,
    pub adverse_impact_ratio: f64,
    pub flagged: bool,
}

/// Segment metrics on rows `idx` (positions into `table`), with `pd` aligned with `idx`.
pub fn segments(table: &Table, idx: &[usize], pd: &[f64], policy_max_pd: f64) -> Vec<SegmentRow> {
    let mut out = Vec::new();
    for (col, vals) in &table.segments {
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (k, &r) in idx.iter().enumerate() {
            groups.entry(vals[r].as_str()).or_default().push(k);
        }
        let rows: Vec<(String, Metrics, f64)> = groups
            .iter()
            .map(|(v, ks)| {
                let p: Vec<f64> = ks.iter().map(|&k| pd[k]).collect();
                let y: Vec<bool> = ks.iter().map(|&k| table.label[idx[k]]).collect();
                let approved = p.iter().filter(|&&x| x < policy_max_pd).count();
                (
                    (*v).to_string(),
                    metrics(&p, &y),
                    approved as f64 / p.len() as f64,
                )
            })
            .collect();
        let best = rows.iter().map(|r| r.2).fold(0.0f64, f64::max);
        for (value, m, rate) in rows {
            let air = if best > 0.0 { rate / best } else { 1.0 };
            out.push(SegmentRow {
                column: col.clone(),
                value,
                metrics: m,
                approval_rate: rate,
                adverse_impact_ratio: air,
                flagged: air < AIR_FLAG,
            });
        }
    }
    out
}

/// The oracle comparison on the rows with a known true PD.
///
/// Two oracles (`src/simulate/README.md`, "PD model"): the **hindsight** PD each outcome was
/// drawn from, which knows the health path during the term and whether the merchant fails in it
/// (future events, so no model at disbursement can match it), and the **ex-ante** PD, the
/// hindsight PD averaged over the futures possible on the disbursement day: the default
/// probability given everything true at disbursement, the best any model of that day could do.
/// The quality target compares the scorecard with the ex-ante oracle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Oracle {
    /// Rows with a hindsight PD.
    pub rows: usize,
    pub model_auc: Option<f64>,
    pub hindsight_auc: Option<f64>,
    /// Model AUC / hindsight AUC.
    pub hindsight_ratio: Option<f64>,
    /// Rows with an ex-ante PD (0 for truth files without one).
    pub ex_ante_rows: usize,
    /// The model's AUC on those rows.
    pub ex_ante_model_auc: Option<f64>,
    pub ex_ante_auc: Option<f64>,
    /// Model AUC / ex-ante AUC: the quality target's ratio.
    pub ex_ante_ratio: Option<f64>,
    /// The ex-ante PDs' own largest calibration gap by decile of the ex-ante PD: how close to
    /// 0 a perfect model gets on this many rows (sampling noise of the outcomes).
    pub ex_ante_max_calibration_gap: Option<f64>,
}

pub fn oracle(
    table: &Table,
    idx: &[usize],
    pd: &[f64],
    truth: &HashMap<String, TruePd>,
) -> Option<Oracle> {
    let ids = table.ids.as_ref()?;
    let (mut hp, mut mp, mut y) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ep, mut emp, mut ey) = (Vec::new(), Vec::new(), Vec::new());
    for (k, &r) in idx.iter().enumerate() {
        if let Some(t) = truth.get(&ids[r]) {
            hp.push(t.hindsight);
            mp.push(pd[k]);
            y.push(table.label[r]);
            if let Some(e) = t.ex_ante {
                ep.push(e);
                emp.push(pd[k]);
                ey.push(table.label[r]);
            }
        }
    }
    if hp.is_empty() {
        return None;
    }
    let ha = super::metrics::auc(&hp, &y);
    let ma = super::metrics::auc(&mp, &y);
    let (ea, ema, egap) = if ep.is_empty() {
        (None, None, None)
    } else {
        // deciles of the ex-ante PD itself: a higher PD is a lower "score"
        let neg: Vec<f64> = ep.iter().map(|p| -p).collect();
        let gap = calibration(&neg, &ep, &ey, 10)
            .iter()
            .map(|c| (c.observed - c.predicted).abs())
            .fold(0.0, f64::max);
        (
            super::metrics::auc(&ep, &ey),
            super::metrics::auc(&emp, &ey),
            Some(gap),
        )
    };
    Some(Oracle {
        rows: hp.len(),
        model_auc: ma,
        hindsight_auc: ha,
        hindsight_ratio: ha.zip(ma).map(|(o, m)| m / o),
        ex_ante_rows: ep.len(),
        ex_ante_model_auc: ema,
        ex_ante_auc: ea,
        ex_ante_ratio: ea.zip(ema).map(|(o, m)| m / o),
        ex_ante_max_calibration_gap: egap,
    })
}

/// Everything measured on one evaluation set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalSet {
    pub metrics: Metrics,
    pub calibration: Vec<CalibrationBin>,
    pub max_calibration_gap: f64,
    pub approval_rate: f64,
    pub grade_counts: BTreeMap<String, (usize, usize)>,
    pub segments: Vec<SegmentRow>,
    pub oracle: Option<Oracle>,
}

pub fn eval_set(
    a: &Artifact,
    table: &Table,
    idx: &[usize],
    scored: &Scored,
    truth: Option<&HashMap<String, TruePd>>,
) -> EvalSet {
    let y: Vec<bool> = idx.iter().map(|&i| table.label[i]).collect();
    let cal = calibration(&scored.score, &scored.pd, &y, 10);
    let gap = cal
        .iter()
        .map(|c| (c.observed - c.predicted).abs())
        .fold(0.0, f64::max);
    let mut grade_counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for g in &a.grade_bands {
        grade_counts.insert(g.grade.clone(), (0, 0));
    }
    for (g, &l) in scored.grade.iter().zip(&y) {
        let e = grade_counts.entry(g.clone()).or_default();
        e.0 += 1;
        e.1 += usize::from(l);
    }
    EvalSet {
        metrics: metrics(&scored.pd, &y),
        max_calibration_gap: gap,
        calibration: cal,
        approval_rate: scored.pd.iter().filter(|&&p| p < a.policy_max_pd).count() as f64
            / scored.pd.len().max(1) as f64,
        grade_counts,
        segments: segments(table, idx, &scored.pd, a.policy_max_pd),
        oracle: truth.and_then(|t| oracle(table, idx, &scored.pd, t)),
    }
}

/// PSI of the score between two sets.
pub fn score_psi(train: &Scored, test: &Scored) -> f64 {
    psi(&train.score, &test.score)
}
