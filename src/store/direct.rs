//! SQLite's C API called on the calling thread, for the two statements every score runs: the
//! day read and the audit log's append.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every statement to it and
//! its answer back, two thread wake-ups a statement. At 1,000 scores a second on two cores that
//! was 14 thread switches a score, with the kernel's scheduling a fifth of the service's CPU,
//! and the latency of a request that waits for a core queues behind all of them. Here the day
//! read runs on the HTTP worker that needs it, and the audit log's writer thread commits the
//! decisions itself. Everything else still goes through sqlx.
//!
//! The surface is the few calls those two need: open, prepare, bind, step, read a column, reset.
//! SQLite is built thread-safe (`SQLITE_THREADSAFE=1`, libsqlite3-sys's bundled build, the one
//! sqlx links), so a connection may move between threads; `&mut self` on every call keeps it to
//! one thread at a time.

use super::StoreError;
use libsqlite3_sys as ffi;
use std::ffi::{CStr, CString, c_int};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

/// An open SQLite connection.
pub(super) struct Connection {
    db: Arc<Handle>,
}

/// The connection's handle, closed when the connection and all its statements are dropped
/// (each statement holds it: SQLite refuses to close a connection with unfinalized statements).
struct Handle(NonNull<ffi::sqlite3>);

impl Handle {
    fn as_ptr(&self) -> *mut ffi::sqlite3 {
        self.0.as_ptr()
    }
}

// SAFETY: SQLite is compiled with SQLITE_THREADSAFE=1 and the connection is opened with
// SQLITE_OPEN_NOMUTEX, in multi-thread mode: a connection may be used from any thread, one
// thread at a time. `&mut self` on every call of a `Connection` or `Statement` keeps each to
// one thread; a connection and its statements are used from the same thread by their owners
// here (a `DayReader`, an `Appender`), and the handle alone is only closed.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: a valid handle, closed once, after every statement of it was finalized
        // (each holds the handle).
        unsafe {
            ffi::sqlite3_close(self.0.as_ptr());
        }
    }
}

impl Connection {
    /// Opens an existing database file for reading and writing (it is never created here: the
    /// store's migrations make it).
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Connection, StoreError> {
        let c_path = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| StoreError::Config(format!("{}: a NUL in the path", path.display())))?;
        let mut db = std::ptr::null_mut();
        // SAFETY: `c_path` is a NUL-terminated string; `db` receives the handle, which SQLite
        // allocates even on failure (closed below).
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                c_path.as_ptr(),
                &mut db,
                ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX,
                std::ptr::null(),
            )
        };
        let Some(db) = NonNull::new(db) else {
            return Err(StoreError::Other(anyhow::anyhow!(
                "sqlite: out of memory opening {}",
                path.display()
            )));
        };
        let conn = Connection {
            db: Arc::new(Handle(db)),
        };
        if rc != ffi::SQLITE_OK {
            return Err(conn.error(rc, &format!("opening {}", path.display())));
        }
        let ms = c_int::try_from(busy_timeout.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: a valid handle.
        let rc = unsafe { ffi::sqlite3_busy_timeout(conn.db.as_ptr(), ms) };
        if rc != ffi::SQLITE_OK {
            return Err(conn.error(rc, "setting the busy timeout"));
        }
        Ok(conn)
    }

    /// Runs statements that return no rows (pragmas, BEGIN, COMMIT).
    pub fn execute(&mut self, sql: &str) -> Result<(), StoreError> {
        let c_sql =
            CString::new(sql).map_err(|_| StoreError::Other(anyhow::anyhow!("a NUL in SQL")))?;
        // SAFETY: a valid handle and a NUL-terminated string; no callback, no error string
        // (the message is read from the handle).
        let rc = unsafe {
            ffi::sqlite3_exec(
                self.db.as_ptr(),
                c_sql.as_ptr(),
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.error(rc, sql));
        }
        Ok(())
    }

    /// Prepares a statement to run many times.
    pub fn prepare(&mut self, sql: &str) -> Result<Statement, StoreError> {
        let mut stmt = std::ptr::null_mut();
        let len = c_int::try_from(sql.len())
            .map_err(|_| StoreError::Other(anyhow::anyhow!("SQL too long")))?;
        // SAFETY: a valid handle; `sql` is valid for `len` bytes; `stmt` receives the statement.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                self.db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.error(rc, sql));
        }
        let stmt = NonNull::new(stmt)
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("sqlite: empty statement")))?;
        // SAFETY: a valid statement; its column names live as long as it does and are copied.
        let columns = (0..unsafe { ffi::sqlite3_column_count(stmt.as_ptr()) })
            .map(|i| unsafe {
                let name = ffi::sqlite3_column_name(stmt.as_ptr(), i);
                if name.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(name).to_string_lossy().into_owned()
                }
            })
            .collect();
        Ok(Statement {
            stmt,
            columns,
            _db: self.db.clone(),
        })
    }

    fn error(&self, rc: c_int, doing: &str) -> StoreError {
        // SAFETY: a valid handle; the message is copied before any other call.
        let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.db.as_ptr())) }
            .to_string_lossy()
            .into_owned();
        sqlite_error(rc, &message, doing)
    }
}

