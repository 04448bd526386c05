//! `payment_days`: per merchant and UTC day, the [`DaySummary`] of its payments, maintained in
//! the transaction that stores them, so that features as of a midnight read about 365 short rows
//! instead of every payment of a year.
//!
//! Exactness: a statement that stored every payment it was given stored only new, distinct
//! payments, so their summaries are added to the days. The days of a statement that stored fewer
//! (duplicates, conflicts, a payment twice in one batch) are recomputed from the stored payments
//! instead. A rejected batch rolls back both. On PostgreSQL, where several transactions write at
//! once, every day row a transaction touches is locked first, in one statement in key order (no
//! deadlocks), before it reads payments to recompute a day: a concurrent writer of that day has
//! then either committed (and is read) or waits for us and adds its own payments afterwards.

use super::{NewPayment, StoreError};
use crate::features::{DaySummary, PaymentFact, utc_day};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

/// What a payment batch does to `payment_days`.
#[derive(Debug, Default)]
pub(super) struct DayPlan {
    /// The rows of the first upsert, in (merchant, day) order: the summaries to add, and an
    /// empty summary of every day to recompute (adds nothing; creates and locks the row).
    pub upserts: Vec<(i64, DaySummary)>,
    /// Runs of days to recompute from the stored payments: (merchant, first day, last day + 1),
    /// sorted.
    pub recompute: Vec<(i64, i64, i64)>,
}

