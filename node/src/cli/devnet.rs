//! `tracechain devnet`: a local 4-member consortium — farm, carrier, retailer,
//! customs — as four `tracechain run` processes on loopback, each with its own
//! RocksDB directory, running PBFT over libp2p, and the live cold-chain demo driven
//! through their gRPC APIs (each member submits to its own node). At the end it shows
//! that all four nodes hold the same chain head and state commitment. Ctrl-C stops
//! everything cleanly.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};
use tracechain_proto::v1 as pb;

use super::{demo, output, run};
use crate::{
    crypto::{KeyFile, KeyKind, Scheme, SecretKey},
    genesis::{
        AttestationRule, ContainmentRule, DeviceConflictRule, EventIdentity, Genesis, GenesisFile,
        LineageRule, MemberEntry, MktRule, Role,
    },
};

#[derive(Debug, clap::Args)]
pub(super) struct DevnetArgs {
    /// Directory for the consortium (genesis, keys, data, logs); default: a temporary
    /// directory removed at exit.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// First gRPC port (the four nodes use this and the next three).
    #[arg(long, default_value_t = 50151)]
    grpc_port: u16,
    /// First peer-to-peer port (the four nodes use this and the next three).
    #[arg(long, default_value_t = 7101)]
    p2p_port: u16,
    /// Hours of simulated transit in the demo.
    #[arg(long, default_value_t = 8)]
    hours: u32,
    /// Keep the consortium running after the demo, until Ctrl-C.
    #[arg(long)]
    keep_running: bool,
}

pub(super) const MEMBERS: [(&str, &str, Role); 4] = [
    ("farm", "Green Valley Farm", Role::Producer),
    ("carrier", "Polar Freight", Role::Carrier),
    ("retailer", "FreshMart", Role::Retailer),
    ("customs", "Border Customs", Role::Customs),
];

/// The member node processes; stopped (SIGTERM, then SIGKILL) when dropped.
pub(super) struct Processes(pub(super) Vec<(String, Child)>);