/// A prepared statement of a [`Connection`].
pub(super) struct Statement {
    stmt: NonNull<ffi::sqlite3_stmt>,
    columns: Vec<String>,
    /// Keeps the connection open while the statement lives; dropped after `stmt` is finalized.
    _db: Arc<Handle>,
}

// SAFETY: as for `Handle`: used from one thread at a time (`&mut self`).
unsafe impl Send for Statement {}

impl Statement {
    /// The index of the result column `name`.
    pub fn column(&self, name: &str) -> Result<c_int, StoreError> {
        self.columns
            .iter()
            .position(|c| c == name)
            .and_then(|i| c_int::try_from(i).ok())
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("no column {name}")))
    }

    /// Binds parameter `i` (1-based).
    pub fn bind_i64(&mut self, i: c_int, v: i64) -> Result<(), StoreError> {
        // SAFETY: a valid statement.
        let rc = unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), i, v) };
        self.check(rc, "binding a parameter")
    }

    pub fn bind_opt_i64(&mut self, i: c_int, v: Option<i64>) -> Result<(), StoreError> {
        match v {
            Some(v) => self.bind_i64(i, v),
            // SAFETY: a valid statement.
            None => self.check(
                unsafe { ffi::sqlite3_bind_null(self.stmt.as_ptr(), i) },
                "binding a parameter",
            ),
        }
    }

    /// Binds text; SQLite copies it.
    pub fn bind_text(&mut self, i: c_int, v: &str) -> Result<(), StoreError> {
        // SAFETY: a valid statement; `v` is valid for its length, and SQLITE_TRANSIENT has
        // SQLite copy it before returning.
        let rc = unsafe {
            ffi::sqlite3_bind_text64(
                self.stmt.as_ptr(),
                i,
                v.as_ptr().cast(),
                v.len() as u64,
                ffi::SQLITE_TRANSIENT(),
                ffi::SQLITE_UTF8 as u8,
            )
        };
        self.check(rc, "binding a parameter")
    }

    /// Steps once: `true` when a row is ready to read, `false` when the statement is done.
    pub fn step(&mut self) -> Result<bool, StoreError> {
        // SAFETY: a valid statement.
        match unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            rc => {
                // The error of a step is reported again by reset, with the extended code.
                // SAFETY: a valid statement.
                let rc = unsafe { ffi::sqlite3_reset(self.stmt.as_ptr()) }.max(rc);
                Err(self.error(rc, "running a statement"))
            }
        }
    }

    /// Makes the statement ready to run again, with no parameters bound.
    pub fn reset(&mut self) {
        // SAFETY: a valid statement. The result repeats the last step's, already reported.
        unsafe {
            ffi::sqlite3_reset(self.stmt.as_ptr());
            ffi::sqlite3_clear_bindings(self.stmt.as_ptr());
        }
    }

    /// Column `i` of the current row as an integer (0 for NULL).
    pub fn i64(&self, i: c_int) -> i64 {
        // SAFETY: a valid statement on a row; an index out of range gives 0.
        unsafe { ffi::sqlite3_column_int64(self.stmt.as_ptr(), i) }
    }

    /// Column `i` of the current row as bytes; `None` for NULL. Valid until the next step or
    /// reset, which the borrow of `self` ensures.
    pub fn blob(&self, i: c_int) -> Option<&[u8]> {
        // SAFETY: a valid statement on a row. The pointer is fetched before the length, as
        // SQLite's documentation asks, and stays valid until the statement moves on.
        unsafe {
            if ffi::sqlite3_column_type(self.stmt.as_ptr(), i) == ffi::SQLITE_NULL {
                return None;
            }
            let p = ffi::sqlite3_column_blob(self.stmt.as_ptr(), i);
            let n = ffi::sqlite3_column_bytes(self.stmt.as_ptr(), i);
            if p.is_null() || n <= 0 {
                return Some(&[]);
            }
            Some(std::slice::from_raw_parts(p.cast::<u8>(), n as usize))
        }
    }

    /// Column `i` of the current row as text; `None` for NULL.
    pub fn text(&self, i: c_int) -> Result<Option<&str>, StoreError> {
        // SAFETY: a valid statement on a row. `column_text` converts to UTF-8 if needed, then
        // the length is that of the converted text.
        let bytes = unsafe {
            if ffi::sqlite3_column_type(self.stmt.as_ptr(), i) == ffi::SQLITE_NULL {
                return Ok(None);
            }
            let p = ffi::sqlite3_column_text(self.stmt.as_ptr(), i);
            let n = ffi::sqlite3_column_bytes(self.stmt.as_ptr(), i);
            if p.is_null() || n <= 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(p, n as usize)
            }
        };
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| StoreError::corrupt("text that is not UTF-8"))
    }

    fn check(&self, rc: c_int, doing: &str) -> Result<(), StoreError> {
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(self.error(rc, doing))
        }
    }

    fn error(&self, rc: c_int, doing: &str) -> StoreError {
        // SAFETY: the statement's connection lives at least as long as the statement (`_db`);
        // the message is copied before any other call.
        let message = unsafe {
            let db = ffi::sqlite3_db_handle(self.stmt.as_ptr());
            CStr::from_ptr(ffi::sqlite3_errmsg(db))
                .to_string_lossy()
                .into_owned()
        };
        sqlite_error(rc, &message, doing)
    }
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: a valid statement, finalized once.
        unsafe {
            ffi::sqlite3_finalize(self.stmt.as_ptr());
        }
    }
}

