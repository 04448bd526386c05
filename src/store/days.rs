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

/// The one-row read of [`super::Store::history`], shaped by what [`History::from_days`] needs
/// per day and what it only needs in total:
/// * per day of the window, one comma-separated list per column (`w0`…`w5`: day, sales, gross,
///   refunds, chargebacks, chargeback count; every list holds the days in the same order, as
///   all aggregates of one query see the same rows);
/// * the window's totals in one line (`window_totals`): its latest day, payment count, first
///   and last payment, last sale, and gross sales by channel over the payer window;
/// * the payers of the payer window as one blob (`payers`);
/// * the days before the window as one line of the same totals (`days_older`).
///
/// sqlx hands rows over one by one through a channel, which costs more than SQLite's work here,
/// so one row it is. Each value SQLite turns into text costs, so only what is needed per day is
/// listed per day, and the payers stay bytes.
///
/// [`History::from_days`]: crate::features::History::from_days
pub(super) struct PackedDays {
    pub window: Vec<Option<String>>,
    pub totals: Option<String>,
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

/// The per-day lists `w0`…`w5`.
const PER_DAY: &[&str] = &[
    "day",
    "sales",
    "gross_minor",
    "refunds_minor",
    "chargebacks_minor",
    "chargebacks",
];
const CHANNELS: &[&str] = &[
    "qr_code_minor",
    "in_app_minor",
    "mini_program_minor",
    "pos_minor",
    "other_minor",
];

/// The SQL parameters of a day read, as each backend writes them.
pub(super) struct DayParams {
    /// The first day of the payer window.
    pub payers_from: &'static str,
    /// The first day of the window.
    pub window_from: &'static str,
    /// The day after the window (exclusive).
    pub to: &'static str,
}

/// The window's aggregates: `w0`…`w5`, `window_totals` and `payers`, for the merchant key
/// `merchant` (an expression). `list(expr)` makes one comma-separated list of a column in day
/// order, `to_text` casts an expression to text, `payer_blob(column)` is the aggregate that
/// concatenates the payer blobs of a set of rows.
///
/// Only the per-day lists, the payment count and the latest day are aggregated over every row
/// of the window. The first and last instants are read from the first and last day by the
/// primary key (a seek each), and the channel sums and payers come from the payer window's rows
/// alone: aggregating them over all ~365 rows with a `CASE` per row and column was about a
/// third of SQLite's time for a score.
pub(super) fn window_columns(
    list: fn(&str) -> String,
    to_text: fn(&str) -> String,
    merchant: &str,
    p: &DayParams,
    payer_blob: fn(&str) -> String,
) -> String {
    let mut columns: Vec<String> = PER_DAY
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} AS w{i}", list(&to_text(c))))
        .collect();
    let window = format!(
        "FROM payment_days f WHERE f.merchant = {merchant} AND f.day >= {} AND f.day < {}",
        p.window_from, p.to
    );
    let payer_window = format!(
        "FROM payment_days f WHERE f.merchant = {merchant} AND f.day >= {} AND f.day < {}",
        p.payers_from, p.to
    );
    let first_at = format!("(SELECT f.first_at {window} ORDER BY f.day LIMIT 1)");
    let last_at = format!("(SELECT f.last_at {window} ORDER BY f.day DESC LIMIT 1)");
    let last_sale_at = format!(
        "(SELECT f.last_sale_at {window} AND f.last_sale_at IS NOT NULL ORDER BY f.day DESC LIMIT 1)"
    );
    let channels = CHANNELS
        .iter()
        .map(|c| to_text(&format!("coalesce(sum(f.{c}), 0)")))
        .collect::<Vec<_>>()
        .join(" || ',' || ");
    let totals = [
        to_text("max(day)"),
        to_text("sum(payments)"),
        to_text(&first_at),
        to_text(&last_at),
        format!("coalesce({}, '')", to_text(&last_sale_at)),
        format!("(SELECT {channels} {payer_window})"),
    ]
    .join(" || ',' || ");
    columns.push(format!("{totals} AS window_totals"));
    columns.push(format!(
        "(SELECT {} {payer_window}) AS payers",
        payer_blob("f.sale_payers")
    ));
    columns.join(", ")
}

/// The days before the window as one line of totals: only counts and instants matter there
/// (the sums are outside every window).
pub(super) fn packed_older_sql(to_text: fn(&str) -> String) -> String {
    totals_sql("min(day)", ["0"; 5].map(String::from).into_iter(), to_text)
}

/// `day,payments,first_at,last_at,last_sale_at,channel sums…` of a set of days.
fn totals_sql(
    day: &str,
    channels: impl Iterator<Item = String>,
    to_text: fn(&str) -> String,
) -> String {
    let mut parts: Vec<String> = [day, "sum(payments)", "min(first_at)", "max(last_at)"]
        .iter()
        .map(|e| to_text(e))
        .collect();
    parts.push(format!("coalesce({}, '')", to_text("max(last_sale_at)")));
    parts.extend(channels.map(|c| to_text(&c)));
    parts.join(" || ',' || ")
}

