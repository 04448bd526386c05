use crate::helpers::{Backend, spawn_app};
use crate::on_both_backends;
use reqwest::Method;
use serde_json::Value;
use smecredit::features::{FeatureId, FeatureValue, History, MerchantProfile, compute};
use smecredit::policy::{Decision, Policy};
use smecredit::scoring::{DecisionInputs, ModelRegistry, evaluate};

/// Every next step offered to a referred or declined merchant of the demo population, applied
/// alone to the merchant's features and re-scored here, independently of the endpoint, improves
/// the outcome; and only features a merchant can act on are named.
async fn next_steps_really_improve_the_outcome(backend: Backend) {
    let app = spawn_app(backend).await;
    assert!(smecredit::demo::seed_if_empty(&app.store).await.unwrap());
    let registry = ModelRegistry::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models"));
    let policy = Policy::default_policy();
    let mut checked = 0;
    for i in 0..smecredit::demo::DEMO_MERCHANTS {
        let id = format!("m{i:06}");
        let res = app.get(&format!("/v1/merchants/{id}/eligibility")).await;
        assert_eq!(res.status().as_u16(), 200);
        let e: Value = res.json().await.unwrap();
        assert!(!e["status"].as_str().unwrap().is_empty());
        let decision: Decision = serde_json::from_value(e["decision"].clone()).unwrap();
        if decision == Decision::Approve {
            assert!(e["next_steps"].as_array().unwrap().is_empty());
            continue;
        }
        let model = registry.load(e["model_version"].as_str().unwrap()).unwrap();
        let as_of = chrono::DateTime::parse_from_rfc3339(e["as_of"].as_str().unwrap())
            .unwrap()
            .to_utc();
        let merchant = app
            .store
            .merchant(&smecredit::domain::MerchantId::parse(id.as_str()).unwrap())
            .await
            .unwrap()
            .unwrap();
        let facts = app.store.payment_facts(merchant.key, as_of).await.unwrap();
        let features = compute(&MerchantProfile::from(&merchant.merchant), &facts, as_of);
        // independently of the service's read of the day summaries: from the payments
        let inputs = DecisionInputs::of(
            &History::from_facts(&facts, as_of),
            None,
            merchant.merchant.category.as_str(),
        );
        let before = evaluate(&model.artifact, &policy, &features, &inputs);
        assert_eq!(before.terms.decision, decision);
        for step in e["next_steps"].as_array().unwrap() {
            let feature = FeatureId::from_name(step["feature"].as_str().unwrap()).unwrap();
            assert!(smecredit::explain::ACTIONABLE.contains(&feature), "{step}");
            let target = step["target"].as_f64().unwrap();
            let after = evaluate(
                &model.artifact,
                &policy,
                &features.with(feature, FeatureValue::Ratio(target)),
                &inputs,
            );
            let better = after.terms.decision < before.terms.decision
                || (after.terms.decision == before.terms.decision
                    && after.result.score > before.result.score);
            assert!(
                better,
                "{id}: {step} does not improve {decision:?} / {}",
                before.result.score
            );
            checked += 1;
        }
    }
    assert!(
        checked > 0,
        "no referred or declined merchant with next steps in the demo population"
    );
}

async fn the_explanation_speaks_the_merchants_language(backend: Backend) {
    let app = spawn_app(backend).await;
    smecredit::demo::seed_if_empty(&app.store).await.unwrap();
    let get = async |lang: &'static str| {
        app.request(Method::GET, "/v1/merchants/m000002/eligibility")
            .await
            .header("Accept-Language", lang)
            .send()
            .await
    };
    let zh = get("zh-CN,zh;q=0.9").await.unwrap();
    assert_eq!(zh.headers()["content-language"], "zh-CN");
    let body: Value = zh.json().await.unwrap();
    let status = body["status"].as_str().unwrap();
    assert!(
        status
            .chars()
            .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{status}"
    );
    let fr = get("fr-FR").await.unwrap();
    assert_eq!(
        fr.headers()["content-language"],
        "en",
        "an unsupported language falls back to English"
    );
    let body: Value = fr.json().await.unwrap();
    assert!(
        body["data_used"]
            .as_str()
            .unwrap()
            .starts_with("We looked at"),
        "{body}"
    );
}

on_both_backends!(
    next_steps_really_improve_the_outcome,
    the_explanation_speaks_the_merchants_language
);
