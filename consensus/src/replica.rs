//! The replica: its state, the entry point [`Replica::handle`], and where each
//! message belongs (placement by height and view window).
//!
//! The rules live beside their inputs: the normal case in `normal_case.rs` (§4.2),
//! view changes in `view_change.rs` (§4.4), catch-up in `catch_up.rs`, timers in
//! `timers.rs`, the request timer in `censorship.rs`. docs/CONSENSUS.md has the whole
//! transition table.

use std::collections::{BTreeMap, BTreeSet};

use crate::censorship::TxTracker;
use crate::certificate::CommitCertificate;
use crate::config::Config;
use crate::error::ConsensusError;
use crate::fault::PeerFault;
use crate::io::{ChainHead, Input, Output};
use crate::log::{FutureBuffer, HeightLog, Kind};
use crate::messages::{Message, NewView, PreparedCertificate, ViewChange};
use crate::state::{PersistentState, ViewStart, VoteRecord};
use crate::validators::ReplicaId;

/// What a replica is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Working in `view` (§4.2).
    Normal {
        /// The view.
        view: u64,
    },
    /// Asked to move to `target` and waiting for its new-view message (§4.4).
    ViewChanging {
        /// The view asked for.
        target: u64,
        /// Whether the view-change timer runs (it starts once 2f+1 replicas asked
        /// for `target`, §4.5.2).
        timer_armed: bool,
    },
}

/// Which of its votes a replica is about to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VoteKind {
    PrePrepare,
    Prepare,
    Commit,
}

/// Where a round message belongs, relative to this replica's height and view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// For the height being decided, in the view window.
    Now,
    /// For one of the next few heights: buffer it.
    Buffer,
    /// For a committed height: the sender is behind.
    Stale,
    /// Beyond the buffer: the sender is ahead, this replica is behind.
    Ahead,
    /// Outside the view window.
    Drop,
}

/// Block fetching state (see `catch_up.rs`).
#[derive(Debug, Clone, Default)]
pub(crate) struct CatchUp {
    /// The fetch in flight: last height asked for, and the peer asked.
    pub in_flight: Option<(u64, ReplicaId)>,
    /// Highest height some peer proved or claimed, and that peer.
    pub hint: Option<(u64, ReplicaId)>,
}

/// A PBFT replica as a pure state machine: feed it [`Input`]s, carry out its
/// [`Output`]s in order.
#[derive(Debug, Clone)]
pub struct Replica {
    pub(crate) cfg: Config,
    /// Committed height (the host's chain head).
    pub(crate) committed: u64,
    /// Certificate of the committed head (`None` only at genesis).
    pub(crate) last_commit: Option<CommitCertificate>,
    pub(crate) mode: Mode,
    pub(crate) view_start: Option<ViewStart>,
    pub(crate) prepared: Option<PreparedCertificate>,
    pub(crate) signed_pre_prepare: Option<VoteRecord>,
    pub(crate) signed_prepare: Option<VoteRecord>,
    pub(crate) signed_commit: Option<VoteRecord>,
    pub(crate) log: HeightLog,
    pub(crate) future: FutureBuffer,
    /// Latest valid view change per replica (including this one).
    pub(crate) view_changes: BTreeMap<ReplicaId, ViewChange>,
    /// The new-view message of the current view, to hand to replicas left behind.
    pub(crate) last_new_view: Option<NewView>,
    /// Consecutive failed views since the last commit (timeout backoff, §4.5.2).
    pub(crate) failures: u32,
    pub(crate) catch_up: CatchUp,
    pub(crate) txs: TxTracker,
    /// Peers sent a status / new-view since the last retransmit tick (rate limit).
    pub(crate) helped_status: BTreeSet<ReplicaId>,
    pub(crate) helped_view: BTreeSet<ReplicaId>,
    /// (view, height, changing) at the previous retransmit tick.
    pub(crate) retransmit_mark: Option<(u64, u64, bool)>,
}

impl Replica {
    /// A replica starting fresh at the host's chain head in `view`.
    pub fn new(config: Config, head: ChainHead, view: u64) -> Result<Self, ConsensusError> {
        Self::restore(
            config,
            PersistentState {
                view,
                ..PersistentState::default()
            },
            head,
        )
    }

    /// A replica rebuilt from its persisted state and the host's chain head. Feed it
    /// [`Input::Start`] next.
    pub fn restore(
        config: Config,
        state: PersistentState,
        head: ChainHead,
    ) -> Result<Self, ConsensusError> {
        let me = config.me;
        let Some(key) = config.validators.key(me) else {
            return Err(ConsensusError::NotAMember {
                replica: me,
                n: config.validators.n(),
            });
        };
        if *key != config.key.verifying_key() {
            return Err(ConsensusError::KeyMismatch { replica: me });
        }
        let last_commit = if head.height == 0 {
            None
        } else {
            let cert = head
                .certificate
                .ok_or(ConsensusError::MissingHeadCertificate {
                    height: head.height,
                })?;
            cert.verify_for(&config.validators, head.height, &cert.block_hash)
                .map_err(|source| ConsensusError::BadHeadCertificate {
                    height: head.height,
                    source,
                })?;
            Some(cert)
        };
        let next = head.height.saturating_add(1);
        let mode = if state.view_changing {
            Mode::ViewChanging {
                target: state.view,
                timer_armed: false,
            }
        } else {
            Mode::Normal { view: state.view }
        };
        let cap = config.limits.max_tracked_txs;
        Ok(Self {
            committed: head.height,
            last_commit,
            mode,
            view_start: state.view_start,
            prepared: state.prepared.filter(|p| p.height == next),
            signed_pre_prepare: state.signed_pre_prepare,
            signed_prepare: state.signed_prepare,
            signed_commit: state.signed_commit,
            log: HeightLog::new(next),
            future: FutureBuffer::default(),
            view_changes: BTreeMap::new(),
            last_new_view: None,
            failures: 0,
            catch_up: CatchUp::default(),
            txs: TxTracker::new(cap),
            helped_status: BTreeSet::new(),
            helped_view: BTreeSet::new(),
            retransmit_mark: None,
            cfg: config,
        })
    }

