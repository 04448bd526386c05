use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    smecredit::cli::run(smecredit::cli::Cli::parse()).await
}
