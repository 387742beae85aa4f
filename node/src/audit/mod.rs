//! The audit bundle: a shipment's history that anyone can check offline.
//!
//! A node exports ([`bundle::build`]) the shipment's events and the lifecycle
//! transactions of its devices, each with Merkle paths to a block header, those headers
//! with their commit certificates, and the genesis. [`verify::verify`] checks all of it
//! with no node and no database, then replays the proven transactions through the real
//! ledger to recompute the twin and its verdict. [`report`] and [`svg`] turn the result
//! into text, CSV and a chart. What the checks prove, and what they cannot, is written
//! down in docs/AUDIT.md.
//!
//! Depends on the ledger, chain and tx modules; nothing here depends on it.

pub mod bundle;
pub mod report;
pub mod svg;
pub mod verify;

#[cfg(test)]
mod tests;

/// The bundle format version this build writes and reads.
pub const BUNDLE_VERSION: u32 = 1;

/// Why a bundle cannot be built or does not verify.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The shipment is not in the node's state.
    #[error("shipment {0} does not exist")]
    UnknownShipment(String),
    /// The node's store failed or holds a corrupt record (a local fault of the exporter).
    #[error("store: {0}")]
    Store(String),
    /// The bundle is not a well-formed, canonically encoded bundle.
    #[error("malformed bundle: {0}")]
    Malformed(String),
    /// The genesis in the bundle is not acceptable, or not the one expected.
    #[error("genesis: {0}")]
    Genesis(String),
    /// A block header or its certificate does not check.
    #[error("block {height}: {reason}")]
    Block {
        /// The header's height (as claimed).
        height: u64,
        /// What failed.
        reason: String,
    },
    /// A transaction, its signature, its result or one of its proofs does not check.
    #[error("transaction at height {height} index {index}: {reason}")]
    Tx {
        /// Claimed height.
        height: u64,
        /// Claimed index.
        index: u32,
        /// What failed.
        reason: String,
    },
    /// The set of transactions is incomplete or inconsistent (a dropped event).
    #[error("incomplete history: {0}")]
    Incomplete(String),
    /// Replaying the proven transactions does not give the proven results.
    #[error("replay: {0}")]
    Replay(String),
}
