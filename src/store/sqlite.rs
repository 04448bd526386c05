//! SQLite: the embedded default. A file created on first start, in WAL mode so readers never
//! wait for the writer.

use super::days::{self, DayPlan};
use super::{
    NewPayment, OnConflict, StoreError, StoreOptions, classify_batch, stored_content_from_row,
};
use crate::domain::{Channel, PaymentKind};
use crate::features::{DaySummary, PaymentFact, payer_key, summarize_days};
use sqlx::AssertSqlSafe;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

/// The file of the audit log, next to the database: `smecredit.db` → `smecredit-audit.db`
/// (`data` → `data-audit`). It is attached as `audit` on every connection (migration 7).
pub fn audit_file(database: &Path) -> PathBuf {
    let stem = database
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match database.extension() {
        Some(ext) => format!("{stem}-audit.{}", ext.to_string_lossy()),
        None => format!("{stem}-audit"),
    };
    database.with_file_name(name)
}

/// The pools of a SQLite store: the one writer of the main file and the readers. Each
/// connection opens the main file and attaches the audit file as `audit`, so a statement may
/// name a table of either. The day reads and the audit log's appends have connections of their
/// own (`hot`), on the main file's `path`.
pub(super) struct Pools {
    pub writer: SqlitePool,
    pub reader: SqlitePool,
    pub path: PathBuf,
}

/// The page cache of the audit file on each connection, in KiB.
pub(super) const AUDIT_CACHE_KIB: u64 = 512;

/// Each connection's page cache of the main file, in KiB: an equal share of the budget among the
/// pooled readers, the writer, the audit writer and the day readers (one per core: one per HTTP
/// worker), at least 64 KiB.
pub(super) fn cache_kib(o: &StoreOptions) -> u64 {
    let connections = u64::from(o.max_connections.max(1)) + 2 + day_readers();
    (o.sqlite_cache_bytes / 1024 / connections).max(64)
}

/// How many day readers the cache budget counts: the HTTP workers, one per core.
pub(super) fn day_readers() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

pub(super) async fn connect(o: &StoreOptions) -> Result<Pools, StoreError> {
    let options = SqliteConnectOptions::from_str(&o.url)
        .map_err(|e| StoreError::Config(format!("{}: {e}", o.url)))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(if o.sqlite_synchronous_full {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        })
        .busy_timeout(o.acquire_timeout)
        .foreign_keys(true)
        // No memory map: each connection would map the whole file, and the kernel counts a
        // mapped page once per mapping, so ten connections showed the hot pages ten times over (resident 502 MB under the scoring benchmark, for 22 MB of the
        // service's own memory). Since the audit log left the main file, scoring no longer
        // writes to it, so each connection's page cache stays warm between requests and the
        // few pages a score reads (about 365 day rows) are copied from the OS cache cheaply.
        .pragma("mmap_size", "0")
        // Each connection's page cache of the main file gets an equal share of
        // `sqlite_cache_bytes`, so SQLite's caches together stay within it however many
        // connections meet however many pages (the soak once saw them grow with the data).
        // SQLite is built without its process-wide memory manager (`.cargo/config.toml`), so
        // this per-connection bound is the one that holds.
        .pragma("cache_size", format!("-{}", cache_kib(o)));
    let path = options.get_filename().to_path_buf();
    // (sqlx has no getter for an in-memory database: its URL says so)
    if path.as_os_str().is_empty() || o.url.contains(":memory:") || o.url.contains("mode=memory") {
        return Err(StoreError::Config(format!(
            "{}: SQLite needs a file (the audit log and the day reads open it by name)",
            o.url
        )));
    }
    let audit = audit_file(&path).to_string_lossy().into_owned();
    let synchronous = if o.sqlite_synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    let pool = |max: u32| {
        let audit = audit.clone();
        SqlitePoolOptions::new()
            .max_connections(max)
            .acquire_timeout(o.acquire_timeout)
            .after_connect(move |conn, _| {
                let audit = audit.clone();
                Box::pin(async move {
                    sqlx::query("ATTACH DATABASE ? AS audit")
                        .bind(audit)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA audit.journal_mode = WAL")
                        .execute(&mut *conn)
                        .await?;
                    // The audit log is appended at its end and read one record at a time.
                    sqlx::query(AssertSqlSafe(format!(
                        "PRAGMA audit.cache_size = -{AUDIT_CACHE_KIB}"
                    )))
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(AssertSqlSafe(format!(
                        "PRAGMA audit.synchronous = {synchronous}"
                    )))
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
    };
    let writer = pool(1).connect_with(options.clone()).await?;
    let reader = pool(o.max_connections.max(1))
        .connect_with(options.clone())
        .await?;
    Ok(Pools {
        writer,
        reader,
        path,
    })
}

/// Whether a bulk statement of `rows` rows (at most `full`) stays prepared on its connection.
/// sqlx keeps up to 100 prepared statements per connection, one per distinct text, and a bulk
/// statement's text depends on its row count: kept for every size, the writer's cache fills with
/// a statement for every batch size it has seen, up to a thousand rows each (a heap profile of
/// the demo's seeding and a soak found 8 MB in 52 prepared statements, about 150 kB each). Full
/// chunks (bulk imports) and small batches are kept; other sizes are prepared for the one use.
fn keep_prepared(rows: usize, full: usize) -> bool {
    rows == full || rows <= 8
}

/// Rows per INSERT statement: 7 parameters each, well inside SQLite's limit of 32,766.
const ROWS_PER_STATEMENT: usize = 1_000;
const DAY_MICROS: i64 = 86_400_000_000;
/// Keys per content look-up: 2 parameters each.
const KEYS_PER_LOOKUP: usize = 1_000;

/// Bulk statements use anonymous `?` parameters: for a numbered one (`$7000`) sqlx asks SQLite
/// for its name, which SQLite finds by a linear scan, so binding n of them costs O(n²) — 90% of
/// the import's time at 7,000 parameters.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO payments (merchant, payment_id, occurred_at, amount_minor, kind, channel, payer_ref) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?)");
    }
    sql.push_str(" ON CONFLICT (merchant, payment_id) DO NOTHING");
    sql
}

fn full_insert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| insert_sql(ROWS_PER_STATEMENT))
}

