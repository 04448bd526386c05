//! The generative model. See `README.md` next to this file for the description a data scientist
//! can judge; the constants here are the ones documented there.

use super::SimConfig;
use super::fmt::{push_amount, push_date, push_datetime, push_hex48, push_int, push_padded};
use crate::domain::RegionType;
use chrono::{Datelike, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson, StandardNormal};
use std::f64::consts::{LN_2, TAU};

/// Local time (China Standard Time) is UTC+8.
const LOCAL_OFFSET_SECS: i64 = 8 * 3600;
/// Health is simulated this many days past the end so that every loan's term is covered.
pub(crate) const MAX_TERM_DAYS: u32 = 180;
/// A merchant whose health falls below this stops trading for good ("fails").
const FAILURE_THRESHOLD: f64 = -2.8;
/// An ordinary merchant can borrow once it has traded this many days...
const FIRST_LOAN_FROM_DAY: u32 = 90;
/// ...and takes its first loan uniformly within this many days of becoming eligible.
const FIRST_LOAN_WITHIN_DAYS: u32 = 365;
/// The next loan is disbursed 0 to this many days after the previous one matures.
const MAX_GAP_DAYS: u32 = 60;
/// At most this many loans per ordinary merchant.
const MAX_LOANS: u32 = 3;
/// The oldest a merchant can be on the day a loan is disbursed to it: the last possible first
/// loan, then two more loans of the longest term, each after the longest gap. Every loan age from
/// 14 days to this one can occur on any day of the simulated window (see [`onboarding_age`]).
pub(crate) const MAX_LOAN_AGE_DAYS: u32 =
    FIRST_LOAN_FROM_DAY + FIRST_LOAN_WITHIN_DAYS + (MAX_LOANS - 1) * (MAX_TERM_DAYS + MAX_GAP_DAYS);

pub(crate) struct CategorySpec {
    pub slug: &'static str,
    /// Share of the population.
    weight: f64,
    /// Expected sales a day for an urban merchant of median size and health 0.
    daily_sales: f64,
    /// Mean ticket in yuan (urban) and log-normal dispersion of tickets.
    ticket_yuan: f64,
    ticket_sigma: f64,
    /// Prices are multiples of this many fen (street food is priced in jiao).
    price_step: i64,
    /// Monday..Sunday multipliers.
    weekday: [f64; 7],
    /// Local hours 0..24, relative weights.
    hours: [f64; 24],
    /// Amplitude and peak (fraction of the year) of the smooth yearly cycle.
    season_amp: f64,
    season_peak: f64,
    /// Volume lost in the Lunar New Year week, and extra volume in the three weeks before.
    lny_dip: f64,
    lny_pre_boost: f64,
    /// Logit of the probability that a sale comes from the repeat-customer pool at health 0.
    repeat_logit: f64,
    /// Probability a sale is refunded / charged back, at health 0.
    refund_rate: f64,
    chargeback_rate: f64,
    /// qr_code, in_app, mini_program, pos, other.
    channels: [f64; 5],
    names: &'static [&'static str],
}

const FLAT_DAY: [f64; 24] = [
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.3, 0.6, 1.0, 1.0, 1.0, 1.1, 1.0, 1.0, 1.0, 1.1, 1.3, 1.4,
    1.4, 1.2, 0.8, 0.3, 0.05,
];

pub(crate) static CATEGORIES: [CategorySpec; 5] = [
    CategorySpec {
        slug: "food_stall",
        weight: 0.30,
        daily_sales: 22.0,
        ticket_yuan: 14.0,
        ticket_sigma: 0.45,
        price_step: 50,
        weekday: [1.0, 0.97, 0.97, 1.0, 1.05, 1.12, 1.08],
        hours: [
            0.0, 0.0, 0.0, 0.0, 0.0, 0.2, 1.2, 2.2, 2.0, 0.8, 0.5, 1.6, 2.2, 1.2, 0.4, 0.3, 0.5,
            1.4, 2.0, 1.4, 0.8, 0.5, 0.2, 0.05,
        ],
        season_amp: 0.08,
        season_peak: 0.55,
        lny_dip: 0.75,
        lny_pre_boost: 0.05,
        repeat_logit: 0.9,
        refund_rate: 0.004,
        chargeback_rate: 0.0003,
        channels: [0.86, 0.06, 0.04, 0.01, 0.03],
        names: &[
            "Breakfast Stall",
            "Jianbing",
            "Noodle Stall",
            "Baozi",
            "Malatang",
            "Fruit Stand",
            "Roast Sweet Potato",
        ],
    },
    CategorySpec {
        slug: "grocery",
        weight: 0.25,
        daily_sales: 18.0,
        ticket_yuan: 32.0,
        ticket_sigma: 0.75,
        price_step: 10,
        weekday: [0.95, 0.95, 0.95, 1.0, 1.05, 1.12, 1.08],
        hours: FLAT_DAY,
        season_amp: 0.05,
        season_peak: 0.55,
        lny_dip: 0.5,
        lny_pre_boost: 0.35,
        repeat_logit: 1.1,
        refund_rate: 0.006,
        chargeback_rate: 0.0003,
        channels: [0.75, 0.08, 0.07, 0.07, 0.03],
        names: &[
            "Grocery",
            "Convenience Store",
            "Xiaomaibu",
            "Mini Mart",
            "Fresh Market Stall",
        ],
    },
    CategorySpec {
        slug: "retail",
        weight: 0.20,
        daily_sales: 7.0,
        ticket_yuan: 110.0,
        ticket_sigma: 0.85,
        price_step: 100,
        weekday: [0.8, 0.8, 0.85, 0.9, 1.1, 1.4, 1.35],
        hours: FLAT_DAY,
        season_amp: 0.1,
        season_peak: 0.9,
        lny_dip: 0.6,
        lny_pre_boost: 0.45,
        repeat_logit: -0.4,
        refund_rate: 0.025,
        chargeback_rate: 0.001,
        channels: [0.55, 0.10, 0.12, 0.20, 0.03],
        names: &[
            "Clothing",
            "Phone Accessories",
            "Hardware",
            "Stationery",
            "Shoe Shop",
        ],
    },
    CategorySpec {
        slug: "services",
        weight: 0.15,
        daily_sales: 5.0,
        ticket_yuan: 75.0,
        ticket_sigma: 0.65,
        price_step: 100,
        weekday: [0.85, 0.9, 0.9, 0.95, 1.1, 1.3, 1.1],
        hours: FLAT_DAY,
        season_amp: 0.05,
        season_peak: 0.1,
        lny_dip: 0.7,
        lny_pre_boost: 0.3,
        repeat_logit: 0.2,
        refund_rate: 0.012,
        chargeback_rate: 0.0008,
        channels: [0.55, 0.12, 0.25, 0.05, 0.03],
        names: &["Barber", "Tailor", "Phone Repair", "Laundry", "Bike Repair"],
    },
    CategorySpec {
        slug: "farm_supplies",
        weight: 0.10,
        daily_sales: 4.0,
        ticket_yuan: 190.0,
        ticket_sigma: 0.95,
        price_step: 100,
        weekday: [1.0, 1.0, 1.0, 1.0, 1.0, 1.05, 0.9],
        hours: FLAT_DAY,
        season_amp: 0.0,
        season_peak: 0.0,
        lny_dip: 0.6,
        lny_pre_boost: 0.1,
        repeat_logit: 0.9,
        refund_rate: 0.01,
        chargeback_rate: 0.0005,
        channels: [0.70, 0.08, 0.02, 0.15, 0.05],
        names: &[
            "Seed and Fertilizer",
            "Farm Supplies",
            "Agri Inputs",
            "Feed Store",
        ],
    },
];

