//! Peer faults: input that a correct replica never sends, dropped with a reason.
//!
//! The state machine drops such input without changing state and reports it as
//! [`Output::PeerFault`](crate::Output::PeerFault), so that the host can log and count
//! it with the peer named. Input that a correct but slow or partitioned replica may
//! send (a vote for a committed height, a view far from ours, a duplicate) is not a
//! fault and is dropped silently: reporting it would bury real faults in noise.

use crate::certificate::CertificateError;

/// Which kind of message a fault was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageKind {
    /// A pre-prepare (proposal).
    PrePrepare,
    /// A prepare vote.
    Prepare,
    /// A commit vote.
    Commit,
    /// A view change.
    ViewChange,
    /// A new view.
    NewView,
    /// A status (committed height with its certificate).
    Status,
    /// Blocks served for a fetch.
    FetchedBlocks,
}

impl MessageKind {
    /// A short lowercase name, for logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::PrePrepare => "pre-prepare",
            MessageKind::Prepare => "prepare",
            MessageKind::Commit => "commit",
            MessageKind::ViewChange => "view-change",
            MessageKind::NewView => "new-view",
            MessageKind::Status => "status",
            MessageKind::FetchedBlocks => "fetched-blocks",
        }
    }
}

impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why input from a peer was dropped as faulty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerFault {
    /// The message names an author outside the validator set.
    #[error("{kind} names an author that is not a validator")]
    NotAMember {
        /// The message.
        kind: MessageKind,
    },
    /// The signature does not verify under the key of the author the message names
    /// (a forgery, an impersonation, or corruption by whoever relayed it).
    #[error("{kind} signature does not verify")]
    BadSignature {
        /// The message.
        kind: MessageKind,
    },
    /// A pre-prepare from a replica that is not the primary of its view.
    #[error("pre-prepare for view {view} from a replica that is not its primary")]
    NotPrimary {
        /// The view of the pre-prepare.
        view: u64,
    },
    /// A block that does not hash to the hash it was signed or certified under.
    #[error("{kind} carries a block that does not match its hash")]
    BlockMismatch {
        /// The message.
        kind: MessageKind,
    },
    /// A block above the size limit.
    #[error("{kind} carries a block of {bytes} bytes, over the limit of {limit}")]
    OversizedBlock {
        /// The message.
        kind: MessageKind,
        /// Size of the block.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Two different signed votes of one kind from one replica for one (view, height).
    #[error("equivocation: two different {kind} votes for view {view}, height {height}")]
    Equivocation {
        /// The vote.
        kind: MessageKind,
        /// Its view.
        view: u64,
        /// Its height.
        height: u64,
    },
    /// A view change that is badly formed or not fully signed (its signature, its
    /// commit certificate or its prepared certificate).
    #[error("view change for view {view} is not valid")]
    InvalidViewChange {
        /// The view asked for.
        view: u64,
    },
    /// A new view that is not from the primary of its view, lacks a quorum of valid view
    /// changes for it, or is not signed.
    #[error("new view for view {view} is not valid")]
    InvalidNewView {
        /// The view announced.
        view: u64,
    },
    /// A commit certificate (in a status or with fetched blocks) that does not prove its
    /// block.
    #[error("{kind} carries an invalid commit certificate for height {height}: {error}")]
    InvalidCertificate {
        /// The message.
        kind: MessageKind,
        /// The height it claims.
        height: u64,
        /// What is wrong with it.
        error: CertificateError,
    },
    /// Fetched blocks out of order: not the next height asked for.
    #[error("fetched block for height {got} where {expected} was next")]
    FetchedOutOfOrder {
        /// The height asked for next.
        expected: u64,
        /// The height served.
        got: u64,
    },
}

impl PeerFault {
    /// A stable short name of the fault's kind, for counters and metric labels.
    pub fn name(&self) -> &'static str {
        match self {
            PeerFault::NotAMember { .. } => "not_a_member",
            PeerFault::BadSignature { .. } => "bad_signature",
            PeerFault::NotPrimary { .. } => "not_primary",
            PeerFault::BlockMismatch { .. } => "block_mismatch",
            PeerFault::OversizedBlock { .. } => "oversized_block",
            PeerFault::Equivocation { .. } => "equivocation",
            PeerFault::InvalidViewChange { .. } => "invalid_view_change",
            PeerFault::InvalidNewView { .. } => "invalid_new_view",
            PeerFault::InvalidCertificate { .. } => "invalid_certificate",
            PeerFault::FetchedOutOfOrder { .. } => "fetched_out_of_order",
        }
    }
}
