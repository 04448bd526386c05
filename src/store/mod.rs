//! The `Store`: every merchant and payment, exactly once, in SQLite (embedded default) or
//! PostgreSQL (production, several replicas). Queries are runtime `sqlx::query` with binds; SQL
//! that both databases accept is written once here, and what differs (bulk insert, connection
//! set-up) lives in the backend's own file.

mod days;
mod decision_log;
mod decisions;
mod direct;
mod error;
mod hot;
mod idempotency;
mod keys;
mod loans;
mod postgres;
mod sqlite;

pub use decision_log::DecisionLog;
pub use decisions::DecisionRow;
pub use error::StoreError;
pub use idempotency::{Claim, IdempotencyRecord, KeyClaim, StoredResponse};
pub use keys::StoredKey;
pub use loans::{LoanWrite, NewLoan, OutcomeWrite, RecordedOutcome, StoredLoan};
pub use sqlite::audit_file as sqlite_audit_file;

use crate::domain::{
    Category, Channel, Currency, Merchant, MerchantId, Money, PayerRef, Payment, PaymentId,
    PaymentKind, RegionCode, RegionType,
};
use crate::features::{History, PaymentFact, utc_day};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Row, SqlSafeStr};
use std::time::Duration;

/// Connection settings for [`Store::connect`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    pub url: String,
    pub max_connections: u32,
    /// How long a request waits for a free connection before the store counts as unavailable.
    pub acquire_timeout: Duration,
    /// SQLite only: `full` syncs the write-ahead log at every commit, so an acknowledged batch
    /// survives a power cut; `normal` survives a crash of the process but not of the machine.
    pub sqlite_synchronous_full: bool,
    /// SQLite only: the page caches of the main file, all connections together; each connection
    /// gets an equal share and recycles its own pages past it (the audit file adds 512 KiB per
    /// connection). Pages it drops are read again from the OS's file cache.
    pub sqlite_cache_bytes: u64,
    /// PostgreSQL only: the server cancels a statement running longer (`statement_timeout`), and
    /// the request gets a 503. Migrations run without it. SQLite has no statement timeout; a
    /// statement waiting for a lock gives up after `acquire_timeout` (its busy timeout).
    pub statement_timeout: Option<Duration>,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            sqlite_synchronous_full: true,
            sqlite_cache_bytes: 32 << 20,
            statement_timeout: None,
        }
    }
}

#[derive(Debug, Clone)]
enum Backend {
    /// One writer connection (SQLite allows one writer at a time; queuing writers in the pool
    /// instead of in SQLite's busy handler avoids `SQLITE_BUSY`) and a pool of readers.
    Sqlite {
        writer: sqlx::SqlitePool,
        reader: sqlx::SqlitePool,
        /// The day read of every score, on the thread that scores (see [`hot`]).
        day_reads: std::sync::Arc<hot::DayReaders>,
        /// The one writer of the audit log's own file (see migration 7), so that decisions are
        /// committed beside payment batches instead of after them; on the thread that appends.
        audit: std::sync::Arc<hot::AuditWriter>,
    },
    Postgres(sqlx::PgPool),
}

/// A handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
}

/// Runs the same code against whichever pool the store has, for reading.
macro_rules! with_reader {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite { reader: $pool, .. } => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

/// Runs the same code against whichever pool the store has, for writing.
macro_rules! with_writer {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite { writer: $pool, .. } => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

/// A merchant as stored, with its internal key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMerchant {
    pub key: i64,
    pub merchant: Merchant,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an upsert of a merchant did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MerchantWrite {
    Created,
    Updated,
    Unchanged,
    /// The merchant has payments in another currency; its settlement currency cannot change.
    CurrencyLocked {
        stored: Currency,
    },
}

/// A summary of a merchant's stored history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistorySummary {
    pub payment_count: i64,
    pub sale_count: i64,
    pub first_payment_at: Option<DateTime<Utc>>,
    pub last_payment_at: Option<DateTime<Utc>>,
    /// Sales minus refunds minus chargebacks, over the whole history.
    pub net_sales: Money,
}

/// A payment bound for a merchant's history.
#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    pub merchant_key: i64,
    pub payment: &'a Payment,
}

/// What to do when a payment id is already stored with different content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Store nothing of the batch (the API's all-or-nothing rule).
    RejectBatch,
    /// Store the rest, and report the conflicting rows (bulk import).
    SkipConflicting,
}

/// The result of inserting a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    /// Newly stored payments.
    pub accepted: u64,
    /// Payments already stored with identical content (also a repeat inside the batch).
    pub duplicates: u64,
    /// Indices (into the batch) of payments whose id is stored with different content. With
    /// [`OnConflict::RejectBatch`], a non-empty list means nothing was stored.
    pub conflicts: Vec<usize>,
}

/// A position in a merchant's time-ordered history: the last payment of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub occurred_at_micros: i64,
    pub payment_id: PaymentId,
}

impl Cursor {
    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.occurred_at_micros, self.payment_id)
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let (micros, id) = s.split_once(':')?;
        Some(Cursor {
            occurred_at_micros: micros.parse().ok()?,
            payment_id: PaymentId::parse(id).ok()?,
        })
    }
}

