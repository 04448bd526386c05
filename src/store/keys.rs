//! API keys, stored by the SHA-256 of their secret (never the secret itself).

use super::{Backend, StoreError, micros_to_time};
use crate::domain::MerchantId;
use crate::keys::Role;
use crate::store::Store;
use chrono::{DateTime, Utc};
use sqlx::Row;

/// An API key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The public id: listed, logged and recorded in the audit log.
    pub key_id: String,
    /// Hex SHA-256 of the secret.
    pub key_hash: String,
    /// The first key of this key's rotation chain (its own id if it was never rotated).
    pub principal: String,
    pub name: String,
    pub role: Role,
    /// The merchant a merchant key speaks for; `None` for other roles.
    pub merchant_id: Option<MerchantId>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const KEY_COLUMNS: &str =
    "key_id, key_hash, principal, name, role, merchant_id, created_at, revoked_at";

fn key_from_row<R: Row>(row: &R) -> Result<StoredKey, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let role: String = row.try_get("role")?;
    let merchant_id = row
        .try_get::<Option<String>, _>("merchant_id")?
        .map(|m| {
            MerchantId::parse(m).map_err(|e| StoreError::corrupt(format!("api key merchant: {e}")))
        })
        .transpose()?;
    Ok(StoredKey {
        key_id: row.try_get("key_id")?,
        key_hash: row.try_get("key_hash")?,
        principal: row.try_get("principal")?,
        name: row.try_get("name")?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::corrupt(format!("api key role {role:?}")))?,
        merchant_id,
        created_at: micros_to_time(row.try_get("created_at")?)?,
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")?
            .map(micros_to_time)
            .transpose()?,
    })
}

impl Store {
    /// Stores a new key. An id or hash that is already stored is an error (with 48 and 256 random
    /// bits, it does not happen by chance).
    pub async fn insert_api_key(&self, k: &StoredKey) -> Result<(), StoreError> {
        let sql = "INSERT INTO api_keys (key_id, key_hash, principal, name, role, merchant_id, created_at, revoked_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        macro_rules! run {
            ($pool:expr) => {
                sqlx::query(sql)
                    .bind(&k.key_id)
                    .bind(&k.key_hash)
                    .bind(&k.principal)
                    .bind(&k.name)
                    .bind(k.role.as_str())
                    .bind(k.merchant_id.as_ref().map(MerchantId::as_str))
                    .bind(k.created_at.timestamp_micros())
                    .bind(k.revoked_at.map(|t| t.timestamp_micros()))
                    .execute($pool)
                    .await?
                    .rows_affected()
            };
        }
        match &self.backend {
            Backend::Sqlite { writer, .. } => run!(writer),
            Backend::Postgres(pool) => run!(pool),
        };
        Ok(())
    }

    /// The key whose secret hashes to `key_hash` (hex), revoked or not.
    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<StoredKey>, StoreError> {
        self.one_key("key_hash", key_hash).await
    }

    /// The key with this public id, revoked or not.
    pub async fn api_key(&self, key_id: &str) -> Result<Option<StoredKey>, StoreError> {
        self.one_key("key_id", key_id).await
    }

    async fn one_key(&self, column: &str, value: &str) -> Result<Option<StoredKey>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE {column} = $1");
        macro_rules! run {
            ($pool:expr) => {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(value)
                    .fetch_optional($pool)
                    .await?
                    .map(|row| key_from_row(&row))
                    .transpose()
            };
        }
        match &self.backend {
            Backend::Sqlite { reader, .. } => run!(reader),
            Backend::Postgres(pool) => run!(pool),
        }
    }

    /// Every key, oldest first.
    pub async fn api_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id");
        macro_rules! run {
            ($pool:expr) => {
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all($pool)
                    .await?
                    .iter()
                    .map(key_from_row)
                    .collect()
            };
        }
        match &self.backend {
            Backend::Sqlite { reader, .. } => run!(reader),
            Backend::Postgres(pool) => run!(pool),
        }
    }

    /// Revokes a key (a revoked key stays revoked, with its first revocation time); `None` if
    /// no key has this id.
    pub async fn revoke_api_key(
        &self,
        key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<StoredKey>, StoreError> {
        let sql = "UPDATE api_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL";
        match &self.backend {
            Backend::Sqlite { writer, .. } => sqlx::query(sql)
                .bind(key_id)
                .bind(at.timestamp_micros())
                .execute(writer)
                .await?
                .rows_affected(),
            Backend::Postgres(pool) => sqlx::query(sql)
                .bind(key_id)
                .bind(at.timestamp_micros())
                .execute(pool)
                .await?
                .rows_affected(),
        };
        // Read back through the writer on SQLite, so the answer sees the update just made.
        let select = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = $1");
        macro_rules! run {
            ($pool:expr) => {
                sqlx::query(sqlx::AssertSqlSafe(select))
                    .bind(key_id)
                    .fetch_optional($pool)
                    .await?
                    .map(|row| key_from_row(&row))
                    .transpose()
            };
        }
        match &self.backend {
            Backend::Sqlite { writer, .. } => run!(writer),
            Backend::Postgres(pool) => run!(pool),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    fn key(id: &str, hash: &str, role: Role, merchant: Option<&str>) -> StoredKey {
        StoredKey {
            key_id: id.into(),
            key_hash: hash.into(),
            principal: id.into(),
            name: format!("{id} name"),
            role,
            merchant_id: merchant.map(|m| MerchantId::parse(m).unwrap()),
            created_at: DateTime::from_timestamp_micros(1_780_000_000_000_000).unwrap(),
            revoked_at: None,
        }
    }

    #[tokio::test]
    async fn keys_are_found_by_hash_and_id_and_stay_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&StoreOptions::new(&url)).await.unwrap();
        let lender = key("key_a", "aa", Role::Lender, None);
        let merchant = key("key_b", "bb", Role::Merchant, Some("m-1"));
        store.insert_api_key(&lender).await.unwrap();
        store.insert_api_key(&merchant).await.unwrap();
        assert_eq!(
            store.api_key_by_hash("bb").await.unwrap(),
            Some(merchant.clone())
        );
        assert_eq!(store.api_key("key_a").await.unwrap(), Some(lender.clone()));
        assert_eq!(store.api_key_by_hash("cc").await.unwrap(), None);
        assert!(
            store
                .insert_api_key(&key("key_c", "aa", Role::Admin, None))
                .await
                .is_err(),
            "a hash is stored once"
        );
        assert!(
            store
                .insert_api_key(&key("key_d", "dd", Role::Merchant, None))
                .await
                .is_err(),
            "a merchant key names its merchant"
        );

        let first = DateTime::from_timestamp_micros(1_780_000_001_000_000).unwrap();
        let revoked = store.revoke_api_key("key_a", first).await.unwrap().unwrap();
        assert_eq!(revoked.revoked_at, Some(first));
        let later = store
            .revoke_api_key("key_a", first + chrono::Duration::days(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(later.revoked_at, Some(first), "the first revocation stands");
        assert_eq!(store.revoke_api_key("nope", first).await.unwrap(), None);
        let all = store.api_keys().await.unwrap();
        assert_eq!(
            all.iter().map(|k| k.key_id.as_str()).collect::<Vec<_>>(),
            ["key_a", "key_b"]
        );
    }
}
