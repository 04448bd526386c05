use crate::helpers::{Backend, fields, payment_json, problem, spawn_app, spawn_app_with};
use crate::on_both_backends;
use reqwest::Method;
use serde_json::{Value, json};

const M: &str = "m-0001";

async fn stores_a_batch_and_lists_it_back_to_the_cent(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant(M).await;
    let res = app
        .post_payments(
            M,
            vec![
                payment_json("p-1", "2026-11-01T08:00:00+08:00", "0.10"),
                payment_json("p-2", "2026-11-01T09:00:00+08:00", "0.20"),
                // the largest amount a payment may carry
                payment_json("p-3", "2026-11-02T10:00:00Z", "9999999999.99"),
            ],
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"accepted": 3, "duplicates": 0})
    );

    let page: Value = app
        .get(&format!("/v1/merchants/{M}/payments"))
        .await
        .json()
        .await
        .unwrap();
    let amounts: Vec<&str> = page["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["amount"]["amount"].as_str().unwrap())
        .collect();
    assert_eq!(amounts, ["0.10", "0.20", "9999999999.99"]);
    assert_eq!(page["payments"][0]["occurred_at"], "2026-11-01T00:00:00Z");
    assert_eq!(page["next_cursor"], Value::Null);

    // 0.10 + 0.20 + 9999999999.99 = 10000000000.29 exactly, with no float in between
    let merchant: Value = app
        .get(&format!("/v1/merchants/{M}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        merchant["history"]["net_sales"],
        json!({"amount": "10000000000.29", "currency": "CNY"})
    );
    assert_eq!(merchant["history"]["payment_count"], 3);
}

async fn refunds_and_chargebacks_reduce_net_sales(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant(M).await;
    let mut refund = payment_json("r-1", "2026-11-01T10:00:00Z", "3.00");
    refund["kind"] = json!("refund");
    let mut chargeback = payment_json("c-1", "2026-11-01T11:00:00Z", "1.25");
    chargeback["kind"] = json!("chargeback");
    let batch = vec![
        payment_json("s-1", "2026-11-01T09:00:00Z", "10.00"),
        refund,
        chargeback,
    ];
    assert_eq!(app.post_payments(M, batch).await.status().as_u16(), 200);
    let merchant: Value = app
        .get(&format!("/v1/merchants/{M}"))
        .await
        .json()
        .await
        .unwrap();
    // 10.00 − 3.00 − 1.25
    assert_eq!(merchant["history"]["net_sales"]["amount"], "5.75");
    assert_eq!(merchant["history"]["sale_count"], 1);
}

async fn resending_a_batch_counts_duplicates_and_stores_nothing_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant(M).await;
    let batch = vec![
        payment_json("p-1", "2026-11-01T08:00:00Z", "5.00"),
        payment_json("p-2", "2026-11-01T09:00:00Z", "6.00"),
    ];
    app.post_payments(M, batch.clone()).await;
    let mut again = batch.clone();
    again.push(payment_json("p-3", "2026-11-01T10:00:00Z", "7.00"));
    // the same payment twice within one batch is a duplicate too
    again.push(payment_json("p-3", "2026-11-01T10:00:00Z", "7.00"));
    let res = app.post_payments(M, again).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"accepted": 1, "duplicates": 3})
    );
    assert_eq!(app.stored_count(M).await, 3);
}

async fn a_reused_payment_id_with_other_content_is_a_conflict_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant(M).await;
    app.post_payments(M, vec![payment_json("p-1", "2026-11-01T08:00:00Z", "5.00")])
        .await;
    let res = app
        .post_payments(
            M,
            vec![
                payment_json("p-9", "2026-11-01T09:00:00Z", "1.00"),
                payment_json("p-1", "2026-11-01T08:00:00Z", "5.01"),
            ],
        )
        .await;
    let (status, body) = problem(res).await;
    assert_eq!(status, 409);
    assert_eq!(fields(&body), ["payments[1].payment_id"]);
    assert!(body["detail"].as_str().unwrap().contains("p-1"), "{body}");
    assert_eq!(app.stored_count(M).await, 1, "p-9 must not be stored");

    // the same id twice in one batch with different content conflicts too
    let res = app
        .post_payments(
            M,
            vec![
                payment_json("p-5", "2026-11-01T09:00:00Z", "1.00"),
                payment_json("p-5", "2026-11-01T09:00:00Z", "2.00"),
            ],
        )
        .await;
    assert_eq!(problem(res).await.0, 409);
    assert_eq!(app.stored_count(M).await, 1);
}

