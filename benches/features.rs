//! All features for one merchant with 365 days × 30 payments a day (10,950 payments), in memory:
//! from the payments, and from their day summaries as the store hands them over (each day's
//! payers sorted by payer key), which is the serving path without the SQL.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smecredit::domain::{Channel, Currency, PaymentKind};
use smecredit::features::{
    History, MerchantProfile, PaymentFact, compute, compute_history, payer_key, summarize_days,
};
use std::hint::black_box;

fn history() -> (MerchantProfile, Vec<PaymentFact>, chrono::DateTime<Utc>) {
    let as_of = Utc.with_ymd_and_hms(2026, 6, 30, 0, 0, 0).unwrap();
    let profile = MerchantProfile {
        onboarded_on: NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
        currency: Currency::parse("CNY").unwrap(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let payers: Vec<u64> = (0..400).map(|i| payer_key(&format!("p{i:06x}"))).collect();
    let mut facts = Vec::with_capacity(365 * 30);
    for day in 0..365 {
        for _ in 0..30 {
            let at =
                as_of - Duration::days(day + 1) + Duration::seconds(rng.random_range(0..86_400));
            let kind = match rng.random_range(0..100) {
                0 => PaymentKind::Refund,
                1 if rng.random_bool(0.1) => PaymentKind::Chargeback,
                _ => PaymentKind::Sale,
            };
            facts.push(PaymentFact {
                at_micros: at.timestamp_micros(),
                amount_minor: rng.random_range(100..20_000),
                kind,
                channel: Channel::ALL[rng.random_range(0..Channel::ALL.len())],
                payer: payers[rng.random_range(0..payers.len())],
            });
        }
    }
    // the store does not hand them over in time order
    facts.reverse();
    (profile, facts, as_of)
}

fn bench(c: &mut Criterion) {
    let (profile, facts, as_of) = history();
    c.bench_function("features_v1_365d_x_30_per_day", |b| {
        b.iter(|| compute(black_box(&profile), black_box(&facts), black_box(as_of)))
    });
    let days = summarize_days(&facts);
    c.bench_function("features_v1_from_day_summaries_365d_x_30_per_day", |b| {
        b.iter(|| {
            let history = History::from_days(black_box(&days), black_box(as_of)).unwrap();
            compute_history(black_box(&profile), &history)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
