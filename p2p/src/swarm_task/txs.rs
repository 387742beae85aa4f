//! Transactions (`/tracechain/txs/1`): pushing batches to every connected member, and handing
//! the batches peers push to us to the node.
//!
//! No signatures, forwarding or dedupe: the connections are already authenticated and every
//! member is connected to every other, so one unsigned copy per link reaches everyone, and the
//! node's mempool dedupes by transaction id.
//!
//! **Order.** Each request-response exchange runs on its own substream, so two pushes in
//! flight at once can arrive in either order; but the node relies on a member's batches
//! arriving in the order it pushed them (a device's readings are pushed in sequence order,
//! and a primary that sees reading 6 before reading 5 proposes 6 and makes 5 a replay). So
//! each member gets its own queue ([`PushLink`]): one request in flight, the next sent when
//! the previous is acknowledged, carrying every batch queued meanwhile (concatenated, up to
//! `max_message_bytes`; see [`crate::NetworkHandle::push_txs`]); a batch answered busy is sent again after [`BUSY_RETRY`], before
//! anything behind it; one that timed out is sent again while the member stays connected.
//! Queues are bounded in bytes; when a member disconnects its queue is dropped (it learns
//! those transactions from the proposals that carry them).

use std::collections::VecDeque;
use std::time::Duration;

use futures::FutureExt;
use libp2p::PeerId;
use libp2p::request_response::{self, Message, OutboundRequestId, ResponseChannel};
use tracing::{debug, warn};

use super::{SwarmTask, check_size};
use crate::codec::MessageAck;
use crate::error::{NetworkError, Rejection};
use crate::event::NetworkEvent;

/// Most bytes of queued batches concatenated into one request (a single larger batch still
/// goes alone, up to `max_message_bytes`).
const MAX_COALESCED_BYTES: usize = 1024 * 1024;

/// Pause before a batch the member answered busy is sent again.
pub(super) const BUSY_RETRY: Duration = Duration::from_millis(20);

/// Times in a row a push in flight may fail with an I/O error and be sent again before it
/// is dropped. A connection that breaks mid-stream (a member paused and resumed, a link
/// replaced) fails the push in flight this way, and the next attempt goes through; a
/// member that fails every attempt must not hold up its queue for ever.
pub(super) const MAX_PUSH_IO_RETRIES: u32 = 8;

/// The batches waiting for one member, oldest first; the first `in_flight.1` are in flight
/// (sent concatenated as one request) or waiting to be sent again.
#[derive(Debug, Default)]
pub(super) struct PushLink {
    queue: VecDeque<Vec<u8>>,
    bytes: usize,
    in_flight: Option<(OutboundRequestId, usize)>,
    /// A retry of the first batch is scheduled.
    waiting: bool,
    /// I/O failures of the push in flight, in a row.
    io_failures: u32,
    /// After an I/O failure: how many batches the failed request held. The retry carries
    /// exactly those, so that a batch which keeps failing never takes batches queued later
    /// down with it when it is finally dropped.
    resend: Option<usize>,
}

impl SwarmTask {
    /// Queues `bytes` for every connected member and starts sending where nothing is in
    /// flight; returns how many members it was queued for.
    pub(super) fn push_txs(&mut self, bytes: Vec<u8>) -> Result<usize, NetworkError> {
        check_size(bytes.len(), self.limits.max_message_bytes)?;
        let members = self.connected_members();
        if members.is_empty() {
            return Err(NetworkError::NoPeers);
        }
        let mut queued = 0;
        for peer in members {
            let link = self.push_links.entry(peer).or_default();
            if link.bytes + bytes.len() > self.limits.max_push_queue_bytes {
                self.counters.dropped_pushes += 1;
                warn!(%peer, queued_bytes = link.bytes, dropped = self.counters.dropped_pushes, "push queue full; transaction batch not queued for this member");
                continue;
            }
            link.bytes += bytes.len();
            link.queue.push_back(bytes.clone());
            queued += 1;
            self.pump_push(peer);
        }
        Ok(queued)
    }

    /// Sends the queued batches of `peer`'s link, as many as fit in one message,
    /// concatenated, unless a request is in flight or waiting. Under load, batches queue up
    /// behind the one in flight, and one round trip then carries them all: one in flight
    /// keeps the order without limiting throughput to one batch per round trip.
    fn pump_push(&mut self, peer: PeerId) {
        let max = self.limits.max_message_bytes.min(MAX_COALESCED_BYTES);
        let Some(link) = self.push_links.get_mut(&peer) else {
            return;
        };
        if link.in_flight.is_some() || link.waiting || link.queue.is_empty() {
            return;
        }
        let mut count = 0;
        let mut len = 0;
        let cap = link.resend.unwrap_or(usize::MAX);
        for batch in &link.queue {
            if count == cap || count > 0 && len + batch.len() > max {
                break;
            }
            count += 1;
            len += batch.len();
        }
        let mut message = Vec::with_capacity(len);
        for batch in link.queue.iter().take(count) {
            message.extend_from_slice(batch);
        }
        let id = self.swarm.behaviour_mut().txs.send_request(&peer, message);
        link.in_flight = Some((id, count));
    }

