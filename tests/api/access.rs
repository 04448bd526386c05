//! Who reaches what: every route, tried with no key, a malformed one, an unknown one, a revoked
//! one, a key of every role, and a foreign merchant's and a foreign lender's key, each with the
//! exact status it must get. The expectations are written out here from the access rules in the
//! README, independently of the table the service enforces (`api::auth::ROUTES`).

use crate::helpers::{Backend, TestApp, issue_key, merchant_json, payment_json, spawn_app};
use crate::on_both_backends;
use reqwest::Method;
use serde_json::{Value, json};
use smecredit::keys::Role;

/// Who asks, in the order of the columns of [`cases`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    NoKey,
    Malformed,
    Unknown,
    Revoked,
    Platform,
    Lender,
    /// A lender other than the one that made the decision under test.
    OtherLender,
    /// A merchant key for the merchant the paths name.
    OwnMerchant,
    /// A merchant key for another merchant.
    OtherMerchant,
    Admin,
}

const WHO: [Who; 10] = [
    Who::NoKey,
    Who::Malformed,
    Who::Unknown,
    Who::Revoked,
    Who::Platform,
    Who::Lender,
    Who::OtherLender,
    Who::OwnMerchant,
    Who::OtherMerchant,
    Who::Admin,
];

struct Keys {
    revoked: String,
    other_lender: String,
    own_merchant: String,
    other_merchant: String,
}

/// The `Authorization` header `who` sends, if any.
fn authorization(app: &TestApp, keys: &Keys, who: Who) -> Option<String> {
    let bearer = |k: &str| Some(format!("Bearer {k}"));
    match who {
        Who::NoKey => None,
        Who::Malformed => Some(format!("Basic {}", app.platform_key)),
        // Well-formed, never issued.
        Who::Unknown => bearer(&format!("smk_{}", "5a".repeat(32))),
        Who::Revoked => bearer(&keys.revoked),
        Who::Platform => bearer(&app.platform_key),
        Who::Lender => bearer(&app.lender_key),
        Who::OtherLender => bearer(&keys.other_lender),
        Who::OwnMerchant => bearer(&keys.own_merchant),
        Who::OtherMerchant => bearer(&keys.other_merchant),
        Who::Admin => bearer(&app.admin_key),
    }
}

struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    /// The status for each of [`WHO`], in order.
    expect: [u16; 10],
}

const OWN: &str = "m-own";
const OTHER: &str = "m-other";

/// Every route and the status each caller gets. Columns: no key, malformed, unknown, revoked,
/// platform, lender, other lender, own merchant, other merchant, admin.
fn cases(decision_id: &str, model: &str, spare_key: &str) -> Vec<Case> {
    let c = |method: Method, path: &str, body: Option<Value>, expect: [u16; 10]| Case {
        method,
        path: path.to_string(),
        body,
        expect,
    };
    let (get, post) = (Method::GET, Method::POST);
    let denied = [401, 401, 401, 401];
    let row = |granted: [u16; 6]| {
        let mut r = [0; 10];
        r[..4].copy_from_slice(&denied);
        r[4..].copy_from_slice(&granted);
        r
    };
    let open = [200; 10];
    vec![
        c(get.clone(), "/healthz", None, open),
        c(get.clone(), "/readyz", None, open),
        c(get.clone(), "/openapi.json", None, open),
        c(get.clone(), "/docs/", None, open),
        c(
            get.clone(),
            "/metrics",
            None,
            row([403, 403, 403, 403, 403, 200]),
        ),
        //                                                    platform lender other-l own-m other-m admin
        c(
            post.clone(),
            "/v1/merchants",
            Some(merchant_json("m-new")),
            row([201, 403, 403, 403, 403, 403]),
        ),
        c(
            get.clone(),
            &format!("/v1/merchants/{OWN}"),
            None,
            row([200, 200, 200, 403, 403, 403]),
        ),
        c(
            post.clone(),
            &format!("/v1/merchants/{OWN}/payments"),
            Some(json!({"payments": [payment_json("p-access", "2026-11-19T10:00:00Z", "3.00")]})),
            row([200, 403, 403, 403, 403, 403]),
        ),
        c(
            get.clone(),
            &format!("/v1/merchants/{OWN}/payments"),
            None,
            row([200, 403, 403, 403, 403, 403]),
        ),
        c(
            get.clone(),
            &format!("/v1/merchants/{OWN}/loans"),
            None,
            row([200, 403, 403, 403, 403, 403]),
        ),
        c(
            get.clone(),
            "/v1/features",
            None,
            row([200, 200, 200, 200, 200, 200]),
        ),
        c(
            get.clone(),
            &format!("/v1/merchants/{OWN}/features?as_of=2026-11-20"),
            None,
            row([403, 200, 200, 200, 403, 200]),
        ),
        c(
            get.clone(),
            &format!("/v1/merchants/{OWN}/eligibility"),
            None,
            row([403, 403, 403, 200, 403, 403]),
        ),
        c(
            post.clone(),
            "/v1/scores",
            Some(json!({"merchant_id": OWN, "as_of": "2026-11-20"})),
            row([403, 200, 200, 403, 403, 403]),
        ),
        // The other lender does not learn that the decision exists.
        c(
            get.clone(),
            &format!("/v1/decisions/{decision_id}"),
            None,
            row([403, 200, 404, 403, 403, 200]),
        ),
        c(
            post.clone(),
            "/v1/loans",
            Some(loan_json("L-2")),
            row([201, 403, 403, 403, 403, 403]),
        ),
        c(
            get.clone(),
            "/v1/loans/L-1",
            None,
            row([200, 403, 403, 403, 403, 403]),
        ),
        c(
            post.clone(),
            "/v1/loans/L-1/outcome",
            Some(json!({"outcome": "repaid"})),
            row([200, 403, 403, 403, 403, 403]),
        ),
        c(
            get.clone(),
            "/v1/models",
            None,
            row([403, 403, 403, 403, 403, 200]),
        ),
        c(
            post.clone(),
            &format!("/v1/models/{model}/activate"),
            None,
            row([403, 403, 403, 403, 403, 200]),
        ),
        c(
            get.clone(),
            "/v1/keys",
            None,
            row([403, 403, 403, 403, 403, 200]),
        ),
        c(
            post.clone(),
            "/v1/keys",
            Some(json!({"role": "lender", "name": "made in the access test"})),
            row([403, 403, 403, 403, 403, 201]),
        ),
        c(
            post.clone(),
            &format!("/v1/keys/{spare_key}/rotate"),
            None,
            row([403, 403, 403, 403, 403, 201]),
        ),
        c(
            post.clone(),
            &format!("/v1/keys/{spare_key}/revoke"),
            None,
            row([403, 403, 403, 403, 403, 200]),
        ),
    ]
}

