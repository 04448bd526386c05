//! The two SQLite statements of every score, run through SQLite's C API on the calling thread
//! ([`super::direct`]) instead of a sqlx connection's thread: the day read, on the HTTP worker
//! that scores, and the audit log's append, on the audit log's writer thread.

use super::days::{DayWindow, PackedDays};
use super::direct::{Connection, Statement};
use super::{DecisionRow, StoreError, StoredMerchant};
use crate::domain::MerchantId;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections that read merchants and their days, one per thread reading at the same moment
/// (the HTTP workers: one per core): a read takes an idle one or opens one, and puts it back.
/// Each has its share of the page-cache budget, as a pooled reader does.
pub(super) struct DayReaders {
    path: PathBuf,
    busy_timeout: Duration,
    cache_kib: u64,
    idle: Mutex<Vec<DayReader>>,
    closed: AtomicBool,
}

struct DayReader {
    read: Statement,
    _conn: Connection,
}

impl std::fmt::Debug for DayReaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DayReaders")
            .field("path", &self.path)
            .field("idle", &self.idle())
            .finish()
    }
}

impl DayReaders {
    pub fn new(path: PathBuf, busy_timeout: Duration, cache_kib: u64) -> DayReaders {
        DayReaders {
            path,
            busy_timeout,
            cache_kib,
            idle: Mutex::new(Vec::new()),
            closed: Default::default(),
        }
    }

    /// Connections open and idle.
    pub fn idle(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// The merchant `id` and its packed days in `window`
    /// ([`super::sqlite::merchant_history_sql`]).
    pub fn merchant_history(
        &self,
        id: &MerchantId,
        window: &DayWindow,
    ) -> Result<Option<(StoredMerchant, PackedDays)>, StoreError> {
        let reader = self.idle.lock().ok().and_then(|mut v| v.pop());
        let mut reader = match reader {
            Some(r) => r,
            None => self.open()?,
        };
        let found = reader.run(id, window);
        reader.read.reset();
        // A connection whose read failed is closed rather than trusted again.
        if found.is_ok()
            && !self.closed.load(Ordering::Acquire)
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push(reader);
        }
        found
    }

    fn open(&self) -> Result<DayReader, StoreError> {
        let mut conn = Connection::open(&self.path, self.busy_timeout)?;
        // Reads only; no memory map (see `sqlite::connect`), its share of the cache.
        conn.execute(&format!(
            "PRAGMA query_only = 1; PRAGMA mmap_size = 0; PRAGMA cache_size = -{}",
            self.cache_kib
        ))?;
        let read = conn.prepare(super::sqlite::merchant_history_sql())?;
        Ok(DayReader { read, _conn: conn })
    }

    /// Closes the idle connections; those in use close when their read ends.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

impl DayReader {
    fn run(
        &mut self,
        id: &MerchantId,
        window: &DayWindow,
    ) -> Result<Option<(StoredMerchant, PackedDays)>, StoreError> {
        let s = &mut self.read;
        s.bind_i64(1, window.payers_from)?;
        s.bind_text(2, id.as_str())?;
        s.bind_i64(3, window.window_from)?;
        s.bind_i64(4, window.to)?;
        if !s.step()? {
            return Ok(None);
        }
        let text = |name: &str| -> Result<String, StoreError> {
            s.text(s.column(name)?)?
                .map(str::to_string)
                .ok_or_else(|| StoreError::corrupt(format!("{name} is NULL")))
        };
        let int = |name: &str| -> Result<i64, StoreError> { Ok(s.i64(s.column(name)?)) };
        let merchant = super::merchant_from_fields(text, int)?;
        let packed = PackedDays {
            days: s.blob(s.column("days")?).map(<[u8]>::to_vec),
            payers: s.blob(s.column("payers")?).map(<[u8]>::to_vec),
            older: s.text(s.column("days_older")?)?.map(str::to_string),
        };
        Ok(Some((merchant, packed)))
    }
}

/// The one connection that appends to the audit log's file, opened at its first append, and
/// the thread that checkpoints that file.
///
/// Checkpoints: SQLite's own would run in the appending connection after a commit that brings
/// the log past 1,000 pages, copying them into the file and syncing it: 3 to 6 ms on this
/// machine's disk, some five times a second at 1,500 scores a second, while every decision
/// made meanwhile waits for the appender. Here a thread of its own copies the pages
/// ([`CHECKPOINT_EVERY`]) while the appender goes on, and the appender then copies the few
/// pages committed during that copy itself (well under a millisecond), so that its next
/// transaction starts the log from its beginning again. (A checkpoint alone, with commits going
/// on during it, never finds the whole log copied, and SQLite only reuses the log when it does:
/// it would grow without end.)
pub(super) struct AuditWriter {
    path: PathBuf,
    busy_timeout: Duration,
    synchronous_full: bool,
    open: Mutex<Option<Appender>>,
    checkpoints: Arc<Checkpoints>,
}

/// How often the audit file's checkpoint thread copies what was committed meanwhile.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// What the appender and the checkpoint thread tell each other.
#[derive(Default)]
struct Checkpoints {
    /// The appender committed since the last checkpoint.
    dirty: AtomicBool,
    /// The checkpoint thread copied the log: the appender's turn to copy the rest.
    tail_due: AtomicBool,
    /// Whether the checkpoint thread runs (it stops when this is cleared or the writer dropped).
    running: AtomicBool,
}

struct Appender {
    insert: Statement,
    conn: Connection,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter")
            .field("path", &self.path)
            .finish()
    }
}

