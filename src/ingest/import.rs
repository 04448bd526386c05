//! `smecredit import`: bulk CSV files of merchants or payments (the kind is told by the header).
//!
//! Streaming: one record buffer is reused and rows travel in batches through a channel of two,
//! so memory stays flat whatever the file size. Parsing and validation run on a blocking thread
//! while the previous batch is being written, using both cores. Each batch is one transaction.
//! Idempotent: a payment already stored with the same content counts as a duplicate, so
//! re-running a file (or the rest of a file after a crash) adds nothing twice.

use super::{PaymentField, RawMerchant, RawPayment, validate_merchant, validate_payment};
use crate::domain::{Currency, Merchant, MerchantId, Payment};
use crate::store::{MerchantWrite, NewPayment, OnConflict, Store};
use anyhow::{Context, bail};
use chrono::Utc;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

pub const MERCHANT_COLUMNS: [&str; 7] = [
    "merchant_id",
    "name",
    "category",
    "region_type",
    "region_code",
    "currency",
    "onboarded_on",
];
pub const PAYMENT_COLUMNS: [&str; 8] = [
    "merchant_id",
    "payment_id",
    "occurred_at",
    "amount",
    "currency",
    "kind",
    "channel",
    "payer_ref",
];

/// How many bad rows a report lists by line (all are counted).
const MAX_LISTED_BAD_ROWS: usize = 100;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Abort at the first bad row, storing nothing of the batch it is in.
    pub strict: bool,
    /// Rows per transaction.
    pub batch_size: usize,
    /// Draw a progress bar on standard error (only if it is a terminal).
    pub progress: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            strict: false,
            batch_size: 10_000,
            progress: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Merchants,
    Payments,
}

/// A row that was not stored, with its line number in the file (the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub line: u64,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ImportReport {
    pub path: PathBuf,
    pub kind: FileKind,
    /// Data rows read (not counting the header).
    pub rows: u64,
    /// Newly stored rows.
    pub stored: u64,
    /// Merchants whose profile changed.
    pub updated: u64,
    /// Rows already stored with the same content.
    pub duplicates: u64,
    /// Rows not stored because they are invalid or conflict with stored data.
    pub skipped: u64,
    /// The first bad rows, by line.
    pub bad_rows: Vec<BadRow>,
    /// `--strict` stopped at a bad row.
    pub aborted: bool,
}

impl ImportReport {
    fn new(path: &Path, kind: FileKind) -> Self {
        ImportReport {
            path: path.to_path_buf(),
            kind,
            rows: 0,
            stored: 0,
            updated: 0,
            duplicates: 0,
            skipped: 0,
            bad_rows: Vec::new(),
            aborted: false,
        }
    }

    fn bad_row(&mut self, line: u64, message: String) {
        self.skipped += 1;
        if self.bad_rows.len() < MAX_LISTED_BAD_ROWS {
            self.bad_rows.push(BadRow { line, message });
        }
    }

    /// A human summary for the terminal.
    pub fn summary(&self) -> String {
        let what = match self.kind {
            FileKind::Merchants => "merchants",
            FileKind::Payments => "payments",
        };
        let mut s = format!(
            "{}: {} {what} rows read, {} stored, {} updated, {} duplicates, {} skipped{}",
            self.path.display(),
            self.rows,
            self.stored,
            self.updated,
            self.duplicates,
            self.skipped,
            if self.aborted {
                " (aborted by --strict)"
            } else {
                ""
            }
        );
        for bad in &self.bad_rows {
            s.push_str(&format!("\n  line {}: {}", bad.line, bad.message));
        }
        if self.skipped as usize > self.bad_rows.len() {
            s.push_str(&format!(
                "\n  … and {} more bad rows",
                self.skipped as usize - self.bad_rows.len()
            ));
        }
        s
    }
}

/// Column positions of a file's header, in the order of the expected columns.
fn column_positions(headers: &csv::StringRecord, expected: &[&str]) -> anyhow::Result<Vec<usize>> {
    let mut positions = Vec::with_capacity(expected.len());
    for name in expected {
        let Some(i) = headers.iter().position(|h| h.trim() == *name) else {
            bail!(
                "the header has no column {name:?} (expected columns: {})",
                expected.join(",")
            );
        };
        positions.push(i);
    }
    if headers.len() != expected.len() {
        bail!(
            "the header has {} columns; expected exactly: {}",
            headers.len(),
            expected.join(",")
        );
    }
    Ok(positions)
}

fn open(path: &Path) -> anyhow::Result<(csv::Reader<BufReader<File>>, u64)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .buffer_capacity(1 << 20)
        .from_reader(BufReader::with_capacity(1 << 20, file));
    Ok((reader, size))
}

