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