impl Processes {
    pub(super) fn stop(&mut self) {
        for (_, child) in &mut self.0 {
            // SIGTERM lets the node finish its current block and close RocksDB.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        for (name, child) in &mut self.0 {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    _ => {
                        eprintln!("{name} did not stop in time; killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        self.0.clear();
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(super) fn write_consortium(dir: &Path, grpc_port: u16, p2p_port: u16) -> anyhow::Result<()> {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys)?;
    let mut entries = Vec::new();
    for (i, (id, name, role)) in MEMBERS.iter().enumerate() {
        let node = SecretKey::generate(Scheme::Ed25519);
        let admin = SecretKey::generate(Scheme::Ed25519);
        KeyFile::new(KeyKind::Node, *id, &node).save(&keys.join(format!("{id}.node.json")))?;
        KeyFile::new(KeyKind::Member, *id, &admin).save(&keys.join(format!("{id}.admin.json")))?;
        entries.push(MemberEntry {
            id: id.to_string(),
            name: name.to_string(),
            role: *role,
            node_key: hex::encode(node.public_key()),
            admin_key: hex::encode(admin.public_key()),
            address: format!("127.0.0.1:{}", p2p_port + i as u16),
            validator: true,
            gs1_company_prefixes: Vec::new(),
        });
        let config = run::NodeConfigFile {
            genesis: Some("genesis.toml".into()),
            node_key: Some(format!("keys/{id}.node.json").into()),
            data_dir: Some(format!("data/{id}").into()),
            listen: Some(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                grpc_port + i as u16,
            ))),
            ..Default::default()
        };
        std::fs::write(
            dir.join(format!("{id}.node.toml")),
            toml::to_string_pretty(&config)?,
        )?;
    }
    let genesis = Genesis::from_file(GenesisFile {
        chain_id: "tracechain-devnet".into(),
        genesis_time_ms: now_ms() - 24 * 3_600_000,
        max_clock_skew_ms: 300_000,
        mkt_rule: MktRule::CURRENT,
        epcis_event_identity: EventIdentity::CURRENT,
        containment: ContainmentRule::CURRENT,
        lineage: LineageRule::CURRENT,
        attestation: AttestationRule::CURRENT,
        device_conflicts: DeviceConflictRule::CURRENT,
        members: entries,
    })?;
    std::fs::write(dir.join("genesis.toml"), genesis.to_toml())?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Starts one member node, with `extra` arguments after its config, and waits for its
/// "listening on" line.
pub(super) fn spawn_member(
    dir: &Path,
    id: &str,
    extra: &[String],
) -> anyhow::Result<(Child, String)> {
    let exe = std::env::current_exe().context("locating the tracechain binary")?;
    let log = std::fs::File::create(dir.join(format!("{id}.log")))?;
    let mut child = Command::new(exe)
        .current_dir(dir)
        .args(["run", "--config", &format!("{id}.node.toml")])
        .args(extra)
        .env(
            "TRACECHAIN_LOG",
            std::env::var("TRACECHAIN_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {id}"))?;
    let stdout = child.stdout.take().context("node stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let Some(addr) = line
        .trim()
        .strip_prefix(&format!("tracechain node {id} listening on "))
    else {
        let _ = child.kill();
        bail!(
            "{id} did not start (see {}/{id}.log): {line:?}",
            dir.display()
        );
    };
    Ok((child, format!("http://{addr}")))
}

pub(super) async fn devnet(a: DevnetArgs) -> anyhow::Result<()> {
    let temp = tempfile::TempDir::new()?;
    let dir = a.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    if dir.join("genesis.toml").exists() {
        println!("resuming the consortium in {}", dir.display());
    } else {
        write_consortium(&dir, a.grpc_port, a.p2p_port)?;
        println!("created a 4-member consortium in {}", dir.display());
    }
    let mut processes = Processes(Vec::new());
    let mut urls = BTreeMap::new();
    for (id, _, _) in MEMBERS {
        let (child, url) = spawn_member(&dir, id, &[])?;
        println!("  {id:<9} node pid {:<7} gRPC {url}", child.id());
        processes.0.push((id.to_string(), child));
        urls.insert(id.to_string(), url);
    }

    let work = async {
        let mut routes = BTreeMap::new();
        let mut signers = BTreeMap::new();
        for (id, _, _) in MEMBERS {
            routes.insert(id.to_string(), output::connect(&urls[id]).await?);
            let key = KeyFile::load(&dir.join(format!("keys/{id}.admin.json")))?.secret_key()?;
            signers.insert(id.to_string(), demo::member_signer(id, key));
        }
        // Readings reach the carrier's node: the carrier has the shipment in its truck.
        let readings_client = output::connect(&urls["carrier"]).await?;
        for (id, signer) in demo::logger_signers() {
            signers.insert(id, signer);
        }
        let mut watcher = output::connect(&urls["retailer"]).await?;
        let mut blocks = watcher
            .subscribe_blocks(pb::SubscribeBlocksRequest { from_height: 1 })
            .await?
            .into_inner();
        tokio::spawn(async move {
            while let Ok(Some(b)) = blocks.message().await {
                if b.results.len() > 1 {
                    let ok = b
                        .results
                        .iter()
                        .filter(|r| r.code == pb::ResultCode::Ok as i32)
                        .count();
                    println!(
                        "  ▪ committed block with {} transactions ({ok} ok), signed by {}",
                        b.results.len(),
                        b.certificate
                            .map(|c| c
                                .signatures
                                .iter()
                                .map(|s| s.member_id.clone())
                                .collect::<Vec<_>>()
                                .join(", "))
                            .unwrap_or_default()
                    );
                }
            }
        });
        let mut feed =
            demo::Feed::new("tracechain-devnet".into(), readings_client, routes, signers);
        demo::scenario(&mut feed, a.hours, now_ms()).await?;
        let mut retailer = output::connect(&urls["retailer"]).await?;
        demo::print_verdicts(&mut retailer).await?;
        agree(&urls).await
    };
    let result = tokio::select! {
        r = work => r,
        _ = run::shutdown_signal() => {
            println!("\ninterrupted");
            Ok(())
        }
    };
    if let Err(e) = &result {
        println!("devnet demo failed: {e:#} (logs in {})", dir.display());
    }
    if a.keep_running && result.is_ok() {
        println!("\nthe consortium keeps running; Ctrl-C to stop");
        run::shutdown_signal().await;
    }
    println!("stopping the four nodes");
    processes.stop();
    if a.dir.is_none() && result.is_err() {
        // Keep the logs of a failed run.
        let kept = temp.keep();
        println!("logs kept in {}", kept.display());
    }
    result
}

/// Waits until all nodes reach the same height, then checks that they hold the same
/// head hash and state commitment there.
async fn agree(urls: &BTreeMap<String, String>) -> anyhow::Result<()> {
    println!("\n— do all four nodes agree?");
    let mut clients = Vec::new();
    for (id, url) in urls {
        clients.push((id.clone(), output::connect(url).await?));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut statuses = Vec::new();
        for (id, c) in &mut clients {
            let s = c
                .get_chain_status(pb::GetChainStatusRequest {})
                .await?
                .into_inner();
            statuses.push((id.clone(), s));
        }
        let same = statuses.windows(2).all(|w| {
            (w[0].1.height, &w[0].1.head_hash, &w[0].1.state_commitment)
                == (w[1].1.height, &w[1].1.head_hash, &w[1].1.state_commitment)
        });
        if same || tokio::time::Instant::now() > deadline {
            for (id, s) in &statuses {
                println!(
                    "  {id:<9} height {:<5} head {} state {}",
                    s.height,
                    hex::encode(&s.head_hash[..8]),
                    hex::encode(&s.state_commitment[..8])
                );
            }
            if same {
                println!("  ✓ all four nodes hold the same chain head and state commitment");
                return Ok(());
            }
            bail!("the nodes did not converge within 20 s");
        }
        // Idle heartbeat blocks may be in flight on some nodes: look again.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
