//! A synthetic population of merchants with known risk: `merchants.csv`, `payments.csv`,
//! `loans.csv` (what `smecredit import` reads) and `truth.csv` (each loan's true probability of
//! default: `true_pd`, the hindsight PD its outcome was drawn from, and `ex_ante_pd`, the PD as of
//! its disbursement day). The generative model is documented in `src/simulate/README.md`.
//!
//! Deterministic for a seed: every merchant draws from its own ChaCha stream keyed by
//! (seed, merchant index, phase), so the output does not depend on the number of threads.

mod fmt;
mod model;

use crate::domain::Currency;
use anyhow::{Context, bail};
use chrono::NaiveDate;
use model::{
    MerchantOutput, MerchantStats, Plan, calibrate, generate_merchant, merchant_row, plan_merchant,
};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, mpsc};

/// Settings of a simulation run.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Number of merchants (≥ 1).
    pub merchants: usize,
    pub seed: u64,
    /// Target share of disbursed loans that default within their term (0 < rate < 1).
    pub default_rate: f64,
    /// Export date: every payment occurred before `end` 00:00 UTC; a loan whose term ends after
    /// `end` is still open. Fixed, so that output never depends on today's date.
    pub end: NaiveDate,
    /// Length of the simulated window: the loans disbursed in the `history_days` days before
    /// `end` are exported. Merchants are onboarded continuously, uniformly over the
    /// `history_days + 935` days before `end` (the platform is older than the window, and every
    /// loan age occurs on every day of it: a stationary population; see `src/simulate/README.md`),
    /// and their payments are exported from onboarding.
    pub history_days: u32,
    /// Share of thin-file merchants: one loan (probability 85 %) after 14 to 89 days of trading.
    pub thin_file_share: f64,
    /// ISO 4217 code with 2 decimal places.
    pub currency: String,
    /// `Some(T)`: every loan has a term of T days (1–180), e.g. 90 for a product priced over 90
    /// days. `None` (default): terms 30/60/90/180 days with probability 20/25/35/20 %. The term
    /// draw is made either way, so nothing else about a merchant changes except what follows from
    /// the term (loan timing, PD).
    pub term_days: Option<u32>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            merchants: 1_000,
            seed: 42,
            default_rate: 0.05,
            end: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap_or(NaiveDate::MIN),
            history_days: 365,
            thin_file_share: 0.15,
            currency: "CNY".to_string(),
            term_days: None,
        }
    }
}

impl SimConfig {
    /// Checks every setting; the error names the offending value.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.merchants == 0 || self.merchants > 10_000_000 {
            bail!(
                "merchants must be between 1 and 10000000, got {}",
                self.merchants
            );
        }
        if !(self.default_rate > 0.0 && self.default_rate < 1.0) {
            bail!(
                "default_rate must be strictly between 0 and 1, got {}",
                self.default_rate
            );
        }
        if let Some(t) = self.term_days
            && !(1..=180).contains(&t)
        {
            bail!("term_days must be between 1 and 180, got {t}");
        }
        if !(150..=3650).contains(&self.history_days) {
            bail!(
                "history_days must be between 150 and 3650, got {}",
                self.history_days
            );
        }
        if !(0.0..=1.0).contains(&self.thin_file_share) {
            bail!(
                "thin_file_share must be between 0 and 1, got {}",
                self.thin_file_share
            );
        }
        let currency =
            Currency::parse(&self.currency).map_err(|e| anyhow::anyhow!("currency: {e}"))?;
        if currency.exponent() != 2 {
            bail!(
                "currency must have 2 decimal places (like CNY), {} has {}",
                self.currency,
                currency.exponent()
            );
        }
        let earliest = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(NaiveDate::MIN)
            + chrono::Duration::days(
                i64::from(self.history_days) + i64::from(model::MAX_LOAN_AGE_DAYS) + 1,
            );
        if self.end < earliest {
            bail!(
                "end {} is too early: with history_days {} merchants are onboarded from {} days \
                 before it, so payments would predate 2000-01-01",
                self.end,
                self.history_days,
                self.history_days + model::MAX_LOAN_AGE_DAYS
            );
        }
        let last = NaiveDate::from_ymd_opt(model::LAST_LNY_YEAR, 12, 31).unwrap_or(NaiveDate::MAX);
        if self.end > last {
            bail!(
                "end {} is beyond {last}, the last year of the Lunar New Year table",
                self.end
            );
        }
        let today = chrono::Utc::now().date_naive();
        if self.end > today {
            bail!(
                "end {} is in the future (today is {today}); import would refuse its payments",
                self.end
            );
        }
        Ok(())
    }
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSummary {
    pub merchants: usize,
    /// Merchants with a thin file (borrowing before 90 days of history).
    pub thin_file_merchants: usize,
    pub payments: u64,
    /// Loans disbursed inside the simulated window (the rows of `loans.csv`).
    pub loans: u64,
    /// Loans whose term ended by `end` (they all have an outcome).
    pub matured_loans: u64,
    /// Share of all loans whose drawn outcome is a default (including open loans that will
    /// default after `end`): the quantity calibrated to `default_rate`.
    pub realised_default_rate: f64,
    /// Share of matured loans that defaulted: what a user of the CSV files can observe.
    pub matured_default_rate: f64,
    /// Mean of the true PDs of all loans (the hindsight PDs the outcomes are drawn from).
    pub mean_true_pd: f64,
    /// Mean of the ex-ante PDs of all loans (the same in expectation: each is the hindsight PD
    /// averaged over the futures possible on the disbursement day).
    pub mean_ex_ante_pd: f64,
    /// The calibrated intercept of the PD model.
    pub intercept: f64,
}

