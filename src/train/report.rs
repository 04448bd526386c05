//! `report.md` (training) and `evaluation.md` (evaluate): every number is computed from the
//! outcome passed in; nothing is typed by hand.

use super::TrainOutcome;
use super::evaluate::{EvalSet, SegmentRow};
use super::table::Table;
use crate::scorecard::{Artifact, BinRule};
use std::fmt::Write as _;
use std::path::Path;

fn pct(x: f64) -> String {
    format!("{:.2} %", 100.0 * x)
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "n/a".to_string(), |v| format!("{v:.digits$}"))
}

fn metrics_table(out: &mut String, rows: &[(&str, &super::metrics::Metrics)]) {
    out.push_str("| set | rows | defaults | default rate | mean PD | AUC | Gini | KS | Brier | log-loss |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for (name, m) in rows {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {:.5} | {:.5} |",
            m.rows,
            m.defaults,
            pct(m.default_rate),
            pct(m.mean_pd),
            opt(m.auc, 4),
            opt(m.gini, 4),
            opt(m.ks, 4),
            m.brier,
            m.log_loss
        );
    }
}

fn calibration_table(out: &mut String, ev: &EvalSet) {
    out.push_str("| decile (1 = best scores) | rows | score range | predicted PD | observed default rate | gap |\n|---|---|---|---|---|---|\n");
    for c in &ev.calibration {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} – {:.1} | {} | {} | {:+.2} pp |",
            c.decile,
            c.rows,
            c.min_score,
            c.max_score,
            pct(c.predicted),
            pct(c.observed),
            100.0 * (c.observed - c.predicted)
        );
    }
    let _ = writeln!(
        out,
        "\nLargest |observed − predicted| over the deciles: **{:.2} pp**.\n",
        100.0 * ev.max_calibration_gap
    );
}

fn segments_table(out: &mut String, segs: &[SegmentRow], policy: f64) {
    let _ = writeln!(
        out,
        "Approval = PD < {} (policy cut-off). Adverse impact ratio (AIR) = the segment's approval rate / the highest approval rate among the segments of the same column; below 0.8 it is flagged ⚠.\n",
        pct(policy)
    );
    out.push_str("| column | segment | rows | defaults | default rate | mean PD | AUC | KS | Brier | log-loss | approval rate | AIR |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for s in segs {
        let m = &s.metrics;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.5} | {:.5} | {} | {:.3}{} |",
            s.column,
            s.value,
            m.rows,
            m.defaults,
            pct(m.default_rate),
            pct(m.mean_pd),
            opt(m.auc, 4),
            opt(m.ks, 4),
            m.brier,
            m.log_loss,
            pct(s.approval_rate),
            s.adverse_impact_ratio,
            if s.flagged { " ⚠" } else { "" }
        );
    }
    out.push('\n');
}

fn grades_table(out: &mut String, a: &Artifact, ev: &EvalSet) {
    out.push_str("| grade | PD band | score band | rows | share | observed default rate |\n|---|---|---|---|---|---|\n");
    let total: usize = ev.grade_counts.values().map(|c| c.0).sum();
    for g in &a.grade_bands {
        let (n, d) = ev.grade_counts.get(&g.grade).copied().unwrap_or((0, 0));
        let hi = if g.min_pd > 0.0 {
            format!("{:.1}", a.scaling.score_of_pd(g.min_pd))
        } else {
            "∞".to_string()
        };
        let lo = if g.max_pd < 1.0 {
            format!("{:.1}", a.scaling.score_of_pd(g.max_pd))
        } else {
            "−∞".to_string()
        };
        let _ = writeln!(
            out,
            "| {} | [{}, {}) | ({lo}, {hi}] | {n} | {} | {} |",
            g.grade,
            pct(g.min_pd),
            pct(g.max_pd),
            pct(n as f64 / total.max(1) as f64),
            if n > 0 {
                pct(d as f64 / n as f64)
            } else {
                "n/a".into()
            }
        );
    }
    out.push('\n');
}

fn bins_section(out: &mut String, a: &Artifact) {
    for f in &a.features {
        let _ = writeln!(
            out,
            "#### `{}` ({}, {}; IV {:.4}, coefficient {:.4})\n",
            f.name, f.kind, f.direction, f.information_value, f.coefficient
        );
        out.push_str(
            "| bin | rows | defaults | default rate | WoE | points |\n|---|---|---|---|---|---|\n",
        );
        for b in &f.bins {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.4} | {:.2} |",
                b.label.replace('|', "\\|"),
                b.count,
                b.defaults,
                if b.count > 0 {
                    pct(b.defaults as f64 / b.count as f64)
                } else {
                    "n/a".into()
                },
                b.woe,
                b.points
            );
        }
        out.push('\n');
    }
}

