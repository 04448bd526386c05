//! End-to-end checks of the simulator's files: determinism, validity under the domain rules,
//! default rate, and that the point-in-time features separate good and bad loans.

use chrono::{DateTime, NaiveDate, Utc};
use smecredit::domain::{
    Category, Channel, Currency, Merchant, MerchantId, Money, PayerRef, Payment, PaymentId,
    PaymentKind, RegionCode, RegionType,
};
use smecredit::features::{
    FeatureId, FeatureValue, MerchantProfile, PaymentFact, as_of_start_of_day, compute,
};
use smecredit::simulate::{SimConfig, SimSummary, run};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn simulate(name: &str, config: &SimConfig) -> (PathBuf, SimSummary) {
    let dir = out_dir(name);
    let summary = run(config, &dir, false).unwrap();
    (dir, summary)
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

/// Rows of a CSV file as vectors of fields, after checking the header.
fn rows<'a>(text: &'a str, header: &str) -> Vec<Vec<&'a str>> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(header));
    let width = header.split(',').count();
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), width, "{l:?}");
            f
        })
        .collect()
}

const FILES: [&str; 4] = ["merchants.csv", "payments.csv", "loans.csv", "truth.csv"];

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let config = SimConfig {
        merchants: 40,
        seed: 7,
        ..SimConfig::default()
    };
    let (a, sa) = simulate("det-a", &config);
    let (b, sb) = simulate("det-b", &config);
    assert_eq!(sa, sb);
    for f in FILES {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} differs"
        );
    }
    let (c, _) = simulate(
        "det-c",
        &SimConfig {
            seed: 8,
            ..config.clone()
        },
    );
    for f in FILES {
        assert!(
            std::fs::read(a.join(f)).unwrap() != std::fs::read(c.join(f)).unwrap(),
            "{f} identical"
        );
    }
    // a prefix of the population is the same population: merchants do not depend on N
    let (d, _) = simulate(
        "det-d",
        &SimConfig {
            merchants: 20,
            ..config
        },
    );
    let first20: Vec<&str> = read(&a, "merchants.csv")
        .lines()
        .take(21)
        .map(|s| s.to_string().leak() as &str)
        .collect();
    let d_lines: Vec<&str> = read(&d, "merchants.csv")
        .lines()
        .map(|s| s.to_string().leak() as &str)
        .collect();
    assert_eq!(first20, d_lines);
}

struct Loan {
    merchant: String,
    disbursed_on: NaiveDate,
    outcome: String,
    true_pd: f64,
}

type Population = (
    BTreeMap<String, Merchant>,
    HashMap<String, Vec<PaymentFact>>,
    Vec<Loan>,
);

