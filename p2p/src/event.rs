//! What comes out of the network task: events for the node and a snapshot of counters.

use libp2p::PeerId;
use tokio::sync::oneshot;

/// Whether a connected peer is a consortium member or an observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerRole {
    /// A member: its node key is in the genesis.
    Member,
    /// An observer: may read (gossip, block sync) but not take part in consensus.
    Observer,
}

/// An event delivered to the node through the bounded event channel.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A transaction arrived by gossip. Delivered once per distinct payload (blake3 dedupe);
    /// never for our own publications.
    Tx {
        /// The peer that signed and published it (not the one that forwarded it).
        from: PeerId,
        /// The encoded transaction, at most `max_message_bytes`.
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
    /// Connected peers subscribed to the transaction topic.
    pub gossip_peers: usize,
    /// Connections refused because the remote key is neither a member's nor an observer's.
    pub refused_connections: u64,
    /// Gossip messages rejected (author not allowed, or oversized); not forwarded.
    pub rejected_gossip: u64,
    /// Valid gossip not delivered to the node because the event channel was full.
    pub dropped_gossip: u64,
    /// Direct consensus messages answered busy because the event channel was full.
    pub dropped_consensus: u64,
    /// Consensus messages refused because the sender is not a member.
    pub rejected_consensus: u64,
    /// Block requests answered busy (event channel full or too many pending).
    pub dropped_block_requests: u64,
    /// Connect/disconnect events not delivered because the event channel was full.
    pub dropped_peer_events: u64,
}
