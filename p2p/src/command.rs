//! Commands from [`crate::NetworkHandle`] to the swarm task, each with its `oneshot` reply.

use libp2p::{Multiaddr, PeerId};
use tokio::sync::oneshot;

use crate::error::NetworkError;
use crate::event::NetworkStats;

/// One request to the task that owns the Swarm.
#[derive(Debug)]
pub(crate) enum Command {
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    PushTxs {
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<usize, NetworkError>>,
    },
    Send {
        to: PeerId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    Post {
        to: PeerId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    Broadcast {
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<usize, NetworkError>>,
    },
    RequestBlocks {
        peer: PeerId,
        from: u64,
        to: u64,
        reply: oneshot::Sender<Result<Vec<u8>, NetworkError>>,
    },
    Stats {
        reply: oneshot::Sender<NetworkStats>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}
