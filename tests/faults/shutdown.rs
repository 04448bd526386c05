//! The real binary, stopped with SIGTERM (or SIGINT) while a large batch is still being
//! uploaded: it stops accepting connections at once, finishes the batch (200, stored), flushes
//! and exits 0.

use crate::eventually;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn batch_body(n: usize) -> String {
    let payments: Vec<Value> = (0..n)
        .map(|i| {
            crate::helpers::payment_json(
                &format!("p-{i:05}"),
                &format!(
                    "2026-06-{:02}T{:02}:{:02}:00Z",
                    1 + i % 18,
                    (i / 60) % 24,
                    i % 60
                ),
                "12.34",
            )
        })
        .collect();
    json!({ "payments": payments }).to_string()
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_then_exits_0_refusing_new_connections() {
    stops_gracefully_on("TERM").await
}

#[tokio::test]
async fn sigint_stops_as_gracefully_as_sigterm() {
    stops_gracefully_on("INT").await
}

async fn stops_gracefully_on(signal_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shutdown.db").display());
    let key = {
        let store = smecredit::store::Store::connect(&smecredit::store::StoreOptions::new(&url))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let key = crate::helpers::issue_key(&store, smecredit::keys::Role::Platform, None).await;
        store.close().await;
        key
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_smecredit"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("SMECREDIT_DATABASE_URL", &url)
        .env(
            "SMECREDIT_MODELS_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/models"),
        )
        .env("SMECREDIT_LOG_FORMAT", "json")
        .env("SMECREDIT_LOG", "info")
        .env("SMECREDIT_SHUTDOWN_TIMEOUT_SECS", "20")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Log lines, parsed, as they come.
    let (lines_tx, lines) = mpsc::channel::<Value>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = lines_tx.send(v);
            }
        }
    });
    let next_message = |want: &str| -> Value {
        loop {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no log line {want:?}"));
            let message = line["fields"]["message"].as_str().unwrap_or("");
            if message.contains(want) {
                return line;
            }
        }
    };
    let listening = next_message("smecredit listening");
    let port = listening["fields"]["port"].as_u64().expect("port") as u16;
    let address = format!("127.0.0.1:{port}");

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let res = client
        .post(format!("http://{address}/v1/merchants"))
        .bearer_auth(&key)
        .json(&crate::helpers::merchant_json("m-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);

    // A large batch, uploaded in two halves with SIGTERM in between.
    let body = batch_body(10_000);
    let (first_half, second_half) = body.as_bytes().split_at(body.len() / 2);
    let mut upload = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /v1/merchants/m-1/payments HTTP/1.1\r\nHost: {address}\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    upload.write_all(head.as_bytes()).await.unwrap();
    upload.write_all(first_half).await.unwrap();
    upload.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    signal(child.id(), signal_name);
    let stopping = next_message("stopping");
    assert_eq!(stopping["fields"]["signal"], format!("SIG{signal_name}"));
    // No new connections while the batch is still in flight.
    eventually(
        Duration::from_secs(10),
        "new connections to be refused",
        || {
            let address = address.clone();
            async move {
                match tokio::net::TcpStream::connect(&address).await {
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(()),
                    _ => None,
                }
            }
        },
    )
    .await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "still finishing the batch"
    );

    upload.write_all(second_half).await.unwrap();
    let mut response = String::new();
    upload.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with(r#"{"accepted":10000,"duplicates":0}"#),
        "{response}"
    );

    let status = eventually(Duration::from_secs(30), "the process to exit", || {
        let exited = child.try_wait().unwrap();
        async move { exited }
    })
    .await;
    assert_eq!(status.code(), Some(0), "{status:?}");
    next_message("shutdown complete");
    assert!(tokio::net::TcpStream::connect(&address).await.is_err());

    // The batch answered before the exit is on disk.
    use sqlx::Connection;
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payments")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(stored, 10_000);
}
