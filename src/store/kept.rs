//! Pooled SQLite connections kept checked out between uses, for the paths that run on every
//! score: the day read and the audit log's appends.
//!
//! sqlx returns a connection to its pool by spawning a task that pings it first; for SQLite a
//! ping is a round trip to the connection's worker thread and back, so every statement run on
//! the pool cost two more thread switches and a task after its answer. A profile of the service
//! under load put thread switches at a fifth of its CPU. A [`Kept`] set hands out its idle
//! connections directly and takes them back without the ping. Only a connection whose use
//! finished ([`Held::keep`]) is kept: one dropped after an error, or in the middle of a
//! statement because its request went away, goes back to the pool, which checks it as before.
//! SQLite connections live in this process, so a kept one cannot go stale the way a network
//! connection can.

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

/// At most `limit` connections of a pool at once for one path, kept between uses.
pub(super) struct Kept {
    pool: SqlitePool,
    /// One permit per connection this path may hold: waiters queue here in order, so a
    /// connection put back is handed to the next of them (a waiter inside the pool's own
    /// `acquire` would not see it). Fewer permits than the pool's size leave connections for
    /// the pool's other users.
    permits: Semaphore,
    idle: Mutex<Vec<PoolConnection<Sqlite>>>,
    /// Whether connections are kept at all: not when this path could hold every connection of
    /// a pool that others use too (a pool of one reader).
    keep: bool,
    acquire_timeout: Duration,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept")
            .field("available", &self.permits.available_permits())
            .field("idle", &self.idle())
            .finish()
    }
}

impl Kept {
    pub(super) fn new(
        pool: SqlitePool,
        limit: u32,
        keep: bool,
        acquire_timeout: Duration,
    ) -> Arc<Kept> {
        Arc::new(Kept {
            pool,
            permits: Semaphore::new(limit.max(1) as usize),
            idle: Mutex::new(Vec::new()),
            keep,
            acquire_timeout,
        })
    }

    pub(super) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// How many connections are kept, idle.
    pub(super) fn idle(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }

    /// A connection: a kept one if one is idle, else a new one from the pool. Waits at most
    /// the pool's acquire timeout in all, and then fails as the pool would.
    pub(super) async fn acquire(&self) -> Result<Held<'_>, sqlx::Error> {
        let held = tokio::time::timeout(self.acquire_timeout, async {
            let permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| sqlx::Error::PoolClosed)?;
            let kept = self.idle.lock().expect("kept connections").pop();
            let conn = match kept {
                Some(conn) => conn,
                None => self.pool.acquire().await?,
            };
            Ok::<_, sqlx::Error>(Held {
                kept: self,
                conn: Some(conn),
                _permit: permit,
            })
        })
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
        Ok(held)
    }

    /// Lets every kept connection go back to the pool and refuses new uses, so that the pool
    /// can close (it waits for its connections).
    pub(super) fn close(&self) {
        // under the lock, so that no use finishing now keeps its connection after the clear
        let mut idle = self.idle.lock().expect("kept connections");
        self.permits.close();
        idle.clear();
    }
}

/// A connection in use. Dropped without [`Held::keep`], it goes back to the pool.
pub(super) struct Held<'a> {
    kept: &'a Kept,
    conn: Option<PoolConnection<Sqlite>>,
    _permit: SemaphorePermit<'a>,
}

impl Held<'_> {
    pub(super) fn conn(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("a held connection")
    }

    /// The use finished: keep the connection for the next one.
    pub(super) fn keep(mut self) {
        if let Some(conn) = self.conn.take()
            && self.kept.keep
        {
            let mut idle = self.kept.idle.lock().expect("kept connections");
            // closed: the pool is waiting for its connections
            if !self.kept.permits.is_closed() {
                idle.push(conn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqlitePoolOptions;

    async fn pool(max: u32) -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("k.db").display());
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .connect(&url)
            .await
            .unwrap();
        (dir, pool)
    }

    /// Whether the connection is the one that made the temporary table (it is the
    /// connection's own).
    async fn has_mark(conn: &mut SqliteConnection) -> bool {
        sqlx::query("SELECT 1 FROM temp.mark")
            .execute(conn)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_finished_use_keeps_its_connection_and_an_unfinished_one_returns_it() {
        let (_dir, pool) = pool(2).await;
        let kept = Kept::new(pool.clone(), 1, true, Duration::from_secs(5));
        let mut held = kept.acquire().await.unwrap();
        sqlx::query("CREATE TEMP TABLE mark (x)")
            .execute(held.conn())
            .await
            .unwrap();
        held.keep();
        assert_eq!(kept.idle(), 1);
        assert_eq!(pool.num_idle(), 0, "kept out of the pool");

        let mut held = kept.acquire().await.unwrap();
        assert!(has_mark(held.conn()).await, "the same connection again");
        assert_eq!(kept.idle(), 0);
        drop(held); // as after an error or a cancelled request
        assert_eq!(kept.idle(), 0, "not kept");
        // the pool takes it back (after its check, in a task)
        for _ in 0..100 {
            if pool.num_idle() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.num_idle(), 1);
    }

    #[tokio::test]
    async fn uses_beyond_the_limit_wait_for_a_kept_connection_and_time_out_as_the_pool_would() {
        let (_dir, pool) = pool(3).await;
        let kept = Kept::new(pool, 1, true, Duration::from_millis(200));
        let first = kept.acquire().await.unwrap();
        let err = kept.acquire().await.err().expect("over the limit");
        assert!(matches!(err, sqlx::Error::PoolTimedOut), "{err:?}");

        // a waiter gets the connection the moment it is kept
        let waiter = {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut held = kept.acquire().await.unwrap();
                has_mark(held.conn()).await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut first = first;
        sqlx::query("CREATE TEMP TABLE mark (x)")
            .execute(first.conn())
            .await
            .unwrap();
        first.keep();
        assert!(waiter.await.unwrap(), "the waiter had the kept connection");
    }

    #[tokio::test]
    async fn without_keeping_or_once_closed_nothing_is_kept() {
        let (_dir, pool) = pool(1).await;
        let passing = Kept::new(pool.clone(), 1, false, Duration::from_secs(5));
        passing.acquire().await.unwrap().keep();
        assert_eq!(passing.idle(), 0);

        let kept = Kept::new(pool.clone(), 1, true, Duration::from_secs(5));
        kept.acquire().await.unwrap().keep();
        assert_eq!(kept.idle(), 1);
        kept.close();
        assert_eq!(kept.idle(), 0);
        assert!(matches!(
            kept.acquire().await.err(),
            Some(sqlx::Error::PoolClosed)
        ));
        // the pool has its connection back and can close
        tokio::time::timeout(Duration::from_secs(5), pool.close())
            .await
            .expect("the pool closes");
    }
}