/// A page of payments in time order.
#[derive(Debug, Clone)]
pub struct PaymentPage {
    pub payments: Vec<Payment>,
    pub next: Option<Cursor>,
}

/// Which payments to list.
#[derive(Debug, Clone, Default)]
pub struct PaymentQuery {
    /// Inclusive lower bound on `occurred_at`.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `occurred_at`.
    pub to: Option<DateTime<Utc>>,
    pub after: Option<Cursor>,
    pub limit: u32,
}

/// Every migration in order: version, description, SQLite SQL, PostgreSQL SQL. A shipped
/// migration is never edited; a change is a new one.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "merchants and payments",
        include_str!("../../migrations/sqlite/0001_merchants_and_payments.sql"),
        include_str!("../../migrations/postgres/0001_merchants_and_payments.sql"),
    ),
    (
        2,
        "loans",
        include_str!("../../migrations/sqlite/0002_loans.sql"),
        include_str!("../../migrations/postgres/0002_loans.sql"),
    ),
    (
        3,
        "decisions and settings",
        include_str!("../../migrations/sqlite/0003_decisions.sql"),
        include_str!("../../migrations/postgres/0003_decisions.sql"),
    ),
    (
        4,
        "payment days",
        include_str!("../../migrations/sqlite/0004_payment_days.sql"),
        include_str!("../../migrations/postgres/0004_payment_days.sql"),
    ),
    (
        5,
        "api keys",
        include_str!("../../migrations/sqlite/0005_api_keys.sql"),
        include_str!("../../migrations/postgres/0005_api_keys.sql"),
    ),
    (
        6,
        "idempotency keys",
        include_str!("../../migrations/sqlite/0006_idempotency_keys.sql"),
        include_str!("../../migrations/postgres/0006_idempotency_keys.sql"),
    ),
    (
        7,
        "audit log in its own file (SQLite)",
        include_str!("../../migrations/sqlite/0007_audit_file.sql"),
        include_str!("../../migrations/postgres/0007_audit_file.sql"),
    ),
    (
        8,
        "one payer entry per payer and day",
        include_str!("../../migrations/sqlite/0008_payer_sales_per_day.sql"),
        include_str!("../../migrations/postgres/0008_payer_sales_per_day.sql"),
    ),
    (
        9,
        "packed day records, payers apart (SQLite)",
        include_str!("../../migrations/sqlite/0009_packed_days.sql"),
        include_str!("../../migrations/postgres/0009_packed_days.sql"),
    ),
];

/// The setting that records that `payment_days` holds every stored payment (written once, after
/// the summaries of the payments stored before migration 4 have been computed; migrations 8 and
/// 9 clear it to have them computed again in their format).
const PAYMENT_DAYS_FILLED: &str = "payment_days_filled";

fn migrator(sql: fn(&(i64, &str, &'static str, &'static str)) -> &'static str) -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|m| {
                Migration::new(
                    m.0,
                    m.1.into(),
                    MigrationType::Simple,
                    sql(m).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

const MERCHANT_COLUMNS: &str = "id, merchant_id, name, category, region_type, region_code, currency, onboarded_on, created_at, updated_at";

fn micros_to_time(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::corrupt(format!("timestamp {micros} out of range")))
}

fn merchant_from_row<R: Row>(row: &R) -> Result<StoredMerchant, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    merchant_from_fields(
        |col| Ok(row.try_get::<String, _>(col)?),
        |col| Ok(row.try_get::<i64, _>(col)?),
    )
}

/// A stored merchant from its columns ([`MERCHANT_COLUMNS`]), read by name.
fn merchant_from_fields(
    text: impl Fn(&str) -> Result<String, StoreError>,
    int: impl Fn(&str) -> Result<i64, StoreError>,
) -> Result<StoredMerchant, StoreError> {
    let bad = |what: &str, e: crate::domain::Invalid| StoreError::corrupt(format!("{what}: {e}"));
    let merchant = Merchant {
        id: MerchantId::parse(text("merchant_id")?).map_err(|e| bad("merchant_id", e))?,
        name: text("name")?,
        category: Category::parse(text("category")?).map_err(|e| bad("category", e))?,
        region_type: RegionType::parse(&text("region_type")?).map_err(|e| bad("region_type", e))?,
        region_code: RegionCode::parse(text("region_code")?).map_err(|e| bad("region_code", e))?,
        currency: Currency::parse(&text("currency")?).map_err(|e| bad("currency", e))?,
        onboarded_on: NaiveDate::parse_from_str(&text("onboarded_on")?, "%Y-%m-%d")
            .map_err(|e| StoreError::corrupt(format!("onboarded_on: {e}")))?,
    };
    Ok(StoredMerchant {
        key: int("id")?,
        merchant,
        created_at: micros_to_time(int("created_at")?)?,
        updated_at: micros_to_time(int("updated_at")?)?,
    })
}

