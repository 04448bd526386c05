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
use crate::features::{DaySummary, PayerSales, PaymentFact, compact_payer_sales, utc_day};
use std::collections::{BTreeMap, BTreeSet, HashMap};
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

/// The columns of a day row, without its payers (SQLite keeps those in a table of their own,
/// PostgreSQL in `payment_days.sale_payers`).
pub(super) const COLUMNS: &str = "merchant, day, payments, sales, gross_minor, refunds_minor, chargebacks_minor, chargebacks, qr_code_minor, in_app_minor, mini_program_minor, pos_minor, other_minor, first_at, last_at, last_sale_at";
pub(super) const NUM_COLUMNS: usize = 16;

/// The `ON CONFLICT` clause that adds a summary to a stored day of `table`, and with
/// `payers = Some(concat)` also its payers (`concat` joins two byte strings: `||` on
/// PostgreSQL; SQLite's `||` makes text of the bytes, cast back).
pub(super) fn add_on_conflict(
    least: &str,
    greatest: &str,
    payers: Option<fn(&str, &str) -> String>,
) -> String {
    let sums = SUMMED_FIELDS
        .iter()
        .map(|c| format!("{c} = payment_days.{c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let payers = payers.map_or(String::new(), |concat| {
        format!(
            ", sale_payers = {}",
            concat("payment_days.sale_payers", "excluded.sale_payers")
        )
    });
    format!(
        " ON CONFLICT (merchant, day) DO UPDATE SET {sums}, \
         first_at = {least}(payment_days.first_at, excluded.first_at), \
         last_at = {greatest}(payment_days.last_at, excluded.last_at), \
         last_sale_at = CASE WHEN payment_days.last_sale_at IS NULL OR excluded.last_sale_at > payment_days.last_sale_at \
         THEN excluded.last_sale_at ELSE payment_days.last_sale_at END{payers}"
    )
}

/// The fields of a packed day record (see [`PackedDays`]), in order: each a big-endian `i64`;
/// a day without sales has `last_sale_at` = `i64::MIN`. SQLite stores the record in the
/// generated column `payment_days.packed` (migration 9, whose expression lists the same
/// fields); PostgreSQL builds it in the read ([`record_sql`]).
pub(super) const RECORD_FIELDS: [&str; 15] = [
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
    "last_sale_at",
];
const RECORD_BYTES: usize = 8 * RECORD_FIELDS.len();
/// The fields two summaries of one day add up: those of the record between the day and the
/// instants.
const SUMMED_FIELDS: &[&str] = {
    let (_day, rest) = RECORD_FIELDS.split_at(1);
    rest.split_at(11).0
};

/// The packed record of a day row of `table` (an alias), as one byte string: `field(column)`
/// gives a column's 8 bytes, `concat` joins byte strings, `no_sale` is `i64::MIN` in the
/// backend's SQL.
pub(super) fn record_sql(
    table: &str,
    field: fn(&str) -> String,
    concat: &str,
    no_sale: &str,
) -> String {
    RECORD_FIELDS
        .iter()
        .map(|c| match *c {
            "last_sale_at" => field(&format!("coalesce({table}.{c}, {no_sale})")),
            _ => field(&format!("{table}.{c}")),
        })
        .collect::<Vec<_>>()
        .join(concat)
}

fn decode_record(r: &[u8]) -> Result<DaySummary, StoreError> {
    let bad = || StoreError::corrupt("a packed payment day is malformed");
    let int = |i: usize| i64::from_be_bytes(r[8 * i..8 * i + 8].try_into().expect("8 bytes"));
    let count = |i: usize| u32::try_from(int(i)).map_err(|_| bad());
    let mut s = empty_day(int(0));
    s.payments = count(1)?;
    s.sales = count(2)?;
    s.gross = int(3);
    s.refunds = int(4);
    s.chargebacks = int(5);
    s.chargeback_count = count(6)?;
    for (k, c) in s.channel_gross.iter_mut().enumerate() {
        *c = int(7 + k);
    }
    s.first_at = int(12);
    s.last_at = int(13);
    s.last_sale_at = Some(int(14)).filter(|&t| t != i64::MIN);
    Ok(s)
}

/// Bytes per payer entry of `sale_payers`.
const PAYER_BYTES: usize = 20;

/// 20 bytes per payer: payer key (u64), number of sales (u32) and their amount (i64),
/// little-endian (migration 8).
pub(super) fn encode_payers(payers: &[PayerSales]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payers.len() * PAYER_BYTES);
    for e in payers {
        out.extend_from_slice(&e.payer.to_le_bytes());
        out.extend_from_slice(&e.sales.to_le_bytes());
        out.extend_from_slice(&e.amount.to_le_bytes());
    }
    out
}

