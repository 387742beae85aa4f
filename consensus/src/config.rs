//! What a replica is told at start: who it is, its key, the host's block-hash rule,
//! its timeouts and the bounds that keep its memory finite whatever peers send.

use ed25519_dalek::SigningKey;

use crate::signing::BlockHasher;
use crate::validators::{ReplicaId, ValidatorSet};

/// A replica's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The members and the chain id.
    pub validators: ValidatorSet,
    /// This replica.
    pub me: ReplicaId,
    /// This replica's node key (must match `validators.key(me)`).
    pub key: SigningKey,
    /// The host's rule to hash a block (must agree with the hashes it passes in).
    pub block_hasher: BlockHasher,
    /// Timer durations.
    pub timeouts: Timeouts,
    /// Bounds on what the replica keeps.
    pub limits: Limits,
}

/// Timer durations, in milliseconds of the host's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// Time a view gets to commit the current height before replicas ask for the
    /// next view; doubled for each consecutive failed view (§4.5.2).
    pub view_base_ms: u64,
    /// Cap of the doubled view timeout.
    pub view_max_ms: u64,
    /// Interval at which a stalled replica re-sends its current messages (PBFT
    /// assumes retransmission over lossy links, §4.1).
    pub retransmit_ms: u64,
    /// A transaction seen but not committed for between one and two of these
    /// intervals makes a replica ask for a view change (request timer, §4.4).
    pub censorship_ms: u64,
    /// Time after which an unanswered block fetch is retried from another peer.
    pub fetch_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            view_base_ms: 2_000,
            view_max_ms: 60_000,
            retransmit_ms: 1_000,
            censorship_ms: 10_000,
            fetch_ms: 3_000,
        }
    }
}

/// Bounds that keep a replica's memory finite whatever peers send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest block accepted in a pre-prepare or prepared certificate.
    pub max_block_bytes: usize,
    /// Most transactions tracked for the censorship timer.
    pub max_tracked_txs: usize,
    /// Messages for heights up to `next + height_window` are buffered; beyond that
    /// they only prove that the replica is behind.
    pub height_window: u64,
    /// Votes are kept for views within this distance of the current view.
    pub view_window: u64,
    /// Most blocks asked for in one fetch.
    pub max_fetch_blocks: u64,
    /// View changes for views further ahead than this are ignored (a correct replica
    /// moves one view at a time; a far-ahead one is caught up by a new-view message).
    pub max_view_jump: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_block_bytes: 16 << 20,
            max_tracked_txs: 100_000,
            height_window: 2,
            view_window: 3,
            max_fetch_blocks: 64,
            max_view_jump: 100,
        }
    }
}

impl Config {
    /// A configuration with default timeouts and limits.
    pub fn new(
        validators: ValidatorSet,
        me: ReplicaId,
        key: SigningKey,
        block_hasher: BlockHasher,
    ) -> Self {
        Self {
            validators,
            me,
            key,
            block_hasher,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
        }
    }
}