const CHANNEL_NAMES: [&str; 5] = ["qr_code", "in_app", "mini_program", "pos", "other"];
const KIND_SALE: u8 = 0;
const KIND_REFUND: u8 = 1;
const KIND_CHARGEBACK: u8 = 2;
const KIND_NAMES: [&str; 3] = ["sale", "refund", "chargeback"];

struct RegionSpec {
    region: RegionType,
    weight: f64,
    volume: f64,
    ticket: f64,
    season: f64,
    codes: &'static [&'static str],
}

static REGIONS: [RegionSpec; 3] = [
    RegionSpec {
        region: RegionType::Urban,
        weight: 0.45,
        volume: 1.0,
        ticket: 1.0,
        season: 1.0,
        codes: &["110105", "310115", "440106", "330106", "510104", "420106"],
    },
    RegionSpec {
        region: RegionType::County,
        weight: 0.30,
        volume: 0.7,
        ticket: 0.85,
        season: 1.3,
        codes: &["330782", "320582", "350582", "370181", "430181"],
    },
    RegionSpec {
        region: RegionType::Rural,
        weight: 0.25,
        volume: 0.45,
        ticket: 0.7,
        season: 1.8,
        codes: &["522631", "620523", "411523", "513433", "450923"],
    },
];

const SURNAMES: [&str; 20] = [
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma",
    "Zhu", "Hu", "Guo", "He", "Lin", "Luo", "Gao",
];

/// Lunar New Year (first day of the first lunar month), 2000–2035.
const LNY: [(i32, u32, u32); 36] = [
    (2000, 2, 5),
    (2001, 1, 24),
    (2002, 2, 12),
    (2003, 2, 1),
    (2004, 1, 22),
    (2005, 2, 9),
    (2006, 1, 29),
    (2007, 2, 18),
    (2008, 2, 7),
    (2009, 1, 26),
    (2010, 2, 14),
    (2011, 2, 3),
    (2012, 1, 23),
    (2013, 2, 10),
    (2014, 1, 31),
    (2015, 2, 19),
    (2016, 2, 8),
    (2017, 1, 28),
    (2018, 2, 16),
    (2019, 2, 5),
    (2020, 1, 25),
    (2021, 2, 12),
    (2022, 2, 1),
    (2023, 1, 22),
    (2024, 2, 10),
    (2025, 1, 29),
    (2026, 2, 17),
    (2027, 2, 6),
    (2028, 1, 26),
    (2029, 2, 13),
    (2030, 2, 3),
    (2031, 1, 23),
    (2032, 2, 11),
    (2033, 1, 31),
    (2034, 2, 19),
    (2035, 2, 8),
];

pub(crate) const FIRST_LNY_YEAR: i32 = 2000;
pub(crate) const LAST_LNY_YEAR: i32 = 2035;

