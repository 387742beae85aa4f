//! The `tracechain` binary: see `tracechain --help`.

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// jemalloc instead of the C library's allocator: a node allocates and frees per
/// transaction on many threads (tokio workers, the rayon pool, blocking tasks), where
/// glibc's malloc and free cost 6-7 % of its CPU at saturation (docs/PERFORMANCE.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("TRACECHAIN_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = tracechain_node::cli::Cli::parse();
    match tracechain_node::cli::main(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<tracechain_node::cli::NotAnchored>() {
                Some(_) => {
                    std::process::ExitCode::from(tracechain_node::cli::NotAnchored::EXIT_CODE)
                }
                None => std::process::ExitCode::FAILURE,
            }
        }
    }
}
