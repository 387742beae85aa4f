//! The operator's command line: keys, genesis, running a node, submitting signed
//! transactions, queries, the demo and audits. Readable output by default, `--json` for scripts.

mod audit;
mod bench;
mod demo;
mod devnet;
mod epcis;
mod fsma;
mod keys;
mod output;
mod query;
mod run;
mod submit;
pub use audit::NotAnchored;
pub use tracechain_ledger::units;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// tracechain: a permissioned consortium ledger for supply-chain IoT.
#[derive(Debug, Parser)]
#[command(name = "tracechain", version, about, propagate_version = true)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a key file for a member, a device or a validator node.
    Keygen(keys::KeygenArgs),
    /// Create a consortium: genesis file and member keys.
    Genesis(keys::GenesisArgs),
    /// Run a node.
    Run(run::RunArgs),
    /// Sign and submit a transaction.
    Submit(submit::SubmitArgs),
    /// Query a node.
    Query(query::QueryArgs),
    /// Show a node's chain status.
    Status(query::StatusArgs),
    /// Run a local node with a live cold-chain demo feed.
    Demo(demo::DemoArgs),
    /// Run a local 4-member consortium (four processes) with the live cold-chain demo.
    Devnet(devnet::DevnetArgs),
    /// Benchmark a local 4-member consortium: committed events/s, latency, CPU, memory.
    Bench(bench::BenchArgs),
    /// Export a shipment's audit bundle, or verify one offline.
    Audit(audit::AuditArgs),
    /// Import EPCIS 2.0 documents as signed ledger events.
    Epcis(epcis::EpcisArgs),
    /// FSMA 204 records of a traceability lot, as a sortable spreadsheet (CSV, .xlsx).
    Fsma(fsma::FsmaArgs),
}

/// Where a node's gRPC API is.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeAddr {
    /// gRPC endpoint of a node.
    #[arg(
        long,
        env = "TRACECHAIN_NODE",
        default_value = "http://127.0.0.1:50051"
    )]
    pub node: String,
}

/// Runs the CLI.
pub async fn main(cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    match cli.command {
        Command::Keygen(a) => keys::keygen(a, json),
        Command::Genesis(a) => keys::genesis(a, json),
        Command::Run(a) => run::run(a).await,
        Command::Submit(a) => submit::submit(a, json).await,
        Command::Query(a) => query::query(a, json).await,
        Command::Status(a) => query::status(a, json).await,
        Command::Demo(a) => demo::demo(a).await,
        Command::Devnet(a) => devnet::devnet(a).await,
        Command::Bench(a) => bench::bench(a).await,
        Command::Audit(a) => audit::audit(a, json).await,
        Command::Epcis(a) => epcis::epcis(a, json).await,
        Command::Fsma(a) => fsma::fsma(a, json).await,
    }
}

/// A path argument's parent directory exists (creating it).
pub(crate) fn ensure_parent(path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    Ok(())
}

/// Default data directory.
pub(crate) fn default_data_dir() -> PathBuf {
    PathBuf::from("./tracechain-data")
}
