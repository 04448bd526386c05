use crate::helpers::{Backend, fields, payment_json, problem, spawn_app};
use crate::on_both_backends;
use serde_json::{Value, json};

fn feature<'a>(body: &'a Value, name: &str) -> &'a Value {
    let entry = body["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name);
    &entry.unwrap_or_else(|| panic!("no feature {name} in {body}"))["value"]
}

async fn the_catalog_describes_every_feature_in_english_and_chinese(backend: Backend) {
    let app = spawn_app(backend).await;
    let catalog: Value = app.get("/v1/features").await.json().await.unwrap();
    assert_eq!(catalog["catalog_version"], "v1");
    let features = catalog["features"].as_array().unwrap();
    assert!(features.len() >= 20, "{}", features.len());
    for f in features {
        for key in [
            "name",
            "description_en",
            "description_zh",
            "unit",
            "direction",
            "missing_when_en",
            "missing_when_zh",
        ] {
            assert!(
                f[key].as_str().is_some_and(|s| !s.is_empty()),
                "{key} of {f}"
            );
        }
    }
}

/// Three sales and a refund, the last sale on the as_of day itself. Expected values by hand:
/// as of 2026-11-10 (00:00 UTC) the sale at 10:00 that day is invisible, so net sales over 30
/// days = 10.00 + 20.00 − 5.00 = 25.00; as of 2026-11-11 it counts: 25.00 + 40.00 = 65.00.
async fn features_are_computed_point_in_time_from_stored_payments(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant("m-1").await;
    let mut refund = payment_json("r-1", "2026-11-05T12:00:00Z", "5.00");
    refund["kind"] = json!("refund");
    app.post_payments(
        "m-1",
        vec![
            payment_json("p-1", "2026-11-01T09:00:00Z", "10.00"),
            payment_json("p-2", "2026-11-02T09:00:00Z", "20.00"),
            refund,
            payment_json("p-3", "2026-11-10T10:00:00Z", "40.00"),
        ],
    )
    .await;
    let before: Value = app
        .get("/v1/merchants/m-1/features?as_of=2026-11-10")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before["as_of"], "2026-11-10T00:00:00Z");
    assert_eq!(
        feature(&before, "net_sales_30d"),
        &json!({"amount": "25.00", "currency": "CNY"})
    );
    let after: Value = app
        .get("/v1/merchants/m-1/features?as_of=2026-11-11T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        feature(&after, "net_sales_30d"),
        &json!({"amount": "65.00", "currency": "CNY"})
    );
    // 5.00 refunded of 70.00 sold over 90 days
    let share = feature(&after, "refund_share_90d").as_f64().unwrap();
    assert!((share - 5.0 / 70.0).abs() < 1e-12, "{share}");
    // onboarded in 2024, the merchant was on the platform for the whole year: a real sum
    assert_eq!(
        feature(&after, "net_sales_365d"),
        &json!({"amount": "65.00", "currency": "CNY"})
    );
    // no sale for 90 days before the first one: the growth ratio's base is zero, so it is missing
    assert_eq!(feature(&after, "net_sales_growth_90d"), &Value::Null);
}

async fn bad_as_of_and_unknown_merchants_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant("m-1").await;
    let (status, body) = problem(app.get("/v1/merchants/m-1/features?as_of=yesterday").await).await;
    assert_eq!((status, fields(&body)), (422, vec!["as_of".to_string()]));
    let (status, _) = problem(app.get("/v1/merchants/m-1/features?as_of=2999-01-01").await).await;
    assert_eq!(status, 422);
    assert_eq!(
        problem(app.get("/v1/merchants/m-2/features").await).await.0,
        404
    );
}

