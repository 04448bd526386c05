use crate::helpers::{Backend, fields, merchant_json, payment_json, problem, spawn_app};
use crate::on_both_backends;
use serde_json::{Value, json};

async fn creates_a_merchant_and_reads_it_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.post_json("/v1/merchants", &merchant_json("m-1")).await;
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(res.headers()["location"], "/v1/merchants/m-1");
    let got: Value = app.get("/v1/merchants/m-1").await.json().await.unwrap();
    assert_eq!(got["name"], "老王早餐店");
    assert_eq!(got["region_type"], "county");
    assert_eq!(got["onboarded_on"], "2024-03-01");
    assert_eq!(got["history"]["payment_count"], 0);
    assert_eq!(
        got["history"]["net_sales"],
        json!({"amount": "0.00", "currency": "CNY"})
    );
}

async fn sending_a_profile_again_updates_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant("m-1").await;
    let same = app.post_json("/v1/merchants", &merchant_json("m-1")).await;
    assert_eq!(same.status().as_u16(), 200);
    let mut moved = merchant_json("m-1");
    moved["region_type"] = json!("rural");
    moved["name"] = json!("王记农资");
    let res = app.post_json("/v1/merchants", &moved).await;
    assert_eq!(res.status().as_u16(), 200);
    let got: Value = app.get("/v1/merchants/m-1").await.json().await.unwrap();
    assert_eq!(got["region_type"], "rural");
    assert_eq!(got["name"], "王记农资");
}

async fn a_merchant_with_payments_keeps_its_currency(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant("m-1").await;
    app.post_payments(
        "m-1",
        vec![payment_json("p-1", "2026-11-01T08:00:00Z", "5.00")],
    )
    .await;
    let mut usd = merchant_json("m-1");
    usd["currency"] = json!("USD");
    let (status, body) = problem(app.post_json("/v1/merchants", &usd).await).await;
    assert_eq!(status, 409);
    assert_eq!(fields(&body), ["currency"]);
    let got: Value = app.get("/v1/merchants/m-1").await.json().await.unwrap();
    assert_eq!(got["currency"], "CNY");
}

async fn every_invalid_merchant_field_is_named(backend: Backend) {
    let app = spawn_app(backend).await;
    let bad = json!({
        "merchant_id": "m 1",
        "name": " ",
        "category": "Food Stall",
        "region_type": "suburban",
        "region_code": "",
        "currency": "RMB",
        "onboarded_on": "2099-01-01"
    });
    let (status, body) = problem(app.post_json("/v1/merchants", &bad).await).await;
    assert_eq!(status, 422);
    assert_eq!(
        fields(&body),
        [
            "merchant_id",
            "name",
            "category",
            "region_type",
            "region_code",
            "currency",
            "onboarded_on"
        ]
    );
}

async fn a_missing_field_is_a_400_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut m = merchant_json("m-1");
    m.as_object_mut().unwrap().remove("currency");
    let (status, body) = problem(app.post_json("/v1/merchants", &m).await).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("currency"),
        "{body}"
    );
}

async fn unknown_and_invalid_merchant_ids(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(problem(app.get("/v1/merchants/m-404").await).await.0, 404);
    let long = "m".repeat(65);
    let (status, body) = problem(app.get(&format!("/v1/merchants/{long}")).await).await;
    assert_eq!(status, 422);
    assert_eq!(fields(&body), ["merchant_id"]);
}

on_both_backends!(
    creates_a_merchant_and_reads_it_back,
    sending_a_profile_again_updates_it,
    a_merchant_with_payments_keeps_its_currency,
    every_invalid_merchant_field_is_named,
    a_missing_field_is_a_400_naming_it,
    unknown_and_invalid_merchant_ids,
);
