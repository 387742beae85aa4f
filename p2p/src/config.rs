//! What the operator supplies to start the network: the node key, the listen address, the
//! members (from the genesis) and observers, and every bound.
//!
//! Defaults are chosen for a consortium of a handful of members on a LAN or WAN; tests shrink
//! the timeouts. [`NetworkConfig::validate`] rejects values that would make a bound useless.

use std::time::Duration;

use libp2p::Multiaddr;

use crate::error::NetworkError;

/// Default limit for a transaction push or a direct consensus message (1 MiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Default limit for one block-sync response (16 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// One member of the consortium, as listed in the genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// Human-readable member name (unique), used in logs and events.
    pub name: String,
    /// The member's validator node key (Ed25519 public key); its libp2p `PeerId` derives from it.
    pub public_key: [u8; 32],
    /// Where to dial the member; `None` if it only dials us.
    pub addr: Option<Multiaddr>,
}

/// Configuration of one node's network.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// This node's Ed25519 node secret key (32 bytes).
    pub secret_key: [u8; 32],
    /// Address to listen on, e.g. `/ip4/0.0.0.0/tcp/7100` (`tcp/0` picks a free port).
    pub listen: Multiaddr,
    /// The members. An entry with this node's own key is allowed and skipped.
    pub peers: Vec<PeerSpec>,
    /// Public keys of observers: allowed to connect, push transactions and ask for blocks, but
    /// not to send consensus messages; never dialled by us and never pushed transactions.
    pub observers: Vec<[u8; 32]>,
    /// Largest transaction push or direct consensus message, in bytes (enforced on send and on read).
    pub max_message_bytes: usize,
    /// Largest block-sync response, in bytes (enforced on send and on read).
    pub max_response_bytes: usize,
    /// How long an outbound request waits for its answer; also how long the node has to answer
    /// an inbound block request.
    pub request_timeout: Duration,
    /// Capacity of the event channel. When it is full, pushed transactions, direct messages and
    /// block requests are answered with [`crate::Rejection::Busy`] (and counted).
    pub event_capacity: usize,
    /// Most inbound block requests waiting for the node's answer at once; more are refused busy.
    pub max_pending_block_requests: usize,
    /// Most bytes of transaction batches queued for one member (pushes go out one at a time
    /// per member, in order); a push that would exceed it is not queued for that member and
    /// is counted in `dropped_pushes`.
    pub max_push_queue_bytes: usize,
    /// Where pushed transaction batches go, if not to the event channel: a bounded channel of
    /// `(sender, bytes)` that the node drains at its own pace. When it is full, pushes are
    /// answered busy and their senders send them again, in order, so a node whose admission
    /// is behind slows its peers' pushes down instead of dropping them.
    pub tx_sink: Option<tokio::sync::mpsc::Sender<(libp2p::PeerId, Vec<u8>)>>,
    /// First redial delay after a member disconnects or a dial fails.
    pub redial_backoff_min: Duration,
    /// Cap of the exponential redial delay.
    pub redial_backoff_max: Duration,
    /// How long an idle connection is kept open.
    pub idle_connection_timeout: Duration,
}

impl NetworkConfig {
    /// A configuration with default bounds.
    pub fn new(
        secret_key: [u8; 32],
        listen: Multiaddr,
        peers: Vec<PeerSpec>,
        observers: Vec<[u8; 32]>,
    ) -> Self {
        NetworkConfig {
            secret_key,
            listen,
            peers,
            observers,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            request_timeout: Duration::from_secs(10),
            event_capacity: 1024,
            max_pending_block_requests: 32,
            max_push_queue_bytes: 64 * 1024 * 1024,
            tx_sink: None,
            redial_backoff_min: Duration::from_millis(500),
            redial_backoff_max: Duration::from_secs(30),
            idle_connection_timeout: Duration::from_secs(60),
        }
    }

    /// Checks that every bound is usable.
    pub fn validate(&self) -> Result<(), NetworkError> {
        let invalid = |reason| Err(NetworkError::InvalidConfig { reason });
        // Frames carry a u32 length prefix.
        let frame_max = u32::MAX as usize;
        if self.max_message_bytes == 0 || self.max_message_bytes > frame_max {
            return invalid("max_message_bytes must be in 1..=u32::MAX");
        }
        if self.max_response_bytes == 0 || self.max_response_bytes > frame_max {
            return invalid("max_response_bytes must be in 1..=u32::MAX");
        }
        if self.request_timeout.is_zero() {
            return invalid("request_timeout must be positive");
        }
        if self.event_capacity == 0 {
            return invalid("event_capacity must be positive");
        }
        if self.max_pending_block_requests == 0 {
            return invalid("max_pending_block_requests must be positive");
        }
        if self.redial_backoff_min.is_zero() || self.redial_backoff_max < self.redial_backoff_min {
            return invalid("redial backoff needs 0 < min <= max");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> NetworkConfig {
        let listen = "/ip4/127.0.0.1/tcp/0".parse().expect("literal multiaddr");
        NetworkConfig::new([1; 32], listen, Vec::new(), Vec::new())
    }

    #[test]
    fn defaults_are_valid() {
        assert!(config().validate().is_ok());
    }

    #[test]
    fn useless_bounds_are_rejected() {
        let cases: [fn(&mut NetworkConfig); 6] = [
            |c| c.max_message_bytes = 0,
            |c| c.max_response_bytes = 0,
            |c| c.request_timeout = Duration::ZERO,
            |c| c.event_capacity = 0,
            |c| c.max_pending_block_requests = 0,
            |c| c.redial_backoff_max = Duration::from_millis(1),
        ];
        for tweak in cases {
            let mut c = config();
            tweak(&mut c);
            assert!(matches!(
                c.validate(),
                Err(NetworkError::InvalidConfig { .. })
            ));
        }
    }
}