    /// The batches in flight to `peer` are done with (delivered, or refused for good).
    fn pop_push(&mut self, peer: PeerId) {
        if let Some(link) = self.push_links.get_mut(&peer) {
            link.io_failures = 0;
            link.resend = None;
            let count = link.in_flight.take().map_or(0, |(_, count)| count);
            for batch in link.queue.drain(..count) {
                link.bytes -= batch.len();
            }
        }
        self.pump_push(peer);
    }

    /// Sends the first batch of `peer`'s link again after [`BUSY_RETRY`].
    fn retry_push(&mut self, peer: PeerId) {
        if let Some(link) = self.push_links.get_mut(&peer) {
            link.in_flight = None;
            if !link.waiting {
                link.waiting = true;
                self.push_retries
                    .push(tokio::time::sleep(BUSY_RETRY).map(move |()| peer).boxed());
            }
        }
    }

    pub(super) fn handle_push_retry(&mut self, peer: PeerId) {
        if let Some(link) = self.push_links.get_mut(&peer) {
            link.waiting = false;
        }
        self.pump_push(peer);
    }

    /// Forgets what was queued for a member that disconnected.
    pub(super) fn drop_push_link(&mut self, peer: &PeerId) {
        if let Some(link) = self.push_links.remove(peer)
            && !link.queue.is_empty()
        {
            self.counters.dropped_pushes += link.queue.len() as u64;
            debug!(%peer, batches = link.queue.len(), "member disconnected; queued transaction batches dropped");
        }
    }

    /// Whether `id` is the push in flight to `peer` (answers to anything else are stale).
    fn is_in_flight(&self, peer: &PeerId, id: OutboundRequestId) -> bool {
        self.push_links
            .get(peer)
            .is_some_and(|link| link.in_flight.is_some_and(|(sent, _)| sent == id))
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
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => self.handle_push_answer(peer, request_id, response),
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => self.handle_push_failure(peer, request_id, error),
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
        } else if match &self.tx_sink {
            Some(sink) => sink.try_send((peer, bytes)).is_err(),
            None => self
                .events
                .try_send(NetworkEvent::Tx { from: peer, bytes })
                .is_err(),
        } {
            // Debug, not warn: under load this is the expected back-pressure, and counted.
            self.counters.dropped_txs += 1;
            debug!(%peer, dropped = self.counters.dropped_txs, "transaction queue full; push refused busy");
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

    /// A push that got no answer: sent again after a timeout or a lost connection while the
    /// member is still connected, and after an I/O error on the stream (a connection that
    /// broke mid-stream) up to [`MAX_PUSH_IO_RETRIES`] times in a row; dropped (and
    /// counted) past that, or when the member does not speak the protocol, so that it does
    /// not hold up the pushes behind it. (A member refusing a frame over its limit also
    /// shows as an I/O error, but every member has the same fixed limit and the pusher
    /// checks it first.)
    fn handle_push_failure(
        &mut self,
        peer: PeerId,
        request_id: OutboundRequestId,
        error: request_response::OutboundFailure,
    ) {
        use request_response::OutboundFailure as F;
        if !self.is_in_flight(&peer, request_id) {
            return;
        }
        if !self.swarm.is_connected(&peer) {
            self.drop_push_link(&peer);
            return;
        }
        let again = match error {
            F::Timeout | F::ConnectionClosed | F::DialFailure => true,
            F::Io(_) => self.push_links.get_mut(&peer).is_some_and(|link| {
                link.io_failures += 1;
                link.resend = link.in_flight.map(|(_, count)| count);
                link.io_failures <= MAX_PUSH_IO_RETRIES
            }),
            _ => false,
        };
        if again {
            debug!(%peer, %error, "transaction push not delivered; sending it again");
            self.retry_push(peer);
            return;
        }
        let batches = self
            .push_links
            .get(&peer)
            .and_then(|link| link.in_flight)
            .map_or(0, |(_, count)| count);
        self.counters.dropped_pushes += batches as u64;
        warn!(%peer, %error, batches, "transaction push failed; dropped for this member");
        self.pop_push(peer);
    }

    /// The answer to one of our pushes: delivered (next one), busy (again shortly), or
    /// refused for good (next one).
    pub(super) fn handle_push_answer(
        &mut self,
        peer: PeerId,
        request_id: OutboundRequestId,
        ack: MessageAck,
    ) {
        if !self.is_in_flight(&peer, request_id) {
            return;
        }
        match ack {
            Ok(()) => self.pop_push(peer),
            Err(Rejection::Busy) => {
                self.counters.busy_pushes += 1;
                debug!(%peer, busy = self.counters.busy_pushes, "peer busy; transaction push sent again shortly");
                self.retry_push(peer);
            }
            Err(rejection) => {
                debug!(%peer, %rejection, "transaction push refused");
                self.pop_push(peer);
            }
        }
    }
}
