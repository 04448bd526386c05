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
