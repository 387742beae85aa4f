//! What a replica persists, and why (the durability rule of §4.1 and STYLE.md).
//!
//! A replica must never sign two different votes for the same (view, height), even
//! across a crash. So before a vote leaves, [`PersistentState`] records it; a restarted
//! replica refuses to sign a different one. It also records the view and whether the
//! replica left it (a view change is a promise not to act in the old view), the
//! prepared certificate it must carry into a view change, and the rule of the current
//! view (which block the new view must re-propose). The committed height is the
//! host's chain head, not part of this state.

use crate::certificate::BlockHash;
use crate::messages::PreparedCertificate;

/// A vote this replica signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteRecord {
    /// View of the vote.
    pub view: u64,
    /// Height of the vote.
    pub height: u64,
    /// The block voted for.
    pub block_hash: BlockHash,
}

/// Where a view starts, from its new-view message (§4.4): heights below
/// `start_height` are not proposed in it, and at `start_height` the block of the
/// highest prepared certificate must be re-proposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewStart {
    /// The view.
    pub view: u64,
    /// First height decided in the view.
    pub start_height: u64,
    /// The block the primary must propose at `start_height`, if any.
    pub mandate: Option<(BlockHash, Vec<u8>)>,
}

/// The state a replica needs to restart safely. Plain data: the host stores it as it
/// likes (the storage crate encodes it as protobuf).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersistentState {
    /// The current view (or the view being changed to).
    pub view: u64,
    /// Whether the replica has asked to leave for `view` and waits for its new view.
    pub view_changing: bool,
    /// The rule of the current view, if it was entered by a new-view message.
    pub view_start: Option<ViewStart>,
    /// Highest-view prepared certificate for the height after the chain head.
    pub prepared: Option<PreparedCertificate>,
    /// Last pre-prepare signed (as primary).
    pub signed_pre_prepare: Option<VoteRecord>,
    /// Last prepare signed.
    pub signed_prepare: Option<VoteRecord>,
    /// Last commit vote signed.
    pub signed_commit: Option<VoteRecord>,
}
