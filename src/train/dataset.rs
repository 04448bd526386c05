//! The training table: one row per loan with a known outcome, features as of the disbursement
//! date (point in time), the label, the loan date and the segment columns used for reporting.
//!
//! # Definitions
//!
//! * **Point in time.** Features are [`features::compute`] as of
//!   [`as_of_start_of_day`]`(loan.disbursed_on)`: only payments strictly before 00:00 UTC of the
//!   disbursement day count. Payments on or after that day (including everything that happened
//!   during the loan's term) cannot leak into the row.
//! * **Label** = `true` when the outcome is a default (`defaulted` or `written_off`) whose
//!   `defaulted_on` is on or before [`Loan::due_on`] (within the term). A loan declared in default
//!   *after* its due date is labelled `false`: it was performing for the whole term, which is the
//!   event the scorecard predicts ("defaulted within the term"); such loans are counted in
//!   [`LoanRowsStats::late_defaults_not_labelled`] so the data team can see how many there are.
//! * **Open loans** (no outcome yet) are excluded and counted.
//! * **Immature loans** — whose term had not ended by the observation date `as_of` (the export
//!   date of the data: [`crate::simulate::SimConfig::end`] for a simulation, otherwise the day after
//!   the latest payment) — are excluded *whatever their outcome* and counted in
//!   [`LoanRowsStats::immature_excluded`]. Without this rule a recent loan enters the table only if
//!   it has already defaulted (a repaid one is still open), which inflates the default rate of the
//!   most recent months — exactly the out-of-time test window — and skews it towards short terms.
//!   Every row therefore has its whole term observed: the label horizon is the full term for all
//!   rows.
//! * **Thin file** = fewer than 90 days of payment history at disbursement, i.e. the catalog
//!   feature `days_of_history` is below 90 or missing (no payment at all). 90 days is the shortest
//!   window most catalog features need to be fully observed, so thin files are the rows whose
//!   90-day features are necessarily missing.
//!
//! Segments (`region_type`, `category`, `thin_file`) are written for the fairness report; they
//! are never model inputs themselves. `category` also names the peer group of the peer-relative
//! features (`super::peer`), which read a rate relative to the merchant's category.

use crate::domain::{
    Category, Channel, Currency, LoanId, Merchant, MerchantId, Money, OutcomeKind, PaymentKind,
    RegionCode, RegionType,
};
use crate::domain::{Loan, LoanOutcome};
use crate::features::{
    self, CATALOG, FeatureId, MerchantProfile, PaymentFact, as_of_start_of_day, payer_key,
};
use anyhow::{Context, anyhow, bail};
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// Days of history below which a row is a thin file.
pub const THIN_FILE_DAYS: f64 = 90.0;

/// The fixed leading columns of a dataset CSV (then the 24 catalog features, then `label`).
pub const ID_COLUMNS: [&str; 6] = [
    "loan_id",
    "merchant_id",
    "loan_date",
    "region_type",
    "category",
    "thin_file",
];

/// One training row.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRow {
    pub loan_id: String,
    pub merchant_id: String,
    pub loan_date: NaiveDate,
    pub region_type: String,
    pub category: String,
    /// Fewer than 90 days of payment history at disbursement (see the module docs).
    pub thin_file: bool,
    /// The 24 catalog features in catalog order; `None` = missing.
    pub features: Vec<Option<f64>>,
    /// Defaulted within the term.
    pub label: bool,
}

/// Counts of what [`loan_rows`] left out or labelled specially.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoanRowsStats {
    pub open_excluded: usize,
    /// Loans with an outcome but a term ending after the observation date (module docs).
    pub immature_excluded: usize,
    pub late_defaults_not_labelled: usize,
}

/// The label of a loan with a known outcome (see the module docs).
pub fn label_of(loan: &Loan, outcome: &LoanOutcome) -> bool {
    outcome.is_default() && outcome.defaulted_on().is_some_and(|d| d <= loan.due_on())
}

/// Rows of one merchant's loans with a known outcome; returns the rows and the number of open
/// loans excluded. `facts` may include payments after any disbursement date; they are ignored.
pub fn loan_rows(
    merchant: &Merchant,
    facts: &[PaymentFact],
    loans: &[(Loan, Option<LoanOutcome>)],
) -> (Vec<DatasetRow>, usize) {
    let (rows, stats) = loan_rows_with_stats(merchant, facts, loans, None);
    (rows, stats.open_excluded)
}

