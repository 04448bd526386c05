//! Drives the retraining pipeline until the main CLI wires it:
//!
//! ```text
//! cargo run --release --example pipeline -- dataset --sim-dir DIR --out train.csv \
//!     [--as-of YYYY-MM-DD]
//! cargo run --release --example pipeline -- simulate-dataset --merchants N --seed S \
//!     [--history-days D] [--term-days T] --out train.csv [--truth truth.csv]
//! cargo run --release --example pipeline -- train --data train.csv --out-dir models \
//!     --version V [--seed S] [--label L] [--positive-label V] [--truth truth.csv] \
//!     [--oot-cut YYYY-MM-DD|0.7] [--created-at RFC3339] [--id C]... [--date C] [--segment C]... \
//!     [--recalibration-share 0.2] [--fine-bins 20] [--no-challenger] [--no-plots] \
//!     [--no-peer-relative] \
//!     [--reproduce TEXT]
//! cargo run --release --example pipeline -- resample --data train.csv --rows N --seed S \
//!     --out bench.csv
//! cargo run --release --example pipeline -- evaluate --model models/V --data test.csv \
//!     --out DIR [--truth truth.csv]
//! ```

use anyhow::{Context, anyhow, bail};
use smecredit::simulate::SimConfig;
use smecredit::train::{self, OotCut, TrainOptions};
use std::collections::HashMap;
use std::path::PathBuf;

struct Args {
    one: HashMap<String, String>,
    many: HashMap<String, Vec<String>>,
    flags: Vec<String>,
}

fn parse(args: &[String]) -> anyhow::Result<Args> {
    let mut a = Args {
        one: HashMap::new(),
        many: HashMap::new(),
        flags: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let k = args[i]
            .strip_prefix("--")
            .ok_or_else(|| anyhow!("unexpected argument {:?}", args[i]))?
            .to_string();
        if k.starts_with("no-") {
            a.flags.push(k);
            i += 1;
            continue;
        }
        let v = args
            .get(i + 1)
            .ok_or_else(|| anyhow!("--{k} needs a value"))?
            .clone();
        a.many.entry(k.clone()).or_default().push(v.clone());
        a.one.insert(k, v);
        i += 2;
    }
    Ok(a)
}

impl Args {
    fn req(&self, k: &str) -> anyhow::Result<String> {
        self.one
            .get(k)
            .cloned()
            .ok_or_else(|| anyhow!("--{k} is required"))
    }
    fn get(&self, k: &str) -> Option<String> {
        self.one.get(k).cloned()
    }
    fn list(&self, k: &str) -> Vec<String> {
        self.many.get(k).cloned().unwrap_or_default()
    }
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = argv.first() else {
        bail!("usage: pipeline dataset|simulate-dataset|train|evaluate ...");
    };
    let a = parse(&argv[1..])?;
    match cmd.as_str() {
        "dataset" => {
            let s = train::dataset::from_simulation_dir(
                &PathBuf::from(a.req("sim-dir")?),
                &PathBuf::from(a.req("out")?),
                a.get("as-of")
                    .map(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d"))
                    .transpose()
                    .context("--as-of")?,
            )?;
            println!("{s:?}");
        }
        "simulate-dataset" => {
            let mut cfg = SimConfig {
                merchants: a.req("merchants")?.parse()?,
                seed: a.req("seed")?.parse()?,
                ..SimConfig::default()
            };
            if let Some(h) = a.get("history-days") {
                cfg.history_days = h.parse()?;
            }
            if let Some(t) = a.get("term-days") {
                cfg.term_days = Some(t.parse()?);
            }
            if let Some(r) = a.get("default-rate") {
                cfg.default_rate = r.parse()?;
            }
            let truth = a.get("truth").map(PathBuf::from);
            let s = train::dataset::from_simulation(
                &cfg,
                &PathBuf::from(a.req("out")?),
                truth.as_deref(),
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
            )?;
            println!("{s:?}");
        }
        "train" => {
            let mut o = TrainOptions::new(
                PathBuf::from(a.req("data")?),
                PathBuf::from(a.req("out-dir")?),
                a.req("version")?,
            );
            if let Some(s) = a.get("seed") {
                o.seed = s.parse()?;
            }
            o.label = a.get("label");
            o.positive_label = a.get("positive-label");
            o.truth = a.get("truth").map(PathBuf::from);
            o.created_at = a.get("created-at");
            o.reproduce = a.get("reproduce");
            o.id_columns = a.list("id");
            o.date_column = a.get("date");
            o.segment_columns = a.list("segment");
            o.exclude_columns = a.list("exclude");
            if let Some(c) = a.get("oot-cut") {
                o.oot_cut = Some(match chrono::NaiveDate::parse_from_str(&c, "%Y-%m-%d") {
                    Ok(d) => OotCut::Date(d),
                    Err(_) => OotCut::Quantile(c.parse().context("--oot-cut")?),
                });
            }
            if let Some(r) = a.get("recalibration-share") {
                o.recalibration_share = r.parse().context("--recalibration-share")?;
            }
            if let Some(b) = a.get("fine-bins") {
                o.fit.fine_bins = b.parse()?;
            }
            if let Some(p) = a.get("policy-max-pd") {
                o.policy_max_pd = p.parse()?;
            }
            o.challenger = !a.flags.iter().any(|f| f == "no-challenger");
            o.plots = !a.flags.iter().any(|f| f == "no-plots");
            o.peer_relative = !a.flags.iter().any(|f| f == "no-peer-relative");
            let t0 = std::time::Instant::now();
            let s = train::run_train(&o)?;
            eprintln!("trained in {:.2} s", t0.elapsed().as_secs_f64());
            println!("{}", serde_json::to_string_pretty(&s)?);
        }
        "evaluate" => {
            let truth = a.get("truth").map(PathBuf::from);
            let s = train::run_evaluate(
                &PathBuf::from(a.req("model")?),
                &PathBuf::from(a.req("data")?),
                &PathBuf::from(a.req("out")?),
                truth.as_deref(),
            )?;
            println!("{}", serde_json::to_string_pretty(&s)?);
        }
        "resample" => {
            // benchmark input: `--rows` rows drawn with replacement (ChaCha8, `--seed`) from a
            // dataset CSV, loan ids suffixed `-r<k>` to stay unique; dates, features and labels
            // unchanged. For timing only (duplicates straddle the train/test split).
            use rand::{Rng, SeedableRng};
            let rows = train::dataset::read_dataset_csv(&PathBuf::from(a.req("data")?))?;
            if rows.is_empty() {
                bail!("the dataset is empty");
            }
            let n: usize = a.req("rows")?.parse()?;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.req("seed")?.parse()?);
            let mut out: Vec<_> = (0..n)
                .map(|k| {
                    let mut r = rows[rng.random_range(0..rows.len())].clone();
                    r.loan_id = format!("{}-r{k}", r.loan_id);
                    r
                })
                .collect();
            out.sort_by(|x, y| {
                x.loan_date
                    .cmp(&y.loan_date)
                    .then(x.loan_id.cmp(&y.loan_id))
            });
            let f = std::fs::File::create(a.req("out")?)?;
            train::dataset::write_dataset_csv(std::io::BufWriter::new(f), &out)?;
            println!("{n} rows");
        }
        other => bail!("unknown command {other:?}"),
    }
    Ok(())
}
