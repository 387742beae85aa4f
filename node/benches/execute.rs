//! The ledger's share of a block, without signatures or network: executing a block of
//! sensor readings (`Chain::build_block`), re-executing a proposed one
//! (`Chain::check_proposal`, every transaction already verified, as on a replica that
//! received them by push) and committing it (`Chain::commit`: one synced RocksDB write).
//! docs/PERFORMANCE.md records a run.
//!
//! ```sh
//! cargo bench -p tracechain-node --bench execute
//! ```
//!
//! Setup: one member, 400 devices on 40 shipments (as `tracechain bench` registers them),
//! committed before anything is measured; then blocks of 2,000 readings, round-robin over
//! the devices, as the cluster benchmark sends them.

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use tracechain_consensus::{CommitCertificate, ReplicaId};
use tracechain_node::{
    chain::{Chain, ExecutedBlock},
    crypto::{Scheme, SecretKey},
    genesis::{Genesis, GenesisFile},
    loadgen,
    tx::{self, CheckedTx, TxId},
};
use tracechain_storage::Store;

const CHAIN: &str = "bench";
const T0: i64 = 1_700_000_000_000;
const DEVICES: usize = 400;
const BLOCK: usize = 2_000;
/// Blocks of readings prepared (each device's readings in sequence order across them):
/// enough that every committed block in the measurement is new.
const BLOCKS: usize = 200;

struct Setup {
    _dir: tempfile::TempDir,
    chain: Chain,
    node_key: SigningKey,
    blocks: Vec<Vec<Arc<CheckedTx>>>,
}

fn certificate(chain: &Chain, executed: &ExecutedBlock, key: &SigningKey) -> CommitCertificate {
    CommitCertificate {
        height: executed.header.height,
        view: executed.header.view,
        block_hash: executed.hash,
        signatures: vec![chain.sign_commit(executed, ReplicaId(0), key)],
    }
}

fn check_all(txs: Vec<tracechain_proto::v1::SignedTx>) -> Vec<Arc<CheckedTx>> {
    txs.into_iter()
        .map(|t| Arc::new(tx::check(t, CHAIN).expect("valid")))
        .collect()
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("dir");
    let node_key = SigningKey::from_bytes(&[3; 32]);
    let admin = SecretKey::from_bytes(Scheme::Ed25519, &[4; 32]).expect("seed");
    let genesis = Genesis::from_file(GenesisFile::single_member(
        CHAIN,
        T0 - 3_600_000,
        &node_key.verifying_key(),
        &admin.public_key(),
    ))
    .expect("genesis");
    let store = Arc::new(Store::open(&dir.path().join("db")).expect("store"));
    let mut chain = Chain::open(store, genesis).expect("chain");
    let devices = loadgen::devices(DEVICES, "ed25519");
    let (setup_txs, shipments) = loadgen::setup(CHAIN, "farm", &admin, &devices, T0 - 60_000);
    let executed = chain
        .build_block(&check_all(setup_txs), T0 - 50_000, 0, "farm")
        .expect("setup block");
    let cert = certificate(&chain, &executed, &node_key);
    chain.commit(executed, &cert).expect("commit setup");
    let readings = loadgen::readings(
        CHAIN,
        &devices,
        &shipments,
        BLOCK * BLOCKS,
        1,
        1_000,
        T0 - 1_000,
    )
    .remove(0);
    let blocks = check_all(readings)
        .chunks(BLOCK)
        .map(<[_]>::to_vec)
        .collect();
    Setup {
        _dir: dir,
        chain,
        node_key,
        blocks,
    }
}

fn execute(c: &mut Criterion) {
    let mut s = setup();
    let mut group = c.benchmark_group("ledger");
    group.sample_size(20);
    group.throughput(Throughput::Elements(BLOCK as u64));
    group.bench_function("build_block, 2,000 readings", |b| {
        b.iter(|| {
            s.chain
                .build_block(&s.blocks[0], T0, 0, "farm")
                .expect("builds")
        })
    });
    let proposed = s
        .chain
        .build_block(&s.blocks[0], T0, 0, "farm")
        .expect("builds")
        .block;
    let pooled: std::collections::HashMap<TxId, Arc<CheckedTx>> =
        s.blocks[0].iter().map(|t| (t.id, t.clone())).collect();
    let known = |ids: &[TxId]| ids.iter().map(|id| pooled.get(id).cloned()).collect();
    group.bench_function("check_proposal, 2,000 pooled readings", |b| {
        b.iter_batched(
            || proposed.clone(),
            |block| {
                s.chain
                    .check_proposal(block, &known, i64::MAX)
                    .expect("valid")
            },
            BatchSize::LargeInput,
        )
    });
    // Each iteration commits the next block of readings (the chain grows as it would);
    // the measurement stops before the prepared blocks run out.
    let mut next = 1usize;
    group.sample_size(10);
    group.sampling_mode(criterion::SamplingMode::Flat);
    group.warm_up_time(std::time::Duration::from_millis(300));
    group.measurement_time(std::time::Duration::from_secs(2));
    group.bench_function("build_block + commit, 2,000 readings", |b| {
        b.iter_custom(|iters| {
            let started = std::time::Instant::now();
            for _ in 0..iters {
                let Some(txs) = s.blocks.get(next) else {
                    panic!("more iterations than prepared blocks: raise BLOCKS");
                };
                next += 1;
                let time = T0 + s.chain.head().height as i64;
                let executed = s.chain.build_block(txs, time, 0, "farm").expect("builds");
                let cert = certificate(&s.chain, &executed, &s.node_key);
                s.chain.commit(executed, &cert).expect("commits");
            }
            started.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, execute);
criterion_main!(benches);
