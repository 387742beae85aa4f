//! Block sync (`/tracechain/sync/1`): our requests, and inbound requests handed to the node
//! and answered when it replies (bounded in number, time and size).

use libp2p::PeerId;
use libp2p::request_response::{self, Message, OutboundRequestId, ResponseChannel};
use tokio::sync::oneshot;
use tracing::{debug, error, warn};

use super::{BlockReply, BlocksWaiter, Limits, SwarmTask};
use crate::codec::{BlockRange, SyncResponse};
use crate::error::{NetworkError, Rejection};
use crate::event::NetworkEvent;

impl SwarmTask {
    pub(super) fn handle_request_blocks(
        &mut self,
        peer: PeerId,
        range: BlockRange,
        reply: BlocksWaiter,
    ) {
        if self.roster.get(&peer).is_none() {
            let _ = reply.send(Err(NetworkError::UnknownPeer { peer }));
            return;
        }
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, range);
        self.pending_block_requests.insert(id, reply);
    }

    pub(super) fn handle_block_reply(&mut self, reply: BlockReply) {
        if reply.response == Err(Rejection::ResponseTooLarge) {
            error!(peer = %reply.peer, limit = self.limits.max_response_bytes, "the node's block response exceeds max_response_bytes; refused");
        }
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(reply.channel, reply.response)
            .is_err()
        {
            debug!(peer = %reply.peer, "block request closed before the answer was ready");
        }
    }

    pub(super) fn handle_sync_event(
        &mut self,
        event: request_response::Event<BlockRange, SyncResponse>,
    ) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.handle_block_request(peer, request, channel),
            request_response::Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => self.finish_block_request(
                request_id,
                response.map_err(|reason| NetworkError::Rejected { peer, reason }),
            ),
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => self.finish_block_request(
                request_id,
                Err(NetworkError::RequestFailed {
                    peer,
                    reason: error.to_string(),
                }),
            ),
            request_response::Event::InboundFailure { peer, error, .. } => {
                warn!(%peer, %error, "inbound block request failed")
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    pub(super) fn handle_block_request(
        &mut self,
        peer: PeerId,
        range: BlockRange,
        channel: ResponseChannel<SyncResponse>,
    ) {
        if range.from > range.to {
            warn!(%peer, from = range.from, to = range.to, "block request with an empty range");
            return self.refuse_block_request(peer, channel, Rejection::BadRequest);
        }
        if self.block_replies.len() >= self.limits.max_pending_block_requests {
            return self.refuse_block_request(peer, channel, Rejection::Busy);
        }
        let (reply, answer) = oneshot::channel();
        let event = NetworkEvent::BlockRequest {
            from: peer,
            from_height: range.from,
            to_height: range.to,
            reply,
        };
        if self.events.try_send(event).is_err() {
            return self.refuse_block_request(peer, channel, Rejection::Busy);
        }
        // Wait for the node's answer off the Swarm's path, bounded in time and size.
        let Limits {
            request_timeout,
            max_response_bytes,
            ..
        } = self.limits;
        self.block_replies.push(Box::pin(async move {
            let response = match tokio::time::timeout(request_timeout, answer).await {
                Ok(Ok(blocks)) if blocks.len() <= max_response_bytes => Ok(blocks),
                Ok(Ok(_)) => Err(Rejection::ResponseTooLarge),
                Ok(Err(_)) | Err(_) => Err(Rejection::Unavailable),
            };
            BlockReply {
                peer,
                channel,
                response,
            }
        }));
    }

    pub(super) fn refuse_block_request(
        &mut self,
        peer: PeerId,
        channel: ResponseChannel<SyncResponse>,
        rejection: Rejection,
    ) {
        if rejection == Rejection::Busy {
            self.counters.dropped_block_requests += 1;
            warn!(%peer, dropped = self.counters.dropped_block_requests, "block request refused busy");
        }
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, Err(rejection))
            .is_err()
        {
            debug!(%peer, "block requester went away before the refusal");
        }
    }

    pub(super) fn finish_block_request(
        &mut self,
        id: OutboundRequestId,
        result: Result<Vec<u8>, NetworkError>,
    ) {
        if let Some(waiter) = self.pending_block_requests.remove(&id) {
            let _ = waiter.send(result);
        }
    }
}