fn lny_day_of(year: i32) -> NaiveDate {
    let i = (year.clamp(FIRST_LNY_YEAR, LAST_LNY_YEAR) - FIRST_LNY_YEAR) as usize;
    let (y, m, d) = LNY[i];
    // the table holds valid dates only
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

/// Signed days from the nearest Lunar New Year (negative = before it).
fn days_from_lny(date: NaiveDate) -> i64 {
    let y = date.year();
    [y - 1, y, y + 1]
        .iter()
        .map(|&yy| (date - lny_day_of(yy)).num_days())
        .min_by_key(|d| d.abs())
        .unwrap_or(i64::MAX)
}

fn bump(x: f64, centre: f64, width: f64) -> f64 {
    // circular distance on the year
    let d = (x - centre + 0.5).rem_euclid(1.0) - 0.5;
    (-0.5 * (d / width).powi(2)).exp()
}

/// Multiplier of expected volume on `date` from the yearly cycle and the Lunar New Year.
pub(crate) fn season_factor(cat: &CategorySpec, region: RegionType, date: NaiveDate) -> f64 {
    let amp = REGIONS[region_index(region)].season;
    let x = f64::from(date.ordinal0()) / 365.25;
    let mut s = cat.season_amp * (TAU * (x - cat.season_peak)).cos();
    if cat.slug == "farm_supplies" {
        // spring planting (late March) and autumn sowing (late September)
        s = 0.6 * bump(x, 0.22, 0.05) + 0.45 * bump(x, 0.72, 0.05) - 0.15;
    }
    if cat.slug == "retail" && date.month() == 11 && date.day() <= 11 {
        s += 0.35; // Singles' Day promotions
    }
    if region == RegionType::Rural {
        s += 0.2 * bump(x, 0.76, 0.04) - 0.03; // harvest cash in October
    }
    let mut f = (1.0 + amp * s).max(0.05);
    let e = days_from_lny(date);
    if (-21..0).contains(&e) {
        f *= 1.0 + cat.lny_pre_boost * amp.min(1.5);
    } else if (0..7).contains(&e) {
        f *= 1.0 - cat.lny_dip;
    } else if (7..15).contains(&e) {
        f *= 1.0 - 0.4 * cat.lny_dip;
    }
    f
}

fn region_index(r: RegionType) -> usize {
    match r {
        RegionType::Urban => 0,
        RegionType::County => 1,
        RegionType::Rural => 2,
    }
}

fn pick(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The RNG of one merchant and one phase: the same key for the whole run, one ChaCha stream per
/// (merchant, phase), so output does not depend on scheduling.
fn rng_for(seed: u64, index: usize, phase: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream((index as u64) * 2 + phase);
    rng
}

pub(crate) struct PlannedLoan {
    /// Day of disbursement, counted from onboarding.
    pub day: u32,
    pub term: u32,
    /// Risk score given the whole term (the health path during it and whether the merchant
    /// fails in it); the outcome is drawn with probability `sigmoid(alpha + score)`, the
    /// *hindsight* PD.
    pub score: f64,
    /// The merchant fails (stops trading) during the term.
    pub fails_in_term: bool,
    /// Everything true on the disbursement day that the score depends on: the input of the
    /// ex-ante PD ([`ex_ante_pd`]).
    pub at_disbursement: Disbursement,
}

/// The latent health of a merchant after a day: `h = base + transitory`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HealthState {
    pub base: f64,
    pub transitory: f64,
}

/// The daily health process of one merchant (README, "Latent health"). One definition serves the
/// history and the ex-ante oracle's possible futures, so the oracle integrates over exactly the
/// process the data came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HealthProcess {
    /// Per day.
    pub drift: f64,
    daily_sd: f64,
    decay: f64,
}

impl HealthProcess {
    pub(crate) fn new(drift: f64) -> HealthProcess {
        HealthProcess {
            drift,
            daily_sd: 0.5 / 365f64.sqrt(),
            decay: (-LN_2 / 60.0).exp(),
        }
    }

    /// One day: with probability 0.8/365 a shock `S ~ N(−1, 0.5²)`, 30 % permanent and 70 %
    /// transitory; the random walk with the drift; the transitory part decays (half-life 60
    /// days). Returns the health after the day.
    pub(crate) fn step(&self, s: &mut HealthState, rng: &mut ChaCha8Rng) -> f64 {
        if rng.random_bool(0.8 / 365.0) {
            let shock = -1.0 + 0.5 * normal(rng);
            s.base += 0.3 * shock;
            s.transitory += 0.7 * shock;
        }
        s.base += self.drift + self.daily_sd * normal(rng);
        s.transitory *= self.decay;
        s.base + s.transitory
    }
}

/// What is true about a loan on its disbursement day: the merchant's health state after that
/// day, its drift, the term and the loan's idiosyncratic draw `ε`. Nothing about later days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Disbursement {
    pub health: HealthState,
    pub drift: f64,
    pub term: u32,
    pub eps: f64,
}

/// The risk score of a loan disbursed at health `h_d` whose health averages `mean_h` over the
/// term (days `d..d+T`), given whether the merchant fails during it (README, "PD model").
fn term_score(h_d: f64, mean_h: f64, fails_in_term: bool, term: u32, eps: f64) -> f64 {
    -1.1 * h_d - 0.9 * (mean_h - h_d)
        + if fails_in_term { 3.0 } else { 0.0 }
        + 0.35 * (f64::from(term) / 90.0).ln()
        + 0.6 * eps
}

/// Possible futures averaged by the ex-ante PD of one loan.
pub(crate) const ORACLE_PATHS: usize = 1000;

/// The ex-ante PD of a loan: `E[σ(α + score) | what was true on the disbursement day]`, the
/// expectation over the health path during the term (shocks, the random walk with the merchant's
/// drift, the decay of the transitory part, the failure threshold), by Monte Carlo over `paths`
/// futures drawn from `rng`. `ε` is kept: it is drawn for the loan at disbursement, a fact about
/// the loan (like a debt the history does not show), not a future event. The merchant has not
/// failed by the disbursement day (no loan goes to a failed merchant), so the state is all the
/// process needs. The only input about the merchant is `at`: the function cannot see what
/// happened after the disbursement day.
pub(crate) fn ex_ante_pd(at: &Disbursement, alpha: f64, paths: usize, rng: &mut ChaCha8Rng) -> f64 {
    mean_over_futures(at, paths, rng, |score| sigmoid(alpha + score))
}

/// `E[payoff(score)]` over `paths` futures of the term drawn from `rng`, `score` being the
/// loan's risk score in each (with `at.eps`).
fn mean_over_futures(
    at: &Disbursement,
    paths: usize,
    rng: &mut ChaCha8Rng,
    payoff: impl Fn(f64) -> f64,
) -> f64 {
    let process = HealthProcess::new(at.drift);
    let h_d = at.health.base + at.health.transitory;
    let mut total = 0.0;
    for _ in 0..paths {
        let mut s = at.health;
        let (mut sum, mut fails) = (h_d, false);
        for _ in 1..at.term {
            let h = process.step(&mut s, rng);
            fails |= h < FAILURE_THRESHOLD;
            sum += h;
        }
        total += payoff(term_score(
            h_d,
            sum / f64::from(at.term),
            fails,
            at.term,
            at.eps,
        ));
    }
    total / paths.max(1) as f64
}