/// Reads the four files back, checking every row against the domain rules and the formats.
fn load_and_validate(config: &SimConfig, dir: &Path, summary: &SimSummary) -> Population {
    let now = Utc::now();
    let end = as_of_start_of_day(config.end);
    let cny = Currency::parse("CNY").unwrap();
    let slugs = [
        "food_stall",
        "grocery",
        "retail",
        "services",
        "farm_supplies",
    ];

    // merchants.csv
    let merchants_text = read(dir, "merchants.csv");
    let mut merchants: BTreeMap<String, Merchant> = BTreeMap::new();
    for f in rows(
        &merchants_text,
        "merchant_id,name,category,region_type,region_code,currency,onboarded_on",
    ) {
        assert!(slugs.contains(&f[2]), "{}", f[2]);
        let m = Merchant {
            id: MerchantId::parse(f[0]).unwrap(),
            name: Merchant::parse_name(f[1]).unwrap(),
            category: Category::parse(f[2]).unwrap(),
            region_type: RegionType::parse(f[3]).unwrap(),
            region_code: RegionCode::parse(f[4]).unwrap(),
            currency: Currency::parse(f[5]).unwrap(),
            onboarded_on: NaiveDate::parse_from_str(f[6], "%Y-%m-%d").unwrap(),
        };
        assert!(m.onboarded_on < config.end);
        assert!(
            merchants.insert(f[0].to_string(), m).is_none(),
            "duplicate merchant"
        );
    }
    assert_eq!(merchants.len(), config.merchants);

    // payments.csv
    let payments_text = read(dir, "payments.csv");
    let mut facts: HashMap<String, Vec<PaymentFact>> = HashMap::new();
    let mut ids: HashSet<&str> = HashSet::new();
    let mut kinds: HashMap<PaymentKind, usize> = HashMap::new();
    let mut ticket_by_region: HashMap<RegionType, (i64, i64)> = HashMap::new();
    let mut payer_counts: HashMap<(&str, &str), usize> = HashMap::new();
    let payments = rows(
        &payments_text,
        "merchant_id,payment_id,occurred_at,amount,currency,kind,channel,payer_ref",
    );
    assert_eq!(payments.len() as u64, summary.payments);
    for f in &payments {
        let merchant = &merchants[f[0]];
        assert!(ids.insert(f[1]), "duplicate payment id {}", f[1]);
        assert!(f[2].ends_with('Z') && f[2].len() == 20, "{}", f[2]);
        let at = DateTime::parse_from_rfc3339(f[2])
            .unwrap()
            .with_timezone(&Utc);
        Payment::check_occurred_at(at, now).unwrap();
        assert!(at < end, "{at} is not before end");
        assert!(at >= as_of_start_of_day(merchant.onboarded_on) - chrono::Duration::hours(8));
        let (_, cents) = f[3].split_once('.').unwrap();
        assert_eq!(cents.len(), 2, "{}", f[3]);
        let amount = Payment::check_amount(Money::parse(f[3], cny).unwrap()).unwrap();
        assert_eq!(f[4], "CNY");
        let kind = PaymentKind::parse(f[5]).unwrap();
        *kinds.entry(kind).or_default() += 1;
        let payment = Payment {
            id: PaymentId::parse(f[1]).unwrap(),
            occurred_at: at,
            amount,
            kind,
            channel: Channel::parse(f[6]).unwrap(),
            payer_ref: PayerRef::parse(f[7]).unwrap(),
        };
        if kind == PaymentKind::Sale {
            let t = ticket_by_region.entry(merchant.region_type).or_default();
            t.0 += amount.minor();
            t.1 += 1;
            *payer_counts.entry((f[0], f[7])).or_default() += 1;
        }
        facts
            .entry(f[0].to_string())
            .or_default()
            .push(PaymentFact::from(&payment));
    }
    assert!(
        kinds[&PaymentKind::Refund] > 0 && kinds[&PaymentKind::Chargeback] > 0,
        "{kinds:?}"
    );
    assert!(
        payer_counts.values().any(|&n| n >= 5),
        "no repeat customers"
    );
    let avg = |r| ticket_by_region[&r].0 as f64 / ticket_by_region[&r].1 as f64;
    assert!(
        avg(RegionType::Rural) < avg(RegionType::Urban),
        "rural tickets are smaller"
    );

    // loans.csv and truth.csv
    let truth_text = read(dir, "truth.csv");
    let truth: HashMap<&str, f64> = rows(&truth_text, "loan_id,merchant_id,true_pd,ex_ante_pd")
        .into_iter()
        .map(|f| {
            let pd: f64 = f[2].parse().unwrap();
            assert!(pd > 0.0 && pd < 1.0);
            let ex_ante: f64 = f[3].parse().unwrap();
            assert!(ex_ante > 0.0 && ex_ante < 1.0);
            (f[0], pd)
        })
        .collect();
    let loans_text = read(dir, "loans.csv");
    let mut loans = Vec::new();
    let mut loan_ids = HashSet::new();
    for f in rows(
        &loans_text,
        "loan_id,merchant_id,disbursed_on,principal,currency,term_days,outcome,defaulted_on",
    ) {
        assert!(loan_ids.insert(f[0]));
        MerchantId::parse(f[0]).unwrap();
        let merchant = &merchants[f[1]];
        let disbursed = NaiveDate::parse_from_str(f[2], "%Y-%m-%d").unwrap();
        assert!(disbursed > merchant.onboarded_on && disbursed < config.end);
        let principal = Money::parse(f[3], cny).unwrap();
        assert!(principal.minor() >= 100_000 && f[3].split_once('.').unwrap().1.len() == 2);
        let term: i64 = f[5].parse().unwrap();
        assert!([30, 60, 90, 180].contains(&term));
        let matures = disbursed + chrono::Duration::days(term);
        match f[6] {
            "repaid" => assert!(matures <= config.end && f[7].is_empty()),
            "defaulted" | "written_off" => {
                let d = NaiveDate::parse_from_str(f[7], "%Y-%m-%d").unwrap();
                assert!(d > disbursed && d <= matures && d < config.end, "{f:?}");
            }
            "" => assert!(matures > config.end && f[7].is_empty(), "{f:?}"),
            other => panic!("outcome {other}"),
        }
        loans.push(Loan {
            merchant: f[1].to_string(),
            disbursed_on: disbursed,
            outcome: f[6].to_string(),
            true_pd: truth[f[0]],
        });
    }
    assert_eq!(loans.len(), truth.len());
    assert_eq!(loans.len() as u64, summary.loans);
    assert!((summary.mean_true_pd - 0.05).abs() < 0.02, "{summary:?}");
    assert!(
        (summary.mean_ex_ante_pd - summary.mean_true_pd).abs() < 0.005,
        "{summary:?}"
    );
    let observed = loans
        .iter()
        .filter(|l| l.outcome == "defaulted" || l.outcome == "written_off")
        .count();
    assert!(observed > 0);

    (merchants, facts, loans)
}

