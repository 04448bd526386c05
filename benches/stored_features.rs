//! All features of one stored merchant with a year of history (365 days × 30 payments), including
//! the SQLite read: the serving path of `GET /v1/merchants/{id}/features` and `POST /v1/scores`,
//! as of a midnight (from the day summaries) and as of another instant (from the payments).
//! `cargo bench --bench stored_features`

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use smecredit::domain::{
    Category, Channel, Currency, Merchant, MerchantId, Money, PayerRef, Payment, PaymentId,
    PaymentKind, RegionCode, RegionType,
};
use smecredit::features::{MerchantProfile, compute_history};
use smecredit::store::{NewPayment, OnConflict, Store, StoreOptions};

fn stored_merchant_features(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let cny = Currency::parse("CNY").expect("CNY");
    let merchant = Merchant {
        id: MerchantId::parse("bench-1").expect("id"),
        name: "Bench Shop".into(),
        category: Category::parse("grocery").expect("category"),
        region_type: RegionType::County,
        region_code: RegionCode::parse("330782").expect("region"),
        currency: cny,
        onboarded_on: NaiveDate::from_ymd_opt(2025, 1, 1).expect("date"),
    };
    let start = Utc
        .with_ymd_and_hms(2025, 7, 1, 0, 0, 0)
        .single()
        .expect("start");
    let as_of = start + Duration::days(365);
    let payments: Vec<Payment> = (0..365 * 30)
        .map(|i: i64| Payment {
            id: PaymentId::parse(format!("p-{i}")).expect("id"),
            occurred_at: start + Duration::seconds(i * 86_400 / 30 + 7),
            amount: Money::from_minor(500 + (i * 7919) % 20_000, cny),
            kind: if i % 40 == 0 {
                PaymentKind::Refund
            } else {
                PaymentKind::Sale
            },
            channel: Channel::ALL[(i % 4) as usize],
            payer_ref: PayerRef::parse(format!("payer-{}", (i * 31) % 400)).expect("payer"),
        })
        .collect();
    let (store, key) = rt.block_on(async {
        let store = Store::connect(&StoreOptions::new(url))
            .await
            .expect("store");
        let (stored, _) = store.upsert_merchant(&merchant).await.expect("merchant");
        let rows: Vec<NewPayment<'_>> = payments
            .iter()
            .map(|payment| NewPayment {
                merchant_key: stored.key,
                payment,
            })
            .collect();
        store
            .insert_payments(&rows, OnConflict::RejectBatch)
            .await
            .expect("payments");
        (store, stored.key)
    });
    let profile = MerchantProfile::from(&merchant);
    // as of a midnight (the service's default): read from the day summaries
    c.bench_function("features_of_a_stored_merchant_10950_payments_sqlite", |b| {
        b.iter(|| {
            rt.block_on(async {
                let history = store.history(key, as_of).await.expect("history");
                compute_history(&profile, &history)
            })
        })
    });
    // as of any other instant: read from the payments
    let instant = as_of + Duration::microseconds(1);
    c.bench_function(
        "features_of_a_stored_merchant_10950_payments_sqlite_not_midnight",
        |b| {
            b.iter(|| {
                rt.block_on(async {
                    let history = store.history(key, instant).await.expect("history");
                    compute_history(&profile, &history)
                })
            })
        },
    );
}

criterion_group!(benches, stored_merchant_features);
criterion_main!(benches);
