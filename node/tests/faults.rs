//! Faults with real processes: four `tracechain run` processes on loopback; kill -9 a
//! follower (the chain goes on with three), kill -9 the primary (view change, commits
//! resume), restart both (they catch up), wipe one member's data directory (it resyncs
//! from its peers); transactions are submitted throughout. At the end every acknowledged
//! transaction is in the chain exactly once, and all four nodes have identical block
//! hashes and state commitments.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tonic::transport::Channel;
use tracechain_node::{crypto::KeyFile, tx};
use tracechain_proto::v1::{self as pb, ledger_client::LedgerClient, tx_body::Action};

const BIN: &str = env!("CARGO_BIN_EXE_tracechain");
const MEMBERS: [&str; 4] = ["farm", "carrier", "retailer", "customs"];

struct Proc {
    child: Child,
    url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn start(dir: &Path, id: &str) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{id}.log")))
        .expect("log");
    let mut child = Command::new(BIN)
        .current_dir(dir.join("net"))
        .args([
            "run",
            "--config",
            &format!("{id}.node.toml"),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--block-interval-ms", "50"])
        .env("TRACECHAIN_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start node");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("banner");
    let addr = line.trim().rsplit(' ').next().expect("address").to_string();
    assert!(line.contains("listening on"), "{id}: {line:?}");
    Proc {
        child,
        url: format!("http://{addr}"),
    }
}

async fn client(url: &str) -> LedgerClient<Channel> {
    for _ in 0..100 {
        if let Ok(c) = LedgerClient::connect(url.to_string()).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no node at {url}");
}

/// Signs registrations with the farm's admin key file.
struct Farm {
    key: tracechain_node::crypto::SecretKey,
    public: Vec<u8>,
    seq: u64,
}

impl Farm {
    fn next(&mut self, chain: &str) -> pb::SignedTx {
        self.seq += 1;
        let device =
            tracechain_node::crypto::SecretKey::generate(tracechain_node::crypto::Scheme::Ed25519);
        tx::sign_body(
            &pb::TxBody {
                chain_id: chain.into(),
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

/// Submits `n` transactions to `c`, each waiting for its commit; returns their ids.
async fn submit_batch(c: &mut LedgerClient<Channel>, farm: &mut Farm, n: usize) -> Vec<Vec<u8>> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let r = c
            .submit_tx(pb::SubmitTxRequest {
                tx: Some(farm.next("faults")),
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

async fn status(c: &mut LedgerClient<Channel>) -> pb::ChainStatus {
    c.get_chain_status(pb::GetChainStatusRequest {})
        .await
        .expect("status")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_follower_kill_primary_restart_both() {
    let tmp = tempfile::tempdir().expect("dir");
    let dir = tmp.path();
    let mut args = vec![
        "genesis".to_string(),
        "--chain-id".into(),
        "faults".into(),
        "--out-dir".into(),
        "net".into(),
    ];
    for (id, role) in MEMBERS
        .iter()
        .zip(["producer", "carrier", "retailer", "customs"])
    {
        args.push("--member".into());
        args.push(format!("{id}:{role}:127.0.0.1:{}", free_port()));
    }
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(&args)
        .output()
        .expect("genesis");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = KeyFile::load(&dir.join("net/keys/farm.admin.json")).expect("key");
    let mut farm = Farm {
        key: admin.secret_key().expect("secret"),
        public: admin.public_key_bytes().expect("public"),
        seq: 0,
    };

    let mut procs: BTreeMap<&str, Proc> = MEMBERS.iter().map(|id| (*id, start(dir, id))).collect();
    let mut acknowledged = Vec::new();

    // All four up.
    let mut c = client(&procs["carrier"].url).await;
    acknowledged.extend(submit_batch(&mut c, &mut farm, 5).await);

    // kill -9 a follower (customs is replica 3; the primary of view 0 is replica 0).
    drop(procs.remove("customs"));
    acknowledged.extend(submit_batch(&mut c, &mut farm, 5).await);

    // kill -9 the primary: the other two plus... only three were up, so first bring the
    // follower back, then kill the primary.
    procs.insert("customs", start(dir, "customs"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = status(&mut c).await.height;
    drop(procs.remove("farm"));
    let killed = Instant::now();
    acknowledged.extend(submit_batch(&mut c, &mut farm, 1).await);
    let resumed = killed.elapsed();
    eprintln!("first commit {resumed:?} after kill -9 of the primary (height {before} before)");
    acknowledged.extend(submit_batch(&mut c, &mut farm, 5).await);

    // Restart the primary: it catches up from its peers.
    procs.insert("farm", start(dir, "farm"));
    acknowledged.extend(submit_batch(&mut c, &mut farm, 5).await);

    // A member that lost its disk: an empty data directory syncs the whole chain from
    // its peers, checking every certificate.
    drop(procs.remove("customs"));
    std::fs::remove_dir_all(dir.join("net/data/customs")).expect("wipe customs");
    acknowledged.extend(submit_batch(&mut c, &mut farm, 3).await);
    let target = status(&mut c).await.height;
    let resync = Instant::now();
    procs.insert("customs", start(dir, "customs"));
    let mut fresh = client(&procs["customs"].url).await;
    while status(&mut fresh).await.height < target {
        assert!(
            resync.elapsed() < Duration::from_secs(30),
            "customs did not resync"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = resync.elapsed().as_secs_f64();
    eprintln!(
        "empty data directory resynced {target} blocks in {took:.2} s ({:.0} blocks/s, including start-up)",
        target as f64 / took
    );

    // Everyone converges on the same head and state.
    let mut clients = Vec::new();
    for id in MEMBERS {
        clients.push((id, client(&procs[id].url).await));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut statuses;
    loop {
        statuses = Vec::new();
        for (id, c) in &mut clients {
            statuses.push((*id, status(c).await));
        }
        let same = statuses.windows(2).all(|w| {
            (w[0].1.height, &w[0].1.head_hash, &w[0].1.state_commitment)
                == (w[1].1.height, &w[1].1.head_hash, &w[1].1.state_commitment)
        });
        if same {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nodes did not converge: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every acknowledged transaction is in the chain exactly once, on every node.
    let height = statuses[0].1.height;
    for (id, c) in &mut clients {
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
        for ack in &acknowledged {
            assert_eq!(
                seen.get(ack),
                Some(&1),
                "{id}: {} must be committed exactly once",
                hex::encode(ack)
            );
        }
    }
}
