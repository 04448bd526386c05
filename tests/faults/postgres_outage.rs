//! PostgreSQL stops in the middle of a stream of payment batches and comes back: every request
//! meanwhile is a 503 with `Retry-After` (never a 500), `/readyz` says not ready, the service
//! recovers by itself, and every batch acknowledged with a 200 is stored.

use crate::eventually;
use crate::helpers::{issue_key, merchant_json, payment_json, start_app, test_settings};
use crate::private_postgres::PrivatePostgres;
use serde_json::{Value, json};
use smecredit::keys::Role;
use sqlx::Connection;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What one request got, for the checks at the end.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: bool,
    problem_type: Option<String>,
}

async fn answer_of(res: reqwest::Response) -> Answer {
    let status = res.status().as_u16();
    let retry_after = res.headers().contains_key("retry-after");
    let body: Value = res.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        retry_after,
        problem_type: body["type"].as_str().map(str::to_string),
    }
}

fn is_unavailable(a: &Answer) -> bool {
    a.status == 503 && a.retry_after && a.problem_type.as_deref() == Some("/problems/unavailable")
}

/// Every route that needs the store, as the outage finds it: method, path, body.
fn store_routes() -> Vec<(&'static str, String, Option<Value>)> {
    let loan = json!({"loan_id": "L-9", "merchant_id": "m-1", "disbursed_on": "2026-05-01",
        "principal": {"amount": "5000.00", "currency": "CNY"}, "term_days": 90});
    let batch = json!({"payments": [payment_json("outage-1", "2026-06-19T08:00:00Z", "1.00")]});
    vec![
        ("POST", "/v1/merchants".into(), Some(merchant_json("m-2"))),
        ("GET", "/v1/merchants/m-1".into(), None),
        ("POST", "/v1/merchants/m-1/payments".into(), Some(batch)),
        ("GET", "/v1/merchants/m-1/payments".into(), None),
        (
            "GET",
            "/v1/merchants/m-1/features?as_of=2026-11-20".into(),
            None,
        ),
        ("GET", "/v1/merchants/m-1/loans".into(), None),
        ("GET", "/v1/merchants/m-1/eligibility".into(), None),
        ("POST", "/v1/loans".into(), Some(loan)),
        ("GET", "/v1/loans/L-1".into(), None),
        (
            "POST",
            "/v1/loans/L-1/outcome".into(),
            Some(json!({"outcome": "repaid"})),
        ),
        (
            "POST",
            "/v1/scores".into(),
            Some(json!({"merchant_id": "m-1"})),
        ),
        // With an Idempotency-Key (added below), the key cannot even be claimed.
        (
            "POST",
            "/v1/scores?keyed".into(),
            Some(json!({"merchant_id": "m-1"})),
        ),
        (
            "GET",
            "/v1/decisions/00000000-0000-0000-0000-000000000000".into(),
            None,
        ),
        ("POST", "/v1/models/sc-2026.11-sim43/activate".into(), None),
        ("GET", "/readyz".into(), None),
    ]
}

