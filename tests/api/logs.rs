//! The log policy, checked on the real binary at `trace` level with JSON logs: after a full flow
//! (a merchant, payments, a score, an eligibility check, a bad request, a wrong key), no log
//! line holds an API key, a payer reference, an amount or any fragment of a request body.

use crate::helpers::{issue_key, merchant_json};
use serde_json::{Value, json};
use smecredit::keys::Role;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PAYER: &str = "PAYER-SECRET-42";
const AMOUNT: &str = "4321.98";
/// In a body the service refuses: the bad request's own fragments.
const BAD_AMOUNT: &str = "BODYFRAG-77.123";
const BAD_FIELD: &str = "BODYFIELD_secret_field";
const WRONG_KEY: &str = "smk_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Waits for a log line whose message contains `want`; every line seen is kept in `all`.
fn wait_for(all: &Mutex<Vec<String>>, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = all.lock().unwrap().iter().find_map(|line| {
            let v: Value = serde_json::from_str(line).ok()?;
            v["fields"]["message"].as_str()?.contains(want).then_some(v)
        });
        if let Some(v) = found {
            return v;
        }
        assert!(Instant::now() < deadline, "no log line {want:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn no_log_line_holds_a_key_a_payer_an_amount_or_a_body_even_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("logs.db").display());
    let (platform, lender, merchant, admin) = {
        let store = smecredit::store::Store::connect(&smecredit::store::StoreOptions::new(&url))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let keys = (
            issue_key(&store, Role::Platform, None).await,
            issue_key(&store, Role::Lender, None).await,
            issue_key(&store, Role::Merchant, Some("m-logs")).await,
            issue_key(&store, Role::Admin, None).await,
        );
        store.close().await;
        keys
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_smecredit"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("SMECREDIT_DATABASE_URL", &url)
        .env(
            "SMECREDIT_MODELS_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/models"),
        )
        .env("SMECREDIT_LOG_FORMAT", "json")
        .env("SMECREDIT_LOG", "trace")
        .env("SMECREDIT_WORKERS", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let listening = wait_for(&lines, "smecredit listening");
    let port = listening["fields"]["port"].as_u64().expect("port");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let send = |key: &str, method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut req = client
            .request(method, format!("{base}{path}"))
            .bearer_auth(key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move { req.send().await.unwrap() }
    };
    let (get, post) = (reqwest::Method::GET, reqwest::Method::POST);

    let res = send(
        &platform,
        post.clone(),
        "/v1/merchants",
        Some(merchant_json("m-logs")),
    )
    .await;
    assert_eq!(res.status(), 201);
    let payments: Vec<Value> = (0..60)
        .map(|d| {
            json!({
                "payment_id": format!("p-{d}"),
                "occurred_at": format!("2026-{:02}-{:02}T10:00:00Z", 9 + d / 28, 1 + d % 28),
                "amount": {"amount": AMOUNT, "currency": "CNY"},
                "kind": "sale",
                "channel": "qr_code",
                "payer_ref": PAYER,
            })
        })
        .collect();
    let res = send(
        &platform,
        post.clone(),
        "/v1/merchants/m-logs/payments",
        Some(json!({ "payments": payments })),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = send(
        &lender,
        post.clone(),
        "/v1/scores",
        Some(json!({"merchant_id": "m-logs", "as_of": "2026-11-20",
            "requested_amount": {"amount": AMOUNT, "currency": "CNY"}})),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = send(
        &merchant,
        get.clone(),
        "/v1/merchants/m-logs/eligibility",
        None,
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // Bad requests whose refusals quote what they got back to the client, not to the log.
    let bad_payment = json!({"payments": [{
        "payment_id": "p-bad", "occurred_at": "2026-11-01T10:00:00Z",
        "amount": {"amount": BAD_AMOUNT, "currency": "CNY"},
        "kind": "sale", "channel": "qr_code", "payer_ref": PAYER,
    }]});
    let res = send(
        &platform,
        post.clone(),
        "/v1/merchants/m-logs/payments",
        Some(bad_payment),
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains(BAD_AMOUNT));
    let unknown_field = json!({"merchant_id": "m-logs", BAD_FIELD: AMOUNT});
    let res = send(&lender, post.clone(), "/v1/scores", Some(unknown_field)).await;
    assert_eq!(res.status(), 400);
    let negative = json!({"payments": [{
        "payment_id": "p-neg", "occurred_at": "2026-11-01T10:00:00Z",
        "amount": {"amount": "-4321.98", "currency": "CNY"},
        "kind": "sale", "channel": "qr_code", "payer_ref": PAYER,
    }]});
    let res = send(
        &platform,
        post.clone(),
        "/v1/merchants/m-logs/payments",
        Some(negative),
    )
    .await;
    assert_eq!(res.status(), 422);
    let res = send(WRONG_KEY, get.clone(), "/v1/merchants/m-logs", None).await;
    assert_eq!(res.status(), 401);
    let res = send(&admin, get.clone(), "/metrics", None).await;
    assert_eq!(res.status(), 200);

    // Stop it, so every line is written.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the service did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap();
    let lines = lines.lock().unwrap();

    // Logging was on, at trace level, and saw the requests.
    let served = lines
        .iter()
        .filter(|l| l.contains("request served"))
        .count();
    assert!(served >= 5, "{served} requests logged of at least 5");
    assert!(
        lines.iter().any(|l| l.contains("\"TRACE\"")),
        "no trace line"
    );
    for event in ["payments stored", "decision made", "request refused"] {
        assert!(lines.iter().any(|l| l.contains(event)), "no {event:?} line");
    }
    let secrets: &[(&str, &str)] = &[
        ("the platform key", &platform),
        ("the lender key", &lender),
        ("the merchant key", &merchant),
        ("the admin key", &admin),
        ("the wrong key", WRONG_KEY),
        ("a payer reference", PAYER),
        ("an amount", AMOUNT),
        ("a bad amount", BAD_AMOUNT),
        ("an unknown field's name", BAD_FIELD),
        ("a payment id", "p-bad"),
        ("a body fragment", "\"payments\""),
        // (not `qr_code` alone: it is also a column name in logged SQL statements, which carry
        // placeholders, never values)
        ("a body fragment", "\"kind\":\"sale\""),
        ("a body fragment", "\"requested_amount\""),
        ("a body fragment", "老王"),
    ];
    let leaks: Vec<String> = lines
        .iter()
        .flat_map(|line| {
            secrets
                .iter()
                .filter(|(_, secret)| line.contains(secret))
                .map(move |(what, _)| format!("{what} in: {line}"))
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}
