use crate::helpers::{Backend, TestApp, fields, payment_json, problem, spawn_app, spawn_app_with};
use crate::on_both_backends;
use serde_json::{Value, json};

const KEY: &str = "9b1d4c1e-2f43-4a8e-b7b5-0f6f3c1d2e77";

/// POSTs a JSON body with an `Idempotency-Key` to `address` (an app or a replica).
async fn post_with_key(
    app: &TestApp,
    address: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    let credential = app.key_for(&reqwest::Method::POST, path).await.unwrap();
    app.client
        .post(format!("{address}{path}"))
        .bearer_auth(credential)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("request")
}

/// Status, the replay header and the body text.
async fn answer(res: reqwest::Response) -> (u16, bool, String) {
    let status = res.status().as_u16();
    let replayed = res.headers().get("idempotent-replayed").is_some();
    (status, replayed, res.text().await.unwrap())
}

fn score_request(merchant: &str) -> Value {
    json!({"merchant_id": merchant, "as_of": "2026-11-20"})
}

async fn app_with_merchant(backend: Backend) -> TestApp {
    let app = spawn_app(backend).await;
    app.create_merchant("m-1").await;
    app
}

async fn a_repeated_score_request_answers_the_first_decision_without_deciding_again(
    backend: Backend,
) {
    let app = app_with_merchant(backend).await;
    let body = score_request("m-1");
    let first = answer(post_with_key(&app, &app.address, "/v1/scores", KEY, &body).await).await;
    let second = answer(post_with_key(&app, &app.address, "/v1/scores", KEY, &body).await).await;
    assert_eq!(first.0, 200, "{}", first.2);
    assert!(!first.1, "the first answer is not a replay");
    assert_eq!(second.0, 200);
    assert!(second.1, "the second answer says it is a replay");
    assert_eq!(first.2, second.2, "same body, same decision_id");
    assert_eq!(app.count_rows("decisions").await, 1);
    // Without a key, a request is a new decision.
    let third = app.post_json("/v1/scores", &body).await;
    assert_eq!(third.status().as_u16(), 200);
    assert_eq!(app.count_rows("decisions").await, 2);
}

