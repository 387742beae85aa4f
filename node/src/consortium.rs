//! The consortium driver: runs a node as one validator among several, by carrying out
//! what the PBFT state machine ([`tracechain_consensus::Replica`]) asks, over the p2p
//! network ([`tracechain_p2p`]) and the node's chain, mempool and store.
//!
//! One task owns the replica. It turns network events, timers, validation results,
//! fetched blocks and admitted transactions into [`Input`]s, and carries out the
//! [`Output`]s in order: a `Persist` is written (synced) before any send that follows
//! it. Ledger work (executing a proposal, committing) runs on blocking threads; a
//! proposal that was checked is kept, so a committed block is never executed twice.
//!
//! Wire formats: consensus messages and persisted state through [`crate::wire`]; block
//! sync answers are `BlockRange`; a client's transactions are pushed to the other members
//! in batches, as `TxBatch`.
//!
//! Sends never wait for the peer's acknowledgement (a member that withholds them must not
//! hold this task). A fault that makes going on unsafe (the replica's state cannot be
//! persisted, a decided block cannot be written) ends the task with
//! [`ConsortiumError::Fatal`], and the node stops in order.
//!
//! Rooms: `blocks` (the head, checking proposals, committing), `sync` (block ranges in
//! and out), `push` (transactions between members).

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use prost::Message as _;
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};
use tracechain_consensus::{
    BlockHash, Config, FetchedBlock, Input, Output, Replica, ReplicaId, TimerId,
};
use tracechain_ledger::certificate;
use tracechain_p2p::{Multiaddr, NetworkConfig, NetworkEvent, NetworkHandle, PeerId, PeerSpec};
use tracechain_proto::v1 as pb;

use crate::{
    chain::ExecutedBlock,
    locks::lock,
    node::{Admitted, Node, Origin},
    tx::TxId,
    wire,
};

mod blocks;
mod push;
mod sync;

use blocks::{check_block, head_of};
use push::{push, spawn_push_admission};
use sync::{pull, serve_blocks};

/// Key of the persisted consensus state in the store's consensus column family.
const STATE_KEY: &[u8] = b"replica-state";
/// Largest direct consensus message (or transaction batch) a node sends or reads. A
/// proposal carries its block, so this must hold the largest block any member may
/// propose ([`crate::node::MAX_BLOCK_BYTES`] of transactions plus their framing, the
/// header and the signature); it is fixed, not configured, so that every member reads
/// what any other may send.
const MAX_NETWORK_MESSAGE_BYTES: usize = 20 * 1024 * 1024;
/// Largest block-sync answer: at least one whole block with its certificate.
const MAX_SYNC_RESPONSE_BYTES: usize = 24 * 1024 * 1024;
/// Most blocks served in one block-sync answer.
const MAX_SYNC_BLOCKS: u64 = 64;
/// Most bytes served in one block-sync answer (the p2p response limit is 16 MiB).
const MAX_SYNC_BYTES: usize = 12 * 1024 * 1024;
/// Checked proposals kept for their commit.
const MAX_CHECKED: usize = 16;
/// Admitted batches waiting for the driver (each one submission or pushed batch).
const ADMITTED_QUEUE: usize = 256;
/// Target size of one pushed batch of transactions.
const TX_BATCH_BYTES: usize = 256 * 1024;

/// Why the consortium driver cannot start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConsortiumError {
    /// Configuration does not fit the genesis.
    #[error("{0}")]
    Config(String),
    /// The network failed to start.
    #[error(transparent)]
    Network(#[from] tracechain_p2p::NetworkError),
    /// The consensus state could not be restored.
    #[error("consensus: {0}")]
    Consensus(String),
    /// The replica cannot go on safely: its state could not be persisted before a message
    /// that depends on it (sending anyway could make a restarted replica sign twice), or a
    /// block consensus decided could not be written (going on would diverge). The node
    /// stops; a restart resumes from the store and catches up.
    #[error("{what}: {reason}; the node stops (a restart resumes from the store)")]
    Fatal {
        /// What could not be done.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] tracechain_storage::StorageError),
}

/// `host:port` → `/ip4/host/tcp/port` (or `/dns/...` for names).
pub fn multiaddr(address: &str) -> Result<Multiaddr, ConsortiumError> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| ConsortiumError::Config(format!("address {address:?} is not host:port")))?;
    let proto = if host.parse::<std::net::Ipv4Addr>().is_ok() {
        "ip4"
    } else {
        "dns"
    };
    format!("/{proto}/{host}/tcp/{port}")
        .parse()
        .map_err(|e| ConsortiumError::Config(format!("address {address:?}: {e}")))
}

