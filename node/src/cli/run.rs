//! `tracechain run`: one node, until Ctrl-C or SIGTERM.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use tokio::sync::watch;

use crate::{
    api,
    crypto::{KeyFile, KeyKind, SecretKey},
    genesis::Genesis,
    node::{Node, NodeConfig},
};

#[derive(Debug, clap::Args)]
pub(super) struct RunArgs {
    /// Genesis file.
    #[arg(long)]
    genesis: PathBuf,
    /// This node's validator key file (from `tracechain genesis`).
    #[arg(long)]
    node_key: PathBuf,
    /// RocksDB directory.
    #[arg(long, default_value_os_t = super::default_data_dir())]
    data_dir: PathBuf,
    /// gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Longest wait, in ms, between a transaction's arrival and its block.
    #[arg(long, default_value_t = 200)]
    block_interval_ms: u64,
    /// Most transactions per block.
    #[arg(long, default_value_t = 10_000)]
    max_block_txs: usize,
    /// Mempool bound (transactions).
    #[arg(long, default_value_t = 200_000)]
    mempool_max_txs: usize,
}

/// Loads a validator node key file.
pub(crate) fn load_node_key(
    path: &std::path::Path,
) -> anyhow::Result<(String, ed25519_dalek::SigningKey)> {
    let file = KeyFile::load(path).with_context(|| format!("reading {}", path.display()))?;
    if file.kind != KeyKind::Node {
        anyhow::bail!(
            "{} is a {:?} key, not a node key",
            path.display(),
            file.kind
        );
    }
    match file.secret_key()? {
        SecretKey::Ed25519(k) => Ok((file.id, k)),
        SecretKey::P256(_) => anyhow::bail!("node keys are Ed25519"),
    }
}

/// Resolves when Ctrl-C or SIGTERM arrives.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Starts a node's producer and API; returns the bound address and a stop handle.
pub(crate) async fn start(
    node: Node,
    listen: SocketAddr,
) -> anyhow::Result<(SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let producer = tokio::spawn(node.clone().run_producer(stopped.clone()));
    let mut api_stop = stopped;
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = api_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = api::serve(node, listener, shutdown).await {
            tracing::error!(error = %e, "gRPC server failed");
        }
    });
    let joined = tokio::spawn(async move {
        let _ = producer.await;
        let _ = server.await;
    });
    Ok((addr, stop, joined))
}

pub(super) async fn run(a: RunArgs) -> anyhow::Result<()> {
    let genesis = Genesis::load(&a.genesis)?;
    let (member_id, key) = load_node_key(&a.node_key)?;
    let mut config = NodeConfig::new(a.data_dir.clone(), member_id.clone());
    config.block_interval = Duration::from_millis(a.block_interval_ms.max(1));
    config.max_block_txs = a.max_block_txs.max(1);
    config.mempool_max_txs = a.mempool_max_txs.max(1);
    let node = Node::open(config, genesis, key)?;
    let status = node.status().await;
    let (addr, stop, joined) = start(node, a.listen).await?;
    // One line on stdout that scripts and tests can wait for.
    println!("tracechain node {member_id} listening on {addr}");
    tracing::info!(
        member = %member_id,
        chain = %status.chain_id,
        height = status.height,
        grpc = %addr,
        data_dir = %a.data_dir.display(),
        "node started"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop.send(true);
    let _ = joined.await;
    tracing::info!("stopped");
    Ok(())
}
