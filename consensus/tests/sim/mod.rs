//! A deterministic simulation of n replicas: seeded RNG, virtual time, a network
//! that drops, delays, duplicates and reorders, partitions that heal, crashes and
//! restarts from persisted state, and Byzantine replicas.
//!
//! Every run checks agreement, validity, certificate soundness, no double votes by
//! correct replicas (also across restarts), bounded memory, and liveness after the
//! network heals. The same (scenario, seed) always replays the same run.

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use ed25519_dalek::{Signature, SigningKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracechain_consensus::signing::{new_view_bytes, pre_prepare_bytes, prepare_bytes, sign};
use tracechain_consensus::{
    BlockHash, ChainHead, CommitCertificate, Config, FetchedBlock, Input, Limits, Message, NewView,
    Output, PersistentState, PrePrepare, Replica, ReplicaId, Status, Timeouts, TimerId, TxId,
    ValidatorSet, ViewChange, Vote, sign_commit_vote,
};

/// How a Byzantine replica misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Follows the protocol.
    Correct,
    /// Sends nothing, serves nothing.
    Silent,
    /// As primary, sends different valid blocks to different replicas, and votes for both.
    Equivocate,
    /// Votes twice (for its block and for a block that does not exist).
    DoubleVote,
    /// Floods stale and future views, far-future heights, bad signatures, messages
    /// claiming non-member senders, forged certificates; serves corrupt blocks.
    Noise,
    /// As primary, proposes blocks the ledger rejects.
    InvalidProposals,
    /// As primary, leaves every transaction out.
    Censor,
}

/// A scenario: sizes covered and faults injected before the network heals.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name used in the replay command.
    pub name: &'static str,
    /// Cluster sizes, cycled over seeds.
    pub sizes: &'static [usize],
    /// Probability a message is dropped (before healing).
    pub drop: f64,
    /// Probability a message is duplicated (before healing).
    pub duplicate: f64,
    /// Largest network delay, ms (reordering comes from random delays).
    pub max_delay_ms: u64,
    /// Random partitions that heal.
    pub partitions: bool,
    /// Random crashes (cut mid-output) and restarts from persisted state.
    pub crashes: bool,
    /// Behaviours given to up to f replicas (cycled); empty: none.
    pub byzantine: &'static [Behaviour],
    /// Also require every transaction seen before healing to commit.
    pub check_censorship: bool,
    /// Extra probability that a commit vote is dropped (before healing): replicas
    /// prepare but do not commit, so view changes must carry prepared certificates.
    pub commit_drop: f64,
    /// Probability that a correct replica crashes right after committing (before
    /// healing): its commit certificate then spreads late, if at all.
    pub crash_after_commit: f64,
    /// Without faults, no view may change (a spurious timeout is a bug).
    pub expect_stable_view: bool,
}

/// All scenarios run in CI.
pub fn scenarios() -> Vec<Scenario> {
    use Behaviour::*;
    let base = Scenario {
        name: "normal",
        sizes: &[1, 4, 7, 10],
        drop: 0.0,
        duplicate: 0.0,
        max_delay_ms: 30,
        partitions: false,
        crashes: false,
        byzantine: &[],
        check_censorship: false,
        commit_drop: 0.0,
        crash_after_commit: 0.0,
        expect_stable_view: false,
    };
    vec![
        Scenario {
            expect_stable_view: true,
            ..base.clone()
        },
        Scenario {
            name: "lossy",
            drop: 0.15,
            duplicate: 0.15,
            max_delay_ms: 150,
            ..base.clone()
        },
        Scenario {
            name: "partition",
            partitions: true,
            drop: 0.02,
            ..base.clone()
        },
        Scenario {
            name: "crash_restart",
            crashes: true,
            duplicate: 0.05,
            ..base.clone()
        },
        Scenario {
            name: "equivocation",
            sizes: &[4, 7, 10],
            byzantine: &[Equivocate],
            ..base.clone()
        },
        Scenario {
            name: "double_votes",
            sizes: &[4, 7, 10],
            byzantine: &[DoubleVote],
            drop: 0.05,
            ..base.clone()
        },
        Scenario {
            name: "hostile_input",
            sizes: &[4, 7, 10],
            byzantine: &[Noise],
            ..base.clone()
        },
        Scenario {
            name: "silent",
            sizes: &[4, 7, 10],
            byzantine: &[Silent],
            drop: 0.05,
            ..base.clone()
        },
        Scenario {
            name: "invalid_proposals",
            sizes: &[4, 7, 10],
            byzantine: &[InvalidProposals],
            ..base.clone()
        },
        Scenario {
            name: "censorship",
            sizes: &[4, 7, 10],
            byzantine: &[Censor],
            check_censorship: true,
            ..base.clone()
        },
        Scenario {
            name: "view_change",
            sizes: &[4, 7, 10],
            commit_drop: 0.7,
            crash_after_commit: 0.3,
            max_delay_ms: 120,
            ..base.clone()
        },
        Scenario {
            name: "chaos",
            sizes: &[1, 4, 7, 10],
            drop: 0.08,
            duplicate: 0.08,
            max_delay_ms: 80,
            partitions: true,
            crashes: true,
            byzantine: &[
                Equivocate,
                DoubleVote,
                Noise,
                Silent,
                InvalidProposals,
                Censor,
            ],
            check_censorship: false,
            commit_drop: 0.1,
            ..base
        },
    ]
}

