//! Rate limits per key: a low limit configured for lenders; the request after the burst is a 429
//! with `Retry-After`, and other keys are not affected.

use crate::helpers::{Backend, issue_key, problem, spawn_app_with};
use crate::on_both_backends;
use smecredit::keys::Role;

async fn a_key_past_its_burst_gets_429_with_retry_after_and_other_keys_do_not(backend: Backend) {
    // One request per 100 s after a burst of 3: the fourth request must wait about 100 s.
    let app = spawn_app_with(backend, |s| {
        s.rate_limit_lender_per_second = 0.01;
        s.rate_limit_lender_burst = 3;
    })
    .await;
    for i in 0..3 {
        let res = app.get_as(&app.lender_key, "/v1/features").await;
        assert_eq!(res.status().as_u16(), 200, "request {}", i + 1);
    }
    let res = app.get_as(&app.lender_key, "/v1/features").await;
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((99..=100).contains(&retry_after), "{retry_after}");
    let (status, body) = problem(res).await;
    assert_eq!(status, 429);
    assert_eq!(body["type"], "/problems/rate-limited");

    // The limit is the key's, whatever the route.
    let res = app
        .post_json_as(
            &app.lender_key,
            "/v1/scores",
            &serde_json::json!({"merchant_id": "m-1"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 429);

    let other = issue_key(&app.store, Role::Lender, None).await;
    assert_eq!(
        app.get_as(&other, "/v1/features").await.status().as_u16(),
        200
    );
    assert_eq!(
        app.get_as(&app.platform_key, "/v1/features")
            .await
            .status()
            .as_u16(),
        200,
        "platform keys have no limit in this test"
    );
}

on_both_backends!(a_key_past_its_burst_gets_429_with_retry_after_and_other_keys_do_not);
