use thiserror::Error;

/// Why the store could not do what was asked.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database cannot be reached or is busy beyond the timeout: retry later (HTTP 503).
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("invalid database configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl StoreError {
    pub(crate) fn corrupt(message: impl Into<String>) -> StoreError {
        StoreError::Other(anyhow::anyhow!(
            "stored data is invalid: {}",
            message.into()
        ))
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailability(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Other(anyhow::Error::new(e).context("database query failed"))
        }
    }
}

/// Errors that say "not now" rather than "never": no connection, a pool exhausted past its
/// timeout, SQLite busy or locked by another process, PostgreSQL shutting down or refusing
/// connections.
fn is_unavailability(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL (SQLSTATE, which may be all digits, so asked first): class 08
            // (connection exception), 57P0x (shutdown, cannot connect now), 53300 (too many
            // connections), 57014 (cancelled by `statement_timeout`: the database is overloaded
            // or a lock is held), 55P03 (lock not available).
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                return code.starts_with("08")
                    || code.starts_with("57P")
                    || matches!(code.as_ref(), "53300" | "57014" | "55P03");
            }
            // SQLite: primary result codes 5 (BUSY) and 6 (LOCKED), also as extended codes.
            code.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
        }
        _ => false,
    }
}
