//! The feature catalog, version `v1`: what each feature is, in which unit, over which window,
//! which way it points, and when it is missing.
//!
//! # Conventions shared by every feature
//!
//! * **Point in time.** Features as of `T` use only payments with `occurred_at < T`. A payment at
//!   exactly `T` or later is ignored.
//! * **Days are 24-hour blocks counted back from `as_of`.** Day `d` (d = 0, 1, 2, …) is the
//!   half-open interval `[as_of − (d+1)·24h, as_of − d·24h)`. A window of `N` days is days
//!   `0..N`, i.e. `[as_of − N·24h, as_of)`. No time zone enters the computation; when `as_of` is a
//!   midnight (the service scores as of `00:00 UTC` of a date, see [`super::as_of_start_of_day`]),
//!   the blocks are exactly UTC calendar days.
//! * **Weeks** are 7-day blocks counted back the same way: week `k` = days `7k..7k+7`, i.e.
//!   `[as_of − 7(k+1) days, as_of − 7k days)`. 26 weeks = 182 days.
//! * **Months** are 30-day blocks counted back: month `m` = days `30m..30m+30`. 12 months = 360
//!   days. (Calendar months have unequal lengths and would make month-on-month changes depend on
//!   the calendar; fixed blocks do not.)
//! * **Net sales** = sales − refunds − chargebacks, each counted on the day it occurred, in exact
//!   integer minor units (fen). It can be negative. **Gross sales** = the sum of sale amounts only.
//! * **Observation start** = the earlier of `onboarded_on` (00:00 UTC) and the first payment
//!   before `as_of`. A window is *fully observed* when the observation start is at or before the
//!   window start. Level features (sums, counts, day shares, gaps) are missing when their window is
//!   not fully observed, because a partly observed window would understate them; a merchant who
//!   was on the platform for the whole window and sold nothing has a real zero, not a missing
//!   value. Ratios of amounts within one window do not need full observation and are missing only
//!   when their denominator is zero (or not positive, where stated).
//! * **Digital channels** are `qr_code`, `in_app` and `mini_program`; `pos` (card terminal) and
//!   `other` are not digital.

use serde::Serialize;
use utoipa::ToSchema;

/// Version of the catalog. Any change to a definition, a window or the list of features bumps it.
pub const CATALOG_VERSION: &str = "v1";

/// Feature family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Scale,
    Growth,
    Stability,
    Quality,
    Customers,
    Tenure,
    ChannelMix,
}

/// Unit of a feature value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// An exact amount in the merchant's currency (held as integer minor units, served as a
    /// decimal string with the currency).
    Money,
    /// A whole number of events or payers.
    Count,
    /// A whole number of days.
    Days,
    /// A dimensionless ratio (a share in `[0, 1]` unless stated otherwise).
    Ratio,
    /// A fraction of the mean per week (a relative slope).
    RelativePerWeek,
}

/// Expected direction of the relation between the feature and credit risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsSafer,
    HigherIsRiskier,
    NotMonotone,
}