/// The oracle's own random numbers for loan `k` of merchant `index`: another key than the
/// simulation's streams, so computing the oracle draws nothing from them and the simulated data
/// are the same with or without it.
pub(crate) fn oracle_rng(seed: u64, index: usize, k: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6f72_6163_6c65_5044); // "oraclePD"
    rng.set_stream((index as u64) << 8 | k as u64);
    rng
}

/// Everything about a merchant that does not depend on the calibrated intercept.
pub(crate) struct Plan {
    pub index: usize,
    pub category: usize,
    pub region: RegionType,
    pub region_code: &'static str,
    pub name: String,
    /// Days since 1970-01-01 of `onboarded_on`.
    pub onboarded: i64,
    /// Days from onboarding to the end of the simulation (`end`, exclusive): the merchant's age
    /// at `end`.
    pub history_days: u32,
    /// Day (from onboarding) on which the simulated window begins (`end − SimConfig::history_days`);
    /// negative when the merchant was onboarded inside the window. Loans disbursed before it are
    /// simulated (they shape the merchant's later borrowing) but not exported.
    pub window_start: i64,
    pub thin: bool,
    size: f64,
    ticket_scale: f64,
    channels: [f64; 5],
    pool: u32,
    /// Daily latent health, days `0..history_days + MAX_TERM_DAYS` from onboarding.
    pub health: Vec<f32>,
    pub fail_day: Option<u32>,
    pub loans: Vec<PlannedLoan>,
}

impl Plan {
    /// The loan is disbursed inside the simulated window, so it is written to `loans.csv` and
    /// `truth.csv` and counts towards the calibrated default rate.
    pub(crate) fn exported(&self, loan: &PlannedLoan) -> bool {
        i64::from(loan.day) >= self.window_start
    }
}

/// A merchant's age at `end` (days from onboarding to `end`), i.e. when it was onboarded.
///
/// **Continuous onboarding, a stationary population.** A real platform onboards merchants every
/// day and has done so for longer than any data extract covers, so the merchants who borrow in
/// January are, as a group, as old as those who borrow in June. The simulator does the same:
/// onboarding dates are uniform over the `history_days + MAX_LOAN_AGE_DAYS` days before `end`
/// (the platform existed `MAX_LOAN_AGE_DAYS` days before the simulated window opened), and a
/// merchant's loans are planned by its *age* (first loan 90–455 days after onboarding, the next
/// ones after each term), never by the calendar. A loan at age `a` then falls on a calendar day
/// `end − (age at end − a)`; with the age at end uniform on `1..=history_days +
/// MAX_LOAN_AGE_DAYS` and `a ≤ MAX_LOAN_AGE_DAYS`, every day of the window receives loans of
/// every age with the same probability. So the mix of ages, histories, health and risk of the
/// loans is the same early and late in the window (apart from the seasons), which is what an
/// out-of-time split assumes. Only loans inside the window are exported; payments are exported
/// from onboarding, so every feature of an exported loan sees the merchant's whole history.
///
/// (The design it replaces onboarded every ordinary merchant in the first quarter of the window,
/// so calendar time was merchant age: later loans went to older merchants whose health had
/// drifted further apart, a different population from the earlier ones.)
fn onboarding_age(cfg: &SimConfig, rng: &mut ChaCha8Rng) -> u32 {
    rng.random_range(1..=cfg.history_days + MAX_LOAN_AGE_DAYS)
}

pub(crate) fn days_since_epoch(date: NaiveDate) -> i64 {
    date.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN))
        .num_days()
}

/// Phase 1: the merchant's profile, latent health path and planned loans with their risk scores.
pub(crate) fn plan_merchant(cfg: &SimConfig, index: usize) -> Plan {
    let mut rng = rng_for(cfg.seed, index, 0);
    let weights: Vec<f64> = CATEGORIES.iter().map(|c| c.weight).collect();
    let category = pick(&mut rng, &weights);
    let cat = &CATEGORIES[category];
    let rweights: Vec<f64> = REGIONS.iter().map(|r| r.weight).collect();
    let ri = pick(&mut rng, &rweights);
    let region = REGIONS[ri].region;
    let region_code = REGIONS[ri].codes[rng.random_range(0..REGIONS[ri].codes.len())];
    let name = {
        let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
        let word = cat.names[rng.random_range(0..cat.names.len())];
        if rng.random_bool(0.5) {
            format!("Lao {surname} {word}")
        } else {
            format!("{surname} Family {word}")
        }
    };
    let thin = rng.random_bool(cfg.thin_file_share);
    let history_days = onboarding_age(cfg, &mut rng);
    let onboarded = days_since_epoch(cfg.end) - i64::from(history_days);
    let window_start = i64::from(history_days) - i64::from(cfg.history_days);

    // size and ticket level: log-normal, independent of health and region
    let size = (0.6 * normal(&mut rng) - 0.18).exp();
    let ticket_scale = (0.25 * normal(&mut rng)).exp();
    let mut channels = cat.channels;
    for c in &mut channels {
        *c *= (0.4 * normal(&mut rng)).exp();
    }
    let pool = (12.0 * cat.daily_sales * REGIONS[ri].volume * size)
        .round()
        .max(30.0) as u32;

    // latent health: random walk with a merchant drift, small daily noise and rare shocks that
    // are 30 % permanent and 70 % transitory (half-life 60 days)
    let horizon = history_days + MAX_TERM_DAYS;
    let mut state = HealthState {
        base: (0.9 * normal(&mut rng)).max(-2.2),
        transitory: 0.0,
    };
    let process = HealthProcess::new(0.7 * normal(&mut rng) / 365.0);
    let mut health = Vec::with_capacity(horizon as usize);
    // the state after each day, kept so that a loan can record what was true on its day
    let mut states = Vec::with_capacity(horizon as usize);
    let mut fail_day = None;
    for day in 0..horizon {
        let h = process.step(&mut state, &mut rng);
        if fail_day.is_none() && h < FAILURE_THRESHOLD {
            fail_day = Some(day);
        }
        health.push(h as f32);
        states.push(state);
    }

    // loans: sequential, never overlapping, only to a merchant still trading; planned by the
    // merchant's age alone (the calendar only cuts them off at `end`)
    let mut loans = Vec::new();
    let count = if thin {
        usize::from(rng.random_bool(0.85))
    } else {
        pick(&mut rng, &[0.25, 0.45, 0.22, 0.08])
    };
    let mut next_day = if thin {
        rng.random_range(14..=89)
    } else {
        rng.random_range(FIRST_LOAN_FROM_DAY..=FIRST_LOAN_FROM_DAY + FIRST_LOAN_WITHIN_DAYS)
    };
    for _ in 0..count {
        if next_day + 5 > history_days || fail_day.is_some_and(|f| next_day >= f) {
            break;
        }
        let drawn = [30, 60, 90, 180][pick(&mut rng, &[0.2, 0.25, 0.35, 0.2])];
        let term = cfg.term_days.unwrap_or(drawn);
        let d = next_day as usize;
        let h_d = f64::from(health[d]);
        let h_f = health[d..d + term as usize]
            .iter()
            .map(|&h| f64::from(h))
            .sum::<f64>()
            / f64::from(term);
        let fails_in_term = fail_day.is_some_and(|f| f < next_day + term);
        let eps = normal(&mut rng);
        let score = term_score(h_d, h_f, fails_in_term, term, eps);
        loans.push(PlannedLoan {
            day: next_day,
            term,
            score,
            fails_in_term,
            at_disbursement: Disbursement {
                health: states[d],
                drift: process.drift,
                term,
                eps,
            },
        });
        next_day += term + rng.random_range(0..=MAX_GAP_DAYS);
    }

    Plan {
        index,
        category,
        region,
        region_code,
        name,
        onboarded,
        history_days,
        window_start,
        thin,
        size,
        ticket_scale,
        channels,
        pool,
        health,
        fail_day,
        loans,
    }
}

