//! PBFT consensus (Castro & Liskov, OSDI '99 / TOCS 2002) as a pure state machine.
//!
//! No I/O, no clock, no randomness: inputs in, outputs out. The host (the node)
//! carries out the outputs. This crate must not depend on tokio, libp2p or rocksdb.
//!
//! Entry point: [`Replica::handle`]`(Input) -> Vec<Output>`. Start a replica with
//! [`Replica::new`] (fresh, at the host's chain head) or [`Replica::restore`] (from its
//! [`PersistentState`]), then feed [`Input::Start`]. See docs/CONSENSUS.md.
//!
//! Files, one concern each: `messages` (what replicas exchange), `signing` (their
//! signed bytes and checks), `certificate` (commit votes and certificates),
//! `validators`, `config`, `io` (inputs and outputs), `fault` (why peer input is
//! dropped), `state` (what is persisted),
//! `log` (the height being decided), `replica` (state, entry point, placement),
//! `normal_case` (pre-prepare, prepare, commit),
//! `view_change`, `catch_up`, `censorship`, `timers`, `error`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod catch_up;
mod censorship;
pub mod certificate;
pub mod config;
pub mod error;
pub mod fault;
pub mod io;
mod log;
pub mod messages;
mod normal_case;
pub mod replica;
pub mod signing;
pub mod state;
mod timers;
pub mod validators;
mod view_change;

pub use certificate::{
    BlockHash, COMMIT_VOTE_DOMAIN, CertificateError, CommitCertificate, commit_vote_bytes,
    sign_commit_vote,
};
pub use config::{Config, Limits, Timeouts};
pub use error::ConsensusError;
pub use fault::{MessageKind, PeerFault};
pub use io::{ChainHead, FetchedBlock, Input, Output, TimerId, TxId};
pub use messages::{Message, NewView, PrePrepare, PreparedCertificate, Status, ViewChange, Vote};
pub use replica::{Mode, Replica};
pub use signing::BlockHasher;
pub use state::{PersistentState, ViewStart, VoteRecord};
pub use validators::{ReplicaId, ValidatorSet};