const MERCHANTS_HEADER: &[u8] =
    b"merchant_id,name,category,region_type,region_code,currency,onboarded_on\n";
const PAYMENTS_HEADER: &[u8] =
    b"merchant_id,payment_id,occurred_at,amount,currency,kind,channel,payer_ref\n";
const LOANS_HEADER: &[u8] =
    b"loan_id,merchant_id,disbursed_on,principal,currency,term_days,outcome,defaulted_on\n";
const TRUTH_HEADER: &[u8] = b"loan_id,merchant_id,true_pd,ex_ante_pd\n";

fn create(dir: &Path, name: &str) -> anyhow::Result<BufWriter<File>> {
    let path = dir.join(name);
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

fn workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
}

/// How many merchants (in hand-out order) a worker may start ahead of the writer, per worker: the
/// writer emits merchants in index order, so without a bound one slow merchant (an old one, with
/// years of payments: several MB of rows) lets every other worker's output pile up in the reorder
/// buffer. With the bound, at most `AHEAD_PER_WORKER × workers` merchants' outputs are in flight
/// (being generated, in the channel, or waiting to be written), whatever their speed: enough to
/// keep the other workers busy past one slow merchant, and a bound on memory (32 on 2
/// cores: 193 MB peak for `simulate --merchants 10000`, against 467 MB unbounded).
const AHEAD_PER_WORKER: usize = 16;

fn ahead_limit() -> usize {
    AHEAD_PER_WORKER * workers()
}

/// The bound of [`ahead_limit`]: a worker that took hand-out number `k` waits until fewer than
/// `limit` merchants before it are still unwritten. The worker holding the oldest unwritten
/// merchant never waits (`k = written < written + limit`), so the writer always progresses.
/// `close` (writer gave up, or a worker panicked) releases every waiting worker.
struct AheadGate {
    limit: usize,
    state: Mutex<(usize, bool)>, // (merchants written, closed)
    cv: Condvar,
}

impl AheadGate {
    fn new(limit: usize) -> AheadGate {
        AheadGate {
            limit: limit.max(1),
            state: Mutex::new((0, false)),
            cv: Condvar::new(),
        }
    }

    /// Blocks until hand-out `k` may start; false if the gate was closed (stop working).
    fn wait(&self, k: usize) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while !st.1 && k >= st.0 + self.limit {
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        !st.1
    }

    fn written(&self, n: usize) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0 = n;
        self.cv.notify_all();
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.cv.notify_all();
    }
}

/// Closes the gate when a worker unwinds, so that no other worker waits forever for a
/// merchant that will never be written (the panic itself surfaces from `thread::scope`).
struct CloseOnPanic<'a>(&'a AheadGate);

impl Drop for CloseOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.close();
        }
    }
}

/// Phase 1 for the whole population, in parallel, in index order.
fn plan_population(cfg: &SimConfig) -> Vec<Plan> {
    let n = cfg.merchants;
    let threads = workers().min(n);
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t * chunk..((t + 1) * chunk).min(n))
                        .map(|i| plan_merchant(cfg, i))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Simulates the population and writes the four CSV files into `out_dir` (created if needed).
