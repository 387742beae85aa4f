//! Single-member ingest benchmark: how many signed sensor readings per second one node
//! (n = 1) admits, orders, executes and commits, measured through its gRPC API.
//!
//! ```text
//! cargo run --release -p tracechain-node --example ingest_bench -- --readings 100000 --scheme ed25519
//! ```
//!
//! Setup (not measured): a node in this process on 127.0.0.1:0 with a fresh RocksDB
//! directory, `--devices` loggers registered and attached to shipments, and every
//! reading signed in advance. Measured: from the first SubmitTxs to the block that
//! commits the last reading; committed means executed with result OK and written (one
//! synced RocksDB write per block). Prints a table and a JSON line.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use clap::Parser;
use tokio::sync::watch;
use tracechain_node::{
    api,
    crypto::{Scheme, SecretKey},
    genesis::{Genesis, GenesisFile},
    loadgen,
    node::{Node, NodeConfig},
};
use tracechain_proto::v1::{self as pb, ledger_client::LedgerClient};

#[derive(Debug, Parser)]
struct Args {
    /// Signed readings to commit.
    #[arg(long, default_value_t = 100_000)]
    readings: usize,
    /// Devices (each with its own key and sequence).
    #[arg(long, default_value_t = 200)]
    devices: usize,
    /// Device signature scheme: ed25519, p256 or mixed.
    #[arg(long, default_value = "ed25519")]
    scheme: String,
    /// Readings per SubmitTxs request.
    #[arg(long, default_value_t = 2_000)]
    batch: usize,
    /// Concurrent submitting clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Most transactions per block.
    #[arg(long, default_value_t = 10_000)]
    max_block_txs: usize,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let chain = "bench-chain";
    let admin = SecretKey::generate(Scheme::Ed25519);
    let node_key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let genesis = Genesis::from_file(GenesisFile::single_member(
        chain,
        now_ms() - 86_400_000,
        &node_key.verifying_key(),
        &admin.public_key(),
    ))?;
    let data = tempfile::tempdir()?;
    let mut config = NodeConfig::new(data.path().join("db"), "farm".into());
    config.max_block_txs = args.max_block_txs;
    config.mempool_max_txs = args.readings + 10_000;
    let node = Node::open(config, genesis, node_key)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let producer = tokio::spawn(node.clone().run_producer(stopped.clone()));
    let mut api_stop = stopped;
    let server = tokio::spawn(api::serve(node.clone(), listener, async move {
        let _ = api_stop.wait_for(|s| *s).await;
    }));
    let url = format!("http://{addr}");
    let mut client = LedgerClient::connect(url.clone())
        .await?
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);

    // ---- setup: devices, shipments, pre-signed readings ----
    let devices = loadgen::devices(args.devices, &args.scheme);
    let (setup, shipments) = loadgen::setup(chain, "farm", &admin, &devices, now_ms());
    let last_setup = blake3::hash(&setup.last().map(|t| t.body.clone()).unwrap_or_default())
        .as_bytes()
        .to_vec();
    for chunk in setup.chunks(args.batch) {
        client
            .submit_txs(pb::SubmitTxsRequest {
                txs: chunk.to_vec(),
            })
            .await?;
    }
    loop {
        let r = client
            .get_tx(pb::GetTxRequest {
                tx_id: last_setup.clone(),
            })
            .await;
        if r.is_ok_and(|r| r.into_inner().status == pb::TxStatus::Committed as i32) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Each client owns a set of devices and sends their readings in sequence order,
    // as devices do; readings of one device never race each other.
    let clients = args.clients.clamp(1, args.devices);
    let signing = Instant::now();
    let streams = loadgen::readings(
        chain,
        &devices,
        &shipments,
        args.readings,
        clients,
        1_000,
        now_ms() - 10_000,
    );
    let signed: usize = streams.iter().map(Vec::len).sum();
    eprintln!(
        "pre-signed {signed} readings from {} devices ({}) in {:.1} s",
        args.devices,
        args.scheme,
        signing.elapsed().as_secs_f64()
    );

    // ---- measured window ----
    let start_height = client
        .get_chain_status(pb::GetChainStatusRequest {})
        .await?
        .into_inner()
        .height;
    let mut blocks = client
        .subscribe_blocks(pb::SubscribeBlocksRequest {
            from_height: start_height + 1,
        })
        .await?
        .into_inner();
    let total = signed;
    let started = Instant::now();
    let (rejections, mut rejected_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let mut senders = Vec::new();
    for stream in streams {
        let mut c = client.clone();
        let batch = args.batch.max(1);
        let rejections = rejections.clone();
        senders.push(tokio::spawn(async move {
            for txs in stream.chunks(batch) {
                let r = c
                    .submit_txs(pb::SubmitTxsRequest { txs: txs.to_vec() })
                    .await?
                    .into_inner();
                let refused = r.outcomes.iter().filter(|o| !o.accepted).count();
                if refused > 0 {
                    let _ = rejections.send(refused);
                }
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    drop(rejections);
    let mut committed = 0usize;
    let mut failed = 0usize;
    let mut rejected = 0usize;
    let mut block_count = 0usize;
    let mut max_block = 0usize;
    while committed + failed + rejected < total {
        // Transactions refused at admission never reach a block: count them too.
        while let Ok(n) = rejected_rx.try_recv() {
            rejected += n;
        }
        if committed + failed + rejected >= total {
            break;
        }
        let next = tokio::time::timeout(Duration::from_millis(500), blocks.message()).await;
        let Ok(next) = next else { continue };
        let Some(b) = next? else {
            anyhow::bail!("subscription ended");
        };
        block_count += 1;
        max_block = max_block.max(b.results.len());
        for r in &b.results {
            if r.code == pb::ResultCode::Ok as i32 {
                committed += 1;
            } else {
                failed += 1;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    for s in senders {
        s.await??;
    }
    let rate = committed as f64 / elapsed;
    println!(
        "| readings | devices | scheme | committed | failed | rejected | blocks | max block | seconds | committed/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {total} | {} | {} | {committed} | {failed} | {rejected} | {block_count} | {max_block} | {elapsed:.2} | {rate:.0} |",
        args.devices, args.scheme
    );
    println!(
        "{}",
        serde_json::json!({
            "readings": total, "devices": args.devices, "scheme": args.scheme,
            "committed": committed, "failed": failed, "rejected": rejected,
            "blocks": block_count, "max_block_txs": max_block,
            "seconds": elapsed, "committed_per_second": rate,
        })
    );
    let _ = stop.send(true);
    let _ = producer.await;
    let _ = server.await;
    Ok(())
}
