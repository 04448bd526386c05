use crate::helpers::{
    Backend, fields, merchant_json, payment_json, problem, spawn_app, spawn_app_with,
};
use crate::on_both_backends;
use serde_json::{Value, json};
use smecredit::api::AuditRecord;
use smecredit::policy::Policy;
use smecredit::scoring::{ModelRegistry, evaluate};

/// A steady shop: `days` days of sales before 2026-11-20, four a day from a pool of 40 payers.
fn steady_history(days: i64) -> Vec<Value> {
    let end = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
    let mut payments = Vec::new();
    for d in 1..=days {
        let day = end - chrono::Duration::days(d);
        for k in 0..4 {
            let mut p = payment_json(
                &format!("p-{d}-{k}"),
                &format!("{day}T0{}:15:00Z", 1 + k * 2),
                &format!("{}.50", 20 + (d * 7 + k * 13) % 60),
            );
            p["payer_ref"] = json!(format!("payer-{}", (d * 3 + k) % 40));
            payments.push(p);
        }
    }
    payments
}

async fn score(app: &crate::helpers::TestApp, body: Value) -> reqwest::Response {
    app.post_json("/v1/scores", &body).await
}

async fn a_stored_merchant_gets_a_decision_that_its_audit_record_reproduces(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant("m-1").await;
    for chunk in steady_history(200).chunks(400) {
        assert_eq!(
            app.post_payments("m-1", chunk.to_vec())
                .await
                .status()
                .as_u16(),
            200
        );
    }
    let res = score(&app, json!({"merchant_id": "m-1", "as_of": "2026-11-20", "requested_amount": {"amount": "999999.00", "currency": "CNY"}})).await;
    assert_eq!(res.status().as_u16(), 200);
    let d: Value = res.json().await.unwrap();
    for key in [
        "decision_id",
        "model_version",
        "model_sha256",
        "policy_version",
        "score",
        "pd",
        "grade",
        "decision",
        "credit_limit",
        "indicative_apr",
        "reasons",
        "knockouts",
        "created_at",
    ] {
        assert!(!d[key].is_null(), "{key} missing in {d}");
    }
    assert!(d["reasons"].as_array().unwrap().len() <= 4);
    // a request above the limit is answered with the limit
    assert_eq!(d["offered_amount"], d["credit_limit"], "{d}");

    let record: AuditRecord = app
        .get(&format!(
            "/v1/decisions/{}",
            d["decision_id"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(serde_json::to_value(&record.decision).unwrap(), d);
    // the points of all features add up to the score, exactly
    let total: f64 = record.points.iter().map(|p| p.points).sum();
    assert_eq!(total, record.decision.score);
    // re-scoring the recorded values with the recorded model reproduces the decision exactly
    let registry = ModelRegistry::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models"));
    let model = registry.load(&record.decision.model_version).unwrap();
    assert_eq!(model.artifact.artifact_sha256, record.decision.model_sha256);
    let again = evaluate(
        &model.artifact,
        &Policy::default_policy(),
        &record.features().unwrap(),
        &record.inputs,
    );
    assert_eq!(again.result.score, record.decision.score);
    assert_eq!(again.result.pd, record.decision.pd);
    assert_eq!(again.terms.decision, record.decision.decision);
    assert_eq!(again.terms.credit_limit, record.decision.credit_limit);
}

async fn a_merchant_without_payments_is_declined_with_its_reason(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant("m-1").await;
    let res = score(&app, json!({"merchant_id": "m-1"})).await;
    assert_eq!(res.status().as_u16(), 200);
    let d: Value = res.json().await.unwrap();
    assert_eq!(d["decision"], "decline");
    assert_eq!(d["knockouts"][0]["rule"], "no_trading_history");
    assert_eq!(
        d["credit_limit"],
        json!({"amount": "0.00", "currency": "CNY"})
    );
}

async fn a_new_merchant_gets_a_starter_limit_not_a_decline(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant("m-1").await;
    app.post_payments("m-1", steady_history(40)).await;
    let d: Value = score(&app, json!({"merchant_id": "m-1", "as_of": "2026-11-20"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["thin_file"], true, "{d}");
    assert_eq!(d["decision"], "approve", "{d}");
    assert_eq!(
        d["credit_limit"],
        json!({"amount": "2000.00", "currency": "CNY"})
    );
}

async fn bad_score_requests_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant("m-1").await;
    assert_eq!(
        problem(score(&app, json!({"merchant_id": "m-9"})).await)
            .await
            .0,
        404
    );
    let (status, body) =
        problem(score(&app, json!({"merchant_id": "m-1", "as_of": "soon"})).await).await;
    assert_eq!((status, fields(&body)), (422, vec!["as_of".to_string()]));
    let usd =
        json!({"merchant_id": "m-1", "requested_amount": {"amount": "10.00", "currency": "USD"}});
    let (status, body) = problem(score(&app, usd).await).await;
    assert_eq!(
        (status, fields(&body)),
        (422, vec!["requested_amount".to_string()])
    );
    assert_eq!(
        problem(score(&app, json!({"merchant": "m-1"})).await)
            .await
            .0,
        400
    );
    assert_eq!(problem(app.get("/v1/decisions/nope").await).await.0, 404);
}

async fn models_are_listed_and_a_bad_artifact_is_refused_while_the_old_one_serves(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/models"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().join("model.json").is_file())
        .unwrap();
    let version = shipped.file_name().into_string().unwrap();
    let copy = |name: &str| {
        let to = dir.path().join(name);
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(shipped.path().join("model.json"), to.join("model.json")).unwrap();
        to.join("model.json")
    };
    copy(&version);
    copy("zz-copy");
    let broken = copy("zz-broken");
    let mut text = std::fs::read_to_string(&broken).unwrap();
    text = text.replacen("\"intercept\": ", "\"intercept\": 1", 1);
    std::fs::write(&broken, text).unwrap();

    let models_dir = dir.path().to_path_buf();
    let app = spawn_app_with(backend, |s| {
        s.models_dir = models_dir;
        s.model = Some(version.clone());
    })
    .await;
    let list: Value = app.get("/v1/models").await.json().await.unwrap();
    assert_eq!(list["active"], version.as_str());
    let broken_info = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["version"] == "zz-broken")
        .unwrap();
    assert_eq!(broken_info["valid"], false);
    assert!(
        broken_info["problem"]
            .as_str()
            .unwrap()
            .contains("checksum"),
        "{broken_info}"
    );

    let (status, _) = problem(
        app.client
            .post(app.url("/v1/models/zz-broken/activate"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = problem(
        app.client
            .post(app.url("/v1/models/..%2Fetc/activate"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(
        ready["model"],
        version.as_str(),
        "the old model keeps serving"
    );

    let res = app
        .client
        .post(app.url("/v1/models/zz-copy/activate"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["model"], "zz-copy");
    assert_eq!(
        app.store
            .setting(smecredit::api::ACTIVE_MODEL_SETTING)
            .await
            .unwrap()
            .as_deref(),
        Some("zz-copy"),
        "the choice persists for the next start"
    );
}

/// Stateless scoring: a merchant that is not stored, with its history in the request, gets the
/// decision the same merchant and history get once stored; nothing of it is stored but the
/// decision's audit record.
async fn an_inline_history_is_scored_like_a_stored_one_and_is_not_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let history = steady_history(200);
    let request = json!({"merchant_id": "m-1", "as_of": "2026-11-20",
        "merchant": merchant_json("m-1"), "payments": history});
    let res = score(&app, request).await;
    assert_eq!(res.status().as_u16(), 200);
    let inline: Value = res.json().await.unwrap();
    assert_eq!(app.stored_count("m-1").await, 0);
    assert_eq!(problem(app.get("/v1/merchants/m-1").await).await.0, 404);

    app.create_merchant("m-1").await;
    for chunk in history.chunks(400) {
        app.post_payments("m-1", chunk.to_vec()).await;
    }
    let stored: Value = score(&app, json!({"merchant_id": "m-1", "as_of": "2026-11-20"}))
        .await
        .json()
        .await
        .unwrap();
    for key in [
        "score",
        "pd",
        "grade",
        "decision",
        "credit_limit",
        "reasons",
        "knockouts",
    ] {
        assert_eq!(inline[key], stored[key], "{key}");
    }
    let id = inline["decision_id"].as_str().unwrap();
    let record: AuditRecord = app
        .get(&format!("/v1/decisions/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(record.inline_history);
    assert_eq!(record.features().unwrap().values().len(), 24);
}

async fn bad_inline_histories_are_refused_with_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = |id: &str| payment_json(id, "2026-11-01T09:00:00Z", "10.00");
    let mut usd = p("p-2");
    usd["amount"]["currency"] = json!("USD");
    for (body, field) in [
        (
            json!({"merchant_id": "m-1", "merchant": merchant_json("m-1")}),
            "payments",
        ),
        (
            json!({"merchant_id": "m-1", "payments": [p("p-1")]}),
            "merchant",
        ),
        (
            json!({"merchant_id": "m-1", "merchant": merchant_json("m-2"), "payments": []}),
            "merchant.merchant_id",
        ),
        (
            json!({"merchant_id": "m-1", "merchant": merchant_json("m-1"), "payments": [p("p-1"), p("p-1")]}),
            "payments[1].payment_id",
        ),
        (
            json!({"merchant_id": "m-1", "merchant": merchant_json("m-1"), "payments": [p("p-1"), usd]}),
            "payments[1].amount.currency",
        ),
    ] {
        let (status, problem_body) = problem(score(&app, body).await).await;
        assert_eq!(
            (status, fields(&problem_body)),
            (422, vec![field.to_string()]),
            "{problem_body}"
        );
    }
    // an inline merchant without payments is a decision, like a stored one
    let d: Value = score(
        &app,
        json!({"merchant_id": "m-1", "merchant": merchant_json("m-1"), "payments": []}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(d["knockouts"][0]["rule"], "no_trading_history");
    assert_eq!(app.stored_count("m-1").await, 0);
}

on_both_backends!(
    an_inline_history_is_scored_like_a_stored_one_and_is_not_stored,
    bad_inline_histories_are_refused_with_the_field,
    a_stored_merchant_gets_a_decision_that_its_audit_record_reproduces,
    a_merchant_without_payments_is_declined_with_its_reason,
    a_new_merchant_gets_a_starter_limit_not_a_decline,
    bad_score_requests_are_refused,
    models_are_listed_and_a_bad_artifact_is_refused_while_the_old_one_serves,
);
