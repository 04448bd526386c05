use super::features::{AsOfQuery, parse_as_of};
use super::merchants::{find_merchant_history, merchant_id_from_path};
use super::{ApiError, AppState, CommonErrors, Problem};
use crate::domain::Money;
use crate::explain::{ACTIONABLE, Lang, NextStep, Outcome, helps_and_hurts, next_steps};
use crate::features::{FeatureId, FeatureValue, MerchantProfile, compute_history};
use crate::policy::Decision;
use crate::scorecard::{Artifact, BinRule};
use crate::scoring::{DecisionInputs, evaluate};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// A merchant's eligibility, in its own language.
#[derive(Debug, Serialize, ToSchema)]
pub struct Eligibility {
    pub merchant_id: String,
    /// `en` or `zh-CN` (also in `Content-Language`).
    pub language: Lang,
    pub decision: Decision,
    /// The status in one sentence.
    pub status: String,
    /// How much, and what it would cost.
    pub offer: Option<String>,
    pub credit_limit: Money,
    /// What works in the merchant's favour.
    pub helps: Vec<String>,
    /// What holds the merchant back.
    pub hurts: Vec<String>,
    /// Changes that, made alone, improve the outcome (each checked by re-scoring).
    pub next_steps: Vec<NextStep>,
    pub check_again: String,
    /// Which data the answer used.
    pub data_used: String,
    pub as_of: DateTime<Utc>,
    pub model_version: String,
}

fn money_text(m: &Money, lang: Lang) -> String {
    let amount = m.amount();
    let digits = amount.trunc().abs().to_string();
    let mut grouped = String::from(if amount.is_sign_negative() { "-" } else { "" });
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let fraction = format!("{:.2}", amount.fract().abs());
    let text = format!("{grouped}{}", fraction.trim_start_matches('0'));
    match (lang, m.currency().code()) {
        (Lang::En, "CNY") => format!("¥{text}"),
        (Lang::ZhCn, "CNY") => format!("{text}元"),
        (_, code) => format!("{text} {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    #[test]
    fn categories_read_naturally_in_both_languages() {
        assert_eq!(category_words("farm_supplies", Lang::En), "farm supplies");
        assert_eq!(category_words("farm_supplies", Lang::ZhCn), "农资店");
        assert_eq!(category_words("bike_repair", Lang::ZhCn), "bike repair");
    }

    #[test]
    fn money_reads_naturally_in_both_languages() {
        let cny = Currency::parse("CNY").unwrap();
        let m = |s: &str| Money::parse(s, cny).unwrap();
        assert_eq!(money_text(&m("36600"), Lang::En), "¥36,600.00");
        assert_eq!(money_text(&m("1800.5"), Lang::ZhCn), "1,800.50元");
        assert_eq!(money_text(&m("999"), Lang::En), "¥999.00");
        assert_eq!(money_text(&m("-123456.07"), Lang::En), "¥-123,456.07");
    }
}

/// A category slug in the merchant's language: the simulator's and the demo's categories by
/// name, any other slug as it is (with `_` read as a space).
fn category_words(slug: &str, lang: Lang) -> String {
    let zh = match slug {
        "food_stall" => Some("小吃摊"),
        "grocery" => Some("杂货店"),
        "retail" => Some("零售店"),
        "services" => Some("服务业"),
        "farm_supplies" => Some("农资店"),
        _ => None,
    };
    match (lang, zh) {
        (Lang::ZhCn, Some(words)) => words.to_string(),
        _ => slug.replace('_', " "),
    }
}

/// Candidate values for the next steps: the edges of the model's better bins, nearest first.
/// A peer-relative feature's edges are turned back into values of the feature itself for a
/// merchant of `category` with its days of history (the same feature may be read both ways;
/// its candidates are merged).
fn candidates(
    artifact: &Artifact,
    features: &crate::features::FeatureVector,
    category: &str,
) -> Vec<(FeatureId, Vec<FeatureValue>)> {
    let mut by_feature: std::collections::BTreeMap<FeatureId, (bool, Vec<f64>)> =
        std::collections::BTreeMap::new();
    let peers = crate::scorecard::Peers::new(
        Some(category),
        features.get(FeatureId::DaysOfHistory).as_f64(),
    );
    for f in &artifact.features {
        let source = f.source_name();
        let Some(id) = FeatureId::from_name(source) else {
            continue;
        };
        if !ACTIONABLE.contains(&id) {
            continue;
        }
        let now = features.get(id).as_f64();
        let safer_up = f.direction == "higher_is_safer";
        // A value at the lower edge is in the bin; one just under the upper edge too. A
        // relative edge is nudged inside the bin before it is turned back, so that rounding
        // cannot drop the value into the neighbouring bin.
        let edges = f.bins.iter().filter_map(|b| match b.rule {
            BinRule::Range { lower, upper } => {
                if safer_up {
                    lower.map(|l| if f.relative.is_some() { l + 1e-9 } else { l })
                } else {
                    upper.map(|u| u - 1e-9)
                }
            }
            _ => None,
        });
        let values = edges
            .map(|edge| match &f.relative {
                Some(r) => r.source_value(edge, peers),
                None => edge,
            })
            .filter(|v| match now {
                Some(n) if safer_up => *v > n,
                Some(n) => *v < n,
                None => true,
            });
        let entry = by_feature.entry(id).or_insert((safer_up, Vec::new()));
        entry.1.extend(values);
    }
    by_feature
        .into_iter()
        .map(|(id, (safer_up, mut values))| {
            if safer_up {
                values.sort_by(f64::total_cmp);
            } else {
                values.sort_by(|a, b| b.total_cmp(a));
            }
            values.dedup();
            (id, values.into_iter().map(FeatureValue::Ratio).collect())
        })
        .collect()
}

/// Whether a merchant can get credit, why, and what to do next — in English or Simplified
/// Chinese (`Accept-Language`; English otherwise, with `Content-Language` saying which).
#[utoipa::path(get, path = "/v1/merchants/{merchant_id}/eligibility", tag = "merchants",
    params(
        ("merchant_id" = String, Path, description = "The platform's merchant id", pattern = r"^[A-Za-z0-9._:-]{1,64}$"),
        ("Accept-Language" = Option<String>, Header, description = "`en` or `zh-CN`; anything else is answered in English"),
        AsOfQuery,
    ),
    responses(
        (status = 200, description = "The explanation", body = Eligibility, headers(("Content-Language" = String, description = "The language used"))),
        (status = 404, description = "No such merchant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`as_of` or the id is invalid", body = Problem, content_type = "application/problem+json"),
        CommonErrors,
    ))]