/// The RNG of phase 2 of a merchant (outcomes first, then payments).
pub(crate) fn outcome_rng(cfg: &SimConfig, plan: &Plan) -> ChaCha8Rng {
    rng_for(cfg.seed, plan.index, 1)
}

/// Expected (defaulted loans, loans) among the exported loans of one merchant at intercept
/// `alpha`, given that a loan after a default is never disbursed: loan `k` exists with
/// probability `Π_{i<k} (1 − pd_i)`, counting the loans before the window.
pub(crate) fn expected_defaults(plan: &Plan, alpha: f64) -> (f64, f64) {
    let (mut alive, mut defaults, mut loans) = (1.0, 0.0, 0.0);
    for l in &plan.loans {
        let pd = sigmoid(alpha + l.score);
        if plan.exported(l) {
            loans += alive;
            defaults += alive * pd;
        }
        alive *= 1.0 - pd;
    }
    (defaults, loans)
}

/// The intercept at which the expected default rate of the disbursed loans equals `target`
/// (bisection; the rate increases with the intercept).
pub(crate) fn calibrate(plans: &[Plan], target: f64) -> f64 {
    let rate = |alpha: f64| {
        let (d, n) = plans
            .iter()
            .map(|p| expected_defaults(p, alpha))
            .fold((0.0, 0.0), |(a, b), (c, d)| (a + c, b + d));
        if n > 0.0 { d / n } else { target }
    };
    let (mut lo, mut hi) = (-30.0, 30.0);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if rate(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// What one merchant contributes to the summary.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MerchantStats {
    pub payments: u64,
    pub loans: u64,
    pub defaults_drawn: u64,
    pub matured: u64,
    pub matured_defaults: u64,
    pub pd_sum: f64,
    pub ex_ante_pd_sum: f64,
}

pub(crate) struct MerchantOutput {
    pub payments: Vec<u8>,
    pub loans: Vec<u8>,
    pub truth: Vec<u8>,
    pub stats: MerchantStats,
}

#[derive(Clone, Copy)]
struct Event {
    at: i64,
    amount: i64,
    payer: u64,
    kind: u8,
    channel: u8,
}

pub(crate) fn merchant_id(buf: &mut Vec<u8>, index: usize) {
    buf.push(b'm');
    push_padded(buf, index as u64, 6);
}

/// A stable 48-bit token for repeat customer `j` of merchant `index`.
fn pool_token(index: usize, j: u32) -> u64 {
    let mut x = (index as u64) << 32 | u64::from(j);
    // splitmix64 finaliser
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)) & 0xffff_ffff_ffff
}

pub(crate) struct Outcome {
    pub pd: f64,
    /// Day (from onboarding) of the default, if the loan defaults.
    pub default_day: Option<u32>,
}

/// Draws the outcome of each planned loan in order. A defaulted loan ends the merchant's
/// borrowing (later planned loans are not disbursed). Returns the outcomes of the disbursed loans
/// and the day the merchant stops trading, if it does: the failure day, or for half of the
/// defaults without failure 5 to 30 days before the default.
pub(crate) fn draw_outcomes(
    plan: &Plan,
    alpha: f64,
    rng: &mut ChaCha8Rng,
) -> (Vec<Outcome>, Option<u32>) {
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(plan.loans.len());
    let mut stop_day = plan.fail_day;
    for l in &plan.loans {
        let pd = sigmoid(alpha + l.score);
        let defaults = rng.random::<f64>() < pd;
        let default_day = defaults.then(|| {
            let last = l.day + l.term;
            match plan.fail_day {
                Some(f) if l.fails_in_term => {
                    (f + rng.random_range(15..=45)).clamp(l.day + 1, last)
                }
                _ => rng.random_range((l.day + l.term / 3).max(l.day + 1)..=last),
            }
        });
        if let Some(dd) = default_day
            && !l.fails_in_term
            && rng.random_bool(0.5)
        {
            let s = dd.saturating_sub(rng.random_range(5..=30)).max(l.day + 1);
            stop_day = Some(stop_day.map_or(s, |f| f.min(s)));
        }
        outcomes.push(Outcome { pd, default_day });
        if default_day.is_some() {
            break;
        }
    }
    (outcomes, stop_day)
}