pub(super) fn decode_payers(bytes: &[u8]) -> Result<Vec<PayerSales>, StoreError> {
    if !bytes.len().is_multiple_of(PAYER_BYTES) {
        return Err(StoreError::corrupt(
            "sale_payers is not a multiple of 20 bytes",
        ));
    }
    Ok(bytes
        .chunks_exact(PAYER_BYTES)
        .map(|c| PayerSales {
            payer: u64::from_le_bytes(c[..8].try_into().expect("8 bytes")),
            sales: u32::from_le_bytes(c[8..12].try_into().expect("4 bytes")),
            amount: i64::from_le_bytes(c[12..].try_into().expect("8 bytes")),
        })
        .collect())
}

/// The days of `upserts` that the upsert added to a stored day rather than inserted:
/// `returned` holds `(merchant, day, payments)` of every upserted row after the upsert, and a
/// row whose payment count exceeds what was upserted held payments before. Their
/// `sale_payers` are two lists one after the other, to be compacted into one.
pub(super) fn merged_days(
    upserts: &[(i64, DaySummary)],
    returned: &[(i64, i64, i64)],
) -> Vec<(i64, i64)> {
    let given: HashMap<(i64, i64), i64> = upserts
        .iter()
        .map(|(m, s)| ((*m, s.day), i64::from(s.payments)))
        .collect();
    let mut out: Vec<(i64, i64)> = returned
        .iter()
        .filter(|&&(m, d, payments)| given.get(&(m, d)).is_some_and(|&n| payments > n && n > 0))
        .map(|&(m, d, _)| (m, d))
        .collect();
    out.sort_unstable();
    out
}

/// The one list of payers of a stored day whose `sale_payers` concatenates several, if that
/// list is shorter.
pub(super) fn compacted(bytes: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    let mut entries = decode_payers(bytes)?;
    let before = entries.len();
    compact_payer_sales(&mut entries);
    Ok((entries.len() < before).then(|| encode_payers(&entries)))
}

/// The one-row read of [`super::Store::history`]:
/// * `days`: every day of the window as one packed record each ([`RECORD_FIELDS`], 120 bytes),
///   concatenated in any order;
/// * `payers`: the payers of the payer window as one blob;
/// * `days_older`: the days before the window as one line of totals
///   (`day,payments,first_at,last_at,last_sale_at`): only counts and instants matter there.
///
/// sqlx hands rows over one by one through a channel, which costs more than SQLite's work here,
/// so one row it is; and fixed binary records instead of numbers as text, because turning
/// values into text and back was most of SQLite's work for a score (see migration 9).
///
/// [`History::from_days`]: crate::features::History::from_days
pub(super) struct PackedDays {
    pub days: Option<Vec<u8>>,
    pub payers: Option<Vec<u8>>,
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

/// The `days_older` line of a set of day rows; `to_text` casts an expression to text.
pub(super) fn packed_older_sql(to_text: fn(&str) -> String) -> String {
    let mut parts: Vec<String> = ["min(day)", "sum(payments)", "min(first_at)", "max(last_at)"]
        .iter()
        .map(|e| to_text(e))
        .collect();
    parts.push(format!("coalesce({}, '')", to_text("max(last_sale_at)")));
    parts.join(" || ',' || ")
}

impl PackedDays {
    /// Reads `days`, `payers` and `days_older` from a row.
    pub fn from_row<R: sqlx::Row>(row: &R) -> Result<PackedDays, StoreError>
    where
        for<'c> &'c str: sqlx::ColumnIndex<R>,
        Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        Option<Vec<u8>>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(PackedDays {
            days: row.try_get("days")?,
            payers: row.try_get("payers")?,
            older: row.try_get("days_older")?,
        })
    }

    /// Day summaries that [`crate::features::History::from_days`] turns into exactly the
    /// history of the stored days: one per day of the window, the payers of the payer window on
    /// its latest day (which lies in the payer window whenever there are payers), and one for
    /// the older days holding their counts and instants.
    pub fn into_summaries(self) -> Result<Vec<DaySummary>, StoreError> {
        let bytes = self.days.unwrap_or_default();
        if !bytes.len().is_multiple_of(RECORD_BYTES) {
            return Err(StoreError::corrupt(
                "the packed payment days are not whole records",
            ));
        }
        let mut out = bytes
            .chunks_exact(RECORD_BYTES)
            .map(decode_record)
            .collect::<Result<Vec<_>, _>>()?;
        let payers = decode_payers(self.payers.as_deref().unwrap_or_default())?;
        if !payers.is_empty() {
            let latest = out
                .iter_mut()
                .max_by_key(|s| s.day)
                .ok_or_else(|| StoreError::corrupt("payers without a payment day"))?;
            latest.sale_payers = payers;
        }
        if let Some(line) = self.older {
            out.push(parse_totals(&line)?);
        }
        Ok(out)
    }
}

