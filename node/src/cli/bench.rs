//! `tracechain bench`: the cluster benchmark. Starts the 4-member consortium as four
//! processes (as `devnet` does), registers many devices, signs the whole load before the
//! measured window, then drives signed sensor readings open-loop over gRPC — at a target
//! rate, or as fast as admission takes them — and reports committed events per second,
//! submit-to-commit latency percentiles, block size and interval, and CPU and peak RSS
//! per node, as a table and as JSON.
//!
//! A device's readings always go to the same node, in sequence order, as a real device's
//! would; devices are spread over the four nodes.

use std::{
    collections::HashMap,
    io::Write,
    path::PathBuf,
    sync::atomic::{AtomicUsize, Ordering::Relaxed},
    time::{Duration, Instant},
};

use anyhow::bail;
use prost::Message;
use serde_json::json;
use tonic::transport::Channel;
use tracechain_proto::v1::{self as pb, ledger_client::LedgerClient};

use super::{devnet, output};
use crate::{crypto::KeyFile, loadgen};

#[derive(Debug, clap::Args)]
pub(super) struct BenchArgs {
    /// Seconds of load.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Target events per second (0: as fast as the nodes admit them).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Device signatures: ed25519, p256 or mixed.
    #[arg(long, default_value = "ed25519", value_parser = ["ed25519", "p256", "mixed"])]
    scheme: String,
    /// Devices.
    #[arg(long, default_value_t = 400)]
    devices: usize,
    /// Most events signed in advance (the load stops early if they run out). At
    /// saturation (`--rate 0`), 25,000 (Ed25519) or 10,000 (P-256, mixed) per second of
    /// duration are signed, up to this.
    #[arg(long, default_value_t = 2_000_000)]
    max_events: usize,
    /// Directory for the consortium (default: temporary).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// First gRPC port.
    #[arg(long, default_value_t = 50161)]
    grpc_port: u16,
    /// First peer-to-peer port.
    #[arg(long, default_value_t = 7111)]
    p2p_port: u16,
    /// Also write the JSON report here.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// The members' least time between two proposals, ms (`run --min-block-interval-ms`;
    /// default: the node's default).
    #[arg(long)]
    min_block_interval_ms: Option<u64>,
    /// Percent of the load that is member-signed EPCIS ObjectEvents (each naming an
    /// item, so indexed under it), the rest device readings: what the identifier index
    /// costs ingest. Each member sends its own to its node.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=50))]
    epcis_percent: u8,
}

const CHAIN: &str = "tracechain-devnet";

