//! PostgreSQL: for production and for several replicas behind a load balancer.

use super::days::{self, DayPlan};
use super::{
    NewPayment, OnConflict, StoreError, StoreOptions, classify_batch, stored_content_from_row,
};
use crate::domain::{Channel, PaymentKind};
use crate::features::{DaySummary, PaymentFact, payer_key, summarize_days};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Row};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::OnceLock;

const DAY_MICROS: i64 = 86_400_000_000;

pub(super) async fn connect(o: &StoreOptions) -> Result<PgPool, StoreError> {
    let mut options = PgConnectOptions::from_str(&o.url)
        .map_err(|e| StoreError::Config(format!("the PostgreSQL URL cannot be read: {e}")))?;
    if let Some(timeout) = o.statement_timeout.filter(|t| !t.is_zero()) {
        options = options.options([("statement_timeout", format!("{}ms", timeout.as_millis()))]);
    }
    Ok(PgPoolOptions::new()
        .max_connections(o.max_connections.max(1))
        .acquire_timeout(o.acquire_timeout)
        .connect_with(options)
        .await?)
}

/// The whole batch goes in one statement: PostgreSQL takes each column as one array.
pub(super) async fn insert_payments(
    pool: &PgPool,
    batch: &[NewPayment<'_>],
    on_conflict: OnConflict,
) -> Result<super::InsertOutcome, StoreError> {
    let n = batch.len();
    let mut merchants = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut amounts = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut channels = Vec::with_capacity(n);
    let mut payers = Vec::with_capacity(n);
    for r in batch {
        let p = r.payment;
        merchants.push(r.merchant_key);
        ids.push(p.id.as_str());
        times.push(p.occurred_at_micros());
        amounts.push(p.amount.minor());
        kinds.push(p.kind.as_str());
        channels.push(p.channel.as_str());
        payers.push(p.payer_ref.as_str());
    }
    let mut tx = pool.begin().await?;
    let accepted = sqlx::query(
        "INSERT INTO payments (merchant, payment_id, occurred_at, amount_minor, kind, channel, payer_ref)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[])
         ON CONFLICT (merchant, payment_id) DO NOTHING",
    )
    .bind(&merchants)
    .bind(&ids)
    .bind(&times)
    .bind(&amounts)
    .bind(&kinds)
    .bind(&channels)
    .bind(&payers)
    .execute(&mut *tx)
    .await?
    .rows_affected();

    let mut checked = Vec::new();
    let mut stored = HashMap::new();
    if accepted < n as u64 {
        checked.push(0..n);
        let rows = sqlx::query(
            "SELECT merchant, payment_id, occurred_at, amount_minor, kind, channel, payer_ref FROM payments
             WHERE (merchant, payment_id) IN (SELECT * FROM UNNEST($1::bigint[], $2::text[]))",
        )
        .bind(&merchants)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            let (key, content) = stored_content_from_row(&row)?;
            stored.insert(key, content);
        }
    }
    let outcome = classify_batch(batch, &checked, accepted, &stored)?;
    if !outcome.conflicts.is_empty() && on_conflict == OnConflict::RejectBatch {
        tx.rollback().await?;
        return Ok(super::InsertOutcome {
            accepted: 0,
            duplicates: 0,
            conflicts: outcome.conflicts,
        });
    }
    apply_day_plan(&mut tx, &DayPlan::new(batch, &checked)).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Brings `payment_days` up to date with the payments this transaction stored (see [`days`]
/// for why this is exact, also with concurrent writers).
pub(super) async fn apply_day_plan(
    tx: &mut sqlx::PgConnection,
    plan: &DayPlan,
) -> Result<(), StoreError> {
    upsert_days(&mut *tx, &plan.upserts).await?;
    for &(m, from, to) in &plan.recompute {
        let facts = facts_between(&mut *tx, m, from * DAY_MICROS, to * DAY_MICROS).await?;
        sqlx::query("DELETE FROM payment_days WHERE merchant = $1 AND day >= $2 AND day < $3")
            .bind(m)
            .bind(from)
            .bind(to)
            .execute(&mut *tx)
            .await?;
        let fresh: Vec<(i64, DaySummary)> =
            summarize_days(&facts).into_iter().map(|s| (m, s)).collect();
        upsert_days(&mut *tx, &fresh).await?;
    }
    Ok(())
}

/// One statement for all rows: PostgreSQL takes each column as an array.
async fn upsert_days(
    tx: &mut sqlx::PgConnection,
    rows: &[(i64, DaySummary)],
) -> Result<(), StoreError> {
    static SQL: OnceLock<String> = OnceLock::new();
    if rows.is_empty() {
        return Ok(());
    }
    let sql = SQL.get_or_init(|| {
        format!(
            "INSERT INTO payment_days ({}, sale_payers)
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
               $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[],
               $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[],
               $17::bytea[]){} RETURNING merchant, day, payments",
            days::COLUMNS,
            days::add_on_conflict("LEAST", "GREATEST", Some(|a, b| format!("{a} || {b}")))
        )
    });
    let col = |f: &dyn Fn(&(i64, DaySummary)) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    let returned = sqlx::query(AssertSqlSafe(sql.as_str()))
        .bind(col(&|r| r.0))
        .bind(col(&|r| r.1.day))
        .bind(col(&|r| i64::from(r.1.payments)))
        .bind(col(&|r| i64::from(r.1.sales)))
        .bind(col(&|r| r.1.gross))
        .bind(col(&|r| r.1.refunds))
        .bind(col(&|r| r.1.chargebacks))
        .bind(col(&|r| i64::from(r.1.chargeback_count)))
        .bind(col(&|r| r.1.channel_gross[0]))
        .bind(col(&|r| r.1.channel_gross[1]))
        .bind(col(&|r| r.1.channel_gross[2]))
        .bind(col(&|r| r.1.channel_gross[3]))
        .bind(col(&|r| r.1.channel_gross[4]))
        .bind(col(&|r| r.1.first_at))
        .bind(col(&|r| r.1.last_at))
        .bind(
            rows.iter()
                .map(|r| r.1.last_sale_at)
                .collect::<Vec<Option<i64>>>(),
        )
        .bind(
            rows.iter()
                .map(|r| days::encode_payers(&r.1.sale_payers))
                .collect::<Vec<Vec<u8>>>(),
        )
        .fetch_all(&mut *tx)
        .await?;
    let returned = returned
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<Vec<(i64, i64, i64)>, sqlx::Error>>()?;
    // The days the upsert added to hold two payer lists one after the other: compact them.
    // The upsert locked those rows until the transaction ends, so no concurrent writer
    // changes them in between.
    let merged = days::merged_days(rows, &returned);
    if merged.is_empty() {
        return Ok(());
    }
    let (ms, ds): (Vec<i64>, Vec<i64>) = merged.into_iter().unzip();
    let stored: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT merchant, day, sale_payers FROM payment_days
         WHERE (merchant, day) IN (SELECT * FROM UNNEST($1::bigint[], $2::bigint[]))",
    )
    .bind(&ms)
    .bind(&ds)
    .fetch_all(&mut *tx)
    .await?;
    let (mut um, mut ud, mut ub) = (Vec::new(), Vec::new(), Vec::new());
    for (m, d, blob) in stored {
        if let Some(one) = days::compacted(&blob)? {
            um.push(m);
            ud.push(d);
            ub.push(one);
        }
    }
    if !um.is_empty() {
        sqlx::query(
            "UPDATE payment_days p SET sale_payers = u.b
             FROM UNNEST($1::bigint[], $2::bigint[], $3::bytea[]) AS u(m, d, b)
             WHERE p.merchant = u.m AND p.day = u.d",
        )
        .bind(&um)
        .bind(&ud)
        .bind(&ub)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// The stored facts of a merchant in `[from, to)` (microseconds), inside a transaction.
pub(super) async fn facts_between(
    conn: &mut sqlx::PgConnection,
    merchant_key: i64,
    from: i64,
    to: i64,
) -> Result<Vec<PaymentFact>, StoreError> {
    let bad = |what: &str, e: crate::domain::Invalid| StoreError::corrupt(format!("{what}: {e}"));
    sqlx::query(
        "SELECT occurred_at, amount_minor, kind, channel, payer_ref FROM payments
         WHERE merchant = $1 AND occurred_at >= $2 AND occurred_at < $3",
    )
    .bind(merchant_key)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        Ok(PaymentFact {
            at_micros: row.try_get("occurred_at")?,
            amount_minor: row.try_get("amount_minor")?,
            kind: PaymentKind::parse(row.try_get::<&str, _>("kind")?)
                .map_err(|e| bad("kind", e))?,
            channel: Channel::parse(row.try_get::<&str, _>("channel")?)
                .map_err(|e| bad("channel", e))?,
            payer: payer_key(row.try_get::<&str, _>("payer_ref")?),
        })
    })
    .collect()
}