/// [`loan_rows`] with the full counts; with `as_of`, loans whose term ends after `as_of`
/// (`due_on > as_of`) are excluded as immature whatever their outcome (module docs).
pub fn loan_rows_with_stats(
    merchant: &Merchant,
    facts: &[PaymentFact],
    loans: &[(Loan, Option<LoanOutcome>)],
    as_of: Option<NaiveDate>,
) -> (Vec<DatasetRow>, LoanRowsStats) {
    let profile = MerchantProfile::from(merchant);
    let mut stats = LoanRowsStats::default();
    let mut rows = Vec::with_capacity(loans.len());
    for (loan, outcome) in loans {
        let Some(outcome) = outcome else {
            stats.open_excluded += 1;
            continue;
        };
        if as_of.is_some_and(|d| loan.due_on() > d) {
            stats.immature_excluded += 1;
            continue;
        }
        let label = label_of(loan, outcome);
        if outcome.is_default() && !label {
            stats.late_defaults_not_labelled += 1;
        }
        let fv = features::compute(&profile, facts, as_of_start_of_day(loan.disbursed_on));
        let features = fv.to_f64_row();
        let history = features[FeatureId::DaysOfHistory as usize];
        rows.push(DatasetRow {
            loan_id: loan.id.as_str().to_string(),
            merchant_id: merchant.id.as_str().to_string(),
            loan_date: loan.disbursed_on,
            region_type: merchant.region_type.as_str().to_string(),
            category: merchant.category.as_str().to_string(),
            thin_file: history.is_none_or(|d| d < THIN_FILE_DAYS),
            features,
            label,
        });
    }
    (rows, stats)
}

/// The dataset CSV header.
pub fn dataset_header() -> Vec<&'static str> {
    let mut h: Vec<&str> = ID_COLUMNS.to_vec();
    h.extend(CATALOG.iter().map(|d| d.name));
    h.push("label");
    h
}

/// Writes rows as a dataset CSV (missing = empty field, floats in shortest round-trip form,
/// label and thin_file as `0`/`1`).
pub fn write_dataset_csv<W: Write>(out: W, rows: &[DatasetRow]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(dataset_header())?;
    let mut rec: Vec<String> = Vec::with_capacity(ID_COLUMNS.len() + CATALOG.len() + 1);
    for r in rows {
        rec.clear();
        rec.push(r.loan_id.clone());
        rec.push(r.merchant_id.clone());
        rec.push(r.loan_date.to_string());
        rec.push(r.region_type.clone());
        rec.push(r.category.clone());
        rec.push(if r.thin_file { "1" } else { "0" }.to_string());
        for v in &r.features {
            rec.push(v.map_or_else(String::new, |x| format!("{x:?}")));
        }
        rec.push(if r.label { "1" } else { "0" }.to_string());
        w.write_record(&rec)?;
    }
    w.flush()?;
    Ok(())
}

/// Reads a dataset CSV written by [`write_dataset_csv`] (columns may be in any order, extra
/// columns are ignored).
pub fn read_dataset_csv(path: &Path) -> anyhow::Result<Vec<DatasetRow>> {
    let mut r = csv::Reader::from_path(path)
        .with_context(|| format!("cannot open dataset {}", path.display()))?;
    let headers = r.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| anyhow!("{}: no column {name:?}", path.display()))
    };
    let ids: Vec<usize> = ID_COLUMNS
        .iter()
        .map(|c| col(c))
        .collect::<Result<_, _>>()?;
    let feats: Vec<usize> = CATALOG
        .iter()
        .map(|d| col(d.name))
        .collect::<Result<_, _>>()?;
    let label = col("label")?;
    let mut rows = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec?;
        let line = i + 2;
        let get = |c: usize| rec.get(c).unwrap_or("");
        let flag = |c: usize, what: &str| match get(c) {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            other => Err(anyhow!("line {line}: {what} {other:?} is not 0 or 1")),
        };
        let features = feats
            .iter()
            .map(|&c| {
                let s = get(c).trim();
                if s.is_empty() {
                    Ok(None)
                } else {
                    s.parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .map(Some)
                        .ok_or_else(|| anyhow!("line {line}: {s:?} is not a number"))
                }
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        rows.push(DatasetRow {
            loan_id: get(ids[0]).to_string(),
            merchant_id: get(ids[1]).to_string(),
            loan_date: NaiveDate::parse_from_str(get(ids[2]), "%Y-%m-%d")
                .with_context(|| format!("line {line}: loan_date {:?}", get(ids[2])))?,
            region_type: get(ids[3]).to_string(),
            category: get(ids[4]).to_string(),
            thin_file: flag(ids[5], "thin_file")?,
            features,
            label: flag(label, "label")?,
        });
    }
    Ok(rows)
}

