//! The state machine's interface: what the host feeds in ([`Input`]) and what it must
//! carry out ([`Output`]), in order.
//!
//! Outputs are ordered by durability: a [`Output::Persist`] comes before any
//! [`Output::Send`] or [`Output::Broadcast`] whose signature it records, so the host
//! must carry them out in order, and finish a `Persist` (fsync) before the sends that
//! follow it.

use crate::certificate::{BlockHash, CommitCertificate};
use crate::fault::PeerFault;
use crate::messages::Message;
use crate::state::PersistentState;
use crate::validators::ReplicaId;

/// A transaction id (blake3 of the transaction body).
pub type TxId = [u8; 32];

/// The host's committed chain head, where a replica starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Height of the last committed block (0 = genesis, nothing committed).
    pub height: u64,
    /// Its commit certificate; required above height 0.
    pub certificate: Option<CommitCertificate>,
}

impl ChainHead {
    /// The genesis head: nothing committed yet.
    pub fn genesis() -> Self {
        Self {
            height: 0,
            certificate: None,
        }
    }
}

/// A block served by a peer, with the certificate that proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedBlock {
    /// The block.
    pub block: Vec<u8>,
    /// Its hash.
    pub block_hash: BlockHash,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
}

/// A timer. The host keeps at most one pending timer per variant: a new
/// [`Output::SetTimer`] of a variant replaces the pending one of that variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerId {
    /// The current view must commit `height` before this fires (§4.4).
    Progress {
        /// View of the timer.
        view: u64,
        /// Height of the timer.
        height: u64,
    },
    /// A quorum asked for `view` and its new-view must arrive before this fires (§4.5.2).
    ViewChange {
        /// The view being changed to.
        view: u64,
    },
    /// Periodic re-send of the current messages.
    Retransmit,
    /// Periodic check for transactions left uncommitted too long.
    Censorship,
    /// The pending block fetch expires.
    Fetch,
}

/// What the host feeds to [`Replica::handle`](crate::Replica::handle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Sent once after `new` or `restore`: arms the timers and resumes the protocol.
    Start,
    /// A message from a peer (its transport sender should equal `message.from()`).
    Message(Message),
    /// A timer set by [`Output::SetTimer`] fired.
    TimerFired(TimerId),
    /// The block this replica proposes, answering [`Output::NeedProposal`].
    Propose {
        /// Height asked for.
        height: u64,
        /// View asked for.
        view: u64,
        /// The block.
        block: Vec<u8>,
        /// Its hash.
        block_hash: BlockHash,
    },
    /// The host's verdict on a block, answering [`Output::RequestValidation`].
    ValidationResult {
        /// Height of the request.
        height: u64,
        /// View of the request.
        view: u64,
        /// The block judged.
        block_hash: BlockHash,
        /// Whether the ledger accepts it.
        valid: bool,
    },
    /// Blocks served by a peer, answering [`Output::FetchBlocks`], lowest first.
    FetchedBlocks {
        /// The peer that served them (the one the fetch asked), to blame if they are
        /// not what was asked for.
        peer: ReplicaId,
        /// The blocks.
        blocks: Vec<FetchedBlock>,
    },
    /// Transactions arrived (from a client or a peer) and must be committed in time. One
    /// input per admitted batch, not per transaction: at thousands of transactions a second
    /// the per-input cost showed in profiles.
    TxsSeen(Vec<TxId>),
    /// These transactions were committed (or dropped as invalid by the ledger).
    TxsCommitted(Vec<TxId>),
}

/// What the host must carry out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Store this state durably before carrying out the next output.
    Persist(PersistentState),
    /// Send a message to one peer.
    Send {
        /// The peer.
        to: ReplicaId,
        /// The message.
        message: Message,
    },
    /// Send a message to every other member.
    Broadcast(Message),
    /// The block is final: store it with its certificate. Emitted in height order,
    /// exactly once per height.
    Commit {
        /// The block.
        block: Vec<u8>,
        /// 2f+1 commit signatures over it.
        certificate: CommitCertificate,
    },
    /// Ask the ledger whether `block` is valid at `height`; answer with
    /// [`Input::ValidationResult`].
    RequestValidation {
        /// Height.
        height: u64,
        /// View.
        view: u64,
        /// Hash of the block.
        block_hash: BlockHash,
        /// The block.
        block: Vec<u8>,
    },
    /// This replica is primary: build a block for (height, view) and answer with
    /// [`Input::Propose`] (within the view timeout; an empty block is fine).
    NeedProposal {
        /// Height.
        height: u64,
        /// View.
        view: u64,
    },
    /// Fetch committed blocks `from..=to` with their certificates from `peer`; answer
    /// with [`Input::FetchedBlocks`].
    FetchBlocks {
        /// First height.
        from: u64,
        /// Last height.
        to: u64,
        /// Peer believed to have them.
        peer: ReplicaId,
    },
    /// Input from `peer` was dropped because a correct replica never sends it: log
    /// and count it. Nothing else is owed; the replica's state is unchanged by it.
    /// `peer` is the author the message names (or the peer that served fetched
    /// blocks); a message relayed by another member was corrupted by the relay or
    /// forged, which only the host, knowing the link it came over, can tell apart.
    PeerFault {
        /// The peer the input is attributed to.
        peer: ReplicaId,
        /// What was wrong with it.
        fault: PeerFault,
    },
    /// Fire [`Input::TimerFired`]`(timer)` after `after_ms`, replacing the pending
    /// timer of the same variant.
    SetTimer {
        /// The timer.
        timer: TimerId,
        /// Delay in milliseconds.
        after_ms: u64,
    },
}
