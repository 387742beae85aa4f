//! The messages replicas exchange (Castro & Liskov §4.2–§4.5), as plain structs with
//! public fields so that the network layer can convert them to and from protobuf.
//!
//! Every signed message names its sender and carries an Ed25519 signature over the
//! fixed-layout bytes built in [`crate::signing`]. Depends on `certificate`,
//! `validators` and `fault` (for [`MessageKind`]) only.

use ed25519_dalek::Signature;

use crate::certificate::{BlockHash, CommitCertificate};
use crate::fault::MessageKind;
use crate::validators::ReplicaId;

/// A message between replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The primary's proposal of a block for (view, height) (§4.2).
    PrePrepare(PrePrepare),
    /// A replica's vote that it accepted and validated the pre-prepare (§4.2).
    Prepare(Vote),
    /// A replica's vote that it prepared the block; 2f+1 of them are a
    /// [`CommitCertificate`] (§4.2). Signed with [`crate::sign_commit_vote`].
    Commit(Vote),
    /// A replica's request to move to a new view (§4.4).
    ViewChange(ViewChange),
    /// The new primary's proof that 2f+1 replicas moved to its view (§4.4).
    NewView(NewView),
    /// "I have committed up to here": sent to a peer that is behind, so that it can
    /// fetch the blocks (the role of checkpoints and state transfer, §4.3, §5.3).
    /// Unsigned: the certificate proves itself.
    Status(Status),
}

impl Message {
    /// The replica that the message says sent it.
    pub fn from(&self) -> ReplicaId {
        match self {
            Message::PrePrepare(m) => m.from,
            Message::Prepare(m) | Message::Commit(m) => m.from,
            Message::ViewChange(m) => m.from,
            Message::NewView(m) => m.from,
            Message::Status(m) => m.from,
        }
    }

    /// Which kind of message this is.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::PrePrepare(_) => MessageKind::PrePrepare,
            Message::Prepare(_) => MessageKind::Prepare,
            Message::Commit(_) => MessageKind::Commit,
            Message::ViewChange(_) => MessageKind::ViewChange,
            Message::NewView(_) => MessageKind::NewView,
            Message::Status(_) => MessageKind::Status,
        }
    }
}

/// The primary's proposal of `block` at `height` in `view`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrePrepare {
    /// View of the proposal.
    pub view: u64,
    /// Height (the PBFT sequence number).
    pub height: u64,
    /// The host's hash of `block`.
    pub block_hash: BlockHash,
    /// The block, opaque to consensus.
    pub block: Vec<u8>,
    /// The primary of `view`.
    pub from: ReplicaId,
    /// Signature over [`crate::signing::pre_prepare_bytes`].
    pub signature: Signature,
}

/// A prepare or commit vote for `block_hash` at (view, height).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// View of the vote.
    pub view: u64,
    /// Height of the vote.
    pub height: u64,
    /// The block voted for.
    pub block_hash: BlockHash,
    /// The voter.
    pub from: ReplicaId,
    /// Signature over [`crate::signing::prepare_bytes`] (prepare) or
    /// [`crate::commit_vote_bytes`] (commit).
    pub signature: Signature,
}

/// Proof that a block was prepared at (view, height): 2f+1 prepare signatures from
/// distinct members, and the block itself so that a new primary can re-propose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedCertificate {
    /// View in which the block prepared.
    pub view: u64,
    /// Height of the block.
    pub height: u64,
    /// Hash of the block.
    pub block_hash: BlockHash,
    /// The block.
    pub block: Vec<u8>,
    /// Prepare signatures, by replica.
    pub prepares: Vec<(ReplicaId, Signature)>,
}

/// A replica's request to move to `view` (§4.4): what it has committed and the
/// highest prepared certificate it holds for the next height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewChange {
    /// The view the sender wants to move to.
    pub view: u64,
    /// The sender's committed height.
    pub committed_height: u64,
    /// Certificate of the block at `committed_height` (`None` only at height 0).
    pub committed: Option<CommitCertificate>,
    /// Highest-view prepared certificate for `committed_height + 1`, if any.
    pub prepared: Option<PreparedCertificate>,
    /// The sender.
    pub from: ReplicaId,
    /// Signature over [`crate::signing::view_change_bytes`].
    pub signature: Signature,
}

/// The new primary's announcement of `view`, carrying the 2f+1 view-change
/// messages from which every replica recomputes where the view starts (§4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewView {
    /// The new view.
    pub view: u64,
    /// At least 2f+1 view-change messages for `view` from distinct members.
    pub view_changes: Vec<ViewChange>,
    /// The primary of `view`.
    pub from: ReplicaId,
    /// Signature over [`crate::signing::new_view_bytes`].
    pub signature: Signature,
}

/// A peer's latest commit certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The sender (as told by the transport; not signed).
    pub from: ReplicaId,
    /// Certificate of the sender's committed head.
    pub certificate: CommitCertificate,
}