/// What a dataset build produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetSummary {
    /// Merchants with at least one loan (a row or an excluded loan): the merchants the table is
    /// about, whichever path built it (the store's reads only those).
    pub merchants: usize,
    pub rows: usize,
    pub defaults: usize,
    pub open_excluded: usize,
    /// Loans with an outcome whose term ended after the observation date (module docs).
    pub immature_excluded: usize,
    /// The observation date used for the maturity rule.
    pub as_of: Option<NaiveDate>,
    pub late_defaults_not_labelled: usize,
    pub first_loan_date: Option<NaiveDate>,
    pub last_loan_date: Option<NaiveDate>,
}

impl DatasetSummary {
    /// Counts one merchant's rows.
    pub fn add(&mut self, rows: &[DatasetRow], stats: LoanRowsStats) {
        if !rows.is_empty() || stats.open_excluded + stats.immature_excluded > 0 {
            self.merchants += 1;
        }
        self.rows += rows.len();
        self.defaults += rows.iter().filter(|r| r.label).count();
        self.open_excluded += stats.open_excluded;
        self.immature_excluded += stats.immature_excluded;
        self.late_defaults_not_labelled += stats.late_defaults_not_labelled;
    }

    /// Records the date range of the finished table.
    pub fn finish(&mut self, rows: &[DatasetRow]) {
        self.first_loan_date = rows.iter().map(|r| r.loan_date).min();
        self.last_loan_date = rows.iter().map(|r| r.loan_date).max();
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing the simulator's (= the importer's) CSV formats

fn fields(line: &str) -> Vec<&str> {
    line.split(',').collect()
}

fn invalid(what: &str, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{what}: {e}")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Microseconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ` (the simulator's form, parsed without
/// allocation); any other RFC 3339 form goes through chrono.
fn parse_instant_micros(s: &str) -> anyhow::Result<i64> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        b.get(r.clone())?.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    if b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[19] == b'Z'
        && let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(se)) = (
            digits(0..4),
            digits(5..7),
            digits(8..10),
            digits(11..13),
            digits(14..16),
            digits(17..19),
        )
        && (1..=12).contains(&mo)
        && (1..=31).contains(&d)
        && h < 24
        && mi < 60
        && se < 61
    {
        let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se;
        return Ok(secs * 1_000_000);
    }
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| invalid(s, e))?;
    Ok(t.timestamp_micros())
}

fn parse_date(s: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| invalid(s, e))
}

/// A `merchants.csv` data row.
pub fn parse_merchant_line(line: &str) -> anyhow::Result<Merchant> {
    let f = fields(line);
    if f.len() != 7 {
        bail!(
            "merchants.csv row {line:?} has {} fields, expected 7",
            f.len()
        );
    }
    Ok(Merchant {
        id: MerchantId::parse(f[0]).map_err(|e| invalid("merchant_id", e))?,
        name: Merchant::parse_name(f[1]).map_err(|e| invalid("name", e))?,
        category: Category::parse(f[2]).map_err(|e| invalid("category", e))?,
        region_type: RegionType::parse(f[3]).map_err(|e| invalid("region_type", e))?,
        region_code: RegionCode::parse(f[4]).map_err(|e| invalid("region_code", e))?,
        currency: Currency::parse(f[5]).map_err(|e| invalid("currency", e))?,
        onboarded_on: parse_date(f[6])?,
    })
}