/// Phase 2 (RNG stream 1 of the merchant): outcomes of the loans, the payment history, and the
/// CSV rows of one merchant.
pub(crate) fn generate_merchant(cfg: &SimConfig, plan: &Plan, alpha: f64) -> MerchantOutput {
    let mut rng = outcome_rng(cfg, plan);
    let cat = &CATEGORIES[plan.category];
    let region = &REGIONS[region_index(plan.region)];
    let end_day = i64::from(plan.history_days); // day index of `end`, from onboarding
    let end_secs = (plan.onboarded + end_day) * 86_400;

    let (outcomes, stop_day) = draw_outcomes(plan, alpha, &mut rng);

    // 2. payments, day by day (day 0 is the onboarding day, no trading)
    let trade_until = stop_day.map_or(end_day, |s| i64::from(s).min(end_day));
    let stop_secs = (plan.onboarded + trade_until) * 86_400 - LOCAL_OFFSET_SECS;
    let hours_total: f64 = cat.hours.iter().sum();
    let ch_total: f64 = plan.channels.iter().sum();
    let ticket_mu = (cat.ticket_yuan * 100.0 * region.ticket * plan.ticket_scale).ln()
        - 0.5 * cat.ticket_sigma * cat.ticket_sigma;
    let base_volume = cat.daily_sales * region.volume * plan.size;
    let mut events: Vec<Event> =
        Vec::with_capacity((base_volume * end_day as f64 * 1.2) as usize + 16);
    let mut daily_gross = vec![0i64; end_day.max(0) as usize];
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    for day in 1..trade_until {
        let h = f64::from(plan.health[day as usize]);
        let p_closed = 0.02 + 0.25 * sigmoid(-1.5 * (h + 1.5));
        if rng.random::<f64>() < p_closed {
            continue;
        }
        let abs_day = plan.onboarded + day;
        let date = epoch + chrono::Duration::days(abs_day);
        let dow = date.weekday().num_days_from_monday() as usize;
        let lambda = base_volume
            * cat.weekday[dow]
            * season_factor(cat, plan.region, date)
            * (0.45 * h).exp();
        if lambda <= 0.0 {
            continue;
        }
        let n = match Poisson::new(lambda) {
            Ok(p) => p.sample(&mut rng) as u64,
            Err(_) => 0,
        };
        let p_repeat = sigmoid(cat.repeat_logit + 0.8 * h);
        let p_refund = cat.refund_rate * (-0.5 * h).exp();
        let p_chargeback = cat.chargeback_rate * (-h).exp();
        for _ in 0..n {
            // time of day
            let mut u = rng.random::<f64>() * hours_total;
            let mut hour = 23;
            for (i, w) in cat.hours.iter().enumerate() {
                if u < *w {
                    hour = i as i64;
                    break;
                }
                u -= w;
            }
            let at = abs_day * 86_400 + hour * 3600 + rng.random_range(0..3600) - LOCAL_OFFSET_SECS;
            let raw = (ticket_mu + cat.ticket_sigma * normal(&mut rng)).exp();
            let amount = ((raw / cat.price_step as f64).round() as i64 * cat.price_step)
                .clamp(100, 99_999_999);
            let payer = if rng.random::<f64>() < p_repeat {
                let j = (f64::from(plan.pool) * rng.random::<f64>().powf(1.8)) as u32;
                pool_token(plan.index, j.min(plan.pool - 1))
            } else {
                rng.random::<u64>() & 0xffff_ffff_ffff
            };
            let channel = {
                let mut u = rng.random::<f64>() * ch_total;
                let mut c = 4u8;
                for (i, w) in plan.channels.iter().enumerate() {
                    if u < *w {
                        c = i as u8;
                        break;
                    }
                    u -= w;
                }
                c
            };
            events.push(Event {
                at,
                amount,
                payer,
                kind: KIND_SALE,
                channel,
            });
            daily_gross[day as usize] += amount;
            if rng.random::<f64>() < p_refund {
                let refund = if rng.random_bool(0.7) {
                    amount
                } else {
                    ((amount as f64 * rng.random_range(0.2..0.9)) as i64).max(1)
                };
                let t = at + rng.random_range(600..7 * 86_400);
                if t < stop_secs && t < end_secs {
                    events.push(Event {
                        at: t,
                        amount: refund,
                        payer,
                        kind: KIND_REFUND,
                        channel,
                    });
                }
            }
            if rng.random::<f64>() < p_chargeback {
                let t = at + rng.random_range(3 * 86_400..60 * 86_400);
                if t < end_secs {
                    events.push(Event {
                        at: t,
                        amount,
                        payer,
                        kind: KIND_CHARGEBACK,
                        channel,
                    });
                }
            }
        }
    }
    // whole seconds and a stable tie-break keep the order deterministic
    events.sort_by_key(|e| (e.at, e.kind, e.amount, e.payer, e.channel));

    // 3. rows
    let mut mid = Vec::with_capacity(8);
    merchant_id(&mut mid, plan.index);
    let mut payments = Vec::with_capacity(events.len() * 80);
    for (seq, e) in events.iter().enumerate() {
        payments.extend_from_slice(&mid);
        payments.push(b',');
        payments.extend_from_slice(&mid);
        payments.extend_from_slice(b"-p");
        push_padded(&mut payments, seq as u64 + 1, 6);
        payments.push(b',');
        push_datetime(&mut payments, e.at);
        payments.push(b',');
        push_amount(&mut payments, e.amount);
        payments.push(b',');
        payments.extend_from_slice(cfg.currency.as_bytes());
        payments.push(b',');
        payments.extend_from_slice(KIND_NAMES[e.kind as usize].as_bytes());
        payments.push(b',');
        payments.extend_from_slice(CHANNEL_NAMES[e.channel as usize].as_bytes());
        payments.extend_from_slice(b",p");
        push_hex48(&mut payments, e.payer);
        payments.push(b'\n');
    }

    let mut loans = Vec::new();
    let mut truth = Vec::new();
    let mut stats = MerchantStats {
        payments: events.len() as u64,
        ..MerchantStats::default()
    };
    // `k` is the merchant's own loan number, so a merchant whose first loans predate the window
    // starts at `-l2` or later
    for (k, (l, o)) in plan.loans.iter().zip(&outcomes).enumerate() {
        if !plan.exported(l) {
            continue;
        }
        // principal: 0.5 to 2 months of the trailing (up to) 90 days' gross sales, in hundreds
        let from = l.day.saturating_sub(90) as usize;
        let days = (l.day as usize - from).max(1);
        let gross: i64 = daily_gross[from..l.day as usize].iter().sum();
        let monthly = gross as f64 * 30.0 / days as f64;
        let principal = ((monthly * rng.random_range(0.5..2.0) / 10_000.0).round() as i64 * 10_000)
            .clamp(100_000, 200_000_000);
        let disbursed = plan.onboarded + i64::from(l.day);
        let matures = i64::from(l.day + l.term);
        let matured = matures <= end_day;
        // loan_id,merchant_id,disbursed_on,principal,currency,term_days,outcome,defaulted_on
        let mut lid = mid.clone();
        lid.extend_from_slice(b"-l");
        push_int(&mut lid, k as i64 + 1);
        loans.extend_from_slice(&lid);
        loans.push(b',');
        loans.extend_from_slice(&mid);
        loans.push(b',');
        push_date(&mut loans, disbursed);
        loans.push(b',');
        push_amount(&mut loans, principal);
        loans.push(b',');
        loans.extend_from_slice(cfg.currency.as_bytes());
        loans.push(b',');
        push_int(&mut loans, i64::from(l.term));
        loans.push(b',');
        match o.default_day {
            Some(dd) if i64::from(dd) < end_day => {
                let written_off = end_day - i64::from(dd) >= 180;
                loans.extend_from_slice(if written_off {
                    b"written_off,"
                } else {
                    b"defaulted,"
                });
                push_date(&mut loans, plan.onboarded + i64::from(dd));
            }
            Some(_) => loans.push(b','),
            None if matured => loans.extend_from_slice(b"repaid,"),
            None => loans.push(b','),
        }
        loans.push(b'\n');
        // the oracle draws from its own stream: nothing above depends on it
        let ex_ante = ex_ante_pd(
            &l.at_disbursement,
            alpha,
            ORACLE_PATHS,
            &mut oracle_rng(cfg.seed, plan.index, k),
        );
        truth.extend_from_slice(&lid);
        truth.push(b',');
        truth.extend_from_slice(&mid);
        truth.push(b',');
        truth.append(&mut ryu_like(o.pd));
        truth.push(b',');
        truth.append(&mut ryu_like(ex_ante));
        truth.push(b'\n');

        stats.loans += 1;
        stats.pd_sum += o.pd;
        stats.ex_ante_pd_sum += ex_ante;
        stats.defaults_drawn += u64::from(o.default_day.is_some());
        if matured {
            stats.matured += 1;
            stats.matured_defaults += u64::from(o.default_day.is_some());
        }
    }

    MerchantOutput {
        payments,
        loans,
        truth,
        stats,
    }
}