pub fn run(config: &SimConfig, out_dir: &Path, progress: bool) -> anyhow::Result<SimSummary> {
    config.validate()?;
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;

    let plans = plan_population(config);
    let alpha = calibrate(&plans, config.default_rate);

    let mut merchants = create(out_dir, "merchants.csv")?;
    merchants.write_all(MERCHANTS_HEADER)?;
    let mut row = Vec::with_capacity(128);
    for p in &plans {
        row.clear();
        merchant_row(&mut row, config, p);
        merchants.write_all(&row)?;
    }
    merchants.flush()?;

    let mut payments = create(out_dir, "payments.csv")?;
    let mut loans = create(out_dir, "loans.csv")?;
    let mut truth = create(out_dir, "truth.csv")?;
    payments.write_all(PAYMENTS_HEADER)?;
    loans.write_all(LOANS_HEADER)?;
    truth.write_all(TRUTH_HEADER)?;

    let mut total = MerchantStats::default();
    let all: Vec<usize> = (0..plans.len()).collect();
    generate_in_order(
        config,
        &plans,
        alpha,
        &all,
        progress,
        |_, out| out,
        |out: MerchantOutput| {
            payments.write_all(&out.payments)?;
            loans.write_all(&out.loans)?;
            truth.write_all(&out.truth)?;
            let st = out.stats;
            total.payments += st.payments;
            total.loans += st.loans;
            total.defaults_drawn += st.defaults_drawn;
            total.matured += st.matured;
            total.matured_defaults += st.matured_defaults;
            total.pd_sum += st.pd_sum;
            total.ex_ante_pd_sum += st.ex_ante_pd_sum;
            Ok(())
        },
    )?;
    for w in [&mut payments, &mut loans, &mut truth] {
        w.flush()?;
    }

    let ratio = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
    Ok(SimSummary {
        merchants: plans.len(),
        thin_file_merchants: plans.iter().filter(|p| p.thin).count(),
        payments: total.payments,
        loans: total.loans,
        matured_loans: total.matured,
        realised_default_rate: ratio(total.defaults_drawn, total.loans),
        matured_default_rate: ratio(total.matured_defaults, total.matured),
        mean_true_pd: if total.loans > 0 {
            total.pd_sum / total.loans as f64
        } else {
            0.0
        },
        mean_ex_ante_pd: if total.loans > 0 {
            total.ex_ante_pd_sum / total.loans as f64
        } else {
            0.0
        },
        intercept: alpha,
    })
}

/// One simulated merchant as CSV rows: exactly the bytes [`run`] writes for it into
/// `merchants.csv`, `payments.csv`, `loans.csv` and `truth.csv` (without headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMerchantRows {
    pub index: usize,
    pub merchant: Vec<u8>,
    pub payments: Vec<u8>,
    pub loans: Vec<u8>,
    pub truth: Vec<u8>,
}

/// In-memory twin of [`run`]: simulates the population and hands each merchant's rows to `sink`
/// in merchant index order, without writing files. Memory stays bounded (at most [`ahead_limit`] merchants
/// in flight), so populations far larger than the disk would hold can be consumed. The rows are
/// byte-identical to what [`run`] writes for the same config (tested).
pub fn for_each_merchant<F>(config: &SimConfig, progress: bool, sink: F) -> anyhow::Result<()>
where
    F: FnMut(SimMerchantRows) -> anyhow::Result<()>,
{
    map_merchants(config, progress, |r| r, sink)
}

/// [`for_each_merchant`] with a `map` step run on the worker threads (in parallel) before the
/// results reach `sink` in merchant index order.
pub fn map_merchants<T, M, F>(
    config: &SimConfig,
    progress: bool,
    map: M,
    sink: F,
) -> anyhow::Result<()>
where
    T: Send,
    M: Fn(SimMerchantRows) -> T + Sync,
    F: FnMut(T) -> anyhow::Result<()>,
{
    map_selected(config, progress, false, map, sink)
}

/// [`map_merchants`] for the merchants with at least one loan in `loans.csv` only, i.e. all
/// that a training table needs: the others (never borrowed in the window) are planned but their
/// payments are not generated, which saves most of the work when the window is a small part of
/// the platform's life. The rows of the merchants handed on are the same bytes.
pub fn map_borrowers<T, M, F>(
    config: &SimConfig,
    progress: bool,
    map: M,
    sink: F,
) -> anyhow::Result<()>
where
    T: Send,
    M: Fn(SimMerchantRows) -> T + Sync,
    F: FnMut(T) -> anyhow::Result<()>,
{
    map_selected(config, progress, true, map, sink)
}