    /// Feeds one input; returns the outputs to carry out, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Start => self.on_start(&mut out),
            Input::Message(message) => self.on_message(message, &mut out),
            Input::TimerFired(timer) => self.on_timer(timer, &mut out),
            Input::Propose {
                height,
                view,
                block,
                block_hash,
            } => self.on_propose(height, view, block, block_hash, &mut out),
            Input::ValidationResult {
                height,
                view,
                block_hash,
                valid,
            } => self.on_validation(height, view, block_hash, valid, &mut out),
            Input::FetchedBlocks { peer, blocks } => self.on_fetched(peer, blocks, &mut out),
            Input::TxsSeen(ids) => ids.into_iter().for_each(|id| self.txs.seen(id)),
            Input::TxsCommitted(ids) => self.txs.committed(&ids),
        }
        out
    }

    /// The current view (or the view being changed to).
    pub fn view(&self) -> u64 {
        match self.mode {
            Mode::Normal { view } => view,
            Mode::ViewChanging { target, .. } => target,
        }
    }

    /// What the replica is doing.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Height of the last committed block.
    pub fn committed_height(&self) -> u64 {
        self.committed
    }

    /// This replica's id.
    pub fn id(&self) -> ReplicaId {
        self.cfg.me
    }

    /// The state to persist now (also carried by every [`Output::Persist`]).
    pub fn persistent_state(&self) -> PersistentState {
        PersistentState {
            view: self.view(),
            view_changing: matches!(self.mode, Mode::ViewChanging { .. }),
            view_start: self.view_start.clone(),
            prepared: self.prepared.clone(),
            signed_pre_prepare: self.signed_pre_prepare,
            signed_prepare: self.signed_prepare,
            signed_commit: self.signed_commit,
        }
    }

    /// Number of messages, votes and transactions held, for tests that check memory
    /// stays bounded.
    pub fn held_items(&self) -> usize {
        self.log.proposals.len()
            + self.log.prepares.len()
            + self.log.commits.len()
            + self.future.len()
            + self.view_changes.len()
            + self.txs.len()
    }

    pub(crate) fn next_height(&self) -> u64 {
        self.committed.saturating_add(1)
    }

    pub(crate) fn is_primary(&self, view: u64) -> bool {
        self.cfg.validators.primary(view) == self.cfg.me
    }

    pub(crate) fn persist(&self, out: &mut Vec<Output>) {
        out.push(Output::Persist(self.persistent_state()));
    }

    /// Reports input dropped as faulty (see `fault.rs`).
    pub(crate) fn fault(&self, peer: ReplicaId, fault: PeerFault, out: &mut Vec<Output>) {
        out.push(Output::PeerFault { peer, fault });
    }

    fn on_start(&mut self, out: &mut Vec<Output>) {
        self.arm_periodic_timers(out);
        match self.mode {
            Mode::Normal { .. } => self.enter_round(out),
            // A restarted replica that had asked for a view asks again (§4.4).
            Mode::ViewChanging { target, .. } => self.rebroadcast_view_change(target, out),
        }
    }

    fn on_message(&mut self, message: Message, out: &mut Vec<Output>) {
        let from = message.from();
        // Non-members are dropped before any work; our own echo is ignored.
        if !self.cfg.validators.contains(from) {
            let kind = message.kind();
            return self.fault(from, PeerFault::NotAMember { kind }, out);
        }
        if from == self.cfg.me {
            return;
        }
        match message {
            Message::PrePrepare(m) => self.on_pre_prepare(m, out),
            Message::Prepare(v) => self.on_vote(Kind::Prepare, v, out),
            Message::Commit(v) => self.on_vote(Kind::Commit, v, out),
            Message::ViewChange(vc) => self.on_view_change(vc, out),
            Message::NewView(nv) => self.on_new_view(nv, out),
            Message::Status(s) => self.on_status(s, out),
        }
    }

    /// Where a message for (view, height) belongs. Cheap; runs before any signature
    /// check so that out-of-window floods cost nothing.
    pub(crate) fn place(&self, view: u64, height: u64) -> Placement {
        let window = self.cfg.limits.view_window;
        let v = self.view();
        if height <= self.committed {
            Placement::Stale
        } else if view.saturating_add(window) < v || view > v.saturating_add(window) {
            Placement::Drop
        } else if height
            > self
                .next_height()
                .saturating_add(self.cfg.limits.height_window)
        {
            Placement::Ahead
        } else if height > self.next_height() {
            Placement::Buffer
        } else {
            Placement::Now
        }
    }
}