/// Stable identifier of a feature; `FeatureId::X as usize` is its position in [`CATALOG`] and in
/// every [`super::FeatureVector`]. The doc comment of each variant is the precise definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeatureId {
    /// `net_sales_30d`: net sales (sales − refunds − chargebacks) over days `0..30`
    /// (`[as_of − 30d, as_of)`), exact minor units. Missing when the window is not fully observed.
    NetSales30d,
    /// `net_sales_90d`: as `net_sales_30d` over days `0..90`.
    NetSales90d,
    /// `net_sales_365d`: as `net_sales_30d` over days `0..365`.
    NetSales365d,
    /// `sales_count_90d`: number of payments of kind `sale` in days `0..90` (refunds and
    /// chargebacks are not subtracted). Missing when the window is not fully observed.
    SalesCount90d,
    /// `average_ticket_90d`: gross sales of days `0..90` divided by the number of sales in days
    /// `0..90`, rounded to the nearest minor unit (halves up). Missing when there is no sale in
    /// the window. Needs no full observation (it is a ratio within the window).
    AverageTicket90d,
    /// `net_sales_growth_90d`: `(N0 − N1) / N1` where `N0` = net sales of days `0..90` and `N1` =
    /// net sales of days `90..180`. Missing when days `0..180` are not fully observed or when
    /// `N1 ≤ 0` (no positive base to grow from).
    NetSalesGrowth90d,
    /// `weekly_net_sales_trend_26w`: least-squares slope of weekly net sales `y` on time `t`,
    /// over the 26 weeks `k = 0..26` with `t = 25 − k` (oldest week `t = 0`, latest `t = 25`),
    /// divided by the mean weekly net sales `ȳ`. Exactly: `26·Σ(2t−25)·y / (2925·Σy)`. A value
    /// of 0.02 means sales grow by 2 % of their mean each week. Missing when days `0..182` are not
    /// fully observed or `ȳ ≤ 0`.
    WeeklyNetSalesTrend26w,
    /// `weekly_net_sales_cv_26w`: population standard deviation (divide by 26) of the 26 weekly
    /// net sales divided by their mean. Missing when days `0..182` are not fully observed or the
    /// mean is `≤ 0`.
    WeeklyNetSalesCv26w,
    /// `active_day_share_90d`: number of days among `0..90` with at least one sale, divided by
    /// 90. Missing when the window is not fully observed.
    ActiveDayShare90d,
    /// `longest_gap_days_180d`: the longest run of consecutive days among `0..180` without any
    /// sale (a run touching either end of the window counts, so a merchant that stopped trading
    /// 40 days ago has at least 40). 0 if there is a sale every day; 180 if none at all. Missing
    /// when the window is not fully observed.
    LongestGapDays180d,
    /// `days_since_last_sale`: the day index `d` of the latest sale before `as_of`
    /// (`floor((as_of − t) / 24h)`; 0 = a sale in the last 24 hours). No window: looks back over
    /// the whole history. Missing when there is no sale before `as_of`.
    DaysSinceLastSale,
    /// `worst_monthly_drop_12m`: with `M_m` the net sales of month `m` (days `30m..30m+30`),
    /// `m = 0..12`, the largest relative drop `(M_{m+1} − M_m) / M_{m+1}` over the 11 pairs of
    /// consecutive months whose earlier month has `M_{m+1} > 0`. Positive = a drop (0.6 = sales
    /// fell by 60 %); it can be negative when every month grew, and above 1 when net sales turned
    /// negative. Missing when days `0..360` are not fully observed or no earlier month of any pair
    /// has positive net sales.
    WorstMonthlyDrop12m,
    /// `refund_share_90d`: refund amount / gross sales amount, both over days `0..90` (a refund
    /// counts on the day it occurred, whatever the sale it reverses, so the share can exceed 1
    /// when older sales are refunded). Missing when gross sales are 0.
    RefundShare90d,
    /// `chargeback_count_180d`: number of chargebacks in days `0..180`. Missing when the window is
    /// not fully observed.
    ChargebackCount180d,
    /// `chargeback_share_180d`: chargeback amount / gross sales amount over days `0..180` (can
    /// exceed 1, as for refunds). Missing when gross sales are 0.
    ChargebackShare180d,
    /// `distinct_payers_90d`: number of distinct payers (`payer_ref`) among the sales of days
    /// `0..90`. Missing when the window is not fully observed.
    DistinctPayers90d,
    /// `repeat_payer_sales_share_90d`: share of gross sales amount (days `0..90`) paid by repeat
    /// payers, a repeat payer being one with at least 2 sales in days `0..90`. Missing when gross
    /// sales are 0.
    RepeatPayerSalesShare90d,
    /// `top10_payer_sales_share_90d`: share of gross sales amount (days `0..90`) paid by the 10
    /// payers with the largest sales amount in that window (all payers if there are 10 or fewer,
    /// giving 1.0). Missing when gross sales are 0.
    Top10PayerSalesShare90d,
    /// `days_of_history`: `floor((as_of − first payment) / 24h)` where the first payment is the
    /// earliest payment of any kind before `as_of`. Missing when there is none.
    DaysOfHistory,
    /// `days_since_onboarding`: `floor((as_of − onboarded_on 00:00 UTC) / 24h)`. Missing when
    /// `onboarded_on` is after `as_of`.
    DaysSinceOnboarding,
    /// `channel_share_qr_code_90d`: share of gross sales amount of days `0..90` paid by QR code.
    /// Missing when gross sales are 0.
    ChannelShareQrCode90d,
    /// `channel_share_in_app_90d`: as above, paid in the payment app (`in_app`).
    ChannelShareInApp90d,
    /// `channel_share_mini_program_90d`: as above, paid through a mini program.
    ChannelShareMiniProgram90d,
    /// `digital_channel_share_90d`: as above, paid through any digital channel (`qr_code`,
    /// `in_app`, `mini_program`); the rest went through `pos` or `other`.
    DigitalChannelShare90d,
}