/// A [`pb::Block`] with only its header decoded: the transactions are skipped, not
/// decoded. The hash of a block is the hash of its header, and the replica computes it
/// for every proposal it receives; decoding thousands of transactions to get it showed
/// in profiles. A block whose transactions are malformed still gets a hash here, and is
/// then refused by the ledger's check, which decodes everything.
#[derive(Clone, PartialEq, prost::Message)]
struct BlockHeaderOnly {
    #[prost(bytes = "vec", tag = "1")]
    header: Vec<u8>,
}

fn block_hash_of(bytes: &[u8]) -> Option<BlockHash> {
    BlockHeaderOnly::decode(bytes)
        .ok()
        .map(|b| *blake3::hash(&b.header).as_bytes())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One per timer variant: a new timer of a variant replaces the pending one.
fn timer_slot(t: &TimerId) -> u8 {
    match t {
        TimerId::Progress { .. } => 0,
        TimerId::ViewChange { .. } => 1,
        TimerId::Retransmit => 2,
        TimerId::Censorship => 3,
        TimerId::Fetch => 4,
    }
}

/// What blocking work reports back to the driver.
enum Done {
    Validated {
        height: u64,
        view: u64,
        block_hash: BlockHash,
        valid: bool,
        /// The execution to keep, when it is new.
        executed: Option<ExecutedBlock>,
    },
    Proposed {
        height: u64,
        view: u64,
        executed: ExecutedBlock,
    },
    Committed {
        height: u64,
        tx_ids: Vec<TxId>,
    },
    /// A decided block could not be written.
    CommitFailed(String),
    Fetched {
        peer: ReplicaId,
        blocks: Vec<FetchedBlock>,
    },
    Failed(String),
}

struct Driver {
    node: Node,
    replica: Replica,
    net: NetworkHandle,
    peers: Vec<Option<PeerId>>,
    by_peer: HashMap<PeerId, ReplicaId>,
    timers: BTreeMap<u8, (Instant, TimerId)>,
    /// (height, view) the primary owes a proposal for.
    owed_proposal: Option<(u64, u64)>,
    owed_since: Instant,
    /// When this node last proposed (the next proposal waits for
    /// `NodeConfig::min_block_interval` after it).
    last_proposal: Option<Instant>,
    checked: VecDeque<ExecutedBlock>,
    done_tx: mpsc::Sender<Done>,
    /// Commits are carried out one at a time, in order.
    committing: VecDeque<(Vec<u8>, tracechain_consensus::CommitCertificate)>,
    commit_busy: bool,
    /// Proposals being checked now. A decided block whose check is running waits for
    /// it rather than executing the block a second time (a replica that was slow to
    /// check can see the others decide first).
    checking: Vec<BlockHash>,
    /// Member ids of the validators, by replica id, to name peers in logs.
    names: Vec<String>,
    /// The member whose link the message being fed came over (it may have relayed
    /// a message another member wrote).
    link: Option<ReplicaId>,
    /// Peer faults seen, by the member that sent them (the link, or the server of
    /// fetched blocks) and kind of fault: at most validators × kinds entries, whatever
    /// authors the faulty messages claim.
    faults: HashMap<(ReplicaId, &'static str), u64>,
}

/// Starts the network and runs the replica (or, for an observer, follows the chain)
/// until `shutdown` turns true.
pub async fn run(node: Node, shutdown: watch::Receiver<bool>) -> Result<(), ConsortiumError> {
    let shared = node.shared.clone();
    let genesis = shared.genesis.clone();
    let own_key = shared.node_key.verifying_key();
    let listen = match (
        &shared.config.p2p_listen,
        genesis.member(&shared.config.member_id),
    ) {
        (Some(addr), _) => multiaddr(addr)?,
        (None, Some(me)) if me.node_key == own_key => multiaddr(&me.address)?,
        _ => {
            return Err(ConsortiumError::Config(
                "no peer-to-peer listen address: set p2p_listen".into(),
            ));
        }
    };
    let peers: Vec<PeerSpec> = genesis
        .validator_members()
        .filter(|m| m.node_key != own_key)
        .map(|m| {
            Ok(PeerSpec {
                name: m.id.clone(),
                public_key: m.node_key.to_bytes(),
                addr: Some(multiaddr(&m.address)?),
            })
        })
        .collect::<Result<_, ConsortiumError>>()?;
    let mut net_config = NetworkConfig::new(
        shared.node_key.to_bytes(),
        listen,
        peers,
        shared.config.observers.clone(),
    );
    net_config.max_message_bytes = MAX_NETWORK_MESSAGE_BYTES;
    net_config.max_response_bytes = MAX_SYNC_RESPONSE_BYTES;
    net_config.tx_sink = Some(spawn_push_admission(node.clone()));
    let (net, events) = tracechain_p2p::spawn(net_config)?;
    let result = if shared.config.observer {
        follow(node, net.clone(), events, shutdown).await
    } else {
        replicate(node, net.clone(), events, shutdown).await
    };
    net.shutdown().await;
    result
}

async fn replicate(
    node: Node,
    net: NetworkHandle,
    mut events: mpsc::Receiver<NetworkEvent>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConsortiumError> {
    let shared = node.shared.clone();
    let genesis = shared.genesis.clone();
    let me = shared
        .replica
        .ok_or_else(|| ConsortiumError::Config("an observer has no replica".into()))?;
    let mut peer_ids = Vec::new();
    let mut by_peer = HashMap::new();
    for m in genesis.validator_members() {
        let id = tracechain_p2p::peer_id_from_public_key(&m.node_key.to_bytes())?;
        if let Some(r) = m.replica {
            by_peer.insert(id, r);
        }
        peer_ids.push(Some(id));
    }

    // Resume from the chain head and the persisted replica state.
    let head = {
        let chain = lock(&shared.chain);
        head_of(&chain).map_err(|e| ConsortiumError::Consensus(e.to_string()))?
    };
    let config = Config::new(
        genesis.validators(),
        me,
        shared.node_key.clone(),
        block_hash_of,
    );
    let replica = match shared.store.get_consensus(STATE_KEY)? {
        Some(bytes) => {
            let state = wire::decode_state(&bytes)
                .map_err(|e| ConsortiumError::Consensus(format!("persisted state: {e}")))?;
            Replica::restore(config, state, head)
        }
        None => Replica::new(config, head, 0),
    }
    .map_err(|e| ConsortiumError::Consensus(e.to_string()))?;

    let (admitted_tx, mut admitted_rx) = mpsc::channel::<Admitted>(ADMITTED_QUEUE);
    if shared.admitted.set(admitted_tx).is_err() {
        return Err(ConsortiumError::Config(
            "the consortium driver is already running".into(),
        ));
    }
    let (done_tx, mut done_rx) = mpsc::channel(64);
    let mut d = Driver {
        node,
        replica,
        net: net.clone(),
        peers: peer_ids,
        by_peer,
        timers: BTreeMap::new(),
        owed_proposal: None,
        owed_since: Instant::now(),
        last_proposal: None,
        checked: VecDeque::new(),
        done_tx,
        committing: VecDeque::new(),
        commit_busy: false,
        checking: Vec::new(),
        names: genesis.validator_members().map(|m| m.id.clone()).collect(),
        link: None,
        faults: HashMap::new(),
    };
    tracing::info!(member = %shared.config.member_id, replica = %me, "consortium driver started");
    d.feed(Input::Start).await?;
    // The primary proposes as soon as it is asked when transactions wait (whatever
    // arrived while the previous block was decided: block size follows the load), but
    // not sooner than `min_block_interval` after its previous proposal: under light load
    // a round is short and its blocks small, and the fixed cost of a block (messages,
    // synced writes, re-execution on every member) would be paid for a few dozen
    // transactions. Under heavy load a round outlasts the interval, so it never waits.
    // With nothing waiting, an empty block after an idle second (well inside the view
    // timeout, so an idle chain keeps its view).
    let idle = Duration::from_millis(1_000);
    let spacing = shared.config.min_block_interval;
    loop {
        let next_timer = d.timers.values().map(|(at, _)| *at).min();
        let waiting = !lock(&d.node.shared.mempool).is_empty();
        // Not before our own commit of the previous height is written: the proposal is
        // built on it, and its transactions must have left the mempool.
        let head = *d.node.shared.head.borrow();
        let proposal_due = d
            .owed_proposal
            .filter(|(height, _)| *height == head + 1)
            .map(|_| {
                if waiting {
                    d.last_proposal
                        .map_or(d.owed_since, |at| d.owed_since.max(at + spacing))
                } else {
                    d.owed_since + idle
                }
            });
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(ev) = events.recv() => d.handle_network(ev).await?,
            Some(done) = done_rx.recv() => d.handle_done(done).await?,
            Some(a) = admitted_rx.recv() => d.handle_admitted(a).await?,
            _ = sleep_until(next_timer) => d.fire_timers().await?,
            _ = sleep_until(proposal_due) => d.propose(),
        }
    }
    Ok(())
}

/// An observer: votes in nothing; pulls certified blocks from the validators, checks
/// each certificate, re-executes each block and commits it; serves block sync to others
/// and pushes its clients' transactions to the validators.
async fn follow(
    node: Node,
    net: NetworkHandle,
    mut events: mpsc::Receiver<NetworkEvent>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConsortiumError> {
    let shared = node.shared.clone();
    let peers: Vec<PeerId> = shared
        .genesis
        .validator_members()
        .map(|m| tracechain_p2p::peer_id_from_public_key(&m.node_key.to_bytes()))
        .collect::<Result<_, _>>()?;
    let (admitted_tx, mut admitted_rx) = mpsc::channel::<Admitted>(ADMITTED_QUEUE);
    if shared.admitted.set(admitted_tx).is_err() {
        return Err(ConsortiumError::Config(
            "the consortium driver is already running".into(),
        ));
    }
    tracing::info!(observer = %shared.config.member_id, "following the chain");
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut next = 0usize;
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(ev) = events.recv() => {
                if let NetworkEvent::BlockRequest { from_height, to_height, reply, .. } = ev {
                    let store = shared.store.clone();
                    tokio::task::spawn_blocking(move || {
                        let _ = reply.send(serve_blocks(&store, from_height, to_height));
                    });
                }
            }
            Some(a) = admitted_rx.recv() => {
                if a.origin == Origin::Client {
                    push(&net, &a.txs).await;
                }
            }
            _ = tick.tick() => {
                // Pull until caught up; on failure try the next validator.
                let peer = peers[next % peers.len()];
                loop {
                    match pull(&node, &net, peer).await {
                        Ok(n) if n as u64 == MAX_SYNC_BLOCKS => continue,
                        Ok(_) => break,
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "block sync failed; trying another validator");
                            next += 1;
                            break;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    /// Feeds one input and carries out the outputs, in order; inputs produced while
    /// carrying them out are fed after.
    /// A fatal failure stops at once: no later output of the same step is carried out
    /// (a `Send` after a failed `Persist` must never leave).
    async fn feed(&mut self, input: Input) -> Result<(), ConsortiumError> {
        let (view, mode) = (self.replica.view(), self.replica.mode());
        for output in self.replica.handle(input) {
            self.carry_out(output).await?;
        }
        if (view, mode) != (self.replica.view(), self.replica.mode()) {
            tracing::info!(
                view = self.replica.view(),
                mode = ?self.replica.mode(),
                height = self.replica.committed_height() + 1,
                "consensus view"
            );
        }
        Ok(())
    }

    async fn carry_out(&mut self, output: Output) -> Result<(), ConsortiumError> {
        match output {
            Output::Persist(state) => return self.persist(&state).await,
            Output::Send { to, message } => self.send(to, &message).await,
            Output::Broadcast(message) => {
                if let Err(e) = self.net.broadcast(wire::encode_message(&message)).await {
                    tracing::warn!(error = %e, "consensus broadcast failed");
                }
            }
            Output::Commit { block, certificate } => {
                self.committing.push_back((block, certificate));
                self.next_commit();
            }
            Output::RequestValidation {
                height,
                view,
                block_hash,
                block,
            } => self.validate(height, view, block_hash, block),
            Output::NeedProposal { height, view } => {
                self.owed_proposal = Some((height, view));
                self.owed_since = Instant::now();
            }
            Output::FetchBlocks { from, to, peer } => self.fetch(from, to, peer),
            Output::PeerFault { peer, fault } => self.peer_fault(peer, &fault),
            Output::SetTimer { timer, after_ms } => {
                let at = Instant::now() + Duration::from_millis(after_ms);
                self.timers.insert(timer_slot(&timer), (at, timer));
            }
        }
        Ok(())
    }

    /// Counts a peer fault and logs it at `warn` with the member named: the first of
    /// each kind from each sender and then at every power of two, so that a member that
    /// floods forgeries cannot flood the log too (each one is logged at `debug`). It is
    /// counted against the member that sent it over its link (a correct member relays
    /// only what it checked), not the author it names, which a forger picks at will.
    fn peer_fault(&mut self, peer: ReplicaId, fault: &tracechain_consensus::PeerFault) {
        let sender = self.link.unwrap_or(peer);
        let count = self.faults.entry((sender, fault.name())).or_insert(0);
        *count += 1;
        let count = *count;
        let member = self.member_name(Some(peer));
        let link = self.member_name(self.link);
        if count.is_power_of_two() {
            tracing::warn!(%member, replica = %peer, %link, kind = fault.name(), count, %fault, "peer fault: input dropped");
        } else {
            tracing::debug!(%member, replica = %peer, %link, kind = fault.name(), count, %fault, "peer fault: input dropped");
        }
    }

    /// The member id of a replica, for logs ("-" for none, the id for a non-member).
    fn member_name(&self, replica: Option<ReplicaId>) -> String {
        match replica {
            None => "-".into(),
            Some(r) => match self.names.get(r.0 as usize) {
                Some(name) => name.clone(),
                None => format!("not a validator ({r})"),
            },
        }
    }

    /// Writes the replica's state, synced, before anything that depends on it is sent.
    async fn persist(
        &self,
        state: &tracechain_consensus::PersistentState,
    ) -> Result<(), ConsortiumError> {
        let store = self.node.shared.store.clone();
        let bytes = wire::encode_state(state);
        let written =
            tokio::task::spawn_blocking(move || store.put_consensus(STATE_KEY, &bytes)).await;
        let reason = match written {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        // Sending without a durable record could make a restarted replica sign twice.
        Err(ConsortiumError::Fatal {
            what: "cannot persist the consensus state",
            reason,
        })
    }

    /// Sends without waiting for the peer's acknowledgement, as broadcasts are: a member
    /// that withholds acknowledgements must not hold this task (and with it the node's
    /// consensus) for the request timeout each time it is helped to catch up.
    async fn send(&self, to: ReplicaId, message: &tracechain_consensus::Message) {
        let Some(Some(peer)) = self.peers.get(to.0 as usize) else {
            return;
        };
        if let Err(e) = self.net.post(*peer, wire::encode_message(message)).await {
            tracing::debug!(%to, error = %e, "consensus send failed; retransmission covers it");
        }
    }

    async fn handle_network(&mut self, ev: NetworkEvent) -> Result<(), ConsortiumError> {
        match ev {
            NetworkEvent::Consensus { from, bytes } => {
                let Some(&sender) = self.by_peer.get(&from) else {
                    return Ok(());
                };
                match wire::decode_message(&bytes) {
                    Ok(m) if !from_whom_it_names(&m, sender) => {
                        tracing::warn!(%from, claimed = %m.from(), "consensus message relayed where only its author may send it")
                    }
                    Ok(m) => {
                        self.link = Some(sender);
                        let fed = self.feed(Input::Message(m)).await;
                        self.link = None;
                        fed?
                    }
                    Err(e) => tracing::warn!(%from, error = %e, "malformed consensus message"),
                }
            }
            // Pushed batches go to the push admission task (`tx_sink`), never here.
            NetworkEvent::Tx { from, .. } => {
                tracing::debug!(%from, "transaction batch on the event channel ignored")
            }
            NetworkEvent::BlockRequest {
                from_height,
                to_height,
                reply,
                ..
            } => {
                let store = self.node.shared.store.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = reply.send(serve_blocks(&store, from_height, to_height));
                });
            }
            NetworkEvent::PeerConnected { .. } | NetworkEvent::PeerDisconnected { .. } => {}
        }
        Ok(())
    }

    async fn handle_admitted(&mut self, a: Admitted) -> Result<(), ConsortiumError> {
        if a.origin == Origin::Client {
            push(&self.net, &a.txs).await;
        }
        self.feed(Input::TxsSeen(a.txs.iter().map(|tx| tx.id.0).collect()))
            .await
    }

    async fn fire_timers(&mut self) -> Result<(), ConsortiumError> {
        let now = Instant::now();
        let due: Vec<u8> = self
            .timers
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            if let Some((_, timer)) = self.timers.remove(&k) {
                self.feed(Input::TimerFired(timer)).await?;
            }
        }
        Ok(())
    }

    /// Builds the owed proposal from the mempool (empty if nothing waits: a heartbeat
    /// that keeps the view's progress timer satisfied).
    fn propose(&mut self) {
        let Some((height, view)) = self.owed_proposal.take() else {
            return;
        };
        self.last_proposal = Some(Instant::now());
        let shared = self.node.shared.clone();
        let done = self.done_tx.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let batch = lock(&shared.mempool)
                .batch(shared.config.max_block_txs, shared.config.max_block_bytes);
            let chain = lock(&shared.chain);
            let msg = if chain.head().height + 1 != height {
                Done::Failed(format!(
                    "proposal for {height} but the head is {}",
                    chain.head().height
                ))
            } else {
                match chain.build_block(&batch, now_ms(), view, &shared.config.member_id) {
                    Ok(executed) => {
                        tracing::debug!(
                            height,
                            txs = batch.len(),
                            ms = started.elapsed().as_millis() as u64,
                            "built proposal"
                        );
                        Done::Proposed {
                            height,
                            view,
                            executed,
                        }
                    }
                    Err(e) => Done::Failed(format!("building block {height}: {e}")),
                }
            };
            let _ = done.blocking_send(msg);
        });
    }

    fn validate(&mut self, height: u64, view: u64, block_hash: BlockHash, block: Vec<u8>) {
        if self.checked.iter().any(|e| e.hash == block_hash) {
            // Our own proposal, or a block checked before: already executed and kept.
            let _ = self.done_tx.try_send(Done::Validated {
                height,
                view,
                block_hash,
                valid: true,
                executed: None,
            });
            return;
        }
        self.checking.push(block_hash);
        let shared = self.node.shared.clone();
        let done = self.done_tx.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            // A verdict always comes back, even if the check panics (a bug): a decided
            // block may be waiting for it.
            let executed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                check_block(&shared, height, &block)
            }))
            .unwrap_or_else(|_| {
                tracing::error!(height, "checking a proposal panicked; refusing it");
                None
            });
            tracing::debug!(
                height,
                ms = started.elapsed().as_millis() as u64,
                "checked proposal"
            );
            let _ = done.blocking_send(Done::Validated {
                height,
                view,
                block_hash,
                valid: executed.is_some(),
                executed,
            });
        });
    }

    fn fetch(&self, from: u64, to: u64, peer: ReplicaId) {
        let Some(Some(peer_id)) = self.peers.get(peer.0 as usize).copied() else {
            return;
        };
        let net = self.net.clone();
        let done = self.done_tx.clone();
        let genesis = self.node.shared.genesis.clone();
        tokio::spawn(async move {
            let msg = match net.request_blocks(peer_id, from, to).await {
                Ok(bytes) => match pb::BlockRange::decode(bytes.as_slice()) {
                    Ok(range) => Done::Fetched {
                        peer,
                        blocks: range
                            .blocks
                            .iter()
                            .filter_map(|b| {
                                let block = b.block.as_ref()?.encode_to_vec();
                                let certificate =
                                    certificate::from_proto(b.certificate.as_ref()?, &genesis)
                                        .ok()?;
                                Some(FetchedBlock {
                                    block_hash: block_hash_of(&block)?,
                                    block,
                                    certificate,
                                })
                            })
                            .collect(),
                    },
                    Err(e) => Done::Failed(format!("block range from {peer}: {e}")),
                },
                Err(e) => Done::Failed(format!("fetching blocks {from}..={to} from {peer}: {e}")),
            };
            let _ = done.send(msg).await;
        });
    }

    fn next_commit(&mut self) {
        if self.commit_busy {
            return;
        }
        if let Some((_, certificate)) = self.committing.front()
            && self.checking.contains(&certificate.block_hash)
        {
            // Its check is running: commit with its result when it comes back.
            return;
        }
        let Some((block, certificate)) = self.committing.pop_front() else {
            return;
        };
        self.commit_busy = true;
        let checked = self
            .checked
            .iter()
            .position(|e| e.hash == certificate.block_hash)
            .and_then(|i| self.checked.remove(i));
        let shared = self.node.shared.clone();
        let done = self.done_tx.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let msg = match shared.commit_decided(checked, &block, &certificate) {
                Ok(tx_ids) => Done::Committed {
                    height: certificate.height,
                    tx_ids: tx_ids.unwrap_or_default(),
                },
                Err(e) => Done::CommitFailed(format!("block {}: {e}", certificate.height)),
            };
            tracing::debug!(
                height = certificate.height,
                ms = started.elapsed().as_millis() as u64,
                "wrote block"
            );
            let _ = done.blocking_send(msg);
        });
    }

    async fn handle_done(&mut self, done: Done) -> Result<(), ConsortiumError> {
        match done {
            Done::Validated {
                height,
                view,
                block_hash,
                valid,
                executed,
            } => {
                self.checking.retain(|h| *h != block_hash);
                if let Some(e) = executed {
                    self.keep_checked(e);
                }
                self.feed(Input::ValidationResult {
                    height,
                    view,
                    block_hash,
                    valid,
                })
                .await?;
                // A decided block may have waited for this check.
                self.next_commit();
            }
            Done::Proposed {
                height,
                view,
                executed,
            } => {
                let block = executed.block.encode_to_vec();
                let block_hash = executed.hash;
                self.keep_checked(executed);
                self.feed(Input::Propose {
                    height,
                    view,
                    block,
                    block_hash,
                })
                .await?;
            }
            Done::Committed { height, tx_ids } => {
                self.commit_busy = false;
                self.checked.retain(|e| e.header.height > height);
                self.feed(Input::TxsCommitted(tx_ids.iter().map(|t| t.0).collect()))
                    .await?;
                self.next_commit();
            }
            Done::Fetched { peer, blocks } => {
                self.feed(Input::FetchedBlocks { peer, blocks }).await?
            }
            Done::Failed(e) => tracing::warn!(error = %e, "consortium work failed"),
            Done::CommitFailed(reason) => {
                // A block consensus decided could not be written: stop rather than
                // diverge; a restart resumes from the store and catches up.
                return Err(ConsortiumError::Fatal {
                    what: "cannot commit a decided block",
                    reason,
                });
            }
        }
        Ok(())
    }

    fn keep_checked(&mut self, e: ExecutedBlock) {
        if self.checked.iter().any(|c| c.hash == e.hash) {
            return;
        }
        if self.checked.len() >= MAX_CHECKED {
            self.checked.pop_front();
        }
        self.checked.push_back(e);
    }
}

/// Whether `m`, received over the authenticated link from `sender`, may be fed to the
/// replica. A Status is unsigned, so it must come from whom it names. A PrePrepare is
/// signed, but the signature covers the block's header hash only, not the transactions
/// beside it: relayed, its transactions could be swapped by the relaying member, and the
/// replica would blame the primary for a block the primary never sent. Only the primary
/// sends pre-prepares, to every member directly, so one from anyone else is dropped.
/// Other signed messages may be relayed (a replica forwards the new primary's NewView
/// to one in an older view); the replica checks their signatures and signers itself.
fn from_whom_it_names(m: &tracechain_consensus::Message, sender: ReplicaId) -> bool {
    use tracechain_consensus::Message;
    match m {
        Message::Status(_) | Message::PrePrepare(_) => m.from() == sender,
        _ => true,
    }
}

#[cfg(test)]
mod tests;
