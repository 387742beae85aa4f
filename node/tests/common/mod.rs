//! Shared by the multi-node tests (processes and containers): a signing farm, submit-and-
//! await, convergence and exactly-once checks over the gRPC API.

#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use tonic::transport::Channel;
use tracechain_node::{
    crypto::{KeyFile, Scheme, SecretKey},
    tx,
};
use tracechain_proto::v1::{self as pb, ledger_client::LedgerClient, tx_body::Action};

/// Connects to a node, waiting for it to come up: until it answers a call, not only
/// until a connection is accepted (a container's published port accepts connections
/// before the node inside listens, then closes them).
pub async fn client(url: &str) -> LedgerClient<Channel> {
    for _ in 0..200 {
        if let Ok(mut c) = LedgerClient::connect(url.to_string()).await
            && c.get_chain_status(pb::GetChainStatusRequest {})
                .await
                .is_ok()
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no node at {url}");
}

/// Signs device registrations with the farm's admin key file.
pub struct Farm {
    chain: String,
    key: SecretKey,
    public: Vec<u8>,
    seq: u64,
}

impl Farm {
    /// The farm of the consortium whose keys are under `keys_dir`.
    pub fn load(keys_dir: &Path, chain: &str) -> Self {
        let admin = KeyFile::load(&keys_dir.join("farm.admin.json")).expect("farm key");
        Self {
            chain: chain.into(),
            key: admin.secret_key().expect("secret"),
            public: admin.public_key_bytes().expect("public"),
            seq: 0,
        }
    }

    /// The next signed transaction.
    pub fn next(&mut self) -> pb::SignedTx {
        self.seq += 1;
        let device = SecretKey::generate(Scheme::Ed25519);
        tx::sign_body(
            &pb::TxBody {
                chain_id: self.chain.clone(),
                signer: Some(pb::Signer {
                    kind: pb::SignerKind::Member as i32,
                    id: "farm".into(),
                    scheme: pb::SignatureScheme::Ed25519 as i32,
                    public_key: self.public.clone(),
                }),
                sequence: self.seq,
                time_ms: 1_700_000_000_000,
                action: Some(Action::RegisterDevice(pb::RegisterDevice {
                    device_id: format!("dev-{}", self.seq),
                    scheme: pb::SignatureScheme::Ed25519 as i32,
                    public_key: device.public_key(),
                    device_type: String::new(),
                })),
            },
            &self.key,
        )
    }
}

/// Submits `n` transactions to `c`, each awaiting its commit; returns their ids.
pub async fn submit_batch(
    c: &mut LedgerClient<Channel>,
    farm: &mut Farm,
    n: usize,
) -> Vec<Vec<u8>> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let r = c
            .submit_tx(pb::SubmitTxRequest {
                tx: Some(farm.next()),
                wait_for_commit: true,
            })
            .await
            .expect("acknowledged")
            .into_inner();
        assert_eq!(
            r.status,
            pb::TxStatus::Committed as i32,
            "committed within the wait"
        );
        ids.push(r.tx_id);
    }
    ids
}

/// A node's chain status.
pub async fn status(c: &mut LedgerClient<Channel>) -> pb::ChainStatus {
    c.get_chain_status(pb::GetChainStatusRequest {})
        .await
        .expect("status")
        .into_inner()
}

/// Waits until every node has the same height, head and state commitment; returns it.
pub async fn converge(clients: &mut [(&str, LedgerClient<Channel>)], within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let mut statuses = Vec::new();
        for (id, c) in clients.iter_mut() {
            statuses.push((*id, status(c).await));
        }
        let same = statuses.windows(2).all(|w| {
            (w[0].1.height, &w[0].1.head_hash, &w[0].1.state_commitment)
                == (w[1].1.height, &w[1].1.head_hash, &w[1].1.state_commitment)
        });
        if same {
            return statuses[0].1.height;
        }
        assert!(
            Instant::now() < deadline,
            "nodes did not converge: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every acknowledged transaction is in the chain (up to `height`) exactly once, with
/// result OK, on every node.
pub async fn exactly_once(
    clients: &mut [(&str, LedgerClient<Channel>)],
    height: u64,
    acknowledged: &[Vec<u8>],
) {
    for (id, c) in clients.iter_mut() {
        let mut seen: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for h in 1..=height {
            let b = c
                .get_block(pb::GetBlockRequest {
                    by: Some(pb::get_block_request::By::Height(h)),
                })
                .await
                .expect("block")
                .into_inner();
            for (t, r) in b.block.expect("block").txs.iter().zip(&b.results) {
                if r.code == pb::ResultCode::Ok as i32 {
                    *seen
                        .entry(tx::TxId::of_body(&t.body).0.to_vec())
                        .or_default() += 1;
                }
            }
        }
        for ack in acknowledged {
            assert_eq!(
                seen.get(ack),
                Some(&1),
                "{id}: {} must be committed exactly once",
                hex::encode(ack)
            );
        }
    }
}

// ---- the tracechain binary --------------------------------------------------------

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tracechain");

/// A `tracechain run` process, killed when dropped.
pub struct NodeProcess {
    /// The process.
    pub child: std::process::Child,
    /// Its gRPC endpoint.
    pub url: String,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tracechain ARGS` in `dir`.
pub fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run tracechain")
}

/// Runs `tracechain ARGS` in `dir`, which must succeed; returns its stdout.
pub fn cli(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "tracechain {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts farm's node of the consortium in `dir/net` (genesis and keys from
/// `tracechain genesis`).
pub fn start_node(dir: &Path) -> NodeProcess {
    start_node_with(
        dir,
        &[
            "--genesis",
            "net/genesis.toml",
            "--node-key",
            "net/keys/farm.node.json",
        ],
    )
}

/// Starts `tracechain run ARGS` on `dir/data` and a free port; waits for its banner.
pub fn start_node_with(dir: &Path, args: &[&str]) -> NodeProcess {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(BIN)
        .current_dir(dir)
        .arg("run")
        .args(args)
        .args([
            "--data-dir",
            "data",
            "--listen",
            "127.0.0.1:0",
            "--block-interval-ms",
            "50",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start node");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read banner");
    assert!(line.contains("listening on"), "unexpected banner {line:?}");
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    NodeProcess {
        child,
        url: format!("http://{addr}"),
    }
}

/// Wall clock, unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
