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

mod common;

use common::{Farm, client, converge, exactly_once, status, submit_batch};

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
    let mut farm = Farm::load(&dir.join("net/keys"), "faults");

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

    // Everyone converges on the same head and state, and every acknowledged
    // transaction is in the chain exactly once, on every node.
    let mut clients = Vec::new();
    for id in MEMBERS {
        clients.push((id, client(&procs[id].url).await));
    }
    let height = converge(&mut clients, Duration::from_secs(30)).await;
    exactly_once(&mut clients, height, &acknowledged).await;
}
