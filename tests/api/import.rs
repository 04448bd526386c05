use crate::helpers::{Backend, spawn_app};
use crate::on_both_backends;
use serde_json::Value;
use smecredit::ingest::import::{ImportOptions, import_file};
use std::io::Write;

const MERCHANTS: &str = "\
merchant_id,name,category,region_type,region_code,currency,onboarded_on
m-1,Lao Wang Breakfast,food_stall,county,330782,CNY,2024-03-01
m-2,李记杂货,grocery,rural,330783,CNY,2023-07-15
m 3,Bad Id,grocery,rural,330783,CNY,2023-07-15
";

/// Line numbers count the header as line 1. Lines 5, 7, 8 and 9 are bad.
const PAYMENTS: &str = "\
merchant_id,payment_id,occurred_at,amount,currency,kind,channel,payer_ref
m-1,p-1,2026-11-01T08:00:00Z,0.10,CNY,sale,qr_code,wxp_1
m-1,p-2,2026-11-01T09:00:00Z,0.20,CNY,sale,mini_program,wxp_2
m-2,p-1,2026-11-02T09:00:00+08:00,15.00,CNY,sale,pos,alp_9
m-1,p-3,2026-11-01T10:00:00Z,-4.00,CNY,sale,qr_code,wxp_1
m-2,p-2,2026-11-02T10:00:00Z,2.50,CNY,refund,pos,alp_9
m-9,p-1,2026-11-02T10:00:00Z,2.50,CNY,sale,pos,alp_9
m-1,p-4,2026-11-01T10:00:00Z,1.00,USD,sale,qr_code,wxp_1
m-1,p-5,2026-11-01T10:00:00Z,1.00,CNY,sale
m-1,p-6,2026-11-03T10:00:00Z,100.00,CNY,chargeback,in_app,wxp_3
";

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path
}

fn options(strict: bool, batch_size: usize) -> ImportOptions {
    ImportOptions {
        strict,
        batch_size,
        progress: false,
    }
}

async fn imports_files_skipping_bad_rows_by_line_and_is_idempotent(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let merchants = write(&dir, "merchants.csv", MERCHANTS);
    let payments = write(&dir, "payments.csv", PAYMENTS);

    let report = import_file(&app.store, &merchants, &options(false, 2))
        .await
        .unwrap();
    assert_eq!((report.rows, report.stored, report.skipped), (3, 2, 1));
    assert_eq!(report.bad_rows[0].line, 4);
    assert!(
        report.bad_rows[0].message.starts_with("merchant_id:"),
        "{:?}",
        report.bad_rows
    );

    let report = import_file(&app.store, &payments, &options(false, 3))
        .await
        .unwrap();
    assert_eq!(report.rows, 9);
    assert_eq!(report.stored, 5);
    assert_eq!(report.skipped, 4);
    let lines: Vec<u64> = report.bad_rows.iter().map(|b| b.line).collect();
    assert_eq!(lines, [5, 7, 8, 9]);
    assert!(
        report.bad_rows[0].message.contains("amount"),
        "{:?}",
        report.bad_rows[0]
    );
    assert!(
        report.bad_rows[1].message.contains("not a known merchant"),
        "{:?}",
        report.bad_rows[1]
    );
    assert!(
        report.bad_rows[2].message.contains("currency"),
        "{:?}",
        report.bad_rows[2]
    );

    // m-1: 0.10 + 0.20 − 100.00 = −99.70; m-2: 15.00 − 2.50 = 12.50
    let m1: Value = app.get("/v1/merchants/m-1").await.json().await.unwrap();
    assert_eq!(m1["history"]["net_sales"]["amount"], "-99.70");
    let m2: Value = app.get("/v1/merchants/m-2").await.json().await.unwrap();
    assert_eq!(m2["history"]["net_sales"]["amount"], "12.50");

    // running the same files again adds nothing
    let again = import_file(&app.store, &merchants, &options(false, 2))
        .await
        .unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 2));
    let again = import_file(&app.store, &payments, &options(false, 3))
        .await
        .unwrap();
    assert_eq!((again.stored, again.duplicates, again.skipped), (0, 5, 4));
    assert_eq!(app.stored_count("m-1").await, 3);
    assert_eq!(app.stored_count("m-2").await, 2);
}

async fn strict_import_stops_at_the_first_bad_row_storing_nothing_of_its_batch(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let merchants = write(&dir, "merchants.csv", MERCHANTS);
    let payments = write(&dir, "payments.csv", PAYMENTS);
    import_file(&app.store, &merchants, &options(false, 100))
        .await
        .unwrap();
    // batches of 2: lines 2–3 are committed, the batch holding line 4 and bad line 5 is not
    let report = import_file(&app.store, &payments, &options(true, 2))
        .await
        .unwrap();
    assert!(report.aborted);
    assert_eq!(report.bad_rows[0].line, 5);
    assert_eq!(report.stored, 2);
    assert_eq!(app.stored_count("m-1").await, 2);
    assert_eq!(app.stored_count("m-2").await, 0);
}

async fn a_conflicting_row_is_skipped_and_reported(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    import_file(
        &app.store,
        &write(&dir, "m.csv", MERCHANTS),
        &options(false, 100),
    )
    .await
    .unwrap();
    let first = "merchant_id,payment_id,occurred_at,amount,currency,kind,channel,payer_ref\nm-1,p-1,2026-11-01T08:00:00Z,0.10,CNY,sale,qr_code,wxp_1\n";
    import_file(
        &app.store,
        &write(&dir, "a.csv", first),
        &options(false, 100),
    )
    .await
    .unwrap();
    let changed = "merchant_id,payment_id,occurred_at,amount,currency,kind,channel,payer_ref\nm-1,p-2,2026-11-01T08:00:00Z,0.30,CNY,sale,qr_code,wxp_1\nm-1,p-1,2026-11-01T08:00:00Z,0.11,CNY,sale,qr_code,wxp_1\n";
    let report = import_file(
        &app.store,
        &write(&dir, "b.csv", changed),
        &options(false, 100),
    )
    .await
    .unwrap();
    assert_eq!((report.stored, report.skipped), (1, 1));
    assert_eq!(report.bad_rows[0].line, 3);
    assert!(report.bad_rows[0].message.contains("different content"));
}

async fn a_file_with_the_wrong_header_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "x.csv",
        "merchant_id,payment_id,amount\nm-1,p-1,1.00\n",
    );
    let err = import_file(&app.store, &path, &options(false, 100))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("occurred_at"), "{err:#}");
}

on_both_backends!(
    imports_files_skipping_bad_rows_by_line_and_is_idempotent,
    strict_import_stops_at_the_first_bad_row_storing_nothing_of_its_batch,
    a_conflicting_row_is_skipped_and_reported,
    a_file_with_the_wrong_header_is_refused,
);