impl FeatureId {
    /// Every feature in catalog order.
    pub const ALL: [FeatureId; 24] = [
        FeatureId::NetSales30d,
        FeatureId::NetSales90d,
        FeatureId::NetSales365d,
        FeatureId::SalesCount90d,
        FeatureId::AverageTicket90d,
        FeatureId::NetSalesGrowth90d,
        FeatureId::WeeklyNetSalesTrend26w,
        FeatureId::WeeklyNetSalesCv26w,
        FeatureId::ActiveDayShare90d,
        FeatureId::LongestGapDays180d,
        FeatureId::DaysSinceLastSale,
        FeatureId::WorstMonthlyDrop12m,
        FeatureId::RefundShare90d,
        FeatureId::ChargebackCount180d,
        FeatureId::ChargebackShare180d,
        FeatureId::DistinctPayers90d,
        FeatureId::RepeatPayerSalesShare90d,
        FeatureId::Top10PayerSalesShare90d,
        FeatureId::DaysOfHistory,
        FeatureId::DaysSinceOnboarding,
        FeatureId::ChannelShareQrCode90d,
        FeatureId::ChannelShareInApp90d,
        FeatureId::ChannelShareMiniProgram90d,
        FeatureId::DigitalChannelShare90d,
    ];

    /// The catalog entry of this feature.
    pub fn def(self) -> &'static FeatureDef {
        &CATALOG[self as usize]
    }

    /// The stable name.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// Looks a feature up by its stable name.
    pub fn from_name(name: &str) -> Option<FeatureId> {
        CATALOG.iter().find(|d| d.name == name).map(|d| d.id)
    }
}

/// One catalog entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct FeatureDef {
    #[serde(skip)]
    pub id: FeatureId,
    /// Stable snake_case name, the key used everywhere (API, training data, explanations).
    pub name: &'static str,
    pub family: Family,
    pub description_en: &'static str,
    pub description_zh: &'static str,
    pub unit: Unit,
    /// Length of the look-back window in days (`[as_of − window_days, as_of)`); `null` for
    /// features that look back over the whole history.
    pub window_days: Option<u32>,
    pub direction: Direction,
    /// When the value is missing (never silently 0).
    pub missing_when_en: &'static str,
    pub missing_when_zh: &'static str,
    /// The same idea in plain words a merchant understands, for explanations.
    pub merchant_en: &'static str,
    pub merchant_zh: &'static str,
}

const NOT_OBSERVED_EN: &str =
    "the merchant was not yet on the platform (no onboarding and no payment) at the window start";
const NOT_OBSERVED_ZH: &str = "窗口开始时商户尚未入驻（既未开通也没有任何交易记录）";
const NO_SALES_90_EN: &str = "there is no sale in the last 90 days (division by zero)";
const NO_SALES_90_ZH: &str = "最近90天没有任何销售（分母为零）";

