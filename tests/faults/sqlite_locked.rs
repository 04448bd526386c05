//! Another process holds the SQLite file's write lock (`BEGIN EXCLUSIVE`): writes wait for it up
//! to the busy timeout, then get a 503 with `Retry-After` — never a 500 — and succeed once the
//! lock is released, without a restart. Reads go on meanwhile (WAL).

use crate::helpers::{Backend, merchant_json, payment_json, problem, spawn_app_with};
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

/// A process holding `BEGIN EXCLUSIVE` on a SQLite file until told to let go (`python3` with its
/// `sqlite3` module).
struct Locker {
    child: Child,
}

impl Locker {
    fn lock(path: &std::path::Path) -> Option<Locker> {
        let script = "import sqlite3, sys\n\
            c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
            c.execute('BEGIN EXCLUSIVE')\n\
            print('locked', flush=True)\n\
            sys.stdin.readline()\n\
            c.execute('ROLLBACK')\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take()?)
            .read_line(&mut line)
            .ok()?;
        if line.trim() != "locked" {
            let _ = child.kill();
            return None;
        }
        Some(Locker { child })
    }

    fn release(mut self) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = stdin.write_all(b"go\n");
        }
        let status = self.child.wait().expect("the locker ends");
        assert!(status.success(), "the locker process failed");
    }
}

#[tokio::test]
async fn writes_to_a_locked_sqlite_file_are_503_with_retry_after_until_the_lock_is_released() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.db_acquire_timeout_secs = 1).await;
    app.create_merchant("m-1").await;
    let path = app.db.url.trim_start_matches("sqlite://").to_string();
    let Some(locker) = tokio::task::spawn_blocking(move || Locker::lock(path.as_ref()))
        .await
        .unwrap()
    else {
        eprintln!(
            "SKIPPED: python3 with its sqlite3 module is needed to lock the file from another process"
        );
        return;
    };

    let batch = vec![payment_json("p-1", "2026-06-19T08:00:00Z", "18.50")];
    let res = app.post_payments("m-1", batch.clone()).await;
    assert_eq!(res.headers()["retry-after"], "5");
    let (status, body) = problem(res).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["type"], "/problems/unavailable");
    for (path, body) in [
        ("/v1/merchants", merchant_json("m-2")),
        (
            "/v1/loans",
            json!({"loan_id": "L-1", "merchant_id": "m-1", "disbursed_on": "2026-05-01",
                "principal": {"amount": "5000.00", "currency": "CNY"}, "term_days": 90}),
        ),
    ] {
        let res = app.post_json(path, &body).await;
        assert!(res.headers().contains_key("retry-after"), "{path}");
        let (status, body) = problem(res).await;
        assert_eq!(status, 503, "{path}: {body}");
    }
    // Reads do not need the write lock, and a decision is written to the audit log's own file.
    assert_eq!(app.get("/v1/merchants/m-1").await.status().as_u16(), 200);
    let score = json!({"merchant_id": "m-1", "as_of": "2026-11-20"});
    assert_eq!(
        app.post_json("/v1/scores", &score).await.status().as_u16(),
        200
    );

    tokio::task::spawn_blocking(move || locker.release())
        .await
        .unwrap();
    let res = app.post_payments("m-1", batch).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        json!({"accepted": 1, "duplicates": 0})
    );

    // The audit log's file locked: a decision cannot be committed, so it is not answered.
    let audit =
        smecredit::store::sqlite_audit_file(app.db.url.trim_start_matches("sqlite://").as_ref());
    let locker = tokio::task::spawn_blocking(move || Locker::lock(&audit))
        .await
        .unwrap()
        .expect("python3 locked the main file above");
    let res = app.post_json("/v1/scores", &score).await;
    assert_eq!(res.headers()["retry-after"], "5");
    let (status, body) = problem(res).await;
    assert_eq!(status, 503, "{body}");
    let more = vec![payment_json("p-2", "2026-06-19T09:00:00Z", "7.00")];
    assert_eq!(app.post_payments("m-1", more).await.status().as_u16(), 200);
    tokio::task::spawn_blocking(move || locker.release())
        .await
        .unwrap();
    assert_eq!(
        app.post_json("/v1/scores", &score).await.status().as_u16(),
        200
    );
}
