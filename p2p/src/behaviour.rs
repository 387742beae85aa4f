//! The composed libp2p behaviour and the Swarm built around it.
//!
//! Field order matters: `allowed` comes first, so a connection from a key outside the roster
//! is denied before any other behaviour sees it (the derive asks each field in order and stops
//! at the first denial).

use libp2p::allow_block_list::{self, AllowedPeers};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{Swarm, SwarmBuilder, connection_limits, identify, identity, noise, tcp, yamux};

use crate::codec::{CONSENSUS_PROTOCOL, MessageCodec, SYNC_PROTOCOL, SyncCodec, TXS_PROTOCOL};
use crate::config::NetworkConfig;
use crate::error::NetworkError;
use crate::roster::Roster;

/// Unauthenticated inbound connections in their handshake at once (limits a connection flood
/// from outsiders, who are refused only once noise reveals their key).
const MAX_PENDING_INCOMING: u32 = 64;
/// Connections per peer: two members may dial each other at the same moment, and a restarted
/// peer may briefly overlap with its old connection.
const MAX_CONNECTIONS_PER_PEER: u32 = 4;
/// Concurrent streams per request-response protocol and connection, inbound and outbound
/// together (one pool per protocol: a burst of pushes cannot take the streams consensus
/// needs). A member keeps at most `MAX_DIRECT_IN_FLIGHT` (16) consensus messages, one push
/// and one block request in flight to another, so two members together use at most half of
/// each pool, also when one of them comes back from a pause to everything sent meanwhile.
const MAX_CONCURRENT_STREAMS: usize = 64;

/// Everything the node speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub allowed: allow_block_list::Behaviour<AllowedPeers>,
    pub limits: connection_limits::Behaviour,
    pub identify: identify::Behaviour,
    pub txs: request_response::Behaviour<MessageCodec>,
    pub consensus: request_response::Behaviour<MessageCodec>,
    pub sync: request_response::Behaviour<SyncCodec>,
}

/// Builds the Swarm: TCP + noise + yamux under the composed behaviour.
pub(crate) fn build_swarm(
    keypair: identity::Keypair,
    config: &NetworkConfig,
    roster: &Roster,
) -> Result<Swarm<Behaviour>, NetworkError> {
    let build_error = |e: &dyn std::fmt::Display| NetworkError::Build {
        reason: e.to_string(),
    };
    let behaviour = build_behaviour(&keypair, config, roster);
    let swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| build_error(&e))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| build_error(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_connection_timeout))
        .build();
    Ok(swarm)
}

fn build_behaviour(
    keypair: &identity::Keypair,
    config: &NetworkConfig,
    roster: &Roster,
) -> Behaviour {
    let mut allowed = allow_block_list::Behaviour::<AllowedPeers>::default();
    for peer in roster.peers() {
        allowed.allow_peer(*peer);
    }
    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
            .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER)),
    );
    let identify = identify::Behaviour::new(
        identify::Config::new("/tracechain/id/1".into(), keypair.public())
            .with_agent_version(format!("tracechain/{}", env!("CARGO_PKG_VERSION"))),
    );
    let request_config = request_response::Config::default()
        .with_request_timeout(config.request_timeout)
        .with_max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    let message_codec = MessageCodec {
        max_message_bytes: config.max_message_bytes,
    };
    let txs = request_response::Behaviour::with_codec(
        message_codec.clone(),
        [(TXS_PROTOCOL, ProtocolSupport::Full)],
        request_config.clone(),
    );
    let consensus = request_response::Behaviour::with_codec(
        message_codec,
        [(CONSENSUS_PROTOCOL, ProtocolSupport::Full)],
        request_config.clone(),
    );
    let sync = request_response::Behaviour::with_codec(
        SyncCodec {
            max_response_bytes: config.max_response_bytes,
        },
        [(SYNC_PROTOCOL, ProtocolSupport::Full)],
        request_config,
    );
    Behaviour {
        allowed,
        limits,
        identify,
        txs,
        consensus,
        sync,
    }
}
