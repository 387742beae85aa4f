//! The README's main command, end to end: `tracechain devnet` starts four member
//! nodes as separate processes, runs the cold-chain demo through them and checks that
//! all four hold the same chain head and state commitment.

use std::{net::TcpListener, process::Command};

/// A base port with `n` consecutive free ports above it.
fn free_range(n: u16) -> u16 {
    for _ in 0..200 {
        let base = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        if base > 60_000 {
            continue;
        }
        let all_free = (0..n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no free port range");
}

#[test]
fn devnet_runs_the_demo_on_four_processes_that_agree() {
    let dir = tempfile::tempdir().expect("dir");
    let grpc = free_range(4);
    let p2p = free_range(4);
    let out = Command::new(env!("CARGO_BIN_EXE_tracechain"))
        .args([
            "devnet",
            "--dir",
            &dir.path().display().to_string(),
            "--grpc-port",
            &grpc.to_string(),
            "--p2p-port",
            &p2p.to_string(),
            "--hours",
            // The vaccine reefer fails 3 h into transit.
            "5",
        ])
        .output()
        .expect("run devnet");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "devnet failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("all four nodes hold the same chain head and state commitment"),
        "{stdout}"
    );
    assert!(
        stdout.contains("verdict    non_conformant"),
        "the vaccine shipment's excursion shows:\n{stdout}"
    );
    assert!(stdout.contains("verdict    conformant"), "{stdout}");
    // Four separate data directories, and no node left running.
    for id in ["farm", "carrier", "retailer", "customs"] {
        assert!(
            dir.path().join("data").join(id).is_dir(),
            "{id} has its own RocksDB directory"
        );
        let log = std::fs::read_to_string(dir.path().join(format!("{id}.log"))).expect("log");
        assert!(log.contains("committed block"), "{id} committed blocks");
    }
    let leftover = Command::new("pgrep")
        .args(["-f", &format!("{}.*run --config", dir.path().display())])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    assert!(!leftover, "devnet stops its nodes");
}
