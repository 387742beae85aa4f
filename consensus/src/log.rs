//! The message log of the height being decided (§4.2), and the buffer of messages
//! that arrived early for the next few heights.
//!
//! Both are bounded: the log keeps votes only for views within a window of the
//! current view and at most one proposal per view; the buffer keeps at most one
//! message per (height, view, sender, kind) inside the height and view windows.
//! Nothing here verifies signatures: only verified messages enter.

use std::collections::BTreeMap;

use ed25519_dalek::Signature;

use crate::certificate::BlockHash;
use crate::messages::{Message, PrePrepare};
use crate::validators::ReplicaId;

/// The host's verdict on a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not asked: the proposal is for a view this replica is not in (kept as a
    /// source of block bytes, or until the replica enters that view).
    Unasked,
    /// Asked, no answer yet.
    Pending,
    /// The ledger accepts the block.
    Valid,
    /// The ledger rejects the block.
    Invalid,
}

/// A pre-prepared block.
#[derive(Debug, Clone)]
pub(crate) struct Proposal {
    pub block_hash: BlockHash,
    pub block: Vec<u8>,
    pub verdict: Verdict,
}

/// A signed vote in the log: what it is for, and the signature.
pub(crate) type LoggedVote = (BlockHash, Signature);

/// Signatures by replica.
pub(crate) type Signatures = Vec<(ReplicaId, Signature)>;

/// Everything known about the height being decided.
#[derive(Debug, Clone)]
pub(crate) struct HeightLog {
    /// The height (committed + 1).
    pub height: u64,
    /// Pre-prepares by view (first one from the view's primary wins).
    pub proposals: BTreeMap<u64, Proposal>,
    /// Prepares by (view, sender); a sender's first vote in a view wins.
    pub prepares: BTreeMap<(u64, ReplicaId), LoggedVote>,
    /// Commits by (view, sender).
    pub commits: BTreeMap<(u64, ReplicaId), LoggedVote>,
    /// A block known from a new-view mandate.
    pub mandated_block: Option<(BlockHash, Vec<u8>)>,
    /// This replica's own pre-prepare in this height, for retransmission.
    pub own_pre_prepare: Option<PrePrepare>,
    /// Views in which this replica sent its commit vote.
    pub commit_sent_in: Option<u64>,
}

impl HeightLog {
    pub fn new(height: u64) -> Self {
        Self {
            height,
            proposals: BTreeMap::new(),
            prepares: BTreeMap::new(),
            commits: BTreeMap::new(),
            mandated_block: None,
            own_pre_prepare: None,
            commit_sent_in: None,
        }
    }

    /// The bytes of block `hash`, if any proposal or mandate carried them.
    pub fn block(&self, hash: &BlockHash) -> Option<&Vec<u8>> {
        self.proposals
            .values()
            .find(|p| &p.block_hash == hash)
            .map(|p| &p.block)
            .or(self
                .mandated_block
                .as_ref()
                .filter(|(h, _)| h == hash)
                .map(|(_, b)| b))
    }

    /// Prepare signatures for `hash` in `view`.
    pub fn prepares_for(&self, view: u64, hash: &BlockHash) -> Signatures {
        self.prepares
            .range((view, ReplicaId(0))..=(view, ReplicaId(u32::MAX)))
            .filter(|(_, (h, _))| h == hash)
            .map(|((_, r), (_, s))| (*r, *s))
            .collect()
    }

    /// A quorum of commit votes for one block in one view, if there is one: the
    /// makings of a commit certificate (§4.2, committed-local).
    pub fn commit_quorum(&self, quorum: usize) -> Option<(u64, BlockHash, Signatures)> {
        let mut groups: BTreeMap<(u64, BlockHash), Signatures> = BTreeMap::new();
        for ((view, replica), (hash, signature)) in &self.commits {
            groups
                .entry((*view, *hash))
                .or_default()
                .push((*replica, *signature));
        }
        groups
            .into_iter()
            .find(|(_, sigs)| sigs.len() >= quorum)
            .map(|((view, hash), sigs)| (view, hash, sigs))
    }

    /// Forgets everything for views outside `low..=high` (keeps memory bounded when
    /// views change many times at one height).
    pub fn retain_views(&mut self, low: u64, high: u64) {
        self.proposals.retain(|v, _| (low..=high).contains(v));
        self.prepares.retain(|(v, _), _| (low..=high).contains(v));
        self.commits.retain(|(v, _), _| (low..=high).contains(v));
    }
}

/// Kind of a buffered message (part of its key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    PrePrepare,
    Prepare,
    Commit,
}

/// Verified messages for heights above the one being decided.
#[derive(Debug, Clone, Default)]
pub(crate) struct FutureBuffer {
    messages: BTreeMap<(u64, u64, ReplicaId, Kind), Message>,
}

impl FutureBuffer {
    /// Keeps `message`; the first message per key wins.
    pub fn insert(
        &mut self,
        height: u64,
        view: u64,
        from: ReplicaId,
        kind: Kind,
        message: Message,
    ) {
        self.messages
            .entry((height, view, from, kind))
            .or_insert(message);
    }

    /// Whether a message with this key is already buffered (checked before verifying).
    pub fn contains(&self, height: u64, view: u64, from: ReplicaId, kind: Kind) -> bool {
        self.messages.contains_key(&(height, view, from, kind))
    }

    /// Removes and returns the messages for `height`; drops those below it.
    pub fn take_height(&mut self, height: u64) -> Vec<Message> {
        let rest =
            self.messages
                .split_off(&(height.saturating_add(1), 0, ReplicaId(0), Kind::PrePrepare));
        let taken = std::mem::replace(&mut self.messages, rest);
        taken
            .into_iter()
            .filter(|((h, ..), _)| *h == height)
            .map(|(_, m)| m)
            .collect()
    }

    /// Forgets messages for views outside `low..=high`.
    pub fn retain_views(&mut self, low: u64, high: u64) {
        self.messages
            .retain(|(_, v, _, _), _| (low..=high).contains(v));
    }

    /// Number of buffered messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }
}
