//! A simulated population goes through `smecredit import` and comes back whole.

use crate::helpers::{Backend, spawn_app};
use crate::on_both_backends;
use serde_json::Value;
use smecredit::domain::MerchantId;
use smecredit::features::{MerchantProfile, as_of_start_of_day, compute, compute_history};
use smecredit::ingest::import::{ImportOptions, import_file};
use smecredit::simulate::{SimConfig, run};
use std::collections::HashMap;

/// Per merchant: payment count and net sales in fen, read straight from payments.csv.
fn csv_totals(path: &std::path::Path) -> HashMap<String, (i64, i64)> {
    let mut totals: HashMap<String, (i64, i64)> = HashMap::new();
    let mut reader = csv::Reader::from_path(path).unwrap();
    for record in reader.records() {
        let r = record.unwrap();
        let (whole, cents) = r[3].split_once('.').unwrap();
        let fen = whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap();
        let signed = if &r[5] == "sale" { fen } else { -fen };
        let t = totals.entry(r[0].to_string()).or_default();
        t.0 += 1;
        t.1 += signed;
    }
    totals
}

async fn a_simulated_population_imports_with_equal_counts_and_sums(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        merchants: 12,
        seed: 7,
        ..SimConfig::default()
    };
    let summary = run(&config, dir.path(), false).unwrap();
    let options = ImportOptions::default();
    for file in ["merchants.csv", "payments.csv", "loans.csv"] {
        let report = import_file(&app.store, &dir.path().join(file), &options)
            .await
            .unwrap();
        assert_eq!(report.skipped, 0, "{}", report.summary());
    }
    let totals = csv_totals(&dir.path().join("payments.csv"));
    assert_eq!(
        totals.values().map(|t| t.0 as u64).sum::<u64>(),
        summary.payments
    );
    for (merchant, (count, net_fen)) in &totals {
        let m: Value = app
            .get(&format!("/v1/merchants/{merchant}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(m["history"]["payment_count"], *count, "{merchant}");
        let expected = format!("{}.{:02}", net_fen / 100, (net_fen % 100).abs());
        let expected = if *net_fen < 0 && net_fen / 100 == 0 {
            format!("-{expected}")
        } else {
            expected
        };
        assert_eq!(m["history"]["net_sales"]["amount"], expected, "{merchant}");
    }
    let mut loans = 0;
    for merchant in totals.keys() {
        let list: Value = app
            .get(&format!("/v1/merchants/{merchant}/loans"))
            .await
            .json()
            .await
            .unwrap();
        loans += list["loans"].as_array().unwrap().len() as u64;
    }
    assert_eq!(loans, summary.loans);
}

/// The training table from the store is byte for byte the one built straight from the
/// simulator's files: the service and the offline pipeline compute the same point-in-time
/// features and labels.
async fn the_dataset_from_the_store_equals_the_dataset_from_the_files(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        merchants: 15,
        seed: 11,
        ..SimConfig::default()
    };
    run(&config, dir.path(), false).unwrap();
    let options = ImportOptions::default();
    for file in ["merchants.csv", "payments.csv", "loans.csv"] {
        import_file(&app.store, &dir.path().join(file), &options)
            .await
            .unwrap();
    }
    let from_store = dir.path().join("from_store.csv");
    let from_files = dir.path().join("from_files.csv");
    let as_of = config.end;
    let summary =
        smecredit::train::from_store::dataset_from_store(&app.store, &from_store, as_of, false)
            .await
            .unwrap();
    smecredit::train::dataset::from_simulation_dir(dir.path(), &from_files, Some(as_of)).unwrap();
    assert!(summary.rows > 0, "{summary:?}");
    let a = std::fs::read_to_string(&from_store).unwrap();
    let b = std::fs::read_to_string(&from_files).unwrap();
    assert_eq!(a.lines().count(), summary.rows + 1);
    assert!(a == b, "the two datasets differ:\n{a}\n---\n{b}");
}

/// Features as of a midnight are read from the day summaries kept at ingestion; they equal the
/// features computed from the payments themselves, after an import, after the same import again
/// (every payment a duplicate: its days are recomputed) and for dates across the history.
async fn day_summaries_give_the_features_of_the_payments(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        merchants: 12,
        seed: 5,
        ..SimConfig::default()
    };
    run(&config, dir.path(), false).unwrap();
    let options = ImportOptions::default();
    for file in ["merchants.csv", "payments.csv", "payments.csv"] {
        import_file(&app.store, &dir.path().join(file), &options)
            .await
            .unwrap();
    }
    let mut compared = 0;
    for i in 0..config.merchants {
        let id = MerchantId::parse(format!("m{i:06}")).unwrap();
        let stored = app.store.merchant(&id).await.unwrap().unwrap();
        let profile = MerchantProfile::from(&stored.merchant);
        for back in [0, 1, 45, 200, 500] {
            let as_of = as_of_start_of_day(config.end - chrono::Duration::days(back));
            let facts = app.store.payment_facts(stored.key, as_of).await.unwrap();
            let from_days = app.store.history(stored.key, as_of).await.unwrap();
            assert_eq!(
                compute_history(&profile, &from_days),
                compute(&profile, &facts, as_of),
                "{id} as of {as_of}"
            );
            let direct = smecredit::features::History::from_facts(&facts, as_of);
            assert_eq!(
                (
                    from_days.payment_count(),
                    from_days.first_and_last_payment()
                ),
                (direct.payment_count(), direct.first_and_last_payment()),
                "{id} as of {as_of}"
            );
            compared += usize::from(!facts.is_empty());
        }
    }
    assert!(compared > 30, "{compared}");
}

on_both_backends!(
    day_summaries_give_the_features_of_the_payments,
    a_simulated_population_imports_with_equal_counts_and_sums,
    the_dataset_from_the_store_equals_the_dataset_from_the_files,
);