impl PackedDays {
    /// Reads `w0`…`w5`, `window_totals`, `payers` and `days_older` from a row.
    pub fn from_row<R: sqlx::Row>(row: &R) -> Result<PackedDays, StoreError>
    where
        for<'c> &'c str: sqlx::ColumnIndex<R>,
        Option<String>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        Option<Vec<u8>>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        let window = (0..PER_DAY.len())
            .map(|i| row.try_get::<Option<String>, _>(format!("w{i}").as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PackedDays {
            window,
            totals: row.try_get("window_totals")?,
            payers: row.try_get("payers")?,
            older: row.try_get("days_older")?,
        })
    }

    /// Day summaries that [`crate::features::History::from_days`] turns into exactly the
    /// history of the stored days: one per day with its sums, and one per set of totals holding
    /// the counts, instants, channel sums and payers (on the window's latest day, which lies in
    /// the payer window whenever there are payers or channel sums).
    pub fn into_summaries(self) -> Result<Vec<DaySummary>, StoreError> {
        let bad = || StoreError::corrupt("a packed payment day is malformed");
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
                let mut int = |i: usize| -> Result<i64, StoreError> {
                    lists[i].next().ok_or_else(bad)?.parse().map_err(|_| bad())
                };
                let mut s = empty_day(int(0)?);
                s.sales = u32::try_from(int(1)?).map_err(|_| bad())?;
                s.gross = int(2)?;
                s.refunds = int(3)?;
                s.chargebacks = int(4)?;
                s.chargeback_count = u32::try_from(int(5)?).map_err(|_| bad())?;
                out.push(s);
            }
            if lists.iter_mut().any(|l| l.next().is_some()) {
                return Err(StoreError::corrupt("day columns of unequal length"));
            }
        }
        if let Some(totals) = self.totals {
            let mut s = parse_totals(&totals)?;
            s.sale_payers = decode_payers(self.payers.as_deref().unwrap_or_default())?;
            out.push(s);
        }
        if let Some(line) = self.older {
            out.push(parse_totals(&line)?);
        }
        Ok(out)
    }
}

/// A totals line: `day,payments,first_at,last_at,last_sale_at,qr,in_app,mini_program,pos,other`.
fn parse_totals(line: &str) -> Result<DaySummary, StoreError> {
    let bad = || StoreError::corrupt("a packed payment day total is malformed");
    let fields: Vec<&str> = line.split(',').collect();
    let [
        day,
        payments,
        first_at,
        last_at,
        last_sale_at,
        channels @ ..,
    ] = fields.as_slice()
    else {
        return Err(bad());
    };
    if channels.len() != 5 {
        return Err(bad());
    }
    let int = |t: &str| -> Result<i64, StoreError> { t.parse().map_err(|_| bad()) };
    let mut s = empty_day(int(day)?);
    s.payments = u32::try_from(int(payments)?).map_err(|_| bad())?;
    s.first_at = int(first_at)?;
    s.last_at = int(last_at)?;
    s.last_sale_at = match *last_sale_at {
        "" => None,
        t => Some(int(t)?),
    };
    for (c, t) in s.channel_gross.iter_mut().zip(channels) {
        *c = int(t)?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn packed_days_parse() {
        let packed = PackedDays {
            window: ["20000,20001", "1,0", "1234,0", "0,5", "0,0", "0,0"]
                .map(|c| Some(c.to_string()))
                .to_vec(),
            totals: Some("20001,2,7,9,8,0,1234,0,0,0".to_string()),
            payers: Some(encode_payers(&[PayerSales {
                payer: 0xdead_beef,
                sales: 1,
                amount: 1234,
            }])),
            older: Some("19000,3,1,2,,0,0,0,0,0".to_string()),
        };
        let s = packed.into_summaries().unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!((s[0].day, s[0].sales, s[0].gross), (20000, 1, 1234));
        assert_eq!((s[1].day, s[1].refunds), (20001, 5));
        assert_eq!((s[2].payments, s[2].first_at, s[2].last_at), (2, 7, 9));
        assert_eq!((s[2].last_sale_at, s[2].channel_gross[1]), (Some(8), 1234));
        assert_eq!(
            s[2].sale_payers,
            vec![PayerSales {
                payer: 0xdead_beef,
                sales: 1,
                amount: 1234
            }]
        );
        assert_eq!(
            (s[3].day, s[3].payments, s[3].last_sale_at),
            (19000, 3, None)
        );
        assert!(parse_totals("1,2,3").is_err());
        let uneven = PackedDays {
            window: ["1,2", "1", "1", "1", "1", "1"]
                .map(|c| Some(c.to_string()))
                .to_vec(),
            totals: None,
            payers: None,
            older: None,
        };
        assert!(uneven.into_summaries().is_err());
    }
}