/// `123.45` → 12345 for the plain two-decimal form the simulator writes (CNY); anything else
/// goes through `Money::parse`.
fn fast_amount_minor(s: &str) -> Option<i64> {
    let (int, frac) = s.split_once('.')?;
    if int.is_empty() || int.len() > 12 || frac.len() != 2 {
        return None;
    }
    let digits = |t: &str| {
        t.bytes().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let m = digits(int)? * 100 + digits(frac)?;
    (m > 0).then_some(m)
}

/// A `payments.csv` data row: (merchant id, fact). The payment id is not kept: the simulator
/// writes each payment once (the store deduplicates real deliveries).
pub fn parse_payment_line(line: &str) -> anyhow::Result<(&str, PaymentFact)> {
    let f = fields(line);
    if f.len() != 8 {
        bail!(
            "payments.csv row {line:?} has {} fields, expected 8",
            f.len()
        );
    }
    Ok((
        f[0],
        PaymentFact {
            at_micros: parse_instant_micros(f[2])?,
            amount_minor: match fast_amount_minor(f[3]) {
                Some(m) if f[4] == "CNY" => m,
                _ => {
                    let currency = Currency::parse(f[4]).map_err(|e| invalid("currency", e))?;
                    Money::parse(f[3], currency)
                        .map_err(|e| invalid("amount", e))?
                        .minor()
                }
            },
            kind: PaymentKind::parse(f[5]).map_err(|e| invalid("kind", e))?,
            channel: Channel::parse(f[6]).map_err(|e| invalid("channel", e))?,
            payer: payer_key(f[7]),
        },
    ))
}

/// A `loans.csv` data row.
pub fn parse_loan_line(line: &str) -> anyhow::Result<(Loan, Option<LoanOutcome>)> {
    let f = fields(line);
    if f.len() != 8 {
        bail!("loans.csv row {line:?} has {} fields, expected 8", f.len());
    }
    let currency = Currency::parse(f[4]).map_err(|e| invalid("currency", e))?;
    let disbursed_on = parse_date(f[2])?;
    let loan = Loan {
        id: LoanId::parse(f[0]).map_err(|e| invalid("loan_id", e))?,
        merchant_id: MerchantId::parse(f[1]).map_err(|e| invalid("merchant_id", e))?,
        disbursed_on,
        principal: Money::parse(f[3], currency).map_err(|e| invalid("principal", e))?,
        term_days: Loan::check_term(f[5].parse::<i64>().map_err(|e| invalid("term_days", e))?)
            .map_err(|e| invalid("term_days", e))?,
    };
    let outcome = if f[6].is_empty() {
        None
    } else {
        let kind = OutcomeKind::parse(f[6]).map_err(|e| invalid("outcome", e))?;
        let on = if f[7].is_empty() {
            None
        } else {
            Some(parse_date(f[7])?)
        };
        // the export is historical: no date bound beyond the file itself
        Some(
            LoanOutcome::new(kind, on, disbursed_on, NaiveDate::MAX)
                .map_err(|e| invalid(line, e))?,
        )
    };
    Ok((loan, outcome))
}

fn lines(bytes: &[u8]) -> anyhow::Result<impl Iterator<Item = &str>> {
    let s = std::str::from_utf8(bytes).context("simulator rows are not UTF-8")?;
    Ok(s.lines().filter(|l| !l.is_empty()))
}

/// Sorts rows into the canonical dataset order (loan date, then loan id).
fn canonical_order(rows: &mut [DatasetRow]) {
    rows.sort_by(|a, b| (a.loan_date, &a.loan_id).cmp(&(b.loan_date, &b.loan_id)));
}

/// Builds the dataset from a simulator output directory (`merchants.csv`, `payments.csv`,
/// `loans.csv`) and writes it to `out_csv`. `payments.csv` is streamed merchant by merchant (it
/// is grouped by merchant), so memory holds one merchant's payments at a time plus the rows.
pub fn from_simulation_dir(
    dir: &Path,
    out_csv: &Path,
    as_of: Option<NaiveDate>,
) -> anyhow::Result<DatasetSummary> {
    let (rows, summary) = rows_from_simulation_dir(dir, as_of)?;
    write_rows(out_csv, &rows)?;
    Ok(summary)
}

fn write_rows(out_csv: &Path, rows: &[DatasetRow]) -> anyhow::Result<()> {
    if let Some(parent) = out_csv.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let f = std::fs::File::create(out_csv)
        .with_context(|| format!("cannot create {}", out_csv.display()))?;
    write_dataset_csv(std::io::BufWriter::new(f), rows)
}

/// The rows of [`from_simulation_dir`], in canonical order, without writing them. `as_of` is the
/// observation date of the maturity rule (module docs); `None` = the day after the latest payment
/// (UTC) in `payments.csv` (the simulator's `end`).
pub fn rows_from_simulation_dir(
    dir: &Path,
    as_of: Option<NaiveDate>,
) -> anyhow::Result<(Vec<DatasetRow>, DatasetSummary)> {
    let read_lines = |name: &str| -> anyhow::Result<Vec<String>> {
        let p = dir.join(name);
        let f = std::fs::File::open(&p).with_context(|| format!("cannot open {}", p.display()))?;
        BufReader::new(f)
            .lines()
            .skip(1)
            .filter(|l| l.as_ref().map_or(true, |l| !l.is_empty()))
            .map(|l| l.with_context(|| format!("reading {}", p.display())))
            .collect()
    };
    let merchants: Vec<Merchant> = read_lines("merchants.csv")?
        .iter()
        .map(|l| parse_merchant_line(l))
        .collect::<anyhow::Result<_>>()?;
    let mut loans: HashMap<String, Vec<(Loan, Option<LoanOutcome>)>> = HashMap::new();
    for l in read_lines("loans.csv")? {
        let (loan, outcome) = parse_loan_line(&l)?;
        loans
            .entry(loan.merchant_id.as_str().to_string())
            .or_default()
            .push((loan, outcome));
    }
    let by_id: HashMap<&str, &Merchant> = merchants.iter().map(|m| (m.id.as_str(), m)).collect();
    let done: std::cell::RefCell<std::collections::HashSet<String>> = Default::default();
    let mut latest_payment = i64::MIN;
    let mut rows = Vec::new();
    let mut summary = DatasetSummary::default();
    let mut emit = |mid: &str, facts: &[PaymentFact], rows: &mut Vec<DatasetRow>| {
        let Some(m) = by_id.get(mid) else {
            bail!("payments.csv names merchant {mid}, which merchants.csv lacks");
        };
        if !done.borrow_mut().insert(mid.to_string()) {
            bail!("payments.csv is not grouped by merchant: {mid} appears in two runs");
        }
        let empty = Vec::new();
        let ls = loans.get(mid).unwrap_or(&empty);
        if let Some(last) = facts.iter().map(|f| f.at_micros).max() {
            latest_payment = latest_payment.max(last);
        }
        let (r, st) = loan_rows_with_stats(m, facts, ls, as_of);
        summary.add(&r, st);
        rows.extend(r);
        Ok(())
    };

    let p = dir.join("payments.csv");
    let f = std::fs::File::open(&p).with_context(|| format!("cannot open {}", p.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, f);
    let mut line = String::new();
    let mut current: Option<String> = None;
    let mut facts: Vec<PaymentFact> = Vec::new();
    let mut first = true;
    let mut line_no = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        line_no += 1;
        if first {
            first = false;
            continue; // header
        }
        let l = line.trim_end_matches(['\n', '\r']);
        if l.is_empty() {
            continue;
        }
        let (mid, fact) =
            parse_payment_line(l).with_context(|| format!("payments.csv line {line_no}"))?;
        if current.as_deref() != Some(mid) {
            if let Some(prev) = current.take() {
                emit(&prev, &facts, &mut rows)?;
            }
            facts.clear();
            current = Some(mid.to_string());
        }
        facts.push(fact);
    }
    if let Some(prev) = current.take() {
        emit(&prev, &facts, &mut rows)?;
    }
    // merchants without any payment still have their loans scored (all features missing)
    let unseen: Vec<&str> = merchants
        .iter()
        .map(|m| m.id.as_str())
        .filter(|id| !done.borrow().contains(*id))
        .collect();
    for id in unseen {
        emit(id, &[], &mut rows)?;
    }
    let as_of = match as_of {
        Some(d) => d,
        None => {
            // the day after the latest payment, then the maturity rule on the rows kept
            let d = chrono::DateTime::from_timestamp_micros(latest_payment)
                .map(|t| t.date_naive() + chrono::Days::new(1))
                .ok_or_else(|| anyhow!("payments.csv holds no payment to date the export by"))?;
            let due: HashMap<&str, NaiveDate> = loans
                .values()
                .flatten()
                .map(|(l, _)| (l.id.as_str(), l.due_on()))
                .collect();
            let before = rows.len();
            rows.retain(|r| due.get(r.loan_id.as_str()).is_none_or(|&x| x <= d));
            summary.immature_excluded += before - rows.len();
            d
        }
    };
    summary.as_of = Some(as_of);
    summary.rows = rows.len();
    summary.defaults = rows.iter().filter(|r| r.label).count();
    canonical_order(&mut rows);
    summary.finish(&rows);
    Ok((rows, summary))
}

/// Rows from one in-memory simulated merchant (the rows of [`crate::simulate::for_each_merchant`]).
pub fn rows_from_sim_merchant(
    r: &crate::simulate::SimMerchantRows,
    as_of: Option<NaiveDate>,
) -> anyhow::Result<(Vec<DatasetRow>, LoanRowsStats)> {
    let merchant_line = std::str::from_utf8(&r.merchant)?.trim_end();
    let merchant = parse_merchant_line(merchant_line)?;
    let facts = lines(&r.payments)?
        .map(|l| parse_payment_line(l).map(|(_, f)| f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let loans = lines(&r.loans)?
        .map(parse_loan_line)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(loan_rows_with_stats(&merchant, &facts, &loans, as_of))
}

/// The simulator's two true PDs of a loan (see `src/simulate/README.md`, "PD model").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TruePd {
    /// `true_pd`: the PD the outcome was drawn from. It knows the health path during the term
    /// and whether the merchant fails in it, i.e. the future: a hindsight probability.
    pub hindsight: f64,
    /// `ex_ante_pd`: the hindsight PD averaged over the futures possible on the disbursement day,
    /// i.e. the default probability given everything true at disbursement. `None` in truth files
    /// written before it existed.
    pub ex_ante: Option<f64>,
}

/// Simulates a population in memory and builds its dataset rows (canonical order) and the true
/// PDs of the loans kept, without writing the simulator's files. Gives exactly the rows of
/// `simulate::run` followed by [`from_simulation_dir`] (tested).
pub fn rows_from_simulation(
    config: &crate::simulate::SimConfig,
    progress: bool,
) -> anyhow::Result<(Vec<DatasetRow>, BTreeMap<String, TruePd>, DatasetSummary)> {
    let mut rows = Vec::new();
    let mut truth = BTreeMap::new();
    let mut summary = DatasetSummary::default();
    let map = |m: crate::simulate::SimMerchantRows| -> anyhow::Result<_> {
        let (r, st) = rows_from_sim_merchant(&m, Some(config.end))?;
        let mut t = Vec::new();
        for l in lines(&m.truth)? {
            // loan_id,merchant_id,true_pd,ex_ante_pd
            let f = fields(l);
            if f.len() == 4 {
                let hindsight: f64 = f[2].parse().map_err(|e| invalid("true_pd", e))?;
                let ex_ante: f64 = f[3].parse().map_err(|e| invalid("ex_ante_pd", e))?;
                t.push((
                    f[0].to_string(),
                    TruePd {
                        hindsight,
                        ex_ante: Some(ex_ante),
                    },
                ));
            }
        }
        Ok((r, st, t))
    };
    crate::simulate::map_borrowers(config, progress, map, |res| {
        let (r, st, t) = res?;
        summary.add(&r, st);
        truth.extend(t);
        rows.extend(r);
        Ok(())
    })?;
    let kept: std::collections::HashSet<&str> = rows.iter().map(|r| r.loan_id.as_str()).collect();
    truth.retain(|k, _| kept.contains(k.as_str()));
    canonical_order(&mut rows);
    summary.as_of = Some(config.end);
    summary.finish(&rows);
    Ok((rows, truth, summary))
}

/// [`rows_from_simulation`] written to `out_csv`, and the true PDs to `truth_csv`
/// (`loan_id,true_pd,ex_ante_pd`) when given.
pub fn from_simulation(
    config: &crate::simulate::SimConfig,
    out_csv: &Path,
    truth_csv: Option<&Path>,
    progress: bool,
) -> anyhow::Result<DatasetSummary> {
    let (rows, truth, summary) = rows_from_simulation(config, progress)?;
    write_rows(out_csv, &rows)?;
    if let Some(t) = truth_csv {
        let mut w =
            csv::Writer::from_path(t).with_context(|| format!("cannot create {}", t.display()))?;
        w.write_record(["loan_id", "true_pd", "ex_ante_pd"])?;
        for (k, v) in &truth {
            let ex_ante = v.ex_ante.map(|p| format!("{p:?}")).unwrap_or_default();
            w.write_record([k.as_str(), &format!("{:?}", v.hindsight), &ex_ante])?;
        }
        w.flush()?;
    }
    Ok(summary)
}

/// Reads `loan_id → (true_pd, ex_ante_pd)` from a CSV with those columns (`ex_ante_pd` optional,
/// for truth files written before it existed; the simulator's `truth.csv` also has
/// `merchant_id`, which is ignored).
pub fn read_truth_csv(path: &Path) -> anyhow::Result<HashMap<String, TruePd>> {
    let mut r = csv::Reader::from_path(path)
        .with_context(|| format!("cannot open truth file {}", path.display()))?;
    let h = r.headers()?.clone();
    let id = h
        .iter()
        .position(|c| c == "loan_id")
        .ok_or_else(|| anyhow!("{}: no loan_id column", path.display()))?;
    let pd = h
        .iter()
        .position(|c| c == "true_pd")
        .ok_or_else(|| anyhow!("{}: no true_pd column", path.display()))?;
    let ex_ante = h.iter().position(|c| c == "ex_ante_pd");
    let mut out = HashMap::new();
    for rec in r.records() {
        let rec = rec?;
        let hindsight: f64 = rec.get(pd).unwrap_or("").parse().context("true_pd")?;
        let ex_ante = match ex_ante.and_then(|c| rec.get(c)) {
            Some(v) if !v.is_empty() => Some(v.parse().context("ex_ante_pd")?),
            _ => None,
        };
        out.insert(
            rec.get(id).unwrap_or("").to_string(),
            TruePd { hindsight, ex_ante },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channel, PaymentKind};
    use crate::simulate::SimConfig;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn merchant() -> Merchant {
        parse_merchant_line("m000001,Lao Wang Noodles,food_stall,rural,330782,CNY,2025-01-01")
            .unwrap()
    }

    fn sale(at: &str, fen: i64) -> PaymentFact {
        PaymentFact {
            at_micros: parse_instant_micros(at).unwrap(),
            amount_minor: fen,
            kind: PaymentKind::Sale,
            channel: Channel::QrCode,
            payer: payer_key("p1"),
        }
    }

    fn loan(id: &str, on: &str, term: u32) -> Loan {
        Loan {
            id: LoanId::parse(id).unwrap(),
            merchant_id: MerchantId::parse("m000001").unwrap(),
            disbursed_on: d(on),
            principal: Money::parse("1000.00", Currency::parse("CNY").unwrap()).unwrap(),
            term_days: term,
        }
    }

    fn daily_sales(from: &str, days: i64) -> Vec<PaymentFact> {
        (0..days)
            .map(|i| {
                let day = d(from) + chrono::Duration::days(i);
                sale(&format!("{day}T04:00:00Z"), 1_000 + i)
            })
            .collect()
    }

    #[test]
    fn fast_instant_parser_agrees_with_chrono() {
        for s in [
            "2026-06-29T05:12:33Z",
            "2000-01-01T00:00:00Z",
            "2024-02-29T23:59:59Z",
            "1999-12-31T12:00:00Z",
        ] {
            let want = chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_micros();
            assert_eq!(parse_instant_micros(s).unwrap(), want, "{s}");
        }
        assert_eq!(
            parse_instant_micros("2026-06-29T05:12:33+08:00").unwrap(),
            parse_instant_micros("2026-06-28T21:12:33Z").unwrap()
        );
        assert!(parse_instant_micros("2026-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn labels_open_loans_and_late_defaults() {
        let m = merchant();
        let facts = daily_sales("2025-01-02", 300);
        let loans = vec![
            (loan("l1", "2025-06-01", 30), Some(LoanOutcome::Repaid)),
            (
                loan("l2", "2025-07-10", 30),
                Some(LoanOutcome::Defaulted {
                    on: d("2025-08-09"),
                }), // the due day itself
            ),
            (
                loan("l3", "2025-08-20", 30),
                Some(LoanOutcome::WrittenOff {
                    on: d("2025-09-20"),
                }), // one day late
            ),
            (loan("l4", "2025-10-01", 90), None),
        ];
        let (rows, open) = loan_rows(&m, &facts, &loans);
        assert_eq!(open, 1);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows.iter().map(|r| r.label).collect::<Vec<_>>(),
            [false, true, false]
        );
        let (_, st) = loan_rows_with_stats(&m, &facts, &loans, None);
        assert_eq!(st.late_defaults_not_labelled, 1);
        assert_eq!(rows[0].region_type, "rural");
        assert_eq!(rows[0].category, "food_stall");
        assert!(!rows[0].thin_file, "150 days of history");
    }

    #[test]
    fn immature_loans_are_excluded_whatever_their_outcome() {
        let m = merchant();
        let facts = daily_sales("2025-01-02", 300);
        let loans = vec![
            // due 2025-08-09 = as_of: matured, kept
            (
                loan("l1", "2025-07-10", 30),
                Some(LoanOutcome::Defaulted {
                    on: d("2025-07-30"),
                }),
            ),
            // defaulted before as_of but due after it: immature, excluded
            (
                loan("l2", "2025-07-20", 90),
                Some(LoanOutcome::Defaulted {
                    on: d("2025-08-01"),
                }),
            ),
            (loan("l3", "2025-07-25", 90), None),
        ];
        let (rows, st) = loan_rows_with_stats(&m, &facts, &loans, Some(d("2025-08-09")));
        assert_eq!(
            rows.iter().map(|r| r.loan_id.as_str()).collect::<Vec<_>>(),
            ["l1"]
        );
        assert_eq!(st.immature_excluded, 1);
        assert_eq!(st.open_excluded, 1);
        // without an observation date the early default is kept (the biased rule)
        let (rows, _) = loan_rows_with_stats(&m, &facts, &loans, None);
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn payments_on_or_after_the_disbursement_day_change_no_feature() {
        let m = merchant();
        let base = daily_sales("2025-01-02", 200);
        let l = vec![(loan("l1", "2025-06-01", 30), Some(LoanOutcome::Repaid))];
        let (before, _) = loan_rows(&m, &base, &l);
        let mut more = base.clone();
        // on the disbursement day at 00:00:00 exactly, later that day, and during the term,
        // including a refund and a chargeback
        more.push(sale("2025-06-01T00:00:00Z", 99_999));
        more.push(sale("2025-06-01T13:00:00Z", 50_000));
        more.push(PaymentFact {
            kind: PaymentKind::Refund,
            ..sale("2025-06-05T13:00:00Z", 500)
        });
        more.push(PaymentFact {
            kind: PaymentKind::Chargeback,
            ..sale("2025-06-20T13:00:00Z", 700)
        });
        let (after, _) = loan_rows(&m, &more, &l);
        assert_eq!(before, after);
        // a payment the second before the disbursement day does count
        more.push(sale("2025-05-31T23:59:59Z", 12_345));
        let (changed, _) = loan_rows(&m, &more, &l);
        assert_ne!(before[0].features, changed[0].features);
        let net30 = FeatureId::NetSales30d as usize;
        assert_eq!(
            changed[0].features[net30].unwrap() - before[0].features[net30].unwrap(),
            12_345.0
        );
    }

    #[test]
    fn thin_file_is_under_90_days_of_history() {
        let m = merchant();
        let l = vec![(loan("l1", "2025-04-01", 30), Some(LoanOutcome::Repaid))];
        // first payment 89 days before
        let (rows, _) = loan_rows(&m, &daily_sales("2025-01-02", 89), &l);
        assert_eq!(
            rows[0].features[FeatureId::DaysOfHistory as usize],
            Some(88.0)
        );
        assert!(rows[0].thin_file);
        let (rows, _) = loan_rows(&m, &[], &l);
        assert!(rows[0].thin_file, "no payment at all");
        let m2 = Merchant {
            onboarded_on: d("2024-01-01"),
            ..merchant()
        };
        let (rows, _) = loan_rows(&m2, &daily_sales("2024-12-01", 100), &l);
        assert!(!rows[0].thin_file);
    }

    #[test]
    fn dataset_csv_round_trips() {
        let m = merchant();
        let loans = vec![
            (loan("l1", "2025-06-01", 30), Some(LoanOutcome::Repaid)),
            (
                loan("l2", "2025-03-01", 30),
                Some(LoanOutcome::Defaulted {
                    on: d("2025-03-20"),
                }),
            ),
        ];
        let (rows, _) = loan_rows(&m, &daily_sales("2025-01-02", 200), &loans);
        assert!(rows.iter().any(|r| r.features.iter().any(Option::is_none)));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        write_rows(&p, &rows).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with(
            "loan_id,merchant_id,loan_date,region_type,category,thin_file,net_sales_30d,"
        ));
        assert!(text.lines().next().unwrap().ends_with(",label"));
        assert_eq!(read_dataset_csv(&p).unwrap(), rows);
    }

    #[test]
    fn simulation_dir_and_in_memory_builders_agree() {
        let cfg = SimConfig {
            merchants: 60,
            seed: 7,
            ..SimConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        crate::simulate::run(&cfg, dir.path(), false).unwrap();
        let out = dir.path().join("train.csv");
        let s1 = from_simulation_dir(dir.path(), &out, None).unwrap();
        let out2 = dir.path().join("train2.csv");
        let truth = dir.path().join("truth2.csv");
        let s2 = from_simulation(&cfg, &out2, Some(&truth), false).unwrap();
        assert_eq!(s1, s2);
        assert!(s1.rows > 10 && s1.open_excluded > 0, "{s1:?}");
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
        let t = read_truth_csv(&truth).unwrap();
        assert_eq!(t.len(), s1.rows);
        let sim_truth = read_truth_csv(&dir.path().join("truth.csv")).unwrap();
        for (k, v) in &t {
            assert_eq!(sim_truth[k], *v);
        }
    }
}