/// Looks a scenario up by name.
pub fn scenario(name: &str) -> Option<Scenario> {
    scenarios().into_iter().find(|s| s.name == name)
}

/// Virtual time during which faults are injected.
const FAULT_PHASE_MS: (u64, u64) = (2_500, 4_500);
/// After healing, every correct replica must commit this many more blocks...
const LIVENESS_BLOCKS: u64 = 3;
/// ...within this much virtual time.
const LIVENESS_BOUND_MS: u64 = 60_000;

/// Timeouts of simulated replicas (virtual ms).
pub fn sim_timeouts() -> Timeouts {
    Timeouts {
        view_base_ms: 400,
        view_max_ms: 6_400,
        retransmit_ms: 300,
        censorship_ms: 1_500,
        fetch_ms: 500,
    }
}

/// Limits of simulated replicas.
pub fn sim_limits() -> Limits {
    Limits {
        // Fewer than the transactions a run injects, so the cap is exercised too.
        max_tracked_txs: 64,
        max_block_bytes: 1 << 16,
        ..Limits::default()
    }
}

// ---------------------------------------------------------------- blocks

/// A simulated block: `[valid][height][view][proposer][nonce][count][tx ids]`.
pub fn make_block(
    valid: bool,
    height: u64,
    view: u64,
    proposer: u32,
    nonce: u64,
    txs: &[TxId],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(33 + txs.len() * 32);
    b.push(valid as u8);
    b.extend_from_slice(&height.to_be_bytes());
    b.extend_from_slice(&view.to_be_bytes());
    b.extend_from_slice(&proposer.to_be_bytes());
    b.extend_from_slice(&nonce.to_be_bytes());
    b.extend_from_slice(&(txs.len() as u32).to_be_bytes());
    for tx in txs {
        b.extend_from_slice(tx);
    }
    b
}

/// The simulated host's block hash rule.
pub fn block_hash(block: &[u8]) -> Option<BlockHash> {
    Some(*blake3::hash(block).as_bytes())
}

fn block_height(block: &[u8]) -> Option<u64> {
    block
        .get(1..9)
        .map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
}

/// The view a block was proposed in (its header's, for the node's blocks).
fn block_view(block: &[u8]) -> Option<u64> {
    block
        .get(9..17)
        .map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
}

fn block_txs(block: &[u8]) -> Vec<TxId> {
    block
        .get(33..)
        .unwrap_or(&[])
        .chunks_exact(32)
        .map(|c| c.try_into().unwrap_or([0; 32]))
        .collect()
}

/// The simulated ledger's rule: well-formed, marked valid, for the right height.
pub fn ledger_accepts(block: &[u8], height: u64) -> bool {
    let count = block
        .get(29..33)
        .map(|b| u32::from_be_bytes(b.try_into().unwrap_or([0; 4])));
    block.first() == Some(&1)
        && block_height(block) == Some(height)
        && count.is_some_and(|c| block.len() == 33 + 32 * c as usize)
}

