//! Explaining a decision: reason codes for the lender, plain words in English or Simplified
//! Chinese for the merchant, and next steps that really change the outcome (each one is checked by
//! re-scoring the merchant with that one change).

use crate::features::{CATALOG, FeatureId, FeatureValue, FeatureVector};
use crate::policy::Decision;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A language the merchant can be answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Lang {
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh-CN")]
    ZhCn,
}

impl Lang {
    /// The `Content-Language` tag.
    pub fn tag(&self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// Picks the language from an `Accept-Language` header by its q-values; English when the
    /// header is absent or names nothing supported.
    pub fn negotiate(accept_language: Option<&str>) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in accept_language.unwrap_or("").split(',') {
            let mut parts = item.trim().split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let lang = if tag == "zh"
                || tag.starts_with("zh-cn")
                || tag.starts_with("zh-hans")
                || tag == "zh-sg"
            {
                Some(Lang::ZhCn)
            } else if tag == "en" || tag.starts_with("en-") || tag == "*" {
                Some(Lang::En)
            } else {
                None
            };
            if let Some(lang) = lang
                && q > 0.0
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }
}

/// Whom a model input compares the merchant with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Comparison {
    /// Nobody: the catalog feature as it is.
    Raw,
    /// Merchants of its category (a peer-relative feature).
    Category,
    /// Merchants of its category that have traded about as long (history bands).
    CategoryAndHistory,
}

impl Comparison {
    /// The comparison of a model input.
    pub fn of(f: &crate::scorecard::ScoreFeature) -> Comparison {
        match &f.relative {
            None => Comparison::Raw,
            Some(r) if r.by_history() => Comparison::CategoryAndHistory,
            Some(_) => Comparison::Category,
        }
    }
}

/// How one feature scored: its points and the best and worst points it could have had.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contribution {
    /// The catalog feature the model input reads.
    pub feature: FeatureId,
    /// Whom the input compares the merchant with.
    pub comparison: Comparison,
    pub points: f64,
    pub best_points: f64,
    pub worst_points: f64,
}

/// A principal reason for the decision, for the lender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reason {
    /// Stable code: `R-` and the feature name in capitals.
    #[schema(example = "R-ACTIVE_DAY_SHARE_90D")]
    pub code: String,
    #[schema(example = "active_day_share_90d")]
    pub feature: String,
    /// Points short of the best attainable for this feature.
    pub points_below_best: f64,
    pub text: String,
}

/// The stable reason code of a model input: `R-` and its name in capitals.
pub fn reason_code(input_name: &str) -> String {
    format!("R-{}", input_name.to_ascii_uppercase())
}

/// The model input's name: the catalog feature's, with `_vs_category` when it is read relative
/// to the merchant's category.
fn input_name(c: &Contribution) -> String {
    let name = CATALOG[c.feature as usize].name;
    if c.comparison != Comparison::Raw {
        crate::scorecard::relative_name(name, crate::scorecard::PEER_GROUP_BY)
    } else {
        name.to_string()
    }
}

/// At most four principal reasons: the scored features furthest below their best points.
pub fn reasons(contributions: &[Contribution]) -> Vec<Reason> {
    let mut shortfalls: Vec<&Contribution> = contributions
        .iter()
        .filter(|c| c.best_points - c.points > 1e-9)
        .collect();
    shortfalls.sort_by(|a, b| {
        (b.best_points - b.points)
            .total_cmp(&(a.best_points - a.points))
            .then(a.feature.cmp(&b.feature))
            .then(a.comparison.cmp(&b.comparison))
    });
    shortfalls
        .into_iter()
        .take(4)
        .map(|c| {
            let def = &CATALOG[c.feature as usize];
            let name = input_name(c);
            Reason {
                code: reason_code(&name),
                feature: name,
                points_below_best: c.best_points - c.points,
                text: format!(
                    "{}{} — {:.1} points below the best band",
                    def.description_en.trim_end_matches('.'),
                    match c.comparison {
                        Comparison::CategoryAndHistory => {
                            ", compared with merchants of the same category that have traded about as long"
                        }
                        Comparison::Category => ", compared with merchants of the same category",
                        Comparison::Raw => "",
                    },
                    c.best_points - c.points
                ),
            }
        })
        .collect()
}

