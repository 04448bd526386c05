//! `GET /metrics`: the series after some traffic, who may read them on the main address, and
//! the separate metrics listener that needs no key.

use crate::helpers::{Backend, TestDatabase, payment_json, problem, spawn_app, test_settings};
use crate::on_both_backends;
use reqwest::Method;
use serde_json::json;
use smecredit::startup::Application;

on_both_backends!(
    metrics_count_requests_by_route_template_decisions_payments_and_show_the_model_and_pools,
    metrics_on_the_main_address_are_for_admin_keys_only,
    a_separate_metrics_listener_serves_them_without_a_key,
);

/// The value of one series (its name and labels exactly as rendered), or `None` if absent.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("a number"))
}

async fn metrics_count_requests_by_route_template_decisions_payments_and_show_the_model_and_pools(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    for m in ["m-1", "m-2"] {
        app.create_merchant(m).await;
    }
    // Two payments on m-1 (then one again: a duplicate), one on m-2, one batch refused.
    let p1 = payment_json("p-1", "2026-06-01T10:00:00Z", "12.34");
    let p2 = payment_json("p-2", "2026-06-02T10:00:00Z", "5.00");
    assert_eq!(
        app.post_payments("m-1", vec![p1.clone(), p2])
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post_payments("m-1", vec![p1.clone()]).await.status(),
        200
    );
    assert_eq!(app.post_payments("m-2", vec![p1]).await.status(), 200);
    let negative = payment_json("p-3", "2026-06-03T10:00:00Z", "-1.00");
    assert_eq!(app.post_payments("m-2", vec![negative]).await.status(), 422);
    // A merchant without payments is declined (tests/api/scores.rs says why).
    let res = app
        .post_json("/v1/scores", &json!({"merchant_id": "m-2"}))
        .await;
    assert_eq!(res.status(), 200);
    let decision: serde_json::Value = res.json().await.unwrap();
    assert_eq!(app.get("/v1/merchants/nobody-here").await.status(), 404);
    assert_eq!(app.get("/no/such/route/m-1").await.status(), 404);

    let res = app.get_as(&app.admin_key, "/metrics").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = res.text().await.unwrap();

    let requests = |method: &str, route: &str, status: u16| {
        value(
            &text,
            &format!(
                "smecredit_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(requests("POST", "/v1/merchants", 201), Some(2.0), "{text}");
    let payments = "/v1/merchants/{merchant_id}/payments";
    assert_eq!(requests("POST", payments, 200), Some(3.0), "{text}");
    assert_eq!(requests("POST", payments, 422), Some(1.0), "{text}");
    assert_eq!(requests("POST", "/v1/scores", 200), Some(1.0), "{text}");
    assert_eq!(
        requests("GET", "/v1/merchants/{merchant_id}", 404),
        Some(1.0),
        "{text}"
    );
    assert_eq!(requests("GET", "unmatched", 404), Some(1.0), "{text}");
    // Raw paths never become labels.
    assert!(
        !text.contains("m-1") && !text.contains("nobody-here"),
        "{text}"
    );

    let histogram = format!("method=\"POST\",route=\"{payments}\"");
    let count = value(
        &text,
        &format!("smecredit_http_request_duration_seconds_count{{{histogram}}}"),
    );
    assert_eq!(count, Some(4.0), "{text}");
    let inf = value(
        &text,
        &format!("smecredit_http_request_duration_seconds_bucket{{{histogram},le=\"+Inf\"}}"),
    );
    assert_eq!(inf, Some(4.0), "{text}");
    let sum = value(
        &text,
        &format!("smecredit_http_request_duration_seconds_sum{{{histogram}}}"),
    )
    .expect("a sum");
    assert!(sum > 0.0 && sum < 60.0, "{sum}");

    let outcome = decision["decision"].as_str().unwrap();
    let grade = decision["grade"].as_str().unwrap();
    assert_eq!(outcome, "decline");
    assert_eq!(
        value(
            &text,
            &format!("smecredit_decisions_total{{outcome=\"{outcome}\",grade=\"{grade}\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    // 2 + 0 + 1 new payments; p-1 again is the one duplicate.
    assert_eq!(
        value(
            &text,
            "smecredit_payments_ingested_total{result=\"accepted\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &text,
            "smecredit_payments_ingested_total{result=\"duplicate\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "smecredit_payment_batches_rejected_total"),
        Some(1.0)
    );

    let ready: serde_json::Value = app.get("/readyz").await.json().await.unwrap();
    let model = ready["model"].as_str().unwrap();
    assert_eq!(
        value(
            &text,
            &format!("smecredit_active_model{{version=\"{model}\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    let pools: &[&str] = match backend {
        Backend::Sqlite => &["writer", "reader"],
        Backend::Postgres => &["main"],
    };
    let mut open = 0.0;
    for pool in pools {
        let max = value(
            &text,
            &format!("smecredit_store_connections_max{{pool=\"{pool}\"}}"),
        )
        .expect("a max");
        let in_use = value(
            &text,
            &format!("smecredit_store_connections{{pool=\"{pool}\",state=\"in_use\"}}"),
        )
        .expect("in use");
        let idle = value(
            &text,
            &format!("smecredit_store_connections{{pool=\"{pool}\",state=\"idle\"}}"),
        )
        .expect("idle");
        assert!(max >= 1.0 && in_use + idle <= max, "{pool}: {text}");
        open += in_use + idle;
    }
    // After this much traffic, the store has a connection open.
    assert!(open >= 1.0, "{text}");
}

async fn metrics_on_the_main_address_are_for_admin_keys_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, _) = problem(
        app.request_as(None, Method::GET, "/metrics")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = problem(app.get_as(&app.lender_key, "/metrics").await).await;
    assert_eq!(status, 403);
    let (status, _) = problem(app.get_as(&app.platform_key, "/metrics").await).await;
    assert_eq!(status, 403);
    assert_eq!(app.get_as(&app.admin_key, "/metrics").await.status(), 200);
}

async fn a_separate_metrics_listener_serves_them_without_a_key(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let mut settings = test_settings(&db.url);
    settings.metrics_bind = Some("127.0.0.1:0".to_string());
    let app = Application::build(&settings).await.expect("build");
    let main = format!("http://127.0.0.1:{}", app.port());
    let metrics = format!(
        "http://127.0.0.1:{}",
        app.metrics_port().expect("a metrics port")
    );
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{main}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The main address still wants an admin key.
    assert_eq!(
        client
            .get(format!("{main}/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    let res = client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert_eq!(
        value(
            &text,
            "smecredit_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(text.contains("smecredit_active_model{version="), "{text}");
    // It serves nothing else.
    let res = client
        .get(format!("{metrics}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
