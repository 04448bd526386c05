//! The lending policy: from a risk grade and a merchant's recent sales to approve / refer /
//! decline, a credit limit in exact money, an indicative price and a repayment share. Loaded from
//! a versioned TOML file (the default, `policy-v1.toml`, is compiled in).
//!
//! Rounding, stated once: the limit is `min(cap, multiple × average monthly net sales)` where the
//! average is net sales of the last 180 days divided by 6, computed exactly in `Decimal`, then
//! rounded **down** to a multiple of `limit_step`. The repayment share is rounded **up** to a
//! whole percent, so that the suggested repayments always cover the amount due.

use crate::domain::{Currency, Money};
use crate::features::{FeatureId, FeatureValue, FeatureVector};
use anyhow::{Context, bail};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;

pub const DEFAULT_POLICY: &str = include_str!("policy-v1.toml");

/// A risk grade, A (safest) to E.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum Grade {
    A,
    B,
    C,
    D,
    E,
}

impl Grade {
    pub const ALL: [Grade; 5] = [Grade::A, Grade::B, Grade::C, Grade::D, Grade::E];
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl FromStr for Grade {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "A" => Ok(Grade::A),
            "B" => Ok(Grade::B),
            "C" => Ok(Grade::C),
            "D" => Ok(Grade::D),
            "E" => Ok(Grade::E),
            other => Err(format!("{other:?} is not a grade (A to E)")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Refer,
    Decline,
}

impl Decision {
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Refer => "refer",
            Decision::Decline => "decline",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradeTerms {
    pub decision: Decision,
    pub cap: Decimal,
    pub sales_multiple: Decimal,
    pub apr: Decimal,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Knockouts {
    pub no_sales_days: u32,
    pub max_chargeback_share: Decimal,
    pub min_quarter_on_quarter: Decimal,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThinFile {
    pub min_history_days: u32,
    pub starter_limit: Decimal,
    pub apr: Decimal,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repayment {
    pub min_share: Decimal,
    pub max_share: Decimal,
}

/// A lending policy, as loaded and checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub version: String,
    pub currency: String,
    pub limit_step: Decimal,
    pub term_days: u32,
    pub grades: BTreeMap<Grade, GradeTerms>,
    pub knockouts: Knockouts,
    pub thin_file: ThinFile,
    pub repayment: Repayment,
}

/// A rule that fired, by its stable name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Knockout {
    /// `no_trading_history`, `no_recent_sales`, `high_chargebacks`, `sales_collapse`.
    #[schema(example = "no_recent_sales")]
    pub rule: String,
    /// What was seen, in words.
    #[schema(example = "no sale in the last 30 days (last sale 41 days ago)")]
    pub detail: String,
    /// What the rule does: `decline` or `refer`.
    pub effect: Decision,
}

/// What the policy needs besides the grade.
#[derive(Debug, Clone)]
pub struct PolicyInput<'a> {
    pub grade: Grade,
    pub features: &'a FeatureVector,
    /// Net sales of the 180 days before `as_of`, in minor units (for the average month).
    pub net_sales_180d_minor: i64,
    pub currency: Currency,
    /// Whether the merchant has any payment before `as_of`.
    pub has_history: bool,
    pub requested: Option<Money>,
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    pub decision: Decision,
    pub credit_limit: Money,
    /// The requested amount, capped at the limit (the limit if nothing was requested).
    pub offered: Money,
    pub indicative_apr: Decimal,
    /// Share of daily net sales that repays `offered` with interest over the term; `None` when
    /// there is nothing to repay or no sales to repay from.
    pub suggested_repayment_share: Option<Decimal>,
    pub knockouts: Vec<Knockout>,
    /// The thin-file path was taken: a starter limit instead of a decline.
    pub thin_file: bool,
}

impl Policy {
    /// The compiled-in default policy.
    pub fn default_policy() -> Policy {
        // The default is part of the binary and checked by a unit test.
        Policy::from_toml(DEFAULT_POLICY)
            .unwrap_or_else(|e| panic!("the built-in policy is invalid: {e:#}"))
    }

    pub fn from_toml(text: &str) -> anyhow::Result<Policy> {
        let policy: Policy = toml::from_str(text).context("parsing the policy")?;
        policy.check()?;
        Ok(policy)
    }

    pub fn load(path: &std::path::Path) -> anyhow::Result<Policy> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Policy::from_toml(&text).with_context(|| format!("in {}", path.display()))
    }

    fn check(&self) -> anyhow::Result<()> {
        for g in Grade::ALL {
            let Some(t) = self.grades.get(&g) else {
                bail!("grade {g} has no terms")
            };
            if t.cap < Decimal::ZERO || t.sales_multiple < Decimal::ZERO || t.apr < Decimal::ZERO {
                bail!("grade {g}: cap, sales_multiple and apr must not be negative");
            }
        }
        if self.limit_step <= Decimal::ZERO {
            bail!("limit_step must be positive, got {}", self.limit_step);
        }
        if self.term_days == 0 {
            bail!("term_days must be positive");
        }
        if !(Decimal::ZERO < self.repayment.min_share
            && self.repayment.min_share <= self.repayment.max_share
            && self.repayment.max_share <= Decimal::ONE)
        {
            bail!("repayment shares must satisfy 0 < min_share <= max_share <= 1");
        }
        Currency::parse(&self.currency).map_err(|e| anyhow::anyhow!("currency: {e}"))?;
        Ok(())
    }

    fn terms(&self, g: Grade) -> &GradeTerms {
        // check() guarantees every grade has terms.
        &self.grades[&g]
    }

    /// Rounds down to the limit step, never below zero.
    fn round_limit(&self, amount: Decimal) -> Decimal {
        if amount <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        (amount / self.limit_step).trunc() * self.limit_step
    }

    fn money(&self, amount: Decimal, currency: Currency) -> Money {
        // Limits are whole multiples of the step and far inside i64 minor units.
        Money::from_decimal(
            amount.round_dp_with_strategy(currency.exponent(), RoundingStrategy::ToZero),
            currency,
        )
        .unwrap_or_else(|_| Money::from_minor(0, currency))
    }

    /// Applies the policy.
    pub fn decide(&self, input: &PolicyInput<'_>) -> Terms {
        let f = |id: FeatureId| input.features.get(id).as_f64();
        let currency = input.currency;
        let zero = Money::from_minor(0, currency);
        let mut knockouts = Vec::new();
        if !input.has_history {
            knockouts.push(Knockout {
                rule: "no_trading_history".into(),
                detail: "no payment is recorded for this merchant yet".into(),
                effect: Decision::Decline,
            });
        } else {
            let since = f(FeatureId::DaysSinceLastSale);
            if since.is_none_or(|d| d >= f64::from(self.knockouts.no_sales_days)) {
                knockouts.push(Knockout {
                    rule: "no_recent_sales".into(),
                    detail: match since {
                        Some(d) => format!(
                            "no sale in the last {} days (last sale {d:.0} days ago)",
                            self.knockouts.no_sales_days
                        ),
                        None => {
                            format!("no sale in the last {} days", self.knockouts.no_sales_days)
                        }
                    },
                    effect: Decision::Decline,
                });
            }
            let max_cb = self
                .knockouts
                .max_chargeback_share
                .to_f64()
                .unwrap_or(f64::MAX);
            if let Some(share) = f(FeatureId::ChargebackShare180d).filter(|s| *s > max_cb) {
                knockouts.push(Knockout {
                    rule: "high_chargebacks".into(),
                    detail: format!(
                        "chargebacks were {:.1}% of sales over 180 days (limit {:.1}%)",
                        share * 100.0,
                        max_cb * 100.0
                    ),
                    effect: Decision::Refer,
                });
            }
            let min_qoq = self
                .knockouts
                .min_quarter_on_quarter
                .to_f64()
                .unwrap_or(0.0);
            if let Some(growth) = f(FeatureId::NetSalesGrowth90d).filter(|g| 1.0 + *g < min_qoq) {
                knockouts.push(Knockout {
                    rule: "sales_collapse".into(),
                    detail: format!(
                        "net sales of the last 90 days fell {:.0}% against the 90 days before",
                        -growth * 100.0
                    ),
                    effect: Decision::Refer,
                });
            }
        }
        let history_days = match input.features.get(FeatureId::DaysOfHistory) {
            FeatureValue::Count(d) => d,
            other => other.as_f64().map(|d| d as i64).unwrap_or(0),
        };
        let thin = input.has_history && history_days < i64::from(self.thin_file.min_history_days);
        let grade_terms = self.terms(input.grade);
        let average_month =
            Decimal::new(input.net_sales_180d_minor, currency.exponent()) / Decimal::from(6);
        let by_sales =
            self.round_limit((average_month * grade_terms.sales_multiple).min(grade_terms.cap));
        let (mut decision, limit, apr) = if thin {
            // A short history says little either way, so whatever the grade: a small starter
            // limit to build a record with, never a decline for being new.
            (
                Decision::Approve,
                self.round_limit(self.thin_file.starter_limit),
                self.thin_file.apr,
            )
        } else {
            (grade_terms.decision, by_sales, grade_terms.apr)
        };
        if decision != Decision::Decline && limit.is_zero() && !thin {
            knockouts.push(Knockout {
                rule: "no_sales_to_lend_against".into(),
                detail: "net sales of the last 6 months give no limit".into(),
                effect: Decision::Decline,
            });
        }
        for k in &knockouts {
            decision = decision.max(k.effect);
        }
        let limit = if decision == Decision::Decline {
            Decimal::ZERO
        } else {
            limit
        };
        let credit_limit = self.money(limit, currency);
        let offered = match input.requested {
            Some(r) if r.amount() < limit => r,
            _ => credit_limit,
        };
        let apr = if decision == Decision::Decline {
            Decimal::ZERO
        } else {
            apr
        };
        Terms {
            decision,
            credit_limit,
            offered: if decision == Decision::Decline {
                zero
            } else {
                offered
            },
            indicative_apr: apr,
            suggested_repayment_share: self.repayment_share(
                offered.amount(),
                apr,
                input.net_sales_180d_minor,
                currency,
            ),
            knockouts,
            thin_file: thin,
        }
    }

    /// The share of daily net sales that repays `amount` plus simple interest at `apr` over the
    /// term, rounded up to a whole percent and kept within the policy's bounds.
    fn repayment_share(
        &self,
        amount: Decimal,
        apr: Decimal,
        net_180_minor: i64,
        currency: Currency,
    ) -> Option<Decimal> {
        if amount <= Decimal::ZERO || net_180_minor <= 0 {
            return None;
        }
        let term = Decimal::from(self.term_days);
        let due = amount * (Decimal::ONE + apr * term / Decimal::from(365));
        let daily = Decimal::new(net_180_minor, currency.exponent()) / Decimal::from(180);
        let share =
            (due / (daily * term)).round_dp_with_strategy(2, RoundingStrategy::AwayFromZero);
        Some(share.clamp(self.repayment.min_share, self.repayment.max_share))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Channel;
    use crate::domain::PaymentKind;
    use crate::features::{History, MerchantProfile, PaymentFact, compute};
    use chrono::{DateTime, Utc};
    use chrono::{Duration, NaiveDate, TimeZone};

    fn cny() -> Currency {
        Currency::parse("CNY").unwrap()
    }

    fn as_of() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
    }

    /// One sale of `fen` every day at noon for `days` days before `as_of`, from 20 payers.
    fn daily_sales(days: i64, fen: i64) -> Vec<PaymentFact> {
        (1..=days)
            .map(|d| PaymentFact {
                at_micros: (as_of() - Duration::days(d) + Duration::hours(12)).timestamp_micros(),
                amount_minor: fen,
                kind: PaymentKind::Sale,
                channel: Channel::QrCode,
                payer: (d % 20) as u64,
            })
            .collect()
    }

    fn decide(grade: Grade, facts: &[PaymentFact], requested: Option<&str>) -> Terms {
        let profile = MerchantProfile {
            onboarded_on: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            currency: cny(),
        };
        let features = compute(&profile, facts, as_of());
        Policy::default_policy().decide(&PolicyInput {
            grade,
            features: &features,
            net_sales_180d_minor: History::from_facts(facts, as_of()).net_sales(180),
            currency: cny(),
            has_history: !facts.is_empty(),
            requested: requested.map(|r| Money::parse(r, cny()).unwrap()),
        })
    }

    #[test]
    fn the_built_in_policy_is_valid() {
        assert_eq!(Policy::default_policy().version, "policy-2026.11-v1");
    }

    /// 100.00 a day for 200 days: the last 180 days hold 18,000.00, an average month 3,000.00;
    /// grade A lends 1.5 months = 4,500.00 (under the 50,000 cap, already a multiple of 100).
    #[test]
    fn the_limit_is_a_multiple_of_the_average_month_within_the_cap() {
        let t = decide(Grade::A, &daily_sales(200, 10_000), None);
        assert_eq!(t.decision, Decision::Approve);
        assert_eq!(t.credit_limit, Money::parse("4500", cny()).unwrap());
        assert_eq!(t.indicative_apr, Decimal::from_str("0.12").unwrap());
        assert!(t.knockouts.is_empty());
    }

    /// 1,000.00 at 12% for 90 days is due as 1,000 × (1 + 0.12 × 90/365) = 1,029.59; daily
    /// sales of 100.00 over 90 days make 9,000.00; 1,029.59 / 9,000 = 0.1144 → 0.12 (rounded up).
    #[test]
    fn a_request_under_the_limit_is_offered_with_its_repayment_share() {
        let t = decide(Grade::A, &daily_sales(200, 10_000), Some("1000.00"));
        assert_eq!(t.offered, Money::parse("1000.00", cny()).unwrap());
        assert_eq!(
            t.suggested_repayment_share,
            Some(Decimal::from_str("0.12").unwrap())
        );
    }

    #[test]
    fn a_request_over_the_limit_is_answered_with_the_limit() {
        let t = decide(Grade::A, &daily_sales(200, 10_000), Some("99999.00"));
        assert_eq!(t.decision, Decision::Approve);
        assert_eq!(t.offered, t.credit_limit);
        assert_eq!(
            t.suggested_repayment_share,
            Some(Decimal::from_str("0.30").unwrap()),
            "capped at max_share"
        );
    }

    /// 68.59 a day for 180 days = 12,346.20; / 6 = 2,057.70 a month; × 1.2 (grade B) = 2,469.24,
    /// rounded down to the step of 100 = 2,400.
    #[test]
    fn limits_round_down_to_the_step() {
        let t = decide(Grade::B, &daily_sales(200, 6_859), None);
        assert_eq!(t.credit_limit, Money::parse("2400", cny()).unwrap());
    }

    #[test]
    fn grades_map_to_decisions() {
        assert_eq!(
            decide(Grade::D, &daily_sales(200, 10_000), None).decision,
            Decision::Refer
        );
        let e = decide(Grade::E, &daily_sales(200, 10_000), None);
        assert_eq!(e.decision, Decision::Decline);
        assert_eq!(e.credit_limit.minor(), 0);
    }

    #[test]
    fn no_sale_in_thirty_days_declines_by_name() {
        let mut facts = daily_sales(200, 10_000);
        facts.retain(|f| f.at_micros < (as_of() - Duration::days(35)).timestamp_micros());
        let t = decide(Grade::A, &facts, None);
        assert_eq!(t.decision, Decision::Decline);
        assert_eq!(t.knockouts[0].rule, "no_recent_sales");
    }

    #[test]
    fn heavy_chargebacks_refer_to_a_person() {
        let mut facts = daily_sales(200, 10_000);
        facts[3].kind = PaymentKind::Chargeback;
        facts[4].kind = PaymentKind::Chargeback;
        let t = decide(Grade::A, &facts, None);
        assert_eq!(t.decision, Decision::Refer);
        assert!(
            t.knockouts.iter().any(|k| k.rule == "high_chargebacks"),
            "{:?}",
            t.knockouts
        );
    }

    #[test]
    fn a_thin_file_gets_a_starter_limit_not_a_decline() {
        let t = decide(Grade::E, &daily_sales(40, 10_000), None);
        assert!(t.thin_file);
        assert_eq!(t.decision, Decision::Approve);
        assert_eq!(t.credit_limit, Money::parse("2000", cny()).unwrap());
    }

    #[test]
    fn no_history_at_all_is_a_decline_with_its_reason() {
        let t = decide(Grade::C, &[], None);
        assert_eq!(t.decision, Decision::Decline);
        assert_eq!(t.knockouts[0].rule, "no_trading_history");
    }

    #[test]
    fn net_sales_see_nothing_at_or_after_as_of() {
        let mut facts = daily_sales(10, 100);
        facts.push(PaymentFact {
            at_micros: as_of().timestamp_micros(),
            ..facts[0]
        });
        assert_eq!(History::from_facts(&facts, as_of()).net_sales(180), 1_000);
    }
}