async fn rejects_a_batch_with_one_bad_row_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant(M).await;
    let res = app
        .post_payments(
            M,
            vec![
                payment_json("p-1", "2026-11-01T08:00:00Z", "5.00"),
                payment_json("p-2", "2026-11-01T09:00:00Z", "-1.00"),
                payment_json("p-3", "2026-11-01T10:00:00Z", "7.00"),
            ],
        )
        .await;
    let (status, body) = problem(res).await;
    assert_eq!(status, 422);
    assert_eq!(fields(&body), ["payments[1].amount.amount"]);
    assert_eq!(
        body["detail"],
        "1 of 3 payments are invalid; nothing was stored"
    );
    assert_eq!(app.stored_count(M).await, 0);
}

/// Each case changes one field of a valid payment; each must be a 422 naming that field.
async fn every_kind_of_bad_value_is_a_422_naming_its_field(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant(M).await;
    let in_an_hour = (chrono::Utc::now() + chrono::Duration::minutes(60)).to_rfc3339();
    let long_id = "p".repeat(65);
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "negative sale",
            "/amount/amount",
            json!("-5.00"),
            "amount.amount",
        ),
        (
            "zero sale",
            "/amount/amount",
            json!("0.00"),
            "amount.amount",
        ),
        (
            "too many decimal places",
            "/amount/amount",
            json!("1.005"),
            "amount.amount",
        ),
        (
            "beyond the largest amount",
            "/amount/amount",
            json!("10000000000.00"),
            "amount.amount",
        ),
        (
            "beyond any representable amount",
            "/amount/amount",
            json!("1e40"),
            "amount.amount",
        ),
        (
            "huge digit string",
            "/amount/amount",
            json!("123456789012345678901234567890123"),
            "amount.amount",
        ),
        (
            "non-numeric amount",
            "/amount/amount",
            json!("twelve"),
            "amount.amount",
        ),
        (
            "unknown currency",
            "/amount/currency",
            json!("XYZ"),
            "amount.currency",
        ),
        (
            "another currency",
            "/amount/currency",
            json!("USD"),
            "amount.currency",
        ),
        ("unknown kind", "/kind", json!("gift"), "kind"),
        ("unknown channel", "/channel", json!("cash"), "channel"),
        (
            "in the future",
            "/occurred_at",
            json!(in_an_hour),
            "occurred_at",
        ),
        (
            "before 2000",
            "/occurred_at",
            json!("1999-12-31T23:59:59Z"),
            "occurred_at",
        ),
        (
            "no offset",
            "/occurred_at",
            json!("2026-11-01T08:00:00"),
            "occurred_at",
        ),
        (
            "forbidden id character",
            "/payment_id",
            json!("p/1"),
            "payment_id",
        ),
        (
            "id over 64 characters",
            "/payment_id",
            json!(long_id),
            "payment_id",
        ),
        ("empty id", "/payment_id", json!(""), "payment_id"),
        ("empty payer", "/payer_ref", json!(""), "payer_ref"),
    ];
    for (case, pointer, value, field) in cases {
        let mut p = payment_json("p-1", "2026-11-01T08:00:00Z", "5.00");
        *p.pointer_mut(pointer).unwrap() = value;
        let res = app.post_payments(M, vec![p]).await;
        let (status, body) = problem(res).await;
        assert_eq!(status, 422, "{case}: {body}");
        assert_eq!(
            fields(&body),
            [format!("payments[0].{field}")],
            "{case}: {body}"
        );
    }
    assert_eq!(app.stored_count(M).await, 0);
}