pub async fn eligibility(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<AsOfQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let lang = Lang::negotiate(
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let id = merchant_id_from_path(&path)?;
    let as_of = parse_as_of(query.as_of.as_deref())?;
    let Some(model) = state.models.current() else {
        return Err(ApiError::NoModel);
    };
    let (merchant, history) = find_merchant_history(&state, &id, as_of).await?;
    let features = compute_history(&MerchantProfile::from(&merchant.merchant), &history);
    let category = merchant.merchant.category.as_str().to_string();
    let inputs = DecisionInputs::of(&history, None, &category);
    let e = evaluate(&model.artifact, &state.policy, &features, &inputs);
    let terms = &e.terms;
    let (helps, hurts) = helps_and_hurts(&e.contributions, lang);
    let steps = if terms.decision == Decision::Approve {
        Vec::new()
    } else {
        let rescore = |changed: &crate::features::FeatureVector| {
            let again = evaluate(&model.artifact, &state.policy, changed, &inputs);
            Outcome {
                decision: again.terms.decision,
                score: again.result.score,
            }
        };
        let current = Outcome {
            decision: terms.decision,
            score: e.result.score,
        };
        next_steps(
            &features,
            &candidates(&model.artifact, &features, &category),
            current,
            rescore,
            lang,
            3,
        )
    };
    let limit = money_text(&terms.credit_limit, lang);
    let knocked_out_for_silence = terms.knockouts.iter().any(|k| k.rule == "no_recent_sales");
    let status = match (terms.decision, terms.thin_file, lang) {
        (Decision::Approve, true, Lang::En) => format!("You are new with us, so we start you with a starter limit of {limit}; it grows as your sales record does."),
        (Decision::Approve, true, Lang::ZhCn) => format!("您刚开始使用我们的服务，我们先为您提供{limit}的起步额度，随着经营记录的积累，额度会相应提高。"),
        (Decision::Approve, false, Lang::En) => format!("Good news: you can borrow up to {limit}."),
        (Decision::Approve, false, Lang::ZhCn) => format!("好消息：您最高可以借款{limit}。"),
        (Decision::Refer, _, Lang::En) => format!("Your application needs a closer look by our team; you may be able to borrow up to {limit}."),
        (Decision::Refer, _, Lang::ZhCn) => format!("您的申请需要我们的工作人员进一步审核，您可能可以借款最高{limit}。"),
        (Decision::Decline, _, Lang::En) if !inputs.has_history => "We cannot offer you a loan yet: we have no payments of yours to go on. Take payments with us and check again in 30 days.".to_string(),
        (Decision::Decline, _, Lang::ZhCn) if !inputs.has_history => "目前我们还无法为您提供贷款：我们还没有您的收款记录。开始使用我们收款，30天后再来看看吧。".to_string(),
        (Decision::Decline, _, Lang::En) => "We cannot offer you a loan right now.".to_string(),
        (Decision::Decline, _, Lang::ZhCn) => "很抱歉，目前我们无法为您提供贷款。".to_string(),
    };
    let offer = (terms.decision != Decision::Decline).then(|| {
        let apr = (terms.indicative_apr * rust_decimal::Decimal::from(100)).normalize();
        let term = state.policy.term_days;
        match (terms.suggested_repayment_share, lang) {
            (Some(share), Lang::En) => format!(
                "At an indicative {apr}% a year; repaying about {}% of your daily sales would clear it in about {term} days.",
                (share * rust_decimal::Decimal::from(100)).normalize()
            ),
            (Some(share), Lang::ZhCn) => format!(
                "参考年利率约{apr}%；每天用约{}%的销售额还款，大约{term}天即可还清。",
                (share * rust_decimal::Decimal::from(100)).normalize()
            ),
            (None, Lang::En) => format!("At an indicative {apr}% a year."),
            (None, Lang::ZhCn) => format!("参考年利率约{apr}%。"),
        }
    });
    let check_again = match (knocked_out_for_silence, lang) {
        (true, Lang::En) => {
            "Check again after 30 days of trading: we look at your most recent sales.".to_string()
        }
        (true, Lang::ZhCn) => "恢复营业30天后再来看看：我们会参考您最近的销售情况。".to_string(),
        (false, Lang::En) => {
            "Check again in 30 days: your record is updated with every payment.".to_string()
        }
        (false, Lang::ZhCn) => "30天后再来看看：每一笔收款都会更新您的记录。".to_string(),
    };
    let count = history.payment_count();
    // Whether the model compares some of the merchant's rates with shops of its category:
    // then the category is named as what it is used for, never as a reason on its own.
    let peers = model.artifact.uses_peer_groups();
    let category = category_words(&category, lang);
    let history_note = match (model.artifact.uses_history_bands(), lang) {
        (false, _) => "",
        (true, Lang::En) => {
            " Your returning customers are compared with shops of the same kind that have been trading about as long, because a newer shop's customers have had less time to come back."
        }
        (true, Lang::ZhCn) => {
            "回头客还会与经营时间相近的同类店铺相比，因为新店的顾客回头的时间还不长。"
        }
    };
    let data_used = match (history.first_and_last_payment(), lang, peers) {
        (Some((a, b)), Lang::En, false) => format!(
            "We looked at your {count} payments with us from {} to {}, and nothing else: not your region, not your category.",
            a.date_naive(),
            b.date_naive()
        ),
        (Some((a, b)), Lang::ZhCn, false) => format!(
            "我们只参考了您在我们这里从{}到{}的{count}笔收款记录，不考虑您所在的地区或行业。",
            a.date_naive(),
            b.date_naive(),
        ),
        (Some((a, b)), Lang::En, true) => format!(
            "We looked at your {count} payments with us from {} to {}. Your category ({category}) is used only to compare your returning customers, refunds and disputes with shops of the same kind; it scores nothing by itself, and your region is not used at all.{history_note}",
            a.date_naive(),
            b.date_naive()
        ),
        (Some((a, b)), Lang::ZhCn, true) => format!(
            "我们参考了您在我们这里从{}到{}的{count}笔收款记录。您的行业（{category}）只用于把您的回头客、退款和争议交易与同类店铺相比较，行业本身不计分；您所在的地区完全不考虑。{history_note}",
            a.date_naive(),
            b.date_naive(),
        ),
        (None, Lang::En, _) => "We have no payments of yours yet.".to_string(),
        (None, Lang::ZhCn, _) => "我们还没有您的收款记录。".to_string(),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_LANGUAGE, lang.tag()))
        .insert_header((header::VARY, "Accept-Language"))
        .json(Eligibility {
            merchant_id: id.to_string(),
            language: lang,
            decision: terms.decision,
            status,
            offer,
            credit_limit: terms.credit_limit,
            helps,
            hurts,
            next_steps: steps,
            check_again,
            data_used,
            as_of,
            model_version: model.version.clone(),
        }))
}
