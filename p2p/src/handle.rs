//! The cloneable handle through which the node uses the network.
//!
//! Each method sends a `Command` to the swarm task over a bounded channel (so a flood of
//! calls waits instead of growing memory) and awaits the task's `oneshot` answer.

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use crate::command::Command;
use crate::error::NetworkError;
use crate::event::NetworkStats;

/// A handle to the network task. Cheap to clone; all clones drive the same task.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
}

impl NetworkHandle {
    pub(crate) fn new(commands: mpsc::Sender<Command>, local_peer_id: PeerId) -> Self {
        NetworkHandle {
            commands,
            local_peer_id,
        }
    }

    /// This node's `PeerId` (derived from its node key).
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// The addresses the node listens on; waits until the first one is bound.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        self.call(|reply| Command::ListenAddrs { reply }).await
    }

    /// Pushes encoded transactions to every connected member (never to observers or to
    /// ourselves) without waiting for acknowledgements; returns how many members it was
    /// queued for. Each member receives a node's pushes in the order they were made.
    /// Receivers do not forward them, and every push is delivered again (no dedupe here).
    /// Fails with [`NetworkError::NoPeers`] when no member is connected.
    ///
    /// Pushes waiting for the same member may be **concatenated** into one delivery (up to
    /// `max_message_bytes`), so a payload must be a format in which concatenation is the
    /// union: an encoded protobuf message whose fields are repeated is (decoding the
    /// concatenation of two encodings merges them, appending repeated fields).
    pub async fn push_txs(&self, bytes: Vec<u8>) -> Result<usize, NetworkError> {
        self.call(|reply| Command::PushTxs { bytes, reply }).await?
    }

    /// Sends a consensus message directly to a member and waits for its acknowledgement
    /// (the message is in the remote node's queue).
    pub async fn send(&self, to: PeerId, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.call(|reply| Command::Send { to, bytes, reply })
            .await?
    }

    /// Sends a consensus message directly to a member **without** waiting for its
    /// acknowledgement, as [`broadcast`](Self::broadcast) does: returns once the message is
    /// queued on the connection. An error says only that it could not be queued (not a
    /// member, too large, the network stopped); a delivery that fails later is logged. A
    /// consensus host uses this, so that a member that never acknowledges cannot hold it
    /// up for the request timeout each time it is sent something.
    pub async fn post(&self, to: PeerId, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.call(|reply| Command::Post { to, bytes, reply })
            .await?
    }

    /// Sends a consensus message to every connected member without waiting for
    /// acknowledgements; returns how many members it was sent to.
    pub async fn broadcast(&self, bytes: Vec<u8>) -> Result<usize, NetworkError> {
        self.call(|reply| Command::Broadcast { bytes, reply })
            .await?
    }

    /// Asks `peer` for the blocks `from..=to` and returns the bytes its node answered.
    pub async fn request_blocks(
        &self,
        peer: PeerId,
        from: u64,
        to: u64,
    ) -> Result<Vec<u8>, NetworkError> {
        if from > to {
            return Err(NetworkError::InvalidRange { from, to });
        }
        self.call(|reply| Command::RequestBlocks {
            peer,
            from,
            to,
            reply,
        })
        .await?
    }

    /// A snapshot of connections and counters.
    pub async fn stats(&self) -> Result<NetworkStats, NetworkError> {
        self.call(|reply| Command::Stats { reply }).await
    }

    /// Stops the network task and waits until its listener and connections are closed.
    /// Calling it on a stopped network does nothing.
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Shutdown { done }).await.is_ok() {
            // An error only means the task is already gone, which is what we asked for.
            let _ = wait.await;
        }
    }

    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetworkError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| NetworkError::Stopped)?;
        answer.await.map_err(|_| NetworkError::Stopped)
    }
}
