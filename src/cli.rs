//! The command line: `serve`, `migrate`, `import`, `keys`, `simulate`, `dataset`, `train`,
//! `evaluate`, `openapi`.

use crate::config::Settings;
use crate::ingest::import::{ImportOptions, import_file};
use crate::keys::{KeyInfo, Role};
use crate::simulate::SimConfig;
use crate::startup::Application;
use crate::store::Store;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "smecredit",
    version,
    about = "Credit eligibility scoring for small merchants from their payment histories"
)]
pub struct Cli {
    /// A TOML settings file (see the README for its keys).
    #[arg(long, env = "SMECREDIT_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// The database: sqlite://FILE (created if missing) or postgres://USER@HOST/DB.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        bind: Option<String>,
        /// A second address serving only `GET /metrics`, without an API key, e.g.
        /// 127.0.0.1:9090 (default: none; `/metrics` is then for admin keys on `--bind`).
        #[arg(long)]
        metrics_bind: Option<String>,
        /// On an empty database, first seed a small simulated population (40 merchants with
        /// payment histories up to today, and loan outcomes) to try the service with; at every
        /// start, issue one API key per role, print them, and revoke the previous start's.
        #[arg(long)]
        demo: bool,
    },
    /// API keys: create (the key is printed once), list, revoke, rotate.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Import CSV files of merchants and/or payments, in the order given.
    Import {
        /// Files to import; each one's header says what it holds.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Stop at the first bad row; nothing of the batch it is in is stored.
        #[arg(long)]
        strict: bool,
        /// Rows per transaction.
        #[arg(long, default_value_t = 10_000)]
        batch_size: usize,
    },
    /// Write a synthetic population with known risk: merchants.csv, payments.csv, loans.csv (for
    /// `import`) and truth.csv (each loan's true probability of default: the hindsight PD its
    /// outcome was drawn from, and the ex-ante PD as of its disbursement day). Deterministic per
    /// seed.
    Simulate {
        #[arg(long, default_value_t = 1_000)]
        merchants: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Directory to write the CSV files to (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Target share of loans that default within their term.
        #[arg(long, default_value_t = 0.05)]
        default_rate: f64,
        /// Days of the simulated window: loans disbursed in it are exported. Merchants are
        /// onboarded continuously from 935 days before it (a stationary population), and their
        /// payments are exported from onboarding.
        #[arg(long, default_value_t = 365)]
        history_days: u32,
        /// Share of thin-file merchants (one loan after 14 to 89 days of trading).
        #[arg(long, default_value_t = 0.15)]
        thin_file_share: f64,
        /// Export date: every payment is before it (YYYY-MM-DD). Fixed by default so that a seed
        /// always gives the same files.
        #[arg(long)]
        end: Option<chrono::NaiveDate>,
    },
    /// Build a training table: one row per loan with a known outcome, features as of its
    /// disbursement day, the label (defaulted within the term) and segment columns. From the
    /// database by default, or from a simulator output directory.
    Dataset {
        #[arg(long)]
        out: PathBuf,
        /// Read merchants.csv, payments.csv and loans.csv of this `simulate` output instead of
        /// the database.
        #[arg(long)]
        from_simulation: Option<PathBuf>,
        /// The observation date: only loans whose term ended by then are rows, whatever their
        /// outcome. Default: today (database), the day after the last payment (simulation).
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
    },
    /// Fit a scorecard (and a challenger), evaluate it out of time, and write
    /// OUT_DIR/VERSION/model.json with its report and plots.
    Train(Box<TrainArgs>),
    /// Evaluate a model artifact on a dataset.
    Evaluate {
        /// A model directory (or its model.json).
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        /// Where the evaluation report goes.
        #[arg(long, default_value = "evaluation")]
        out: PathBuf,
        #[arg(long)]
        truth: Option<PathBuf>,
    },
    /// Print the OpenAPI spec (the same as openapi/openapi.json and GET /openapi.json).
    Openapi {
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Issue a key. The key goes to standard output, once: only its hash is stored.
    Create {
        #[arg(long, value_enum)]
        role: Role,
        /// The merchant a merchant key speaks for (required for, and only for, --role merchant).
        #[arg(long)]
        merchant: Option<String>,
        /// What the key is for, 1–100 characters (default: the role, and the merchant).
        #[arg(long)]
        name: Option<String>,
    },
    /// Every key: id, role, merchant, principal (its rotation chain), when created, when
    /// revoked, name. Never a key itself.
    List,
    /// Revoke a key. Running services refuse it within `auth_cache_secs` (5 s by default).
    Revoke {
        /// The key's id, as `keys list` shows it (key_…).
        key_id: String,
    },
    /// Issue a replacement for a key: same role, merchant, name and principal (a lender's new
    /// key reads the decisions of the old one). The old key works until it is revoked.
    Rotate { key_id: String },
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// A dataset from `smecredit dataset`, or any CSV feature table with a binary label.
    #[arg(long)]
    data: PathBuf,
    /// The model version, also its directory name.
    #[arg(long)]
    version: String,
    #[arg(long, default_value = "models")]
    out_dir: PathBuf,
    /// The label column (default `label`).
    #[arg(long)]
    label: Option<String>,
    /// For a label that is not 0/1: the value that means default.
    #[arg(long)]
    positive_label: Option<String>,
    /// Seed for cross-validation folds and the challenger.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Out-of-time cut: a date (loans on or after it are the test set) or a quantile of
    /// loan dates such as 0.7.
    #[arg(long)]
    oot_cut: Option<String>,
    /// Share of the training rows, the latest by loan date, held out of the fit to refit the
    /// logit's intercept and slope just before the test window (out-of-time recalibration);
    /// 0 turns it off. Tables without a date column are never recalibrated.
    #[arg(long, default_value_t = crate::train::DEFAULT_RECALIBRATION_SHARE)]
    recalibration_share: f64,
    /// The simulator's truth.csv, to compare with the oracle AUC.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Generic tables: id columns (not features).
    #[arg(long = "id")]
    id_columns: Vec<String>,
    /// Generic tables: the date column for the out-of-time split.
    #[arg(long = "date")]
    date_column: Option<String>,
    /// Generic tables: segment columns (reported on, never features).
    #[arg(long = "segment")]
    segment_columns: Vec<String>,
    /// Columns to leave out.
    #[arg(long = "exclude")]
    exclude_columns: Vec<String>,
    /// Pin created_at (RFC 3339) for a byte-identical rebuild.
    #[arg(long)]
    created_at: Option<String>,
    #[arg(long)]
    no_challenger: bool,
    #[arg(long)]
    no_plots: bool,
    /// Smecredit datasets: leave out the peer-relative candidates (rates read relative to the
    /// merchant's category), as models before `sc-2026.12-sim44` were trained.
    #[arg(long)]
    no_peer_relative: bool,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(url) = cli.database_url {
        settings.database_url = url;
    }
    crate::telemetry::init(settings.log_format, &settings.log_filter);
    match cli.command {
        Command::Serve {
            bind,
            metrics_bind,
            demo,
        } => {
            if let Some(bind) = bind {
                settings.bind = bind;
            }
            if metrics_bind.is_some() {
                settings.metrics_bind = metrics_bind;
            }
            let app = Application::build(&settings).await?;
            if demo {
                crate::demo::seed_if_empty(app.store()).await?;
                let keys = crate::demo::issue_keys(app.store()).await?;
                // Standard output, not the log: keys never go to a log line.
                println!("{}", crate::demo::keys_banner(&keys));
            }
            tracing::info!(
                port = app.port(),
                store = app.store().backend_name(),
                "smecredit listening on http://{}",
                settings.bind
            );
            if let (Some(port), Some(bind)) = (app.metrics_port(), &settings.metrics_bind) {
                tracing::info!(port, "metrics on http://{bind}/metrics");
            }
            app.run_until_stopped().await?;
        }
        Command::Keys { command } => {
            let store = Store::connect(&settings.store_options()).await?;
            let result = run_keys(&store, command).await;
            store.close().await;
            result?;
        }
        Command::Migrate => {
            let store = Store::connect(&settings.store_options()).await?;
            store.close().await;
            eprintln!(
                "migrations applied to {}",
                crate::startup::redact(&settings.database_url)
            );
        }
        Command::Import {
            files,
            strict,
            batch_size,
        } => {
            anyhow::ensure!(batch_size >= 1, "--batch-size must be at least 1");
            let store = Store::connect(&settings.store_options()).await?;
            let options = ImportOptions {
                strict,
                batch_size,
                progress: std::io::stderr().is_terminal(),
            };
            let mut failed = false;
            for file in &files {
                let started = std::time::Instant::now();
                let report = import_file(&store, file, &options).await?;
                eprintln!(
                    "{} in {:.1}s",
                    report.summary(),
                    started.elapsed().as_secs_f64()
                );
                if report.aborted {
                    failed = true;
                    break;
                }
            }
            store.close().await;
            anyhow::ensure!(!failed, "import aborted at a bad row (--strict)");
        }
        Command::Simulate {
            merchants,
            seed,
            out,
            default_rate,
            history_days,
            thin_file_share,
            end,
        } => {
            let defaults = SimConfig::default();
            let config = SimConfig {
                merchants,
                seed,
                default_rate,
                history_days,
                thin_file_share,
                end: end.unwrap_or(defaults.end),
                ..defaults
            };
            let started = std::time::Instant::now();
            let summary = crate::simulate::run(&config, &out, std::io::stderr().is_terminal())?;
            eprintln!(
                "wrote {} merchants ({} thin-file), {} payments, {} loans ({} matured, {:.1}% of them defaulted; \
                 realised default rate over all loans {:.1}%, mean true PD {:.1}%, mean ex-ante PD {:.1}%) to {} in {:.1}s",
                summary.merchants,
                summary.thin_file_merchants,
                summary.payments,
                summary.loans,
                summary.matured_loans,
                summary.matured_default_rate * 100.0,
                summary.realised_default_rate * 100.0,
                summary.mean_true_pd * 100.0,
                summary.mean_ex_ante_pd * 100.0,
                out.display(),
                started.elapsed().as_secs_f64()
            );
        }
        Command::Dataset {
            out,
            from_simulation,
            as_of,
        } => {
            let summary = match from_simulation {
                Some(dir) => crate::train::dataset::from_simulation_dir(&dir, &out, as_of)?,
                None => {
                    let store = Store::connect(&settings.store_options()).await?;
                    let as_of = as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
                    let summary = crate::train::from_store::dataset_from_store(
                        &store,
                        &out,
                        as_of,
                        std::io::stderr().is_terminal(),
                    )
                    .await?;
                    store.close().await;
                    summary
                }
            };
            eprintln!(
                "wrote {} loans of {} merchants ({} defaulted within the term; {} open and {} immature loans excluded as of {}, {} defaults after the term labelled 0; loan dates {} to {}) to {}",
                summary.rows,
                summary.merchants,
                summary.defaults,
                summary.open_excluded,
                summary.immature_excluded,
                summary.as_of.map_or("-".to_string(), |d| d.to_string()),
                summary.late_defaults_not_labelled,
                summary
                    .first_loan_date
                    .map_or("-".to_string(), |d| d.to_string()),
                summary
                    .last_loan_date
                    .map_or("-".to_string(), |d| d.to_string()),
                out.display()
            );
        }
        Command::Train(args) => {
            let TrainArgs {
                data,
                version,
                out_dir,
                label,
                positive_label,
                seed,
                oot_cut,
                recalibration_share,
                truth,
                id_columns,
                date_column,
                segment_columns,
                exclude_columns,
                created_at,
                no_challenger,
                no_plots,
                no_peer_relative,
            } = *args;
            let mut o = crate::train::TrainOptions::new(data, out_dir, version);
            o.label = label;
            o.positive_label = positive_label;
            o.seed = seed;
            o.recalibration_share = recalibration_share;
            o.truth = truth;
            o.id_columns = id_columns;
            o.date_column = date_column;
            o.segment_columns = segment_columns;
            o.exclude_columns = exclude_columns;
            o.created_at = created_at;
            o.challenger = !no_challenger;
            o.plots = !no_plots;
            o.peer_relative = !no_peer_relative;
            if let Some(c) = oot_cut {
                o.oot_cut = Some(match chrono::NaiveDate::parse_from_str(&c, "%Y-%m-%d") {
                    Ok(d) => crate::train::OotCut::Date(d),
                    Err(_) => crate::train::OotCut::Quantile(c.parse().with_context(|| {
                        format!("--oot-cut {c:?} is neither a date nor a quantile")
                    })?),
                });
            }
            let started = std::time::Instant::now();
            let summary = crate::train::run_train(&o)?;
            eprintln!("trained in {:.1}s", started.elapsed().as_secs_f64());
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        Command::Evaluate {
            model,
            data,
            out,
            truth,
        } => {
            let summary = crate::train::run_evaluate(&model, &data, &out, truth.as_deref())?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        Command::Openapi { out } => {
            let json = crate::api::openapi_json();
            match out {
                Some(path) => std::fs::write(&path, json)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{json}"),
            }
        }
    }
    Ok(())
}

async fn run_keys(store: &Store, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            role,
            merchant,
            name,
        } => {
            if role == Role::Merchant
                && let Some(m) = &merchant
                && let Ok(id) = crate::domain::MerchantId::parse(m.as_str())
                && store.merchant(&id).await?.is_none()
            {
                eprintln!(
                    "note: merchant {id} is not stored yet; the key reads it once the platform adds it"
                );
            }
            let new =
                crate::keys::create(store, role, merchant.as_deref(), name.as_deref()).await?;
            eprintln!(
                "issued {} ({}, {:?}); the key is printed below once, and only its hash is stored:",
                new.info.key_id, new.info.role, new.info.name
            );
            println!("{}", new.secret.expose());
        }
        KeysCommand::List => {
            print!("{}", keys_table(&crate::keys::list(store).await?));
        }
        KeysCommand::Revoke { key_id } => {
            let info = crate::keys::revoke(store, &key_id).await?;
            eprintln!(
                "{} ({}, {:?}) is revoked since {}; running services refuse it within their auth_cache_secs",
                info.key_id,
                info.role,
                info.name,
                info.revoked_at.map(|t| t.to_rfc3339()).unwrap_or_default()
            );
        }
        KeysCommand::Rotate { key_id } => {
            let new = crate::keys::rotate(store, &key_id).await?;
            eprintln!(
                "issued {} to replace {key_id} ({}, {:?}); deploy it, then `smecredit keys revoke {key_id}`. The new key, shown once:",
                new.info.key_id, new.info.role, new.info.name
            );
            println!("{}", new.secret.expose());
        }
    }
    Ok(())
}

/// `keys list` as an aligned table.
pub fn keys_table(keys: &[KeyInfo]) -> String {
    let time = |t: &chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let rows: Vec<[String; 7]> = keys
        .iter()
        .map(|k| {
            [
                k.key_id.clone(),
                k.role.to_string(),
                k.merchant_id
                    .as_ref()
                    .map_or("-".to_string(), |m| m.to_string()),
                k.principal.clone(),
                time(&k.created_at),
                k.revoked_at.as_ref().map_or("-".to_string(), time),
                k.name.clone(),
            ]
        })
        .collect();
    let header = [
        "ID",
        "ROLE",
        "MERCHANT",
        "PRINCIPAL",
        "CREATED",
        "REVOKED",
        "NAME",
    ]
    .map(String::from);
    let mut widths = [0usize; 7];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
