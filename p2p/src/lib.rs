//! Permissioned libp2p networking for tracechain.
//!
//! One task owns the libp2p `Swarm` (see [`spawn`]); the rest of the node talks to it through
//! a cloneable [`NetworkHandle`] (commands with `oneshot` replies) and receives
//! [`NetworkEvent`]s from a bounded channel. The crate is byte-level: it carries opaque encoded
//! protobuf bytes and knows nothing of ledger or consensus types.
//!
//! Protocols (all over TCP + noise + yamux, see `docs/NETWORK.md`):
//! - identify (`/tracechain/id/1`), for diagnostics;
//! - `/tracechain/txs/1`, request-response with a one-byte acknowledgement, for transaction
//!   batches pushed directly to every connected member (unsigned, never forwarded: the
//!   connections are authenticated and the members fully connected);
//! - `/tracechain/consensus/1`, the same framing, for direct consensus messages;
//! - `/tracechain/sync/1`, request-response for block ranges.
//!
//! Only peers whose Ed25519 key is a member's node key or a configured observer key may
//! connect; every other connection is refused once its noise handshake reveals the key, logged
//! at `warn` and counted in [`NetworkStats::refused_connections`].
//!
//! Module map: [`config`] (what the operator supplies), `roster` (who may connect),
//! `codec` (wire framing), `behaviour` (the composed libp2p behaviour), `redial` (backoff),
//! `swarm_task` (the task that owns the Swarm), [`handle`] (the API), [`event`] (what comes
//! out), [`error`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod behaviour;
mod codec;
mod command;
pub mod config;
pub mod error;
pub mod event;
pub mod handle;
mod redial;
mod roster;
mod swarm_task;

pub use config::{NetworkConfig, PeerSpec};
pub use error::{NetworkError, Rejection};
pub use event::{NetworkEvent, NetworkStats, PeerRole};
pub use handle::NetworkHandle;
pub use libp2p::{Multiaddr, PeerId};
pub use roster::{node_public_key, peer_id_from_public_key};
pub use swarm_task::{MAX_DIRECT_BACKLOG, MAX_DIRECT_IN_FLIGHT, spawn};