/// The columns of a day read (see [`days::PackedDays`]) after its `FROM payment_days`, for
/// merchant key `merchant`; parameters $1 = first day of payers, $3 = first day of the window.
/// Each day's packed record is built here (`int8send` is a bigint's 8 bytes, big-endian).
fn day_columns(merchant: &str) -> String {
    let record = days::record_sql(
        "payment_days",
        |c| format!("int8send({c})"),
        " || ",
        "(-9223372036854775807 - 1)",
    );
    let older = days::packed_older_sql(|c| format!("({c})::text"));
    format!(
        "string_agg({record}, ''::bytea) AS days, \
         (SELECT string_agg(p.sale_payers, ''::bytea) FROM payment_days p \
          WHERE p.merchant = {merchant} AND p.day >= $1 AND p.day < $4) AS payers, \
         (SELECT {older} FROM payment_days o WHERE o.merchant = {merchant} AND o.day < $3) AS days_older"
    )
}

/// A merchant found by id ($2) with its day read (days $3..$4), in one statement.
pub(super) fn merchant_history_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {}, {} FROM merchants
             LEFT JOIN payment_days ON payment_days.merchant = merchants.id
                AND payment_days.day >= $3 AND payment_days.day < $4
             WHERE merchants.merchant_id = $2 GROUP BY merchants.id",
            super::MERCHANT_COLUMNS,
            day_columns("merchants.id")
        )
    })
}

/// The day read of one merchant key ($2), days $3..$4, in one row.
pub(super) fn history_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {} FROM payment_days WHERE merchant = $2 AND day >= $3 AND day < $4",
            day_columns("$2")
        )
    })
}
