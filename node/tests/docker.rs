//! The consortium in containers, on the machine's Docker engine: the image built from
//! scratch (no base image is pulled), the four members from scripts/docker/compose.yaml
//! on one private network. One container is cut off the network while transactions go
//! on, then reconnected; at the end it has caught up, every acknowledged transaction is
//! in the chain exactly once, and all four hold the same head and state commitment.

mod common;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use common::{Farm, client, converge, exactly_once, status, submit_batch};

const MEMBERS: [(&str, &str, &str); 4] = [
    ("farm", "producer", "172.30.0.11"),
    ("carrier", "carrier", "172.30.0.12"),
    ("retailer", "retailer", "172.30.0.13"),
    ("customs", "customs", "172.30.0.14"),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Submits one transaction and waits up to `within` for it to commit; its id.
async fn first_commit(
    c: &mut tracechain_proto::v1::ledger_client::LedgerClient<tonic::transport::Channel>,
    farm: &mut Farm,
    within: Duration,
) -> Vec<u8> {
    use tracechain_proto::v1 as pb;
    let id = c
        .submit_tx(pb::SubmitTxRequest {
            tx: Some(farm.next()),
            wait_for_commit: false,
        })
        .await
        .expect("acknowledged")
        .into_inner()
        .tx_id;
    let deadline = std::time::Instant::now() + within;
    loop {
        let r = c
            .get_tx(pb::GetTxRequest { tx_id: id.clone() })
            .await
            .expect("a lookup")
            .into_inner();
        if r.status == pb::TxStatus::Committed as i32 {
            return id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the consortium committed nothing within {within:?} of starting"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// `docker-compose` for this test's project; brought down (with its network) on drop.
struct Compose {
    project: String,
    net_dir: PathBuf,
    ports: Vec<u16>,
}

impl Compose {
    fn command(&self) -> Command {
        let mut c = Command::new("docker-compose");
        c.current_dir(repo())
            .args(["-p", &self.project, "-f", "scripts/docker/compose.yaml"])
            .env("NET_DIR", &self.net_dir)
            .env("TRACECHAIN_IMAGE", "tracechain:test");
        for ((id, _, _), port) in MEMBERS.iter().zip(&self.ports) {
            c.env(format!("{}_GRPC_PORT", id.to_uppercase()), port.to_string());
        }
        c
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = self.command().args(["down", "-v", "-t", "5"]).output();
    }
}

/// A node's height, asked by the tracechain CLI inside its own container.
fn height_inside(container: &str) -> u64 {
    let out = run(Command::new("docker").args([
        "exec",
        container,
        "/usr/local/bin/tracechain",
        "--json",
        "status",
        "--node",
        "http://127.0.0.1:50051",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("status JSON");
    v["height"].as_u64().expect("height")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_cut_off_the_network_catches_up_after_reconnecting() {
    let tmp = tempfile::tempdir().expect("dir");
    run(Command::new(repo().join("scripts/docker-image")).args([
        "--binary",
        env!("CARGO_BIN_EXE_tracechain"),
        "--context",
        &tmp.path().join("image").display().to_string(),
        "--tag",
        "tracechain:test",
    ]));
    let mut genesis = Command::new(env!("CARGO_BIN_EXE_tracechain"));
    genesis.current_dir(tmp.path()).args([
        "genesis",
        "--chain-id",
        "docker-test",
        "--out-dir",
        "net",
    ]);
    for (id, role, ip) in MEMBERS {
        genesis.args(["--member", &format!("{id}:{role}:{ip}:7001")]);
    }
    run(&mut genesis);

    let compose = Compose {
        project: format!("tctest{}", std::process::id()),
        net_dir: tmp.path().join("net"),
        ports: MEMBERS.iter().map(|_| free_port()).collect(),
    };
    run(compose.command().args(["up", "-d"]));
    let url = |i: usize| format!("http://127.0.0.1:{}", compose.ports[i]);
    let mut farm = Farm::load(&tmp.path().join("net/keys"), "docker-test");
    let mut acknowledged = Vec::new();

    let mut c = client(&url(0)).await;
    // The members dial each other as their containers come up, with a redial backoff
    // (0.5 s doubling): on a loaded machine the mesh may take longer to form than one
    // commit wait. What this test is about starts once the consortium commits.
    acknowledged.push(first_commit(&mut c, &mut farm, Duration::from_secs(120)).await);
    acknowledged.extend(submit_batch(&mut c, &mut farm, 4).await);

    // Cut customs off the consortium's network: the other three go on.
    let network = format!("{}_consortium", compose.project);
    let customs = format!("{}_customs_1", compose.project);
    run(Command::new("docker").args(["network", "disconnect", &network, &customs]));
    // Its published port went with the network: ask it from inside its container.
    let stuck_at = height_inside(&customs);
    acknowledged.extend(submit_batch(&mut c, &mut farm, 5).await);
    assert!(status(&mut c).await.height > stuck_at);
    assert_eq!(
        height_inside(&customs),
        stuck_at,
        "a cut-off member cannot commit"
    );

    // Reconnect it at its address: it catches up.
    run(Command::new("docker").args([
        "network",
        "connect",
        "--ip",
        "172.30.0.14",
        &network,
        &customs,
    ]));
    acknowledged.extend(submit_batch(&mut c, &mut farm, 3).await);

    let mut clients = Vec::new();
    for (i, (id, _, _)) in MEMBERS.iter().enumerate() {
        clients.push((*id, client(&url(i)).await));
    }
    let height = converge(&mut clients, Duration::from_secs(60)).await;
    assert!(height > stuck_at);
    exactly_once(&mut clients, height, &acknowledged).await;
}