fn oracle_section(out: &mut String, ev: &EvalSet) {
    let Some(o) = &ev.oracle else { return };
    let _ = writeln!(
        out,
        "Oracles on the {} test loans with a known true PD (the simulator's; see `src/simulate/README.md`, \"PD model\"):\n",
        o.rows
    );
    out.push_str("| oracle | what it knows | loans | oracle AUC | scorecard AUC | scorecard / oracle |\n|---|---|---|---|---|---|\n");
    if o.ex_ante_rows > 0 {
        let _ = writeln!(
            out,
            "| **ex-ante PD** (the target's oracle) | everything true on the disbursement day: health, drift, term, the loan's own ε; the futures averaged | {} | {} | {} | **{}** (target ≥ 0.95: {}) |",
            o.ex_ante_rows,
            opt(o.ex_ante_auc, 4),
            opt(o.ex_ante_model_auc, 4),
            opt(o.ex_ante_ratio, 4),
            match o.ex_ante_ratio {
                Some(r) if r >= 0.95 => "met",
                Some(_) => "**missed**",
                None => "n/a",
            }
        );
    }
    let _ = writeln!(
        out,
        "| hindsight PD (each outcome was drawn from it) | also the health path during the term and whether the merchant fails in it | {} | {} | {} | {} |\n",
        o.rows,
        opt(o.hindsight_auc, 4),
        opt(o.model_auc, 4),
        opt(o.hindsight_ratio, 4)
    );
    if let Some(g) = o.ex_ante_max_calibration_gap {
        let _ = writeln!(
            out,
            "The ex-ante PDs' own largest calibration gap by decile of the ex-ante PD on these loans: {:.2} pp (what sampling noise of the outcomes leaves even for a perfect model).\n",
            100.0 * g
        );
    }
}