async fn malformed_bodies_are_400_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant(M).await;
    let path = format!("/v1/merchants/{M}/payments");
    let send = async |body: &'static str| {
        app.request(Method::POST, &path)
            .await
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
    };
    let (status, body) = problem(send("{\"payments\": [").await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(body["type"], "/problems/malformed-body");

    let (status, body) = problem(send(r#"{"payments": [], "extra": 1}"#).await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(fields(&body), ["extra"]);

    let mut p = payment_json("p-1", "2026-11-01T08:00:00Z", "5.00");
    p["amount"]["amount"] = json!(5.0);
    let (status, body) = problem(app.post_payments(M, vec![p]).await).await;
    assert_eq!(status, 400, "a JSON number is never money");
    assert_eq!(fields(&body), ["payments[0].amount.amount"]);

    let mut p = payment_json("p-1", "2026-11-01T08:00:00Z", "5.00");
    p["tip"] = json!("1.00");
    let (status, body) = problem(app.post_payments(M, vec![p]).await).await;
    assert_eq!(status, 400);
    assert_eq!(fields(&body), ["payments[0].tip"]);
    assert_eq!(app.stored_count(M).await, 0);
}

async fn a_body_that_is_not_json_is_415(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant(M).await;
    let res = app
        .request(Method::POST, &format!("/v1/merchants/{M}/payments"))
        .await
        .header("content-type", "text/csv")
        .body("payment_id\np-1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(res).await.0, 415);
}

async fn a_body_over_the_limit_is_413(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.max_body_bytes = 4096).await;
    app.create_merchant(M).await;
    let batch: Vec<Value> = (0..100)
        .map(|i| payment_json(&format!("p-{i}"), "2026-11-01T08:00:00Z", "5.00"))
        .collect();
    let (status, _) = problem(app.post_payments(M, batch).await).await;
    assert_eq!(status, 413);
    assert_eq!(app.stored_count(M).await, 0);
}

async fn empty_and_oversized_batches_are_422(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant(M).await;
    let (status, body) = problem(app.post_payments(M, vec![]).await).await;
    assert_eq!(status, 422);
    assert_eq!(fields(&body), ["payments"]);

    let batch: Vec<Value> = (0..10_001)
        .map(|i| payment_json(&format!("p-{i}"), "2026-11-01T08:00:00Z", "5.00"))
        .collect();
    let (status, body) = problem(app.post_payments(M, batch).await).await;
    assert_eq!(status, 422);
    assert!(body["detail"].as_str().unwrap().contains("10001"), "{body}");
    assert_eq!(app.stored_count(M).await, 0);
}

async fn a_full_batch_of_ten_thousand_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant(M).await;
    let batch: Vec<Value> = (0..10_000)
        .map(|i| payment_json(&format!("p-{i}"), "2026-11-01T08:00:00Z", "5.00"))
        .collect();
    let res = app.post_payments(M, batch).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(app.stored_count(M).await, 10_000);
}

async fn payments_for_an_unknown_merchant_are_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .post_payments(
            "m-nobody",
            vec![payment_json("p-1", "2026-11-01T08:00:00Z", "5.00")],
        )
        .await;
    assert_eq!(problem(res).await.0, 404);
    assert_eq!(
        problem(app.get("/v1/merchants/m-nobody/payments").await)
            .await
            .0,
        404
    );
}

async fn an_acknowledged_batch_is_in_the_database_for_a_new_connection(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant(M).await;
    let res = app
        .post_payments(M, vec![payment_json("p-1", "2026-11-01T08:00:00Z", "5.00")])
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let other = app.reopen_store().await;
    let id = smecredit::domain::MerchantId::parse(M).unwrap();
    let merchant = other.merchant(&id).await.unwrap().unwrap();
    assert_eq!(other.payment_count(merchant.key).await.unwrap(), 1);
    other.close().await;
}

