//! The crate's one error type.
//!
//! Errors caused by configuration are reported by [`crate::spawn`]; errors caused by a remote
//! peer (refusal, timeout, oversized frame) are reported to the caller of the handle method
//! that was waiting on that peer.

use std::fmt;

use libp2p::{Multiaddr, PeerId};

/// Why a remote peer answered a request with a refusal instead of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The remote node's event queue was full; the message was dropped there.
    Busy,
    /// The remote only accepts this protocol from members, and we are not one.
    NotAMember,
    /// The remote node did not produce an answer in time (or dropped the request).
    Unavailable,
    /// The answer the remote node produced exceeds the configured response limit.
    ResponseTooLarge,
    /// The request was malformed (for example an empty block range).
    BadRequest,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejection::Busy => "busy",
            Rejection::NotAMember => "not a member",
            Rejection::Unavailable => "unavailable",
            Rejection::ResponseTooLarge => "response too large",
            Rejection::BadRequest => "bad request",
        })
    }
}

/// Everything that can go wrong in the p2p crate.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The node's 32-byte Ed25519 secret key was rejected.
    #[error("invalid node secret key: {reason}")]
    InvalidSecretKey {
        /// What the key decoder said.
        reason: String,
    },
    /// A peer's 32-byte Ed25519 public key is not a valid curve point.
    #[error("invalid public key for peer {name}: {reason}")]
    InvalidPublicKey {
        /// The peer's name from the configuration.
        name: String,
        /// What the key decoder said.
        reason: String,
    },
    /// The same key appears twice in the configured peers and observers.
    #[error("peer {name} is listed twice")]
    DuplicatePeer {
        /// The name of the second entry.
        name: String,
    },
    /// A configuration value is out of range.
    #[error("invalid network config: {reason}")]
    InvalidConfig {
        /// Which value and why.
        reason: &'static str,
    },
    /// The libp2p transport or behaviour could not be built.
    #[error("cannot build the libp2p swarm: {reason}")]
    Build {
        /// What libp2p said.
        reason: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The configured listen address.
        addr: Multiaddr,
        /// What the transport said.
        reason: String,
    },
    /// A payload is larger than the configured limit; nothing was sent.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The payload size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The target of a direct message is not a configured member.
    #[error("peer {peer} is not a member")]
    NotAMember {
        /// The target.
        peer: PeerId,
    },
    /// The target of a block request is neither a member nor an observer.
    #[error("peer {peer} is not in the roster")]
    UnknownPeer {
        /// The target.
        peer: PeerId,
    },
    /// No member is connected, so a transaction push reached nobody (e.g. a single-node
    /// network, or a node cut off from the others).
    #[error("no member is connected")]
    NoPeers,
    /// The block range is empty (`from > to`).
    #[error("invalid block range {from}..={to}")]
    InvalidRange {
        /// First height asked for.
        from: u64,
        /// Last height asked for.
        to: u64,
    },
    /// A request could not be delivered or answered (dial failure, timeout, closed connection,
    /// a frame over the limit on either side).
    #[error("request to {peer} failed: {reason}")]
    RequestFailed {
        /// The remote peer.
        peer: PeerId,
        /// What request-response said.
        reason: String,
    },
    /// Too many direct messages to the peer were waiting behind those in flight; this one,
    /// the oldest, was dropped (consensus retransmits what still matters).
    #[error("too many messages to {peer} waiting; the oldest was dropped")]
    BacklogFull {
        /// The remote peer.
        peer: PeerId,
    },
    /// The remote peer answered with a refusal.
    #[error("peer {peer} rejected the request: {reason}")]
    Rejected {
        /// The remote peer.
        peer: PeerId,
        /// Its reason.
        reason: Rejection,
    },
    /// The network task has stopped (after [`crate::NetworkHandle::shutdown`]).
    #[error("the network task has stopped")]
    Stopped,
}
