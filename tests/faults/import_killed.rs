//! `smecredit import` is killed with SIGKILL in the middle of a large file. What it committed is
//! whole batches only, and running the same import again completes it: every merchant ends
//! with exactly the file's payments, count and sum, and day summaries that agree with them.

use crate::helpers::{Backend, TestDatabase};
use sqlx::Connection;
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MERCHANTS: usize = 20;
const PAYMENTS: usize = 200_000;
const BATCH: usize = 10_000;

/// Writes merchants.csv and payments.csv; the file's count and sum (fen) per merchant.
fn write_files(dir: &Path) -> BTreeMap<String, (i64, i64)> {
    let mut m = BufWriter::new(std::fs::File::create(dir.join("merchants.csv")).unwrap());
    writeln!(
        m,
        "merchant_id,name,category,region_type,region_code,currency,onboarded_on"
    )
    .unwrap();
    for i in 0..MERCHANTS {
        writeln!(m, "k-{i:03},Shop {i},grocery,rural,330782,CNY,2024-01-01").unwrap();
    }
    m.flush().unwrap();
    let mut p = BufWriter::new(std::fs::File::create(dir.join("payments.csv")).unwrap());
    writeln!(
        p,
        "merchant_id,payment_id,occurred_at,amount,currency,kind,channel,payer_ref"
    )
    .unwrap();
    let mut expected = BTreeMap::new();
    let start = chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z").unwrap();
    for n in 0..PAYMENTS {
        let merchant = format!("k-{:03}", n % MERCHANTS);
        let fen = 100 + (n as i64 * 7919) % 50_000;
        let at = start + chrono::Duration::seconds(n as i64 * 97);
        writeln!(
            p,
            "{merchant},p-{n:07},{},{}.{:02},CNY,sale,qr_code,payer-{}",
            at.format("%Y-%m-%dT%H:%M:%SZ"),
            fen / 100,
            fen % 100,
            n % 313
        )
        .unwrap();
        let e = expected.entry(merchant).or_insert((0, 0));
        e.0 += 1;
        e.1 += fen;
    }
    p.flush().unwrap();
    expected
}

fn import(url: &str, file: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smecredit"));
    cmd.args(["--database-url", url, "import"])
        .arg(file)
        .env("SMECREDIT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Count and sum per merchant, and the payments the day summaries account for.
async fn stored(url: &str) -> (BTreeMap<String, (i64, i64)>, i64) {
    let per_merchant = "SELECT m.merchant_id, COUNT(*), CAST(SUM(p.amount_minor) AS BIGINT)
        FROM payments p JOIN merchants m ON m.id = p.merchant GROUP BY m.merchant_id";
    let days = "SELECT CAST(COALESCE(SUM(payments), 0) AS BIGINT) FROM payment_days";
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(per_merchant)
            .fetch_all(&mut c)
            .await
            .unwrap();
        let day_total: i64 = sqlx::query_scalar(days).fetch_one(&mut c).await.unwrap();
        (
            rows.into_iter().map(|(m, n, s)| (m, (n, s))).collect(),
            day_total,
        )
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(per_merchant)
            .fetch_all(&mut c)
            .await
            .unwrap();
        let day_total: i64 = sqlx::query_scalar(days).fetch_one(&mut c).await.unwrap();
        (
            rows.into_iter().map(|(m, n, s)| (m, (n, s))).collect(),
            day_total,
        )
    }
}

async fn an_import_killed_midway_completes_when_run_again(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let dir = dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || write_files(&dir))
            .await
            .unwrap()
    };
    let merchants = import(&db.url, &dir.path().join("merchants.csv"))
        .status()
        .unwrap();
    assert!(merchants.success());

    let mut child = import(&db.url, &dir.path().join("payments.csv"))
        .spawn()
        .unwrap();
    // Kill it once some batches are committed and before the end.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (counts, _) = stored(&db.url).await;
        let n: i64 = counts.values().map(|c| c.0).sum();
        if n >= 2 * BATCH as i64 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it could be killed; make the file larger"
        );
        assert!(Instant::now() < deadline, "the import made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not finished: {status:?}");

    let (counts, day_total) = stored(&db.url).await;
    let n: i64 = counts.values().map(|c| c.0).sum();
    assert!(n < PAYMENTS as i64, "the import was cut short ({n} stored)");
    assert_eq!(n % BATCH as i64, 0, "only whole batches are committed");
    assert_eq!(
        day_total, n,
        "day summaries are committed with their payments"
    );

    let again = import(&db.url, &dir.path().join("payments.csv"))
        .status()
        .unwrap();
    assert!(again.success());
    let (counts, day_total) = stored(&db.url).await;
    assert_eq!(
        counts, expected,
        "count and sum (fen) per merchant equal the file's"
    );
    assert_eq!(day_total, PAYMENTS as i64);
}

crate::on_both_backends!(an_import_killed_midway_completes_when_run_again);