/// What helps and what hurts, in the merchant's words: features near their best points help,
/// those furthest below hurt (at most three each).
pub fn helps_and_hurts(contributions: &[Contribution], lang: Lang) -> (Vec<String>, Vec<String>) {
    let words = |(id, comparison): (FeatureId, Comparison)| {
        let def = &CATALOG[id as usize];
        match (lang, comparison) {
            (Lang::En, Comparison::Raw) => def.merchant_en.to_string(),
            (Lang::ZhCn, Comparison::Raw) => def.merchant_zh.to_string(),
            (Lang::En, Comparison::Category) => {
                format!("{}, compared with shops like yours", def.merchant_en)
            }
            (Lang::ZhCn, Comparison::Category) => format!("{}（与同类店铺相比）", def.merchant_zh),
            (Lang::En, Comparison::CategoryAndHistory) => format!(
                "{}, compared with shops like yours that have been trading about as long",
                def.merchant_en
            ),
            (Lang::ZhCn, Comparison::CategoryAndHistory) => {
                format!("{}（与经营时间相近的同类店铺相比）", def.merchant_zh)
            }
        }
    };
    let mut scored: Vec<(f64, (FeatureId, Comparison))> = contributions
        .iter()
        .filter(|c| c.best_points - c.worst_points > 1e-9)
        .map(|c| {
            (
                (c.points - c.worst_points) / (c.best_points - c.worst_points),
                (c.feature, c.comparison),
            )
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let helps = scored
        .iter()
        .filter(|(r, _)| *r >= 0.75)
        .take(3)
        .map(|(_, f)| words(*f))
        .collect();
    let hurts = scored
        .iter()
        .rev()
        .filter(|(r, _)| *r <= 0.5)
        .take(3)
        .map(|(_, f)| words(*f))
        .collect();
    (helps, hurts)
}

/// Features a merchant can change by how they trade. Never tenure, region or category.
pub const ACTIONABLE: [FeatureId; 8] = [
    FeatureId::ActiveDayShare90d,
    FeatureId::DaysSinceLastSale,
    FeatureId::LongestGapDays180d,
    FeatureId::RefundShare90d,
    FeatureId::ChargebackShare180d,
    FeatureId::DistinctPayers90d,
    FeatureId::RepeatPayerSalesShare90d,
    FeatureId::WeeklyNetSalesCv26w,
];

/// One change that, made alone, improves the outcome (checked by re-scoring).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NextStep {
    pub feature: String,
    /// The value now (`null` when it is missing).
    pub current: Option<f64>,
    /// The value to reach.
    pub target: f64,
    /// What re-scoring with the change gives.
    pub new_decision: Decision,
    pub new_score: f64,
    /// The step in the merchant's language.
    pub text: String,
}

/// The outcome of scoring: the decision and the score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    pub decision: Decision,
    pub score: f64,
}

impl Outcome {
    /// A better decision, or the same decision with a higher score.
    fn beats(&self, other: &Outcome) -> bool {
        self.decision < other.decision
            || (self.decision == other.decision && self.score > other.score + 1e-9)
    }
}

