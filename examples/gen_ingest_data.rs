//! Writes a deterministic merchants.csv and payments.csv for the ingestion benchmarks:
//! `cargo run --release --example gen_ingest_data -- OUT_DIR MERCHANTS PAYMENTS`.
//! Payments are spread evenly over the merchants and over the year before 2026-06-30.

use std::io::{BufWriter, Write};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = std::path::PathBuf::from(args.get(1).map(String::as_str).unwrap_or("bench-data"));
    let merchants: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let payments: u64 = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    std::fs::create_dir_all(&out)?;

    let mut m = BufWriter::new(std::fs::File::create(out.join("merchants.csv"))?);
    writeln!(
        m,
        "merchant_id,name,category,region_type,region_code,currency,onboarded_on"
    )?;
    let regions = ["urban", "county", "rural"];
    for i in 0..merchants {
        writeln!(
            m,
            "bm-{i:06},Bench Shop {i},grocery,{},330782,CNY,2024-01-01",
            regions[(i % 3) as usize]
        )?;
    }
    m.flush()?;

    let mut p = BufWriter::with_capacity(1 << 20, std::fs::File::create(out.join("payments.csv"))?);
    writeln!(
        p,
        "merchant_id,payment_id,occurred_at,amount,currency,kind,channel,payer_ref"
    )?;
    let start = 1_782_777_600i64 - 365 * 86_400; // a year before 2026-06-30 00:00 UTC
    let per_merchant = payments.div_ceil(merchants);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let channels = ["qr_code", "mini_program", "in_app", "pos"];
    for k in 0..payments {
        let merchant = k / per_merchant;
        let n = k % per_merchant;
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let t = start + (n as i64 * 365 * 86_400) / per_merchant as i64;
        let ts = chrono::DateTime::from_timestamp(t, 0)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SZ");
        let cents = 100 + state % 20_000;
        let kind = if state.is_multiple_of(50) {
            "refund"
        } else {
            "sale"
        };
        writeln!(
            p,
            "bm-{merchant:06},p-{n:08},{ts},{}.{:02},CNY,{kind},{},payer-{}",
            cents / 100,
            cents % 100,
            channels[(state >> 8) as usize % 4],
            (state >> 16) % 300
        )?;
    }
    p.flush()?;
    Ok(())
}
