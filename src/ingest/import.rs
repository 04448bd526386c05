//! `smecredit import`: bulk CSV files of merchants or payments (the kind is told by the header).
//!
//! Streaming: one record buffer is reused and rows travel in batches through a channel of two,
//! so memory stays flat whatever the file size. Parsing and validation run on a blocking thread
//! while the previous batch is being written, using both cores. Each batch is one transaction.
//! Idempotent: a payment already stored with the same content counts as a duplicate, so
//! re-running a file (or the rest of a file after a crash) adds nothing twice.

use super::{
    PaymentField, RawLoan, RawMerchant, RawPayment, validate_loan, validate_merchant,
    validate_outcome, validate_payment,
};
use crate::domain::{Currency, Loan, LoanOutcome, Merchant, MerchantId, Payment};
use crate::store::{
    LoanWrite, MerchantWrite, NewLoan, NewPayment, OnConflict, OutcomeWrite, Store,
};
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
pub const LOAN_COLUMNS: [&str; 8] = [
    "loan_id",
    "merchant_id",
    "disbursed_on",
    "principal",
    "currency",
    "term_days",
    "outcome",
    "defaulted_on",
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
    Loans,
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
    /// Loan outcomes newly recorded (or a default written off).
    pub outcomes: u64,
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
            outcomes: 0,
            duplicates: 0,
            skipped: 0,
            bad_rows: Vec::new(),
            aborted: false,
        }
    }

    /// A bad row; with `--strict` it ends the import.
    fn reject(&mut self, line: u64, message: String, strict: bool) {
        self.bad_row(line, message);
        if strict {
            self.aborted = true;
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
        let (what, changed) = match self.kind {
            FileKind::Merchants => ("merchants", format!("{} updated, ", self.updated)),
            FileKind::Payments => ("payments", String::new()),
            FileKind::Loans => ("loans", format!("{} outcomes recorded, ", self.outcomes)),
        };
        let stopped = if self.aborted {
            " (aborted by --strict)"
        } else {
            ""
        };
        let mut s = format!(
            "{}: {} {what} rows read, {} stored, {changed}{} duplicates, {} skipped{stopped}",
            self.path.display(),
            self.rows,
            self.stored,
            self.duplicates,
            self.skipped,
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

fn progress_bar(enabled: bool, bytes: u64, what: &'static str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
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
    } else if names.contains(&"loan_id") {
        FileKind::Loans
    } else if names.contains(&"onboarded_on") {
        FileKind::Merchants
    } else {
        bail!(
            "{}: cannot tell what the file holds from its header; a merchants file has columns {}, a payments file {}, a loans file {}",
            path.display(),
            MERCHANT_COLUMNS.join(","),
            PAYMENT_COLUMNS.join(","),
            LOAN_COLUMNS.join(",")
        );
    };
    drop(reader);
    match kind {
        FileKind::Merchants => import_merchants(store, path, options).await,
        FileKind::Payments => import_payments(store, path, options).await,
        FileKind::Loans => import_loans(store, path, options).await,
    }
}

/// One step through a CSV file.
enum Step {
    /// A record was read into the buffer; its line number.
    Row(u64),
    /// An unreadable record was counted as a bad row.
    Skip,
    End,
}

/// Reads the next record, counting it; an unreadable one (wrong number of fields, bad UTF-8)
/// becomes a bad row.
fn read_step(
    reader: &mut csv::Reader<BufReader<File>>,
    record: &mut csv::StringRecord,
    report: &mut ImportReport,
    strict: bool,
) -> anyhow::Result<Step> {
    match reader.read_record(record) {
        Ok(false) => Ok(Step::End),
        Ok(true) => {
            report.rows += 1;
            Ok(Step::Row(record.position().map(|p| p.line()).unwrap_or(0)))
        }
        Err(e) if e.position().is_some() && !e.is_io_error() => {
            report.rows += 1;
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            report.reject(line, format!("unreadable CSV record: {e}"), strict);
            Ok(Step::Skip)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", report.path.display())),
    }
}

/// Looks merchants up once per file: id → (key, settlement currency), or `None` if unknown.
struct MerchantCache {
    known: HashMap<String, Option<(i64, Currency)>>,
}

impl MerchantCache {
    fn new() -> Self {
        MerchantCache {
            known: HashMap::new(),
        }
    }

    async fn get(
        &mut self,
        store: &Store,
        raw_id: &str,
    ) -> anyhow::Result<Option<(i64, Currency)>> {
        if let Some(found) = self.known.get(raw_id) {
            return Ok(*found);
        }
        let found = match MerchantId::parse(raw_id) {
            Ok(id) => store
                .merchant(&id)
                .await
                .with_context(|| format!("looking up merchant {id}"))?
                .map(|m| (m.key, m.merchant.currency)),
            Err(_) => None,
        };
        self.known.insert(raw_id.to_string(), found);
        Ok(found)
    }

    fn unknown(raw_id: &str) -> String {
        format!(
            "merchant_id: {:?} is not a known merchant (import its merchants file first)",
            raw_id.chars().take(64).collect::<String>()
        )
    }
}

async fn import_merchants(
    store: &Store,
    path: &Path,
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
    let (mut reader, size) = open(path)?;
    let positions = column_positions(reader.headers()?, &MERCHANT_COLUMNS)?;
    let bar = progress_bar(options.progress, size, "merchants");
    let mut report = ImportReport::new(path, FileKind::Merchants);
    let today = Utc::now().date_naive();
    let mut record = csv::StringRecord::new();
    let mut batch: Vec<(u64, Merchant)> = Vec::new();
    loop {
        let step = read_step(&mut reader, &mut record, &mut report, options.strict)?;
        if let Step::Row(line) = step {
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
                Err(errors) => report.reject(line, describe(&errors), options.strict),
            }
        }
        if report.aborted {
            break;
        }
        let end = matches!(step, Step::End);
        if batch.len() >= options.batch_size || (end && !batch.is_empty()) {
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
        if end {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(report)
}

async fn import_loans(
    store: &Store,
    path: &Path,
    options: &ImportOptions,
) -> anyhow::Result<ImportReport> {
    let (mut reader, size) = open(path)?;
    let positions = column_positions(reader.headers()?, &LOAN_COLUMNS)?;
    let bar = progress_bar(options.progress, size, "loans");
    let mut report = ImportReport::new(path, FileKind::Loans);
    let today = Utc::now().date_naive();
    let mut merchants = MerchantCache::new();
    let mut record = csv::StringRecord::new();
    let mut batch: Vec<(u64, i64, Loan, Option<LoanOutcome>)> = Vec::new();
    loop {
        let step = read_step(&mut reader, &mut record, &mut report, options.strict)?;
        if let Step::Row(line) = step {
            let f = |i: usize| record.get(positions[i]).unwrap_or("");
            let raw = RawLoan {
                loan_id: f(0),
                merchant_id: f(1),
                disbursed_on: f(2),
                principal: f(3),
                currency: f(4),
                term_days: f(5),
            };
            let verdict = match merchants.get(store, raw.merchant_id).await? {
                None => Err(MerchantCache::unknown(raw.merchant_id)),
                Some((key, currency)) => validate_loan(&raw, currency, today)
                    .map_err(|errors| describe(&errors))
                    .and_then(|loan| {
                        let outcome = match f(6) {
                            "" if f(7).is_empty() => Ok(None),
                            kind => {
                                let defaulted_on = Some(f(7)).filter(|s| !s.is_empty());
                                validate_outcome(kind, defaulted_on, loan.disbursed_on, today)
                                    .map(Some)
                                    .map_err(|errors| describe(&errors))
                            }
                        }?;
                        Ok((line, key, loan, outcome))
                    }),
            };
            match verdict {
                Ok(row) => batch.push(row),
                Err(message) => report.reject(line, message, options.strict),
            }
        }
        if report.aborted {
            break;
        }
        let end = matches!(step, Step::End);
        if batch.len() >= options.batch_size || (end && !batch.is_empty()) {
            let rows: Vec<NewLoan<'_>> = batch
                .iter()
                .map(|(_, key, loan, outcome)| NewLoan {
                    merchant_key: *key,
                    loan,
                    outcome: *outcome,
                })
                .collect();
            let written = store.insert_loans(&rows).await?;
            for ((line, _, loan, _), (write, outcome)) in batch.iter().zip(written) {
                match write {
                    LoanWrite::Created => report.stored += 1,
                    LoanWrite::Duplicate => report.duplicates += 1,
                    LoanWrite::Conflict(_) => report.bad_row(
                        *line,
                        format!("loan_id: {} is already stored with other terms", loan.id),
                    ),
                }
                match outcome {
                    Some(OutcomeWrite::Recorded | OutcomeWrite::Updated) => report.outcomes += 1,
                    Some(OutcomeWrite::Conflict(stored)) => report.bad_row(
                        *line,
                        format!("outcome: loan {} is already recorded as {stored}", loan.id),
                    ),
                    Some(OutcomeWrite::Unchanged) | None => {}
                }
            }
            batch.clear();
            bar.set_position(reader.position().byte());
        }
        if end {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(report)
}

fn describe<F: std::fmt::Display>(errors: &[(F, crate::domain::Invalid)]) -> String {
    errors
        .iter()
        .map(|(f, m)| format!("{f}: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl std::fmt::Display for PaymentField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PaymentField::PaymentId => "payment_id",
            PaymentField::OccurredAt => "occurred_at",
            PaymentField::Amount => "amount",
            PaymentField::Currency => "currency",
            PaymentField::Kind => "kind",
            PaymentField::Channel => "channel",
            PaymentField::PayerRef => "payer_ref",
        })
    }
}

/// A validated row on its way to the store.
struct Row {
    line: u64,
    merchant_key: i64,
    payment: Payment,
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
    // Writers in flight: PostgreSQL runs each transaction in its own server process, so several
    // writers use every core; SQLite has one writer anyway; --strict writes one batch at a time
    // so that nothing after the failing batch is stored.
    let writers = if options.strict {
        1
    } else {
        store.write_concurrency()
    };
    let mut in_flight = tokio::task::JoinSet::new();
    let mut write_error = None;
    let mut receiving = true;
    while receiving || !in_flight.is_empty() {
        if receiving && in_flight.len() < writers {
            match rx.recv().await {
                Some(batch) => {
                    let store = store.clone();
                    in_flight.spawn(async move {
                        let rows: Vec<NewPayment<'_>> = batch
                            .iter()
                            .map(|r| NewPayment {
                                merchant_key: r.merchant_key,
                                payment: &r.payment,
                            })
                            .collect();
                        let outcome = store.insert_payments(&rows, on_conflict).await;
                        (batch, outcome)
                    });
                    continue;
                }
                None => receiving = false,
            }
        }
        let Some(joined) = in_flight.join_next().await else {
            continue;
        };
        let (batch, outcome) = joined.context("a writer task failed")?;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => {
                write_error = Some(e);
                receiving = false;
                continue;
            }
        };
        report.stored += outcome.accepted;
        report.duplicates += outcome.duplicates;
        for i in &outcome.conflicts {
            let row = &batch[*i];
            report.reject(
                row.line,
                format!(
                    "payment_id: {} is already stored with different content",
                    row.payment.id
                ),
                options.strict,
            );
        }
        if report.aborted {
            receiving = false;
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

/// Runs on a blocking thread: reads, validates and sends batches; reports rows and bad rows.
fn parse_payments(
    store: &Store,
    path: &Path,
    options: &ImportOptions,
    runtime: &tokio::runtime::Handle,
    tx: tokio::sync::mpsc::Sender<Vec<Row>>,
) -> anyhow::Result<ImportReport> {
    let (mut reader, size) = open(path)?;
    let positions = column_positions(reader.headers()?, &PAYMENT_COLUMNS)?;
    let bar = progress_bar(options.progress, size, "payments");
    let now = Utc::now();
    let mut merchants = MerchantCache::new();
    let mut report = ImportReport::new(path, FileKind::Payments);
    let mut record = csv::StringRecord::new();
    let mut batch = Vec::with_capacity(options.batch_size);
    loop {
        let step = read_step(&mut reader, &mut record, &mut report, options.strict)?;
        if let Step::Row(line) = step {
            let f = |i: usize| record.get(positions[i]).unwrap_or("");
            let raw = RawPayment {
                payment_id: f(1),
                occurred_at: f(2),
                amount: f(3),
                currency: f(4),
                kind: f(5),
                channel: f(6),
                payer_ref: f(7),
            };
            let verdict = match runtime.block_on(merchants.get(store, f(0)))? {
                None => Err(MerchantCache::unknown(f(0))),
                Some((key, currency)) => validate_payment(&raw, currency, now)
                    .map(|payment| Row {
                        line,
                        merchant_key: key,
                        payment,
                    })
                    .map_err(|errors| describe(&errors)),
            };
            match verdict {
                Ok(row) => batch.push(row),
                Err(message) => report.reject(line, message, options.strict),
            }
        }
        if report.aborted {
            break;
        }
        let end = matches!(step, Step::End);
        if batch.len() >= options.batch_size || (end && !batch.is_empty()) {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(options.batch_size));
            if tx.blocking_send(full).is_err() {
                // The writer stopped (an error, or --strict at a conflict); it reports why.
                break;
            }
            bar.set_position(reader.position().byte());
        }
        if end {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(report)
}
