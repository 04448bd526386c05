//! smecredit: credit eligibility scoring for small and micro merchants from their payment
//! histories. The library is the program; `main.rs` only parses the command line.

pub mod api;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod explain;
pub mod features;
pub mod ingest;
pub mod keys;
pub mod metrics;
pub mod policy;
pub mod scorecard;
pub mod scoring;
pub mod simulate;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod train;
