//! Open-loop scoring load at a fixed rate: `POST /v1/scores` for a random one of MERCHANTS
//! merchants (`bm-000000`…, as made by `gen_ingest_data`), RATE requests a second for SECONDS,
//! whatever the service's answers take. Each request's latency is measured from the instant it
//! was *due*, not from when it was sent, so a stall of the service counts against every request
//! that should have gone out during it (no coordinated omission, unlike a closed-loop generator
//! such as `wrk`, where a slow answer also delays the next request and hides the queue).
//!
//! `SMECREDIT_API_KEY=smk_… cargo run --release --example score_rate -- http://127.0.0.1:8080 MERCHANTS RATE SECONDS`
//! (a lender key). Prints the achieved rate, failures and latency percentiles; exits 1 on any
//! failure.

use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let base = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let merchants: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let rate: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1_500);
    let seconds: u64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(30);
    anyhow::ensure!(
        merchants > 0 && rate > 0 && seconds > 0,
        "arguments must be positive"
    );
    let key = std::env::var("SMECREDIT_API_KEY")
        .map_err(|_| anyhow::anyhow!("set SMECREDIT_API_KEY to a lender key"))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(256)
        .build()?;
    let url = format!("{base}/v1/scores");

    let total = rate * seconds;
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    // xorshift: a fixed sequence of merchants, the same every run
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut tasks = Vec::with_capacity(total as usize);
    let began = Instant::now();
    for i in 0..total {
        let due = began + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let body = format!(
            r#"{{"merchant_id":"bm-{:06}","as_of":"2026-06-30"}}"#,
            state % merchants
        );
        let request = client
            .post(&url)
            .bearer_auth(&key)
            .header("Content-Type", "application/json")
            .body(body);
        tasks.push(tokio::spawn(async move {
            // Err: what went wrong, to be counted by kind
            let outcome = match request.send().await {
                Ok(res) if res.status().is_success() => res
                    .bytes()
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("reading: {e}")),
                Ok(res) => Err(format!("status {}", res.status())),
                Err(e) => Err(format!("{e:?}")),
            };
            (due.elapsed(), outcome)
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut failures = 0usize;
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for task in tasks {
        let (latency, outcome) = task.await?;
        latencies.push(latency);
        if let Err(kind) = outcome {
            failures += 1;
            *kinds.entry(kind).or_default() += 1;
        }
    }
    let elapsed = began.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1e3
    };
    println!(
        "{} requests at {rate}/s offered, {:.0}/s achieved, {failures} failed; latency from the due instant: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        pct(1.0),
    );
    if failures > 0 {
        for (kind, n) in kinds.iter().take(5) {
            println!("failed {n}x: {kind}");
        }
        std::process::exit(1);
    }
    Ok(())
}