pub(super) async fn insert_payments(
    pool: &SqlitePool,
    batch: &[NewPayment<'_>],
    on_conflict: OnConflict,
) -> Result<super::InsertOutcome, StoreError> {
    let mut tx = pool.begin().await?;
    let mut accepted = 0u64;
    let mut checked = Vec::new();
    for (n, chunk) in batch.chunks(ROWS_PER_STATEMENT).enumerate() {
        let sql = if chunk.len() == ROWS_PER_STATEMENT {
            AssertSqlSafe(full_insert_sql().to_string())
        } else {
            AssertSqlSafe(insert_sql(chunk.len()))
        };
        let mut q = sqlx::query(sql).persistent(keep_prepared(chunk.len(), ROWS_PER_STATEMENT));
        for r in chunk {
            let p = r.payment;
            q = q
                .bind(r.merchant_key)
                .bind(p.id.as_str())
                .bind(p.occurred_at_micros())
                .bind(p.amount.minor())
                .bind(p.kind.as_str())
                .bind(p.channel.as_str())
                .bind(p.payer_ref.as_str());
        }
        let stored = q.execute(&mut *tx).await?.rows_affected();
        accepted += stored;
        if stored < chunk.len() as u64 {
            let start = n * ROWS_PER_STATEMENT;
            checked.push(start..start + chunk.len());
        }
    }
    let mut stored = HashMap::new();
    let keys: Vec<(i64, &str)> = checked
        .iter()
        .flat_map(|r| batch[r.clone()].iter())
        .map(|r| (r.merchant_key, r.payment.id.as_str()))
        .collect();
    for chunk in keys.chunks(KEYS_PER_LOOKUP) {
        let mut sql = String::from(
            "SELECT merchant, payment_id, occurred_at, amount_minor, kind, channel, payer_ref FROM payments WHERE (merchant, payment_id) IN (VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str("(?,?)");
        }
        sql.push(')');
        let mut q =
            sqlx::query(AssertSqlSafe(sql)).persistent(keep_prepared(chunk.len(), KEYS_PER_LOOKUP));
        for (m, id) in chunk {
            q = q.bind(*m).bind(*id);
        }
        for row in q.fetch_all(&mut *tx).await? {
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

fn parse_fact(line: &str) -> Result<PaymentFact, StoreError> {
    let bad = || StoreError::corrupt(format!("packed payment {line:?}"));
    let mut fields = line.splitn(5, ',');
    let mut next = || fields.next().ok_or_else(bad);
    let at_micros = next()?.parse().map_err(|_| bad())?;
    let amount_minor = next()?.parse().map_err(|_| bad())?;
    let kind = PaymentKind::parse(next()?).map_err(|_| bad())?;
    let channel = Channel::parse(next()?).map_err(|_| bad())?;
    let payer = payer_key(next()?);
    Ok(PaymentFact {
        at_micros,
        amount_minor,
        kind,
        channel,
        payer,
    })
}

/// Day summaries per upsert statement: 16 parameters each.
const DAYS_PER_STATEMENT: usize = 1_000;

fn day_upsert_sql(rows: usize) -> String {
    let mut sql = format!("INSERT INTO payment_days ({}) VALUES ", days::COLUMNS);
    let one = format!("({})", vec!["?"; days::NUM_COLUMNS].join(","));
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&one);
    }
    sql.push_str(&days::add_on_conflict("min", "max", None));
    sql.push_str(" RETURNING merchant, day, payments");
    sql
}

/// The payers of days, added to those stored (migration 9: a table of their own). SQLite's `||`
/// makes text of the bytes; cast back.
fn payers_upsert_sql(rows: usize) -> String {
    let mut sql =
        String::from("INSERT INTO payment_day_payers (merchant, day, sale_payers) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?)");
    }
    sql.push_str(
        " ON CONFLICT (merchant, day) DO UPDATE SET sale_payers = \
         CAST(payment_day_payers.sale_payers || excluded.sale_payers AS BLOB)",
    );
    sql
}

/// Upserts day summaries and their payers, then compacts the payer lists of the days it added
/// to (see [`days::merged_days`]): the transaction holds SQLite's write lock, so nobody else
/// changes them in between.
async fn upsert_days(
    tx: &mut sqlx::SqliteConnection,
    rows: &[(i64, DaySummary)],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(DAYS_PER_STATEMENT) {
        let keep = keep_prepared(chunk.len(), DAYS_PER_STATEMENT);
        let mut q = sqlx::query_as(AssertSqlSafe(day_upsert_sql(chunk.len()))).persistent(keep);
        for (m, s) in chunk {
            q = bind_day(q, *m, s);
        }
        let returned: Vec<(i64, i64, i64)> = q.fetch_all(&mut *tx).await?;
        let mut q = sqlx::query(AssertSqlSafe(payers_upsert_sql(chunk.len()))).persistent(keep);
        for (m, s) in chunk {
            q = q
                .bind(*m)
                .bind(s.day)
                .bind(days::encode_payers(&s.sale_payers));
        }
        q.execute(&mut *tx).await?;
        for (m, d) in days::merged_days(chunk, &returned) {
            let blob: Vec<u8> = sqlx::query_scalar(
                "SELECT sale_payers FROM payment_day_payers WHERE merchant = ? AND day = ?",
            )
            .bind(m)
            .bind(d)
            .fetch_one(&mut *tx)
            .await?;
            if let Some(one) = days::compacted(&blob)? {
                sqlx::query(
                    "UPDATE payment_day_payers SET sale_payers = ? WHERE merchant = ? AND day = ?",
                )
                .bind(one)
                .bind(m)
                .bind(d)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    Ok(())
}

/// Brings `payment_days` up to date with the payments this transaction stored (see
/// [`days`] for why this is exact).
pub(super) async fn apply_day_plan(
    tx: &mut sqlx::SqliteConnection,
    plan: &DayPlan,
) -> Result<(), StoreError> {
    upsert_days(&mut *tx, &plan.upserts).await?;
    for &(m, from, to) in &plan.recompute {
        let facts = facts_between(&mut *tx, m, from * DAY_MICROS, to * DAY_MICROS).await?;
        for table in ["payment_days", "payment_day_payers"] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE merchant = ? AND day >= ? AND day < ?"
            )))
            .bind(m)
            .bind(from)
            .bind(to)
            .execute(&mut *tx)
            .await?;
        }
        let fresh: Vec<(i64, DaySummary)> =
            summarize_days(&facts).into_iter().map(|s| (m, s)).collect();
        upsert_days(&mut *tx, &fresh).await?;
    }
    Ok(())
}

