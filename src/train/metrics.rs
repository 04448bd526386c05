//! Discrimination and calibration metrics. `pd` = predicted probability of default, `y` = defaulted.

use serde::Serialize;

/// AUC = P(pd of a random default > pd of a random non-default), ties counting ½ (Mann–Whitney
/// with mid-ranks). `None` when one class is absent.
pub fn auc(pd: &[f64], y: &[bool]) -> Option<f64> {
    let n = pd.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| pd[a].total_cmp(&pd[b]));
    let (mut rank_sum_pos, mut npos) = (0.0f64, 0u64);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && pd[idx[j + 1]] == pd[idx[i]] {
            j += 1;
        }
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if y[k] {
                rank_sum_pos += mid_rank;
                npos += 1;
            }
        }
        i = j + 1;
    }
    let nneg = n as u64 - npos;
    if npos == 0 || nneg == 0 {
        return None;
    }
    let (p, q) = (npos as f64, nneg as f64);
    Some((rank_sum_pos - p * (p + 1.0) / 2.0) / (p * q))
}

/// Kolmogorov–Smirnov: the largest gap between the cumulative distributions of pd among defaults
/// and among non-defaults, evaluated between distinct pd values.
pub fn ks(pd: &[f64], y: &[bool]) -> Option<f64> {
    let npos = y.iter().filter(|&&v| v).count();
    let nneg = y.len() - npos;
    if npos == 0 || nneg == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..pd.len()).collect();
    idx.sort_by(|&a, &b| pd[a].total_cmp(&pd[b]));
    let (mut cp, mut cn, mut best) = (0usize, 0usize, 0.0f64);
    let mut i = 0;
    while i < idx.len() {
        let v = pd[idx[i]];
        while i < idx.len() && pd[idx[i]] == v {
            if y[idx[i]] {
                cp += 1;
            } else {
                cn += 1;
            }
            i += 1;
        }
        let gap = (cn as f64 / nneg as f64 - cp as f64 / npos as f64).abs();
        best = best.max(gap);
    }
    Some(best)
}

/// Mean squared error of the PD against the 0/1 outcome.
pub fn brier(pd: &[f64], y: &[bool]) -> f64 {
    pd.iter()
        .zip(y)
        .map(|(p, &t)| (p - f64::from(u8::from(t))).powi(2))
        .sum::<f64>()
        / pd.len().max(1) as f64
}

/// Mean negative log-likelihood (natural log), PDs clipped to `[1e-15, 1 − 1e-15]`.
pub fn log_loss(pd: &[f64], y: &[bool]) -> f64 {
    pd.iter()
        .zip(y)
        .map(|(&p, &t)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            if t { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum::<f64>()
        / pd.len().max(1) as f64
}

/// One calibration group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationBin {
    pub decile: usize,
    pub rows: usize,
    pub min_score: f64,
    pub max_score: f64,
    pub predicted: f64,
    pub observed: f64,
}

/// Calibration by score decile: rows sorted by score descending (decile 1 = best scores), split
/// into 10 groups of sizes differing by at most one (group `k` = sorted positions
/// `⌊k·n/10⌋..⌊(k+1)·n/10⌋`).
pub fn calibration(score: &[f64], pd: &[f64], y: &[bool], groups: usize) -> Vec<CalibrationBin> {
    let n = score.len();
    let mut idx: Vec<usize> = (0..n).collect();
    // best (highest) scores first; ties by pd then index for determinism
    idx.sort_by(|&a, &b| {
        score[b]
            .total_cmp(&score[a])
            .then(pd[a].total_cmp(&pd[b]))
            .then(a.cmp(&b))
    });
    (0..groups)
        .filter_map(|k| {
            let (s, e) = (k * n / groups, (k + 1) * n / groups);
            (e > s).then(|| {
                let part = &idx[s..e];
                let m = part.len() as f64;
                CalibrationBin {
                    decile: k + 1,
                    rows: part.len(),
                    min_score: part.iter().map(|&i| score[i]).fold(f64::INFINITY, f64::min),
                    max_score: part
                        .iter()
                        .map(|&i| score[i])
                        .fold(f64::NEG_INFINITY, f64::max),
                    predicted: part.iter().map(|&i| pd[i]).sum::<f64>() / m,
                    observed: part.iter().filter(|&&i| y[i]).count() as f64 / m,
                }
            })
        })
        .collect()
}

/// Population stability index of `actual` against `expected`, over the deciles of `expected`
/// (cut points at its sorted positions `⌊k·n/10⌋`, bins `lower ≤ x < upper`). Shares are floored at
/// 1e-4 so an empty bin stays finite. `PSI = Σ (a − e) · ln(a / e)`.
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    let mut s: Vec<f64> = expected.to_vec();
    s.sort_by(f64::total_cmp);
    let mut cuts: Vec<f64> = (1..10).map(|k| s[k * s.len() / 10]).collect();
    cuts.dedup();
    let share = |xs: &[f64]| {
        let mut c = vec![0usize; cuts.len() + 1];
        for &x in xs {
            c[cuts.partition_point(|&cut| cut <= x)] += 1;
        }
        c.iter()
            .map(|&k| (k as f64 / xs.len().max(1) as f64).max(1e-4))
            .collect::<Vec<_>>()
    };
    let (e, a) = (share(expected), share(actual));
    e.iter().zip(&a).map(|(e, a)| (a - e) * (a / e).ln()).sum()
}

