use crate::helpers::{Backend, TestApp, payment_json, problem, spawn_app, spawn_app_with};
use crate::on_both_backends;
use serde_json::json;
use sqlx::Connection;
use std::time::{Duration, Instant};

async fn post_raw(app: &TestApp, path: &str, body: String) -> reqwest::Response {
    let credential = app.key_for(&reqwest::Method::POST, path).await.unwrap();
    app.client
        .post(app.url(path))
        .bearer_auth(credential)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn a_body_nested_deeper_than_32_levels_is_a_400_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let deep = format!(
        r#"{{"merchant_id": {}"m-1"{}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    let (status, body) = problem(post_raw(&app, "/v1/scores", deep).await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["type"], "/problems/malformed-body");
    assert!(
        body["detail"].as_str().unwrap().contains("deeper than 32"),
        "{body}"
    );
    // Shallower nesting gets as far as the parser, which names the field at fault.
    let shallow = format!(
        r#"{{"merchant_id": {}"m-1"{}}}"#,
        "[".repeat(20),
        "]".repeat(20)
    );
    let (status, body) = problem(post_raw(&app, "/v1/scores", shallow).await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["field"], "merchant_id");
}

/// Something that holds the database's write lock until dropped or released: another SQLite
/// connection in `BEGIN EXCLUSIVE`, or a PostgreSQL transaction holding an exclusive table lock.
enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    async fn take(app: &TestApp, table: &str) -> WriteLock {
        if app.db.url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            sqlx::query("BEGIN EXCLUSIVE")
                .execute(&mut conn)
                .await
                .unwrap();
            WriteLock::Sqlite(conn)
        } else {
            let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
            )))
            .execute(&mut conn)
            .await
            .unwrap();
            WriteLock::Postgres(conn)
        }
    }

    async fn release(self) {
        match self {
            WriteLock::Sqlite(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
            WriteLock::Postgres(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
        }
    }
}

async fn a_request_over_the_timeout_is_a_503_with_retry_after_and_the_service_goes_on(
    backend: Backend,
) {
    // The store would wait 5 s for the lock; the request gives up after 1 s.
    let app = spawn_app_with(backend, |s| {
        s.request_timeout_secs = 1;
        s.db_acquire_timeout_secs = 5;
    })
    .await;
    app.create_merchant("m-1").await;
    let lock = WriteLock::take(&app, "payments").await;
    let started = Instant::now();
    let res = app
        .post_payments(
            "m-1",
            vec![payment_json("p-1", "2026-06-19T08:00:00Z", "1.00")],
        )
        .await;
    let waited = started.elapsed();
    assert_eq!(res.headers()["retry-after"], "5");
    assert!(res.headers().contains_key("x-request-id"));
    let (status, body) = problem(res).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["type"], "/problems/timeout");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    lock.release().await;
    // Nothing of the abandoned batch was stored, and the next one goes through.
    let res = app
        .post_payments(
            "m-1",
            vec![payment_json("p-1", "2026-06-19T08:00:00Z", "1.00")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        json!({"accepted": 1, "duplicates": 0})
    );
}

/// An idle keep-alive connection holds the only slot of the only worker: a second connection
/// is accepted by the kernel but not served until the first closes, and then it is.
async fn connections_beyond_the_cap_wait_outside_the_service_until_one_closes(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(backend, |s| {
        s.workers = Some(1);
        s.http_max_connections = 1;
    })
    .await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let read_answer = async |stream: &mut tokio::net::TcpStream| {
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    let host = app.address.trim_start_matches("http://").to_string();
    let mut first = tokio::net::TcpStream::connect(&host).await.unwrap();
    first.write_all(request).await.unwrap();
    assert!(read_answer(&mut first).await.starts_with("HTTP/1.1 200"));
    let mut second = tokio::net::TcpStream::connect(&host).await.unwrap();
    second.write_all(request).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(700), read_answer(&mut second)).await;
    assert!(waited.is_err(), "served beyond the cap: {waited:?}");
    drop(first);
    let answer = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut second))
        .await
        .expect("served once the first connection closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

on_both_backends!(
    connections_beyond_the_cap_wait_outside_the_service_until_one_closes,
    a_body_nested_deeper_than_32_levels_is_a_400_problem,
    a_request_over_the_timeout_is_a_503_with_retry_after_and_the_service_goes_on,
);

#[tokio::test]
async fn postgres_cancels_a_statement_over_the_statement_timeout_and_answers_503() {
    if crate::helpers::postgres_url().is_none() {
        eprintln!("SMECREDIT_TEST_POSTGRES_URL is not set; PostgreSQL-only test not run");
        return;
    }
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.request_timeout_secs = 20;
        s.db_statement_timeout_secs = 1;
    })
    .await;
    app.create_merchant("m-1").await;
    let lock = WriteLock::take(&app, "payments").await;
    let started = Instant::now();
    let res = app
        .post_payments(
            "m-1",
            vec![payment_json("p-1", "2026-06-19T08:00:00Z", "1.00")],
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let retry_after = res.headers().contains_key("retry-after");
    let (status, body) = problem(res).await;
    assert_eq!(
        (status, body["type"].as_str()),
        (503, Some("/problems/unavailable")),
        "{body}"
    );
    assert!(retry_after);
    lock.release().await;
    let res = app
        .post_payments(
            "m-1",
            vec![payment_json("p-1", "2026-06-19T08:00:00Z", "1.00")],
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
}