/// The catalog, in the order of [`FeatureId::ALL`].
pub static CATALOG: [FeatureDef; 24] = [
    FeatureDef {
        id: FeatureId::NetSales30d,
        name: "net_sales_30d",
        family: Family::Scale,
        description_en: "Net sales (sales minus refunds minus chargebacks) over the last 30 days.",
        description_zh: "最近30天的净销售额（销售额减去退款和拒付）。",
        unit: Unit::Money,
        window_days: Some(30),
        direction: Direction::HigherIsSafer,
        missing_when_en: NOT_OBSERVED_EN,
        missing_when_zh: NOT_OBSERVED_ZH,
        merchant_en: "how much you took in over the last month, after refunds",
        merchant_zh: "您最近一个月扣除退款后的收入",
    },
    FeatureDef {
        id: FeatureId::NetSales90d,
        name: "net_sales_90d",
        family: Family::Scale,
        description_en: "Net sales (sales minus refunds minus chargebacks) over the last 90 days.",
        description_zh: "最近90天的净销售额（销售额减去退款和拒付）。",
        unit: Unit::Money,
        window_days: Some(90),
        direction: Direction::HigherIsSafer,
        missing_when_en: NOT_OBSERVED_EN,
        missing_when_zh: NOT_OBSERVED_ZH,
        merchant_en: "how much you took in over the last three months, after refunds",
        merchant_zh: "您最近三个月扣除退款后的收入",
    },
    FeatureDef {
        id: FeatureId::NetSales365d,
        name: "net_sales_365d",
        family: Family::Scale,
        description_en: "Net sales (sales minus refunds minus chargebacks) over the last 365 days.",
        description_zh: "最近365天的净销售额（销售额减去退款和拒付）。",
        unit: Unit::Money,
        window_days: Some(365),
        direction: Direction::HigherIsSafer,
        missing_when_en: NOT_OBSERVED_EN,
        missing_when_zh: NOT_OBSERVED_ZH,
        merchant_en: "how much you took in over the last year, after refunds",
        merchant_zh: "您最近一年扣除退款后的收入",
    },
    FeatureDef {
        id: FeatureId::SalesCount90d,
        name: "sales_count_90d",
        family: Family::Scale,
        description_en: "Number of sales over the last 90 days.",
        description_zh: "最近90天的销售笔数。",
        unit: Unit::Count,
        window_days: Some(90),
        direction: Direction::HigherIsSafer,
        missing_when_en: NOT_OBSERVED_EN,
        missing_when_zh: NOT_OBSERVED_ZH,
        merchant_en: "how many payments you received over the last three months",
        merchant_zh: "您最近三个月收到的付款笔数",
    },
    FeatureDef {
        id: FeatureId::AverageTicket90d,
        name: "average_ticket_90d",
        family: Family::Scale,
        description_en: "Average sale amount over the last 90 days (gross sales / number of sales).",
        description_zh: "最近90天的平均客单价（销售总额 / 销售笔数）。",
        unit: Unit::Money,
        window_days: Some(90),
        direction: Direction::NotMonotone,
        missing_when_en: NO_SALES_90_EN,
        missing_when_zh: NO_SALES_90_ZH,
        merchant_en: "how much a customer spends with you in a typical purchase",
        merchant_zh: "顾客每次在您这里平均消费多少",
    },
    FeatureDef {
        id: FeatureId::NetSalesGrowth90d,
        name: "net_sales_growth_90d",
        family: Family::Growth,
        description_en: "Relative change of net sales in the last 90 days against the 90 days before.",
        description_zh: "最近90天净销售额相对于之前90天的变化率。",
        unit: Unit::Ratio,
        window_days: Some(180),
        direction: Direction::HigherIsSafer,
        missing_when_en: "the 180 days are not fully observed, or net sales of days 90 to 180 are zero or negative",
        missing_when_zh: "180天窗口未被完整观测，或第90至180天的净销售额为零或负数",
        merchant_en: "whether your sales in the last three months grew compared with the three months before",
        merchant_zh: "您最近三个月的销售额比之前三个月是增长还是下降",
    },
    FeatureDef {
        id: FeatureId::WeeklyNetSalesTrend26w,
        name: "weekly_net_sales_trend_26w",
        family: Family::Growth,
        description_en: "Least-squares slope of weekly net sales over the last 26 weeks, divided by the mean weekly net sales.",
        description_zh: "最近26周每周净销售额的最小二乘斜率，除以周均净销售额。",
        unit: Unit::RelativePerWeek,
        window_days: Some(182),
        direction: Direction::HigherIsSafer,
        missing_when_en: "the 182 days are not fully observed, or mean weekly net sales are zero or negative",
        missing_when_zh: "182天窗口未被完整观测，或周均净销售额为零或负数",
        merchant_en: "whether your weekly sales have been rising or falling over the last six months",
        merchant_zh: "近半年来您每周的销售额是在上升还是下降",
    },
    FeatureDef {
        id: FeatureId::WeeklyNetSalesCv26w,
        name: "weekly_net_sales_cv_26w",
        family: Family::Stability,
        description_en: "Coefficient of variation (standard deviation / mean) of weekly net sales over the last 26 weeks.",
        description_zh: "最近26周每周净销售额的变异系数（标准差 / 均值）。",
        unit: Unit::Ratio,
        window_days: Some(182),
        direction: Direction::HigherIsRiskier,
        missing_when_en: "the 182 days are not fully observed, or mean weekly net sales are zero or negative",
        missing_when_zh: "182天窗口未被完整观测，或周均净销售额为零或负数",
        merchant_en: "how much your sales swing from one week to the next",
        merchant_zh: "您每周销售额的起伏有多大",
    },
    FeatureDef {
        id: FeatureId::ActiveDayShare90d,
        name: "active_day_share_90d",
        family: Family::Stability,
        description_en: "Share of the last 90 days with at least one sale.",
        description_zh: "最近90天中至少有一笔销售的天数占比。",
        unit: Unit::Ratio,
        window_days: Some(90),
        direction: Direction::HigherIsSafer,
        missing_when_en: NOT_OBSERVED_EN,
        missing_when_zh: NOT_OBSERVED_ZH,
        merchant_en: "on how many days you made at least one sale",
        merchant_zh: "您有多少天至少做成了一笔生意",
    },
    FeatureDef {
        id: FeatureId::LongestGapDays180d,
        name: "longest_gap_days_180d",
        family: Family::Stability,
        description_en: "Longest run of consecutive days without any sale in the last 180 days.",
        description_zh: "最近180天中连续没有销售的最长天数。",
        unit: Unit::Days,
        window_days: Some(180),
        direction: Direction::HigherIsRiskier,
        missing_when_en: NOT_OBSERVED_EN,
        missing_when_zh: NOT_OBSERVED_ZH,
        merchant_en: "the longest stretch in the last six months when you made no sale",
        merchant_zh: "近半年来您连续没有生意的最长时间",
    },
    FeatureDef {
        id: FeatureId::DaysSinceLastSale,
        name: "days_since_last_sale",
        family: Family::Stability,
        description_en: "Days since the most recent sale (0 = a sale in the last 24 hours).",
        description_zh: "距最近一笔销售的天数（0表示最近24小时内有销售）。",
        unit: Unit::Days,
        window_days: None,
        direction: Direction::HigherIsRiskier,
        missing_when_en: "there is no sale at all before the scoring date",
        missing_when_zh: "评分日之前没有任何销售",
        merchant_en: "how long ago you last made a sale",
        merchant_zh: "您上一次成交是多久以前",
    },
    FeatureDef {
        id: FeatureId::WorstMonthlyDrop12m,
        name: "worst_monthly_drop_12m",
        family: Family::Stability,
        description_en: "Largest relative drop of net sales from one 30-day month to the next over the last 12 such months.",
        description_zh: "最近12个月（每月按30天计）中，净销售额环比下降的最大幅度。",
        unit: Unit::Ratio,
        window_days: Some(360),
        direction: Direction::HigherIsRiskier,
        missing_when_en: "the 360 days are not fully observed, or no month (other than the latest) has positive net sales",
        missing_when_zh: "360天窗口未被完整观测，或除最近一个月外没有任何一个月净销售额为正",
        merchant_en: "the sharpest fall in your sales from one month to the next over the last year",
        merchant_zh: "过去一年里您的月销售额最大的一次下滑",
    },
    FeatureDef {
        id: FeatureId::RefundShare90d,
        name: "refund_share_90d",
        family: Family::Quality,
        description_en: "Refunded amount as a share of gross sales amount over the last 90 days.",
        description_zh: "最近90天退款金额占销售总额的比例。",
        unit: Unit::Ratio,
        window_days: Some(90),
        direction: Direction::HigherIsRiskier,
        missing_when_en: NO_SALES_90_EN,
        missing_when_zh: NO_SALES_90_ZH,
        merchant_en: "how much of what you sold you had to give back as refunds",
        merchant_zh: "您的销售额中有多少退给了顾客",
    },
    FeatureDef {
        id: FeatureId::ChargebackCount180d,
        name: "chargeback_count_180d",
        family: Family::Quality,
        description_en: "Number of chargebacks over the last 180 days.",
        description_zh: "最近180天的拒付（争议退单）笔数。",
        unit: Unit::Count,
        window_days: Some(180),
        direction: Direction::HigherIsRiskier,
        missing_when_en: NOT_OBSERVED_EN,
        missing_when_zh: NOT_OBSERVED_ZH,
        merchant_en: "how many payments customers disputed with the payment platform",
        merchant_zh: "顾客向支付平台投诉并追回的付款笔数",
    },
    FeatureDef {
        id: FeatureId::ChargebackShare180d,
        name: "chargeback_share_180d",
        family: Family::Quality,
        description_en: "Chargeback amount as a share of gross sales amount over the last 180 days.",
        description_zh: "最近180天拒付金额占销售总额的比例。",
        unit: Unit::Ratio,
        window_days: Some(180),
        direction: Direction::HigherIsRiskier,
        missing_when_en: "there is no sale in the last 180 days (division by zero)",
        missing_when_zh: "最近180天没有任何销售（分母为零）",
        merchant_en: "how much money customers took back through disputes",
        merchant_zh: "顾客通过投诉追回的金额有多少",
    },
    FeatureDef {
        id: FeatureId::DistinctPayers90d,
        name: "distinct_payers_90d",
        family: Family::Customers,
        description_en: "Number of distinct payers among the sales of the last 90 days.",
        description_zh: "最近90天付款的不同顾客数。",
        unit: Unit::Count,
        window_days: Some(90),
        direction: Direction::HigherIsSafer,
        missing_when_en: NOT_OBSERVED_EN,
        missing_when_zh: NOT_OBSERVED_ZH,
        merchant_en: "how many different customers paid you over the last three months",
        merchant_zh: "最近三个月有多少位不同的顾客向您付款",
    },
    FeatureDef {
        id: FeatureId::RepeatPayerSalesShare90d,
        name: "repeat_payer_sales_share_90d",
        family: Family::Customers,
        description_en: "Share of gross sales amount (last 90 days) from payers with at least two sales in those 90 days.",
        description_zh: "最近90天内，至少消费两次的回头客贡献的销售额占比。",
        unit: Unit::Ratio,
        window_days: Some(90),
        direction: Direction::HigherIsSafer,
        missing_when_en: NO_SALES_90_EN,
        missing_when_zh: NO_SALES_90_ZH,
        merchant_en: "how much of your business comes from customers who come back",
        merchant_zh: "您的生意有多少来自回头客",
    },
    FeatureDef {
        id: FeatureId::Top10PayerSalesShare90d,
        name: "top10_payer_sales_share_90d",
        family: Family::Customers,
        description_en: "Share of gross sales amount (last 90 days) from the 10 payers who spent the most.",
        description_zh: "最近90天消费金额最高的10位顾客贡献的销售额占比（集中度）。",
        unit: Unit::Ratio,
        window_days: Some(90),
        direction: Direction::HigherIsRiskier,
        missing_when_en: NO_SALES_90_EN,
        missing_when_zh: NO_SALES_90_ZH,
        merchant_en: "how much your business depends on a handful of big customers",
        merchant_zh: "您的生意在多大程度上依赖少数几位大客户",
    },
    FeatureDef {
        id: FeatureId::DaysOfHistory,
        name: "days_of_history",
        family: Family::Tenure,
        description_en: "Days between the first recorded payment and the scoring date.",
        description_zh: "从第一笔交易记录到评分日的天数。",
        unit: Unit::Days,
        window_days: None,
        direction: Direction::HigherIsSafer,
        missing_when_en: "there is no payment at all before the scoring date",
        missing_when_zh: "评分日之前没有任何交易记录",
        merchant_en: "how long you have been taking payments with us",
        merchant_zh: "您使用我们收款有多长时间了",
    },
    FeatureDef {
        id: FeatureId::DaysSinceOnboarding,
        name: "days_since_onboarding",
        family: Family::Tenure,
        description_en: "Days between onboarding on the payment platform and the scoring date.",
        description_zh: "从入驻支付平台到评分日的天数。",
        unit: Unit::Days,
        window_days: None,
        direction: Direction::HigherIsSafer,
        missing_when_en: "the onboarding date is after the scoring date",
        missing_when_zh: "入驻日期晚于评分日",
        merchant_en: "how long you have been with the payment platform",
        merchant_zh: "您入驻支付平台多久了",
    },
    FeatureDef {
        id: FeatureId::ChannelShareQrCode90d,
        name: "channel_share_qr_code_90d",
        family: Family::ChannelMix,
        description_en: "Share of gross sales amount (last 90 days) paid by scanning a QR code.",
        description_zh: "最近90天通过扫码支付的销售额占比。",
        unit: Unit::Ratio,
        window_days: Some(90),
        direction: Direction::NotMonotone,
        missing_when_en: NO_SALES_90_EN,
        missing_when_zh: NO_SALES_90_ZH,
        merchant_en: "how much of your sales customers paid by scanning your QR code",
        merchant_zh: "顾客扫码付款占您销售额的多少",
    },
    FeatureDef {
        id: FeatureId::ChannelShareInApp90d,
        name: "channel_share_in_app_90d",
        family: Family::ChannelMix,
        description_en: "Share of gross sales amount (last 90 days) paid inside the payment app.",
        description_zh: "最近90天通过应用内支付的销售额占比。",
        unit: Unit::Ratio,
        window_days: Some(90),
        direction: Direction::NotMonotone,
        missing_when_en: NO_SALES_90_EN,
        missing_when_zh: NO_SALES_90_ZH,
        merchant_en: "how much of your sales customers paid inside the payment app",
        merchant_zh: "顾客在支付应用内付款占您销售额的多少",
    },
    FeatureDef {
        id: FeatureId::ChannelShareMiniProgram90d,
        name: "channel_share_mini_program_90d",
        family: Family::ChannelMix,
        description_en: "Share of gross sales amount (last 90 days) paid through a mini program.",
        description_zh: "最近90天通过小程序支付的销售额占比。",
        unit: Unit::Ratio,
        window_days: Some(90),
        direction: Direction::NotMonotone,
        missing_when_en: NO_SALES_90_EN,
        missing_when_zh: NO_SALES_90_ZH,
        merchant_en: "how much of your sales came through your mini program (online orders)",
        merchant_zh: "通过小程序（线上下单）付款占您销售额的多少",
    },
    FeatureDef {
        id: FeatureId::DigitalChannelShare90d,
        name: "digital_channel_share_90d",
        family: Family::ChannelMix,
        description_en: "Share of gross sales amount (last 90 days) paid through a digital channel (QR code, in-app or mini program).",
        description_zh: "最近90天通过数字渠道（扫码、应用内、小程序）支付的销售额占比。",
        unit: Unit::Ratio,
        window_days: Some(90),
        direction: Direction::NotMonotone,
        missing_when_en: NO_SALES_90_EN,
        missing_when_zh: NO_SALES_90_ZH,
        merchant_en: "how much of your sales customers paid with their phones rather than at a card terminal",
        merchant_zh: "顾客用手机付款（而不是刷卡）占您销售额的多少",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn is_snake_case(s: &str) -> bool {
        !s.is_empty()
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && !s.ends_with('_')
            && !s.contains("__")
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }

    fn has_cjk(s: &str) -> bool {
        s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    }

    #[test]
    fn catalog_order_matches_feature_ids() {
        assert_eq!(CATALOG.len(), FeatureId::ALL.len());
        for (i, (def, id)) in CATALOG.iter().zip(FeatureId::ALL).enumerate() {
            assert_eq!(def.id, id, "entry {i} ({})", def.name);
            assert_eq!(id as usize, i);
            assert_eq!(FeatureId::from_name(def.name), Some(id));
        }
        assert_eq!(FeatureId::from_name("no_such_feature"), None);
    }

    #[test]
    fn names_are_unique_snake_case_and_texts_are_complete() {
        let mut names = HashSet::new();
        for d in &CATALOG {
            assert!(is_snake_case(d.name), "{} is not snake_case", d.name);
            assert!(names.insert(d.name), "{} appears twice", d.name);
            for (what, text) in [
                ("description_en", d.description_en),
                ("missing_when_en", d.missing_when_en),
                ("merchant_en", d.merchant_en),
            ] {
                assert!(!text.trim().is_empty(), "{}: empty {what}", d.name);
                assert!(text.is_ascii(), "{}: {what} is not plain English", d.name);
            }
            for (what, text) in [
                ("description_zh", d.description_zh),
                ("missing_when_zh", d.missing_when_zh),
                ("merchant_zh", d.merchant_zh),
            ] {
                assert!(has_cjk(text), "{}: {what} has no Chinese text", d.name);
            }
            // merchant wording must not leak feature jargon
            for text in [d.merchant_en, d.merchant_zh] {
                assert!(!text.contains('_'), "{}: merchant wording {text:?}", d.name);
                assert!(!text.contains(d.name), "{}", d.name);
            }
        }
    }

    #[test]
    fn windows_appear_in_names_consistently() {
        for d in &CATALOG {
            let suffix = d.name.rsplit('_').next().unwrap_or_default();
            let expected = match suffix {
                "30d" => Some(30),
                "90d" => Some(90),
                "180d" => Some(180),
                "365d" => Some(365),
                "26w" => Some(182),
                "12m" => Some(360),
                _ => None,
            };
            if let Some(w) = expected {
                // growth compares two 90-day windows and spans 180 days
                if d.id != FeatureId::NetSalesGrowth90d {
                    assert_eq!(d.window_days, Some(w), "{}", d.name);
                }
            } else {
                assert_eq!(d.window_days, None, "{}", d.name);
            }
        }
        assert_eq!(FeatureId::NetSalesGrowth90d.def().window_days, Some(180));
    }

    #[test]
    fn catalog_serializes_with_snake_case_fields() {
        let json = serde_json::to_value(CATALOG[0]).unwrap();
        assert_eq!(json["name"], "net_sales_30d");
        assert_eq!(json["family"], "scale");
        assert_eq!(json["unit"], "money");
        assert_eq!(json["direction"], "higher_is_safer");
        assert_eq!(json["window_days"], 30);
        assert!(json.get("id").is_none());
        let last = serde_json::to_value(FeatureId::DaysOfHistory.def()).unwrap();
        assert!(last["window_days"].is_null());
    }
}
