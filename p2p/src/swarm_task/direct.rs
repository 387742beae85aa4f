//! Direct consensus messages (`/tracechain/consensus/1`): send, broadcast, and the
//! acknowledgement of inbound messages.

use libp2p::PeerId;
use libp2p::request_response::{self, Message, OutboundRequestId, ResponseChannel};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use super::{SwarmTask, check_size};
use crate::codec::MessageAck;
use crate::error::{NetworkError, Rejection};
use crate::event::NetworkEvent;

impl SwarmTask {
    pub(super) fn handle_send(
        &mut self,
        to: PeerId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    ) {
        if let Err(e) = self.check_direct(&to, bytes.len()) {
            let _ = reply.send(Err(e));
            return;
        }
        self.queue_direct(to, bytes, Some(reply));
    }

    /// Queues a checked direct message; `waiter`, if any, hears how it went.
    fn queue_direct(
        &mut self,
        to: PeerId,
        bytes: Vec<u8>,
        waiter: Option<oneshot::Sender<Result<(), NetworkError>>>,
    ) {
        let id = self
            .swarm
            .behaviour_mut()
            .consensus
            .send_request(&to, bytes);
        self.pending_sends.insert(id, waiter);
    }

    pub(super) fn check_direct(&self, to: &PeerId, size: usize) -> Result<(), NetworkError> {
        check_size(size, self.limits.max_message_bytes)?;
        if !self.roster.is_member(to) {
            return Err(NetworkError::NotAMember { peer: *to });
        }
        Ok(())
    }

    /// Queues a direct message without a waiter for its acknowledgement.
    pub(super) fn post(&mut self, to: PeerId, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.check_direct(&to, bytes.len())?;
        self.queue_direct(to, bytes, None);
        Ok(())
    }

    pub(super) fn broadcast(&mut self, bytes: Vec<u8>) -> Result<usize, NetworkError> {
        check_size(bytes.len(), self.limits.max_message_bytes)?;
        let members = self.connected_members();
        for peer in &members {
            self.queue_direct(*peer, bytes.clone(), None);
        }
        Ok(members.len())
    }

    pub(super) fn handle_consensus_event(
        &mut self,
        event: request_response::Event<Vec<u8>, MessageAck>,
    ) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.handle_consensus_request(peer, request, channel),
            request_response::Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => self.finish_send(
                peer,
                request_id,
                response.map_err(|reason| NetworkError::Rejected { peer, reason }),
            ),
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => self.finish_send(
                peer,
                request_id,
                Err(NetworkError::RequestFailed {
                    peer,
                    reason: error.to_string(),
                }),
            ),
            request_response::Event::InboundFailure { peer, error, .. } => {
                warn!(%peer, %error, "inbound consensus message failed")
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    pub(super) fn handle_consensus_request(
        &mut self,
        peer: PeerId,
        bytes: Vec<u8>,
        channel: ResponseChannel<MessageAck>,
    ) {
        let ack = if !self.roster.is_member(&peer) {
            // Observers may read but must not inject consensus traffic.
            self.counters.rejected_consensus += 1;
            warn!(%peer, "consensus message from a non-member refused");
            Err(Rejection::NotAMember)
        } else if self
            .events
            .try_send(NetworkEvent::Consensus { from: peer, bytes })
            .is_err()
        {
            self.counters.dropped_consensus += 1;
            warn!(%peer, dropped = self.counters.dropped_consensus, "event channel full; consensus message refused busy");
            Err(Rejection::Busy)
        } else {
            Ok(())
        };
        if self
            .swarm
            .behaviour_mut()
            .consensus
            .send_response(channel, ack)
            .is_err()
        {
            debug!(%peer, "consensus sender went away before the acknowledgement");
        }
    }

    pub(super) fn finish_send(
        &mut self,
        peer: PeerId,
        id: OutboundRequestId,
        result: Result<(), NetworkError>,
    ) {
        match self.pending_sends.remove(&id) {
            Some(Some(waiter)) => drop(waiter.send(result)),
            Some(None) => {
                if let Err(e) = result {
                    debug!(%peer, error = %e, "posted or broadcast message not delivered");
                }
            }
            None => {}
        }
    }
}