/// The headline metrics of a set of predictions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub rows: usize,
    pub defaults: usize,
    pub default_rate: f64,
    pub mean_pd: f64,
    pub auc: Option<f64>,
    pub gini: Option<f64>,
    pub ks: Option<f64>,
    pub brier: f64,
    pub log_loss: f64,
}

pub fn metrics(pd: &[f64], y: &[bool]) -> Metrics {
    let a = auc(pd, y);
    let d = y.iter().filter(|&&v| v).count();
    Metrics {
        rows: pd.len(),
        defaults: d,
        default_rate: d as f64 / pd.len().max(1) as f64,
        mean_pd: pd.iter().sum::<f64>() / pd.len().max(1) as f64,
        auc: a,
        gini: a.map(|a| 2.0 * a - 1.0),
        ks: ks(pd, y),
        brier: brier(pd, y),
        log_loss: log_loss(pd, y),
    }
}

/// ROC curve points (false positive rate, true positive rate), thresholds at distinct pd values
/// from high to low.
pub fn roc(pd: &[f64], y: &[bool]) -> Vec<(f64, f64)> {
    let npos = y.iter().filter(|&&v| v).count().max(1) as f64;
    let nneg = (y.len() - y.iter().filter(|&&v| v).count()).max(1) as f64;
    let mut idx: Vec<usize> = (0..pd.len()).collect();
    idx.sort_by(|&a, &b| pd[b].total_cmp(&pd[a]));
    let mut pts = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let v = pd[idx[i]];
        while i < idx.len() && pd[idx[i]] == v {
            if y[idx[i]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            i += 1;
        }
        pts.push((fp / nneg, tp / npos));
    }
    pts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_and_ks_by_hand() {
        // pd:  0.1 0.2 0.3 0.4 ; y: 0 1 0 1
        // pairs (pos, neg): (0.2,0.1)=1 (0.2,0.3)=0 (0.4,0.1)=1 (0.4,0.3)=1 → AUC = 3/4
        let pd = [0.1, 0.2, 0.3, 0.4];
        let y = [false, true, false, true];
        assert_eq!(auc(&pd, &y), Some(0.75));
        // KS: after 0.1: neg 1/2, pos 0 → 0.5; after 0.2: 1/2 vs 1/2 → 0; after 0.3: 1 vs 1/2 → 0.5
        assert_eq!(ks(&pd, &y), Some(0.5));
        // ties count ½: pos at 0.2, neg at 0.2 and 0.1 → (1 + ½)/2 = 0.75
        assert_eq!(auc(&[0.2, 0.2, 0.1], &[true, false, false]), Some(0.75));
        assert_eq!(auc(&[0.1, 0.2], &[true, true]), None);
        // perfectly inverted
        assert_eq!(auc(&[0.9, 0.1], &[false, true]), Some(0.0));
    }

    #[test]
    fn brier_and_log_loss_by_hand() {
        // Brier = ((0.2−0)² + (0.6−1)²)/2 = (0.04 + 0.16)/2 = 0.1
        assert!((brier(&[0.2, 0.6], &[false, true]) - 0.1).abs() < 1e-15);
        // log-loss = (−ln 0.8 − ln 0.6)/2 = (0.223144 + 0.510826)/2 = 0.366985
        assert!((log_loss(&[0.2, 0.6], &[false, true]) - 0.366985).abs() < 1e-6);
        assert!(log_loss(&[0.0], &[true]).is_finite());
    }

    #[test]
    fn psi_by_hand() {
        // expected = 0..100 → deciles of 10 values each, cuts 10, 20, …, 90
        let e: Vec<f64> = (0..100).map(f64::from).collect();
        assert!(psi(&e, &e).abs() < 1e-15);
        // actual: 20 values in the first decile, 0 in the second, 10 in each other
        let mut a: Vec<f64> = (0..20).map(|i| f64::from(i) * 0.5).collect();
        a.extend((20..100).map(f64::from));
        // shares: first 0.2 vs 0.1, second 1e-4 vs 0.1, others equal
        //  (0.2−0.1)·ln 2 + (1e-4 − 0.1)·ln(1e-3) = 0.0693147 + 0.6900847 = 0.7593995
        let want = 0.1 * 2f64.ln() + (1e-4 - 0.1) * (1e-4f64 / 0.1).ln();
        assert!((psi(&e, &a) - want).abs() < 1e-12, "{}", psi(&e, &a));
        assert!((want - 0.7593995).abs() < 1e-6);
    }

    #[test]
    fn calibration_groups_are_even_and_ordered() {
        let score: Vec<f64> = (0..25).map(f64::from).collect();
        let pd: Vec<f64> = score.iter().map(|s| 0.5 - s / 100.0).collect();
        let y: Vec<bool> = (0..25).map(|i| i < 5).collect();
        let c = calibration(&score, &pd, &y, 10);
        assert_eq!(c.len(), 10);
        assert_eq!(c.iter().map(|b| b.rows).sum::<usize>(), 25);
        assert!(c.iter().all(|b| b.rows == 2 || b.rows == 3));
        assert_eq!(c[0].max_score, 24.0, "decile 1 holds the best scores");
        assert_eq!(c[9].observed, 1.0);
        assert!(c.windows(2).all(|w| w[0].predicted < w[1].predicted));
    }
}