/// A probability with 6 significant decimals (`0.043127`), enough for evaluation.
fn ryu_like(p: f64) -> Vec<u8> {
    format!("{p:.6}").into_bytes()
}

/// The `merchants.csv` row of a plan.
pub(crate) fn merchant_row(buf: &mut Vec<u8>, cfg: &SimConfig, plan: &Plan) {
    // merchant_id,name,category,region_type,region_code,currency,onboarded_on
    merchant_id(buf, plan.index);
    buf.push(b',');
    buf.extend_from_slice(plan.name.as_bytes());
    buf.push(b',');
    buf.extend_from_slice(CATEGORIES[plan.category].slug.as_bytes());
    buf.push(b',');
    buf.extend_from_slice(plan.region.as_str().as_bytes());
    buf.push(b',');
    buf.extend_from_slice(plan.region_code.as_bytes());
    buf.push(b',');
    buf.extend_from_slice(cfg.currency.as_bytes());
    buf.push(b',');
    push_date(buf, plan.onboarded);
    buf.push(b'\n');
}

#[cfg(test)]
mod ceiling {
    //! What the ex-ante oracle knows that no payment history can show: an analysis of the
    //! shipped model's population (`models/sc-2026.12-sim44/FINDINGS.md`, section 1), not a
    //! check. `cargo test --release --lib ceiling -- --ignored --nocapture` (about 20 s).
    //!
    //! Every ranking below is judged by its *expected* AUC against the outcome probabilities
    //! (the hindsight PDs the outcomes are drawn from), over every matured loan of the window,
    //! so no outcome noise enters the comparison.
    use super::*;

    /// The AUC expected when each loan defaults with probability `p` and is ranked by `r`
    /// (higher = riskier): Σ p_i (1 − p_j) [r_i > r_j] / Σ p_i (1 − p_j) over i ≠ j, ties half.
    fn expected_auc(r: &[f64], p: &[f64]) -> f64 {
        let mut idx: Vec<usize> = (0..r.len()).collect();
        idx.sort_by(|&a, &b| r[a].total_cmp(&r[b]));
        let (mut num, mut below_good, mut i) = (0.0, 0.0, 0);
        while i < idx.len() {
            let mut j = i;
            let (mut bad, mut good) = (0.0, 0.0);
            while j < idx.len() && r[idx[j]] == r[idx[i]] {
                bad += p[idx[j]];
                good += 1.0 - p[idx[j]];
                j += 1;
            }
            num += bad * below_good + 0.5 * bad * good;
            below_good += good;
            i = j;
        }
        let (tb, tg): (f64, f64) = (p.iter().sum(), p.iter().map(|x| 1.0 - x).sum());
        // a loan is never paired with itself
        let same: f64 = p.iter().map(|x| x * (1.0 - x)).sum();
        (num - 0.5 * same) / (tb * tg - same)
    }

