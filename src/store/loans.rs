//! Loans and their outcomes.

use super::{Backend, StoreError, micros_to_time};
use crate::domain::{Currency, Invalid, Loan, LoanId, LoanOutcome, MerchantId, Money, OutcomeKind};
use crate::store::Store;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;

/// A loan as stored, with its outcome once known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLoan {
    pub key: i64,
    pub merchant_key: i64,
    pub loan: Loan,
    pub outcome: Option<RecordedOutcome>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedOutcome {
    pub outcome: LoanOutcome,
    pub recorded_at: DateTime<Utc>,
}

/// What storing a loan did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoanWrite {
    Created,
    /// The same loan was already stored.
    Duplicate,
    /// The loan id is stored with other terms; nothing changed.
    Conflict(Box<StoredLoan>),
}

/// What recording an outcome did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeWrite {
    Recorded,
    Unchanged,
    /// A default was written off.
    Updated,
    /// Another outcome is recorded and cannot be replaced by this one.
    Conflict(LoanOutcome),
}

/// A loan bound for the store, with its merchant's key and, optionally, its outcome.
#[derive(Debug, Clone)]
pub struct NewLoan<'a> {
    pub merchant_key: i64,
    pub loan: &'a Loan,
    pub outcome: Option<LoanOutcome>,
}

const LOAN_SELECT: &str = "SELECT l.id, l.merchant, l.loan_id, m.merchant_id, m.currency, l.disbursed_on, l.principal_minor,
        l.term_days, l.created_at, o.outcome, o.defaulted_on, o.recorded_at
    FROM loans l JOIN merchants m ON m.id = l.merchant LEFT JOIN loan_outcomes o ON o.loan = l.id";

fn date(s: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| StoreError::corrupt(format!("date {s:?}: {e}")))
}

fn loan_from_row<R: Row>(row: &R) -> Result<StoredLoan, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let bad = |what: &str, e: Invalid| StoreError::corrupt(format!("{what}: {e}"));
    let currency =
        Currency::parse(&row.try_get::<String, _>("currency")?).map_err(|e| bad("currency", e))?;
    let loan = Loan {
        id: LoanId::parse(row.try_get::<String, _>("loan_id")?).map_err(|e| bad("loan_id", e))?,
        merchant_id: MerchantId::parse(row.try_get::<String, _>("merchant_id")?)
            .map_err(|e| bad("merchant_id", e))?,
        disbursed_on: date(&row.try_get::<String, _>("disbursed_on")?)?,
        principal: Money::from_minor(row.try_get("principal_minor")?, currency),
        term_days: u32::try_from(row.try_get::<i64, _>("term_days")?)
            .map_err(|e| StoreError::corrupt(format!("term_days: {e}")))?,
    };
    let outcome = match row.try_get::<Option<String>, _>("outcome")? {
        None => None,
        Some(kind) => {
            let kind = OutcomeKind::parse(&kind).map_err(|e| bad("outcome", e))?;
            let on = row
                .try_get::<Option<String>, _>("defaulted_on")?
                .map(|s| date(&s))
                .transpose()?;
            let outcome = match (kind, on) {
                (OutcomeKind::Repaid, _) => LoanOutcome::Repaid,
                (OutcomeKind::Defaulted, Some(on)) => LoanOutcome::Defaulted { on },
                (OutcomeKind::WrittenOff, Some(on)) => LoanOutcome::WrittenOff { on },
                (_, None) => return Err(StoreError::corrupt("a bad outcome without its date")),
            };
            let recorded_at = row
                .try_get::<Option<i64>, _>("recorded_at")?
                .unwrap_or_default();
            Some(RecordedOutcome {
                outcome,
                recorded_at: micros_to_time(recorded_at)?,
            })
        }
    };
    Ok(StoredLoan {
        key: row.try_get("id")?,
        merchant_key: row.try_get("merchant")?,
        loan,
        outcome,
        created_at: micros_to_time(row.try_get("created_at")?)?,
    })
}

/// Whether two loans have the same terms.
fn same_terms(a: &Loan, b: &Loan) -> bool {
    a.merchant_id == b.merchant_id
        && a.disbursed_on == b.disbursed_on
        && a.principal == b.principal
        && a.term_days == b.term_days
}

