//! `smecredit dataset`: the training table built from the store — one row per loan with a known
//! outcome, features as of its disbursement day (point in time), the label, and segments.

use super::dataset::{DatasetRow, DatasetSummary, loan_rows_with_stats, write_dataset_csv};
use crate::domain::{Loan, LoanOutcome};
use crate::features::as_of_start_of_day;
use crate::store::Store;
use anyhow::Context;
use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::Path;

/// Builds the dataset of every stored loan with an outcome and writes it as CSV. Payments are
/// read only up to the last disbursement day of each merchant, and each loan's features only see
/// payments before its own disbursement day.
pub async fn dataset_from_store(
    store: &Store,
    out: &Path,
    as_of: NaiveDate,
    progress: bool,
) -> anyhow::Result<DatasetSummary> {
    let merchants = store
        .merchants_with_loans()
        .await
        .context("listing merchants with loans")?;
    let bar = if progress {
        ProgressBar::with_draw_target(Some(merchants.len() as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("dataset [{bar:40}] {pos}/{len} merchants ({eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut rows: Vec<DatasetRow> = Vec::new();
    let mut summary = DatasetSummary::default();
    for m in &merchants {
        let loans: Vec<(Loan, Option<LoanOutcome>)> = store
            .merchant_loans(m.key)
            .await?
            .into_iter()
            .map(|l| (l.loan, l.outcome.map(|o| o.outcome)))
            .collect();
        let Some(last) = loans.iter().map(|(l, _)| l.disbursed_on).max() else {
            continue;
        };
        let facts = store.payment_facts(m.key, as_of_start_of_day(last)).await?;
        let (merchant_rows, stats) = loan_rows_with_stats(&m.merchant, &facts, &loans, Some(as_of));
        summary.add(&merchant_rows, stats);
        rows.extend(merchant_rows);
        bar.inc(1);
    }
    bar.finish_and_clear();
    // The canonical order of a dataset, as the builder from files writes it.
    rows.sort_by(|a, b| (a.loan_date, &a.loan_id).cmp(&(b.loan_date, &b.loan_id)));
    summary.as_of = Some(as_of);
    summary.finish(&rows);
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    write_dataset_csv(std::io::BufWriter::new(file), &rows)?;
    Ok(summary)
}
