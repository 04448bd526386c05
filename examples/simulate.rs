//! `cargo run --release --example simulate -- N SEED OUT_DIR`: runs the simulator with the
//! default settings and prints the summary and the wall time.

use smecredit::simulate::{SimConfig, run};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let merchants = args.get(1).map_or(Ok(1000), |s| s.parse())?;
    let seed = args.get(2).map_or(Ok(42), |s| s.parse())?;
    let out = PathBuf::from(args.get(3).map_or("target/sim-out", String::as_str));
    let config = SimConfig {
        merchants,
        seed,
        ..SimConfig::default()
    };
    let started = Instant::now();
    let summary = run(&config, &out, true)?;
    println!("{summary:#?}");
    println!("wall time: {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}
