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
    /// Node config file (TOML); flags given on the command line override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Genesis file.
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// This node's validator key file (from `tracechain genesis`).
    #[arg(long)]
    node_key: Option<PathBuf>,
    /// RocksDB directory [default: ./tracechain-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Longest wait, in ms, between a transaction's arrival and its block [default: 200].
    #[arg(long)]
    block_interval_ms: Option<u64>,
    /// Least time, in ms, between two proposals of this node as primary (several
    /// validators; 0 proposes as soon as the previous block commits) [default: 100, at most
    /// 1000].
    #[arg(long)]
    min_block_interval_ms: Option<u64>,
    /// Most transactions per block [default: 10000].
    #[arg(long)]
    max_block_txs: Option<usize>,
    /// Mempool bound, transactions [default: 40000].
    #[arg(long)]
    mempool_max_txs: Option<usize>,
    /// Run as an observer: follow and serve the chain, vote in nothing.
    #[arg(long)]
    observer: bool,
    /// Peer-to-peer listen address, host:port [default: the member's genesis address].
    #[arg(long)]
    p2p_listen: Option<String>,
}

/// A node's config file. Relative paths are relative to the file's directory.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeConfigFile {
    /// Genesis file.
    pub genesis: Option<PathBuf>,
    /// Validator key file.
    pub node_key: Option<PathBuf>,
    /// RocksDB directory.
    pub data_dir: Option<PathBuf>,
    /// gRPC listen address.
    pub listen: Option<SocketAddr>,
    /// Block interval, ms.
    pub block_interval_ms: Option<u64>,
    /// Least time between two proposals as primary, ms.
    pub min_block_interval_ms: Option<u64>,
    /// Most transactions per block.
    pub max_block_txs: Option<usize>,
    /// Mempool bound, transactions.
    pub mempool_max_txs: Option<usize>,
    /// Run as an observer.
    pub observer: Option<bool>,
    /// Node keys (hex) of observers that may connect.
    pub observers: Option<Vec<String>>,
    /// Peer-to-peer listen address, host:port.
    pub p2p_listen: Option<String>,
}

impl NodeConfigFile {
    /// Reads a config file, resolving its relative paths against its directory.
    pub(crate) fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut c: Self =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        let base = path.parent().unwrap_or_else(|| std::path::Path::new("."));
        for p in [&mut c.genesis, &mut c.node_key, &mut c.data_dir]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(c)
    }
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

/// Starts a node's producer and API; returns the bound address, a stop handle, and the
/// task that ends when both have stopped: with the consortium driver's error if the
/// driver stopped by itself (then it has stopped the API too, in order).
pub(crate) async fn start(
    node: Node,
    listen: SocketAddr,
) -> anyhow::Result<(
    SocketAddr,
    watch::Sender<bool>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    // The sole validator orders blocks itself; with peers, PBFT over the network does
    // (and an observer follows it).
    let solo = node.genesis().validators().n() == 1 && !node.is_observer();
    let producer = if solo {
        let producing = node.clone().run_producer(stopped.clone());
        tokio::spawn(async move {
            producing.await;
            Ok(())
        })
    } else {
        let (node, stopped, stop) = (node.clone(), stopped.clone(), stop.clone());
        tokio::spawn(async move {
            let result = crate::consortium::run(node, stopped).await;
            if let Err(e) = &result {
                // Nothing orders this node's blocks any more: stop serving, in order.
                tracing::error!(error = %e, "consortium driver stopped; stopping the node");
                let _ = stop.send(true);
            }
            result.map_err(anyhow::Error::from)
        })
    };
    let mut api_stop = stopped;
    let closer = node.clone();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = api_stop.wait_for(|s| *s).await;
            // End the streams first: a graceful shutdown waits for open requests.
            closer.close();
        };
        if let Err(e) = api::serve(node, listener, shutdown).await {
            tracing::error!(error = %e, "gRPC server failed");
        }
    });
    let joined = tokio::spawn(async move {
        let produced = producer.await;
        let _ = server.await;
        produced.map_err(|e| anyhow::anyhow!("block producer task: {e}"))?
    });
    Ok((addr, stop, joined))
}

pub(super) async fn run(a: RunArgs) -> anyhow::Result<()> {
    let file = match &a.config {
        Some(path) => NodeConfigFile::load(path)?,
        None => NodeConfigFile::default(),
    };
    let genesis_path = a
        .genesis
        .or(file.genesis)
        .context("give --genesis (or `genesis` in --config)")?;
    let key_path = a
        .node_key
        .or(file.node_key)
        .context("give --node-key (or `node_key` in --config)")?;
    let data_dir = a
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(super::default_data_dir);
    let listen = a
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 50051)));
    let genesis = Genesis::load(&genesis_path)?;
    let (member_id, key) = load_node_key(&key_path)?;
    let mut config = NodeConfig::new(data_dir.clone(), member_id.clone());
    if let Some(ms) = a.block_interval_ms.or(file.block_interval_ms) {
        config.block_interval = Duration::from_millis(ms.max(1));
    }
    if let Some(ms) = a.min_block_interval_ms.or(file.min_block_interval_ms) {
        // Bounded by Node::open, which says so.
        config.min_block_interval = Duration::from_millis(ms);
    }
    if let Some(n) = a.max_block_txs.or(file.max_block_txs) {
        config.max_block_txs = n.max(1);
    }
    if let Some(n) = a.mempool_max_txs.or(file.mempool_max_txs) {
        config.mempool_max_txs = n.max(1);
    }
    config.observer = a.observer || file.observer.unwrap_or(false);
    config.p2p_listen = a.p2p_listen.or(file.p2p_listen);
    for key in file.observers.unwrap_or_default() {
        let bytes: [u8; 32] = hex::decode(&key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("observer key {key:?} is not 32 bytes of hex"))?;
        config.observers.push(bytes);
    }
    let node = Node::open(config, genesis, key)?;
    let status = node.status().await;
    let (addr, stop, joined) = start(node, listen).await?;
    // One line on stdout that scripts and tests can wait for.
    println!("tracechain node {member_id} listening on {addr}");
    tracing::info!(
        member = %member_id,
        chain = %status.chain_id,
        height = status.height,
        grpc = %addr,
        data_dir = %data_dir.display(),
        "node started"
    );
    let mut joined = joined;
    let outcome = tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            let _ = stop.send(true);
            (&mut joined).await
        }
        // The driver stopped by itself (a fatal fault) and stopped the node.
        ended = &mut joined => ended,
    };
    let outcome = outcome.map_err(|e| anyhow::anyhow!("node task: {e}"))?;
    tracing::info!("stopped");
    outcome
}
