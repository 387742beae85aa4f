//! The running node: admission into the mempool, block production, queries and
//! block subscriptions, over one [`Chain`].
//!
//! Until the network issue wires PBFT in, a node produces blocks only when it is the
//! consortium's sole validator (n = 1): it executes a batch, signs the commit vote
//! (which alone is a 2f+1 = 1 quorum) and commits. RocksDB work and bulk signature
//! checks run on blocking threads, never on the async runtime.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use ed25519_dalek::SigningKey;
use prost::Message;
use tokio::sync::{Notify, mpsc, watch};
use tracechain_consensus::{CommitCertificate, ReplicaId};
use tracechain_proto::v1 as pb;
use tracechain_storage::Store;

use crate::{
    admission,
    chain::{Chain, ChainError, decode_block},
    genesis::Genesis,
    ledger::state,
    locks::lock,
    mempool::{Mempool, MempoolError, SinceMark},
    tx::{CheckedTx, TxId},
};

/// Most transactions a block may hold, whatever the configuration says: with
/// [`MAX_BLOCK_BYTES`] it bounds a proposal, which must fit every member's network
/// message limit (`consortium`).
pub const MAX_BLOCK_TXS: usize = 50_000;
/// Most bytes of transactions a block may hold.
pub const MAX_BLOCK_BYTES: usize = 16 * 1024 * 1024;

/// How many times the client bound of the mempool other members' pushes may fill it.
/// Every member admits clients only below the client bound and every member holds
/// (nearly) the same transactions, so the consortium's backlog stays near one client
/// bound; the headroom absorbs members that are a little behind one another.
pub const PEER_HEADROOM: usize = 4;

/// Default [`NodeConfig::min_block_interval`], ms.
pub const DEFAULT_MIN_BLOCK_INTERVAL_MS: u64 = 100;
/// Largest [`NodeConfig::min_block_interval`], ms: well inside the view-change timeout,
/// so a primary that waits is never taken for a faulty one.
pub const MAX_MIN_BLOCK_INTERVAL_MS: u64 = 1_000;

/// Node settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// RocksDB directory.
    pub data_dir: PathBuf,
    /// This node's member id.
    pub member_id: String,
    /// Longest wait between the first pending transaction and its block (one validator).
    pub block_interval: Duration,
    /// With several validators: the least time between two proposals of this node as
    /// primary. Under light load blocks would otherwise be as small as one consensus round
    /// allows, and every block costs each member fixed work (three phases of messages, two
    /// synced writes, a re-execution); waiting lets a block gather what arrives meanwhile.
    /// Zero proposes as soon as the previous block is committed.
    pub min_block_interval: Duration,
    /// Most transactions in one block (at most [`MAX_BLOCK_TXS`]).
    pub max_block_txs: usize,
    /// Most bytes of transactions in one block (at most [`MAX_BLOCK_BYTES`]).
    pub max_block_bytes: usize,
    /// Mempool bound for clients' transactions: past it, clients are answered
    /// RESOURCE_EXHAUSTED. Other members' pushes are taken up to
    /// [`PEER_HEADROOM`] times this, so that a transaction one member accepted is not
    /// refused by the primary that must propose it.
    pub mempool_max_txs: usize,
    /// Mempool bound for clients' transactions, bytes (peers: [`PEER_HEADROOM`] times).
    pub mempool_max_bytes: usize,
    /// Node keys of observers that may connect to this node.
    pub observers: Vec<[u8; 32]>,
    /// Peer-to-peer listen address (`host:port`); default: the member's genesis address.
    pub p2p_listen: Option<String>,
    /// This node is an observer: it follows the chain, votes in nothing.
    pub observer: bool,
}

impl NodeConfig {
    /// Defaults for `data_dir` and `member_id`.
    pub fn new(data_dir: PathBuf, member_id: String) -> Self {
        Self {
            data_dir,
            member_id,
            block_interval: Duration::from_millis(200),
            min_block_interval: Duration::from_millis(DEFAULT_MIN_BLOCK_INTERVAL_MS),
            max_block_txs: 10_000,
            max_block_bytes: MAX_BLOCK_BYTES,
            // A few full blocks: under overload, clients are told RESOURCE_EXHAUSTED
            // (before any signature is checked) rather than queued for many seconds,
            // and the CPU goes to deciding blocks, not to admitting a backlog.
            mempool_max_txs: 40_000,
            mempool_max_bytes: 64 * 1024 * 1024,
            observers: Vec::new(),
            p2p_listen: None,
            observer: false,
        }
    }
}

/// Why a node cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store or chain failed to open.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// RocksDB failed to open.
    #[error(transparent)]
    Storage(#[from] tracechain_storage::StorageError),
    /// The configuration does not fit the genesis.
    #[error("{0}")]
    Config(String),
}

pub use crate::admission::{AdmissionError, Origin, Seen};

