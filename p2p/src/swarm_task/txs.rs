//! Transactions (`/tracechain/txs/1`): pushing a batch to every connected member, and handing
//! the batches peers push to us to the node.
//!
//! No signatures, forwarding or dedupe: the connections are already authenticated and every
//! member is connected to every other, so one unsigned copy per link reaches everyone, and the
//! node's mempool dedupes by transaction id.

use libp2p::PeerId;
use libp2p::request_response::{self, Message, ResponseChannel};
use tracing::{debug, warn};

use super::{SwarmTask, check_size};
use crate::codec::MessageAck;
use crate::error::{NetworkError, Rejection};
use crate::event::NetworkEvent;

impl SwarmTask {
    /// Sends `bytes` to every connected member; returns how many. No waiter is kept (and no
    /// entry in `pending_sends`, whose ids belong to the consensus behaviour): the answers only
    /// feed counters and logs.
    pub(super) fn push_txs(&mut self, bytes: Vec<u8>) -> Result<usize, NetworkError> {
        check_size(bytes.len(), self.limits.max_message_bytes)?;
        let members = self.connected_members();
        let Some((last, others)) = members.split_last() else {
            return Err(NetworkError::NoPeers);
        };
        let txs = &mut self.swarm.behaviour_mut().txs;
        for peer in others {
            txs.send_request(peer, bytes.clone());
        }
        // The last one takes the buffer itself: one copy fewer of up to `max_message_bytes`.
        txs.send_request(last, bytes);
        Ok(members.len())
    }

    pub(super) fn handle_txs_event(&mut self, event: request_response::Event<Vec<u8>, MessageAck>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.handle_pushed_txs(peer, request, channel),
            request_response::Event::Message {
                peer,
                message: Message::Response { response, .. },
                ..
            } => self.handle_push_answer(peer, response),
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "transaction push not delivered")
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                warn!(%peer, %error, "inbound transaction push failed")
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Delivers a push from a member or an observer to the node, or refuses it.
    pub(super) fn handle_pushed_txs(
        &mut self,
        peer: PeerId,
        bytes: Vec<u8>,
        channel: ResponseChannel<MessageAck>,
    ) {
        let ack = if self.roster.get(&peer).is_none() {
            // The allow list keeps such peers out; checked again because the node trusts `from`.
            self.counters.rejected_txs += 1;
            warn!(%peer, "transactions from a peer outside the roster refused");
            Err(Rejection::NotAMember)
        } else if self
            .events
            .try_send(NetworkEvent::Tx { from: peer, bytes })
            .is_err()
        {
            // Debug, not warn: under load this is the expected back-pressure, and counted.
            self.counters.dropped_txs += 1;
            debug!(%peer, dropped = self.counters.dropped_txs, "event channel full; transactions refused busy");
            Err(Rejection::Busy)
        } else {
            Ok(())
        };
        if self
            .swarm
            .behaviour_mut()
            .txs
            .send_response(channel, ack)
            .is_err()
        {
            debug!(%peer, "transaction pusher went away before the acknowledgement");
        }
    }

    /// The answer to one of our pushes: only a refusal is worth noting.
    pub(super) fn handle_push_answer(&mut self, peer: PeerId, ack: MessageAck) {
        match ack {
            Ok(()) => {}
            Err(Rejection::Busy) => {
                self.counters.busy_pushes += 1;
                debug!(%peer, busy = self.counters.busy_pushes, "peer busy; transaction push dropped there");
            }
            Err(rejection) => debug!(%peer, %rejection, "transaction push refused"),
        }
    }
}
