//! A consortium node whose driver cannot go on stops as a whole, in order, and says why:
//! it does not keep serving an API with nothing ordering its blocks. Here the driver
//! fails at start (its peer-to-peer port is taken); a fatal fault later (the consensus
//! state cannot be persisted, a decided block cannot be written) takes the same path.

use std::{
    io::Read,
    net::TcpListener,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_tracechain");

#[test]
fn a_driver_that_cannot_start_stops_the_node_with_an_error() {
    let tmp = tempfile::tempdir().expect("dir");
    let dir = tmp.path();
    // Farm's peer-to-peer port is held by someone else for the whole test.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let mut genesis = Command::new(BIN);
    genesis.current_dir(dir).args([
        "genesis",
        "--chain-id",
        "driver-stop",
        "--out-dir",
        "net",
        "--member",
        &format!("farm:producer:127.0.0.1:{port}"),
    ]);
    for (i, (id, role)) in [
        ("carrier", "carrier"),
        ("retailer", "retailer"),
        ("customs", "customs"),
    ]
    .into_iter()
    .enumerate()
    {
        // Ports nobody listens on: the others are never started.
        genesis.args(["--member", &format!("{id}:{role}:127.0.0.1:{}", 9 + i)]);
    }
    let out = genesis.output().expect("genesis");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args([
            "run",
            "--genesis",
            "net/genesis.toml",
            "--node-key",
            "net/keys/farm.node.json",
            "--data-dir",
            "data",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("TRACECHAIN_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node kept running without its consortium driver");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(
        !status.success(),
        "exit status {status:?}; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("consortium driver stopped") && stderr.contains(&port.to_string()),
        "stderr names neither the driver nor the address:\n{stderr}"
    );
    drop(taken);
}
