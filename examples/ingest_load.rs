//! HTTP ingestion load generator. Creates MERCHANTS merchants on a running service, builds every
//! request body in memory first (BATCHES batches of BATCH_SIZE distinct payments), then posts
//! them with CONCURRENCY connections and reports payments/s and request latency.
//!
//! `SMECREDIT_API_KEY=smk_… cargo run --release --example ingest_load -- http://127.0.0.1:8080 BATCHES BATCH_SIZE CONCURRENCY`
//! (a platform key, from `smecredit keys create --role platform`).

use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let base = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let batches: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let batch_size: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5_000);
    let concurrency: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(4);
    let merchants = 100usize;
    let key = std::env::var("SMECREDIT_API_KEY")
        .map_err(|_| anyhow::anyhow!("set SMECREDIT_API_KEY to a platform key"))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;

    for m in 0..merchants {
        let body = serde_json::json!({
            "merchant_id": format!("load-{m:04}"), "name": format!("Load Shop {m}"), "category": "grocery",
            "region_type": "urban", "region_code": "310101", "currency": "CNY", "onboarded_on": "2024-01-01"
        });
        let res = client
            .post(format!("{base}/v1/merchants"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            res.status().is_success(),
            "creating merchant: {}",
            res.status()
        );
    }

    let start = chrono::Utc::now() - chrono::Duration::days(300);
    let mut bodies = Vec::with_capacity(batches);
    for b in 0..batches {
        let merchant = b % merchants;
        let mut json = String::with_capacity(batch_size * 190);
        json.push_str("{\"payments\":[");
        for i in 0..batch_size {
            if i > 0 {
                json.push(',');
            }
            let t = (start + chrono::Duration::seconds((b * batch_size + i) as i64))
                .format("%Y-%m-%dT%H:%M:%SZ");
            json.push_str(&format!(
                "{{\"payment_id\":\"b{b}-{i}\",\"occurred_at\":\"{t}\",\"amount\":{{\"amount\":\"{}.{:02}\",\"currency\":\"CNY\"}},\"kind\":\"sale\",\"channel\":\"qr_code\",\"payer_ref\":\"payer-{}\"}}",
                1 + i % 300,
                i % 100,
                i % 97
            ));
        }
        json.push_str("]}");
        bodies.push((
            format!("{base}/v1/merchants/load-{merchant:04}/payments"),
            json,
        ));
    }
    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let began = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, bodies, next, key) =
            (client.clone(), bodies.clone(), next.clone(), key.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((url, body)) = bodies.get(i) else {
                    break;
                };
                let t = Instant::now();
                let ok = client
                    .post(url)
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                latencies.push(t.elapsed());
                if !ok {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for w in workers {
        let (l, f) = w.await?;
        latencies.extend(l);
        failures += f;
    }
    let elapsed = began.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let payments = batches * batch_size;
    println!(
        "{batches} batches x {batch_size} payments, {concurrency} connections: {:.1}s, {:.0} payments/s, \
         request p50 {:?}, p99 {:?}, failures {failures}",
        elapsed,
        payments as f64 / elapsed,
        pct(0.50),
        pct(0.99),
    );
    anyhow::ensure!(failures == 0, "{failures} requests failed");
    Ok(())
}
