//! `smecredit serve --demo`: on an empty database, a small simulated population with payment
//! histories up to today and loan outcomes, so that a first look shows real scores and
//! explanations.

use crate::ingest::import::{ImportOptions, import_file};
use crate::simulate::SimConfig;
use crate::store::Store;
use anyhow::Context;

/// Merchants in the demo population (ids `m000000` to `m000039`).
pub const DEMO_MERCHANTS: usize = 40;
pub const DEMO_SEED: u64 = 7;

/// Seeds the demo population if the database holds no merchant; returns whether it did.
pub async fn seed_if_empty(store: &Store) -> anyhow::Result<bool> {
    if store.merchant_count().await? > 0 {
        return Ok(false);
    }
    let dir = tempfile_dir()?;
    let config = SimConfig {
        merchants: DEMO_MERCHANTS,
        seed: DEMO_SEED,
        history_days: 400,
        // Histories that end today, so that the demo merchants are trading now.
        end: chrono::Utc::now().date_naive(),
        ..SimConfig::default()
    };
    let summary =
        crate::simulate::run(&config, &dir, false).context("simulating the demo population")?;
    let options = ImportOptions::default();
    for file in ["merchants.csv", "payments.csv", "loans.csv"] {
        import_file(store, &dir.join(file), &options).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    tracing::info!(
        merchants = summary.merchants,
        payments = summary.payments,
        loans = summary.loans,
        "demo population seeded (merchant ids m000000 to m{:06})",
        DEMO_MERCHANTS - 1
    );
    Ok(true)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("smecredit-demo-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