impl AuditWriter {
    pub fn new(path: PathBuf, busy_timeout: Duration, synchronous_full: bool) -> AuditWriter {
        AuditWriter {
            path,
            busy_timeout,
            synchronous_full,
            open: Mutex::new(None),
            checkpoints: Arc::default(),
        }
    }

    /// Whether an append is running now (for `/metrics`).
    pub fn in_use(&self) -> bool {
        self.open.try_lock().is_err()
    }

    /// Appends `rows` in one transaction, committed (and, with `synchronous = FULL`, on disk)
    /// before this returns. Blocks the calling thread: the audit log's writer has its own.
    pub fn append(&self, rows: &[DecisionRow]) -> Result<(), StoreError> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| StoreError::Other(anyhow::anyhow!("the audit writer panicked")))?;
        let appender = match &mut *open {
            Some(appender) => appender,
            None => open.insert(self.open()?),
        };
        if self.checkpoints.tail_due.swap(false, Ordering::AcqRel) {
            // A PASSIVE checkpoint neither waits nor fails for a busy log; the next one
            // copies what this one could not.
            if let Err(e) = appender.conn.execute("PRAGMA wal_checkpoint(PASSIVE)") {
                tracing::warn!(error = %e, "checkpointing the audit log");
            }
        }
        let result = appender.append(rows);
        match result {
            Ok(()) => self.checkpoints.dirty.store(true, Ordering::Release),
            // Closed, rolling back whatever the transaction held; the next append reopens.
            Err(_) => *open = None,
        }
        result
    }

    fn open(&self) -> Result<Appender, StoreError> {
        let mut conn = Connection::open(&self.path, self.busy_timeout)?;
        conn.execute(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA cache_size = -{}",
            if self.synchronous_full {
                "FULL"
            } else {
                "NORMAL"
            },
            super::sqlite::AUDIT_CACHE_KIB
        ))?;
        if !self.checkpoints.running.load(Ordering::Acquire) {
            let checkpointer = Connection::open(&self.path, self.busy_timeout)?;
            self.checkpoints.running.store(true, Ordering::Release);
            let checkpoints = Arc::downgrade(&self.checkpoints);
            let started = std::thread::Builder::new()
                .name("audit-checkpoint".to_string())
                .spawn(move || checkpoint_until_closed(checkpointer, &checkpoints));
            if let Err(e) = started {
                self.checkpoints.running.store(false, Ordering::Release);
                return Err(StoreError::Other(
                    anyhow::Error::new(e).context("starting the audit log's checkpoint thread"),
                ));
            }
        }
        // The checkpoint thread checkpoints instead.
        conn.execute("PRAGMA wal_autocheckpoint = 0")?;
        let insert = conn.prepare(
            "INSERT INTO decisions (decision_id, merchant, model_version, policy_version, decision, caller, request_id, created_at, record) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        Ok(Appender { insert, conn })
    }

    /// Closes the connection (after the append under way, if any) and stops the checkpoint
    /// thread (within [`CHECKPOINT_EVERY`]); the last connection to close checkpoints the rest.
    pub fn close(&self) {
        self.checkpoints.running.store(false, Ordering::Release);
        if let Ok(mut open) = self.open.lock() {
            *open = None;
        }
    }
}