impl DayPlan {
    /// `checked`: the ranges of `batch` whose statements stored fewer rows than given.
    pub fn new(batch: &[NewPayment<'_>], checked: &[Range<usize>]) -> DayPlan {
        let mut redo: BTreeSet<(i64, i64)> = BTreeSet::new();
        for range in checked {
            for r in &batch[range.clone()] {
                redo.insert((r.merchant_key, utc_day(r.payment.occurred_at_micros())));
            }
        }
        // (every row of a checked statement has its day in `redo`)
        let mut add: BTreeMap<(i64, i64), DaySummary> = BTreeMap::new();
        for r in batch {
            let fact = PaymentFact::from(r.payment);
            let key = (r.merchant_key, utc_day(fact.at_micros));
            if redo.contains(&key) {
                continue;
            }
            add.entry(key)
                .and_modify(|s| s.add(&fact))
                .or_insert_with(|| DaySummary::of(&fact));
        }
        for &(m, d) in &redo {
            add.insert((m, d), empty_day(d));
        }
        DayPlan {
            upserts: add.into_iter().map(|((m, _), s)| (m, s)).collect(),
            recompute: runs(redo),
        }
    }

    /// Recomputes every day of a merchant in `from..to`.
    pub fn rebuild(merchant_key: i64, from: i64, to: i64) -> DayPlan {
        DayPlan {
            upserts: (from..to).map(|d| (merchant_key, empty_day(d))).collect(),
            recompute: vec![(merchant_key, from, to)],
        }
    }
}

/// Consecutive days of one merchant as runs `(merchant, first, last + 1)`.
fn runs(days: BTreeSet<(i64, i64)>) -> Vec<(i64, i64, i64)> {
    let mut out: Vec<(i64, i64, i64)> = Vec::new();
    for (m, d) in days {
        match out.last_mut() {
            Some((lm, _, end)) if *lm == m && *end == d => *end = d + 1,
            _ => out.push((m, d, d + 1)),
        }
    }
    out
}

/// A summary of no payments: adding it changes nothing (it is the identity of
/// [`DaySummary::merge`]); a recompute then overwrites the row.
fn empty_day(day: i64) -> DaySummary {
    DaySummary {
        day,
        payments: 0,
        sales: 0,
        gross: 0,
        refunds: 0,
        chargebacks: 0,
        chargeback_count: 0,
        channel_gross: [0; 5],
        first_at: i64::MAX,
        last_at: i64::MIN,
        last_sale_at: None,
        sale_payers: Vec::new(),
    }
}

pub(super) const COLUMNS: &str = "merchant, day, payments, sales, gross_minor, refunds_minor, chargebacks_minor, chargebacks, qr_code_minor, in_app_minor, mini_program_minor, pos_minor, other_minor, first_at, last_at, last_sale_at, sale_payers";
pub(super) const NUM_COLUMNS: usize = 17;

/// The `ON CONFLICT` clause that adds a summary to a stored day. `concat` joins two byte strings
/// (`||` on PostgreSQL; SQLite's `||` makes text of the bytes, cast back).
pub(super) fn add_on_conflict(
    least: &str,
    greatest: &str,
    concat: fn(&str, &str) -> String,
) -> String {
    let sum = |c: &str| format!("{c} = payment_days.{c} + excluded.{c}");
    let sums = [
        "payments",
        "sales",
        "gross_minor",
        "refunds_minor",
        "chargebacks_minor",
        "chargebacks",
        "qr_code_minor",
        "in_app_minor",
        "mini_program_minor",
        "pos_minor",
        "other_minor",
    ]
    .map(sum)
    .join(", ");
    format!(
        " ON CONFLICT (merchant, day) DO UPDATE SET {sums}, \
         first_at = {least}(payment_days.first_at, excluded.first_at), \
         last_at = {greatest}(payment_days.last_at, excluded.last_at), \
         last_sale_at = CASE WHEN payment_days.last_sale_at IS NULL OR excluded.last_sale_at > payment_days.last_sale_at \
         THEN excluded.last_sale_at ELSE payment_days.last_sale_at END, \
         sale_payers = {}",
        concat("payment_days.sale_payers", "excluded.sale_payers")
    )
}

/// 16 bytes per sale: payer key and amount, little-endian.
pub(super) fn encode_payers(payers: &[(u64, i64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payers.len() * 16);
    for (p, a) in payers {
        out.extend_from_slice(&p.to_le_bytes());
        out.extend_from_slice(&a.to_le_bytes());
    }
    out
}

fn decode_payers(bytes: &[u8]) -> Result<Vec<(u64, i64)>, StoreError> {
    if !bytes.len().is_multiple_of(16) {
        return Err(StoreError::corrupt(
            "sale_payers is not a multiple of 16 bytes",
        ));
    }
    Ok(bytes
        .chunks_exact(16)
        .map(|c| {
            let (p, a) = c.split_at(8);
            (
                u64::from_le_bytes(p.try_into().expect("8 bytes")),
                i64::from_le_bytes(a.try_into().expect("8 bytes")),
            )
        })
        .collect())
}

/// The one-row read of [`super::Store::history`]. The days of the window come as one
/// comma-separated list per column (`w0`…`w15`, see [`window_columns`]; every list holds the
/// days in the same order, one entry per day, as all aggregates of a query see the same rows),
/// and the days before the window as one line of aggregates without payers. sqlx hands rows over
/// one by one through a channel, which costs more than SQLite's work here, so one row it is; and
/// one list per column costs SQLite a quarter of what one concatenated line per day did (each
/// `||` copies the line built so far).
pub(super) struct PackedDays {
    pub window: Vec<Option<String>>,
    pub older: Option<String>,
}

/// Parameters of the read, in days since the epoch: payers are read from `payers_from`, rows
/// from `window_from`, up to `to` (exclusive).
pub(super) struct DayWindow {
    pub window_from: i64,
    pub payers_from: i64,
    pub to: i64,
}

impl DayWindow {
    /// The window of features as of `as_of`, if it is a midnight (UTC).
    pub fn as_of(as_of: chrono::DateTime<chrono::Utc>) -> Option<DayWindow> {
        let micros = as_of.timestamp_micros();
        if micros.rem_euclid(86_400_000_000) != 0 {
            return None;
        }
        let to = utc_day(micros);
        Some(DayWindow {
            window_from: to - crate::features::History::WINDOW_DAYS,
            payers_from: to - crate::features::History::PAYER_WINDOW_DAYS,
            to,
        })
    }
}

/// The columns of a day in the packed read, in order: the numeric ones, the last sale (empty
/// when none) and the payers in hex (empty outside the payer window).
const NUMERIC: &[&str] = &[
    "day",
    "payments",
    "sales",
    "gross_minor",
    "refunds_minor",
    "chargebacks_minor",
    "chargebacks",
    "qr_code_minor",
    "in_app_minor",
    "mini_program_minor",
    "pos_minor",
    "other_minor",
    "first_at",
    "last_at",
];
pub(super) const WINDOW_COLUMNS: usize = NUMERIC.len() + 2;

/// The aggregates `w0`…`w15` of the window: `list(expr)` makes one comma-separated list of a
/// column, `to_text` casts a column to text, `payers_hex` is the payers' hex or `''`.
pub(super) fn window_columns(
    list: fn(&str) -> String,
    to_text: fn(&str) -> String,
    payers_hex: &str,
) -> String {
    NUMERIC
        .iter()
        .map(|c| to_text(c))
        .chain([
            format!("coalesce({}, '')", to_text("last_sale_at")),
            payers_hex.to_string(),
        ])
        .enumerate()
        .map(|(i, e)| format!("{} AS w{i}", list(&e)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The days before the window as one line: only counts and instants matter there (the sums are
/// outside every window), so they are aggregated by the database: no payers, no money.
pub(super) fn packed_older_sql(to_text: fn(&str) -> String) -> String {
    let aggregates = [
        "min(day)",
        "sum(payments)",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
        "min(first_at)",
        "max(last_at)",
    ];
    let mut sql = aggregates
        .iter()
        .map(|c| to_text(c))
        .collect::<Vec<_>>()
        .join(" || ',' || ");
    sql.push_str(&format!(
        " || ',' || coalesce({}, '') || ','",
        to_text("max(last_sale_at)")
    ));
    sql
}

impl PackedDays {
    /// Reads `w0`…`w15` and `days_older` from a row.
    pub fn from_row<R: sqlx::Row>(row: &R) -> Result<PackedDays, StoreError>
    where
        for<'c> &'c str: sqlx::ColumnIndex<R>,
        Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        let window = (0..WINDOW_COLUMNS)
            .map(|i| row.try_get::<Option<String>, _>(format!("w{i}").as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PackedDays {
            window,
            older: row.try_get("days_older")?,
        })
    }

    pub fn into_summaries(self) -> Result<Vec<DaySummary>, StoreError> {
        let mut out = Vec::new();
        if let Some(Some(days)) = self.window.first()
            && !days.is_empty()
        {
            let mut lists = self
                .window
                .iter()
                .map(|c| c.as_deref().unwrap_or_default().split(','))
                .collect::<Vec<_>>();
            for _ in 0..days.split(',').count() {
                out.push(parse_day(lists.iter_mut().map(|l| l.next()))?);
            }
            if lists.iter_mut().any(|l| l.next().is_some()) {
                return Err(StoreError::corrupt("day columns of unequal length"));
            }
        }
        if let Some(line) = self.older {
            out.push(parse_day(line.split(',').map(Some))?);
        }
        Ok(out)
    }
}

/// Hex (either case) to bytes. The `hex` crate's iterator-based decoder was the service's
/// hottest function under scoring load (a year's payers are about 90 KB of hex per request).
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    const INVALID: u8 = 0xff;
    const TABLE: [u8; 256] = {
        let mut t = [INVALID; 256];
        let mut i = 0;
        while i < 10 {
            t[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            t[b'a' as usize + i] = 10 + i as u8;
            t[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        t
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 2);
    for pair in bytes.chunks_exact(2) {
        let (hi, lo) = (TABLE[pair[0] as usize], TABLE[pair[1] as usize]);
        if hi == INVALID || lo == INVALID {
            return None;
        }
        out.push(hi << 4 | lo);
    }
    Some(out)
}

fn parse_day<'a>(
    mut fields: impl Iterator<Item = Option<&'a str>>,
) -> Result<DaySummary, StoreError> {
    let bad = || StoreError::corrupt("a packed payment day is malformed");
    let mut next = || fields.next().flatten().ok_or_else(bad);
    let mut int = || -> Result<i64, StoreError> { next()?.parse::<i64>().map_err(|_| bad()) };
    let day = int()?;
    let payments = u32::try_from(int()?).map_err(|_| bad())?;
    let sales = u32::try_from(int()?).map_err(|_| bad())?;
    let gross = int()?;
    let refunds = int()?;
    let chargebacks = int()?;
    let chargeback_count = u32::try_from(int()?).map_err(|_| bad())?;
    let channel_gross = [int()?, int()?, int()?, int()?, int()?];
    let first_at = int()?;
    let last_at = int()?;
    let last_sale_at = match next()? {
        "" => None,
        t => Some(t.parse::<i64>().map_err(|_| bad())?),
    };
    let payers = decode_hex(next()?).ok_or_else(bad)?;
    Ok(DaySummary {
        day,
        payments,
        sales,
        gross,
        refunds,
        chargebacks,
        chargeback_count,
        channel_gross,
        first_at,
        last_at,
        last_sale_at,
        sale_payers: decode_payers(&payers)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channel, PaymentKind};

    #[test]
    fn hex_decodes_both_cases_and_refuses_garbage() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_hex(&hex::encode(&bytes)), Some(bytes.clone()));
        assert_eq!(decode_hex(&hex::encode_upper(&bytes)), Some(bytes));
        assert_eq!(decode_hex(""), Some(Vec::new()));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
    }

    #[test]
    fn payers_round_trip() {
        let p = vec![(u64::MAX, 1), (0, i64::MAX), (12345, 99)];
        assert_eq!(decode_payers(&encode_payers(&p)).unwrap(), p);
        assert!(decode_payers(&[0; 15]).is_err());
    }

    #[test]
    fn packed_lines_parse() {
        let f = PaymentFact {
            at_micros: 86_400_000_000 * 20_000 + 5,
            amount_minor: 1234,
            kind: PaymentKind::Sale,
            channel: Channel::InApp,
            payer: 0xdead_beef,
        };
        let s = DaySummary::of(&f);
        let line = format!(
            "{},1,1,1234,0,0,0,0,1234,0,0,0,{},{},{},{}",
            s.day,
            f.at_micros,
            f.at_micros,
            f.at_micros,
            hex::encode_upper(encode_payers(&s.sale_payers))
        );
        assert_eq!(parse_day(line.split(',').map(Some)).unwrap(), s);
        let no_sale = format!("{},1,0,0,5,0,0,0,0,0,0,0,{0},{0},,", s.day);
        let parsed = parse_day(no_sale.split(',').map(Some)).unwrap();
        assert_eq!((parsed.refunds, parsed.last_sale_at), (5, None));
        assert!(parse_day("1,2,3".split(',').map(Some)).is_err());
    }
}
