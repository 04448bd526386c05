//! PostgreSQL: for production and for several replicas behind a load balancer.

use super::{
    NewPayment, OnConflict, StoreError, StoreOptions, classify_batch, stored_content_from_row,
};
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::collections::HashMap;

pub(super) async fn connect(o: &StoreOptions) -> Result<PgPool, StoreError> {
    Ok(PgPoolOptions::new()
        .max_connections(o.max_connections.max(1))
        .acquire_timeout(o.acquire_timeout)
        .connect(&o.url)
        .await?)
}

/// The whole batch goes in one statement: PostgreSQL takes each column as one array.
pub(super) async fn insert_payments(
    pool: &PgPool,
    batch: &[NewPayment<'_>],
    on_conflict: OnConflict,
) -> Result<super::InsertOutcome, StoreError> {
    let n = batch.len();
    let mut merchants = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut amounts = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut channels = Vec::with_capacity(n);
    let mut payers = Vec::with_capacity(n);
    for r in batch {
        let p = r.payment;
        merchants.push(r.merchant_key);
        ids.push(p.id.as_str());
        times.push(p.occurred_at_micros());
        amounts.push(p.amount.minor());
        kinds.push(p.kind.as_str());
        channels.push(p.channel.as_str());
        payers.push(p.payer_ref.as_str());
    }
    let mut tx = pool.begin().await?;
    let accepted = sqlx::query(
        "INSERT INTO payments (merchant, payment_id, occurred_at, amount_minor, kind, channel, payer_ref)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[])
         ON CONFLICT (merchant, payment_id) DO NOTHING",
    )
    .bind(&merchants)
    .bind(&ids)
    .bind(&times)
    .bind(&amounts)
    .bind(&kinds)
    .bind(&channels)
    .bind(&payers)
    .execute(&mut *tx)
    .await?
    .rows_affected();

    let mut checked = Vec::new();
    let mut stored = HashMap::new();
    if accepted < n as u64 {
        checked.push(0..n);
        let rows = sqlx::query(
            "SELECT merchant, payment_id, occurred_at, amount_minor, kind, channel, payer_ref FROM payments
             WHERE (merchant, payment_id) IN (SELECT * FROM UNNEST($1::bigint[], $2::text[]))",
        )
        .bind(&merchants)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            let (key, content) = stored_content_from_row(&row)?;
            stored.insert(key, content);
        }
    }
    let outcome = classify_batch(batch, &checked, accepted, &stored)?;
    if !outcome.conflicts.is_empty() && on_conflict == OnConflict::RejectBatch {
        tx.rollback().await?;
        return Ok(super::InsertOutcome {
            accepted: 0,
            duplicates: 0,
            conflicts: outcome.conflicts,
        });
    }
    tx.commit().await?;
    Ok(outcome)
}
