//! The decision audit log (append-only) and service settings.

use super::{Backend, StoreError, micros_to_time};
use crate::store::Store;
use chrono::{DateTime, Utc};
use sqlx::Row;

/// One decision as logged.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRow {
    pub decision_id: String,
    /// `None` for stateless scoring of a merchant that is not stored.
    pub merchant_key: Option<i64>,
    pub model_version: String,
    pub policy_version: String,
    pub decision: String,
    /// Who asked: the public id of the API key (`anonymous` before keys existed).
    pub caller: String,
    pub request_id: String,
    pub created_at: DateTime<Utc>,
    /// The full decision with its inputs, as JSON text (serialized once, stored as is).
    pub record: String,
}

impl Store {
    /// Appends a decision to the audit log; committed before this returns.
    pub async fn insert_decision(&self, d: &DecisionRow) -> Result<(), StoreError> {
        self.insert_decisions(std::slice::from_ref(d)).await
    }

    /// Appends decisions to the audit log in one transaction, committed before this returns.
    ///
    /// SQLite: a prepared insert per decision, on the calling thread (the audit log's writer
    /// has its own; see `hot`). PostgreSQL: one statement for all, one round trip to the server.
    pub async fn insert_decisions(&self, rows: &[DecisionRow]) -> Result<(), StoreError> {
        // Most rows per append: 9 parameters each, inside PostgreSQL's limit for one statement.
        const MOST_ROWS: usize = 1_000;
        if rows.len() > MOST_ROWS {
            return Err(StoreError::Other(anyhow::anyhow!(
                "at most {MOST_ROWS} decisions per append, got {}",
                rows.len()
            )));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let pool = match &self.backend {
            Backend::Sqlite { audit, .. } => return audit.append(rows),
            Backend::Postgres(pool) => pool,
        };
        let mut sql = String::from(
            "INSERT INTO decisions (decision_id, merchant, model_version, policy_version, decision, caller, request_id, created_at, record) VALUES ",
        );
        for i in 0..rows.len() {
            if i > 0 {
                sql.push(',');
            }
            let p: Vec<String> = (1..=9).map(|c| format!("${}", i * 9 + c)).collect();
            sql.push_str(&format!("({})", p.join(",")));
        }
        // Prepared statements are cached per connection, one per distinct text: keep the small
        // groups (the usual ones) and prepare the rare large ones each time, so the cache cannot
        // fill with statements of 200-odd rows.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(rows.len() <= 16);
        for d in rows {
            q = q
                .bind(&d.decision_id)
                .bind(d.merchant_key)
                .bind(&d.model_version)
                .bind(&d.policy_version)
                .bind(&d.decision)
                .bind(&d.caller)
                .bind(&d.request_id)
                .bind(d.created_at.timestamp_micros())
                .bind(&d.record);
        }
        q.execute(pool).await?;
        Ok(())
    }

    pub async fn decision(&self, decision_id: &str) -> Result<Option<DecisionRow>, StoreError> {
        let sql = "SELECT decision_id, merchant, model_version, policy_version, decision, caller, request_id, created_at, record
                   FROM decisions WHERE decision_id = $1";
        macro_rules! run {
            ($pool:expr) => {
                match sqlx::query(sql)
                    .bind(decision_id)
                    .fetch_optional($pool)
                    .await?
                {
                    None => None,
                    Some(row) => Some(DecisionRow {
                        decision_id: row.try_get("decision_id")?,
                        merchant_key: row.try_get("merchant")?,
                        model_version: row.try_get("model_version")?,
                        policy_version: row.try_get("policy_version")?,
                        decision: row.try_get("decision")?,
                        caller: row.try_get("caller")?,
                        request_id: row.try_get("request_id")?,
                        created_at: micros_to_time(row.try_get("created_at")?)?,
                        record: row.try_get("record")?,
                    }),
                }
            };
        }
        Ok(match &self.backend {
            Backend::Sqlite { reader, .. } => run!(reader),
            Backend::Postgres(pool) => run!(pool),
        })
    }

    /// A service setting, such as the active model version.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let sql = "SELECT value FROM settings WHERE key = $1";
        Ok(match &self.backend {
            Backend::Sqlite { reader, .. } => {
                sqlx::query_scalar(sql)
                    .bind(key)
                    .fetch_optional(reader)
                    .await?
            }
            Backend::Postgres(pool) => {
                sqlx::query_scalar(sql)
                    .bind(key)
                    .fetch_optional(pool)
                    .await?
            }
        })
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
        let now = Utc::now().timestamp_micros();
        match &self.backend {
            Backend::Sqlite { writer, .. } => sqlx::query(sql)
                .bind(key)
                .bind(value)
                .bind(now)
                .execute(writer)
                .await?
                .rows_affected(),
            Backend::Postgres(pool) => sqlx::query(sql)
                .bind(key)
                .bind(value)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    #[tokio::test]
    async fn a_decision_round_trips_and_settings_persist() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&StoreOptions::new(&url)).await.unwrap();
        let row = DecisionRow {
            decision_id: "d-1".into(),
            merchant_key: None,
            model_version: "sc-1".into(),
            policy_version: "p-1".into(),
            decision: "approve".into(),
            caller: "test".into(),
            request_id: "r-1".into(),
            created_at: DateTime::from_timestamp_micros(1_780_000_000_123_456).unwrap(),
            record: r#"{"score":612.5,"limit":{"amount":"4500.00","currency":"CNY"}}"#.into(),
        };
        store.insert_decision(&row).await.unwrap();
        assert_eq!(store.decision("d-1").await.unwrap(), Some(row.clone()));
        assert!(
            store.insert_decision(&row).await.is_err(),
            "decisions are append-only"
        );
        // A group is one statement: all of it or nothing.
        let named = |id: &str| DecisionRow {
            decision_id: id.into(),
            ..row.clone()
        };
        assert!(
            store
                .insert_decisions(&[named("d-2"), named("d-3"), row.clone()])
                .await
                .is_err()
        );
        assert_eq!(store.decision("d-2").await.unwrap(), None);
        store
            .insert_decisions(&[named("d-2"), named("d-3")])
            .await
            .unwrap();
        assert_eq!(store.decision("d-3").await.unwrap(), Some(named("d-3")));
        assert_eq!(store.setting("active_model").await.unwrap(), None);
        store.set_setting("active_model", "sc-1").await.unwrap();
        store.set_setting("active_model", "sc-2").await.unwrap();
        store.close().await;
        let reopened = Store::connect(&StoreOptions::new(&url)).await.unwrap();
        assert_eq!(
            reopened.setting("active_model").await.unwrap().as_deref(),
            Some("sc-2")
        );
    }
}
