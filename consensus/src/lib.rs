//! PBFT consensus (Castro & Liskov, OSDI '99 / TOCS 2002) as a pure state machine.
//!
//! No I/O, no clock, no randomness: inputs in, outputs out. The host (the node)
//! carries out the outputs. This crate must not depend on tokio, libp2p or rocksdb.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod certificate;
pub mod validators;

pub use certificate::{
    BlockHash, COMMIT_VOTE_DOMAIN, CertificateError, CommitCertificate, commit_vote_bytes,
    sign_commit_vote,
};
pub use validators::{ReplicaId, ValidatorSet};
