//! A simulated population goes through `smecredit import` and comes back whole.

use crate::helpers::{Backend, spawn_app};
use crate::on_both_backends;
use serde_json::Value;
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

on_both_backends!(a_simulated_population_imports_with_equal_counts_and_sums);
