//! The one task that owns the Swarm.
//!
//! [`spawn`] builds the Swarm and starts [`SwarmTask::run`], a `select!` over swarm events,
//! handle commands, the redial timer and the node's pending block-sync answers. Each arm is
//! one call to a `handle_*` method. Requests in flight are kept in maps keyed by request id
//! (as in rust-libp2p's file-sharing example); every map entry ends with a response, a failure
//! or the request timeout, so nothing grows without bound. Transaction pushes keep no entry.
//!
//! Nothing here ever awaits the node: events go out with `try_send`, and when the bounded
//! event channel is full, inbound requests (transaction pushes, consensus messages, block
//! requests) are answered [`crate::Rejection::Busy`] and counted, so a slow node slows its
//! peers down instead of growing memory or stalling the Swarm.
//!
//! This file holds the task, the command dispatch and connection events; `txs` (transaction
//! pushes), `direct` (consensus messages) and `sync` (block sync) hold the protocol handlers.

mod direct;
mod sync;
mod txs;

pub use direct::{MAX_DIRECT_BACKLOG, MAX_DIRECT_IN_FLIGHT};

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::allow_block_list::NotAllowed;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionDenied, DialError, ListenError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, error, info, trace, warn};

use crate::behaviour::{Behaviour, BehaviourEvent, build_swarm};
use crate::codec::{BlockRange, SyncResponse};
use crate::command::Command;
use crate::config::NetworkConfig;
use crate::error::NetworkError;
use crate::event::{NetworkEvent, NetworkStats, PeerRole};
use crate::handle::NetworkHandle;
use crate::redial::Redialer;
use crate::roster::{Roster, keypair_from_secret};

/// Capacity of the command channel from handles to the task.
const COMMAND_CAPACITY: usize = 256;
/// How often the redial schedule is checked.
const REDIAL_TICK: Duration = Duration::from_millis(100);

/// Starts the network: binds the listen address, dials the known members and returns the
/// handle and the bounded event stream. Must be called inside a Tokio runtime.
pub fn spawn(
    config: NetworkConfig,
) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
    config.validate()?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(NetworkError::Build {
            reason: "spawn must be called inside a Tokio runtime".into(),
        });
    }
    let keypair = keypair_from_secret(&config.secret_key)?;
    let local_peer_id = keypair.public().to_peer_id();
    let roster = Roster::from_config(&config, local_peer_id)?;
    let mut swarm = build_swarm(keypair, &config, &roster)?;

    for (peer, addr) in roster.dial_targets() {
        swarm.add_peer_address(peer, addr);
    }
    swarm
        .listen_on(config.listen.clone())
        .map_err(|e| NetworkError::Listen {
            addr: config.listen.clone(),
            reason: e.to_string(),
        })?;

    let (command_tx, command_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (event_tx, event_rx) = mpsc::channel(config.event_capacity);
    let redialer = Redialer::new(
        roster.dial_targets(),
        config.redial_backoff_min,
        config.redial_backoff_max,
        Instant::now(),
    );
    info!(peer = %local_peer_id, listen = %config.listen, allowed = roster.peers().count(), "network starting");
    let task = SwarmTask {
        swarm,
        roster,
        commands: command_rx,
        events: event_tx,
        limits: Limits::from(&config),
        redialer,
        listen_addrs: Vec::new(),
        listen_waiters: Vec::new(),
        pending_sends: HashMap::new(),
        direct_links: HashMap::new(),
        pending_block_requests: HashMap::new(),
        block_replies: FuturesUnordered::new(),
        tx_sink: config.tx_sink.clone(),
        push_links: HashMap::new(),
        push_retries: FuturesUnordered::new(),
        counters: Counters::default(),
    };
    tokio::spawn(task.run());
    Ok((NetworkHandle::new(command_tx, local_peer_id), event_rx))
}

/// The bounds the task enforces itself (the codecs enforce the wire sizes).
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_message_bytes: usize,
    max_response_bytes: usize,
    request_timeout: Duration,
    max_pending_block_requests: usize,
    max_push_queue_bytes: usize,
}

