//! Cost of the state machine per committed block: n replicas in one thread, a
//! lossless in-memory network, a host that proposes and validates at once. One
//! iteration = one block committed by every replica, so the time includes every
//! replica's signing and signature checks for that block (the whole cluster's CPU).
//!
//! Run: `cargo bench -p tracechain-consensus --bench replica`

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use tracechain_consensus::{
    BlockHash, ChainHead, Config, Input, Output, Replica, ReplicaId, ValidatorSet,
};

fn hash_of(block: &[u8]) -> Option<BlockHash> {
    Some(*blake3::hash(block).as_bytes())
}

struct Cluster {
    replicas: Vec<Replica>,
    queue: VecDeque<(usize, Input)>,
    committed: Vec<u64>,
}

impl Cluster {
    fn new(n: usize) -> Self {
        let keys: Vec<SigningKey> = (0..n)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let set = ValidatorSet::new("bench", keys.iter().map(|k| k.verifying_key()).collect());
        let replicas = (0..n)
            .map(|i| {
                let cfg = Config::new(set.clone(), ReplicaId(i as u32), keys[i].clone(), hash_of);
                Replica::new(cfg, ChainHead::genesis(), 0).expect("config")
            })
            .collect();
        let mut c = Self {
            replicas,
            queue: VecDeque::new(),
            committed: vec![0; n],
        };
        for i in 0..n {
            c.queue.push_back((i, Input::Start));
        }
        c
    }

    /// Runs until every replica committed one more block.
    fn commit_one(&mut self) {
        let target = self.committed.iter().min().copied().unwrap_or(0) + 1;
        while self.committed.iter().any(|&h| h < target) {
            let Some((i, input)) = self.queue.pop_front() else {
                panic!("stalled")
            };
            let outputs = self.replicas[i].handle(input);
            for o in outputs {
                self.carry_out(i, o);
            }
        }
    }

    fn carry_out(&mut self, i: usize, o: Output) {
        let n = self.replicas.len();
        match o {
            Output::Broadcast(m) => {
                for to in (0..n).filter(|&to| to != i) {
                    self.queue.push_back((to, Input::Message(m.clone())));
                }
            }
            Output::Send { to, message } => self
                .queue
                .push_back((to.0 as usize, Input::Message(message))),
            Output::NeedProposal { height, view } => {
                // A 4 KiB block of "transactions".
                let mut block = vec![0u8; 4096];
                block[..8].copy_from_slice(&height.to_be_bytes());
                let block_hash = hash_of(&block).unwrap_or_default();
                self.queue.push_back((
                    i,
                    Input::Propose {
                        height,
                        view,
                        block,
                        block_hash,
                    },
                ));
            }
            Output::RequestValidation {
                height,
                view,
                block_hash,
                ..
            } => self.queue.push_back((
                i,
                Input::ValidationResult {
                    height,
                    view,
                    block_hash,
                    valid: true,
                },
            )),
            Output::Commit { certificate, .. } => self.committed[i] = certificate.height,
            Output::PeerFault { peer, fault } => {
                panic!("{peer} blamed in a fault-free run: {fault}")
            }
            Output::Persist(_) | Output::SetTimer { .. } | Output::FetchBlocks { .. } => {}
        }
    }
}

fn per_block(c: &mut Criterion) {
    let mut group = c.benchmark_group("committed_block");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(8));
    for n in [4usize, 10] {
        group.bench_with_input(BenchmarkId::new("cluster_of", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut cluster = Cluster::new(n);
                cluster.commit_one(); // warm: first block
                let start = Instant::now();
                for _ in 0..iters {
                    cluster.commit_one();
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, per_block);
criterion_main!(benches);