async fn a_repeated_batch_is_stored_once_and_answers_the_first_count(backend: Backend) {
    let app = app_with_merchant(backend).await;
    let body = json!({"payments": [
        payment_json("p-1", "2026-06-19T08:00:00Z", "18.50"),
        payment_json("p-2", "2026-06-19T09:00:00Z", "6.00"),
    ]});
    let path = "/v1/merchants/m-1/payments";
    let first = answer(post_with_key(&app, &app.address, path, KEY, &body).await).await;
    let second = answer(post_with_key(&app, &app.address, path, KEY, &body).await).await;
    assert_eq!(
        (first.0, first.2.as_str()),
        (200, r#"{"accepted":2,"duplicates":0}"#)
    );
    // Not `{"accepted":0,"duplicates":2}`: the batch was not run again.
    assert_eq!((second.0, second.1), (200, true));
    assert_eq!(first.2, second.2);
    assert_eq!(app.stored_count("m-1").await, 2);
}

async fn a_repeated_loan_answers_its_201_and_location_again(backend: Backend) {
    let app = app_with_merchant(backend).await;
    let body = json!({"loan_id": "L-1", "merchant_id": "m-1", "disbursed_on": "2026-05-01",
        "principal": {"amount": "5000.00", "currency": "CNY"}, "term_days": 90});
    let first = post_with_key(&app, &app.address, "/v1/loans", KEY, &body).await;
    let location = first.headers()["location"].clone();
    let first = answer(first).await;
    let second = post_with_key(&app, &app.address, "/v1/loans", KEY, &body).await;
    assert_eq!(second.headers()["location"], location);
    assert_eq!(
        second.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let second = answer(second).await;
    assert_eq!(first.0, 201, "{}", first.2);
    assert_eq!(
        (second.0, second.1),
        (201, true),
        "not 200 'already recorded'"
    );
    assert_eq!(first.2, second.2);
}

async fn the_same_key_with_another_body_is_a_422_naming_the_header(backend: Backend) {
    let app = app_with_merchant(backend).await;
    let res = post_with_key(&app, &app.address, "/v1/scores", KEY, &score_request("m-1")).await;
    assert_eq!(res.status().as_u16(), 200);
    let other = json!({"merchant_id": "m-1", "as_of": "2026-11-19"});
    let (status, body) =
        problem(post_with_key(&app, &app.address, "/v1/scores", KEY, &other).await).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(fields(&body), ["Idempotency-Key"]);
    assert_eq!(app.count_rows("decisions").await, 1);
    // The same body on another path of the same caller (keys are per caller) is another
    // request too.
    let batch = json!({"payments": [payment_json("p-1", "2026-06-19T08:00:00Z", "1.00")]});
    let res = post_with_key(
        &app,
        &app.address,
        "/v1/merchants/m-1/payments",
        "k-2",
        &batch,
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    let (status, body) =
        problem(post_with_key(&app, &app.address, "/v1/loans", "k-2", &batch).await).await;
    assert_eq!(
        (status, fields(&body)),
        (422, vec!["Idempotency-Key".to_string()])
    );
}

async fn a_malformed_key_is_a_422_naming_the_header(backend: Backend) {
    let app = app_with_merchant(backend).await;
    let too_long = "k".repeat(256);
    for key in ["", "two words", too_long.as_str()] {
        let (status, body) = problem(
            post_with_key(&app, &app.address, "/v1/scores", key, &score_request("m-1")).await,
        )
        .await;
        assert_eq!(status, 422, "{key:?}: {body}");
        assert_eq!(fields(&body), ["Idempotency-Key"]);
    }
    assert_eq!(app.count_rows("decisions").await, 0);
}

async fn an_expired_key_runs_the_request_again(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.idempotency_ttl_secs = 1).await;
    app.create_merchant("m-1").await;
    let body = score_request("m-1");
    let first: Value = post_with_key(&app, &app.address, "/v1/scores", KEY, &body)
        .await
        .json()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (status, replayed, text) =
        answer(post_with_key(&app, &app.address, "/v1/scores", KEY, &body).await).await;
    assert_eq!((status, replayed), (200, false), "{text}");
    let second: Value = serde_json::from_str(&text).unwrap();
    assert_ne!(first["decision_id"], second["decision_id"]);
    // Once expired, the key may even carry another request.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let other = json!({"merchant_id": "m-1", "as_of": "2026-11-19"});
    let res = post_with_key(&app, &app.address, "/v1/scores", KEY, &other).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(app.count_rows("decisions").await, 3);
}

async fn concurrent_requests_with_one_key_decide_once(backend: Backend) {
    let app = app_with_merchant(backend).await;
    let body = score_request("m-1");
    let answers = futures_util::future::join_all(
        (0..8).map(|_| post_with_key(&app, &app.address, "/v1/scores", KEY, &body)),
    )
    .await;
    let mut bodies = Vec::new();
    for res in answers {
        let (status, _, text) = answer(res).await;
        assert_eq!(status, 200, "{text}");
        bodies.push(text);
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
    assert_eq!(app.count_rows("decisions").await, 1);
}

async fn two_replicas_on_one_database_agree_on_a_key(backend: Backend) {
    let app = app_with_merchant(backend).await;
    let replica = app.start_replica(|_| {}).await;
    let body = json!({"payments": [payment_json("p-1", "2026-06-19T08:00:00Z", "18.50")]});
    let path = "/v1/merchants/m-1/payments";
    let score = score_request("m-1");
    // Both replicas at once, several times each, for a batch and for a score.
    let mut requests = Vec::new();
    for i in 0..6 {
        let address = if i % 2 == 0 { &app.address } else { &replica };
        requests.push(post_with_key(&app, address, path, "batch-key", &body));
        requests.push(post_with_key(
            &app,
            address,
            "/v1/scores",
            "score-key",
            &score,
        ));
    }
    let mut batch_answers = Vec::new();
    let mut score_answers = Vec::new();
    for (i, res) in futures_util::future::join_all(requests)
        .await
        .into_iter()
        .enumerate()
    {
        let (status, _, text) = answer(res).await;
        assert_eq!(status, 200, "{text}");
        if i % 2 == 0 {
            batch_answers.push(text);
        } else {
            score_answers.push(text);
        }
    }
    assert!(
        batch_answers
            .iter()
            .all(|b| b == r#"{"accepted":1,"duplicates":0}"#),
        "{batch_answers:?}"
    );
    assert!(
        score_answers.iter().all(|b| *b == score_answers[0]),
        "{score_answers:?}"
    );
    assert_eq!(app.count_rows("decisions").await, 1);
    assert_eq!(app.stored_count("m-1").await, 1);
}

async fn keys_belong_to_their_caller(backend: Backend) {
    let app = app_with_merchant(backend).await;
    let body = score_request("m-1");
    let mut ids = Vec::new();
    let another_lender =
        crate::helpers::issue_key(&app.store, smecredit::keys::Role::Lender, None).await;
    for credential in [app.lender_key.clone(), another_lender] {
        let d: Value = app
            .client
            .post(app.url("/v1/scores"))
            .bearer_auth(credential)
            .header("Idempotency-Key", KEY)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(d["decision_id"].clone());
    }
    assert_ne!(ids[0], ids[1]);
    assert_eq!(app.count_rows("decisions").await, 2);
}

async fn an_answer_that_depends_on_stored_data_is_not_replayed(backend: Backend) {
    let app = spawn_app(backend).await;
    // A score for a merchant not stored yet: 404, and the key is free again.
    let (status, _) =
        problem(post_with_key(&app, &app.address, "/v1/scores", KEY, &score_request("m-1")).await)
            .await;
    assert_eq!(status, 404);
    // A loan of a merchant not stored yet: 422, but not replayed once the merchant exists.
    let loan = json!({"loan_id": "L-1", "merchant_id": "m-1", "disbursed_on": "2026-05-01",
        "principal": {"amount": "5000.00", "currency": "CNY"}, "term_days": 90});
    let (status, _) =
        problem(post_with_key(&app, &app.address, "/v1/loans", "loan-key", &loan).await).await;
    assert_eq!(status, 422);
    app.create_merchant("m-1").await;
    let res = post_with_key(&app, &app.address, "/v1/scores", KEY, &score_request("m-1")).await;
    assert_eq!(res.status().as_u16(), 200);
    let res = post_with_key(&app, &app.address, "/v1/loans", "loan-key", &loan).await;
    assert_eq!(res.status().as_u16(), 201);
}

async fn a_refusal_of_the_body_is_replayed(backend: Backend) {
    let app = app_with_merchant(backend).await;
    let bad = json!({"merchant_id": "not a valid id!"});
    let first = answer(post_with_key(&app, &app.address, "/v1/scores", KEY, &bad).await).await;
    let second = answer(post_with_key(&app, &app.address, "/v1/scores", KEY, &bad).await).await;
    assert_eq!(first.0, 422);
    assert_eq!((second.0, second.1), (422, true));
    assert_eq!(first.2, second.2);
}

/// Leaves a claim on `key` for `body` as a process that died mid-request would have left it.
async fn dead_claim(app: &TestApp, key: &str, body: &str, lease_left_secs: i64) {
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(format!("POST\n/v1/scores\n{body}")));
    let now = chrono::Utc::now().timestamp_micros();
    // the lender key's principal: keys are scoped by caller
    let lender = app
        .store
        .api_key_by_hash(&hex::encode(smecredit::keys::hash(&app.lender_key)))
        .await
        .unwrap()
        .unwrap();
    let claim = smecredit::store::KeyClaim {
        scope: &lender.principal,
        key,
        request_hash: &hash,
        owner: "a-process-that-died",
        now,
        expires_at: now + 3_600_000_000,
        lease_until: now + lease_left_secs * 1_000_000,
    };
    let claimed = app.store.claim_idempotency_key(&claim).await.unwrap();
    assert_eq!(claimed, smecredit::store::Claim::Claimed);
}

async fn a_claim_whose_owner_died_is_taken_over_when_its_lease_ends(backend: Backend) {
    // A 2 s request timeout: a request waits at most 1 s for another's answer.
    let app = spawn_app_with(backend, |s| s.request_timeout_secs = 2).await;
    app.create_merchant("m-1").await;
    let body = score_request("m-1").to_string();
    let post = |key: &'static str, body: String| {
        app.client
            .post(app.url("/v1/scores"))
            .bearer_auth(&app.lender_key)
            .header("Idempotency-Key", key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // While the dead owner's lease runs, the key looks in progress: 409.
    dead_claim(&app, "k-running", &body, 60).await;
    let (status, _) = problem(post("k-running", body.clone()).await.unwrap()).await;
    assert_eq!(status, 409);
    // Once the lease has run out, a retry of the same request takes the key over and runs.
    dead_claim(&app, "k-lapsed", &body, 0).await;
    let (status, replayed, text) = answer(post("k-lapsed", body.clone()).await.unwrap()).await;
    assert_eq!((status, replayed), (200, false), "{text}");
    let again = answer(post("k-lapsed", body.clone()).await.unwrap()).await;
    assert_eq!((again.0, again.1, again.2), (200, true, text));
    // Another request may not take it over.
    dead_claim(&app, "k-other", &body, 0).await;
    let other = json!({"merchant_id": "m-1", "as_of": "2026-11-19"}).to_string();
    let (status, problem_body) = problem(post("k-other", other).await.unwrap()).await;
    assert_eq!(status, 422, "{problem_body}");
    assert_eq!(app.count_rows("decisions").await, 1);
}

on_both_backends!(
    a_claim_whose_owner_died_is_taken_over_when_its_lease_ends,
    a_repeated_score_request_answers_the_first_decision_without_deciding_again,
    a_repeated_batch_is_stored_once_and_answers_the_first_count,
    a_repeated_loan_answers_its_201_and_location_again,
    the_same_key_with_another_body_is_a_422_naming_the_header,
    a_malformed_key_is_a_422_naming_the_header,
    an_expired_key_runs_the_request_again,
    concurrent_requests_with_one_key_decide_once,
    two_replicas_on_one_database_agree_on_a_key,
    keys_belong_to_their_caller,
    an_answer_that_depends_on_stored_data_is_not_replayed,
    a_refusal_of_the_body_is_replayed,
);

/// PostgreSQL: the first request is held up by a lock on the audit log, so the second one with
/// its key finds it in progress.
mod in_progress {
    use super::*;
    use sqlx::Connection;

    #[tokio::test]
    async fn a_key_in_use_is_a_409_with_retry_after_then_the_first_answer() {
        if crate::helpers::postgres_url().is_none() {
            eprintln!("SMECREDIT_TEST_POSTGRES_URL is not set; PostgreSQL-only test not run");
            return;
        }
        let app = spawn_app_with(Backend::Postgres, |s| s.request_timeout_secs = 4).await;
        app.create_merchant("m-1").await;
        let mut locker = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
        let mut tx = locker.begin().await.unwrap();
        sqlx::query("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .unwrap();
        let body = score_request("m-1");
        let first = {
            let client = app.client.clone();
            let url = app.url("/v1/scores");
            let body = body.clone();
            let credential = app.lender_key.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(credential)
                    .header("Idempotency-Key", KEY)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // The second waits about two seconds (half the request timeout), then gives up.
        let res = post_with_key(&app, &app.address, "/v1/scores", KEY, &body).await;
        assert_eq!(res.headers()["retry-after"], "1");
        let (status, problem_body) = problem(res).await;
        assert_eq!(status, 409, "{problem_body}");
        assert_eq!(fields(&problem_body), ["Idempotency-Key"]);
        tx.commit().await.unwrap();
        let first = answer(first.await.unwrap()).await;
        assert_eq!(first.0, 200, "{}", first.2);
        let again = answer(post_with_key(&app, &app.address, "/v1/scores", KEY, &body).await).await;
        assert_eq!((again.0, again.1), (200, true));
        assert_eq!(first.2, again.2);
        assert_eq!(app.count_rows("decisions").await, 1);
    }

    #[tokio::test]
    async fn a_request_abandoned_by_the_timeout_releases_its_key() {
        if crate::helpers::postgres_url().is_none() {
            eprintln!("SMECREDIT_TEST_POSTGRES_URL is not set; PostgreSQL-only test not run");
            return;
        }
        let app = spawn_app_with(Backend::Postgres, |s| s.request_timeout_secs = 1).await;
        app.create_merchant("m-1").await;
        let mut locker = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
        let mut tx = locker.begin().await.unwrap();
        sqlx::query("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .unwrap();
        let body = score_request("m-1");
        let res = post_with_key(&app, &app.address, "/v1/scores", KEY, &body).await;
        assert!(res.headers().contains_key("retry-after"));
        let (status, problem_body) = problem(res).await;
        assert_eq!(
            (status, problem_body["type"].as_str()),
            (503, Some("/problems/timeout"))
        );
        tx.rollback().await.unwrap();
        // The key was released, so the retry runs (rather than waiting on a dead claim).
        let mut retried = None;
        for _ in 0..20 {
            let (status, replayed, text) =
                answer(post_with_key(&app, &app.address, "/v1/scores", KEY, &body).await).await;
            if status == 200 {
                retried = Some((replayed, text));
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let (replayed, text) = retried.expect("the retry succeeds");
        assert!(!replayed, "{text}");
    }
}
