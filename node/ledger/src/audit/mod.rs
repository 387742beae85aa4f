//! The audit bundle: a shipment's history that anyone can check offline.
//!
//! A node exports (`tracechain_node::audit::bundle::build`) the shipment's events and the
//! lifecycle transactions of its devices, each with Merkle paths to a block header, those
//! headers with their commit certificates, and the genesis. [`verify::verify`] checks all of it
//! with no node and no database, then replays the proven transactions through the real
//! ledger to recompute the twin and its verdict. [`report`] and [`svg`] turn the result
//! into text, CSV and a chart. What the checks prove, and what they cannot, is written
//! down in docs/AUDIT.md.
//!
//! Depends on the ledger, certificate, merkle and tx modules; nothing here depends on it.

pub mod report;
pub mod svg;
pub mod verify;

use prost::Message as _;
use tracechain_proto::v1 as pb;

/// The bundle format version this build writes and reads.
pub const BUNDLE_VERSION: u32 = 1;

/// Why a bundle does not verify.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
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

/// Largest bundle file accepted (bytes).
pub const MAX_BUNDLE_BYTES: usize = 1 << 30;

/// Most transactions one bundle may hold; a bigger history is refused rather than
/// exhausting the verifier's memory.
pub const MAX_BUNDLE_TXS: usize = 1_000_000;

/// Decodes a bundle and insists on the canonical encoding: re-encoding must give the
/// same bytes. So no byte of the file is without meaning — an unknown field, a
/// padded varint or a repeated field cannot hide in it unnoticed.
pub fn decode(bytes: &[u8]) -> Result<pb::AuditBundle, AuditError> {
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(AuditError::Malformed(format!(
            "{} bytes is larger than the {MAX_BUNDLE_BYTES}-byte limit",
            bytes.len()
        )));
    }
    let bundle = pb::AuditBundle::decode(bytes)
        .map_err(|e| AuditError::Malformed(format!("does not decode: {e}")))?;
    if bundle.encode_to_vec() != bytes {
        return Err(AuditError::Malformed(
            "not canonically encoded (unknown fields, or fields out of order or padded)".into(),
        ));
    }
    Ok(bundle)
}
