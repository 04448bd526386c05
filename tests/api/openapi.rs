use crate::helpers::{Backend, spawn_app};

/// The committed spec is what the code generates. To regenerate after changing the API:
/// `cargo run -- openapi --out openapi/openapi.json`.
#[test]
fn the_committed_spec_matches_the_code() {
    let generated = smecredit::api::openapi_json();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date with the code.\nRegenerate it with:\n    cargo run -- openapi --out openapi/openapi.json\nand commit the result."
    );
}

#[test]
fn money_is_a_string_in_the_spec() {
    let spec: serde_json::Value = serde_json::from_str(&smecredit::api::openapi_json()).unwrap();
    let money = &spec["components"]["schemas"]["Money"];
    assert_eq!(money["properties"]["amount"]["type"], "string", "{money}");
    assert_eq!(money["properties"]["currency"]["type"], "string", "{money}");
}

#[tokio::test]
async fn the_served_spec_is_the_generated_one() {
    let app = spawn_app(Backend::Sqlite).await;
    let served: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    let generated: serde_json::Value =
        serde_json::from_str(&smecredit::api::openapi_json()).unwrap();
    assert_eq!(served, generated);
}

#[test]
fn every_route_but_the_probes_declares_the_key_and_the_roles_it_needs() {
    let spec: serde_json::Value = serde_json::from_str(&smecredit::api::openapi_json()).unwrap();
    let scheme = &spec["components"]["securitySchemes"]["api_key"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if matches!(path.as_str(), "/healthz" | "/readyz") {
                assert!(op.get("security").is_none(), "{method} {path} is open");
                continue;
            }
            assert!(
                op["security"][0]["api_key"].is_array(),
                "{method} {path} declares no key"
            );
            let description = op["description"].as_str().unwrap_or_default();
            assert!(
                description.contains("**Access:**"),
                "{method} {path}: {description}"
            );
            for status in ["401", "429"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} has no {status}"
                );
            }
        }
    }
    let roles =
        |path: &str, method: &str| spec["paths"][path][method]["security"][0]["api_key"].clone();
    assert_eq!(roles("/v1/scores", "post"), serde_json::json!(["lender"]));
    assert_eq!(
        roles("/v1/merchants/{merchant_id}", "get"),
        serde_json::json!(["platform", "lender"])
    );
    assert_eq!(roles("/v1/features", "get"), serde_json::json!([]));
    assert_eq!(roles("/v1/models", "get"), serde_json::json!(["admin"]));
}

// Found by the contract test (tests/contract): `list`, `create` and `get` were each the
// operationId of two operations, so tools that follow links by operationId (schemathesis's
// stateful phase) called the wrong one.
#[test]
fn every_operation_has_an_operation_id_of_its_own() {
    let spec: serde_json::Value = serde_json::from_str(&smecredit::api::openapi_json()).unwrap();
    let mut seen = std::collections::HashMap::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            if let Some(other) = seen.insert(id.clone(), format!("{method} {path}")) {
                panic!("{method} {path} and {other} share the operationId {id}");
            }
        }
    }
}

// Found by the contract test: POST /v1/keys and POST /v1/loans/{loan_id}/outcome answered 415
// and 413 without documenting them. Every route that reads a JSON body can.
#[test]
fn every_operation_with_a_json_body_documents_the_refusals_of_the_body() {
    let spec: serde_json::Value = serde_json::from_str(&smecredit::api::openapi_json()).unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("requestBody").is_none() {
                continue;
            }
            for status in ["400", "413", "415", "422"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} does not document {status}"
                );
            }
        }
    }
}

// Found by the contract test: a feature value that is a count (or a whole ratio) matched both
// `integer` and `number` of a `oneOf`, so every real feature vector failed its own schema; and a
// recorded value was said to be an object, though a missing one is the string "missing".
#[test]
fn feature_values_are_described_as_they_are_sent() {
    let spec: serde_json::Value = serde_json::from_str(&smecredit::api::openapi_json()).unwrap();
    let schemas = &spec["components"]["schemas"];
    let value = &schemas["FeatureValueJson"];
    assert!(value.get("oneOf").is_none(), "{value}");
    assert_eq!(value["anyOf"].as_array().map(Vec::len), Some(3), "{value}");
    let recorded = &schemas["RecordedFeatureValue"]["oneOf"];
    assert!(
        recorded
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["enum"] == serde_json::json!(["missing"])),
        "{recorded}"
    );
}