/// Keys and validator set of an n-replica cluster.
pub fn cluster_keys(n: usize) -> (Vec<SigningKey>, ValidatorSet) {
    let keys: Vec<SigningKey> = (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect();
    let set = ValidatorSet::new(
        "sim-chain",
        keys.iter().map(|k| k.verifying_key()).collect(),
    );
    (keys, set)
}

/// Configuration of replica `i`.
pub fn config(keys: &[SigningKey], set: &ValidatorSet, i: usize) -> Config {
    let mut c = Config::new(
        set.clone(),
        ReplicaId(i as u32),
        keys[i].clone(),
        block_hash,
    );
    c.timeouts = sim_timeouts();
    c.limits = sim_limits();
    c
}

// ---------------------------------------------------------------- simulation

#[derive(Debug, Clone)]
enum Event {
    Deliver {
        from: usize,
        to: usize,
        message: Message,
    },
    Timer {
        node: usize,
        timer: TimerId,
        generation: u64,
        incarnation: u64,
    },
    Input {
        node: usize,
        input: Input,
        incarnation: u64,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    Partition {
        groups: Vec<u8>,
        until: u64,
    },
    NewTx,
    Noise {
        node: usize,
    },
}

struct Node {
    replica: Option<Replica>,
    incarnation: u64,
    persisted: Option<PersistentState>,
    chain: Vec<FetchedBlock>,
    timer_generations: BTreeMap<u8, u64>,
    mempool: BTreeSet<TxId>,
    behaviour: Behaviour,
    crash_pending: bool,
    crash_now: bool,
    /// Conflicting blocks an equivocator made, by (view, height).
    alternatives: BTreeMap<(u64, u64), (BlockHash, Vec<u8>)>,
    max_held: usize,
}

/// One simulation run.
pub struct Sim {
    scenario: Scenario,
    seed: u64,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: BTreeMap<u64, Event>,
    nodes: Vec<Node>,
    keys: Vec<SigningKey>,
    set: ValidatorSet,
    heal_at: u64,
    partition: Option<(Vec<u8>, u64)>,
    /// Agreed chain: height → hash.
    decided: BTreeMap<u64, BlockHash>,
    /// Votes signed by correct replicas: (replica, kind, view, height) → hash.
    signed: BTreeMap<(usize, u8, u64, u64), BlockHash>,
    /// Transactions injected before healing.
    early_txs: BTreeSet<TxId>,
    committed_txs: BTreeSet<TxId>,
    tx_counter: u64,
    violations: Vec<String>,
    /// The replica whose input is being fed: the link sender of a message, or the
    /// peer that served fetched blocks.
    sender: Option<usize>,
    trace: bool,
    /// Counters for the report.
    pub stats: Stats,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Cluster size.
    pub n: usize,
    /// Highest height committed by every correct replica at the end.
    pub height: u64,
    /// Highest view reached by a correct replica.
    pub max_view: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Virtual time at the end.
    pub end_ms: u64,
    /// Peer faults reported by any replica.
    pub faults_reported: u64,
    /// Heights decided with a certificate of a later view than the block's own: a block
    /// prepared in one view and re-proposed unchanged by a later primary (PBFT §4.4).
    pub reproposed: u64,
}

impl Sim {
    /// Builds the run for (scenario, seed).
    pub fn new(scenario: Scenario, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7472_6163_6563_6861);
        let n = scenario.sizes[(seed as usize) % scenario.sizes.len()];
        let (keys, set) = cluster_keys(n);
        let f = set.f();
        // Byzantine replicas: up to f, always including the first primary when any.
        let byz_count = if scenario.byzantine.is_empty() {
            0
        } else {
            rng.gen_range(1..=f.max(1)).min(f)
        };
        let mut byz: BTreeSet<usize> = BTreeSet::new();
        if byz_count > 0 {
            byz.insert(0);
            while byz.len() < byz_count {
                byz.insert(rng.gen_range(0..n));
            }
        }
        let nodes = (0..n)
            .map(|i| {
                let behaviour = if byz.contains(&i) {
                    scenario.byzantine[rng.gen_range(0..scenario.byzantine.len())]
                } else {
                    Behaviour::Correct
                };
                Node {
                    replica: Some(
                        Replica::new(config(&keys, &set, i), ChainHead::genesis(), 0)
                            .expect("valid config"),
                    ),
                    incarnation: 0,
                    persisted: None,
                    chain: Vec::new(),
                    timer_generations: BTreeMap::new(),
                    mempool: BTreeSet::new(),
                    behaviour,
                    crash_pending: false,
                    crash_now: false,
                    alternatives: BTreeMap::new(),
                    max_held: 0,
                }
            })
            .collect();
        let heal_at = rng.gen_range(FAULT_PHASE_MS.0..=FAULT_PHASE_MS.1);
        let mut sim = Sim {
            scenario,
            seed,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            nodes,
            keys,
            set,
            heal_at,
            partition: None,
            decided: BTreeMap::new(),
            signed: BTreeMap::new(),
            early_txs: BTreeSet::new(),
            committed_txs: BTreeSet::new(),
            tx_counter: 0,
            violations: Vec::new(),
            sender: None,
            trace: std::env::var("TRACECHAIN_SIM_TRACE").is_ok_and(|v| v == "1"),
            stats: Stats {
                n,
                ..Stats::default()
            },
        };
        sim.plan_faults();
        sim
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, event);
    }

    fn plan_faults(&mut self) {
        let n = self.nodes.len();
        self.schedule(10, Event::NewTx);
        for i in 0..n {
            if self.nodes[i].behaviour == Behaviour::Noise {
                self.schedule(5, Event::Noise { node: i });
            }
        }
        if self.scenario.partitions && n > 1 {
            let windows = self.rng.gen_range(1..=3);
            for _ in 0..windows {
                let start = self.rng.gen_range(0..self.heal_at - 200);
                let until = (start + self.rng.gen_range(200..1_500)).min(self.heal_at);
                let groups = (0..n).map(|_| self.rng.gen_range(0..2u8)).collect();
                self.schedule(start, Event::Partition { groups, until });
            }
        }
        if self.scenario.crashes {
            let crashes = self.rng.gen_range(1..=3);
            for _ in 0..crashes {
                let node = self.rng.gen_range(0..n);
                if self.nodes[node].behaviour != Behaviour::Correct {
                    continue;
                }
                let at = self.rng.gen_range(50..self.heal_at - 100);
                let back = (at + self.rng.gen_range(50..1_500)).min(self.heal_at);
                self.schedule(at, Event::Crash { node });
                self.schedule(back, Event::Restart { node });
            }
        }
    }

    fn correct(&self, i: usize) -> bool {
        self.nodes[i].behaviour == Behaviour::Correct
    }

    /// Runs to the end; `Err` lists the violated properties.
    pub fn run(&mut self) -> Result<Stats, String> {
        for i in 0..self.nodes.len() {
            self.feed(i, Input::Start);
        }
        let mut healed_height: Option<u64> = None;
        while let Some(Reverse((at, seq))) = self.queue.pop() {
            self.now = at;
            let Some(event) = self.events.remove(&seq) else {
                continue;
            };
            if healed_height.is_none() && at >= self.heal_at {
                healed_height = Some(self.max_correct_height());
            }
            self.step(event);
            if !self.violations.is_empty() {
                break;
            }
            if let Some(h0) = healed_height {
                let target = h0 + LIVENESS_BLOCKS;
                let live = self.min_correct_height() >= target;
                let censorship_ok = !self.scenario.check_censorship
                    || self.early_txs.is_subset(&self.committed_txs);
                if live && censorship_ok {
                    break;
                }
                if at > self.heal_at + LIVENESS_BOUND_MS {
                    self.violations.push(format!(
                        "liveness: healed at {} ms with height {h0}; at {at} ms correct heights are {:?} (target {target}), \
                         views {:?}, {} early txs uncommitted",
                        self.heal_at,
                        self.correct_heights(),
                        self.correct_views(),
                        self.early_txs.difference(&self.committed_txs).count(),
                    ));
                    break;
                }
            }
        }
        self.stats.height = self.min_correct_height();
        self.stats.end_ms = self.now;
        self.check_memory();
        if self.scenario.expect_stable_view && self.stats.max_view > 0 {
            self.violations.push(format!(
                "stability: view changed to {} without any fault",
                self.stats.max_view
            ));
        }
        if self.violations.is_empty() {
            Ok(self.stats.clone())
        } else {
            Err(self.violations.join("; "))
        }
    }

    fn correct_heights(&self) -> Vec<u64> {
        (0..self.nodes.len())
            .filter(|&i| self.correct(i))
            .map(|i| self.nodes[i].chain.len() as u64)
            .collect()
    }

    fn correct_views(&self) -> Vec<String> {
        (0..self.nodes.len())
            .filter(|&i| self.correct(i))
            .map(|i| match &self.nodes[i].replica {
                Some(r) => format!("{:?}", r.mode()),
                None => "down".into(),
            })
            .collect()
    }

    fn max_correct_height(&self) -> u64 {
        self.correct_heights().into_iter().max().unwrap_or(0)
    }

    fn min_correct_height(&self) -> u64 {
        self.correct_heights().into_iter().min().unwrap_or(0)
    }

    fn check_memory(&mut self) {
        let n = self.nodes.len();
        let l = sim_limits();
        let views = (2 * l.view_window + 1) as usize;
        // Proposals + prepares + commits per view, buffered messages, view changes,
        // tracked and recently committed transactions.
        let bound = views * (1 + 2 * n)
            + l.height_window as usize * views * n * 3
            + n
            + 2 * l.max_tracked_txs;
        for (i, node) in self.nodes.iter().enumerate() {
            if node.max_held > bound {
                self.violations.push(format!(
                    "memory: r{i} held {} items, bound {bound}",
                    node.max_held
                ));
            }
        }
    }

    fn faults_active(&self) -> bool {
        self.now < self.heal_at
    }

    fn step(&mut self, event: Event) {
        match event {
            Event::Deliver { from, to, message } => {
                self.stats.delivered += 1;
                self.sender = Some(from);
                self.feed(to, Input::Message(message));
                self.sender = None;
            }
            Event::Timer {
                node,
                timer,
                generation,
                incarnation,
            } => {
                let current = self.nodes[node].timer_generations.get(&timer_kind(&timer))
                    == Some(&generation);
                if current && self.nodes[node].incarnation == incarnation {
                    self.feed(node, Input::TimerFired(timer));
                }
            }
            Event::Input {
                node,
                input,
                incarnation,
            } => {
                if self.nodes[node].incarnation == incarnation {
                    if let Input::FetchedBlocks { peer, .. } = &input {
                        self.sender = Some(peer.0 as usize);
                    }
                    self.feed(node, input);
                    self.sender = None;
                }
            }
            Event::Crash { node } => {
                if self.nodes[node].replica.is_some() {
                    self.nodes[node].crash_pending = true;
                }
            }
            Event::Restart { node } => self.restart(node),
            Event::Partition { groups, until } => self.partition = Some((groups, until)),
            Event::NewTx => self.new_tx(),
            Event::Noise { node } => {
                self.noise(node);
                let next = self.now + self.rng.gen_range(10..60);
                self.schedule(next, Event::Noise { node });
            }
        }
    }

    fn crash(&mut self, node: usize) {
        if self.trace {
            eprintln!("{:>6} r{node} CRASH", self.now);
        }
        let n = &mut self.nodes[node];
        n.replica = None;
        n.crash_pending = false;
        n.incarnation += 1;
        n.timer_generations.clear();
    }

    fn restart(&mut self, node: usize) {
        // A crash that was pending (waiting for the node's next step) happens now.
        if self.nodes[node].crash_pending {
            self.crash(node);
        }
        if self.nodes[node].replica.is_some() {
            return;
        }
        let head = match self.nodes[node].chain.last() {
            None => ChainHead::genesis(),
            Some(b) => ChainHead {
                height: b.certificate.height,
                certificate: Some(b.certificate.clone()),
            },
        };
        let cfg = config(&self.keys, &self.set, node);
        let state = self.nodes[node].persisted.clone().unwrap_or_default();
        let replica = Replica::restore(cfg, state, head).expect("restore from own state");
        if self.trace {
            eprintln!("{:>6} r{node} RESTART at {:?}", self.now, replica.mode());
        }
        self.nodes[node].replica = Some(replica);
        self.feed(node, Input::Start);
    }

    fn new_tx(&mut self) {
        self.tx_counter += 1;
        let mut seed = self.seed.to_be_bytes().to_vec();
        seed.extend_from_slice(&self.tx_counter.to_be_bytes());
        let id: TxId = *blake3::hash(&seed).as_bytes();
        if self.faults_active() {
            self.early_txs.insert(id);
        }
        for i in 0..self.nodes.len() {
            self.nodes[i].mempool.insert(id);
            let delay = self.rng.gen_range(1..20);
            let incarnation = self.nodes[i].incarnation;
            self.schedule(
                self.now + delay,
                Event::Input {
                    node: i,
                    input: Input::TxsSeen(vec![id]),
                    incarnation,
                },
            );
        }
        // Transactions keep coming until shortly after healing.
        if self.now < self.heal_at + 2_000 {
            let next = self.now + self.rng.gen_range(30..150);
            self.schedule(next, Event::NewTx);
        }
    }

    /// Feeds an input to a node and carries out its outputs.
    fn feed(&mut self, node: usize, input: Input) {
        let Some(replica) = self.nodes[node].replica.as_mut() else {
            return;
        };
        let outputs = replica.handle(input);
        let held = replica.held_items();
        let mode = replica.mode();
        self.nodes[node].max_held = self.nodes[node].max_held.max(held);
        if self.correct(node) {
            let view = match mode {
                tracechain_consensus::Mode::Normal { view } => view,
                tracechain_consensus::Mode::ViewChanging { target, .. } => target,
            };
            self.stats.max_view = self.stats.max_view.max(view);
        }
        // A pending crash cuts the node down in the middle of its outputs: what was
        // persisted before the cut survives, nothing after it happens.
        let cut = if self.nodes[node].crash_pending {
            self.rng.gen_range(0..=outputs.len())
        } else {
            outputs.len()
        };
        for output in outputs.into_iter().take(cut) {
            self.carry_out(node, output);
            if self.nodes[node].crash_now {
                self.nodes[node].crash_pending = true;
                self.nodes[node].crash_now = false;
                let back = (self.now + self.rng.gen_range(100..1_500)).min(self.heal_at);
                self.schedule(back, Event::Restart { node });
                break;
            }
        }
        if self.nodes[node].crash_pending {
            self.crash(node);
        }
    }

    fn later(&mut self, node: usize, delay: u64, input: Input) {
        let incarnation = self.nodes[node].incarnation;
        self.schedule(
            self.now + delay,
            Event::Input {
                node,
                input,
                incarnation,
            },
        );
    }

    fn carry_out(&mut self, node: usize, output: Output) {
        match output {
            Output::Persist(state) => self.nodes[node].persisted = Some(state),
            Output::Send { to, message } => {
                self.record_signed(node, &message);
                self.send_from(node, to.0 as usize, message);
            }
            Output::Broadcast(message) => {
                self.record_signed(node, &message);
                self.broadcast_from(node, message);
            }
            Output::Commit { block, certificate } => self.on_commit(node, block, certificate),
            Output::RequestValidation {
                height,
                view,
                block_hash,
                block,
            } => {
                let valid = ledger_accepts(&block, height);
                let delay = self.rng.gen_range(1..10);
                self.later(
                    node,
                    delay,
                    Input::ValidationResult {
                        height,
                        view,
                        block_hash,
                        valid,
                    },
                );
            }
            Output::NeedProposal { height, view } => {
                let behaviour = self.nodes[node].behaviour;
                let txs: Vec<TxId> = if behaviour == Behaviour::Censor {
                    Vec::new()
                } else {
                    self.nodes[node].mempool.iter().take(16).copied().collect()
                };
                let valid = behaviour != Behaviour::InvalidProposals;
                let nonce = self.rng.r#gen();
                let block = make_block(valid, height, view, node as u32, nonce, &txs);
                let hash = block_hash(&block).unwrap_or_default();
                let delay = self.rng.gen_range(10..40);
                self.later(
                    node,
                    delay,
                    Input::Propose {
                        height,
                        view,
                        block,
                        block_hash: hash,
                    },
                );
            }
            Output::FetchBlocks { from, to, peer } => {
                let peer = peer.0 as usize;
                if peer >= self.nodes.len() || self.nodes[peer].replica.is_none() {
                    return;
                }
                let mut blocks: Vec<FetchedBlock> = self.nodes[peer]
                    .chain
                    .iter()
                    .filter(|b| (from..=to).contains(&b.certificate.height))
                    .cloned()
                    .collect();
                match self.nodes[peer].behaviour {
                    Behaviour::Silent => return,
                    Behaviour::Noise => {
                        self.corrupt(&mut blocks);
                        if blocks.is_empty() || self.rng.gen_bool(0.5) {
                            blocks = self.fabricate(peer, from, to);
                        }
                    }
                    _ => {}
                }
                let delay = self.rng.gen_range(5..60);
                let peer = ReplicaId(peer as u32);
                self.later(node, delay, Input::FetchedBlocks { peer, blocks });
            }
            Output::PeerFault { peer, fault } => {
                self.stats.faults_reported += 1;
                // Blame is only ever earned: input that came from a correct replica
                // (over the link, whoever it names) must never be reported as faulty.
                if let Some(sender) = self.sender
                    && self.correct(sender)
                {
                    self.violations.push(format!(
                        "blame: r{node} reported input from correct r{sender} (naming {peer}) as faulty: {fault}"
                    ));
                }
            }
            Output::SetTimer { timer, after_ms } => {
                let n = &mut self.nodes[node];
                let generation = n.timer_generations.entry(timer_kind(&timer)).or_insert(0);
                *generation += 1;
                let (generation, incarnation) = (*generation, n.incarnation);
                self.schedule(
                    self.now + after_ms,
                    Event::Timer {
                        node,
                        timer,
                        generation,
                        incarnation,
                    },
                );
            }
        }
    }

    /// A Noise replica serves blocks with forged certificates or wrong bytes.
    fn corrupt(&mut self, blocks: &mut [FetchedBlock]) {
        for b in blocks.iter_mut() {
            match self.rng.gen_range(0..4) {
                0 => b.block = make_block(true, b.certificate.height, 0, 0, self.rng.r#gen(), &[]),
                1 => b.certificate.signatures.truncate(1),
                2 => {
                    if let Some(s) = b.certificate.signatures.first().copied() {
                        b.certificate.signatures = vec![s; self.set.quorum()];
                    }
                }
                _ => {
                    let fake = make_block(true, b.certificate.height, 0, 0, self.rng.r#gen(), &[]);
                    b.block_hash = block_hash(&fake).unwrap_or_default();
                    b.block = fake;
                    b.certificate.block_hash = b.block_hash;
                }
            }
        }
    }

    /// Blocks that were never committed, with certificates that look complete: the
    /// liar's own valid commit signature plus forged or repeated ones.
    fn fabricate(&mut self, liar: usize, from: u64, to: u64) -> Vec<FetchedBlock> {
        let chain = self.set.chain_id().to_string();
        (from..=to.min(from + 2))
            .map(|height| {
                let valid = self.rng.gen_bool(0.5);
                let block = make_block(valid, height, 0, liar as u32, self.rng.r#gen(), &[]);
                let hash = block_hash(&block).unwrap_or_default();
                let own = sign_commit_vote(&self.keys[liar], &chain, height, 0, &hash);
                let signatures = (0..self.set.quorum() as u32)
                    .map(|r| {
                        if r as usize == liar || self.rng.gen_bool(0.5) {
                            (ReplicaId(liar as u32), own)
                        } else {
                            (ReplicaId(r), Signature::from_bytes(&[r as u8; 64]))
                        }
                    })
                    .collect();
                FetchedBlock {
                    block,
                    block_hash: hash,
                    certificate: CommitCertificate {
                        height,
                        view: 0,
                        block_hash: hash,
                        signatures,
                    },
                }
            })
            .collect()
    }

    fn on_commit(&mut self, node: usize, block: Vec<u8>, certificate: CommitCertificate) {
        let height = certificate.height;
        let hash = block_hash(&block).unwrap_or_default();
        if self.trace {
            eprintln!(
                "{:>6} r{node} COMMIT h{height} v{} {:02x?}",
                self.now,
                certificate.view,
                &hash[..4]
            );
        }
        let txs = block_txs(&block);
        let correct = self.correct(node);
        if correct {
            // Exactly once per height, in order.
            if height != self.nodes[node].chain.len() as u64 + 1 {
                self.violations.push(format!(
                    "order: r{node} committed height {height} after {}",
                    self.nodes[node].chain.len()
                ));
            }
            // Certificate soundness: 2f+1 valid signatures from distinct members.
            if let Err(e) = certificate.verify_for(&self.set, height, &hash) {
                self.violations
                    .push(format!("certificate: r{node} height {height}: {e}"));
            }
            // A certificate is never of an earlier view than the block it commits: the
            // offline auditor relies on it (certificate::view_commits_header).
            let proposed_in = block_view(&block).unwrap_or_default();
            if certificate.view < proposed_in {
                self.violations.push(format!(
                    "views: r{node} committed height {height}, proposed in view {proposed_in}, \
                     with a certificate of view {}",
                    certificate.view
                ));
            }
            // Validity: only blocks the ledger accepts.
            if !ledger_accepts(&block, height) {
                self.violations.push(format!(
                    "validity: r{node} committed an invalid block at {height}"
                ));
            }
            // Agreement.
            match self.decided.get(&height) {
                Some(h) if *h != hash => self.violations.push(format!(
                    "agreement: r{node} committed a different block at height {height}"
                )),
                Some(_) => {}
                None => {
                    self.decided.insert(height, hash);
                    self.committed_txs.extend(txs.iter().copied());
                    if certificate.view > proposed_in {
                        self.stats.reproposed += 1;
                    }
                }
            }
        }
        if correct && self.faults_active() && self.rng.gen_bool(self.scenario.crash_after_commit) {
            self.nodes[node].crash_now = true;
        }
        let n = &mut self.nodes[node];
        for tx in &txs {
            n.mempool.remove(tx);
        }
        n.chain.push(FetchedBlock {
            block,
            block_hash: hash,
            certificate,
        });
        self.later(node, 0, Input::TxsCommitted(txs));
    }

    /// Durability check: a correct replica never signs two different votes for one
    /// (kind, view, height), whatever crashes happened.
    fn record_signed(&mut self, node: usize, message: &Message) {
        if !self.correct(node) {
            return;
        }
        let (kind, view, height, hash) = match message {
            Message::PrePrepare(m) => (0u8, m.view, m.height, m.block_hash),
            Message::Prepare(v) => (1, v.view, v.height, v.block_hash),
            Message::Commit(v) => (2, v.view, v.height, v.block_hash),
            _ => return,
        };
        if *self
            .signed
            .entry((node, kind, view, height))
            .or_insert(hash)
            != hash
        {
            self.violations.push(format!(
                "double vote: correct r{node} signed two different {} at view {view}, height {height}",
                ["pre-prepares", "prepares", "commits"][kind as usize]
            ));
        }
    }

    fn broadcast_from(&mut self, from: usize, message: Message) {
        let behaviour = self.nodes[from].behaviour;
        for to in 0..self.nodes.len() {
            if to == from {
                continue;
            }
            let message = match behaviour {
                Behaviour::Silent => return,
                Behaviour::Equivocate => self.equivocate(from, to, &message),
                Behaviour::DoubleVote => {
                    if let Some(extra) = self.conflicting_vote(from, &message) {
                        self.transmit(from, to, extra);
                    }
                    message.clone()
                }
                _ => message.clone(),
            };
            self.transmit(from, to, message);
        }
    }

    fn send_from(&mut self, from: usize, to: usize, message: Message) {
        if self.nodes[from].behaviour == Behaviour::Silent || to >= self.nodes.len() {
            return;
        }
        self.transmit(from, to, message);
    }

    /// An equivocating replica sends odd-numbered peers a different, valid block
    /// (as primary) and votes for it there.
    fn equivocate(&mut self, from: usize, to: usize, message: &Message) -> Message {
        if to.is_multiple_of(2) {
            return message.clone();
        }
        let chain = self.set.chain_id().to_string();
        let key = self.keys[from].clone();
        match message {
            Message::PrePrepare(pp) => {
                let (hash, block) = self.alternative(from, pp.view, pp.height, &pp.block);
                let signature = sign(&key, &pre_prepare_bytes(&chain, pp.height, pp.view, &hash));
                Message::PrePrepare(PrePrepare {
                    block_hash: hash,
                    block,
                    signature,
                    ..pp.clone()
                })
            }
            Message::Prepare(v) => {
                let (hash, _) = self.alternative(from, v.view, v.height, &[]);
                let signature = sign(&key, &prepare_bytes(&chain, v.height, v.view, &hash));
                Message::Prepare(Vote {
                    block_hash: hash,
                    signature,
                    ..v.clone()
                })
            }
            Message::Commit(v) => {
                let (hash, _) = self.alternative(from, v.view, v.height, &[]);
                let signature = sign_commit_vote(&key, &chain, v.height, v.view, &hash);
                Message::Commit(Vote {
                    block_hash: hash,
                    signature,
                    ..v.clone()
                })
            }
            other => other.clone(),
        }
    }

    fn alternative(
        &mut self,
        from: usize,
        view: u64,
        height: u64,
        original: &[u8],
    ) -> (BlockHash, Vec<u8>) {
        if let Some(alt) = self.nodes[from].alternatives.get(&(view, height)) {
            return alt.clone();
        }
        let txs = block_txs(original);
        let nonce = self.rng.r#gen();
        let block = make_block(
            true,
            height,
            view,
            from as u32,
            nonce,
            &txs[..txs.len() / 2],
        );
        let alt = (block_hash(&block).unwrap_or_default(), block);
        self.nodes[from]
            .alternatives
            .insert((view, height), alt.clone());
        alt
    }

    /// A second vote, for a block that does not exist, signed properly.
    fn conflicting_vote(&mut self, from: usize, message: &Message) -> Option<Message> {
        let chain = self.set.chain_id().to_string();
        let key = &self.keys[from];
        let hash: BlockHash = self.rng.r#gen();
        match message {
            Message::Prepare(v) => Some(Message::Prepare(Vote {
                block_hash: hash,
                signature: sign(key, &prepare_bytes(&chain, v.height, v.view, &hash)),
                ..v.clone()
            })),
            Message::Commit(v) => Some(Message::Commit(Vote {
                block_hash: hash,
                signature: sign_commit_vote(key, &chain, v.height, v.view, &hash),
                ..v.clone()
            })),
            _ => None,
        }
    }

    /// Hostile input from a Noise replica: each message is correctly signed unless
    /// said otherwise, and each must be dropped or harmless.
    fn noise(&mut self, from: usize) {
        let Some(replica) = self.nodes[from].replica.as_ref() else {
            return;
        };
        let (view, height) = (replica.view(), replica.committed_height() + 1);
        let n = self.nodes.len();
        let to = self.rng.gen_range(0..n);
        if to == from {
            return;
        }
        let chain = self.set.chain_id().to_string();
        let key = self.keys[from].clone();
        let hash: BlockHash = self.rng.r#gen();
        let vote = |view: u64, height: u64, hash: BlockHash, commit: bool| {
            let signature = if commit {
                sign_commit_vote(&key, &chain, height, view, &hash)
            } else {
                sign(&key, &prepare_bytes(&chain, height, view, &hash))
            };
            let v = Vote {
                view,
                height,
                block_hash: hash,
                from: ReplicaId(from as u32),
                signature,
            };
            if commit {
                Message::Commit(v)
            } else {
                Message::Prepare(v)
            }
        };
        let message = match self.rng.gen_range(0..10) {
            // Stale view, current height.
            0 => vote(
                view.saturating_sub(self.rng.gen_range(1..20)),
                height,
                hash,
                true,
            ),
            // Far-future view.
            1 => vote(view + self.rng.gen_range(4..1_000_000), height, hash, false),
            // Far-future height (claims we are behind; its fetches return garbage).
            2 => vote(view, height + self.rng.gen_range(3..1_000_000), hash, true),
            // Bad signature.
            3 => {
                let mut m = vote(view, height, hash, true);
                if let Message::Commit(v) = &mut m {
                    v.signature = Signature::from_bytes(&[7; 64]);
                }
                m
            }
            // Impersonation: a vote claiming another member, signed by this one.
            4 if self.rng.gen_bool(0.5) => {
                let mut m = vote(view, height, hash, self.rng.r#gen());
                let victim = ReplicaId(self.rng.gen_range(0..n as u32));
                match &mut m {
                    Message::Commit(v) | Message::Prepare(v) => v.from = victim,
                    _ => {}
                }
                m
            }
            // A non-member sender.
            4 => {
                let mut m = vote(view, height, hash, false);
                if let Message::Prepare(v) = &mut m {
                    v.from = ReplicaId(n as u32 + self.rng.gen_range(0..5));
                }
                m
            }
            // A vote for a block that does not exist, current view and height.
            5 => vote(view, height, hash, self.rng.r#gen()),
            // View changes for far views, with forged certificates.
            6 => Message::ViewChange(ViewChange {
                view: view + self.rng.gen_range(1..200),
                committed_height: height + 5,
                committed: Some(CommitCertificate {
                    height: height + 5,
                    view,
                    block_hash: hash,
                    signatures: vec![(ReplicaId(from as u32), Signature::from_bytes(&[1; 64])); 3],
                }),
                prepared: None,
                from: ReplicaId(from as u32),
                signature: Signature::from_bytes(&[2; 64]),
            }),
            // A new view without a quorum, properly signed when this replica is its primary.
            7 => {
                let nv_view = view + 1 + self.rng.gen_range(0..n as u64);
                Message::NewView(NewView {
                    view: nv_view,
                    view_changes: Vec::new(),
                    from: ReplicaId(from as u32),
                    signature: sign(&key, &new_view_bytes(&chain, nv_view, &[])),
                })
            }
            // A forged status.
            8 => Message::Status(Status {
                from: ReplicaId(from as u32),
                certificate: CommitCertificate {
                    height: height + self.rng.gen_range(1..100),
                    view,
                    block_hash: hash,
                    signatures: (0..self.set.quorum() as u32)
                        .map(|r| (ReplicaId(r), Signature::from_bytes(&[3; 64])))
                        .collect(),
                },
            }),
            // An oversized pre-prepare for a future height.
            _ => {
                let block = vec![1u8; sim_limits().max_block_bytes + 1];
                let h = block_hash(&block).unwrap_or_default();
                Message::PrePrepare(PrePrepare {
                    view,
                    height: height + 1,
                    block_hash: h,
                    signature: sign(&key, &pre_prepare_bytes(&chain, height + 1, view, &h)),
                    block,
                    from: ReplicaId(from as u32),
                })
            }
        };
        self.transmit(from, to, message);
    }

    /// The network: partitions, drops, duplicates, random delays.
    fn transmit(&mut self, from: usize, to: usize, message: Message) {
        if let Some((groups, until)) = &self.partition
            && self.now < *until
            && groups[from] != groups[to]
        {
            return;
        }
        let faulty = self.faults_active();
        if faulty && self.rng.gen_bool(self.scenario.drop) {
            return;
        }
        if faulty
            && matches!(message, Message::Commit(_))
            && self.rng.gen_bool(self.scenario.commit_drop)
        {
            return;
        }
        let copies = if faulty && self.rng.gen_bool(self.scenario.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = self.rng.gen_range(1..=self.scenario.max_delay_ms);
            self.schedule(
                self.now + delay,
                Event::Deliver {
                    from,
                    to,
                    message: message.clone(),
                },
            );
        }
    }
}

fn timer_kind(timer: &TimerId) -> u8 {
    match timer {
        TimerId::Progress { .. } => 0,
        TimerId::ViewChange { .. } => 1,
        TimerId::Retransmit => 2,
        TimerId::Censorship => 3,
        TimerId::Fetch => 4,
    }
}

/// The one-line command that replays (scenario, seed) exactly.
pub fn replay_command(scenario: &str, seed: u64) -> String {
    format!(
        "TRACECHAIN_SIM_SCENARIO={scenario} TRACECHAIN_SIM_SEED={seed} cargo test -p tracechain-consensus --release --test simulation replay -- --nocapture"
    )
}

/// Runs one seed of a scenario, catching panics, and returns an error line with the
/// replay command on failure.
pub fn run_seed(scenario: &Scenario, seed: u64) -> Result<Stats, String> {
    let s = scenario.clone();
    let result = std::panic::catch_unwind(move || Sim::new(s, seed).run());
    let failure = match result {
        Ok(Ok(stats)) => return Ok(stats),
        Ok(Err(violation)) => violation,
        Err(panic) => format!(
            "panic: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        ),
    };
    Err(format!(
        "scenario {} seed {seed} failed: {failure}\n  replay: {}",
        scenario.name,
        replay_command(scenario.name, seed)
    ))
}
