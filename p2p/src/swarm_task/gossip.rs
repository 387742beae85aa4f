//! Transactions by gossip: publishing, and checking each received message before it is
//! delivered to the node or forwarded.

use libp2p::PeerId;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId, PublishError};
use tracing::{debug, warn};

use super::{SwarmTask, check_size};
use crate::error::NetworkError;
use crate::event::NetworkEvent;

impl SwarmTask {
    pub(super) fn publish_tx(&mut self, bytes: Vec<u8>) -> Result<(), NetworkError> {
        check_size(bytes.len(), self.limits.max_message_bytes)?;
        let topic = self.topic.clone();
        match self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
            Ok(_) => Ok(()),
            // Same payload hash already seen or published: the network carries it already.
            Err(PublishError::Duplicate) => Ok(()),
            Err(PublishError::NoPeersSubscribedToTopic) => Err(NetworkError::NoGossipPeers),
            Err(e) => Err(NetworkError::Publish {
                reason: e.to_string(),
            }),
        }
    }

    pub(super) fn handle_gossip_event(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => self.handle_gossip_message(propagation_source, message_id, message),
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => warn!(peer = %peer_id, ?failed_messages, "slow gossip peer"),
            other => debug!(?other, "gossipsub event"),
        }
    }

    /// Validates a gossiped transaction before it is delivered or forwarded: the signature was
    /// checked by gossipsub (strict mode); here the author must be in the roster, the topic
    /// ours and the payload within the limit.
    pub(super) fn handle_gossip_message(
        &mut self,
        via: PeerId,
        id: MessageId,
        message: gossipsub::Message,
    ) {
        let verdict = self.check_gossip(&message);
        let acceptance = match verdict {
            Ok(_) => MessageAcceptance::Accept,
            Err(reason) => {
                self.counters.rejected_gossip += 1;
                warn!(peer = %via, author = ?message.source, reason, "rejected gossip message");
                MessageAcceptance::Reject
            }
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &via, acceptance);
        let Ok(author) = verdict else { return };
        // Propagation went ahead; only our local copy is dropped if the node is behind.
        if self
            .events
            .try_send(NetworkEvent::Tx {
                from: author,
                bytes: message.data,
            })
            .is_err()
        {
            self.counters.dropped_gossip += 1;
            debug!(
                dropped = self.counters.dropped_gossip,
                "event channel full; transaction dropped locally"
            );
        }
    }

    pub(super) fn check_gossip(
        &self,
        message: &gossipsub::Message,
    ) -> Result<PeerId, &'static str> {
        let author = message.source.ok_or("unsigned message")?;
        if self.roster.get(&author).is_none() {
            return Err("author is not a member or observer");
        }
        if message.topic != self.topic.hash() {
            return Err("unexpected topic");
        }
        if message.data.len() > self.limits.max_message_bytes {
            return Err("payload over max_message_bytes");
        }
        Ok(author)
    }
}