/// Where a committed transaction is.
#[derive(Debug, Clone)]
pub struct TxLookup {
    /// Pending, committed or unknown.
    pub status: pb::TxStatus,
    /// Height, when committed.
    pub height: u64,
    /// Index in the block, when committed.
    pub index: u32,
    /// Result, when committed.
    pub result: Option<pb::TxResult>,
    /// The transaction, when known.
    pub tx: Option<pb::SignedTx>,
    /// Block time, when committed.
    pub block_time_ms: i64,
}

/// Why the history of an identifier was not read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The store failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// More transactions name it than one answer reads.
    #[error("{total} transactions name it, more than the {max} one answer reads")]
    TooLong {
        /// How many name it.
        total: u64,
        /// How many one answer reads.
        max: usize,
    },
}

pub(crate) struct Shared {
    pub(crate) config: NodeConfig,
    pub(crate) genesis: Genesis,
    pub(crate) store: Arc<Store>,
    pub(crate) chain: Mutex<Chain>,
    /// Notified (with `chain`) after each block the consortium driver writes: a proposal
    /// check for height h + 1 waits on it for the write of h.
    pub(crate) chain_written: std::sync::Condvar,
    pub(crate) mempool: Mutex<Mempool>,
    pub(crate) tx_ready: Notify,
    pub(crate) head: watch::Sender<u64>,
    pub(crate) node_key: SigningKey,
    /// This node's replica, or `None` for an observer.
    pub(crate) replica: Option<ReplicaId>,
    /// Where admitted transactions are announced when the node runs with peers (the
    /// consortium driver pushes the clients' ones to the other members and tells
    /// consensus about all).
    pub(crate) admitted: std::sync::OnceLock<mpsc::Sender<Admitted>>,
    /// Turns true when the node shuts down: long-lived streams and waits end.
    pub(crate) closing: watch::Sender<bool>,
    /// Where admission checks run, below the node's other work in CPU priority.
    pub(crate) admission: rayon::ThreadPool,
    /// Conflicting pairs of device transactions this node saw (clones).
    pub(crate) conflicts: crate::device_conflicts::ConflictWatch,
}

impl Shared {
    /// Commits a decided block: the one path by which every block enters the chain,
    /// whether the replica decided it (`checked` is its execution from the proposal
    /// check, if it was kept), block sync fetched it, or the sole validator built it.
    /// Executes it if not checked, writes it with its certificate (which the chain
    /// checks against the validators), wakes proposal checks waiting for this height,
    /// drops its transactions from the mempool and moves the head. A block at or below
    /// the head is already committed: `Ok(None)`. Returns the block's transaction ids.
    /// Blocks the calling thread (store writes): call it from a blocking task.
    pub(crate) fn commit_decided(
        &self,
        checked: Option<crate::chain::ExecutedBlock>,
        block: &[u8],
        certificate: &CommitCertificate,
    ) -> Result<Option<Vec<TxId>>, ChainError> {
        let mut chain = lock(&self.chain);
        if chain.head().height >= certificate.height {
            return Ok(None);
        }
        let next = chain.head().height + 1;
        let executed = match checked.filter(|e| e.header.height == next) {
            Some(e) => e,
            None => {
                let block = pb::Block::decode(block).map_err(|e| ChainError::Corrupt {
                    what: "decided block",
                    reason: e.to_string(),
                })?;
                chain.check_proposal(block, &|ids| self.pooled(ids), i64::MAX)?
            }
        };
        let tx_ids = executed.tx_ids.clone();
        let height = executed.header.height;
        let suspects = refused_device_txs(&executed);
        chain.commit(executed, certificate)?;
        drop(chain);
        self.chain_written.notify_all();
        lock(&self.mempool).committed(height, &tx_ids);
        tracing::info!(height, txs = tx_ids.len(), "committed block");
        self.head.send_replace(height);
        // After the commit: the device's record and index now hold what the block
        // accepted, which a refused reading of the same block may conflict with.
        for suspect in &suspects {
            self.conflicts
                .examine(&self.store, self.genesis.chain_id(), suspect);
        }
        Ok(Some(tx_ids))
    }

    /// The pooled (already verified) transactions among `ids`, under one mempool lock.
    pub(crate) fn pooled(&self, ids: &[TxId]) -> Vec<Option<Arc<CheckedTx>>> {
        let pool = lock(&self.mempool);
        ids.iter().map(|id| pool.get(id)).collect()
    }

    /// What admission reads of this node.
    pub(crate) fn gate(&self) -> admission::Gate<'_> {
        admission::Gate {
            chain_id: self.genesis.chain_id(),
            mempool: &self.mempool,
            client_bound: self.config.mempool_max_txs,
            store: &self.store,
            conflicts: &self.conflicts,
        }
    }
}