/// What one node's sender saw: refused for good, and refused as overloaded then resent.
#[derive(Default)]
struct SendCounts {
    refused: AtomicUsize,
    throttled: AtomicUsize,
    /// Refused as overloaded after the window closed, so not sent again.
    late: AtomicUsize,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// CPU seconds (user + system) and peak RSS in bytes of a process, from /proc.
fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    // USER_HZ is 100 on Linux.
    Some((ticks / 100.0, hwm_kb * 1024))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Admission checks (decode and signature, batched as the node does) per second on one
/// core, over up to 4,096 of the load's own transactions, for at least a second.
fn check_rate_per_core(sample: &[pb::SignedTx]) -> f64 {
    let sample = &sample[..sample.len().min(4_096)];
    if sample.is_empty() {
        return 0.0;
    }
    let Ok(pool) = rayon::ThreadPoolBuilder::new().num_threads(1).build() else {
        return 0.0;
    };
    let started = Instant::now();
    let mut checked = 0usize;
    while started.elapsed() < Duration::from_secs(1) {
        let unverified: Vec<_> = sample
            .iter()
            .filter_map(|t| crate::tx::decode(t.clone(), CHAIN).ok())
            .collect();
        checked += pool
            .install(|| crate::tx::verify_all(unverified))
            .iter()
            .filter(|r| r.is_ok())
            .count();
    }
    checked as f64 / started.elapsed().as_secs_f64()
}

pub(super) async fn bench(a: BenchArgs) -> anyhow::Result<()> {
    let temp = tempfile::TempDir::new()?;
    let dir = a.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    if dir.join("genesis.toml").exists() {
        bail!(
            "{} already holds a consortium; give an empty --dir",
            dir.display()
        );
    }
    devnet::write_consortium(&dir, a.grpc_port, a.p2p_port)?;
    let mut processes = devnet::Processes(Vec::new());
    let mut clients: Vec<LedgerClient<Channel>> = Vec::new();
    let mut pids = Vec::new();
    let extra: Vec<String> = a
        .min_block_interval_ms
        .map(|ms| vec!["--min-block-interval-ms".into(), ms.to_string()])
        .unwrap_or_default();
    for (id, _, _) in devnet::MEMBERS {
        let (child, url) = devnet::spawn_member(&dir, id, &extra)?;
        pids.push((id, child.id()));
        processes.0.push((id.to_string(), child));
        clients.push(output::connect(&url).await?);
    }
    eprintln!("4 nodes up in {}", dir.display());

    // ---- setup (not measured): devices and shipments ----
    let admin = KeyFile::load(&dir.join("keys/farm.admin.json"))?.secret_key()?;
    let devices = loadgen::devices(a.devices, &a.scheme);
    let (setup, shipments) = loadgen::setup(CHAIN, "farm", &admin, &devices, now_ms());
    let last = setup.last().map(|t| t.body.clone()).unwrap_or_default();
    for chunk in setup.chunks(2_000) {
        clients[0]
            .submit_txs(pb::SubmitTxsRequest {
                txs: chunk.to_vec(),
            })
            .await?;
    }
    let last_id = blake3::hash(&last).as_bytes().to_vec();
    let setup_deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = clients[0]
            .get_tx(pb::GetTxRequest {
                tx_id: last_id.clone(),
            })
            .await;
        if r.is_ok_and(|r| r.into_inner().status == pb::TxStatus::Committed as i32) {
            break;
        }
        if Instant::now() > setup_deadline {
            bail!("setup transactions were not committed");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // ---- pre-sign the load ----
    // At saturation, more than the consortium can commit: signing is not free (P-256 signs
    // at a fraction of Ed25519's speed), so by scheme.
    let per_second = match (a.rate, a.scheme.as_str()) {
        (0, "ed25519") => 25_000,
        (0, _) => 10_000,
        (rate, _) => rate,
    };
    let total = ((per_second * a.duration) as usize).min(a.max_events);
    let signing = Instant::now();
    // Stream n goes to node n: a device always talks to the same node.
    let streams = loadgen::readings(
        CHAIN,
        &devices,
        &shipments,
        total,
        4,
        100,
        now_ms() - 60_000,
    );
    // The EPCIS share: each member's events, in its sequence order, go to its own node,
    // spread evenly among that node's readings.
    let epcis_per_node =
        total * usize::from(a.epcis_percent) / (100 - usize::from(a.epcis_percent)) / 4;
    let mut epcis: Vec<Vec<pb::SignedTx>> = Vec::new();
    for (n, (id, _, _)) in devnet::MEMBERS.iter().enumerate() {
        let key = KeyFile::load(&dir.join(format!("keys/{id}.admin.json")))?.secret_key()?;
        // farm's setup used its sequences 1..=setup.len().
        let first = if n == 0 { setup.len() as u64 + 1 } else { 1 };
        epcis.push(loadgen::epcis_observations(
            CHAIN,
            id,
            &key,
            first,
            epcis_per_node,
            now_ms() - 60_000,
        ));
    }
    let epcis_signed: usize = epcis.iter().map(Vec::len).sum();
    let signed: usize = streams.iter().map(Vec::len).sum();
    eprintln!(
        "signed {epcis_signed} EPCIS events and {signed} readings ({}) in {:.1} s",
        a.scheme,
        signing.elapsed().as_secs_f64()
    );
    // The ceiling: every node checks every signature once, so the consortium cannot
    // commit more than cores × (checks per second per core) ÷ nodes.
    let check_rate = check_rate_per_core(&streams[0]);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ceiling = cores as f64 * check_rate / 4.0;
    eprintln!(
        "admission checks (decode + signature) on one core: {check_rate:.0}/s; \
         ceiling {cores} cores × {check_rate:.0} ÷ 4 nodes = {ceiling:.0} events/s"
    );

    // ---- measured window ----
    let start_height = clients[0]
        .get_chain_status(pb::GetChainStatusRequest {})
        .await?
        .into_inner()
        .height;
    let mut blocks = clients[0]
        .subscribe_blocks(pb::SubscribeBlocksRequest {
            from_height: start_height + 1,
        })
        .await?
        .into_inner();
    let cpu_before: Vec<f64> = pids
        .iter()
        .map(|(_, p)| proc_usage(*p).map_or(0.0, |u| u.0))
        .collect();
    let started = Instant::now();
    let window = Duration::from_secs(a.duration);
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel::<(Vec<u8>, Instant)>();
    // Each node's readings go out on a few lanes; a device belongs to one lane, and a lane
    // sends one request at a time, so a device's readings reach its node in sequence order
    // (a reading that overtook an earlier one would make it a replay). Open loop: a lane's
    // requests leave on its schedule, not when the previous answer came back, unless that
    // answer is late. At saturation, one lane per node sends 2,000 readings per request
    // as fast as they are answered.
    let per_node_devices = a.devices.div_ceil(4).max(1);
    let lanes = if a.rate > 0 {
        per_node_devices.min(4)
    } else {
        1
    };
    let lane_rate = a.rate as f64 / 4.0 / lanes as f64;
    // A request every 100 ms per lane: integrators batch (a request of a few readings costs
    // a node nearly as much as one of dozens).
    let per_request = if a.rate > 0 {
        ((lane_rate * 0.1).round() as usize).max(1)
    } else {
        2_000
    };
    let spacing = if a.rate > 0 {
        Duration::from_secs_f64(per_request as f64 / lane_rate)
    } else {
        Duration::ZERO
    };
    let open_loop = a.rate > 0;
    let mut senders = Vec::new();
    for (node, (stream, member_events)) in streams.into_iter().zip(epcis).enumerate() {
        // The stream is rounds of every device of this node, in device order.
        let mut by_lane: Vec<Vec<pb::SignedTx>> = vec![Vec::new(); lanes];
        for (i, tx) in stream.into_iter().enumerate() {
            by_lane[(i % per_node_devices) % lanes].push(tx);
        }
        // The member's events into lane 0 (one lane keeps its sequences in order), one
        // after every `every` readings of it.
        if !member_events.is_empty() {
            let readings = std::mem::take(&mut by_lane[0]);
            let every = (readings.len() / member_events.len()).max(1);
            let mut events = member_events.into_iter();
            for (i, tx) in readings.into_iter().enumerate() {
                by_lane[0].push(tx);
                if (i + 1) % every == 0
                    && let Some(e) = events.next()
                {
                    by_lane[0].push(e);
                }
            }
            by_lane[0].extend(events);
        }
        for mine in by_lane {
            let counts = std::sync::Arc::new(SendCounts::default());
            let (mut c, sent_tx, counts) = (clients[node].clone(), sent_tx.clone(), counts.clone());
            senders.push(tokio::spawn(async move {
                for (j, batch) in mine.chunks(per_request).enumerate() {
                    if started.elapsed() >= window {
                        break;
                    }
                    if open_loop {
                        tokio::time::sleep_until((started + spacing * j as u32).into()).await;
                    }
                    let at = Instant::now();
                    let mut pending = batch.to_vec();
                    // At saturation, what the node refuses as overloaded (a full mempool, a
                    // full consortium queue) is sent again after a pause that doubles each
                    // time, as a real client backing off would. The refused ones are always
                    // the tail of the request, and the lane sends nothing else meanwhile, so
                    // a device's readings stay in order.
                    let mut pause = Duration::from_millis(20);
                    while !pending.is_empty() {
                        let n = pending.len();
                        let outcomes = match c
                            .submit_txs(pb::SubmitTxsRequest {
                                txs: pending.clone(),
                            })
                            .await
                        {
                            Ok(r) => r.into_inner().outcomes,
                            Err(_) => {
                                counts.refused.fetch_add(n, Relaxed);
                                break;
                            }
                        };
                        let mut again = Vec::new();
                        for (o, tx) in outcomes.into_iter().zip(pending) {
                            if o.accepted {
                                let _ = sent_tx.send((o.tx_id, at));
                            } else if !open_loop
                                && o.error_code == "RESOURCE_EXHAUSTED"
                                && started.elapsed() < window
                            {
                                again.push(tx);
                            } else if o.error_code == "RESOURCE_EXHAUSTED" {
                                // Overloaded, and the window has closed: not sent again.
                                counts.late.fetch_add(1, Relaxed);
                            } else {
                                counts.refused.fetch_add(1, Relaxed);
                            }
                        }
                        if !again.is_empty() {
                            counts.throttled.fetch_add(again.len(), Relaxed);
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(Duration::from_millis(320));
                        }
                        pending = again;
                    }
                }
                (
                    counts.refused.load(Relaxed),
                    counts.throttled.load(Relaxed),
                    counts.late.load(Relaxed),
                )
            }));
        }
    }
    drop(sent_tx);

    let mut submitted: HashMap<Vec<u8>, Instant> = HashMap::new();
    // Commits seen before their submission's answer was: matched when it arrives.
    let mut early: HashMap<Vec<u8>, Instant> = HashMap::new();
    let mut last_commit = started;
    let mut latencies = Vec::new();
    let mut committed = 0usize;
    let mut accepted = 0usize;
    let mut block_sizes = Vec::new();
    let mut block_times = Vec::new();
    let mut failed: std::collections::BTreeMap<String, usize> = Default::default();
    let mut last_report = Instant::now();
    // After the window: wait while commits still come (the backlog drains), up to 10 s
    // without one, and two minutes in all.
    let quiet = Duration::from_secs(10);
    let drain_until = window + Duration::from_secs(120);
    let record = |id: Vec<u8>,
                  at: Instant,
                  submitted: &mut HashMap<Vec<u8>, Instant>,
                  early: &mut HashMap<Vec<u8>, Instant>,
                  latencies: &mut Vec<f64>|
     -> bool {
        if let Some(done) = early.remove(&id) {
            latencies.push(done.saturating_duration_since(at).as_secs_f64() * 1000.0);
            true
        } else {
            submitted.insert(id, at);
            false
        }
    };
    loop {
        while let Ok((id, at)) = sent_rx.try_recv() {
            accepted += 1;
            if record(id, at, &mut submitted, &mut early, &mut latencies) {
                committed += 1;
            }
        }
        if started.elapsed() > window
            && (submitted.is_empty()
                || last_commit.elapsed() > quiet
                || started.elapsed() > drain_until)
        {
            break;
        }
        let next = tokio::time::timeout(Duration::from_millis(100), blocks.message()).await;
        if let Ok(next) = next {
            let Some(b) = next? else { break };
            let now = Instant::now();
            while let Ok((id, at)) = sent_rx.try_recv() {
                accepted += 1;
                if record(id, at, &mut submitted, &mut early, &mut latencies) {
                    committed += 1;
                }
            }
            let block = b.block.unwrap_or_default();
            if let Ok(h) = pb::BlockHeader::decode(block.header.as_slice()) {
                block_times.push(h.time_ms);
            }
            block_sizes.push(block.txs.len());
            for (t, r) in block.txs.iter().zip(&b.results) {
                let id = blake3::hash(&t.body).as_bytes().to_vec();
                if r.code != pb::ResultCode::Ok as i32 {
                    // One of ours that was admitted but failed in execution (a reading
                    // that reached the primary out of order is a replay): reported, as a
                    // reading the chain did not take.
                    if submitted.remove(&id).is_some() {
                        let code = pb::ResultCode::try_from(r.code)
                            .map_or_else(|_| r.code.to_string(), |c| c.as_str_name().to_string());
                        *failed.entry(code).or_insert(0usize) += 1;
                    }
                    continue;
                }
                match submitted.remove(&id) {
                    Some(at) => {
                        committed += 1;
                        latencies.push(now.duration_since(at).as_secs_f64() * 1000.0);
                    }
                    None => {
                        early.insert(id, now);
                    }
                }
                last_commit = now;
            }
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            let done = (secs / window.as_secs_f64()).min(1.0);
            let bar = "#".repeat((done * 30.0) as usize);
            eprint!(
                "\r[{bar:<30}] {secs:>5.1} s  {committed:>9} committed  {:>8.0} ev/s",
                committed as f64 / secs.max(0.001)
            );
            let _ = std::io::stderr().flush();
        }
    }
    eprintln!();
    // Rate over the time it took to commit what was sent: up to the last commit. CPU is
    // shared over the whole run.
    let elapsed = last_commit.duration_since(started).as_secs_f64().max(0.001);
    let wall = started.elapsed().as_secs_f64().max(0.001);
    let (mut refused, mut throttled, mut late) = (0, 0, 0);
    for s in senders {
        let (r, t, l) = s.await.unwrap_or((0, 0, 0));
        refused += r;
        throttled += t;
        late += l;
    }
    let usage: Vec<(f64, u64)> = pids
        .iter()
        .zip(&cpu_before)
        .map(|((_, p), before)| proc_usage(*p).map_or((0.0, 0), |(cpu, rss)| (cpu - before, rss)))
        .collect();
    processes.stop();

    latencies.sort_by(|x, y| x.total_cmp(y));
    let intervals: Vec<i64> = block_times.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let sizes: Vec<f64> = block_sizes.iter().map(|&s| s as f64).collect();
    let ivs: Vec<f64> = intervals.iter().map(|&i| i as f64).collect();
    let rate = committed as f64 / elapsed;
    let report = json!({
        "scheme": a.scheme,
        "check_rate_per_core": check_rate,
        "cores": cores,
        "ceiling_events_per_second": ceiling,
        "fraction_of_ceiling": rate / ceiling.max(1.0),
        "target_rate": a.rate,
        "min_block_interval_ms": a
            .min_block_interval_ms
            .unwrap_or(crate::node::DEFAULT_MIN_BLOCK_INTERVAL_MS),
        "duration_s": a.duration,
        "devices": a.devices,
        "epcis_percent": a.epcis_percent,
        "epcis_signed": epcis_signed,
        "committed": committed,
        "refused_at_admission": refused,
        "throttled_and_resent": throttled,
        "overloaded_after_window": late,
        "uncommitted_after_drain": submitted.len(),
        "committed_with_failure": failed,
        "committed_per_second": rate,
        "accepted_per_second_of_window": accepted as f64 / window.as_secs_f64(),
        "latency_ms": {
            "p50": percentile(&latencies, 0.50),
            "p95": percentile(&latencies, 0.95),
            "p99": percentile(&latencies, 0.99),
        },
        "blocks": block_sizes.len(),
        "mean_block_txs": mean(&sizes),
        "mean_block_interval_ms": mean(&ivs),
        "nodes": pids.iter().zip(&usage).map(|((id, _), (cpu, rss))| json!({
            "member": id,
            "cpu_seconds": cpu,
            "cpu_cores": cpu / wall,
            "peak_rss_mib": *rss as f64 / 1_048_576.0,
        })).collect::<Vec<_>>(),
    });
    println!("| metric | value |");
    println!("|---|---|");
    println!("| committed events/s | {rate:.0} |");
    println!(
        "| accepted by the nodes (offered load that got in), per second of window | {:.0} |",
        accepted as f64 / window.as_secs_f64()
    );
    println!(
        "| ceiling ({cores} cores × {check_rate:.0} checks/s ÷ 4 nodes), fraction | {ceiling:.0}, {:.0} % |",
        100.0 * rate / ceiling.max(1.0)
    );
    println!(
        "| committed / refused / uncommitted | {committed} / {refused} / {} |",
        submitted.len()
    );
    for (code, n) in &failed {
        println!("| committed with result {code} | {n} |");
    }
    if throttled > 0 {
        println!("| answered RESOURCE_EXHAUSTED and sent again | {throttled} |");
        println!("| answered RESOURCE_EXHAUSTED after the window (not resent) | {late} |");
    }
    println!(
        "| latency p50 / p95 / p99 (ms) | {:.0} / {:.0} / {:.0} |",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99)
    );
    println!(
        "| blocks, mean size, mean interval | {}, {:.0} txs, {:.0} ms |",
        block_sizes.len(),
        mean(&sizes),
        mean(&ivs)
    );
    for ((id, _), (cpu, rss)) in pids.iter().zip(&usage) {
        println!(
            "| {id}: CPU cores, peak RSS | {:.2}, {:.0} MiB |",
            cpu / wall,
            *rss as f64 / 1_048_576.0
        );
    }
    println!("{report}");
    if let Some(path) = a.json_out {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn an_unknown_signature_scheme_is_refused_not_benchmarked_as_ed25519() {
        let err = Cli::try_parse_from(["tracechain", "bench", "--scheme", "p-256"])
            .expect_err("unknown scheme");
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        for scheme in ["ed25519", "p256", "mixed"] {
            let cli = Cli::try_parse_from(["tracechain", "bench", "--scheme", scheme])
                .expect("known scheme");
            assert!(matches!(cli.command, Command::Bench(ref a) if a.scheme == scheme));
        }
    }
}