#[test]
fn files_are_valid_and_the_history_is_informative() {
    // 2,000 merchants: with continuous onboarding about a quarter of their loans fall in the
    // year-long window (400 merchants gave 97 loans with `net_sales_90d`, too few to judge, and
    // 1,000 gave 266 loans, over which the mean hindsight and ex-ante PDs differ by 0.005 by
    // chance)
    let config = SimConfig {
        merchants: 2_000,
        seed: 11,
        ..SimConfig::default()
    };
    let (dir, summary) = simulate("valid", &config);
    let (merchants, facts, loans) = load_and_validate(&config, &dir, &summary);
    // point-in-time features at disbursement separate good and bad loans
    let halves = pd_by_feature_halves(&merchants, &facts, &loans);
    for id in [FeatureId::NetSales90d, FeatureId::ActiveDayShare90d] {
        let (n, low, high) = halves[&id];
        assert!(n >= 100, "{}: {n} loans", id.name());
        // both are "higher is safer" in the catalog
        assert_eq!(
            id.def().direction,
            smecredit::features::Direction::HigherIsSafer
        );
        assert!(
            low > 1.3 * high,
            "{}: mean true PD low half {low:.4}, high half {high:.4}",
            id.name()
        );
    }
}

/// For each feature: (loans where it is present, mean true PD of the loans in the lower half of
/// the feature, mean true PD of the upper half), features computed as of the disbursement date.
fn pd_by_feature_halves(
    merchants: &BTreeMap<String, Merchant>,
    facts: &HashMap<String, Vec<PaymentFact>>,
    loans: &[Loan],
) -> HashMap<FeatureId, (usize, f64, f64)> {
    let mut by_feature: HashMap<FeatureId, Vec<(f64, f64)>> = HashMap::new();
    let empty = Vec::new();
    for l in loans {
        let m = &merchants[&l.merchant];
        let history = facts.get(&l.merchant).unwrap_or(&empty);
        let v = compute(
            &MerchantProfile::from(m),
            history,
            as_of_start_of_day(l.disbursed_on),
        );
        for (def, value) in v.iter() {
            if let Some(x) = value.as_f64() {
                by_feature.entry(def.id).or_default().push((x, l.true_pd));
            }
        }
        assert!(!matches!(
            v.get(FeatureId::DaysSinceOnboarding),
            FeatureValue::Missing
        ));
    }
    by_feature
        .into_iter()
        .map(|(id, mut xs)| {
            // ties (e.g. many zeros) are split by the true PD's order, which favours nothing:
            // sort by the feature only, stable on loan order
            xs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let half = xs.len() / 2;
            let mean =
                |s: &[(f64, f64)]| s.iter().map(|x| x.1).sum::<f64>() / s.len().max(1) as f64;
            (id, (xs.len(), mean(&xs[..half]), mean(&xs[half..])))
        })
        .collect()
}

/// `cargo test --release --test simulate -- --ignored --nocapture`: how each feature separates
/// the loans of a larger population (mean true PD of the lower and upper half).
#[test]
#[ignore]
fn informativeness_report() {
    let config = SimConfig {
        merchants: 4_000,
        seed: 2024,
        ..SimConfig::default()
    };
    let (dir, summary) = simulate("report", &config);
    println!("{summary:#?}");
    let (merchants, facts, loans) = load_and_validate(&config, &dir, &summary);
    let halves = pd_by_feature_halves(&merchants, &facts, &loans);
    println!(
        "{:<34} {:>6} {:>9} {:>9}  direction",
        "feature", "loans", "PD low", "PD high"
    );
    for id in FeatureId::ALL {
        if let Some((n, low, high)) = halves.get(&id) {
            println!(
                "{:<34} {n:>6} {low:>9.4} {high:>9.4}  {:?}",
                id.name(),
                id.def().direction
            );
        }
    }
}