/// SQLite busy or locked (by another process, past the busy timeout) is "not now", as for sqlx
/// (HTTP 503); anything else is an error.
fn sqlite_error(rc: c_int, message: &str, doing: &str) -> StoreError {
    if matches!(rc & 0xff, ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED) {
        StoreError::Unavailable(sqlx::Error::Protocol(format!(
            "sqlite: {message} (code {rc}), {doing}"
        )))
    } else {
        StoreError::Other(anyhow::anyhow!("sqlite: {message} (code {rc}), {doing}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        // `open` never creates a file: make it as the store's migrations would.
        std::fs::File::create(&path).unwrap();
        let conn = Connection::open(&path, Duration::from_millis(100)).unwrap();
        (dir, conn)
    }

    #[test]
    fn binds_steps_and_reads_columns_back() {
        let (_dir, mut c) = scratch();
        c.execute("CREATE TABLE t (n INTEGER, s TEXT, b BLOB)")
            .unwrap();
        let mut insert = c.prepare("INSERT INTO t VALUES (?1, ?2, ?3)").unwrap();
        for (n, s) in [(Some(7), "seven"), (None, "nothing")] {
            insert.bind_opt_i64(1, n).unwrap();
            insert.bind_text(2, s).unwrap();
            assert!(!insert.step().unwrap());
            insert.reset();
        }
        c.execute("UPDATE t SET b = x'00ff' WHERE n = 7").unwrap();
        let mut select = c.prepare("SELECT n, s, b FROM t ORDER BY s DESC").unwrap();
        let (n, s, b) = (
            select.column("n").unwrap(),
            select.column("s").unwrap(),
            select.column("b").unwrap(),
        );
        assert!(select.step().unwrap());
        assert_eq!(
            (select.i64(n), select.text(s).unwrap(), select.blob(b)),
            (7, Some("seven"), Some(&[0u8, 255][..]))
        );
        assert!(select.step().unwrap());
        assert_eq!(
            (select.text(s).unwrap(), select.blob(b)),
            (Some("nothing"), None)
        );
        assert!(!select.step().unwrap());
        assert!(select.column("missing").is_err());
    }

    #[test]
    fn errors_name_sqlite_s_reason_and_busy_is_unavailable() {
        let (dir, mut c) = scratch();
        let e = c.prepare("SELECT nope FROM nowhere").err().unwrap();
        assert!(e.to_string().contains("no such table"), "{e}");
        c.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)").unwrap();
        let mut insert = c.prepare("INSERT INTO t VALUES (?1)").unwrap();
        insert.bind_i64(1, 1).unwrap();
        insert.step().unwrap();
        insert.reset();
        insert.bind_i64(1, 1).unwrap();
        let e = insert.step().err().unwrap();
        assert!(e.to_string().contains("UNIQUE"), "{e}");
        assert!(!e.is_unavailable());
        // another connection holding the write lock: busy past the timeout
        let mut other = Connection::open(&dir.path().join("t.db"), Duration::ZERO).unwrap();
        c.execute("BEGIN IMMEDIATE").unwrap();
        let e = other.execute("BEGIN IMMEDIATE").err().unwrap();
        assert!(e.is_unavailable(), "{e}");
    }

    #[test]
    fn a_missing_file_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.db");
        assert!(Connection::open(&path, Duration::ZERO).is_err());
        assert!(!path.exists());
    }
}