/// Most refused device transactions of one block compared with what their keys
/// committed ([`crate::device_conflicts`]): a clone shows in its first few.
const MAX_SUSPECTS_PER_BLOCK: usize = 16;

/// The device-signed transactions of a block the ledger refused in a way a clone
/// causes: a sequence already used, or a reading older than the device's last.
fn refused_device_txs(executed: &crate::chain::ExecutedBlock) -> Vec<pb::SignedTx> {
    executed
        .execution
        .results
        .iter()
        .zip(&executed.block.txs)
        .filter(|(r, _)| {
            r.code == pb::ResultCode::SequenceReplayed as i32
                || r.code == pb::ResultCode::BadTimestamp as i32
        })
        .map(|(_, t)| t.clone())
        .take(MAX_SUSPECTS_PER_BLOCK)
        .collect()
}

/// Transactions that entered the mempool together (one submission, or one pushed
/// batch), announced to the consortium driver as one item.
#[derive(Debug, Clone)]
pub(crate) struct Admitted {
    pub(crate) origin: Origin,
    /// The pooled transactions themselves (shared with the mempool, not copied).
    pub(crate) txs: Vec<Arc<CheckedTx>>,
}

/// How long a client's submission waits for room in the consortium driver's queue
/// before it is answered RESOURCE_EXHAUSTED.
const ANNOUNCE_WAIT: Duration = Duration::from_secs(2);

/// A handle to the running node; cheap to clone.
#[derive(Clone)]
pub struct Node {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Why the sole validator could not produce a block.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// An observer has no replica and produces nothing.
    #[error("an observer does not produce blocks")]
    Observer,
    /// With other validators, blocks are decided by consensus.
    #[error("this node is one of {validators} validators: consensus orders its blocks")]
    NotSole {
        /// Validators in the genesis.
        validators: usize,
    },
    /// Building, checking or writing the block failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The blocking task panicked or was cancelled.
    #[error("blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Why a read of committed data failed. Each is a local fault of this node (its store or
/// its runtime), never the caller's: the API answers them INTERNAL.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The store failed, or a stored record does not decode.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A stored index entry is malformed.
    #[error("corrupt {what} index entry")]
    CorruptIndex {
        /// Which index.
        what: &'static str,
    },
    /// A block the index or the head points at is not in the store.
    #[error("block {height} is missing from the store")]
    MissingBlock {
        /// Its height.
        height: u64,
    },
    /// The blocking task running the read panicked or was cancelled.
    #[error("blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<tracechain_storage::StorageError> for ReadError {
    fn from(e: tracechain_storage::StorageError) -> Self {
        ReadError::Chain(ChainError::Storage(e))
    }
}

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::task::spawn_blocking(f).await
}