fn loan_json(id: &str) -> Value {
    json!({"loan_id": id, "merchant_id": OWN, "disbursed_on": "2026-06-01",
        "principal": {"amount": "2000.00", "currency": "CNY"}, "term_days": 90})
}

async fn every_route_answers_each_caller_with_the_exact_status(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_merchant(OWN).await;
    app.create_merchant(OTHER).await;
    let history: Vec<Value> = (1..=60)
        .map(|d| {
            let day =
                chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap() - chrono::Duration::days(d);
            payment_json(&format!("p-{d}"), &format!("{day}T09:00:00Z"), "25.00")
        })
        .collect();
    assert_eq!(app.post_payments(OWN, history).await.status().as_u16(), 200);
    assert_eq!(
        app.post_json("/v1/loans", &loan_json("L-1"))
            .await
            .status()
            .as_u16(),
        201
    );
    let res = app
        .post_json(
            "/v1/scores",
            &json!({"merchant_id": OWN, "as_of": "2026-11-20"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let decision_id = res.json::<Value>().await.unwrap()["decision_id"]
        .as_str()
        .unwrap()
        .to_string();
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    let model = ready["model"].as_str().unwrap().to_string();

    let revoked = smecredit::keys::create(&app.store, Role::Lender, None, Some("revoked"))
        .await
        .unwrap();
    smecredit::keys::revoke(&app.store, &revoked.info.key_id)
        .await
        .unwrap();
    let spare = smecredit::keys::create(&app.store, Role::Platform, None, Some("spare"))
        .await
        .unwrap();
    let keys = Keys {
        revoked: revoked.secret.expose().to_string(),
        other_lender: issue_key(&app.store, Role::Lender, None).await,
        own_merchant: app.merchant_key(OWN).await,
        other_merchant: app.merchant_key(OTHER).await,
    };

    let mut failures = Vec::new();
    for case in cases(&decision_id, &model, &spare.info.key_id) {
        for (who, expected) in WHO.into_iter().zip(case.expect) {
            let mut req = app.client.request(case.method.clone(), app.url(&case.path));
            if let Some(auth) = authorization(&app, &keys, who) {
                req = req.header("Authorization", auth);
            }
            if let Some(body) = &case.body {
                req = req.json(body);
            }
            let res = req.send().await.expect("request");
            let status = res.status().as_u16();
            let what = format!("{} {} as {who:?}", case.method, case.path);
            if status != expected {
                let body = res.text().await.unwrap_or_default();
                failures.push(format!("{what}: expected {expected}, got {status}: {body}"));
                continue;
            }
            if matches!(status, 401 | 403) {
                let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
                let challenge = res
                    .headers()
                    .get("www-authenticate")
                    .map(|v| v.to_str().unwrap().to_string());
                let body: Value = res.json().await.unwrap();
                if content_type != "application/problem+json" || body["status"] != status {
                    failures.push(format!("{what}: not a problem document: {body}"));
                }
                match (status, challenge) {
                    (401, Some(c)) if c.starts_with("Bearer") => {}
                    (403, None) => {}
                    (_, c) => failures.push(format!("{what}: WWW-Authenticate {c:?}")),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} wrong answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

async fn a_lender_reads_its_decisions_after_rotating_its_key_and_an_admin_reads_all(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_merchant(OWN).await;
    let first = smecredit::keys::create(&app.store, Role::Lender, None, Some("acme"))
        .await
        .unwrap();
    let res = app
        .post_json_as(
            first.secret.expose(),
            "/v1/scores",
            &json!({"merchant_id": OWN}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let id = res.json::<Value>().await.unwrap()["decision_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/decisions/{id}");

    // The audit record names the key that asked, by id and name.
    let record: Value = app
        .get_as(&app.admin_key, &path)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(record["caller"], first.info.key_id.as_str());
    assert_eq!(record["caller_name"], "acme");

    let res = app
        .post_json_as(
            &app.admin_key,
            &format!("/v1/keys/{}/rotate", first.info.key_id),
            &json!({}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let rotated: Value = res.json().await.unwrap();
    assert_eq!(rotated["principal"], first.info.key_id.as_str());
    assert_eq!(rotated["role"], "lender");
    let new_key = rotated["key"].as_str().unwrap();
    let res = app
        .post_json_as(
            &app.admin_key,
            &format!("/v1/keys/{}/revoke", first.info.key_id),
            &json!({}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);

    assert_eq!(
        app.get_as(first.secret.expose(), &path)
            .await
            .status()
            .as_u16(),
        401
    );
    assert_eq!(app.get_as(new_key, &path).await.status().as_u16(), 200);
    assert_eq!(
        app.get_as(&app.lender_key, &path).await.status().as_u16(),
        404
    );
    assert_eq!(
        app.get_as(&app.lender_key, "/v1/decisions/no-such-decision")
            .await
            .status()
            .as_u16(),
        404,
        "the same answer as for another lender's decision"
    );
}

async fn a_revocation_takes_effect_within_the_key_cache_lifetime(backend: Backend) {
    let app = crate::helpers::spawn_app_with(backend, |s| s.auth_cache_secs = 1).await;
    let key = smecredit::keys::create(&app.store, Role::Lender, None, None)
        .await
        .unwrap();
    let secret = key.secret.expose();
    assert_eq!(
        app.get_as(secret, "/v1/features").await.status().as_u16(),
        200
    );
    // Revoked by another process (the CLI, another replica): this replica has the key cached.
    smecredit::keys::revoke(&app.store, &key.info.key_id)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = app.get_as(secret, "/v1/features").await;
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="smecredit", error="invalid_token""#
    );

    // Revoked over this replica's API: refused at once.
    let key = smecredit::keys::create(&app.store, Role::Lender, None, None)
        .await
        .unwrap();
    let secret = key.secret.expose();
    assert_eq!(
        app.get_as(secret, "/v1/features").await.status().as_u16(),
        200
    );
    let res = app
        .post_json_as(
            &app.admin_key,
            &format!("/v1/keys/{}/revoke", key.info.key_id),
            &json!({}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        app.get_as(secret, "/v1/features").await.status().as_u16(),
        401
    );
}

async fn admins_issue_list_and_refuse_nonsense_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .post_json(
            "/v1/keys",
            &json!({"role": "merchant", "merchant_id": "m-9", "name": "shop app"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let issued: Value = res.json().await.unwrap();
    let key = issued["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("smk_") && key.len() == 68, "{key}");
    assert_eq!(issued["merchant_id"], "m-9");

    let listed: Value = app.get("/v1/keys").await.json().await.unwrap();
    let listed = listed["keys"].as_array().unwrap();
    assert_eq!(listed.len(), 4, "three keys of the test app and this one");
    let text = serde_json::to_string(listed).unwrap();
    assert!(!text.contains(&key), "a list never shows a key");
    assert!(!text.contains(&app.platform_key));

    for (body, field) in [
        (json!({"role": "merchant"}), "merchant_id"),
        (
            json!({"role": "lender", "merchant_id": "m-9"}),
            "merchant_id",
        ),
        (json!({"role": "admin", "name": ""}), "name"),
    ] {
        let (status, problem) =
            crate::helpers::problem(app.post_json("/v1/keys", &body).await).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(crate::helpers::fields(&problem), [field], "{body}");
    }
    let (status, _) =
        crate::helpers::problem(app.post_json("/v1/keys", &json!({"role": "root"})).await).await;
    assert_eq!(status, 400);
    let (status, _) = crate::helpers::problem(
        app.post_json("/v1/keys/key_000000000000/revoke", &json!({}))
            .await,
    )
    .await;
    assert_eq!(status, 404);
}

on_both_backends!(
    every_route_answers_each_caller_with_the_exact_status,
    a_lender_reads_its_decisions_after_rotating_its_key_and_an_admin_reads_all,
    a_revocation_takes_effect_within_the_key_cache_lifetime,
    admins_issue_list_and_refuse_nonsense_keys,
);