fn progress_bar(enabled: bool, bytes: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Imports one file; the header says whether it holds merchants or payments.
pub async fn import_file(
    store: &Store,
    path: &Path,
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
    let (mut reader, _) = open(path)?;
    let headers = reader
        .headers()
        .with_context(|| format!("reading the header of {}", path.display()))?;
    let names: Vec<&str> = headers.iter().map(str::trim).collect();
    let kind = if names.contains(&"payment_id") {
        FileKind::Payments
    } else if names.contains(&"onboarded_on") {
        FileKind::Merchants
    } else {
        bail!(
            "{}: cannot tell what the file holds from its header; a merchants file has columns {}, a payments file {}",
            path.display(),
            MERCHANT_COLUMNS.join(","),
            PAYMENT_COLUMNS.join(",")
        );
    };
    drop(reader);
    match kind {
        FileKind::Merchants => import_merchants(store, path, options).await,
        FileKind::Payments => import_payments(store, path, options).await,
    }
}

async fn import_merchants(
    store: &Store,
    path: &Path,
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
    let (mut reader, size) = open(path)?;
    let positions = column_positions(reader.headers()?, &MERCHANT_COLUMNS)?;
    let bar = progress_bar(options.progress, size);
    bar.set_message("merchants");
    let mut report = ImportReport::new(path, FileKind::Merchants);
    let today = Utc::now().date_naive();
    let mut record = csv::StringRecord::new();
    let mut batch: Vec<(u64, Merchant)> = Vec::new();
    loop {
        let more = match reader.read_record(&mut record) {
            Ok(more) => more,
            Err(e) if e.position().is_some() && !e.is_io_error() => {
                report.rows += 1;
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                report.bad_row(line, format!("unreadable CSV record: {e}"));
                if options.strict {
                    report.aborted = true;
                    break;
                }
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if more {
            report.rows += 1;
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            let f = |i: usize| record.get(positions[i]).unwrap_or("");
            let raw = RawMerchant {
                merchant_id: f(0),
                name: f(1),
                category: f(2),
                region_type: f(3),
                region_code: f(4),
                currency: f(5),
                onboarded_on: f(6),
            };
            match validate_merchant(&raw, today) {
                Ok(m) => batch.push((line, m)),
                Err(errors) => {
                    report.bad_row(
                        line,
                        describe(errors.iter().map(|(f, e)| (*f, e.to_string()))),
                    );
                    if options.strict {
                        report.aborted = true;
                        break;
                    }
                }
            }
        }
        if batch.len() >= options.batch_size || (!more && !batch.is_empty()) {
            let merchants: Vec<Merchant> = batch.iter().map(|(_, m)| m.clone()).collect();
            let written = store.upsert_merchants(&merchants).await?;
            for ((line, _), (_, write)) in batch.iter().zip(written) {
                match write {
                    MerchantWrite::Created => report.stored += 1,
                    MerchantWrite::Updated => report.updated += 1,
                    MerchantWrite::Unchanged => report.duplicates += 1,
                    MerchantWrite::CurrencyLocked { stored } => report.bad_row(
                        *line,
                        format!("currency: the merchant has payments in {stored}; its settlement currency cannot change"),
                    ),
                }
            }
            batch.clear();
            bar.set_position(reader.position().byte());
        }
        if !more {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(report)
}

fn describe(errors: impl Iterator<Item = (&'static str, String)>) -> String {
    errors
        .map(|(f, m)| format!("{f}: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn payment_column(field: PaymentField) -> &'static str {
    match field {
        PaymentField::PaymentId => "payment_id",
        PaymentField::OccurredAt => "occurred_at",
        PaymentField::Amount => "amount",
        PaymentField::Currency => "currency",
        PaymentField::Kind => "kind",
        PaymentField::Channel => "channel",
        PaymentField::PayerRef => "payer_ref",
    }
}

/// A validated row on its way to the store.
struct Row {
    line: u64,
    merchant_key: i64,
    payment: Payment,
}

/// What the parsing thread found, beyond the rows it sent.
struct ParseOutcome {
    rows: u64,
    bad_rows: Vec<BadRow>,
    skipped: u64,
    aborted: bool,
}

async fn import_payments(
    store: &Store,
    path: &Path,
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Row>>(2);
    let parser = {
        let store = store.clone();
        let path = path.to_path_buf();
        let options = options.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || parse_payments(&store, &path, &options, &runtime, tx))
    };
    let mut report = ImportReport::new(path, FileKind::Payments);
    let on_conflict = if options.strict {
        OnConflict::RejectBatch
    } else {
        OnConflict::SkipConflicting
    };
    let mut write_error = None;
    while let Some(batch) = rx.recv().await {
        let rows: Vec<NewPayment<'_>> = batch
            .iter()
            .map(|r| NewPayment {
                merchant_key: r.merchant_key,
                payment: &r.payment,
            })
            .collect();
        let outcome = match store.insert_payments(&rows, on_conflict).await {
            Ok(outcome) => outcome,
            Err(e) => {
                write_error = Some(e);
                break;
            }
        };
        report.stored += outcome.accepted;
        report.duplicates += outcome.duplicates;
        for i in &outcome.conflicts {
            let row = &batch[*i];
            report.bad_row(
                row.line,
                format!(
                    "payment_id: {} is already stored with different content",
                    row.payment.id
                ),
            );
        }
        if !outcome.conflicts.is_empty() && options.strict {
            report.aborted = true;
            break;
        }
    }
    // Dropping the receiver stops the parser at its next send.
    drop(rx);
    let parsed = parser.await.context("the CSV parsing thread failed")??;
    if let Some(e) = write_error {
        return Err(
            anyhow::Error::new(e).context(format!("storing payments from {}", path.display()))
        );
    }
    report.rows = parsed.rows;
    report.skipped += parsed.skipped;
    report.aborted |= parsed.aborted;
    let mut bad_rows = parsed.bad_rows;
    bad_rows.append(&mut report.bad_rows);
    bad_rows.sort_by_key(|b| b.line);
    bad_rows.truncate(MAX_LISTED_BAD_ROWS);
    report.bad_rows = bad_rows;
    Ok(report)
}

fn parse_payments(
    store: &Store,
    path: &Path,
    options: &ImportOptions,
    runtime: &tokio::runtime::Handle,
    tx: tokio::sync::mpsc::Sender<Vec<Row>>,
) -> anyhow::Result<ParseOutcome> {
    let (mut reader, size) = open(path)?;
    let positions = column_positions(reader.headers()?, &PAYMENT_COLUMNS)?;
    let bar = progress_bar(options.progress, size);
    bar.set_message("payments");
    let now = Utc::now();
    let mut merchants: HashMap<String, Option<(i64, Currency)>> = HashMap::new();
    let mut out = ParseOutcome {
        rows: 0,
        bad_rows: Vec::new(),
        skipped: 0,
        aborted: false,
    };
    let bad = |out: &mut ParseOutcome, line: u64, message: String| {
        out.skipped += 1;
        if out.bad_rows.len() < MAX_LISTED_BAD_ROWS {
            out.bad_rows.push(BadRow { line, message });
        }
    };
    let mut record = csv::StringRecord::new();
    let mut batch = Vec::with_capacity(options.batch_size);
    loop {
        let more = match reader.read_record(&mut record) {
            Ok(more) => more,
            Err(e) if e.position().is_some() && !e.is_io_error() => {
                out.rows += 1;
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                bad(&mut out, line, format!("unreadable CSV record: {e}"));
                if options.strict {
                    out.aborted = true;
                    break;
                }
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if more {
            out.rows += 1;
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            let f = |i: usize| record.get(positions[i]).unwrap_or("");
            let merchant_id = f(0);
            if !merchants.contains_key(merchant_id) {
                let found = match MerchantId::parse(merchant_id) {
                    Ok(id) => runtime
                        .block_on(store.merchant(&id))
                        .with_context(|| format!("looking up merchant {id}"))?
                        .map(|m| (m.key, m.merchant.currency)),
                    Err(_) => None,
                };
                merchants.insert(merchant_id.to_string(), found);
            }
            let raw = RawPayment {
                payment_id: f(1),
                occurred_at: f(2),
                amount: f(3),
                currency: f(4),
                kind: f(5),
                channel: f(6),
                payer_ref: f(7),
            };
            let verdict = match merchants.get(merchant_id).copied().flatten() {
                None => Err(format!(
                    "merchant_id: {:?} is not a known merchant (import its merchants file first)",
                    merchant_id.chars().take(64).collect::<String>()
                )),
                Some((key, currency)) => validate_payment(&raw, currency, now)
                    .map(|payment| Row {
                        line,
                        merchant_key: key,
                        payment,
                    })
                    .map_err(|errors| {
                        describe(
                            errors
                                .iter()
                                .map(|(f, e)| (payment_column(*f), e.to_string())),
                        )
                    }),
            };
            match verdict {
                Ok(row) => batch.push(row),
                Err(message) => {
                    bad(&mut out, line, message);
                    if options.strict {
                        out.aborted = true;
                        break;
                    }
                }
            }
        }
        if batch.len() >= options.batch_size || (!more && !batch.is_empty()) {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(options.batch_size));
            if tx.blocking_send(full).is_err() {
                // The writer stopped (an error, or --strict at a conflict); it reports why.
                break;
            }
            bar.set_position(reader.position().byte());
        }
        if !more {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(out)
}
