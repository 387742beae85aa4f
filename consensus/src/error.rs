//! The crate's one error type: why a replica cannot be built or restored.
//!
//! Faults caused by peers never surface as errors: the state machine drops such input
//! and reports it as an output (see `fault.rs`). Errors here are local faults of the
//! host's configuration.

use crate::certificate::CertificateError;
use crate::validators::ReplicaId;

/// Why a [`Replica`](crate::Replica) cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusError {
    /// The configured replica id is not in the validator set.
    #[error("{replica} is not a member of the validator set of {n}")]
    NotAMember {
        /// The configured id.
        replica: ReplicaId,
        /// Size of the validator set.
        n: usize,
    },
    /// The signing key does not belong to the configured replica.
    #[error("the signing key is not the node key of {replica}")]
    KeyMismatch {
        /// The configured id.
        replica: ReplicaId,
    },
    /// A chain head above genesis needs the commit certificate of its block.
    #[error("chain head at height {height} has no commit certificate")]
    MissingHeadCertificate {
        /// Height of the head.
        height: u64,
    },
    /// The chain head's certificate does not prove the head.
    #[error("chain head certificate at height {height} is invalid: {source}")]
    BadHeadCertificate {
        /// Height of the head.
        height: u64,
        /// What is wrong with it.
        source: CertificateError,
    },
}