/// Finds next steps: for each actionable feature, the nearest candidate value (in the better
/// direction) whose re-scored outcome beats the current one. Steps that improve the decision come
/// first; if no single change does, steps that raise the score are offered. At most `max`.
pub fn next_steps<F>(
    features: &FeatureVector,
    candidates: &[(FeatureId, Vec<FeatureValue>)],
    current: Outcome,
    rescore: F,
    lang: Lang,
    max: usize,
) -> Vec<NextStep>
where
    F: Fn(&FeatureVector) -> Outcome,
{
    let mut found: Vec<(bool, NextStep)> = Vec::new();
    for (id, values) in candidates.iter().filter(|(id, _)| ACTIONABLE.contains(id)) {
        // Per feature: the nearest value that improves the decision, else the nearest that
        // raises the score.
        let mut raises_score = None;
        let mut improves_decision = None;
        for value in values {
            let Some(target) = value.as_f64() else {
                continue;
            };
            let outcome = rescore(&features.with(*id, *value));
            if outcome.decision < current.decision {
                improves_decision = Some((target, outcome));
                break;
            }
            if raises_score.is_none() && outcome.beats(&current) {
                raises_score = Some((target, outcome));
            }
        }
        let better_decision = improves_decision.is_some();
        if let Some((target, outcome)) = improves_decision.or(raises_score) {
            let now = features.get(*id).as_f64();
            found.push((
                better_decision,
                NextStep {
                    feature: CATALOG[*id as usize].name.to_string(),
                    current: now,
                    target,
                    new_decision: outcome.decision,
                    new_score: outcome.score,
                    text: step_text(*id, now, target, lang),
                },
            ));
        }
    }
    let improves_decision = found.iter().any(|(d, _)| *d);
    found
        .into_iter()
        .filter(|(d, _)| *d || !improves_decision)
        .map(|(_, s)| s)
        .take(max)
        .collect()
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// A concrete step toward `target`, in the merchant's language.
pub fn step_text(id: FeatureId, current: Option<f64>, target: f64, lang: Lang) -> String {
    let now = |f: &dyn Fn(f64) -> String| current.map(f).unwrap_or_else(|| "—".to_string());
    match (id, lang) {
        (FeatureId::ActiveDayShare90d, Lang::En) => format!(
            "Open and take payments on at least {} of every 90 days (now {}).",
            (target * 90.0).ceil(),
            now(&|c| format!("{}", (c * 90.0).round()))
        ),
        (FeatureId::ActiveDayShare90d, Lang::ZhCn) => format!(
            "每90天中至少有{}天营业并收款（目前为{}天）。",
            (target * 90.0).ceil(),
            now(&|c| format!("{}", (c * 90.0).round()))
        ),
        (FeatureId::DaysSinceLastSale, Lang::En) => format!(
            "Make a sale at least every {target:.0} days; your last was {} days ago.",
            now(&|c| format!("{c:.0}"))
        ),
        (FeatureId::DaysSinceLastSale, Lang::ZhCn) => format!(
            "至少每{target:.0}天做成一笔生意；您上一次成交是在{}天前。",
            now(&|c| format!("{c:.0}"))
        ),
        (FeatureId::LongestGapDays180d, Lang::En) => format!(
            "Avoid closing for more than {target:.0} days in a row (your longest break was {} days).",
            now(&|c| format!("{c:.0}"))
        ),
        (FeatureId::LongestGapDays180d, Lang::ZhCn) => format!(
            "避免连续停业超过{target:.0}天（您最长一次停业{}天）。",
            now(&|c| format!("{c:.0}"))
        ),
        (FeatureId::RefundShare90d, Lang::En) => format!(
            "Keep refunds under {} of your sales (now {}).",
            pct(target),
            now(&pct)
        ),
        (FeatureId::RefundShare90d, Lang::ZhCn) => format!(
            "把退款控制在销售额的{}以内（目前为{}）。",
            pct(target),
            now(&pct)
        ),
        (FeatureId::ChargebackShare180d, Lang::En) => format!(
            "Settle disputes with customers before they reach the platform: keep disputed payments under {} of sales (now {}).",
            pct(target),
            now(&pct)
        ),
        (FeatureId::ChargebackShare180d, Lang::ZhCn) => format!(
            "在顾客向平台投诉前先与顾客协商解决：把被追回的金额控制在销售额的{}以内（目前为{}）。",
            pct(target),
            now(&pct)
        ),
        (FeatureId::DistinctPayers90d, Lang::En) => format!(
            "Serve at least {target:.0} different customers over three months (now {}).",
            now(&|c| format!("{c:.0}"))
        ),
        (FeatureId::DistinctPayers90d, Lang::ZhCn) => format!(
            "三个月内至少为{target:.0}位不同的顾客服务（目前为{}位）。",
            now(&|c| format!("{c:.0}"))
        ),
        (FeatureId::RepeatPayerSalesShare90d, Lang::En) => format!(
            "Bring customers back: earn at least {} of sales from returning customers (now {}).",
            pct(target),
            now(&pct)
        ),
        (FeatureId::RepeatPayerSalesShare90d, Lang::ZhCn) => format!(
            "留住回头客：让回头客带来至少{}的销售额（目前为{}）。",
            pct(target),
            now(&pct)
        ),
        (FeatureId::WeeklyNetSalesCv26w, Lang::En) => format!(
            "Keep your weekly sales steadier: a typical swing under {} of an average week (now {}).",
            pct(target),
            now(&pct)
        ),
        (FeatureId::WeeklyNetSalesCv26w, Lang::ZhCn) => format!(
            "让每周的销售额更平稳：波动不超过平均每周销售额的{}（目前为{}）。",
            pct(target),
            now(&pct)
        ),
        (_, Lang::En) => format!(
            "Improve {} to {target:.2}.",
            CATALOG[id as usize].merchant_en
        ),
        (_, Lang::ZhCn) => format!(
            "改善{}，达到{target:.2}。",
            CATALOG[id as usize].merchant_zh
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channel, Currency, PaymentKind};
    use crate::features::{MerchantProfile, PaymentFact, compute};
    use chrono::{Duration, NaiveDate, TimeZone, Utc};

    #[test]
    fn accept_language_picks_the_best_supported_language() {
        assert_eq!(Lang::negotiate(None), Lang::En);
        assert_eq!(Lang::negotiate(Some("zh-CN")), Lang::ZhCn);
        assert_eq!(
            Lang::negotiate(Some("zh-Hans-CN,zh;q=0.9,en;q=0.8")),
            Lang::ZhCn
        );
        assert_eq!(Lang::negotiate(Some("fr-FR, en;q=0.5, zh;q=0.4")), Lang::En);
        assert_eq!(Lang::negotiate(Some("fr-FR")), Lang::En);
        assert_eq!(Lang::negotiate(Some("en;q=0.1, zh-CN;q=0.9")), Lang::ZhCn);
    }

    #[test]
    fn every_actionable_feature_has_a_step_in_both_languages() {
        for id in ACTIONABLE {
            let en = step_text(id, Some(0.5), 0.8, Lang::En);
            let zh = step_text(id, Some(0.5), 0.8, Lang::ZhCn);
            assert!(!en.starts_with("Improve"), "{en}");
            assert!(!zh.starts_with("改善"), "{zh}");
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{zh}"
            );
        }
    }

    #[test]
    fn reasons_are_the_four_largest_shortfalls() {
        let c = |feature, points, best| Contribution {
            feature,
            comparison: Comparison::Raw,
            points,
            best_points: best,
            worst_points: -20.0,
        };
        let contributions = [
            c(FeatureId::NetSales30d, 10.0, 30.0),
            c(FeatureId::ActiveDayShare90d, 0.0, 25.0),
            c(FeatureId::RefundShare90d, 5.0, 6.0),
            c(FeatureId::DistinctPayers90d, 12.0, 12.0),
            c(FeatureId::DaysOfHistory, -3.0, 9.0),
            c(FeatureId::WeeklyNetSalesCv26w, 1.0, 4.0),
        ];
        let r = reasons(&contributions);
        let codes: Vec<&str> = r.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "R-ACTIVE_DAY_SHARE_90D",
                "R-NET_SALES_30D",
                "R-DAYS_OF_HISTORY",
                "R-WEEKLY_NET_SALES_CV_26W"
            ]
        );
        assert_eq!(r[0].points_below_best, 25.0);
    }

    #[test]
    fn a_peer_relative_reason_names_the_input_and_the_comparison() {
        let c = Contribution {
            feature: FeatureId::RepeatPayerSalesShare90d,
            comparison: Comparison::Category,
            points: 10.0,
            best_points: 40.0,
            worst_points: 0.0,
        };
        let r = reasons(&[c]);
        assert_eq!(r[0].code, "R-REPEAT_PAYER_SALES_SHARE_90D_VS_CATEGORY");
        assert_eq!(r[0].feature, "repeat_payer_sales_share_90d_vs_category");
        assert!(
            r[0].text
                .contains("compared with merchants of the same category"),
            "{}",
            r[0].text
        );
        let (_, hurts) = helps_and_hurts(&[c], Lang::ZhCn);
        assert!(hurts[0].ends_with("（与同类店铺相比）"), "{hurts:?}");
        let (_, hurts) = helps_and_hurts(&[c], Lang::En);
        assert!(
            hurts[0].ends_with("compared with shops like yours"),
            "{hurts:?}"
        );
        // peers also grouped by days of history: both say so
        let c = Contribution {
            comparison: Comparison::CategoryAndHistory,
            ..c
        };
        assert!(
            reasons(&[c])[0]
                .text
                .contains("of the same category that have traded about as long"),
            "{:?}",
            reasons(&[c])
        );
        let (_, hurts) = helps_and_hurts(&[c], Lang::ZhCn);
        assert!(
            hurts[0].ends_with("（与经营时间相近的同类店铺相比）"),
            "{hurts:?}"
        );
        let (_, hurts) = helps_and_hurts(&[c], Lang::En);
        assert!(
            hurts[0].ends_with("shops like yours that have been trading about as long"),
            "{hurts:?}"
        );
    }

    /// A toy scorer: approve once the merchant trades on at least 80% of days, refer otherwise.
    #[test]
    fn next_steps_are_checked_by_rescoring() {
        let cny = Currency::parse("CNY").unwrap();
        let as_of = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        // a sale every other day for 200 days: active on half the days
        let facts: Vec<PaymentFact> = (1..=100)
            .map(|d| PaymentFact {
                at_micros: (as_of - Duration::days(2 * d) + Duration::hours(12)).timestamp_micros(),
                amount_minor: 5_000,
                kind: PaymentKind::Sale,
                channel: Channel::QrCode,
                payer: d as u64 % 7,
            })
            .collect();
        let profile = MerchantProfile {
            onboarded_on: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            currency: cny,
        };
        let features = compute(&profile, &facts, as_of);
        let rescore = |f: &FeatureVector| {
            let active = f.get(FeatureId::ActiveDayShare90d).as_f64().unwrap_or(0.0);
            Outcome {
                decision: if active >= 0.8 {
                    Decision::Approve
                } else {
                    Decision::Refer
                },
                score: 500.0 + active * 100.0,
            }
        };
        let current = rescore(&features);
        let candidates = vec![
            (
                FeatureId::ActiveDayShare90d,
                vec![
                    FeatureValue::Ratio(0.6),
                    FeatureValue::Ratio(0.8),
                    FeatureValue::Ratio(0.9),
                ],
            ),
            (FeatureId::DaysOfHistory, vec![FeatureValue::Count(999)]),
        ];
        let steps = next_steps(&features, &candidates, current, rescore, Lang::En, 3);
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert_eq!(steps[0].feature, "active_day_share_90d");
        assert_eq!(
            steps[0].target, 0.8,
            "the nearest value that changes the decision"
        );
        assert_eq!(steps[0].new_decision, Decision::Approve);
        assert!(
            steps[0].text.contains("72 of every 90 days"),
            "{}",
            steps[0].text
        );
    }
}