/// A totals line: `day,payments,first_at,last_at,last_sale_at`.
fn parse_totals(line: &str) -> Result<DaySummary, StoreError> {
    let bad = || StoreError::corrupt("a packed payment day total is malformed");
    let fields: Vec<&str> = line.split(',').collect();
    let [day, payments, first_at, last_at, last_sale_at] = fields.as_slice() else {
        return Err(bad());
    };
    let int = |t: &str| -> Result<i64, StoreError> { t.parse().map_err(|_| bad()) };
    let mut s = empty_day(int(day)?);
    s.payments = u32::try_from(int(payments)?).map_err(|_| bad())?;
    s.first_at = int(first_at)?;
    s.last_at = int(last_at)?;
    s.last_sale_at = match *last_sale_at {
        "" => None,
        t => Some(int(t)?),
    };
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_adds_up_its_counts_and_sums_not_its_day_or_instants() {
        assert_eq!(SUMMED_FIELDS.first(), Some(&"payments"));
        assert_eq!(SUMMED_FIELDS.last(), Some(&"other_minor"));
        assert_eq!(SUMMED_FIELDS.len(), 11);
    }

    #[test]
    fn payers_round_trip() {
        let e = |payer, sales, amount| PayerSales {
            payer,
            sales,
            amount,
        };
        let p = vec![e(u64::MAX, 1, 1), e(0, u32::MAX, i64::MAX), e(12345, 3, 99)];
        assert_eq!(decode_payers(&encode_payers(&p)).unwrap(), p);
        assert!(decode_payers(&[0; 19]).is_err());
        assert!(
            decode_payers(&[0; 16]).is_err(),
            "the old 16-byte format is refused"
        );
        // two lists one after the other compact into one sorted list, one entry per payer
        let day = [e(7, 1, 10), e(9, 2, 30)];
        let later = [e(3, 1, 5), e(9, 1, 20)];
        let both = [encode_payers(&day), encode_payers(&later)].concat();
        let one = decode_payers(&compacted(&both).unwrap().unwrap()).unwrap();
        assert_eq!(one, vec![e(3, 1, 5), e(7, 1, 10), e(9, 3, 50)]);
        assert_eq!(compacted(&encode_payers(&p[..1])).unwrap(), None);
    }

    /// A day's packed record, as the databases build it.
    fn record(s: &DaySummary) -> Vec<u8> {
        let mut v = vec![
            s.day,
            i64::from(s.payments),
            i64::from(s.sales),
            s.gross,
            s.refunds,
            s.chargebacks,
            i64::from(s.chargeback_count),
        ];
        v.extend(s.channel_gross);
        v.extend([s.first_at, s.last_at, s.last_sale_at.unwrap_or(i64::MIN)]);
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    #[test]
    fn packed_days_parse() {
        let payer = PayerSales {
            payer: 0xdead_beef,
            sales: 1,
            amount: 1234,
        };
        let mut sale_day = empty_day(20001);
        sale_day.payments = 2;
        sale_day.sales = 1;
        sale_day.gross = 1234;
        sale_day.refunds = 5;
        sale_day.channel_gross = [0, 1234, 0, 0, -7];
        sale_day.first_at = 7;
        sale_day.last_at = 9;
        sale_day.last_sale_at = Some(8);
        let mut refund_day = empty_day(20000);
        refund_day.payments = 1;
        refund_day.refunds = 3;
        refund_day.chargebacks = 4;
        refund_day.chargeback_count = 1;
        refund_day.first_at = 1;
        refund_day.last_at = 2;
        // any order: the payers go to the latest day
        let packed = PackedDays {
            days: Some([record(&sale_day), record(&refund_day)].concat()),
            payers: Some(encode_payers(std::slice::from_ref(&payer))),
            older: Some("19000,3,1,2,".to_string()),
        };
        let s = packed.into_summaries().unwrap();
        assert_eq!(s.len(), 3);
        sale_day.sale_payers = vec![payer];
        assert_eq!(s[0], sale_day);
        assert_eq!(s[1], refund_day);
        assert_eq!(s[1].last_sale_at, None);
        assert_eq!(
            (s[2].day, s[2].payments, s[2].first_at, s[2].last_sale_at),
            (19000, 3, 1, None)
        );
        assert!(parse_totals("1,2,3").is_err());
        let torn = PackedDays {
            days: Some(record(&refund_day)[..100].to_vec()),
            payers: None,
            older: None,
        };
        assert!(torn.into_summaries().is_err());
        let orphan_payers = PackedDays {
            days: None,
            payers: Some(encode_payers(&[payer])),
            older: None,
        };
        assert!(orphan_payers.into_summaries().is_err());
    }
}