impl From<&NetworkConfig> for Limits {
    fn from(config: &NetworkConfig) -> Self {
        Limits {
            max_message_bytes: config.max_message_bytes,
            max_response_bytes: config.max_response_bytes,
            request_timeout: config.request_timeout,
            max_pending_block_requests: config.max_pending_block_requests,
            max_push_queue_bytes: config.max_push_queue_bytes,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    refused_connections: u64,
    rejected_txs: u64,
    dropped_txs: u64,
    busy_pushes: u64,
    dropped_pushes: u64,
    dropped_consensus: u64,
    shed_consensus: u64,
    rejected_consensus: u64,
    dropped_block_requests: u64,
    dropped_peer_events: u64,
}

/// Who waits for the acknowledgement of a direct message (`None` for a broadcast).
type SendWaiter = Option<oneshot::Sender<Result<(), NetworkError>>>;
type BlocksWaiter = oneshot::Sender<Result<Vec<u8>, NetworkError>>;

/// The node's answer to an inbound block request, ready to go back on its stream.
struct BlockReply {
    peer: PeerId,
    channel: ResponseChannel<SyncResponse>,
    response: SyncResponse,
}

struct SwarmTask {
    swarm: Swarm<Behaviour>,
    roster: Roster,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    limits: Limits,
    redialer: Redialer,
    listen_addrs: Vec<Multiaddr>,
    listen_waiters: Vec<oneshot::Sender<Vec<Multiaddr>>>,
    /// Direct messages in flight: to whom, and who waits for the acknowledgement.
    pending_sends: HashMap<OutboundRequestId, (PeerId, SendWaiter)>,
    /// Per member with direct messages in flight or waiting (see `direct`).
    direct_links: HashMap<PeerId, direct::DirectLink>,
    pending_block_requests: HashMap<OutboundRequestId, BlocksWaiter>,
    /// At most `max_pending_block_requests` entries, each ending within the request timeout.
    block_replies: FuturesUnordered<BoxFuture<'static, BlockReply>>,
    /// Where pushed batches go instead of `events`, if set.
    tx_sink: Option<mpsc::Sender<(PeerId, Vec<u8>)>>,
    /// Per connected member: transaction batches to push, in order, one in flight.
    push_links: HashMap<PeerId, txs::PushLink>,
    /// Members whose busy push is due to be sent again (one entry per waiting link).
    push_retries: FuturesUnordered<BoxFuture<'static, PeerId>>,
    counters: Counters,
}

impl SwarmTask {
    async fn run(mut self) {
        let mut redial_tick = tokio::time::interval(REDIAL_TICK);
        redial_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let done = loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.handle_swarm_event(event),
                command = self.commands.recv() => if let ControlFlow::Break(done) = self.handle_command(command) { break done },
                _ = redial_tick.tick() => self.handle_redial_tick(),
                Some(reply) = self.block_replies.next() => self.handle_block_reply(reply),
                Some(peer) = self.push_retries.next() => self.handle_push_retry(peer),
            }
        };
        let peer = *self.swarm.local_peer_id();
        // Dropping the Swarm closes the listener (so the port can be bound again) and ends
        // the connections; waiters still pending get `NetworkError::Stopped`.
        drop(self);
        info!(%peer, "network stopped");
        if let Some(done) = done {
            // The caller may have stopped waiting; nothing to do then.
            let _ = done.send(());
        }
    }

    // ---- commands -------------------------------------------------------------------------

    /// Runs one command; `Break` ends the task (with the shutdown caller to notify, if any).
    fn handle_command(
        &mut self,
        command: Option<Command>,
    ) -> ControlFlow<Option<oneshot::Sender<()>>> {
        // `None`: every handle was dropped, nobody can use the network any more.
        let Some(command) = command else {
            return ControlFlow::Break(None);
        };
        // A reply that fails to send means the caller stopped waiting; that is its choice.
        match command {
            Command::ListenAddrs { reply } => self.handle_listen_addrs(reply),
            Command::PushTxs { bytes, reply } => drop(reply.send(self.push_txs(bytes))),
            Command::Send { to, bytes, reply } => self.handle_send(to, bytes, reply),
            Command::Post { to, bytes, reply } => drop(reply.send(self.post(to, bytes))),
            Command::Broadcast { bytes, reply } => drop(reply.send(self.broadcast(bytes))),
            Command::RequestBlocks {
                peer,
                from,
                to,
                reply,
            } => self.handle_request_blocks(peer, BlockRange { from, to }, reply),
            Command::Stats { reply } => drop(reply.send(self.stats())),
            Command::Shutdown { done } => return ControlFlow::Break(Some(done)),
        }
        ControlFlow::Continue(())
    }

    fn handle_listen_addrs(&mut self, reply: oneshot::Sender<Vec<Multiaddr>>) {
        if self.listen_addrs.is_empty() {
            self.listen_waiters.push(reply);
        } else {
            let _ = reply.send(self.listen_addrs.clone());
        }
    }

    fn stats(&self) -> NetworkStats {
        let mut connected_members = Vec::new();
        let mut connected_observers = Vec::new();
        for peer in self.swarm.connected_peers() {
            match self.roster.get(peer).map(|entry| entry.role) {
                Some(PeerRole::Member) => connected_members.push(*peer),
                Some(PeerRole::Observer) => connected_observers.push(*peer),
                None => {}
            }
        }
        connected_members.sort();
        connected_observers.sort();
        let c = &self.counters;
        NetworkStats {
            local_peer_id: *self.swarm.local_peer_id(),
            connected_members,
            connected_observers,
            refused_connections: c.refused_connections,
            rejected_txs: c.rejected_txs,
            dropped_txs: c.dropped_txs,
            busy_pushes: c.busy_pushes,
            dropped_pushes: c.dropped_pushes,
            dropped_consensus: c.dropped_consensus,
            shed_consensus: c.shed_consensus,
            rejected_consensus: c.rejected_consensus,
            dropped_block_requests: c.dropped_block_requests,
            dropped_peer_events: c.dropped_peer_events,
        }
    }

