//! Idempotency keys: who owns a key, and the response to replay. Every decision about a key is
//! one statement, so the database arbitrates between requests and between replicas.

use super::{Backend, Store, StoreError};
use sqlx::Row;

/// Runs `$body` with `$pool` bound to the store's pool for reads or for writes (SQLite writes go
/// through its one writer connection).
macro_rules! on_pool {
    ($store:expr, read, $pool:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite { reader: $pool, .. } => $body,
            Backend::Postgres($pool) => $body,
        }
    };
    ($store:expr, write, $pool:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite { writer: $pool, .. } => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

/// A request's claim on a key. Times are microseconds since the epoch.
#[derive(Debug, Clone)]
pub struct KeyClaim<'a> {
    /// Whose key it is (a hash of the caller's credentials).
    pub scope: &'a str,
    pub key: &'a str,
    /// SHA-256 (hex) of what the request asks: method, path and body.
    pub request_hash: &'a str,
    /// A random token naming this claim; only its owner completes or releases it.
    pub owner: &'a str,
    pub now: i64,
    /// When the key, and the response it holds, stop counting.
    pub expires_at: i64,
    /// Until when the claim holds while its request runs; after that, a request with the same
    /// body may take the key over (the owner died).
    pub lease_until: i64,
}

/// A response held for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    /// The headers worth replaying (content type, location), as name and value.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub request_hash: String,
    pub expires_at: i64,
    pub lease_until: i64,
    /// `None` while the request that claimed it is still running.
    pub response: Option<StoredResponse>,
}

impl IdempotencyRecord {
    /// Whether a claim at `now` would take this key over (see [`Store::claim_idempotency_key`]).
    pub fn is_free_for(&self, request_hash: &str, now: i64) -> bool {
        self.expires_at <= now
            || (self.response.is_none()
                && self.lease_until <= now
                && self.request_hash == request_hash)
    }
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's: run it, then complete or release the key.
    Claimed,
    /// Another request holds the key (running, or answered).
    Held(IdempotencyRecord),
    /// The key was held a moment ago and is gone now (released); try again.
    Vanished,
}

/// Takes a key that is free, expired, or whose owner's lease ran out on the same request.
const CLAIM: &str = "INSERT INTO idempotency_keys (scope, key, request_hash, owner, created_at, expires_at, lease_until)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (scope, key) DO UPDATE SET
         request_hash = excluded.request_hash, owner = excluded.owner, created_at = excluded.created_at,
         expires_at = excluded.expires_at, lease_until = excluded.lease_until,
         status = NULL, headers = NULL, body = NULL
     WHERE idempotency_keys.expires_at <= excluded.created_at
        OR (idempotency_keys.status IS NULL AND idempotency_keys.lease_until <= excluded.created_at
            AND idempotency_keys.request_hash = excluded.request_hash)";

const SELECT: &str = "SELECT request_hash, expires_at, lease_until, status, headers, body
     FROM idempotency_keys WHERE scope = $1 AND key = $2";

fn key_from_row<R: Row>(row: &R) -> Result<IdempotencyRecord, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i32: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let status: Option<i32> = row.try_get("status")?;
    let response = match status {
        None => None,
        Some(status) => {
            let headers: Option<String> = row.try_get("headers")?;
            let headers: Vec<(String, String)> = match headers {
                Some(text) => serde_json::from_str(&text)
                    .map_err(|e| StoreError::corrupt(format!("idempotency headers: {e}")))?,
                None => Vec::new(),
            };
            let body: Option<Vec<u8>> = row.try_get("body")?;
            Some(StoredResponse {
                status: u16::try_from(status)
                    .map_err(|_| StoreError::corrupt(format!("status {status}")))?,
                headers,
                body: body.unwrap_or_default(),
            })
        }
    };
    Ok(IdempotencyRecord {
        request_hash: row.try_get("request_hash")?,
        expires_at: row.try_get("expires_at")?,
        lease_until: row.try_get("lease_until")?,
        response,
    })
}

impl Store {
    /// Claims a key for a request, atomically: a new key, an expired one, or one whose owner's
    /// lease ran out on the same request becomes this request's; otherwise the key as held.
    pub async fn claim_idempotency_key(&self, c: &KeyClaim<'_>) -> Result<Claim, StoreError> {
        macro_rules! run {
            ($pool:expr) => {{
                let claimed = sqlx::query(CLAIM)
                    .bind(c.scope)
                    .bind(c.key)
                    .bind(c.request_hash)
                    .bind(c.owner)
                    .bind(c.now)
                    .bind(c.expires_at)
                    .bind(c.lease_until)
                    .execute($pool)
                    .await?
                    .rows_affected();
                if claimed == 1 {
                    return Ok(Claim::Claimed);
                }
                match sqlx::query(SELECT)
                    .bind(c.scope)
                    .bind(c.key)
                    .fetch_optional($pool)
                    .await?
                {
                    Some(row) => Claim::Held(key_from_row(&row)?),
                    None => Claim::Vanished,
                }
            }};
        }
        Ok(match &self.backend {
            Backend::Sqlite { writer, .. } => run!(writer),
            Backend::Postgres(pool) => run!(pool),
        })
    }

    /// The key as stored now, for a request waiting on another that holds it.
    pub async fn idempotency_key(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        on_pool!(self, read, pool => {
            match sqlx::query(SELECT).bind(scope).bind(key).fetch_optional(pool).await? {
                Some(row) => Ok(Some(key_from_row(&row)?)),
                None => Ok(None),
            }
        })
    }

    /// Stores the response of a claimed key for replay. False if the claim was lost (its lease
    /// ran out and another request took the key over).
    pub async fn complete_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        owner: &str,
        response: &StoredResponse,
    ) -> Result<bool, StoreError> {
        let headers = serde_json::to_string(&response.headers)
            .map_err(|e| StoreError::Other(anyhow::Error::new(e)))?;
        let sql = "UPDATE idempotency_keys SET status = $4, headers = $5, body = $6
                   WHERE scope = $1 AND key = $2 AND owner = $3 AND status IS NULL";
        let updated = on_pool!(self, write, pool => {
            sqlx::query(sql)
                .bind(scope)
                .bind(key)
                .bind(owner)
                .bind(i32::from(response.status))
                .bind(headers)
                .bind(&response.body)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(updated == 1)
    }

    /// Gives a claimed key up (its request failed in a way not worth replaying), so that a retry
    /// runs again.
    pub async fn release_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        let sql = "DELETE FROM idempotency_keys
                   WHERE scope = $1 AND key = $2 AND owner = $3 AND status IS NULL";
        on_pool!(self, write, pool => {
            sqlx::query(sql).bind(scope).bind(key).bind(owner).execute(pool).await?;
        });
        Ok(())
    }

    /// Deletes keys that expired before `now`; how many.
    pub async fn purge_idempotency_keys(&self, now: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM idempotency_keys WHERE expires_at <= $1";
        let n = on_pool!(self, write, pool => {
            sqlx::query(sql).bind(now).execute(pool).await?.rows_affected()
        });
        Ok(n)
    }
}