fn map_selected<T, M, F>(
    config: &SimConfig,
    progress: bool,
    only_borrowers: bool,
    map: M,
    sink: F,
) -> anyhow::Result<()>
where
    T: Send,
    M: Fn(SimMerchantRows) -> T + Sync,
    F: FnMut(T) -> anyhow::Result<()>,
{
    config.validate()?;
    let plans = plan_population(config);
    let alpha = calibrate(&plans, config.default_rate);
    let selected: Vec<usize> = (0..plans.len())
        .filter(|&i| !only_borrowers || plans[i].loans.iter().any(|l| plans[i].exported(l)))
        .collect();
    generate_in_order(
        config,
        &plans,
        alpha,
        &selected,
        progress,
        |i, out| {
            let mut merchant = Vec::with_capacity(128);
            merchant_row(&mut merchant, config, &plans[i]);
            map(SimMerchantRows {
                index: i,
                merchant,
                payments: out.payments,
                loans: out.loans,
                truth: out.truth,
            })
        },
        sink,
    )
}

/// Generates the merchants `selected` (indices into `plans`) on worker threads and hands
/// `map(index, output)` of each, computed on the worker, to `sink` in the order of `selected`,
/// whatever the order of completion. Workers may run at most [`ahead_limit`] merchants ahead of
/// `sink` (the gate), so memory stays bounded however slow one merchant is.
fn generate_in_order<T, M, F>(
    config: &SimConfig,
    plans: &[Plan],
    alpha: f64,
    selected: &[usize],
    progress: bool,
    map: M,
    mut sink: F,
) -> anyhow::Result<()>
where
    T: Send,
    M: Fn(usize, MerchantOutput) -> T + Sync,
    F: FnMut(T) -> anyhow::Result<()>,
{
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(selected.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} simulating [{bar:40}] {pos}/{len} merchants, {elapsed_precise} (eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let next = AtomicUsize::new(0);
    let threads = workers().min(selected.len()).max(1);
    let gate = AheadGate::new(ahead_limit());
    let result: anyhow::Result<()> = std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<(usize, T)>(ahead_limit());
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, map, gate) = (&next, &map, &gate);
            s.spawn(move || {
                let _close = CloseOnPanic(gate);
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = selected.get(k) else {
                        break;
                    };
                    if !gate.wait(k) {
                        break;
                    }
                    let mapped = map(i, generate_merchant(config, &plans[i], alpha));
                    if tx.send((k, mapped)).is_err() {
                        break; // the consumer gave up
                    }
                }
            });
        }
        drop(tx);
        // hand on in index order; the gate bounds `pending`
        let mut pending: BTreeMap<usize, T> = BTreeMap::new();
        let mut expected = 0usize;
        let consume = || -> anyhow::Result<()> {
            for (k, out) in rx {
                pending.insert(k, out);
                let before = expected;
                while let Some(out) = pending.remove(&expected) {
                    sink(out)?;
                    expected += 1;
                    bar.inc(1);
                }
                if expected != before {
                    gate.written(expected);
                }
            }
            Ok(())
        };
        let consumed = consume();
        gate.close(); // releases waiting workers if the sink stopped on an error
        consumed?;
        if expected != selected.len() {
            bail!(
                "a simulation worker stopped early ({expected} of {} merchants)",
                selected.len()
            );
        }
        Ok(())
    });
    bar.finish_and_clear();
    result
}

#[cfg(test)]
mod tests {
    use super::model::{
        self, CATEGORIES, draw_outcomes, expected_defaults, outcome_rng, season_factor,
    };
    use super::*;
    use crate::domain::RegionType;

    fn config(merchants: usize, seed: u64) -> SimConfig {
        SimConfig {
            merchants,
            seed,
            ..SimConfig::default()
        }
    }

    #[test]
    fn the_default_end_is_fixed_and_valid() {
        let c = SimConfig::default();
        assert_eq!(c.end, NaiveDate::from_ymd_opt(2026, 6, 30).unwrap());
        assert_eq!(c.default_rate, 0.05);
        c.validate().unwrap();
    }