    /// 9-point Gauss–Hermite rule for `E[f(ε)]`, ε ~ N(0, 1): nodes `√2·x_i`, weights
    /// `w_i / √π` (they sum to 1).
    const GAUSS_HERMITE: [(f64, f64); 9] = [
        (0.0, 0.406_349_206_349_206_3),
        (0.723_551_018_752_837_6, 0.244_097_502_894_939_1),
        (-0.723_551_018_752_837_6, 0.244_097_502_894_939_1),
        (1.468_553_289_216_668, 0.049_916_406_765_217_88),
        (-1.468_553_289_216_668, 0.049_916_406_765_217_88),
        (2.266_580_584_531_843, 0.002_789_141_473_089_7),
        (-2.266_580_584_531_843, 0.002_789_141_473_089_7),
        (3.190_993_201_781_528, 0.000_016_715_283_027),
        (-3.190_993_201_781_528, 0.000_016_715_283_027),
    ];

    /// The ex-ante PD without the loan's ε: the term's futures (200 paths) and ε both averaged.
    fn ex_ante_pd_without_eps(at: &Disbursement, alpha: f64, rng: &mut ChaCha8Rng) -> f64 {
        let at = Disbursement { eps: 0.0, ..*at };
        mean_over_futures(&at, 200, rng, |score| {
            GAUSS_HERMITE
                .iter()
                .map(|(x, w)| w * sigmoid(alpha + score + 0.6 * std::f64::consts::SQRT_2 * x))
                .sum::<f64>()
        })
    }

    #[test]
    #[ignore]
    fn ceiling_of_what_the_history_can_show() {
        // the shipped model's population (models/sc-2026.12-sim45/REPRODUCE.md, the same as sim44's)
        let cfg = SimConfig {
            merchants: 110_000,
            seed: 42,
            history_days: 730,
            term_days: Some(90),
            ..SimConfig::default()
        };
        let plans: Vec<Plan> = (0..cfg.merchants).map(|i| plan_merchant(&cfg, i)).collect();
        let alpha = calibrate(&plans, cfg.default_rate);
        // the population's mean repeat-customer logit over categories (30/25/20/15/10 %)
        let mean_logit: f64 = CATEGORIES
            .iter()
            .map(|c| c.weight * c.repeat_logit)
            .sum::<f64>()
            / CATEGORIES.iter().map(|c| c.weight).sum::<f64>();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut rankings: Vec<(&str, Vec<f64>)> = [
            "ex-ante PD (the target's oracle, with the loan's ε)",
            "ex-ante PD without ε",
            "health on the disbursement day alone",
            "repeat-customer logit that day, category unknown",
            "repeat-customer share over the 90 days before, noise-free, category unknown",
            "that logit combined with the exact health change since onboarding",
            "that logit combined with the exact health change over 365 days",
            "health averaged over the 90 days before, category known",
            "health averaged over the 30 days before, category known",
            "health averaged over the 14 days before, category known",
        ]
        .iter()
        .map(|n| (*n, Vec::new()))
        .collect();
        let mut hindsight = Vec::new();
        for plan in &plans {
            let c = CATEGORIES[plan.category].repeat_logit;
            for l in &plan.loans {
                if !plan.exported(l) || l.day + l.term > plan.history_days {
                    continue; // not a matured loan of the window: not a dataset row
                }
                let at = l.at_disbursement;
                let d = l.day as usize;
                let h_d = at.health.base + at.health.transitory;
                hindsight.push(sigmoid(alpha + l.score));
                let from = d.saturating_sub(90);
                let share_90 = plan.health[from..d.max(from + 1)]
                    .iter()
                    .map(|&h| sigmoid(c + 0.8 * f64::from(h)))
                    .sum::<f64>()
                    / (d - from).max(1) as f64;
                // health read from the repeat logit with the category's offset unknown (taken
                // as the population mean), combined with an exactly known change of health
                // `Δ`: h_d = h_0 + Δ, the repeat logit gives h_d + u (u: the category's offset
                // over 0.8, sd ≈ 0.71), the prior of h_0 has sd 0.9, so the best linear
                // estimate is 0.62 · (logit reading) + 0.38 · Δ
                let reading = (c - mean_logit) / 0.8 + h_d;
                let since = |days: usize| h_d - f64::from(plan.health[d.saturating_sub(days)]);
                let mean_health = |days: usize| {
                    let from = d.saturating_sub(days);
                    plan.health[from..d.max(from + 1)]
                        .iter()
                        .map(|&h| f64::from(h))
                        .sum::<f64>()
                        / (d - from).max(1) as f64
                };
                let values = [
                    ex_ante_pd(&at, alpha, 200, &mut rng),
                    ex_ante_pd_without_eps(&at, alpha, &mut rng),
                    -h_d,
                    -(c + 0.8 * h_d),
                    -share_90,
                    -(0.62 * reading + 0.38 * since(d)),
                    -(0.62 * reading + 0.38 * since(365)),
                    -mean_health(90),
                    -mean_health(30),
                    -mean_health(14),
                ];
                for ((_, v), x) in rankings.iter_mut().zip(values) {
                    v.push(x);
                }
            }
        }
        println!("{} matured loans of the window", hindsight.len());
        println!("| ranking by | expected AUC | / the ex-ante oracle |");
        println!("|---|---|---|");
        let oracle = expected_auc(&rankings[0].1, &hindsight);
        for (name, r) in &rankings {
            let a = expected_auc(r, &hindsight);
            println!("| {name} | {a:.4} | {:.3} |", a / oracle);
        }
    }
}