type DayUpsert<'q> =
    sqlx::query::QueryAs<'q, sqlx::Sqlite, (i64, i64, i64), sqlx::sqlite::SqliteArguments>;

fn bind_day<'q>(q: DayUpsert<'q>, merchant: i64, s: &DaySummary) -> DayUpsert<'q> {
    q.bind(merchant)
        .bind(s.day)
        .bind(i64::from(s.payments))
        .bind(i64::from(s.sales))
        .bind(s.gross)
        .bind(s.refunds)
        .bind(s.chargebacks)
        .bind(i64::from(s.chargeback_count))
        .bind(s.channel_gross[0])
        .bind(s.channel_gross[1])
        .bind(s.channel_gross[2])
        .bind(s.channel_gross[3])
        .bind(s.channel_gross[4])
        .bind(s.first_at)
        .bind(s.last_at)
        .bind(s.last_sale_at)
}

/// The stored facts of a merchant in `[from, to)` (microseconds), in one row: sqlx hands each
/// SQLite row from its worker thread to the caller through a channel (for a year of history,
/// 11,000 rows, that hand-off took 100 ms), so they are packed by `group_concat` into one text
/// value: a newline ends a record (payer references hold no whitespace), and the payer reference
/// is the last field, so commas in it do no harm. `+occurred_at` keeps SQLite on the clustered
/// primary key instead of a look-up per row through the time index.
pub(super) async fn facts_between(
    conn: &mut sqlx::SqliteConnection,
    merchant_key: i64,
    from: i64,
    to: i64,
) -> Result<Vec<PaymentFact>, StoreError> {
    let packed: Option<String> = sqlx::query_scalar(
        "SELECT group_concat(occurred_at || ',' || amount_minor || ',' || kind || ',' || channel || ',' || payer_ref, char(10))
         FROM payments WHERE merchant = ? AND +occurred_at >= ? AND +occurred_at < ?",
    )
    .bind(merchant_key)
    .bind(from)
    .bind(to)
    .fetch_one(&mut *conn)
    .await?;
    packed.map_or(Ok(Vec::new()), |p| p.split('\n').map(parse_fact).collect())
}