fn payment_from_row<R: Row>(row: &R, currency: Currency) -> Result<Payment, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let bad = |what: &str, e: crate::domain::Invalid| StoreError::corrupt(format!("{what}: {e}"));
    Ok(Payment {
        id: PaymentId::parse(row.try_get::<String, _>("payment_id")?)
            .map_err(|e| bad("payment_id", e))?,
        occurred_at: micros_to_time(row.try_get("occurred_at")?)?,
        amount: Money::from_minor(row.try_get("amount_minor")?, currency),
        kind: PaymentKind::parse(&row.try_get::<String, _>("kind")?).map_err(|e| bad("kind", e))?,
        channel: Channel::parse(&row.try_get::<String, _>("channel")?)
            .map_err(|e| bad("channel", e))?,
        payer_ref: PayerRef::parse(row.try_get::<String, _>("payer_ref")?)
            .map_err(|e| bad("payer_ref", e))?,
    })
}

/// The stored content of a payment, for telling a duplicate from a conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredContent {
    occurred_at: i64,
    amount_minor: i64,
    kind: String,
    channel: String,
    payer_ref: String,
}

/// Reads `(merchant, payment_id)` and the content columns of a stored payment.
fn stored_content_from_row<R: Row>(row: &R) -> Result<((i64, String), StoredContent), StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok((
        (row.try_get("merchant")?, row.try_get("payment_id")?),
        StoredContent {
            occurred_at: row.try_get("occurred_at")?,
            amount_minor: row.try_get("amount_minor")?,
            kind: row.try_get("kind")?,
            channel: row.try_get("channel")?,
            payer_ref: row.try_get("payer_ref")?,
        },
    ))
}

impl StoredContent {
    fn matches(&self, p: &Payment) -> bool {
        self.occurred_at == p.occurred_at_micros()
            && self.amount_minor == p.amount.minor()
            && self.kind == p.kind.as_str()
            && self.channel == p.channel.as_str()
            && self.payer_ref == p.payer_ref.as_str()
    }
}

impl Store {
    /// Connects, creating the SQLite file if needed, and applies pending migrations.
    pub async fn connect(options: &StoreOptions) -> Result<Store, StoreError> {
        let store =
            if options.url.starts_with("postgres://") || options.url.starts_with("postgresql://") {
                Store {
                    backend: Backend::Postgres(postgres::connect(options).await?),
                }
            } else if options.url.starts_with("sqlite:") {
                let sqlite::Pools {
                    writer,
                    reader,
                    path,
                } = sqlite::connect(options).await?;
                let audit = std::sync::Arc::new(hot::AuditWriter::new(
                    sqlite::audit_file(&path),
                    options.acquire_timeout,
                    options.sqlite_synchronous_full,
                ));
                let day_reads = std::sync::Arc::new(hot::DayReaders::new(
                    path,
                    options.acquire_timeout,
                    sqlite::cache_kib(options),
                ));
                Store {
                    backend: Backend::Sqlite {
                        writer,
                        reader,
                        day_reads,
                        audit,
                    },
                }
            } else {
                return Err(StoreError::Config(format!(
                    "database URL must start with sqlite:// or postgres://, got {:?}",
                    options.url.split(':').next().unwrap_or_default()
                )));
            };
        store.migrate().await?;
        Ok(store)
    }