/// 25 payments, 5 of them at the same instant (ordered by id), read 10 at a time.
async fn paging_across_boundaries_returns_every_payment_once_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant(M).await;
    let mut batch = Vec::new();
    for i in 0..20 {
        batch.push(payment_json(
            &format!("p-{i:02}"),
            &format!("2026-11-01T08:{i:02}:00Z"),
            "1.00",
        ));
    }
    for i in 0..5 {
        batch.push(payment_json(
            &format!("same-{i}"),
            "2026-11-01T08:09:00Z",
            "1.00",
        ));
    }
    app.post_payments(M, batch).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!("/v1/merchants/{M}/payments?limit=10");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = app.get(&url).await.json().await.unwrap();
        pages += 1;
        for p in page["payments"].as_array().unwrap() {
            seen.push((
                p["occurred_at"].as_str().unwrap().to_string(),
                p["payment_id"].as_str().unwrap().to_string(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        seen, sorted,
        "in (occurred_at, payment_id) order, each once"
    );
}

async fn from_and_to_filter_by_time(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant(M).await;
    let batch = (0..10)
        .map(|i| {
            payment_json(
                &format!("p-{i}"),
                &format!("2026-11-0{}T08:00:00Z", i % 9 + 1),
                "1.00",
            )
        })
        .collect();
    app.post_payments(M, batch).await;
    let page: Value = app
        .get(&format!(
            "/v1/merchants/{M}/payments?from=2026-11-03T00:00:00Z&to=2026-11-05T08:00:00Z"
        ))
        .await
        .json()
        .await
        .unwrap();
    let days: Vec<&str> = page["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["occurred_at"].as_str().unwrap()[..10])
        .collect();
    // from is inclusive, to exclusive: 3 and 4 November, not the 5th at 08:00
    assert_eq!(days, ["2026-11-03", "2026-11-04"]);
}

async fn bad_paging_parameters_are_reported(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant(M).await;
    let (status, body) = problem(
        app.get(&format!(
            "/v1/merchants/{M}/payments?limit=0&from=yesterday&cursor=zzz"
        ))
        .await,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(fields(&body), ["from", "cursor", "limit"]);
    let (status, _) = problem(
        app.get(&format!("/v1/merchants/{M}/payments?limit=many"))
            .await,
    )
    .await;
    assert_eq!(status, 400);
}

on_both_backends!(
    stores_a_batch_and_lists_it_back_to_the_cent,
    refunds_and_chargebacks_reduce_net_sales,
    resending_a_batch_counts_duplicates_and_stores_nothing_twice,
    a_reused_payment_id_with_other_content_is_a_conflict_and_stores_nothing,
    rejects_a_batch_with_one_bad_row_and_stores_nothing,
    every_kind_of_bad_value_is_a_422_naming_its_field,
    malformed_bodies_are_400_naming_the_field,
    a_body_that_is_not_json_is_415,
    a_body_over_the_limit_is_413,
    empty_and_oversized_batches_are_422,
    a_full_batch_of_ten_thousand_is_accepted,
    payments_for_an_unknown_merchant_are_404,
    an_acknowledged_batch_is_in_the_database_for_a_new_connection,
    paging_across_boundaries_returns_every_payment_once_in_order,
    from_and_to_filter_by_time,
    bad_paging_parameters_are_reported,
);

/// A broken database answers 500 with a generic body: nothing of the cause leaks.
#[tokio::test]
async fn an_internal_failure_is_a_generic_500() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_merchant(M).await;
    let path = app.db.url.trim_start_matches("sqlite://").to_string();
    let mut conn =
        <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{path}"))
            .await
            .unwrap();
    sqlx::query("DROP TABLE payments")
        .execute(&mut conn)
        .await
        .unwrap();
    let (status, body) = problem(app.get(&format!("/v1/merchants/{M}/payments")).await).await;
    assert_eq!(status, 500);
    assert_eq!(
        body["detail"],
        "the request failed on our side and has been logged"
    );
    assert!(!body.to_string().contains("payments"), "{body}");
}