/// The columns of a day read (see [`days::PackedDays`]) after its `FROM payment_days`, for
/// merchant key `merchant`; parameters ?1 = first day of payers, ?3 = first day of the window.
/// The records and payer lists are bytes: SQLite's `group_concat` keeps them (as text with
/// NULs inside until cast back).
fn day_columns(merchant: &str) -> String {
    let older = days::packed_older_sql(|c| c.to_string());
    format!(
        "CAST(group_concat(payment_days.packed, '') AS BLOB) AS days, \
         (SELECT CAST(group_concat(p.sale_payers, '') AS BLOB) FROM payment_day_payers p \
          WHERE p.merchant = {merchant} AND p.day >= ?1 AND p.day < ?4) AS payers, \
         (SELECT {older} FROM payment_days o WHERE o.merchant = {merchant} AND o.day < ?3) AS days_older"
    )
}

/// A merchant found by id (?2) with its day read (days ?3..?4), in one statement.
pub(super) fn merchant_history_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {}, {} FROM merchants
             LEFT JOIN payment_days ON payment_days.merchant = merchants.id
                AND payment_days.day >= ?3 AND payment_days.day < ?4
             WHERE merchants.merchant_id = ?2 GROUP BY merchants.id",
            super::MERCHANT_COLUMNS,
            day_columns("merchants.id")
        )
    })
}

/// The day read of one merchant key (?2), days ?3..?4, in one row.
pub(super) fn history_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {} FROM payment_days WHERE merchant = ?2 AND day >= ?3 AND day < ?4",
            day_columns("?2")
        )
    })
}