    /// Each pool's connections in use, idle and at most, for `/metrics`.
    pub fn pool_usage(&self) -> Vec<crate::metrics::PoolUsage> {
        fn usage<DB: sqlx::Database>(
            pool: &'static str,
            p: &sqlx::Pool<DB>,
        ) -> crate::metrics::PoolUsage {
            let size = p.size();
            let idle = u32::try_from(p.num_idle()).unwrap_or(u32::MAX).min(size);
            crate::metrics::PoolUsage {
                pool,
                in_use: size - idle,
                idle,
                max: p.options().get_max_connections(),
            }
        }
        match &self.backend {
            Backend::Sqlite {
                writer,
                reader,
                audit,
                ..
            } => {
                // The audit log's one connection (`hot`), in use while it appends.
                let appending = audit.in_use();
                vec![
                    usage("writer", writer),
                    usage("reader", reader),
                    crate::metrics::PoolUsage {
                        pool: "audit",
                        in_use: u32::from(appending),
                        idle: u32::from(!appending),
                        max: 1,
                    },
                ]
            }
            Backend::Postgres(pool) => vec![usage("main", pool)],
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// How many write transactions are worth running at once: one for SQLite (one writer at a
    /// time); three for PostgreSQL, where each transaction is a server process of its own (on 2
    /// cores, a 1M-payment import measured 74k/s with two writers and 83k/s with three).
    pub fn write_concurrency(&self) -> usize {
        match self.backend {
            Backend::Sqlite { .. } => 1,
            Backend::Postgres(_) => 3,
        }
    }

    /// Applies the migrations that have not run yet, then fills what a migration cannot compute
    /// in SQL (the day summaries of payments stored before migration 4 or 8). Idempotent.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite { writer, .. } => migrator(|m| m.2).run(writer).await,
            Backend::Postgres(pool) => {
                // A migration may build an index on a large table: no statement timeout for it,
                // on a connection of its own that is closed afterwards.
                let mut conn = pool.acquire().await?;
                conn.close_on_drop();
                sqlx::query("SET statement_timeout = 0")
                    .execute(&mut *conn)
                    .await?;
                migrator(|m| m.3).run(&mut *conn).await
            }
        }
        .map_err(|e| StoreError::Other(anyhow::Error::new(e).context("applying migrations")))?;
        if let Backend::Sqlite { reader, .. } = &self.backend {
            // Migration 7 made the audit log's file; a database that has it recorded but finds
            // no log beside it lost that file (moved or deleted without it): refuse to start
            // rather than fail every decision.
            let found: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM audit.sqlite_master WHERE type = 'table' AND name = 'decisions'",
            )
            .fetch_one(reader)
            .await?;
            if found == 0 {
                return Err(StoreError::Config(
                    "the audit log's file (the database's name with -audit) has no decisions table: \
                     it was moved or deleted apart from the database; restore it beside the database"
                        .to_string(),
                ));
            }
        }
        if self.setting(PAYMENT_DAYS_FILLED).await?.is_none() {
            let keys: Vec<i64> = with_reader!(self, pool => {
                sqlx::query_scalar("SELECT DISTINCT merchant FROM payments ORDER BY merchant")
                    .fetch_all(pool)
                    .await?
            });
            if !keys.is_empty() {
                tracing::info!(merchants = keys.len(), "summarising stored payments by day");
            }
            for key in keys {
                self.rebuild_payment_days(key).await?;
            }
            self.set_setting(PAYMENT_DAYS_FILLED, "1").await?;
        }
        Ok(())
    }

    /// Recomputes every day summary of a merchant from its stored payments.
    pub async fn rebuild_payment_days(&self, merchant_key: i64) -> Result<(), StoreError> {
        let sql = "SELECT min(occurred_at), max(occurred_at) FROM payments WHERE merchant = $1";
        let (first, last): (Option<i64>, Option<i64>) = with_writer!(self, pool => {
            sqlx::query_as(sql).bind(merchant_key).fetch_one(pool).await?
        });
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(());
        };
        let plan = days::DayPlan::rebuild(merchant_key, utc_day(first), utc_day(last) + 1);
        match &self.backend {
            Backend::Sqlite { writer, .. } => {
                let mut tx = writer.begin().await?;
                sqlite::apply_day_plan(&mut tx, &plan).await?;
                tx.commit().await?;
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                postgres::apply_day_plan(&mut tx, &plan).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_reader!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite {
                writer,
                reader,
                day_reads,
                audit,
            } => {
                day_reads.close();
                audit.close();
                reader.close().await;
                writer.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// Creates the merchant, or updates its profile. The settlement currency of a merchant that
    /// already has payments cannot change: its stored amounts are in that currency.
    pub async fn upsert_merchant(
        &self,
        m: &Merchant,
    ) -> Result<(StoredMerchant, MerchantWrite), StoreError> {
        let mut written = self.upsert_merchants(std::slice::from_ref(m)).await?;
        written
            .pop()
            .ok_or_else(|| StoreError::corrupt("upsert of one merchant returned nothing"))
    }

    /// [`Store::upsert_merchant`] for many merchants, in one transaction.
    pub async fn upsert_merchants(
        &self,
        merchants: &[Merchant],
    ) -> Result<Vec<(StoredMerchant, MerchantWrite)>, StoreError> {
        let now = Utc::now().timestamp_micros();
        let select = format!("SELECT {MERCHANT_COLUMNS} FROM merchants WHERE merchant_id = $1");
        with_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut written = Vec::with_capacity(merchants.len());
            for m in merchants {
                let onboarded = m.onboarded_on.format("%Y-%m-%d").to_string();
                let inserted = sqlx::query(
                    "INSERT INTO merchants (merchant_id, name, category, region_type, region_code, currency, onboarded_on, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                     ON CONFLICT (merchant_id) DO NOTHING",
                )
                .bind(m.id.as_str())
                .bind(&m.name)
                .bind(m.category.as_str())
                .bind(m.region_type.as_str())
                .bind(m.region_code.as_str())
                .bind(m.currency.code())
                .bind(&onboarded)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let row = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
                    .bind(m.id.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                let mut stored = merchant_from_row(&row)?;
                let write = if inserted == 1 {
                    MerchantWrite::Created
                } else if stored.merchant == *m {
                    MerchantWrite::Unchanged
                } else if stored.merchant.currency != m.currency
                    && sqlx::query("SELECT 1 FROM payments WHERE merchant = $1 LIMIT 1")
                        .bind(stored.key)
                        .fetch_optional(&mut *tx)
                        .await?
                        .is_some()
                {
                    MerchantWrite::CurrencyLocked { stored: stored.merchant.currency }
                } else {
                    sqlx::query(
                        "UPDATE merchants SET name = $2, category = $3, region_type = $4, region_code = $5,
                         currency = $6, onboarded_on = $7, updated_at = $8 WHERE id = $1",
                    )
                    .bind(stored.key)
                    .bind(&m.name)
                    .bind(m.category.as_str())
                    .bind(m.region_type.as_str())
                    .bind(m.region_code.as_str())
                    .bind(m.currency.code())
                    .bind(&onboarded)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    stored.merchant = m.clone();
                    stored.updated_at = micros_to_time(now)?;
                    MerchantWrite::Updated
                };
                written.push((stored, write));
            }
            tx.commit().await?;
            Ok(written)
        })
    }

    pub async fn merchant(&self, id: &MerchantId) -> Result<Option<StoredMerchant>, StoreError> {
        let sql = format!("SELECT {MERCHANT_COLUMNS} FROM merchants WHERE merchant_id = $1");
        let row = with_reader!(self, pool => {
            match sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.as_str()).fetch_optional(pool).await? {
                Some(row) => Some(merchant_from_row(&row)?),
                None => None,
            }
        });
        Ok(row)
    }

    /// How many merchants are stored.
    pub async fn merchant_count(&self) -> Result<i64, StoreError> {
        let n = with_reader!(self, pool => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM merchants").fetch_one(pool).await?
        });
        Ok(n)
    }

    /// Every merchant that has at least one loan, by merchant id (the training population).
    pub async fn merchants_with_loans(&self) -> Result<Vec<StoredMerchant>, StoreError> {
        let sql = format!(
            "SELECT {MERCHANT_COLUMNS} FROM merchants WHERE id IN (SELECT merchant FROM loans) ORDER BY merchant_id"
        );
        with_reader!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await?
                .iter()
                .map(merchant_from_row)
                .collect()
        })
    }

    /// Counts and net sales over a merchant's whole stored history.
    pub async fn history_summary(
        &self,
        merchant: &StoredMerchant,
    ) -> Result<HistorySummary, StoreError> {
        let sql = "SELECT COUNT(*) AS payment_count,
                    CAST(COALESCE(SUM(CASE WHEN kind = 'sale' THEN 1 ELSE 0 END), 0) AS BIGINT) AS sale_count,
                    MIN(occurred_at) AS first_at, MAX(occurred_at) AS last_at,
                    CAST(COALESCE(SUM(CASE WHEN kind = 'sale' THEN amount_minor ELSE -amount_minor END), 0) AS BIGINT) AS net_minor
                   FROM payments WHERE merchant = $1";
        let (count, sales, first, last, net): (i64, i64, Option<i64>, Option<i64>, i64) = with_reader!(self, pool => {
            let row = sqlx::query(sql).bind(merchant.key).fetch_one(pool).await?;
            (
                row.try_get("payment_count")?,
                row.try_get::<i64, _>("sale_count")?,
                row.try_get("first_at")?,
                row.try_get("last_at")?,
                row.try_get::<i64, _>("net_minor")?,
            )
        });
        Ok(HistorySummary {
            payment_count: count,
            sale_count: sales,
            first_payment_at: first.map(micros_to_time).transpose()?,
            last_payment_at: last.map(micros_to_time).transpose()?,
            net_sales: Money::from_minor(net, merchant.merchant.currency),
        })
    }

    /// Number of stored payments of a merchant.
    pub async fn payment_count(&self, merchant_key: i64) -> Result<i64, StoreError> {
        let n = with_reader!(self, pool => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM payments WHERE merchant = $1")
                .bind(merchant_key)
                .fetch_one(pool)
                .await?
        });
        Ok(n)
    }

    /// Lists a merchant's payments in `(occurred_at, payment_id)` order.
    pub async fn payments(
        &self,
        merchant: &StoredMerchant,
        q: &PaymentQuery,
    ) -> Result<PaymentPage, StoreError> {
        let from = q.from.map(|t| t.timestamp_micros()).unwrap_or(i64::MIN);
        let to = q.to.map(|t| t.timestamp_micros()).unwrap_or(i64::MAX);
        let (after_t, after_id) = match &q.after {
            Some(c) => (c.occurred_at_micros, c.payment_id.as_str().to_string()),
            None => (i64::MIN, String::new()),
        };
        let sql =
            "SELECT payment_id, occurred_at, amount_minor, kind, channel, payer_ref FROM payments
                   WHERE merchant = $1 AND occurred_at >= $2 AND occurred_at < $3
                     AND (occurred_at > $4 OR (occurred_at = $4 AND payment_id > $5))
                   ORDER BY occurred_at, payment_id LIMIT $6";
        let limit = i64::from(q.limit);
        let currency = merchant.merchant.currency;
        let mut payments = with_reader!(self, pool => {
            sqlx::query(sql)
                .bind(merchant.key)
                .bind(from)
                .bind(to)
                .bind(after_t)
                .bind(&after_id)
                .bind(limit + 1)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| payment_from_row(row, currency))
                .collect::<Result<Vec<_>, _>>()?
        });
        let next = if payments.len() as i64 > limit {
            payments.truncate(q.limit as usize);
            payments.last().map(|p| Cursor {
                occurred_at_micros: p.occurred_at_micros(),
                payment_id: p.id.clone(),
            })
        } else {
            None
        };
        Ok(PaymentPage { payments, next })
    }

    /// A merchant's payments strictly before `before`, reduced to what features use. Nothing at
    /// or after `before` is read, so features as of that instant cannot see the future.
    pub async fn payment_facts(
        &self,
        merchant_key: i64,
        before: DateTime<Utc>,
    ) -> Result<Vec<PaymentFact>, StoreError> {
        let before = before.timestamp_micros();
        match &self.backend {
            Backend::Sqlite { reader, .. } => {
                sqlite::facts_between(
                    &mut *reader.acquire().await?,
                    merchant_key,
                    i64::MIN,
                    before,
                )
                .await
            }
            Backend::Postgres(pool) => {
                postgres::facts_between(&mut *pool.acquire().await?, merchant_key, i64::MIN, before)
                    .await
            }
        }
    }

    /// What the features of a merchant as of `as_of` are computed from. As of a midnight (UTC),
    /// as the service scores by default, it is built from the day summaries kept at ingestion
    /// (about 365 short rows); as of any other instant, from the payments themselves. Both give
    /// the same history (see [`History::from_days`]). Nothing at or after `as_of` is read.
    pub async fn history(
        &self,
        merchant_key: i64,
        as_of: DateTime<Utc>,
    ) -> Result<History, StoreError> {
        let Some(window) = days::DayWindow::as_of(as_of) else {
            let facts = self.payment_facts(merchant_key, as_of).await?;
            return Ok(History::from_facts(&facts, as_of));
        };
        let sql = match &self.backend {
            Backend::Sqlite { .. } => sqlite::history_sql(),
            Backend::Postgres(_) => postgres::history_sql(),
        };
        let packed = with_reader!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(window.payers_from)
                .bind(merchant_key)
                .bind(window.window_from)
                .bind(window.to)
                .fetch_one(pool)
                .await?;
            days::PackedDays::from_row(&row)?
        });
        History::from_days(&packed.into_summaries()?, as_of)
            .ok_or_else(|| StoreError::corrupt("a midnight was not a midnight"))
    }

    /// A merchant and its [`History`] as of `as_of`; as of a midnight in one statement (the
    /// serving path of scores, features and eligibility).
    pub async fn merchant_history(
        &self,
        id: &MerchantId,
        as_of: DateTime<Utc>,
    ) -> Result<Option<(StoredMerchant, History)>, StoreError> {
        let Some(window) = days::DayWindow::as_of(as_of) else {
            let Some(merchant) = self.merchant(id).await? else {
                return Ok(None);
            };
            let history = self.history(merchant.key, as_of).await?;
            return Ok(Some((merchant, history)));
        };
        let found = match &self.backend {
            // on this thread: see `hot`
            Backend::Sqlite { day_reads, .. } => day_reads.merchant_history(id, &window)?,
            Backend::Postgres(pool) => {
                match sqlx::query(sqlx::AssertSqlSafe(postgres::merchant_history_sql()))
                    .bind(window.payers_from)
                    .bind(id.as_str())
                    .bind(window.window_from)
                    .bind(window.to)
                    .fetch_optional(pool)
                    .await?
                {
                    None => None,
                    Some(row) => {
                        Some((merchant_from_row(&row)?, days::PackedDays::from_row(&row)?))
                    }
                }
            }
        };
        let Some((merchant, packed)) = found else {
            return Ok(None);
        };
        let history = History::from_days(&packed.into_summaries()?, as_of)
            .ok_or_else(|| StoreError::corrupt("a midnight was not a midnight"))?;
        Ok(Some((merchant, history)))
    }

    /// Stores a batch of payments in one transaction, committed before this returns.
    /// A payment already stored with the same content is counted as a duplicate; with different
    /// content it is a conflict, handled as `on_conflict` says.
    pub async fn insert_payments(
        &self,
        batch: &[NewPayment<'_>],
        on_conflict: OnConflict,
    ) -> Result<InsertOutcome, StoreError> {
        if batch.is_empty() {
            return Ok(InsertOutcome::default());
        }
        match &self.backend {
            Backend::Sqlite { writer, .. } => {
                sqlite::insert_payments(writer, batch, on_conflict).await
            }
            Backend::Postgres(pool) => postgres::insert_payments(pool, batch, on_conflict).await,
        }
    }
}