/// Writes `report.md` next to the artifact.
pub fn write_report(o: &TrainOutcome, dir: &Path, plots: bool) -> anyhow::Result<()> {
    let a = &o.artifact;
    let opts = &o.options;
    let mut s = String::new();
    let _ = writeln!(s, "# Scorecard `{}`\n", a.model_version);
    let _ = writeln!(
        s,
        "Artifact `model.json`, sha256 `{}` (format {}, feature catalog `{}`, created {}). Everything below was computed by `smecredit::train::run_train` from the data; nothing was typed in.\n",
        a.artifact_sha256, a.format_version, a.feature_catalog_version, a.created_at
    );
    if let Some(r) = &opts.reproduce {
        let _ = writeln!(s, "## Reproduce\n\n{r}\n");
    }
    s.push_str("## Data\n\n");
    let _ = writeln!(
        s,
        "* file `{}`, sha256 `{}`\n* {} rows, default rate {}, dates {} to {}\n* split: {}\n* train {} rows ({} defaults), test {} rows ({} defaults)\n",
        opts.data.display(),
        a.data.sha256,
        a.data.rows,
        pct(a.data.default_rate),
        a.data.first_date.as_deref().unwrap_or("n/a"),
        a.data.last_date.as_deref().unwrap_or("n/a"),
        o.split,
        o.train_idx.len(),
        o.train_eval.metrics.defaults,
        o.test_idx.len(),
        o.test_eval.metrics.defaults
    );

    match &o.recalibration {
        Some(r) => {
            let _ = writeln!(
                s,
                "* the scorecard is fitted on the {} development rows, the training rows before {}; the latest {} training rows ({} % of them by loan date, {} to {}, {} defaults) are the calibration slice of the out-of-time recalibration below\n",
                o.dev_idx.len(),
                r.first_date.as_deref().unwrap_or("n/a"),
                r.rows,
                100.0 * r.share,
                r.first_date.as_deref().unwrap_or("n/a"),
                r.last_date.as_deref().unwrap_or("n/a"),
                r.defaults
            );
        }
        None => s.push_str(
            "* no out-of-time recalibration: the scorecard is fitted on all training rows\n\n",
        ),
    }

    s.push_str("## Headline (test set)\n\n");
    let mut rows: Vec<(&str, &super::metrics::Metrics)> = vec![
        ("scorecard, train", &o.train_eval.metrics),
        ("scorecard, test", &o.test_eval.metrics),
    ];
    if let Some((_, m)) = &o.challenger {
        rows.push(("challenger forest, test", m));
    }
    metrics_table(&mut s, &rows);
    let _ = writeln!(
        s,
        "\nPSI of the score, train → test (train deciles): **{:.4}** (< 0.1 stable, 0.1–0.25 moderate shift, > 0.25 major shift).\n\nApproval rate at the policy cut-off (PD < {}) on the test set: {}.\n",
        o.psi,
        pct(a.policy_max_pd),
        pct(o.test_eval.approval_rate)
    );
    oracle_section(&mut s, &o.test_eval);
    if let (Some(tr), Some(te)) = (&o.train_eval.oracle, &o.test_eval.oracle)
        && tr.ex_ante_rows > 0
    {
        let _ = writeln!(
            s,
            "On the {} training loans the ex-ante oracle's AUC is {} and the scorecard's {} (ratio {}), against {} and {} on the test loans: how well even a perfect model of the disbursement day can separate the loans differs between the two windows.\n",
            tr.ex_ante_rows,
            opt(tr.ex_ante_auc, 4),
            opt(tr.ex_ante_model_auc, 4),
            opt(tr.ex_ante_ratio, 4),
            opt(te.ex_ante_auc, 4),
            opt(te.ex_ante_model_auc, 4)
        );
    }
    if let Some((_, m)) = &o.challenger {
        let _ = writeln!(
            s,
            "Challenger: a random forest of {} `linfa-trees` decision trees (depth ≤ {}, bootstrap rows, random feature subsets, balanced class weights, leaf default rates as PD) on the raw features, trained on the same train rows, evaluated on the same test rows: AUC {} vs the scorecard's {}.\n",
            super::challenger::TREES,
            super::challenger::MAX_DEPTH,
            opt(m.auc, 4),
            opt(o.test_eval.metrics.auc, 4)
        );
    }
    if plots {
        s.push_str("![ROC](roc.png)\n![Calibration](calibration.png)\n![Score distribution](score_distribution.png)\n![KS](ks.png)\n\n");
    }

    s.push_str("## Calibration by score decile (test)\n\n");
    calibration_table(&mut s, &o.test_eval);

    if let Some(r) = &o.recalibration {
        s.push_str("## Out-of-time recalibration\n\n");
        let _ = writeln!(
            s,
            "Bins, WoE, selection, α and the logistic regression were fitted on the development rows; then `logit' = a + b·logit` was fitted (`linfa-logistic`, no penalty) on the calibration slice, the latest training rows before the test window: a = {:.6}, b = {:.6}. Every coefficient is multiplied by b and the intercept becomes a + b·β₀, so the points stay additive and monotone and the ranking (AUC) is unchanged. The slice was chosen by its share of the training rows, not by test results.\n",
            r.intercept, r.slope
        );
        s.push_str("| calibration slice | rows | defaults | observed default rate | AUC | mean PD | largest decile gap |\n|---|---|---|---|---|---|---|\n");
        let rate = r.defaults as f64 / r.rows.max(1) as f64;
        let _ = writeln!(
            s,
            "| development fit (out of sample) | {} | {} | {} | {} | {} | {:.2} pp |",
            r.rows,
            r.defaults,
            pct(rate),
            opt(r.auc, 4),
            pct(r.mean_pd_before),
            100.0 * r.max_gap_before
        );
        let _ = writeln!(
            s,
            "| after recalibration (in sample for a and b) | {} | {} | {} | {} | {} | {:.2} pp |\n",
            r.rows,
            r.defaults,
            pct(rate),
            opt(r.auc, 4),
            pct(r.mean_pd_after),
            100.0 * r.max_gap_after
        );
    }

    if a.uses_peer_groups() {
        s.push_str("## Segments (test) — reported on; never model inputs (category only as the peer group of the peer-relative features: it scores no points of its own)\n\n");
    } else {
        s.push_str("## Segments (test) — reported on, never model inputs\n\n");
    }
    segments_table(&mut s, &o.test_eval.segments, a.policy_max_pd);

    s.push_str("## Grades\n\n");
    let _ = writeln!(
        s,
        "Scaling: {} points at {}:1 good:bad odds, {} points to double the odds (factor {:.6}, offset {:.6}). Grades by PD band (test set):\n",
        a.scaling.base_score,
        a.scaling.base_odds,
        a.scaling.pdo,
        a.scaling.factor,
        a.scaling.offset
    );
    grades_table(&mut s, a, &o.test_eval);

    s.push_str("## Model\n\n");
    let _ = writeln!(
        s,
        "Logistic regression on WoE values (`linfa-logistic`), intercept {:.6}{}, L2 strength α = {} chosen by {}-fold cross-validation on the {} rows (mean AUC per α):\n",
        a.intercept,
        if o.recalibration.is_some() {
            " after recalibration (the coefficients below too)"
        } else {
            ""
        },
        o.fitted.alpha,
        opts.fit.cv_folds,
        if o.recalibration.is_some() {
            "development"
        } else {
            "training"
        }
    );
    s.push_str("| α | mean CV AUC | fold AUCs |\n|---|---|---|\n");
    for c in &o.fitted.cv {
        let _ = writeln!(
            s,
            "| {} | {:.5} | {} |",
            c.alpha,
            c.mean_auc,
            c.fold_aucs
                .iter()
                .map(|x| format!("{x:.4}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    s.push_str("\n### Candidate features by information value (rows the scorecard was fitted on)\n\n| feature | IV | value bins | in model | reason if dropped |\n|---|---|---|---|---|\n");
    let mut cands: Vec<&crate::scorecard::ScoreFeature> = o.fitted.candidates.iter().collect();
    cands.sort_by(|x, y| y.information_value.total_cmp(&x.information_value));
    for c in cands {
        let used = a.features.iter().any(|f| f.name == c.name);
        let reason = a
            .dropped_features
            .iter()
            .find(|d| d.name == c.name)
            .map_or(String::new(), |d| d.reason.clone());
        let _ = writeln!(
            s,
            "| `{}` | {:.4} | {} | {} | {} |",
            c.name,
            c.information_value,
            c.bins
                .iter()
                .filter(|b| !matches!(b.rule, BinRule::Missing))
                .count(),
            if used { "yes" } else { "no" },
            reason
        );
    }
    peers_section(&mut s, a, &o.fitted.candidates);
    s.push_str("\n### Bins, WoE and points\n\nPoints of a feature's bins add up, over the model features, to the score exactly (the intercept and base score are spread evenly over the features).\n\n");
    bins_section(&mut s, a);
    std::fs::write(dir.join("report.md"), s)?;
    Ok(())
}

/// The peer-relative features of the model: what each reads and its reference per category.
fn peers_section(s: &mut String, a: &Artifact, candidates: &[crate::scorecard::ScoreFeature]) {
    let peers: Vec<&crate::scorecard::ScoreFeature> =
        a.features.iter().filter(|f| f.relative.is_some()).collect();
    let offered = candidates
        .iter()
        .filter(|c| c.name.ends_with("_vs_category"))
        .count();
    if offered == 0 {
        return;
    }
    let _ = write!(
        s,
        "\n### Peer-relative features\n\n{offered} candidates read a catalog rate relative to the merchant's category (`src/train/peer.rs`): `scale(value) − reference`, the reference being the median of the scaled value among the development rows of that category. The category is only the peer group: a merchant typical of its category reads 0 whatever the category. {} of them are in the model.\n",
        peers.len()
    );
    for f in peers {
        let Some(r) = &f.relative else { continue };
        let scale = match r.scale {
            crate::scorecard::PeerScale::Logit => {
                format!(
                    "a logit scale (the share clamped to [{}, 1 − {}])",
                    r.floor, r.floor
                )
            }
            crate::scorecard::PeerScale::Log => format!("a log scale (from {})", r.floor),
        };
        let bands = if r.history_bands.is_empty() {
            String::new()
        } else {
            format!(
                " Its peers are also grouped by days of history (cuts at {} days): a merchant is read against the merchants of its category that have traded about as long, and against its whole category where that band had fewer than {} development rows (`category/band` rows below).",
                r.history_bands
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                super::peer::MIN_BAND_ROWS
            )
        };
        let _ = write!(
            s,
            "\n`{}` reads `{}` on {scale}.{bands} References (typical value of the peers in brackets):\n\n| peer group | reference | typical `{}` |\n|---|---|---|\n",
            f.name, r.source, r.source
        );
        for (g, v) in r
            .references
            .iter()
            .map(|(g, v)| (g.as_str(), *v))
            .chain(std::iter::once(("(any other)", r.default_reference)))
        {
            let _ = writeln!(s, "| {g} | {v:.4} | {:.4} |", r.scale.invert(v));
        }
    }
}

/// Writes `evaluation.md` for `run_evaluate`.
pub fn write_evaluation(
    a: &Artifact,
    data: &Path,
    table: &Table,
    ev: &EvalSet,
    path: &Path,
) -> anyhow::Result<()> {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Evaluation of `{}` on `{}`\n\nArtifact sha256 `{}` (verified on load); data sha256 `{}`, {} rows.\n",
        a.model_version,
        data.display(),
        a.artifact_sha256,
        table.sha256,
        table.rows()
    );
    metrics_table(&mut s, &[("all rows", &ev.metrics)]);
    s.push('\n');
    oracle_section(&mut s, ev);
    s.push_str("## Calibration by score decile\n\n");
    calibration_table(&mut s, ev);
    s.push_str("## Segments\n\n");
    segments_table(&mut s, &ev.segments, a.policy_max_pd);
    s.push_str("## Grades\n\n");
    grades_table(&mut s, a, ev);
    std::fs::write(path, s)?;
    Ok(())
}
