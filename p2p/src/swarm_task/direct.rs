//! Direct consensus messages (`/tracechain/consensus/1`): send, broadcast, and the
//! acknowledgement of inbound messages.
//!
//! At most [`MAX_DIRECT_IN_FLIGHT`] messages to one member are in flight at once (each holds
//! a stream until the member acknowledges it); the rest wait in a bounded per-member backlog,
//! oldest first. Without the bound, a member that was paused or cut off came back to a burst
//! of every message sent to it meanwhile, each on its own stream, beyond the per-connection
//! stream limit of its handlers, which then dropped inbound streams by the thousand. With
//! it, a correct member never opens more streams to another than that member accepts. When
//! the backlog is full the oldest message is dropped and counted: consensus retransmits, and
//! a message that waited that long is stale anyway.

use std::collections::VecDeque;

use libp2p::PeerId;
use libp2p::request_response::{self, Message, OutboundRequestId, ResponseChannel};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use super::{SendWaiter, SwarmTask, check_size};
use crate::codec::MessageAck;
use crate::error::{NetworkError, Rejection};
use crate::event::NetworkEvent;

/// Direct messages to one member in flight (sent, not yet acknowledged) at once. Sized so
/// that what two members have in flight to each other, with the transaction push and block
/// sync streams, stays well inside one connection's stream limit
/// (`behaviour::MAX_CONCURRENT_STREAMS`, shared by inbound and outbound streams).
pub const MAX_DIRECT_IN_FLIGHT: usize = 16;
/// Direct messages to one member waiting behind those in flight.
pub const MAX_DIRECT_BACKLOG: usize = 512;
/// Bytes of direct messages to one member waiting behind those in flight.
const MAX_DIRECT_BACKLOG_BYTES: usize = 64 * 1024 * 1024;

/// Direct messages to one member: how many are in flight, and those waiting, oldest first.
#[derive(Default)]
pub(super) struct DirectLink {
    in_flight: usize,
    backlog: VecDeque<(Vec<u8>, SendWaiter)>,
    backlog_bytes: usize,
}

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

    /// Queues a checked direct message; `waiter`, if any, hears how it went. It leaves at
    /// once if fewer than [`MAX_DIRECT_IN_FLIGHT`] are in flight to `to`, else it waits.
    fn queue_direct(&mut self, to: PeerId, bytes: Vec<u8>, waiter: SendWaiter) {
        let link = self.direct_links.entry(to).or_default();
        link.backlog_bytes += bytes.len();
        link.backlog.push_back((bytes, waiter));
        let mut shed = 0u64;
        while link.backlog.len() > MAX_DIRECT_BACKLOG
            || (link.backlog_bytes > MAX_DIRECT_BACKLOG_BYTES && link.backlog.len() > 1)
        {
            let Some((old, waiter)) = link.backlog.pop_front() else {
                break;
            };
            link.backlog_bytes -= old.len();
            shed += 1;
            if let Some(waiter) = waiter {
                let _ = waiter.send(Err(NetworkError::BacklogFull { peer: to }));
            }
        }
        if shed > 0 {
            self.counters.shed_consensus += shed;
            debug!(peer = %to, shed, total = self.counters.shed_consensus, "direct backlog full; oldest messages dropped");
        }
        self.send_backlog(to);
    }

    /// Sends waiting messages to `to` while fewer than [`MAX_DIRECT_IN_FLIGHT`] are in flight.
    fn send_backlog(&mut self, to: PeerId) {
        let Some(link) = self.direct_links.get_mut(&to) else {
            return;
        };
        let mut sent = Vec::new();
        while link.in_flight < MAX_DIRECT_IN_FLIGHT {
            let Some((bytes, waiter)) = link.backlog.pop_front() else {
                break;
            };
            link.backlog_bytes -= bytes.len();
            link.in_flight += 1;
            sent.push((bytes, waiter));
        }
        if link.in_flight == 0 && link.backlog.is_empty() {
            self.direct_links.remove(&to);
        }
        for (bytes, waiter) in sent {
            let id = self
                .swarm
                .behaviour_mut()
                .consensus
                .send_request(&to, bytes);
            self.pending_sends.insert(id, (to, waiter));
        }
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
        let Some((to, waiter)) = self.pending_sends.remove(&id) else {
            return;
        };
        match waiter {
            Some(waiter) => drop(waiter.send(result)),
            None => {
                if let Err(e) = result {
                    debug!(%peer, error = %e, "posted or broadcast message not delivered");
                }
            }
        }
        if let Some(link) = self.direct_links.get_mut(&to) {
            link.in_flight = link.in_flight.saturating_sub(1);
        }
        self.send_backlog(to);
    }
}