macro_rules! on_writer {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite { writer: $pool, .. } => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

macro_rules! on_reader {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite { reader: $pool, .. } => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

impl Store {
    /// Stores loans (and the outcomes that come with them) in one transaction. A loan id already
    /// stored with the same terms is a duplicate; with other terms, a conflict.
    pub async fn insert_loans(
        &self,
        rows: &[NewLoan<'_>],
    ) -> Result<Vec<(LoanWrite, Option<OutcomeWrite>)>, StoreError> {
        let now = Utc::now().timestamp_micros();
        let select = format!("{LOAN_SELECT} WHERE l.loan_id = $1");
        on_writer!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut results = Vec::with_capacity(rows.len());
            for row in rows {
                let l = row.loan;
                let inserted = sqlx::query(
                    "INSERT INTO loans (loan_id, merchant, disbursed_on, principal_minor, term_days, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (loan_id) DO NOTHING",
                )
                .bind(l.id.as_str())
                .bind(row.merchant_key)
                .bind(l.disbursed_on.format("%Y-%m-%d").to_string())
                .bind(l.principal.minor())
                .bind(i64::from(l.term_days))
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let stored = loan_from_row(&sqlx::query(sqlx::AssertSqlSafe(select.clone())).bind(l.id.as_str()).fetch_one(&mut *tx).await?)?;
                let write = if inserted == 1 {
                    LoanWrite::Created
                } else if same_terms(&stored.loan, l) {
                    LoanWrite::Duplicate
                } else {
                    results.push((LoanWrite::Conflict(Box::new(stored)), None));
                    continue;
                };
                let outcome = match row.outcome {
                    None => None,
                    Some(outcome) => {
                        let inserted = sqlx::query(
                            "INSERT INTO loan_outcomes (loan, outcome, defaulted_on, recorded_at) VALUES ($1, $2, $3, $4)
                             ON CONFLICT (loan) DO NOTHING",
                        )
                        .bind(stored.key)
                        .bind(outcome.kind().as_str())
                        .bind(outcome.defaulted_on().map(|d| d.format("%Y-%m-%d").to_string()))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        Some(match stored.outcome {
                            _ if inserted == 1 => OutcomeWrite::Recorded,
                            Some(old) if old.outcome == outcome => OutcomeWrite::Unchanged,
                            Some(old) if old.outcome.may_become(&outcome) => {
                                sqlx::query("UPDATE loan_outcomes SET outcome = $2, recorded_at = $3 WHERE loan = $1")
                                    .bind(stored.key)
                                    .bind(outcome.kind().as_str())
                                    .bind(now)
                                    .execute(&mut *tx)
                                    .await?;
                                OutcomeWrite::Updated
                            }
                            Some(old) => OutcomeWrite::Conflict(old.outcome),
                            None => return Err(StoreError::corrupt("an outcome was neither inserted nor found")),
                        })
                    }
                };
                results.push((write, outcome));
            }
            tx.commit().await?;
            Ok(results)
        })
    }

    /// Records what became of a stored loan.
    pub async fn record_outcome(
        &self,
        loan: &StoredLoan,
        outcome: LoanOutcome,
    ) -> Result<OutcomeWrite, StoreError> {
        // The loan is stored, so inserting it again is a duplicate and only the outcome is written.
        let row = NewLoan {
            merchant_key: loan.merchant_key,
            loan: &loan.loan,
            outcome: Some(outcome),
        };
        let mut written = self.insert_loans(std::slice::from_ref(&row)).await?;
        match written.pop() {
            Some((_, Some(write))) => Ok(write),
            _ => Err(StoreError::corrupt(format!(
                "loan {} changed while recording its outcome",
                loan.loan.id
            ))),
        }
    }

    pub async fn loan(&self, id: &LoanId) -> Result<Option<StoredLoan>, StoreError> {
        let sql = format!("{LOAN_SELECT} WHERE l.loan_id = $1");
        on_reader!(self, pool => {
            match sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.as_str()).fetch_optional(pool).await? {
                Some(row) => Ok(Some(loan_from_row(&row)?)),
                None => Ok(None),
            }
        })
    }

    /// A merchant's loans, oldest first.
    pub async fn merchant_loans(&self, merchant_key: i64) -> Result<Vec<StoredLoan>, StoreError> {
        let sql = format!("{LOAN_SELECT} WHERE l.merchant = $1 ORDER BY l.disbursed_on, l.loan_id");
        on_reader!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(merchant_key)
                .fetch_all(pool)
                .await?
                .iter()
                .map(loan_from_row)
                .collect()
        })
    }
}
