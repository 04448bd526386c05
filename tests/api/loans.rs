use crate::helpers::{Backend, fields, problem, spawn_app};
use crate::on_both_backends;
use serde_json::{Value, json};
use smecredit::ingest::import::{ImportOptions, import_file};

fn loan_json(id: &str) -> Value {
    json!({
        "loan_id": id,
        "merchant_id": "m-1",
        "disbursed_on": "2026-01-10",
        "principal": {"amount": "5000.00", "currency": "CNY"},
        "term_days": 90
    })
}

async fn records_a_loan_and_its_outcome(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant("m-1").await;
    let res = app.post_json("/v1/loans", &loan_json("L-1")).await;
    assert_eq!(res.status().as_u16(), 201);
    let loan: Value = res.json().await.unwrap();
    assert_eq!(
        loan["principal"],
        json!({"amount": "5000.00", "currency": "CNY"})
    );
    assert_eq!(loan["due_on"], "2026-04-10");
    assert_eq!(loan["outcome"], Value::Null);

    let res = app
        .post_json(
            "/v1/loans/L-1/outcome",
            &json!({"outcome": "defaulted", "defaulted_on": "2026-03-01"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let loan: Value = app.get("/v1/loans/L-1").await.json().await.unwrap();
    assert_eq!(loan["outcome"]["outcome"], "defaulted");
    assert_eq!(loan["outcome"]["defaulted_on"], "2026-03-01");

    // the same outcome again changes nothing; a write-off of that default is allowed
    let again = app
        .post_json(
            "/v1/loans/L-1/outcome",
            &json!({"outcome": "defaulted", "defaulted_on": "2026-03-01"}),
        )
        .await;
    assert_eq!(again.status().as_u16(), 200);
    let off = app
        .post_json(
            "/v1/loans/L-1/outcome",
            &json!({"outcome": "written_off", "defaulted_on": "2026-03-01"}),
        )
        .await;
    assert_eq!(off.status().as_u16(), 200);
    // but a defaulted loan cannot become repaid
    let (status, body) = problem(
        app.post_json("/v1/loans/L-1/outcome", &json!({"outcome": "repaid"}))
            .await,
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(fields(&body), ["outcome"]);

    let list: Value = app
        .get("/v1/merchants/m-1/loans")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["loans"].as_array().unwrap().len(), 1);
    assert_eq!(list["loans"][0]["outcome"]["outcome"], "written_off");
}

async fn a_loan_sent_twice_is_stored_once_and_other_terms_conflict(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant("m-1").await;
    assert_eq!(
        app.post_json("/v1/loans", &loan_json("L-1"))
            .await
            .status()
            .as_u16(),
        201
    );
    assert_eq!(
        app.post_json("/v1/loans", &loan_json("L-1"))
            .await
            .status()
            .as_u16(),
        200
    );
    let mut other = loan_json("L-1");
    other["term_days"] = json!(30);
    let (status, body) = problem(app.post_json("/v1/loans", &other).await).await;
    assert_eq!(status, 409);
    assert_eq!(fields(&body), ["loan_id"]);
    let loan: Value = app.get("/v1/loans/L-1").await.json().await.unwrap();
    assert_eq!(loan["term_days"], 90);
}

async fn bad_loans_and_outcomes_are_refused_and_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant("m-1").await;
    let mut unknown = loan_json("L-1");
    unknown["merchant_id"] = json!("m-9");
    let (status, body) = problem(app.post_json("/v1/loans", &unknown).await).await;
    assert_eq!(
        (status, fields(&body)),
        (422, vec!["merchant_id".to_string()])
    );

    let mut usd = loan_json("L-1");
    usd["principal"]["currency"] = json!("USD");
    let (status, body) = problem(app.post_json("/v1/loans", &usd).await).await;
    assert_eq!(
        (status, fields(&body)),
        (422, vec!["principal.currency".to_string()])
    );

    let mut bad = loan_json("L-1");
    bad["term_days"] = json!(0);
    bad["disbursed_on"] = json!("2099-01-01");
    let (status, body) = problem(app.post_json("/v1/loans", &bad).await).await;
    assert_eq!(
        (status, fields(&body)),
        (
            422,
            vec!["disbursed_on".to_string(), "term_days".to_string()]
        )
    );
    assert_eq!(problem(app.get("/v1/loans/L-1").await).await.0, 404);

    app.post_json("/v1/loans", &loan_json("L-2")).await;
    let before = json!({"outcome": "defaulted", "defaulted_on": "2026-01-09"});
    let (status, body) = problem(app.post_json("/v1/loans/L-2/outcome", &before).await).await;
    assert_eq!(
        (status, fields(&body)),
        (422, vec!["defaulted_on".to_string()])
    );
    let (status, _) = problem(
        app.post_json("/v1/loans/L-2/outcome", &json!({"outcome": "defaulted"}))
            .await,
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = problem(
        app.post_json("/v1/loans/L-404/outcome", &json!({"outcome": "repaid"}))
            .await,
    )
    .await;
    assert_eq!(status, 404);
    let loan: Value = app.get("/v1/loans/L-2").await.json().await.unwrap();
    assert_eq!(loan["outcome"], Value::Null);
}

// Found by the contract test (tests/contract): JSON Schema's `integer` admits `90.0`, and the
// service refused it as a wrong JSON type.
async fn a_term_written_with_a_zero_fraction_is_that_whole_number(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant("m-1").await;
    let mut loan = loan_json("L-1");
    loan["term_days"] = json!(90.0);
    let res = app.post_json("/v1/loans", &loan).await;
    assert_eq!(res.status().as_u16(), 201);
    let stored: Value = res.json().await.unwrap();
    assert_eq!(stored["term_days"], 90);
    // the same loan with the term written as an integer is the same loan
    let res = app.post_json("/v1/loans", &loan_json("L-1")).await;
    assert_eq!(res.status().as_u16(), 200);

    let mut fraction = loan_json("L-2");
    fraction["term_days"] = json!(90.5);
    let (status, body) = problem(app.post_json("/v1/loans", &fraction).await).await;
    assert_eq!(
        (status, fields(&body)),
        (400, vec!["term_days".to_string()])
    );
}

async fn imports_loans_with_outcomes_from_csv(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant("m-1").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loans.csv");
    std::fs::write(
        &path,
        "loan_id,merchant_id,disbursed_on,principal,currency,term_days,outcome,defaulted_on\n\
         L-1,m-1,2026-01-10,5000.00,CNY,90,repaid,\n\
         L-2,m-1,2026-02-10,3000.00,CNY,60,defaulted,2026-03-15\n\
         L-3,m-1,2026-05-10,2000.00,CNY,90,,\n\
         L-4,m-1,2026-02-10,3000.00,CNY,60,defaulted,2026-02-01\n\
         L-5,m-9,2026-02-10,3000.00,CNY,60,,\n",
    )
    .unwrap();
    let options = ImportOptions::default();
    let report = import_file(&app.store, &path, &options).await.unwrap();
    assert_eq!(
        (report.rows, report.stored, report.outcomes, report.skipped),
        (5, 3, 2, 2)
    );
    let lines: Vec<u64> = report.bad_rows.iter().map(|b| b.line).collect();
    assert_eq!(lines, [5, 6]);
    let again = import_file(&app.store, &path, &options).await.unwrap();
    assert_eq!((again.stored, again.duplicates, again.outcomes), (0, 3, 0));
    let l2: Value = app.get("/v1/loans/L-2").await.json().await.unwrap();
    assert_eq!(l2["outcome"]["defaulted_on"], "2026-03-15");
    let l3: Value = app.get("/v1/loans/L-3").await.json().await.unwrap();
    assert_eq!(l3["outcome"], Value::Null);
}

on_both_backends!(
    records_a_loan_and_its_outcome,
    a_loan_sent_twice_is_stored_once_and_other_terms_conflict,
    bad_loans_and_outcomes_are_refused_and_store_nothing,
    a_term_written_with_a_zero_fraction_is_that_whole_number,
    imports_loans_with_outcomes_from_csv,
);
