//! End-to-end: simulate → dataset → train twice (byte-identical artifacts) → load (verified) →
//! scores equal, points add up, PD equals linfa-logistic's (recalibrated out of time) to 1e-9 →
//! evaluate.

use smecredit::scorecard::Artifact;
use smecredit::simulate::SimConfig;
use smecredit::train::{self, TrainOptions, fit, table};

#[test]
fn train_is_deterministic_and_the_artifact_scores_like_the_logistic_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("train.csv");
    let truth = dir.path().join("truth.csv");
    // 3,000 merchants: with continuous onboarding only the loans inside the 540-day window are
    // rows (1,500 merchants gave only 415)
    let cfg = SimConfig {
        merchants: 3_000,
        seed: 5,
        history_days: 540,
        ..SimConfig::default()
    };
    let summary = train::dataset::from_simulation(&cfg, &data, Some(&truth), false).unwrap();
    assert!(summary.rows > 500, "{summary:?}");

    let mut o = TrainOptions::new(data.clone(), dir.path().join("models"), "t1".into());
    o.truth = Some(truth.clone());
    o.created_at = Some("2026-11-21T00:00:00Z".into());
    o.plots = true;
    let s1 = train::run_train(&o).unwrap();
    let bytes1 = std::fs::read(s1.model_dir.join("model.json")).unwrap();
    let s2 = train::run_train(&o).unwrap();
    let bytes2 = std::fs::read(s2.model_dir.join("model.json")).unwrap();
    assert_eq!(
        bytes1, bytes2,
        "training twice gives byte-identical artifacts"
    );
    for f in [
        "report.md",
        "roc.png",
        "calibration.png",
        "score_distribution.png",
        "ks.png",
    ] {
        assert!(s1.model_dir.join(f).exists(), "{f}");
    }

    let a = Artifact::load(&s1.model_dir).unwrap();
    a.check_catalog().unwrap();
    // the peer-relative candidates were offered; an artifact needs format 2 only if it uses one,
    // and 3 only if one of them has history bands (the repeat share's)
    assert_eq!(
        a.training["peer_relative_candidates"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    let expected = match (a.uses_peer_groups(), a.uses_history_bands()) {
        (_, true) => 3,
        (true, false) => 2,
        (false, false) => 1,
    };
    assert_eq!(a.format_version, expected);
    let outcome = train::train_in_memory(&o).unwrap();
    assert_eq!(outcome.artifact, a, "in-memory artifact = loaded artifact");

    // PD of the artifact = linfa's P(default) on the same WoE rows, recalibrated, to 1e-9: the
    // scorecard is linfa's fit on the development rows, and its logit `z` is mapped to `a + b·z`
    // by linfa's (unpenalised) fit of the outcomes of the calibration slice on `z`
    let mut t = table::read_table(&data, &table::TableOptions::default()).unwrap();
    train::peer::add_artifact_columns(&mut t, &a).unwrap();
    let r = outcome
        .recalibration
        .clone()
        .expect("recalibrated by default");
    assert!(!outcome.cal_idx.is_empty() && r.rows == outcome.cal_idx.len());
    assert_eq!(
        outcome.dev_idx.len() + outcome.cal_idx.len(),
        outcome.train_idx.len()
    );
    let x_dev = fit::artifact_woe_matrix(&a, &t, &outcome.dev_idx).unwrap();
    let y_dev: Vec<bool> = outcome.dev_idx.iter().map(|&i| t.label[i]).collect();
    let lf = fit::fit_logistic(&x_dev, &y_dev, outcome.fitted.alpha, o.fit.max_iterations).unwrap();
    assert!((r.intercept + r.slope * lf.intercept - a.intercept).abs() < 1e-12);
    for (f, w) in a.features.iter().zip(&lf.params) {
        assert!((r.slope * w - f.coefficient).abs() < 1e-12, "{}", f.name);
    }
    let x_cal = fit::artifact_woe_matrix(&a, &t, &outcome.cal_idx).unwrap();
    let y_cal: Vec<bool> = outcome.cal_idx.iter().map(|&i| t.label[i]).collect();
    let logit = |p: f64| (p / (1.0 - p)).ln();
    let z_cal: Vec<f64> = lf.linfa_pd(&x_cal).into_iter().map(logit).collect();
    let z_cal = ndarray::Array2::from_shape_vec((z_cal.len(), 1), z_cal).unwrap();
    let rf = fit::fit_logistic(&z_cal, &y_cal, 0.0, 1000).unwrap();
    assert!((rf.intercept - r.intercept).abs() < 1e-6 && (rf.params[0] - r.slope).abs() < 1e-6);
    let x = fit::artifact_woe_matrix(&a, &t, &outcome.train_idx).unwrap();
    let linfa_pd: Vec<f64> = lf
        .linfa_pd(&x)
        .into_iter()
        .map(|p| 1.0 / (1.0 + (-(r.intercept + r.slope * logit(p))).exp()))
        .collect();
    let rows = train::dataset::read_dataset_csv(&data).unwrap();
    for (k, &i) in outcome.train_idx.iter().enumerate() {
        // the service's scoring reads peer-relative features from the catalog values and the
        // merchant's category: it must give what training computed from its own columns
        let r = a.score_row(&rows[i].features, Some(&rows[i].category));
        assert!(
            (r.pd - linfa_pd[k]).abs() < 1e-9,
            "{} vs {}",
            r.pd,
            linfa_pd[k]
        );
        let sum: f64 = r.features.iter().map(|p| p.points).sum();
        assert_eq!(sum, r.score, "points add up to the score exactly");
        assert!((a.scaling.pd_of_score(r.score) - r.pd).abs() < 1e-9);
        assert_eq!(r.pd, outcome.train_scored.pd[k]);
    }

    // evaluate any artifact on any dataset
    let e =
        train::run_evaluate(&s1.model_dir, &data, &dir.path().join("eval"), Some(&truth)).unwrap();
    assert_eq!(e.rows, summary.rows);
    assert!(e.report.exists());
}