    /// The members we have a connection to: the targets of broadcasts and pushes.
    fn connected_members(&self) -> Vec<PeerId> {
        self.swarm
            .connected_peers()
            .filter(|peer| self.roster.is_member(peer))
            .copied()
            .collect()
    }

    // ---- timers and pending answers -------------------------------------------------------

    fn handle_redial_tick(&mut self) {
        for (peer, addr) in self.redialer.due(Instant::now()) {
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![addr])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                trace!(%peer, error = %e, "dial not started");
            }
        }
    }

    // ---- swarm events ---------------------------------------------------------------------

    fn handle_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Txs(event)) => self.handle_txs_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Consensus(event)) => {
                self.handle_consensus_event(event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.handle_sync_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => handle_identify_event(event),
            SwarmEvent::Behaviour(
                BehaviourEvent::Allowed(never) | BehaviourEvent::Limits(never),
            ) => match never {},
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } => self.handle_connected(peer_id, num_established.get()),
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => self.handle_disconnected(peer_id, num_established),
            SwarmEvent::IncomingConnectionError {
                peer_id,
                send_back_addr,
                error,
                ..
            } => self.handle_incoming_error(peer_id, send_back_addr, error),
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                self.handle_outgoing_error(peer_id, error)
            }
            SwarmEvent::NewListenAddr { address, .. } => self.handle_new_listen_addr(address),
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address)
            }
            SwarmEvent::ListenerClosed { reason, .. } => self.handle_listener_closed(reason),
            other => trace!(?other, "swarm event"),
        }
    }

    fn handle_new_listen_addr(&mut self, address: Multiaddr) {
        info!(%address, "listening");
        self.listen_addrs.push(address);
        for waiter in self.listen_waiters.drain(..) {
            let _ = waiter.send(self.listen_addrs.clone());
        }
    }

    fn handle_listener_closed(&mut self, reason: Result<(), std::io::Error>) {
        if let Err(e) = reason {
            error!(error = %e, "listener closed");
        }
        // Answer anyone still waiting for a first address rather than leave them hanging.
        for waiter in self.listen_waiters.drain(..) {
            let _ = waiter.send(self.listen_addrs.clone());
        }
    }

    fn handle_connected(&mut self, peer: PeerId, num_established: u32) {
        self.redialer.on_connected(&peer, Instant::now());
        if num_established != 1 {
            return;
        }
        if let Some(entry) = self.roster.get(&peer) {
            info!(%peer, name = %entry.name, role = ?entry.role, "peer connected");
            let event = NetworkEvent::PeerConnected {
                peer,
                name: entry.name.clone(),
                role: entry.role,
            };
            self.emit_peer_event(event);
        }
    }

    fn handle_disconnected(&mut self, peer: PeerId, num_established: u32) {
        if num_established != 0 {
            return;
        }
        self.redialer.on_disconnected(&peer, Instant::now());
        self.drop_push_link(&peer);
        if let Some(entry) = self.roster.get(&peer) {
            info!(%peer, name = %entry.name, "peer disconnected");
            let event = NetworkEvent::PeerDisconnected {
                peer,
                name: entry.name.clone(),
                role: entry.role,
            };
            self.emit_peer_event(event);
        }
    }

    fn emit_peer_event(&mut self, event: NetworkEvent) {
        if self.events.try_send(event).is_err() {
            self.counters.dropped_peer_events += 1;
            warn!("event channel full or closed; peer event dropped");
        }
    }

    fn handle_incoming_error(&mut self, peer: Option<PeerId>, from: Multiaddr, error: ListenError) {
        match &error {
            ListenError::Denied { cause } => self.handle_denied(peer, Some(&from), cause),
            _ => debug!(?peer, %from, %error, "inbound connection failed"),
        }
    }

    fn handle_outgoing_error(&mut self, peer: Option<PeerId>, error: DialError) {
        match &error {
            DialError::Denied { cause } => self.handle_denied(peer, None, cause),
            _ => debug!(?peer, %error, "outbound connection failed"),
        }
    }

    /// A behaviour refused a connection whose handshake had completed.
    fn handle_denied(
        &mut self,
        peer: Option<PeerId>,
        addr: Option<&Multiaddr>,
        cause: &ConnectionDenied,
    ) {
        if cause.downcast_ref::<NotAllowed>().is_some() {
            // The key is neither a member's nor an observer's (the permissioning rule).
            self.counters.refused_connections += 1;
            warn!(
                ?peer,
                ?addr,
                refused = self.counters.refused_connections,
                "refused connection: key is not a member or observer"
            );
        } else {
            warn!(?peer, ?addr, %cause, "connection denied by a limit");
        }
    }
}

fn handle_identify_event(event: identify::Event) {
    match event {
        identify::Event::Received { peer_id, info, .. } => {
            debug!(peer = %peer_id, agent = %info.agent_version, "identified peer")
        }
        identify::Event::Error { peer_id, error, .. } => {
            debug!(peer = %peer_id, %error, "identify failed")
        }
        _ => {}
    }
}

fn check_size(size: usize, limit: usize) -> Result<(), NetworkError> {
    if size > limit {
        return Err(NetworkError::MessageTooLarge { size, limit });
    }
    Ok(())
}