    #[test]
    fn validation_names_the_offending_value() {
        let bad = |f: fn(&mut SimConfig), needle: &str| {
            let mut c = SimConfig::default();
            f(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        };
        bad(
            |c| c.merchants = 0,
            "merchants must be between 1 and 10000000, got 0",
        );
        bad(
            |c| c.default_rate = 1.0,
            "default_rate must be strictly between 0 and 1, got 1",
        );
        bad(|c| c.default_rate = f64::NAN, "got NaN");
        bad(
            |c| c.history_days = 30,
            "history_days must be between 150 and 3650, got 30",
        );
        bad(
            |c| c.thin_file_share = 1.5,
            "thin_file_share must be between 0 and 1, got 1.5",
        );
        bad(|c| c.currency = "JPY".into(), "JPY has 0");
        bad(
            |c| c.currency = "yuan".into(),
            "\"yuan\" is not an ISO 4217",
        );
        bad(
            |c| c.end = NaiveDate::from_ymd_opt(2000, 3, 1).unwrap(),
            "end 2000-03-01 is too early",
        );
        bad(
            |c| c.end = NaiveDate::from_ymd_opt(2035, 12, 31).unwrap(),
            "is in the future",
        );
    }

    #[test]
    fn the_drawn_default_rate_hits_the_setting() {
        for (rate, n) in [(0.05, 12_000), (0.12, 4_000)] {
            let cfg = SimConfig {
                default_rate: rate,
                ..config(n, 3)
            };
            let plans = plan_population(&cfg);
            let alpha = calibrate(&plans, rate);
            let (d, l) = plans
                .iter()
                .map(|p| expected_defaults(p, alpha))
                .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
            assert!(
                (d / l - rate).abs() < 1e-9,
                "expected rate {} at {rate}",
                d / l
            );
            let (mut loans, mut defaults, mut pd_sum) = (0usize, 0usize, 0.0);
            for p in &plans {
                let (outcomes, _) = draw_outcomes(p, alpha, &mut outcome_rng(&cfg, p));
                // the rate is calibrated on the exported loans (those inside the window)
                for (_, o) in p.loans.iter().zip(&outcomes).filter(|(l, _)| p.exported(l)) {
                    loans += 1;
                    defaults += usize::from(o.default_day.is_some());
                    pd_sum += o.pd;
                }
            }
            let realised = defaults as f64 / loans as f64;
            let se = (rate * (1.0 - rate) / loans as f64).sqrt();
            assert!(
                (realised - rate).abs() < 4.0 * se,
                "realised {realised} vs {rate} over {loans} loans"
            );
            assert!((pd_sum / loans as f64 - rate).abs() < 4.0 * se);
        }
    }

    #[test]
    fn risk_does_not_depend_on_region_type_but_seasonality_does() {
        let cfg = config(12_000, 5);
        let plans = plan_population(&cfg);
        let alpha = calibrate(&plans, cfg.default_rate);
        let mut pd = [(0.0, 0usize); 3];
        let mut health0 = [(0.0, 0usize); 3];
        for p in &plans {
            let r = RegionType::ALL.iter().position(|x| *x == p.region).unwrap();
            for l in &p.loans {
                pd[r].0 += 1.0 / (1.0 + (-(alpha + l.score)).exp());
                pd[r].1 += 1;
            }
            health0[r].0 += f64::from(p.health[0]);
            health0[r].1 += 1;
        }
        let mean = |(s, n): (f64, usize)| s / n as f64;
        let overall =
            pd.iter().map(|x| x.0).sum::<f64>() / pd.iter().map(|x| x.1).sum::<usize>() as f64;
        for r in 0..3 {
            assert!(
                pd[r].1 > 1_500,
                "{:?}: {} loans",
                RegionType::ALL[r],
                pd[r].1
            );
            assert!(
                (mean(pd[r]) - overall).abs() < 0.01,
                "{:?}: mean true PD {} vs {overall}",
                RegionType::ALL[r],
                mean(pd[r])
            );
            assert!(
                (mean(health0[r])).abs() < 0.05,
                "{:?} health {}",
                RegionType::ALL[r],
                mean(health0[r])
            );
        }
        // rural trades more seasonally: the spread of the yearly multiplier is larger
        let grocery = &CATEGORIES[1];
        let spread = |region| {
            let xs: Vec<f64> = (0..365)
                .map(|d| {
                    season_factor(
                        grocery,
                        region,
                        NaiveDate::from_ymd_opt(2025, 3, 1).unwrap() + chrono::Duration::days(d),
                    )
                })
                .collect();
            let m = xs.iter().sum::<f64>() / 365.0;
            (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 365.0).sqrt()
        };
        assert!(spread(RegionType::Rural) > 1.2 * spread(RegionType::Urban));
    }

    #[test]
    fn lunar_new_year_is_a_dip_and_the_weeks_before_a_rush() {
        let lny = NaiveDate::from_ymd_opt(2026, 2, 17).unwrap();
        for cat in &CATEGORIES {
            let during = season_factor(cat, RegionType::Urban, lny + chrono::Duration::days(2));
            let month_later =
                season_factor(cat, RegionType::Urban, lny + chrono::Duration::days(30));
            assert!(
                during < 0.6 * month_later,
                "{}: {during} vs {month_later}",
                cat.slug
            );
        }
        let grocery = &CATEGORIES[1];
        let before = season_factor(grocery, RegionType::Urban, lny - chrono::Duration::days(7));
        let after = season_factor(grocery, RegionType::Urban, lny + chrono::Duration::days(30));
        assert!(before > 1.2 * after);
    }

    #[test]
    fn thin_files_borrow_early_others_after_90_days_and_some_merchants_fail() {
        let cfg = config(5_000, 9);
        let plans = plan_population(&cfg);
        let thin = plans.iter().filter(|p| p.thin).count() as f64 / plans.len() as f64;
        assert!(
            (thin - cfg.thin_file_share).abs() < 0.03,
            "thin share {thin}"
        );
        for p in &plans {
            assert!((1..=cfg.history_days + model::MAX_LOAN_AGE_DAYS).contains(&p.history_days));
            for (i, l) in p.loans.iter().enumerate() {
                if p.thin {
                    assert!((14..90).contains(&l.day));
                } else {
                    assert!((90..=model::MAX_LOAN_AGE_DAYS).contains(&l.day));
                }
                assert!(l.day + 5 <= p.history_days);
                assert!(p.fail_day.is_none_or(|f| l.day < f));
                if i > 0 {
                    let prev = &p.loans[i - 1];
                    assert!(l.day >= prev.day + prev.term, "loans overlap");
                }
            }
        }
        let failing =
            plans.iter().filter(|p| p.fail_day.is_some()).count() as f64 / plans.len() as f64;
        assert!((0.01..0.25).contains(&failing), "failing share {failing}");
        // merchants onboarded too recently to have reached their first loan have none yet, so
        // fewer than the 75 % (ordinary) and 85 % (thin) of merchants who plan one
        let with_loans =
            plans.iter().filter(|p| !p.loans.is_empty()).count() as f64 / plans.len() as f64;
        assert!(
            (0.5..0.8).contains(&with_loans),
            "share with loans {with_loans}"
        );
        assert!(plans.iter().any(|p| p.loans.len() >= 2));
        // some merchants borrowed before the window and only their later loans are exported
        assert!(
            plans
                .iter()
                .any(|p| p.loans.len() >= 2 && !p.exported(&p.loans[0]) && p.exported(&p.loans[1]))
        );
    }

    /// Onboarding is continuous, so the loans early and late in the window go to the same mix
    /// of merchants: the same ages, the same share of thin files, the same spread of health. (The
    /// design before it onboarded every ordinary merchant in the window's first quarter: loans in
    /// the second half of a two-year window were a year older on average, with a wider spread of
    /// health.)
    #[test]
    fn loans_early_and_late_in_the_window_go_to_the_same_population() {
        let cfg = SimConfig {
            history_days: 730,
            term_days: Some(90),
            ..config(12_000, 13)
        };
        let plans = plan_population(&cfg);
        // per exported loan: age at disbursement, thin file (0/1), health at disbursement and its
        // square, by half of the window
        const NAMES: [&str; 4] = ["age", "thin", "health", "squared health"];
        let mut halves: [Vec<[f64; 4]>; 2] = [Vec::new(), Vec::new()];
        for p in &plans {
            for l in p.loans.iter().filter(|l| p.exported(l)) {
                let since_start = i64::from(l.day) - p.window_start;
                let half = usize::from(since_start >= i64::from(cfg.history_days / 2));
                let h = l.at_disbursement.health.base + l.at_disbursement.health.transitory;
                halves[half].push([f64::from(l.day), f64::from(u8::from(p.thin)), h, h * h]);
            }
        }
        assert!(
            halves.iter().all(|h| h.len() > 2_000),
            "{}",
            halves[0].len()
        );
        // mean, variance and count of field `k` in one half
        let stats = |v: &[[f64; 4]], k: usize| {
            let n = v.len() as f64;
            let m = v.iter().map(|x| x[k]).sum::<f64>() / n;
            let var = v.iter().map(|x| (x[k] - m).powi(2)).sum::<f64>() / n;
            (m, var, n)
        };
        for (k, name) in NAMES.iter().enumerate() {
            let (m0, v0, n0) = stats(&halves[0], k);
            let (m1, v1, n1) = stats(&halves[1], k);
            let se = (v0 / n0 + v1 / n1).sqrt();
            assert!(
                (m0 - m1).abs() < 4.0 * se,
                "{name}: {m0} in the first half of the window, {m1} in the second (se {se})"
            );
        }
    }

    #[test]
    fn in_memory_rows_are_the_bytes_run_writes() {
        let cfg = config(40, 11);
        let dir = tempfile::tempdir().unwrap();
        run(&cfg, dir.path(), false).unwrap();
        let mut files = [
            MERCHANTS_HEADER.to_vec(),
            PAYMENTS_HEADER.to_vec(),
            LOANS_HEADER.to_vec(),
            TRUTH_HEADER.to_vec(),
        ];
        for_each_merchant(&cfg, false, |r| {
            files[0].extend_from_slice(&r.merchant);
            files[1].extend_from_slice(&r.payments);
            files[2].extend_from_slice(&r.loans);
            files[3].extend_from_slice(&r.truth);
            Ok(())
        })
        .unwrap();
        for (bytes, name) in
            files
                .iter()
                .zip(["merchants.csv", "payments.csv", "loans.csv", "truth.csv"])
        {
            assert_eq!(
                bytes,
                &std::fs::read(dir.path().join(name)).unwrap(),
                "{name}"
            );
        }
    }

    #[test]
    fn the_ahead_gate_holds_workers_back_until_the_writer_catches_up() {
        let gate = AheadGate::new(3);
        assert!(gate.wait(0) && gate.wait(2)); // within the bound: no wait
        std::thread::scope(|s| {
            let waiter = s.spawn(|| gate.wait(3));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(
                !waiter.is_finished(),
                "hand-out 3 ran 3 ahead of the writer"
            );
            gate.written(1);
            assert!(waiter.join().unwrap());
        });
        std::thread::scope(|s| {
            let waiter = s.spawn(|| gate.wait(10));
            gate.close();
            assert!(
                !waiter.join().unwrap(),
                "a closed gate releases and stops workers"
            );
        });
    }

    #[test]
    fn a_slow_merchant_does_not_let_the_others_pile_up() {
        use std::sync::atomic::AtomicUsize;
        // merchant 0 is slow; without the bound the other workers would run to the end while
        // its output is missing, and the reorder buffer would hold them all
        let limit = ahead_limit();
        let cfg = config(limit + 60, 3);
        let handed_on = AtomicUsize::new(0);
        let max_ahead = AtomicUsize::new(0);
        map_merchants(
            &cfg,
            false,
            |r| {
                if r.index == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
                let ahead = r.index - handed_on.load(Ordering::SeqCst).min(r.index);
                max_ahead.fetch_max(ahead, Ordering::SeqCst);
                r.index
            },
            |i| {
                assert_eq!(i, handed_on.load(Ordering::SeqCst));
                handed_on.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(handed_on.load(Ordering::SeqCst), limit + 60);
        let max_ahead = max_ahead.load(Ordering::SeqCst);
        assert!(
            max_ahead < limit,
            "a worker ran {max_ahead} merchants ahead"
        );
    }

    // `sha256sum` of `smecredit simulate --merchants 200 --seed 7` since continuous onboarding
    // (the stationary population); any change to what the simulator draws changes them, and
    // should be deliberate
    const GOLDEN_MERCHANTS: &str =
        "1c6717c4bc26b8237fda5af4ac2a5243d27d8d94566cad92a6fbe2ea8130b721";
    const GOLDEN_PAYMENTS: &str =
        "98a1bd92a50172c2ba8ad0d1a9b5a1f5fbbfa4feec4712615dbddbecf9773977";
    const GOLDEN_LOANS: &str = "7a03ab21656bb3193eb0baeb6ce32ed213989a0842f6527494d8bf376ad57a43";
    const GOLDEN_TRUTH: &str = "9f54d85ae40d72c2e8bce060540658c7215a518f68c5a720eae1ea3d973671f5";

    fn sha256_hex(bytes: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn the_files_of_seed_7_are_pinned() {
        let cfg = config(200, 7);
        let dir = tempfile::tempdir().unwrap();
        run(&cfg, dir.path(), false).unwrap();
        let file = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
        assert_eq!(
            [
                sha256_hex(&file("merchants.csv")),
                sha256_hex(&file("payments.csv")),
                sha256_hex(&file("loans.csv")),
                sha256_hex(&file("truth.csv")),
            ],
            [
                GOLDEN_MERCHANTS,
                GOLDEN_PAYMENTS,
                GOLDEN_LOANS,
                GOLDEN_TRUTH
            ]
        );
    }

    #[test]
    fn the_ex_ante_pd_does_not_move_when_everything_after_the_disbursement_day_does() {
        let cfg = SimConfig {
            term_days: Some(90),
            ..config(1_200, 3)
        };
        let plans: Vec<Plan> = (0..1_200).map(|i| plan_merchant(&cfg, i)).collect();
        let alpha = calibrate(&plans, cfg.default_rate);
        let truth_rows = |out: &MerchantOutput| -> Vec<(String, String)> {
            String::from_utf8(out.truth.clone())
                .unwrap()
                .lines()
                .map(|l| {
                    let f: Vec<&str> = l.split(',').collect();
                    (f[2].to_string(), f[3].to_string())
                })
                .collect()
        };
        let mut checked = 0;
        // merchants whose first loan is exported, so that it is the first row of truth.csv
        let first_exported = |p: &Plan| p.loans.first().is_some_and(|l| p.exported(l));
        for mut plan in plans.into_iter().filter(first_exported).take(80) {
            let first = &plan.loans[0];
            let d = first.day as usize;
            // what the loan records is the state of the disbursement day
            let at = first.at_disbursement;
            assert!(
                (at.health.base + at.health.transitory - f64::from(plan.health[d])).abs() < 1e-5
            );
            assert_eq!(at.term, first.term);
            let before = truth_rows(&generate_merchant(&cfg, &plan, alpha));
            // another future: health collapses the day after, the merchant fails then, and the
            // hindsight score of every loan knows it
            for h in &mut plan.health[d + 1..] {
                *h = -5.0;
            }
            plan.fail_day = Some(first.day + 1);
            for l in &mut plan.loans {
                l.score += 3.0;
                l.fails_in_term = true;
            }
            let after = truth_rows(&generate_merchant(&cfg, &plan, alpha));
            assert_eq!(
                before[0].1, after[0].1,
                "ex-ante PD of merchant {}",
                plan.index
            );
            assert_ne!(
                before[0].0, after[0].0,
                "hindsight PD of merchant {}",
                plan.index
            );
            checked += 1;
        }
        assert_eq!(checked, 80);
    }

    #[test]
    fn the_ex_ante_pd_is_the_hindsight_pd_averaged_over_the_futures() {
        // E[hindsight | disbursement day] = ex-ante, so the means agree (within the noise of the
        // realised futures), and the ex-ante PDs are less dispersed (law of total variance)
        let cfg = SimConfig {
            term_days: Some(90),
            ..config(3_000, 21)
        };
        let plans: Vec<Plan> = (0..cfg.merchants).map(|i| plan_merchant(&cfg, i)).collect();
        let alpha = calibrate(&plans, cfg.default_rate);
        let (mut hind, mut ante) = (Vec::new(), Vec::new());
        for p in &plans {
            // every planned loan, exported or not: the identity holds for any loan
            for (k, l) in p.loans.iter().enumerate() {
                hind.push(1.0 / (1.0 + (-(alpha + l.score)).exp()));
                ante.push(model::ex_ante_pd(
                    &l.at_disbursement,
                    alpha,
                    200,
                    &mut model::oracle_rng(cfg.seed, p.index, k),
                ));
            }
        }
        let n = hind.len() as f64;
        assert!(n > 2_000.0, "{n}");
        let mean = |v: &[f64]| v.iter().sum::<f64>() / n;
        let var = |v: &[f64]| {
            let m = mean(v);
            v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n
        };
        let diff: Vec<f64> = hind.iter().zip(&ante).map(|(h, a)| h - a).collect();
        let se = (var(&diff) / n).sqrt();
        assert!(mean(&diff).abs() < 4.0 * se, "{} vs se {se}", mean(&diff));
        assert!(var(&ante) < var(&hind), "{} vs {}", var(&ante), var(&hind));
    }

    #[test]
    fn plans_are_deterministic_per_seed_and_index() {
        let a = plan_merchant(&config(10, 1), 7);
        let b = plan_merchant(&config(99, 1), 7);
        assert_eq!(a.name, b.name);
        assert_eq!(a.health, b.health);
        let c = plan_merchant(&config(10, 2), 7);
        assert_ne!(a.health, c.health);
    }

    #[test]
    fn a_fixed_term_changes_only_the_terms_and_what_follows() {
        let fixed = SimConfig {
            term_days: Some(90),
            ..config(300, 4)
        };
        assert!(
            SimConfig {
                term_days: Some(181),
                ..config(1, 1)
            }
            .validate()
            .is_err()
        );
        let mut loans = 0;
        for i in 0..300 {
            let (a, b) = (plan_merchant(&config(300, 4), i), plan_merchant(&fixed, i));
            assert_eq!(a.health, b.health, "same merchant");
            assert!(b.loans.iter().all(|l| l.term == 90));
            if let (Some(x), Some(y)) = (a.loans.first(), b.loans.first()) {
                assert_eq!(x.day, y.day, "first loan on the same day");
            }
            loans += b.loans.len();
        }
        assert!(loans > 200, "{loans}");
    }
}