/// The checkpoint thread: every [`CHECKPOINT_EVERY`], if the appender committed, copies the
/// log into the file, then leaves the rest to the appender. Ends when the writer is closed or
/// dropped.
fn checkpoint_until_closed(mut conn: Connection, checkpoints: &std::sync::Weak<Checkpoints>) {
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        let Some(c) = checkpoints.upgrade() else {
            return;
        };
        if !c.running.load(Ordering::Acquire) {
            return;
        }
        if c.dirty.swap(false, Ordering::AcqRel) {
            match conn.execute("PRAGMA wal_checkpoint(PASSIVE)") {
                Ok(()) => c.tail_due.store(true, Ordering::Release),
                Err(e) => tracing::warn!(error = %e, "checkpointing the audit log"),
            }
        }
    }
}
impl Appender {
    fn append(&mut self, rows: &[DecisionRow]) -> Result<(), StoreError> {
        self.conn.execute("BEGIN IMMEDIATE")?;
        for d in rows {
            let s = &mut self.insert;
            let bound = (|| {
                s.bind_text(1, &d.decision_id)?;
                s.bind_opt_i64(2, d.merchant_key)?;
                s.bind_text(3, &d.model_version)?;
                s.bind_text(4, &d.policy_version)?;
                s.bind_text(5, &d.decision)?;
                s.bind_text(6, &d.caller)?;
                s.bind_text(7, &d.request_id)?;
                s.bind_i64(8, d.created_at.timestamp_micros())?;
                s.bind_text(9, &d.record)?;
                s.step()
            })();
            s.reset();
            bound?;
        }
        self.conn.execute("COMMIT")
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Backend, Store, StoreOptions};
    use super::*;
    use chrono::{DateTime, Utc};

    async fn store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        Store::connect(&StoreOptions::new(&url)).await.unwrap()
    }

    fn parts(store: &Store) -> (&DayReaders, &AuditWriter) {
        match &store.backend {
            Backend::Sqlite {
                day_reads, audit, ..
            } => (day_reads, audit),
            Backend::Postgres(_) => panic!("a sqlite:// URL gives a SQLite store"),
        }
    }

    /// The day reads and the audit log open the database by its file name: an in-memory
    /// database (sqlx's `sqlite::memory:`) would be a different, empty one for each of them.
    #[tokio::test]
    async fn an_in_memory_database_is_refused_by_name() {
        let e = Store::connect(&StoreOptions::new("sqlite::memory:"))
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("SQLite needs a file"), "{e}");
    }

    fn pragma(conn: &mut Connection, name: &str) -> i64 {
        let mut s = conn.prepare(&format!("PRAGMA {name}")).unwrap();
        assert!(s.step().unwrap());
        s.i64(0)
    }

    /// A day reader reads only, maps no memory and has its share of the cache budget; a
    /// thread's reads reuse one connection.
    #[tokio::test]
    async fn day_readers_only_read_and_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let (readers, _) = parts(&store);
        let mut reader = readers.open().unwrap();
        let conn = &mut reader._conn;
        assert_eq!(pragma(conn, "query_only"), 1);
        assert_eq!(pragma(conn, "mmap_size"), 0);
        assert_eq!(pragma(conn, "cache_size"), -(readers.cache_kib as i64));
        let e = conn.execute("DELETE FROM merchants").err().unwrap();
        assert!(e.to_string().contains("readonly"), "{e}");

        let id = crate::domain::MerchantId::parse("m-absent").unwrap();
        let as_of = DateTime::parse_from_rfc3339("2026-06-30T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for _ in 0..3 {
            assert!(store.merchant_history(&id, as_of).await.unwrap().is_none());
        }
        assert_eq!(readers.idle(), 1);
        store.close().await;
        assert_eq!(readers.idle(), 0);
    }

    fn decision(i: usize) -> DecisionRow {
        DecisionRow {
            decision_id: format!("d-{i:05}"),
            merchant_key: Some(i as i64 % 7),
            model_version: "sc-1".into(),
            policy_version: "p-1".into(),
            decision: "approve".into(),
            caller: "test".into(),
            request_id: format!("r-{i}"),
            created_at: DateTime::from_timestamp_micros(1_780_000_000_000_000).unwrap(),
            // the size of a real record: about a page
            record: format!("{{\"pad\":\"{}\"}}", "x".repeat(4_000)),
        }
    }

    /// Decisions appended one at a time, as under load: the checkpoint thread and the
    /// appender between them keep the log's file from growing with every decision (without
    /// its reuse, 400 decisions of a page or more each would take over 3 MB), and nothing
    /// appended is lost.
    #[tokio::test]
    async fn the_audit_log_is_checkpointed_beside_the_appender_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let (_, audit) = parts(&store);
        let n = 400;
        for i in 0..n {
            audit.append(&[decision(i)]).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        let wal = dir.path().join("t-audit.db-wal");
        let size = std::fs::metadata(&wal).unwrap().len();
        assert!(size < 1_600_000, "the log grew to {size} bytes");
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM audit.decisions")
            .fetch_one(match &store.backend {
                Backend::Sqlite { reader, .. } => reader,
                Backend::Postgres(_) => unreachable!(),
            })
            .await
            .unwrap();
        assert_eq!(count, n as i64);
        assert_eq!(
            store.decision("d-00399").await.unwrap(),
            Some(decision(399))
        );
        store.close().await;
    }
}
