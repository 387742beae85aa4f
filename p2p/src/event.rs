//! What comes out of the network task: events for the node and a snapshot of counters.

use libp2p::PeerId;
use tokio::sync::oneshot;

/// Whether a connected peer is a consortium member or an observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerRole {
    /// A member: its node key is in the genesis.
    Member,
    /// An observer: may read (block sync) and push transactions to members, but not take part
    /// in consensus.
    Observer,
}

/// An event delivered to the node through the bounded event channel.
#[derive(Debug)]
pub enum NetworkEvent {
    /// Transactions pushed to us directly by a member or an observer (`/tracechain/txs/1`).
    /// Delivered once per push received, with no deduplication here: the same bytes pushed
    /// twice, or by two peers, arrive twice (the node's mempool dedupes by transaction id).
    /// Never for our own pushes, and never forwarded by the network.
    Tx {
        /// The peer that pushed them (authenticated by the noise handshake).
        from: PeerId,
        /// The encoded transactions, at most `max_message_bytes`.
        bytes: Vec<u8>,
    },
    /// A direct consensus message from a member.
    Consensus {
        /// The member that sent it (authenticated by the noise handshake).
        from: PeerId,
        /// The encoded message, at most `max_message_bytes`.
        bytes: Vec<u8>,
    },
    /// A peer asks for the blocks `from_height..=to_height`. Answer through `reply` within the
    /// request timeout with the encoded blocks and certificates (at most `max_response_bytes`);
    /// dropping `reply` answers "unavailable".
    BlockRequest {
        /// The asking peer (member or observer).
        from: PeerId,
        /// First height asked for.
        from_height: u64,
        /// Last height asked for (inclusive, `>= from_height`).
        to_height: u64,
        /// Where the answer goes.
        reply: oneshot::Sender<Vec<u8>>,
    },
    /// The first connection to an allowed peer was established.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Its configured name.
        name: String,
        /// Member or observer.
        role: PeerRole,
    },
    /// The last connection to an allowed peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
        /// Its configured name.
        name: String,
        /// Member or observer.
        role: PeerRole,
    },
}

/// A snapshot of the network's state and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkStats {
    /// This node's `PeerId`.
    pub local_peer_id: PeerId,
    /// Connected members, sorted.
    pub connected_members: Vec<PeerId>,
    /// Connected observers, sorted.
    pub connected_observers: Vec<PeerId>,
    /// Connections refused because the remote key is neither a member's nor an observer's.
    pub refused_connections: u64,
    /// Transaction pushes refused because the sender is neither a member nor an observer.
    pub rejected_txs: u64,
    /// Transaction pushes answered busy because the event channel was full.
    pub dropped_txs: u64,
    /// Our transaction pushes that a peer answered busy (its event channel was full); each is
    /// sent again shortly, before anything pushed after it.
    pub busy_pushes: u64,
    /// Our transaction batches not delivered to a member: its push queue was full, or it
    /// disconnected with batches still queued.
    pub dropped_pushes: u64,
    /// Direct consensus messages answered busy because the event channel was full.
    pub dropped_consensus: u64,
    /// Our direct consensus messages dropped, oldest first, because too many to one member
    /// were waiting behind those in flight (see [`crate::MAX_DIRECT_IN_FLIGHT`]).
    pub shed_consensus: u64,
    /// Consensus messages refused because the sender is not a member.
    pub rejected_consensus: u64,
    /// Block requests answered busy (event channel full or too many pending).
    pub dropped_block_requests: u64,
    /// Connect/disconnect events not delivered because the event channel was full.
    pub dropped_peer_events: u64,
}
