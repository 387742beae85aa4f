//! Shared helpers for the p2p integration tests: start real nodes on 127.0.0.1 with
//! ephemeral ports, wait for conditions with deadlines, and collect events.

#![allow(dead_code)] // each test binary uses a different subset

pub mod bare;

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};
use tracechain_p2p::{
    Multiaddr, NetworkConfig, NetworkEvent, NetworkHandle, NetworkStats, PeerId, PeerSpec,
    node_public_key, peer_id_from_public_key, spawn,
};

/// Upper bound for any wait in the tests (each test still finishes in seconds).
pub const DEADLINE: Duration = Duration::from_secs(15);

/// A running node under test.
pub struct Node {
    pub seed: u8,
    pub handle: NetworkHandle,
    pub events: mpsc::Receiver<NetworkEvent>,
    pub peer_id: PeerId,
    pub addr: Multiaddr,
}

/// Turns on logs when `RUST_LOG` is set (e.g. `RUST_LOG=tracechain_p2p=debug`).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// The node secret key of test node `seed`.
pub fn secret(seed: u8) -> [u8; 32] {
    [seed; 32]
}

pub fn public(seed: u8) -> [u8; 32] {
    node_public_key(&secret(seed)).expect("any 32 bytes are an Ed25519 secret key")
}

pub fn peer_id(seed: u8) -> PeerId {
    peer_id_from_public_key(&public(seed)).expect("derived from a valid secret")
}

pub fn loopback() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().expect("literal multiaddr")
}

/// Short timeouts so that failures and redials show up within a test's time.
pub fn fast_config(
    seed: u8,
    listen: Multiaddr,
    peers: Vec<PeerSpec>,
    observers: Vec<[u8; 32]>,
) -> NetworkConfig {
    let mut config = NetworkConfig::new(secret(seed), listen, peers, observers);
    config.request_timeout = Duration::from_secs(3);
    config.redial_backoff_min = Duration::from_millis(100);
    config.redial_backoff_max = Duration::from_millis(800);
    config
}

/// Starts a node from its config and waits for its listen address.
pub async fn start(seed: u8, config: NetworkConfig) -> Node {
    let (handle, events) = spawn(config).expect("network starts");
    let addrs = timeout(DEADLINE, handle.listen_addrs())
        .await
        .expect("listen address within the deadline")
        .expect("network running");
    let addr = addrs.first().cloned().expect("at least one listen address");
    let peer_id = handle.local_peer_id();
    Node {
        seed,
        handle,
        events,
        peer_id,
        addr,
    }
}

/// Member specs for `seeds`; `addrs[i]` is the address of `seeds[i]` if known.
pub fn member_specs(seeds: &[u8], addrs: &[Option<Multiaddr>]) -> Vec<PeerSpec> {
    seeds
        .iter()
        .enumerate()
        .map(|(i, seed)| PeerSpec {
            name: format!("member-{seed}"),
            public_key: public(*seed),
            addr: addrs.get(i).cloned().flatten(),
        })
        .collect()
}

/// Starts the members in order; each knows the addresses of those started before it, so
/// every pair gets connected by exactly one dialler.
pub async fn start_members(
    seeds: &[u8],
    observers: &[u8],
    tweak: impl Fn(&mut NetworkConfig),
) -> Vec<Node> {
    let observer_keys: Vec<[u8; 32]> = observers.iter().map(|s| public(*s)).collect();
    let mut nodes: Vec<Node> = Vec::new();
    for seed in seeds {
        let addrs: Vec<Option<Multiaddr>> = nodes.iter().map(|n| Some(n.addr.clone())).collect();
        let mut config = fast_config(
            *seed,
            loopback(),
            member_specs(seeds, &addrs),
            observer_keys.clone(),
        );
        tweak(&mut config);
        nodes.push(start(*seed, config).await);
    }
    nodes
}

/// The addresses of running members, in order, for a node that dials all of them.
pub fn all_addrs(nodes: &[Node]) -> Vec<Option<Multiaddr>> {
    nodes.iter().map(|n| Some(n.addr.clone())).collect()
}

/// Polls `check` every 50 ms until it holds; panics with `what` after the deadline.
pub async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if check().await {
            return;
        }
        sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

pub async fn stats(node: &Node) -> NetworkStats {
    node.handle.stats().await.expect("network running")
}

/// Waits until every node sees `members` members connected.
pub async fn wait_for_mesh(nodes: &[Node], members: usize) {
    for node in nodes {
        let what = format!("node {} sees {members} members", node.seed);
        wait_until(&what, || async {
            stats(node).await.connected_members.len() == members
        })
        .await;
    }
}

/// Waits for the first event `pick` accepts; other events are discarded.
pub async fn next_matching<T>(
    events: &mut mpsc::Receiver<NetworkEvent>,
    mut pick: impl FnMut(NetworkEvent) -> Option<T>,
) -> T {
    let found = timeout(DEADLINE, async {
        while let Some(event) = events.recv().await {
            if let Some(found) = pick(event) {
                return Some(found);
            }
        }
        None
    })
    .await;
    found
        .expect("event within the deadline")
        .expect("event channel open")
}

/// The next transaction push among `events`, as (sender, bytes); other events are discarded.
pub async fn next_tx(events: &mut mpsc::Receiver<NetworkEvent>) -> (PeerId, Vec<u8>) {
    next_matching(events, |e| match e {
        NetworkEvent::Tx { from, bytes } => Some((from, bytes)),
        _ => None,
    })
    .await
}

/// Receives events into `log` until `done(log)` holds (keeping every event, unlike
/// [`next_matching`]); panics with `what` after the deadline.
pub async fn collect_until(
    events: &mut mpsc::Receiver<NetworkEvent>,
    log: &mut Vec<NetworkEvent>,
    what: &str,
    done: impl Fn(&[NetworkEvent]) -> bool,
) {
    let collected = timeout(DEADLINE, async {
        while !done(log) {
            log.push(events.recv().await?);
        }
        Some(())
    })
    .await;
    assert!(
        matches!(collected, Ok(Some(()))),
        "timed out waiting until {what}"
    );
}

/// Every event already queued, without waiting.
pub fn drain(events: &mut mpsc::Receiver<NetworkEvent>) -> Vec<NetworkEvent> {
    let mut out = Vec::new();
    while let Ok(event) = events.try_recv() {
        out.push(event);
    }
    out
}

/// The transaction pushes among `events`, as (sender, bytes).
pub fn txs(events: &[NetworkEvent]) -> Vec<(PeerId, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            NetworkEvent::Tx { from, bytes } => Some((*from, bytes.clone())),
            _ => None,
        })
        .collect()
}

/// The consensus messages among `events`, as (sender, bytes).
pub fn consensus(events: &[NetworkEvent]) -> Vec<(PeerId, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            NetworkEvent::Consensus { from, bytes } => Some((*from, bytes.clone())),
            _ => None,
        })
        .collect()
}

pub async fn shutdown_all(nodes: &[Node]) {
    for node in nodes {
        node.handle.shutdown().await;
    }
}
