use crate::helpers::{Backend, problem, spawn_app};
use crate::on_both_backends;

async fn liveness_and_readiness_answer_ok(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/healthz").await.status().as_u16(), 200);
    let res = app.get("/readyz").await;
    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(body["store"], expected);
}

async fn a_request_id_is_echoed_or_generated(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("X-Request-Id", "lender-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "lender-req-42");
    let res = app.get("/healthz").await;
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
}

async fn an_unknown_route_is_a_404_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = problem(app.get("/v1/nothing-here").await).await;
    assert_eq!(status, 404);
    assert_eq!(body["type"], "/problems/not-found");
}

async fn swagger_ui_is_served_from_the_binary(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("/docs/").await;
    assert_eq!(res.status().as_u16(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    assert!(!html.contains("cdn"), "Swagger UI must not load from a CDN");
}

on_both_backends!(
    liveness_and_readiness_answer_ok,
    a_request_id_is_echoed_or_generated,
    an_unknown_route_is_a_404_problem,
    swagger_ui_is_served_from_the_binary,
);
