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
    /// Summaries to add (days untouched by a recompute), sorted by (merchant, day).
    pub add: Vec<(i64, DaySummary)>,
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
        let in_checked = |i: usize| checked.iter().any(|r| r.contains(&i));
        let mut add: BTreeMap<(i64, i64), DaySummary> = BTreeMap::new();
        for (i, r) in batch.iter().enumerate() {
            let fact = PaymentFact::from(r.payment);
            let key = (r.merchant_key, utc_day(fact.at_micros));
            if redo.contains(&key) || in_checked(i) {
                continue;
            }
            add.entry(key)
                .and_modify(|s| s.add(&fact))
                .or_insert_with(|| DaySummary::of(&fact));
        }
        let mut recompute: Vec<(i64, i64, i64)> = Vec::new();
        for (m, d) in redo {
            match recompute.last_mut() {
                Some((lm, _, end)) if *lm == m && *end == d => *end = d + 1,
                _ => recompute.push((m, d, d + 1)),
            }
        }
        DayPlan {
            add: add.into_iter().map(|((m, _), s)| (m, s)).collect(),
            recompute,
        }
    }

    /// The rows of the first, locking upsert: the summaries to add, and an empty summary of
    /// every day to recompute (adds nothing; creates and locks the row), in (merchant, day)
    /// order.
    pub fn upserts(&self) -> Vec<(i64, DaySummary)> {
        let mut rows = self.add.clone();
        for &(m, from, to) in &self.recompute {
            rows.extend((from..to).map(|day| (m, empty_day(day))));
        }
        rows.sort_by_key(|(m, s)| (*m, s.day));
        rows
    }
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

/// The one-row read of [`super::Store::history`]: the days of the window packed into text (one
/// line per day: the numeric columns, then the payers in hex for the days that need them), and
/// the days before the window merged into one line without payers. sqlx hands rows over one by
/// one through a channel, which costs more than SQLite's work here; one row avoids that.
pub(super) struct PackedDays {
    pub window: Option<String>,
    pub older: Option<String>,
}

/// Parameters of the read, in days since the epoch: payers are read from `payers_from`, rows
/// from `window_from`, up to `to` (exclusive).
pub(super) struct DayWindow {
    pub window_from: i64,
    pub payers_from: i64,
    pub to: i64,
}

impl PackedDays {
    pub fn into_summaries(self) -> Result<Vec<DaySummary>, StoreError> {
        let mut out = Vec::new();
        for text in [self.window, self.older].into_iter().flatten() {
            for line in text.split('\n').filter(|l| !l.is_empty()) {
                out.push(parse_day(line)?);
            }
        }
        Ok(out)
    }
}

fn parse_day(line: &str) -> Result<DaySummary, StoreError> {
    let bad = || StoreError::corrupt(format!("packed payment day {:.80?}", line));
    let mut f = line.split(',');
    let mut int = || -> Result<i64, StoreError> {
        f.next().ok_or_else(bad)?.parse::<i64>().map_err(|_| bad())
    };
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
    let last_sale_at = match f.next().ok_or_else(bad)? {
        "" => None,
        t => Some(t.parse::<i64>().map_err(|_| bad())?),
    };
    let payers = hex::decode(f.next().ok_or_else(bad)?).map_err(|_| bad())?;
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

/// The text of one day in the packed read; `payers_sql` is the hex of the payers when
/// `day >= payers_from`, else the empty string.
pub(super) fn packed_line_sql(to_text: fn(&str) -> String, payers_sql: &str) -> String {
    packed_sql(NUMERIC, to_text, payers_sql)
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
    packed_sql(&aggregates, to_text, "''").replace("last_sale_at", "max(last_sale_at)")
}

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

fn packed_sql(columns: &[&str], to_text: fn(&str) -> String, payers_sql: &str) -> String {
    let mut sql = columns
        .iter()
        .map(|c| to_text(c))
        .collect::<Vec<_>>()
        .join(" || ',' || ");
    sql.push_str(&format!(
        " || ',' || coalesce({}, '') || ',' || {payers_sql}",
        to_text("last_sale_at")
    ));
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channel, PaymentKind};

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
        assert_eq!(parse_day(&line).unwrap(), s);
        let no_sale = format!("{},1,0,0,5,0,0,0,0,0,0,0,{0},{0},,", s.day);
        let parsed = parse_day(&no_sale).unwrap();
        assert_eq!((parsed.refunds, parsed.last_sale_at), (5, None));
        assert!(parse_day("1,2,3").is_err());
    }
}