/// Features as of midnight come from the day summaries kept at ingestion. Whatever the batches
/// did (payments exactly at midnight, a batch re-sent, a batch overlapping stored payments, one
/// payment twice in a batch, a batch rejected for a conflict), they equal the features of the
/// stored payments.
async fn day_summaries_follow_every_kind_of_batch(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant("m-1").await;
    let sale = |id: &str, at: &str, amount: &str, payer: &str| {
        let mut p = payment_json(id, at, amount);
        p["payer_ref"] = json!(payer);
        p
    };
    let mut refund = sale("r-1", "2026-11-02T00:00:00Z", "3.00", "a");
    refund["kind"] = json!("refund");
    let mut chargeback = sale("c-1", "2026-10-20T00:00:00Z", "7.00", "b");
    chargeback["kind"] = json!("chargeback");
    let a = vec![
        sale("p-1", "2026-11-01T23:59:59.999999Z", "10.00", "a"),
        sale("p-2", "2026-11-02T00:00:00Z", "20.00", "a"),
        refund,
        chargeback,
        sale("p-3", "2026-10-01T08:00:00+08:00", "30.00", "c"),
    ];
    let b = vec![
        sale("p-2", "2026-11-02T00:00:00Z", "20.00", "a"),
        sale("p-4", "2026-11-02T12:00:00Z", "40.00", "b"),
        sale("p-5", "2026-09-02T00:00:00Z", "50.00", "a"),
    ];
    let twice = vec![
        sale("p-6", "2026-11-03T01:00:00Z", "60.00", "d"),
        sale("p-6", "2026-11-03T01:00:00Z", "60.00", "d"),
    ];
    // new sales on stored days, by payers already seen there and a new one: the days' payer
    // lists are merged into one entry per payer
    let more = vec![
        sale("p-8", "2026-11-02T13:00:00Z", "5.00", "a"),
        sale("p-9", "2026-11-02T14:00:00Z", "6.00", "b"),
        sale("p-10", "2026-11-03T02:00:00Z", "7.00", "f"),
        sale("p-11", "2026-11-03T03:00:00Z", "8.00", "d"),
    ];
    let conflict = vec![
        sale("p-7", "2026-11-02T05:00:00Z", "70.00", "e"),
        sale("p-1", "2026-11-01T23:59:59.999999Z", "10.01", "a"),
    ];
    let store = &app.store;
    let key = store
        .merchant(&smecredit::domain::MerchantId::parse("m-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    let profile = smecredit::features::MerchantProfile::from(&key.merchant);
    let check = |step: &'static str| async move {
        for date in ["2026-11-02", "2026-11-03", "2026-11-04", "2027-01-01"] {
            let as_of = smecredit::features::as_of_start_of_day(date.parse().unwrap());
            let facts = store.payment_facts(key.key, as_of).await.unwrap();
            let history = store.history(key.key, as_of).await.unwrap();
            assert_eq!(
                smecredit::features::compute_history(&profile, &history),
                smecredit::features::compute(&profile, &facts, as_of),
                "after {step}, as of {date}"
            );
            let direct = smecredit::features::History::from_facts(&facts, as_of);
            assert_eq!(
                (history.payment_count(), history.first_and_last_payment()),
                (direct.payment_count(), direct.first_and_last_payment()),
                "after {step}, as of {date}"
            );
        }
    };
    for (step, batch, status) in [
        ("a", a.clone(), 200),
        ("a again", a, 200),
        ("b", b, 200),
        ("twice", twice, 200),
        ("more", more, 200),
        ("conflict", conflict, 409),
    ] {
        let res = app.post_payments("m-1", batch).await;
        assert_eq!(res.status().as_u16(), status, "{step}");
        check(step).await;
    }
    // as of 2026-11-02 00:00 the payments at that instant are not yet seen; as of the 3rd they
    // are, with the one a microsecond before midnight
    let on_the_3rd: Value = app
        .get("/v1/merchants/m-1/features?as_of=2026-11-03")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        feature(&on_the_3rd, "net_sales_30d"),
        &json!({"amount": "71.00", "currency": "CNY"}),
        "10 + 20 − 3 + 40 + 5 + 6 − 7 chargeback"
    );
}

on_both_backends!(
    day_summaries_follow_every_kind_of_batch,
    the_catalog_describes_every_feature_in_english_and_chinese,
    features_are_computed_point_in_time_from_stored_payments,
    bad_as_of_and_unknown_merchants_are_refused,
);