impl Node {
    /// Opens the store and chain. The caller runs [`Node::run_producer`].
    pub fn open(
        config: NodeConfig,
        genesis: Genesis,
        node_key: SigningKey,
    ) -> Result<Self, StartError> {
        if !(1..=MAX_BLOCK_TXS).contains(&config.max_block_txs)
            || !(1..=MAX_BLOCK_BYTES).contains(&config.max_block_bytes)
        {
            return Err(StartError::Config(format!(
                "a block holds 1..={MAX_BLOCK_TXS} transactions and 1..={MAX_BLOCK_BYTES} bytes \
                 (configured: {} and {})",
                config.max_block_txs, config.max_block_bytes
            )));
        }
        if config.min_block_interval > Duration::from_millis(MAX_MIN_BLOCK_INTERVAL_MS) {
            return Err(StartError::Config(format!(
                "min_block_interval is at most {MAX_MIN_BLOCK_INTERVAL_MS} ms (a primary that \
                 waits longer could be taken for a faulty one); configured: {} ms",
                config.min_block_interval.as_millis()
            )));
        }
        let replica = if config.observer {
            // An observer votes in nothing: its key must not be a validator's.
            if genesis
                .validator_members()
                .any(|m| m.node_key == node_key.verifying_key())
            {
                return Err(StartError::Config(
                    "an observer must not use a validator's node key".into(),
                ));
            }
            None
        } else {
            let member = genesis.member(&config.member_id).ok_or_else(|| {
                StartError::Config(format!("{} is not a member", config.member_id))
            })?;
            if member.node_key != node_key.verifying_key() {
                return Err(StartError::Config(format!(
                    "the node key does not match {}'s node_key in the genesis",
                    config.member_id
                )));
            }
            Some(member.replica.ok_or_else(|| {
                StartError::Config(format!("{} is not a validator", config.member_id))
            })?)
        };
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            StartError::Config(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        let store = Arc::new(Store::open(&config.data_dir)?);
        let chain = Chain::open(store.clone(), genesis.clone())?;
        let (head, _) = watch::channel(chain.head().height);
        let mempool = Mempool::new(
            config.mempool_max_txs.saturating_mul(PEER_HEADROOM),
            config.mempool_max_bytes.saturating_mul(PEER_HEADROOM),
        );
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                genesis,
                store,
                chain: Mutex::new(chain),
                chain_written: std::sync::Condvar::new(),
                mempool: Mutex::new(mempool),
                tx_ready: Notify::new(),
                head,
                node_key,
                replica,
                admitted: std::sync::OnceLock::new(),
                admission: admission::pool()
                    .map_err(|e| StartError::Config(format!("admission thread pool: {e}")))?,
                closing: watch::channel(false).0,
                conflicts: Default::default(),
            }),
        })
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.shared.genesis
    }

    /// Ends subscriptions and commit waits, so that a graceful shutdown of the API does
    /// not wait for streams that never end by themselves.
    pub fn close(&self) {
        self.shared.closing.send_replace(true);
    }

    /// Whether this node is an observer.
    pub fn is_observer(&self) -> bool {
        self.shared.config.observer
    }

    /// Watches the committed height.
    pub fn head_watch(&self) -> watch::Receiver<u64> {
        self.shared.head.subscribe()
    }

    // ---- admission -------------------------------------------------------------

    /// Checks and admits transactions from a client; one outcome per input, in order.
    pub async fn submit(&self, txs: Vec<pb::SignedTx>) -> Vec<Result<TxId, AdmissionError>> {
        self.submit_from(Origin::Client, txs).await
    }

    /// Checks and admits transactions; one outcome per input, in order.
    pub async fn submit_from(
        &self,
        origin: Origin,
        txs: Vec<pb::SignedTx>,
    ) -> Vec<Result<TxId, AdmissionError>> {
        let n = txs.len();
        // A client's transactions must reach the other members: wait (bounded) for room
        // in the driver's queue before admitting them, so that a slow consortium slows
        // its clients down instead of silently not passing them on. A peer's were pushed
        // to every member by their origin already.
        let permit = match (origin, self.shared.admitted.get()) {
            (Origin::Client, Some(announce)) if n > 0 => {
                match tokio::time::timeout(ANNOUNCE_WAIT, announce.reserve()).await {
                    Ok(Ok(permit)) => Some(permit),
                    Ok(Err(_)) => {
                        return (0..n)
                            .map(|_| Err(AdmissionError::Internal("the node is stopping".into())))
                            .collect();
                    }
                    Err(_) => return (0..n).map(|_| Err(AdmissionError::Overloaded)).collect(),
                }
            }
            _ => None,
        };
        if origin == Origin::Client && n > 0 {
            // A full pool refuses a client's whole request before decoding any of it.
            let pool = lock(&self.shared.mempool);
            if pool.len() >= self.shared.config.mempool_max_txs
                || pool.bytes() >= self.shared.config.mempool_max_bytes
            {
                let capacity = self.shared.config.mempool_max_txs;
                return (0..n)
                    .map(|_| Err(AdmissionError::Full { capacity }))
                    .collect();
            }
        }
        let shared = self.shared.clone();
        let checked = blocking(move || {
            shared
                .admission
                .install(|| admission::check(&shared.gate(), origin, txs))
        })
        .await;
        let (mark, checked) = match checked {
            Ok(c) => c,
            Err(e) => {
                let reason = format!("blocking task failed: {e}");
                return (0..n)
                    .map(|_| Err(AdmissionError::Internal(reason.clone())))
                    .collect();
            }
        };
        self.pool_checked(origin, permit, mark, checked)
    }

    /// Puts checked transactions into the mempool, except those committed since `mark`
    /// (the commit mark read before their check of committed state), then announces
    /// what went in to the consortium driver.
    pub(crate) fn pool_checked(
        &self,
        origin: Origin,
        permit: Option<mpsc::Permit<'_, Admitted>>,
        mark: u64,
        checked: Vec<Result<CheckedTx, AdmissionError>>,
    ) -> Vec<Result<TxId, AdmissionError>> {
        let announcing = self.shared.admitted.get().is_some();
        let mut results = Vec::with_capacity(checked.len());
        let mut admitted = Vec::new();
        {
            let mut pool = lock(&self.shared.mempool);
            for c in checked {
                results.push(c.and_then(|c| {
                    let id = c.id;
                    // A block holding it may have been committed (and taken out of the
                    // pool) while it was checked: it must not go back in.
                    let committed = match pool.committed_since(&id, mark) {
                        SinceMark::NotCommitted => None,
                        SinceMark::Committed(height) => Some(height),
                        // Rare (a check that spanned many blocks): under the pool lock,
                        // a block not yet in the store removes it after this insert.
                        SinceMark::Unknown => self
                            .shared
                            .store
                            .tx_location(&id.0)
                            .map_err(|e| AdmissionError::Internal(e.to_string()))?
                            .map(|location| location.height),
                    };
                    if let Some(height) = committed {
                        return Err(AdmissionError::Duplicate {
                            id,
                            where_: admission::Seen::Committed { height },
                        });
                    }
                    let c = Arc::new(c);
                    pool.insert(c.clone()).map_err(|e| match e {
                        MempoolError::Duplicate { id } => AdmissionError::Duplicate {
                            id,
                            where_: admission::Seen::Pending,
                        },
                        MempoolError::Full { capacity, .. } => AdmissionError::Full { capacity },
                    })?;
                    if announcing {
                        admitted.push(c);
                    }
                    Ok(id)
                }));
            }
        }
        if results.iter().any(Result::is_ok) {
            self.shared.tx_ready.notify_one();
        }
        if !admitted.is_empty() {
            let batch = Admitted {
                origin,
                txs: admitted,
            };
            match (permit, self.shared.admitted.get()) {
                (Some(permit), _) => permit.send(batch),
                (None, Some(announce)) => {
                    // A peer's transactions: every member got them from their origin;
                    // only the censorship timer misses them if the driver is behind.
                    if announce.try_send(batch).is_err() {
                        tracing::debug!(
                            "consortium driver is behind; pushed transactions not tracked"
                        );
                    }
                }
                (None, None) => {}
            }
        }
        results
    }

    /// Waits until `id` is committed or `timeout` passes.
    pub async fn wait_for_commit(&self, id: TxId, timeout: Duration) -> Option<TxLookup> {
        let mut head = self.head_watch();
        let mut closing = self.shared.closing.subscribe();
        let wait = async {
            loop {
                if let Ok(lookup) = self.get_tx(id).await
                    && lookup.status == pb::TxStatus::Committed
                {
                    return Some(lookup);
                }
                tokio::select! {
                    changed = head.changed() => if changed.is_err() { return None },
                    _ = closing.wait_for(|c| *c) => return None,
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.ok().flatten()
    }

    // ---- block production (n = 1) ----------------------------------------------

    /// Cuts blocks from the mempool until `shutdown` turns true: a block when
    /// `max_block_txs` are pending, or `block_interval` after the first one arrived.
    pub async fn run_producer(self, mut shutdown: watch::Receiver<bool>) {
        if self.shared.genesis.validators().n() != 1 || self.shared.replica.is_none() {
            tracing::error!(
                "the solo block producer runs only when this node is the sole validator"
            );
            return;
        }
        let interval = self.shared.config.block_interval;
        loop {
            if lock(&self.shared.mempool).is_empty() {
                tokio::select! {
                    _ = self.shared.tx_ready.notified() => {}
                    _ = shutdown.changed() => return,
                }
            }
            let deadline = tokio::time::Instant::now() + interval;
            while lock(&self.shared.mempool).len() < self.shared.config.max_block_txs {
                tokio::select! {
                    _ = self.shared.tx_ready.notified() => {}
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = shutdown.changed() => return,
                }
            }
            if let Err(e) = self.produce_block().await {
                tracing::error!(error = %e, "block production failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// Builds a block from the mempool as the sole validator, certifies it with its own
    /// commit vote (a quorum of one) and commits it by the path every decided block takes
    /// ([`Shared::commit_decided`]). Returns the new height, or `None` if nothing was
    /// pending.
    pub async fn produce_block(&self) -> Result<Option<u64>, ProduceError> {
        let shared = self.shared.clone();
        let replica = shared.replica.ok_or(ProduceError::Observer)?;
        if shared.genesis.validators().n() != 1 {
            return Err(ProduceError::NotSole {
                validators: shared.genesis.validators().n(),
            });
        }
        let batch =
            lock(&shared.mempool).batch(shared.config.max_block_txs, shared.config.max_block_bytes);
        if batch.is_empty() {
            return Ok(None);
        }
        blocking(move || {
            let (executed, vote) = {
                let chain = lock(&shared.chain);
                let executed = chain.build_block(&batch, now_ms(), 0, &shared.config.member_id)?;
                let vote = chain.sign_commit(&executed, replica, &shared.node_key);
                (executed, vote)
            };
            let certificate = CommitCertificate {
                height: executed.header.height,
                view: executed.header.view,
                block_hash: executed.hash,
                signatures: vec![vote],
            };
            let height = certificate.height;
            // The block was built at head + 1 and only this producer moves the head, so
            // the execution is always used: no bytes to decode are needed.
            let committed = shared.commit_decided(Some(executed), &[], &certificate)?;
            Ok(committed.map(|_| height))
        })
        .await?
    }

    // ---- queries ---------------------------------------------------------------

    /// Chain status.
    pub async fn status(&self) -> pb::ChainStatus {
        let head = lock(&self.shared.chain).head().clone();
        pb::ChainStatus {
            chain_id: self.shared.genesis.chain_id().to_string(),
            height: head.height,
            head_hash: head.hash.to_vec(),
            state_commitment: head.state_commitment.to_vec(),
            head_time_ms: head.time_ms,
            mempool_size: lock(&self.shared.mempool).len() as u64,
            members: self.shared.genesis.members.len() as u32,
            node_member_id: self.shared.config.member_id.clone(),
            genesis_hash: self.shared.genesis.hash().to_vec(),
        }
    }

    /// A committed block by height.
    pub async fn block(&self, height: u64) -> Result<Option<pb::CommittedBlock>, ReadError> {
        let store = self.shared.store.clone();
        Ok(blocking(move || decode_block(store.block(height)?)).await??)
    }

    /// A committed block by hash.
    pub async fn block_by_hash(
        &self,
        hash: [u8; 32],
    ) -> Result<Option<pb::CommittedBlock>, ReadError> {
        let store = self.shared.store.clone();
        let height = blocking(move || store.height_of(&hash)).await??;
        match height {
            Some(h) => self.block(h).await,
            None => Ok(None),
        }
    }

    /// A transaction's status, and where it is if committed.
    pub async fn get_tx(&self, id: TxId) -> Result<TxLookup, ReadError> {
        // The pool first, then the store: a commit writes the store before it takes the
        // transaction out of the pool, so read in this order a transaction is always in
        // one of them (read the other way round, one committed in between was in
        // neither, and a client waiting for it was told it was unknown).
        let pending = lock(&self.shared.mempool)
            .get(&id)
            .map(|t| t.signed.clone());
        let store = self.shared.store.clone();
        let location = blocking(move || store.tx_location(&id.0)).await??;
        if let Some(loc) = location {
            let block = self
                .block(loc.height)
                .await?
                .ok_or(ReadError::MissingBlock { height: loc.height })?;
            let tx = block
                .block
                .as_ref()
                .and_then(|b| b.txs.get(loc.index as usize))
                .cloned();
            let time = block_time(&block);
            return Ok(TxLookup {
                status: pb::TxStatus::Committed,
                height: loc.height,
                index: loc.index,
                result: block.results.get(loc.index as usize).cloned(),
                tx,
                block_time_ms: time,
            });
        }
        Ok(TxLookup {
            status: if pending.is_some() {
                pb::TxStatus::Pending
            } else {
                pb::TxStatus::Unknown
            },
            height: 0,
            index: 0,
            result: None,
            tx: pending,
            block_time_ms: 0,
        })
    }

    /// A state record.
    async fn record<M: Message + Default + 'static>(
        &self,
        key: Vec<u8>,
    ) -> Result<Option<M>, ReadError> {
        let store = self.shared.store.clone();
        blocking(move || {
            store
                .get_state(&key)?
                .map(|b| {
                    M::decode(b.as_slice()).map_err(|e| {
                        ReadError::Chain(ChainError::Corrupt {
                            what: "state record",
                            reason: e.to_string(),
                        })
                    })
                })
                .transpose()
        })
        .await?
    }

    /// A shipment's twin.
    pub async fn shipment(&self, id: &str) -> Result<Option<pb::ShipmentTwin>, ReadError> {
        self.record(state::shipment_key(id)).await
    }

    /// A recorded EPCIS event by its Event Hash ID: where it was recorded, and its
    /// transaction.
    pub async fn epcis_event(
        &self,
        event_hash: &str,
    ) -> Result<Option<(pb::EpcisEventRecord, TxLookup)>, ReadError> {
        let Some(record) = self
            .record::<pb::EpcisEventRecord>(state::epcis_event_key(event_hash))
            .await?
        else {
            return Ok(None);
        };
        let id = <[u8; 32]>::try_from(record.tx_id.as_slice()).map_err(|_| {
            ReadError::Chain(ChainError::Corrupt {
                what: "EPCIS event record",
                reason: format!("its tx_id is {} bytes", record.tx_id.len()),
            })
        })?;
        let found = self.get_tx(TxId(id)).await?;
        if found.status != pb::TxStatus::Committed || found.height != record.height {
            return Err(ReadError::Chain(ChainError::Corrupt {
                what: "EPCIS event record",
                reason: format!(
                    "it names transaction {} at height {}, which the chain does not hold there",
                    hex::encode(id),
                    record.height
                ),
            }));
        }
        Ok(Some((record, found)))
    }

    /// A device record.
    /// Conflicting pairs of device transactions this node saw, oldest first; only
    /// `device`'s when it is given.
    pub fn device_conflicts(&self, device: Option<&str>) -> Vec<pb::SeenDeviceConflict> {
        let mut seen = self.shared.conflicts.list();
        if let Some(device) = device {
            seen.retain(|s| s.device_id == device);
        }
        seen
    }

    /// What a verdict resting on `twin`'s device-signed readings must say of its
    /// devices: a line per conflict proven against one of them
    /// ([`crate::ledger::conflicts::flags`]).
    pub async fn device_flags(&self, twin: &pb::ShipmentTwin) -> Result<Vec<String>, ReadError> {
        let mut flags = Vec::new();
        for id in crate::ledger::conflicts::devices_of(twin) {
            if let Some(d) = self.device(id).await? {
                flags.extend(crate::ledger::conflicts::flags(&d));
            }
        }
        Ok(flags)
    }

    pub async fn device(&self, id: &str) -> Result<Option<pb::DeviceRecord>, ReadError> {
        self.record(state::device_key(id)).await
    }

    /// Where a thing is packed, now and before (on chains that follow containment).
    pub async fn containment(
        &self,
        identifier: &str,
    ) -> Result<Option<pb::Containment>, ReadError> {
        let key = crate::ledger::identifiers::key(identifier);
        self.record(state::containment_key(&key)).await
    }

    /// What a container holds now (on chains that follow containment).
    pub async fn contents(&self, identifier: &str) -> Result<Option<pb::Contents>, ReadError> {
        let key = crate::ledger::identifiers::key(identifier);
        self.record(state::contents_key(&key)).await
    }

    /// The transformations an index prefix lists ([`state::made_by_prefix`],
    /// [`state::used_by_prefix`]), in chain order, at most `max` (more is
    /// [`HistoryError::TooLong`]): position, event time, member, inputs and outputs.
    pub async fn transformations(
        &self,
        prefix: Vec<u8>,
        max: usize,
    ) -> Result<Vec<pb::LineageLink>, HistoryError> {
        let (events, total) = self.index_events(prefix, "lineage", 0, max).await?;
        if total as usize > max {
            return Err(HistoryError::TooLong { total, max });
        }
        let corrupt = |height: u64| {
            ReadError::Chain(ChainError::Corrupt {
                what: "indexed transformation",
                reason: format!("the transaction at height {height} is not a transformation"),
            })
        };
        let mut links = Vec::with_capacity(events.len());
        for e in events {
            let body =
                e.tx.and_then(|tx| pb::TxBody::decode(tx.body.as_slice()).ok())
                    .ok_or_else(|| corrupt(e.height))?;
            let member = body.signer.map(|s| s.id).unwrap_or_default();
            let Some(pb::tx_body::Action::RecordEpcisEvent(event)) = body.action else {
                return Err(corrupt(e.height).into());
            };
            let t = crate::ledger::lineage::of_event(&event).ok_or_else(|| corrupt(e.height))?;
            links.push(pb::LineageLink {
                depth: 0,
                height: e.height,
                index: e.index,
                time_ms: event.event_time_ms,
                member,
                inputs: t.inputs,
                outputs: t.outputs,
            });
        }
        Ok(links)
    }

    /// A page of a shipment's committed events, oldest first, and the total count.
    pub async fn shipment_events(
        &self,
        id: &str,
        offset: u64,
        limit: usize,
    ) -> Result<(Vec<pb::ShipmentEvent>, u64), ReadError> {
        self.index_events(
            state::shipment_events_prefix(id),
            "shipment event",
            offset,
            limit,
        )
        .await
    }

    /// A page of the committed transactions that name an identifier (in any of its forms:
    /// [`crate::ledger::identifiers::key`]), oldest first, and the total count.
    pub async fn identifier_events(
        &self,
        identifier: &str,
        offset: u64,
        limit: usize,
    ) -> Result<(Vec<pb::ShipmentEvent>, u64), ReadError> {
        let key = crate::ledger::identifiers::key(identifier);
        self.index_events(state::identifier_prefix(&key), "identifier", offset, limit)
            .await
    }

    /// The transactions that name an identifier, in chain order, as the provenance
    /// functions read them: at most `max`, more is [`HistoryError::TooLong`].
    pub async fn recorded(
        &self,
        identifier: &str,
        max: usize,
    ) -> Result<Vec<crate::ledger::provenance::Recorded>, HistoryError> {
        let (events, total) = self.identifier_events(identifier, 0, max).await?;
        if total as usize > max {
            return Err(HistoryError::TooLong { total, max });
        }
        // A committed transaction always decodes: one that does not is a store fault,
        // not something a verdict may quietly leave out.
        let corrupt = |height: u64| {
            ReadError::Chain(ChainError::Corrupt {
                what: "indexed transaction",
                reason: format!("a transaction at height {height} has no body, signer or action"),
            })
        };
        let recorded = events
            .into_iter()
            .map(|e| {
                let body =
                    e.tx.and_then(|tx| pb::TxBody::decode(tx.body.as_slice()).ok())
                        .ok_or_else(|| corrupt(e.height))?;
                Ok(crate::ledger::provenance::Recorded {
                    height: e.height,
                    index: e.index,
                    block_time_ms: e.block_time_ms,
                    signer: body.signer.ok_or_else(|| corrupt(e.height))?.id,
                    action: body.action.ok_or_else(|| corrupt(e.height))?,
                })
            })
            .collect::<Result<Vec<_>, ReadError>>()?;
        Ok(recorded)
    }

    /// A page of the transactions an index prefix lists, with their blocks' facts.
    async fn index_events(
        &self,
        prefix: Vec<u8>,
        what: &'static str,
        offset: u64,
        limit: usize,
    ) -> Result<(Vec<pb::ShipmentEvent>, u64), ReadError> {
        let store = self.shared.store.clone();
        blocking(move || {
            let total = store.count_index(&prefix)?;
            let entries = store.scan_index(&prefix, offset, limit)?;
            let mut events = Vec::with_capacity(entries.len());
            // Each transaction's copy by position, in one batched read; a block is read
            // only for what has none (transactions indexed before the copies existed).
            let mut positions = Vec::with_capacity(entries.len());
            for (key, tx_id) in entries {
                let suffix = &key[prefix.len()..];
                let (Ok(h), Ok(i)) = (
                    <[u8; 8]>::try_from(&suffix[..8.min(suffix.len())]),
                    <[u8; 4]>::try_from(suffix.get(8..12).unwrap_or_default()),
                ) else {
                    return Err(ReadError::CorruptIndex { what });
                };
                positions.push((u64::from_be_bytes(h), u32::from_be_bytes(i), tx_id));
            }
            let keys: Vec<Vec<u8>> = positions
                .iter()
                .map(|(h, i, _)| state::positioned_tx_key(*h, *i))
                .collect();
            let copies = store.get_indexes(&keys.iter().map(Vec::as_slice).collect::<Vec<_>>())?;
            let mut cached: Option<(u64, crate::block_view::BlockView)> = None;
            for ((height, index, tx_id), copy) in positions.into_iter().zip(copies) {
                if let Some(bytes) = copy {
                    let event = pb::ShipmentEvent::decode(bytes.as_slice()).map_err(|_| {
                        ReadError::CorruptIndex {
                            what: "positioned tx",
                        }
                    })?;
                    if event.tx_id == tx_id {
                        events.push(event);
                        continue;
                    }
                }
                if cached.as_ref().map(|(ch, _)| *ch) != Some(height) {
                    let bytes = store
                        .block(height)?
                        .ok_or(ReadError::MissingBlock { height })?;
                    cached = Some((height, crate::block_view::BlockView::new(bytes)?));
                }
                let Some((_, block)) = cached.as_ref() else {
                    continue;
                };
                events.push(pb::ShipmentEvent {
                    height,
                    index,
                    tx_id,
                    tx: block.tx(index)?,
                    result: block.result(index)?,
                    block_time_ms: block.time_ms(),
                });
            }
            Ok((events, total))
        })
        .await?
    }

    /// The audit bundle of a shipment at the current head (see [`crate::audit`]).
    pub async fn audit_bundle(
        &self,
        shipment_id: &str,
    ) -> Result<pb::AuditBundle, crate::audit::bundle::ExportError> {
        let store = self.shared.store.clone();
        let genesis = self.shared.genesis.clone();
        // Read the head first: everything up to it is committed and immutable.
        let head = lock(&self.shared.chain).head().height;
        let id = shipment_id.to_string();
        blocking(move || crate::audit::bundle::build(&store, &genesis, head, &id))
            .await
            .map_err(|e| crate::audit::bundle::ExportError::Store(e.to_string()))?
    }

    /// Streams committed blocks from `from` (inclusive), then live ones, until the
    /// receiver is dropped. Reads the store by height, so a slow subscriber never
    /// misses a block; the channel bound applies backpressure.
    pub fn subscribe(&self, from: u64) -> mpsc::Receiver<Result<pb::CommittedBlock, ReadError>> {
        let (tx, rx) = mpsc::channel(16);
        let node = self.clone();
        let mut head = self.head_watch();
        let mut closing = self.shared.closing.subscribe();
        tokio::spawn(async move {
            let mut next = from.max(1);
            loop {
                let current = *head.borrow_and_update();
                while next <= current {
                    let item = match node.block(next).await {
                        Ok(Some(b)) => Ok(b),
                        Ok(None) => Err(ReadError::MissingBlock { height: next }),
                        Err(e) => Err(e),
                    };
                    let failed = item.is_err();
                    if tx.send(item).await.is_err() || failed {
                        return;
                    }
                    next += 1;
                }
                tokio::select! {
                    changed = head.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                    _ = closing.wait_for(|c| *c) => return,
                }
            }
        });
        rx
    }
}

fn block_time(block: &pb::CommittedBlock) -> i64 {
    block
        .block
        .as_ref()
        .and_then(|b| pb::BlockHeader::decode(b.header.as_slice()).ok())
        .map_or(0, |h| h.time_ms)
}

#[cfg(test)]
mod tests;