#[tokio::test]
async fn a_postgres_outage_is_503_with_retry_after_then_recovers_losing_no_acknowledged_payment() {
    let cluster = match tokio::task::spawn_blocking(PrivatePostgres::start_new)
        .await
        .unwrap()
    {
        Ok(c) => Arc::new(c),
        Err(why) => {
            eprintln!("SKIPPED: cannot run a private PostgreSQL cluster: {why}");
            return;
        }
    };
    let mut settings = test_settings(&cluster.url());
    // Fail fast while the database is away: a connection is waited for at most 1 s.
    settings.db_acquire_timeout_secs = 1;
    settings.workers = Some(2);
    let (address, store) = start_app(&settings).await;
    // one key per role, issued while the database is up
    let platform = issue_key(&store, Role::Platform, None).await;
    let lender = issue_key(&store, Role::Lender, None).await;
    let admin = issue_key(&store, Role::Admin, None).await;
    let merchant = issue_key(&store, Role::Merchant, Some("m-1")).await;
    let key_for = |path: &str| -> String {
        if path.starts_with("/v1/models") {
            admin.clone()
        } else if path.contains("/eligibility") {
            merchant.clone()
        } else if path.starts_with("/v1/scores")
            || path.starts_with("/v1/decisions")
            || path.contains("/features")
        {
            lender.clone()
        } else {
            platform.clone()
        }
    };
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{address}{path}");
    let res = client
        .post(url("/v1/merchants"))
        .bearer_auth(&platform)
        .json(&merchant_json("m-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);

    // A platform streaming batches of five payments, one after another, all through the outage.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, stop, batches_url, platform) = (
            client.clone(),
            stop.clone(),
            url("/v1/merchants/m-1/payments"),
            platform.clone(),
        );
        tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut batch = 0;
            while !stop.load(Ordering::Relaxed) {
                let payments: Vec<Value> = (0..5)
                    .map(|k| {
                        payment_json(
                            &format!("b{batch}-{k}"),
                            &format!("2026-06-19T08:{:02}:{:02}Z", batch % 60, k),
                            "10.00",
                        )
                    })
                    .collect();
                let res = client
                    .post(&batches_url)
                    .bearer_auth(&platform)
                    .json(&json!({ "payments": payments }))
                    .send()
                    .await
                    .expect("the service answers");
                answers.push((batch, answer_of(res).await));
                batch += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || cluster.stop("fast"))
            .await
            .unwrap()
            .expect("pg_ctl stop");
    }
    // Every route that needs the store answers 503 with Retry-After, all at once.
    let during =
        futures_util::future::join_all(store_routes().into_iter().map(|(method, path, body)| {
            let client = client.clone();
            let url = url(&path);
            let key = key_for(&path);
            async move {
                let mut req = match method {
                    "POST" => client.post(&url).json(&body.unwrap_or(json!({}))),
                    _ => client.get(&url),
                };
                if path != "/readyz" {
                    req = req.bearer_auth(key);
                }
                if path.ends_with("?keyed") {
                    req = req.header("Idempotency-Key", "outage-key");
                }
                (
                    format!("{method} {path}"),
                    answer_of(req.send().await.unwrap()).await,
                )
            }
        }))
        .await;
    for (route, answer) in &during {
        assert!(
            is_unavailable(answer),
            "{route} during the outage: {answer:?}"
        );
    }
    let health = client.get(url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "the process itself is alive");

    {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || cluster.start())
            .await
            .unwrap()
            .expect("pg_ctl start");
    }
    // No restart of the service: it is ready again by itself...
    eventually(Duration::from_secs(30), "/readyz to answer 200", || {
        let req = client.get(url("/readyz")).send();
        async move { (req.await.ok()?.status().as_u16() == 200).then_some(()) }
    })
    .await;
    // ...and the writer's batches go through again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let answers = writer.await.unwrap();

    let mut acknowledged = BTreeSet::new();
    let mut refused = 0;
    for (batch, answer) in &answers {
        if answer.status == 200 {
            acknowledged.insert(*batch);
        } else {
            assert!(is_unavailable(answer), "batch {batch}: {answer:?}");
            refused += 1;
        }
    }
    eprintln!(
        "{} batches acknowledged, {refused} refused with 503 during the outage",
        acknowledged.len()
    );
    assert!(refused > 0, "some batches met the outage: {answers:?}");
    let last_refused = answers.iter().rposition(|(_, a)| a.status != 200).unwrap();
    assert!(
        answers[last_refused + 1..]
            .iter()
            .any(|(_, a)| a.status == 200),
        "batches are acknowledged again after the outage"
    );
    // Every acknowledged payment is stored.
    let mut conn = sqlx::PgConnection::connect(&cluster.url()).await.unwrap();
    let stored: BTreeSet<String> = sqlx::query_scalar("SELECT payment_id FROM payments")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .collect();
    for batch in &acknowledged {
        for k in 0..5 {
            let id = format!("b{batch}-{k}");
            assert!(stored.contains(&id), "acknowledged payment {id} is missing");
        }
    }
    conn.close().await.unwrap();
}