/// Counts a batch's outcome. `accepted` rows were newly stored; `stored` holds the stored content
/// of every key in the statements that stored fewer rows than they were given. A row of such a
/// statement whose stored content differs from it is a conflict; the rest of the rows that were
/// not newly stored are duplicates. (A statement that stored every row it was given holds only
/// new, distinct keys, so it needs no check.)
fn classify_batch(
    batch: &[NewPayment<'_>],
    checked: &[std::ops::Range<usize>],
    accepted: u64,
    stored: &std::collections::HashMap<(i64, String), StoredContent>,
) -> Result<InsertOutcome, StoreError> {
    let mut conflicts = Vec::new();
    for range in checked {
        for i in range.clone() {
            let row = &batch[i];
            let key = (row.merchant_key, row.payment.id.as_str().to_string());
            match stored.get(&key) {
                Some(content) if content.matches(row.payment) => {}
                Some(_) => conflicts.push(i),
                None => {
                    return Err(StoreError::corrupt(format!(
                        "payment {} was neither stored nor found",
                        row.payment.id
                    )));
                }
            }
        }
    }
    let duplicates = batch.len() as u64 - accepted - conflicts.len() as u64;
    Ok(InsertOutcome {
        accepted,
        duplicates,
        conflicts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            occurred_at_micros: 1_700_000_000_000_000,
            payment_id: PaymentId::parse("p:1").unwrap(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("nonsense"), None);
        assert_eq!(Cursor::decode("12:bad id"), None);
    }

    #[test]
    fn the_audit_log_file_sits_beside_the_database() {
        use std::path::Path;
        assert_eq!(
            sqlite_audit_file(Path::new("/var/lib/smecredit.db")),
            Path::new("/var/lib/smecredit-audit.db")
        );
        assert_eq!(
            sqlite_audit_file(Path::new("data")),
            Path::new("data-audit")
        );
    }

    fn decision_row(id: &str) -> DecisionRow {
        DecisionRow {
            decision_id: id.into(),
            merchant_key: None,
            model_version: "sc-1".into(),
            policy_version: "p-1".into(),
            decision: "approve".into(),
            caller: "test".into(),
            request_id: "r-1".into(),
            created_at: DateTime::from_timestamp_micros(1_780_000_000_000_000).unwrap(),
            record: "{}".into(),
        }
    }

    async fn data_version(c: &mut sqlx::SqliteConnection) -> i64 {
        sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(c)
            .await
            .unwrap()
    }

    /// Every SQLite connection reads without a memory map (resident memory would count the
    /// mapped file once per connection), with its share of the page-cache budget, and SQLite
    /// is built without its process-wide memory manager (`.cargo/config.toml`): were it back,
    /// every connection would share one page cache behind one mutex again.
    #[tokio::test]
    async fn sqlite_connections_map_no_memory_and_split_the_cache_budget() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let options = StoreOptions {
            max_connections: 6,
            sqlite_cache_bytes: 16 << 20,
            ..StoreOptions::new(&url)
        };
        // 16 MiB over 6 readers, the writer, the audit writer and a day reader per core
        let share = 16 * 1024 / (6 + 2 + sqlite::day_readers());
        assert_eq!(sqlite::cache_kib(&options), share);
        let store = Store::connect(&options).await.unwrap();
        let Backend::Sqlite { writer, reader, .. } = &store.backend else {
            panic!("a sqlite:// URL gives a SQLite store");
        };
        for pool in [writer, reader] {
            let mut row = Vec::new();
            for pragma in ["mmap_size", "cache_size", "audit.cache_size"] {
                let v: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("PRAGMA {pragma}")))
                    .fetch_one(pool)
                    .await
                    .unwrap();
                row.push(v);
            }
            assert_eq!(row, [0, -(share as i64), -(sqlite::AUDIT_CACHE_KIB as i64)]);
        }
        let options: Vec<String> =
            sqlx::query_scalar("SELECT compile_options FROM pragma_compile_options")
                .fetch_all(reader)
                .await
                .unwrap();
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
    }

    /// The point of the audit log's own file: appending decisions commits nothing to the main
    /// file, so readers keep their page cache and memory map (SQLite resets both whenever
    /// another connection has committed to the file they read).
    #[tokio::test]
    async fn decisions_commit_to_the_audit_file_and_leave_the_main_file_unchanged() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let url = format!("sqlite://{}", path.display());
        let store = Store::connect(&StoreOptions::new(&url)).await.unwrap();
        let mut observer = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let before = data_version(&mut observer).await;
        store.insert_decision(&decision_row("d-1")).await.unwrap();
        assert_eq!(
            data_version(&mut observer).await,
            before,
            "main file changed"
        );
        store.set_setting("probe", "1").await.unwrap();
        assert_ne!(
            data_version(&mut observer).await,
            before,
            "the probe itself must see a commit to the main file"
        );
        assert!(sqlite_audit_file(&path).exists());
        assert_eq!(
            store.decision("d-1").await.unwrap(),
            Some(decision_row("d-1"))
        );
    }

    #[tokio::test]
    async fn a_database_whose_audit_file_was_lost_does_not_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let url = format!("sqlite://{}", path.display());
        Store::connect(&StoreOptions::new(&url))
            .await
            .unwrap()
            .close()
            .await;
        std::fs::remove_file(sqlite_audit_file(&path)).unwrap();
        let e = Store::connect(&StoreOptions::new(&url)).await.unwrap_err();
        assert!(e.to_string().contains("audit log"), "{e}");
    }

    /// A stored day holds one payer entry per payer, however many batches added to it; and a
    /// database from before migrations 8 and 9 (16 bytes per sale, inline in the day rows) gets
    /// its days rebuilt in the new layout at start-up.
    #[tokio::test]
    async fn a_day_keeps_one_entry_per_payer_and_migrations_8_and_9_rebuild_old_days() {
        use crate::domain::{
            Category, Channel, Currency, Merchant, MerchantId, Money, PayerRef, Payment, PaymentId,
            PaymentKind, RegionCode, RegionType,
        };
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&StoreOptions::new(&url)).await.unwrap();
        let cny = Currency::parse("CNY").unwrap();
        let merchant = Merchant {
            id: MerchantId::parse("m-1").unwrap(),
            name: "Shop".into(),
            category: Category::parse("grocery").unwrap(),
            region_type: RegionType::parse("urban").unwrap(),
            region_code: RegionCode::parse("330782").unwrap(),
            currency: cny,
            onboarded_on: "2026-01-01".parse().unwrap(),
        };
        let (stored, _) = store.upsert_merchant(&merchant).await.unwrap();
        let sale = |id: &str, at: &str, payer: &str| Payment {
            id: PaymentId::parse(id).unwrap(),
            occurred_at: at.parse().unwrap(),
            amount: Money::parse("12.50", cny).unwrap(),
            kind: PaymentKind::Sale,
            channel: Channel::QrCode,
            payer_ref: PayerRef::parse(payer).unwrap(),
        };
        let batches = [
            vec![sale("p-1", "2026-11-02T08:00:00Z", "alice")],
            vec![
                sale("p-2", "2026-11-02T09:00:00Z", "alice"),
                sale("p-3", "2026-11-02T10:00:00Z", "bob"),
            ],
            vec![sale("p-4", "2026-11-02T11:00:00Z", "bob")],
        ];
        for batch in &batches {
            let rows: Vec<NewPayment<'_>> = batch
                .iter()
                .map(|payment| NewPayment {
                    merchant_key: stored.key,
                    payment,
                })
                .collect();
            let outcome = store
                .insert_payments(&rows, OnConflict::RejectBatch)
                .await
                .unwrap();
            assert_eq!(outcome.accepted, batch.len() as u64);
        }
        let Backend::Sqlite { writer, .. } = &store.backend else {
            panic!("a sqlite:// URL gives a SQLite store");
        };
        let n: i64 = sqlx::query_scalar("SELECT length(sale_payers) FROM payment_day_payers")
            .fetch_one(writer)
            .await
            .unwrap();
        assert_eq!(n, 40, "alice and bob, 20 bytes each");
        let as_of = crate::features::as_of_start_of_day("2026-11-03".parse().unwrap());
        let profile = crate::features::MerchantProfile::from(&merchant);
        let expected = crate::features::compute(
            &profile,
            &store.payment_facts(stored.key, as_of).await.unwrap(),
            as_of,
        );
        let history = store.history(stored.key, as_of).await.unwrap();
        assert_eq!(
            crate::features::compute_history(&profile, &history),
            expected
        );

        // the state before migration 8: the table of migration 4, with the payers inline, and a
        // day of four 16-byte entries, filled
        for sql in [
            "DROP TABLE payment_days",
            "DROP TABLE payment_day_payers",
            include_str!("../../migrations/sqlite/0004_payment_days.sql"),
            "INSERT INTO payment_days SELECT merchant, 20759, 4, 4, 400, 0, 0, 0, 400, 0, 0, 0, 0, 1, 2, 2, zeroblob(64) FROM payments LIMIT 1",
            "DELETE FROM _sqlx_migrations WHERE version IN (8, 9)",
        ] {
            sqlx::query(sql).execute(writer).await.unwrap();
        }
        store.close().await;
        let store = Store::connect(&StoreOptions::new(&url)).await.unwrap();
        let Backend::Sqlite { writer, .. } = &store.backend else {
            unreachable!()
        };
        let n: i64 = sqlx::query_scalar("SELECT length(sale_payers) FROM payment_day_payers")
            .fetch_one(writer)
            .await
            .unwrap();
        assert_eq!(n, 40);
        // the packed record is the row's own numbers (migration 9's generated column)
        let (packed, gross, last_sale_at): (Vec<u8>, i64, i64) =
            sqlx::query_as("SELECT packed, gross_minor, last_sale_at FROM payment_days")
                .fetch_one(writer)
                .await
                .unwrap();
        assert_eq!(packed.len(), 120);
        assert_eq!(
            i64::from_be_bytes(packed[24..32].try_into().unwrap()),
            gross
        );
        assert_eq!(
            i64::from_be_bytes(packed[112..].try_into().unwrap()),
            last_sale_at
        );
        let history = store.history(stored.key, as_of).await.unwrap();
        assert_eq!(
            crate::features::compute_history(&profile, &history),
            expected
        );
    }

    /// A database from before migration 7 keeps its decisions: they move to the audit file.
    #[tokio::test]
    async fn migration_7_moves_existing_decisions_to_the_audit_file() {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("old.db").display());
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        let mut old = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        let first_six = Migrator::with_migrations(
            MIGRATIONS[..6]
                .iter()
                .map(|m| {
                    Migration::new(
                        m.0,
                        m.1.into(),
                        MigrationType::Simple,
                        m.2.into_sql_str(),
                        false,
                    )
                })
                .collect(),
        );
        first_six.run(&mut old).await.unwrap();
        sqlx::query(
            "INSERT INTO decisions (decision_id, merchant, model_version, policy_version, decision, caller, request_id, created_at, record)
             VALUES ('d-old', NULL, 'sc-1', 'p-1', 'approve', 'test', 'r-1', 1780000000000000, '{}')",
        )
        .execute(&mut old)
        .await
        .unwrap();
        old.close().await.unwrap();

        let store = Store::connect(&StoreOptions::new(&url)).await.unwrap();
        assert_eq!(
            store.decision("d-old").await.unwrap(),
            Some(decision_row("d-old"))
        );
        let mut main_only = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 'decisions'")
                .fetch_one(&mut main_only)
                .await
                .unwrap();
        assert_eq!(left, 0, "the main file still holds a decisions table");
    }
}
