//! Four validators in one process, each with its own RocksDB directory and its own
//! libp2p swarm on loopback, running PBFT: transactions submitted to any member are
//! committed by all, in the same blocks, with the same state; with one member
//! stopped, the other three go on.

use std::{net::TcpListener, time::Duration};

use prost::Message;
use tokio::sync::watch;
use tracechain_node::{
    consortium,
    crypto::{Scheme, SecretKey},
    genesis::{
        AttestationRule, ContainmentRule, DeviceConflictRule, EventIdentity, Genesis, GenesisFile,
        LineageRule, MemberEntry, MktRule, Role,
    },
    node::{Node, NodeConfig},
    tx,
};
use tracechain_proto::v1::{self as pb, tx_body::Action};

const CHAIN: &str = "consortium-test";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Member {
    id: String,
    admin: SecretKey,
    node: Node,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn consortium(n: usize) -> Vec<Member> {
    consortium_with(n, &[], |_| {}).await.0
}

/// `n` validators that let the `observers` (node keys) connect, each configured by
/// `tweak` after the defaults; also returns the genesis.
async fn consortium_with(
    n: usize,
    observers: &[[u8; 32]],
    tweak: impl Fn(&mut NodeConfig),
) -> (Vec<Member>, Genesis) {
    consortium_started(n, n, observers, tweak).await
}

/// A consortium of `n` validators of which the first `started` run a node (member `i`'s
/// node key is the 32 bytes `i + 1`).
async fn consortium_started(
    n: usize,
    started: usize,
    observers: &[[u8; 32]],
    tweak: impl Fn(&mut NodeConfig),
) -> (Vec<Member>, Genesis) {
    let ids: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    let node_keys: Vec<ed25519_dalek::SigningKey> = (0..n)
        .map(|i| ed25519_dalek::SigningKey::from_bytes(&[i as u8 + 1; 32]))
        .collect();
    let admins: Vec<SecretKey> = (0..n)
        .map(|i| SecretKey::from_bytes(Scheme::Ed25519, &[i as u8 + 100; 32]).expect("seed"))
        .collect();
    let genesis = Genesis::from_file(GenesisFile {
        chain_id: CHAIN.into(),
        genesis_time_ms: 1_700_000_000_000,
        max_clock_skew_ms: 300_000,
        mkt_rule: MktRule::CURRENT,
        epcis_event_identity: EventIdentity::CURRENT,
        containment: ContainmentRule::CURRENT,
        lineage: LineageRule::CURRENT,
        attestation: AttestationRule::CURRENT,
        device_conflicts: DeviceConflictRule::CURRENT,
        members: (0..n)
            .map(|i| MemberEntry {
                id: ids[i].clone(),
                name: ids[i].clone(),
                role: Role::Producer,
                node_key: hex::encode(node_keys[i].verifying_key().as_bytes()),
                admin_key: hex::encode(admins[i].public_key()),
                address: format!("127.0.0.1:{}", free_port()),
                validator: true,
                gs1_company_prefixes: Vec::new(),
            })
            .collect(),
    })
    .expect("genesis");
    let mut members = Vec::new();
    for (i, admin) in admins.into_iter().enumerate().take(started) {
        let dir = tempfile::tempdir().expect("dir");
        let mut config = NodeConfig::new(dir.path().join("db"), ids[i].clone());
        config.block_interval = Duration::from_millis(50);
        config.observers = observers.to_vec();
        tweak(&mut config);
        let node = Node::open(config, genesis.clone(), node_keys[i].clone()).expect("open");
        let (stop, stopped) = watch::channel(false);
        let driver = node.clone();
        let task = tokio::spawn(async move {
            consortium::run(driver, stopped).await.expect("driver runs");
        });
        members.push(Member {
            id: ids[i].clone(),
            admin,
            node,
            stop,
            task,
            _dir: dir,
        });
    }
    (members, genesis)
}

fn register(m: &Member, seq: u64) -> pb::SignedTx {
    let device = SecretKey::from_bytes(Scheme::Ed25519, &[seq as u8 + 50; 32]).expect("seed");
    tx::sign_body(
        &pb::TxBody {
            chain_id: CHAIN.into(),
            signer: Some(pb::Signer {
                kind: pb::SignerKind::Member as i32,
                id: m.id.clone(),
                scheme: pb::SignatureScheme::Ed25519 as i32,
                public_key: m.admin.public_key(),
            }),
            sequence: seq,
            time_ms: 1_700_000_000_000,
            action: Some(Action::RegisterDevice(pb::RegisterDevice {
                device_id: format!("{}-dev-{seq}", m.id),
                scheme: pb::SignatureScheme::Ed25519 as i32,
                public_key: device.public_key(),
                device_type: String::new(),
            })),
        },
        &m.admin,
    )
}

/// Submits `m`'s registration number `seq` to `m`'s own node; its id once admitted.
async fn admit(m: &Member, seq: u64) -> tx::TxId {
    m.node
        .submit(vec![register(m, seq)])
        .await
        .remove(0)
        .expect("admitted")
}

/// Waits until every listed member has committed `id`; returns their heads.
async fn wait_all(members: &[&Member], id: tx::TxId) {
    for m in members {
        let found = m.node.wait_for_commit(id, Duration::from_secs(30)).await;
        let found = found.unwrap_or_else(|| panic!("{} did not commit {id}", m.id));
        assert_eq!(
            found.result.map(|r| r.code),
            Some(pb::ResultCode::Ok as i32),
            "{}",
            m.id
        );
    }
}

/// Stops every member and waits (briefly) for its driver to end.
async fn stop_all(members: Vec<Member>) {
    for m in &members {
        let _ = m.stop.send(true);
    }
    for m in members {
        let _ = tokio::time::timeout(Duration::from_secs(5), m.task).await;
    }
}

async fn same_chain(members: &[&Member]) {
    // Heads may differ by a block in flight; compare at the lowest common height.
    let statuses = futures::future::join_all(members.iter().map(|m| m.node.status())).await;
    let low = statuses.iter().map(|s| s.height).min().expect("members");
    assert!(low > 0);
    let mut hashes = Vec::new();
    for m in members {
        let b = m
            .node
            .block(low)
            .await
            .expect("read")
            .expect("block at common height");
        hashes.push(
            blake3::hash(&b.block.expect("block").header)
                .to_hex()
                .to_string(),
        );
    }
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "block {low} differs: {hashes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_validators_agree_and_three_go_on() {
    let members = consortium(4).await;

    // A transaction submitted to member 2 is gossiped, proposed and committed by all.
    let first = register(&members[2], 1);
    let id = members[2]
        .node
        .submit(vec![first])
        .await
        .remove(0)
        .expect("admitted");
    let all: Vec<&Member> = members.iter().collect();
    wait_all(&all, id).await;
    same_chain(&all).await;
    let block = {
        let lookup = members[0].node.get_tx(id).await.expect("lookup");
        members[0]
            .node
            .block(lookup.height)
            .await
            .expect("read")
            .expect("block")
    };
    let cert = block.certificate.expect("certificate");
    assert!(
        cert.signatures.len() >= 3,
        "2f+1 = 3 signatures, got {}",
        cert.signatures.len()
    );

    // Stop member 3 (a follower, or the primary of a later view): the others go on.
    let stopped = &members[3];
    let _ = stopped.stop.send(true);
    let ids = futures::future::join_all(
        (0..3).map(|i| members[i].node.submit(vec![register(&members[i], 10)])),
    )
    .await;
    let live: Vec<&Member> = members[..3].iter().collect();
    for outcome in ids {
        let id = outcome
            .into_iter()
            .next()
            .expect("outcome")
            .expect("admitted");
        wait_all(&live, id).await;
    }
    same_chain(&live).await;

    stop_all(members).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn primary_stops_view_changes_and_commits_resume() {
    let members = consortium(4).await;
    let all: Vec<&Member> = members.iter().collect();
    let first = admit(&members[1], 1).await;
    wait_all(&all, first).await;

    // Replica 0 is the primary of view 0: stop it. The others must change view.
    let _ = members[0].stop.send(true);
    let started = std::time::Instant::now();
    let live: Vec<&Member> = members[1..].iter().collect();
    let id = admit(&members[2], 2).await;
    wait_all(&live, id).await;
    let elapsed = started.elapsed();
    eprintln!("commit resumed {elapsed:?} after the primary stopped");
    same_chain(&live).await;
    let lookup = members[1].node.get_tx(id).await.expect("lookup");
    let block = members[1]
        .node
        .block(lookup.height)
        .await
        .expect("read")
        .expect("block");
    let cert = block.certificate.expect("certificate");
    assert!(
        cert.view > 0,
        "the block after the primary stopped was committed in a later view"
    );
    stop_all(members).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_observer_follows_serves_and_forwards_without_voting() {
    let observer_key = ed25519_dalek::SigningKey::from_bytes(&[77; 32]);
    let (members, genesis) =
        consortium_with(4, &[observer_key.verifying_key().to_bytes()], |_| {}).await;
    let all: Vec<&Member> = members.iter().collect();
    let first = admit(&members[0], 1).await;
    wait_all(&all, first).await;

    let dir = tempfile::tempdir().expect("dir");
    let mut config = NodeConfig::new(dir.path().join("db"), "auditor".into());
    config.observer = true;
    config.p2p_listen = Some(format!("127.0.0.1:{}", free_port()));
    let observer = Node::open(config, genesis, observer_key).expect("observer opens");
    let (stop, stopped) = watch::channel(false);
    let driver = observer.clone();
    let task = tokio::spawn(async move {
        consortium::run(driver, stopped)
            .await
            .expect("observer runs");
    });

    // It follows: the first transaction reaches it through block sync.
    let seen = observer
        .wait_for_commit(first, Duration::from_secs(30))
        .await;
    assert!(seen.is_some(), "the observer synced the committed block");

    // A client of the observer submits: it is forwarded by gossip, committed by the
    // validators, and reaches the observer's chain.
    let forwarded = observer
        .submit(vec![register(&members[1], 1)])
        .await
        .remove(0)
        .expect("admitted");
    wait_all(&all, forwarded).await;
    assert!(
        observer
            .wait_for_commit(forwarded, Duration::from_secs(30))
            .await
            .is_some()
    );

    // It never votes: no certificate carries more than the four validators.
    let lookup = observer.get_tx(forwarded).await.expect("lookup");
    let block = observer
        .block(lookup.height)
        .await
        .expect("read")
        .expect("block");
    let signers: Vec<String> = block
        .certificate
        .expect("certificate")
        .signatures
        .into_iter()
        .map(|s| s.member_id)
        .collect();
    assert!(signers.iter().all(|s| s.starts_with('m')), "{signers:?}");
    // Its block is the validators' block, byte for byte.
    let theirs = members[0]
        .node
        .block(lookup.height)
        .await
        .expect("read")
        .expect("block");
    let ours = observer
        .block(lookup.height)
        .await
        .expect("read")
        .expect("block");
    assert_eq!(ours.block, theirs.block);

    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    stop_all(members).await;
}

/// Under a trickle of transactions the primary waits `min_block_interval` between its
/// proposals, so each block gathers what arrived meanwhile instead of one round's worth.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_primary_spaces_its_proposals_and_blocks_gather_the_trickle() {
    const SPACING: Duration = Duration::from_millis(400);
    let (members, _) = consortium_with(4, &[], |c| c.min_block_interval = SPACING).await;
    let all: Vec<&Member> = members.iter().collect();

    // 30 registrations, one every 40 ms (a round on loopback takes a few ms: without
    // the spacing nearly every one would get a block of its own).
    let mut ids = Vec::new();
    for seq in 1..=30 {
        let id = admit(&members[1], seq).await;
        ids.push(id);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    for id in &ids {
        wait_all(&all, *id).await;
    }

    let head = members[0].node.status().await.height;
    let mut blocks = Vec::new();
    for height in 1..=head {
        let block = members[0]
            .node
            .block(height)
            .await
            .expect("read")
            .expect("block")
            .block
            .expect("block");
        blocks.push(pb::BlockHeader::decode(block.header.as_slice()).expect("header"));
    }
    let full: Vec<&pb::BlockHeader> = blocks.iter().filter(|h| h.tx_count > 0).collect();
    assert_eq!(full.iter().map(|h| h.tx_count).sum::<u32>(), 30);
    // 1.2 s of arrivals at one block per 400 ms: about four blocks, not thirty.
    assert!(full.len() <= 8, "{} blocks for 30 transactions", full.len());
    for pair in full.windows(2) {
        if pair[0].view == pair[1].view {
            // Proposer clock, ms; a few ms of slack for when each build read it.
            let gap = pair[1].time_ms - pair[0].time_ms;
            assert!(
                gap >= SPACING.as_millis() as i64 - 50,
                "blocks {} and {} proposed {gap} ms apart",
                pair[0].height,
                pair[1].height
            );
        }
    }

    stop_all(members).await;
}

/// A member whose node accepts connections and consensus messages but never acknowledges
/// one, and keeps sending prepares for height 1 (long committed), which makes every
/// other replica help it catch up with a direct send.
mod withholding {
    use std::time::Duration;

    use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
    use libp2p::{
        Multiaddr, PeerId, StreamProtocol, SwarmBuilder, identity, noise,
        request_response::{self, ProtocolSupport},
        swarm::SwarmEvent,
        tcp, yamux,
    };
    use tracechain_consensus::{Message, ReplicaId, Vote};

    /// `/tracechain/consensus/1` framing: a 4-byte big-endian length, then the message;
    /// the answer is one status byte.
    #[derive(Clone, Default)]
    struct Frames;

    impl request_response::Codec for Frames {
        type Protocol = StreamProtocol;
        type Request = Vec<u8>;
        type Response = ();

        async fn read_request<T>(
            &mut self,
            _: &StreamProtocol,
            io: &mut T,
        ) -> std::io::Result<Vec<u8>>
        where
            T: AsyncRead + Unpin + Send,
        {
            let mut len = [0u8; 4];
            io.read_exact(&mut len).await?;
            let mut body = vec![0; u32::from_be_bytes(len).min(32 << 20) as usize];
            io.read_exact(&mut body).await?;
            Ok(body)
        }

        async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<()>
        where
            T: AsyncRead + Unpin + Send,
        {
            let mut status = [0u8; 1];
            io.read_exact(&mut status).await
        }

        async fn write_request<T>(
            &mut self,
            _: &StreamProtocol,
            io: &mut T,
            body: Vec<u8>,
        ) -> std::io::Result<()>
        where
            T: AsyncWrite + Unpin + Send,
        {
            io.write_all(&(body.len() as u32).to_be_bytes()).await?;
            io.write_all(&body).await
        }

        async fn write_response<T>(
            &mut self,
            _: &StreamProtocol,
            io: &mut T,
            (): (),
        ) -> std::io::Result<()>
        where
            T: AsyncWrite + Unpin + Send,
        {
            io.write_all(&[0]).await
        }
    }

    /// Runs the member with node secret key `secret` as replica `me` on `addr` until the
    /// task is aborted.
    pub async fn run(secret: [u8; 32], me: ReplicaId, addr: Multiaddr) {
        let keypair = identity::Keypair::ed25519_from_bytes(secret).expect("key");
        let behaviour = request_response::Behaviour::with_codec(
            Frames,
            [(
                StreamProtocol::new("/tracechain/consensus/1"),
                ProtocolSupport::Full,
            )],
            request_response::Config::default().with_request_timeout(Duration::from_secs(600)),
        );
        let mut swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("transport")
            .with_behaviour(|_| behaviour)
            .expect("behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build();
        swarm.listen_on(addr).expect("listen");
        // A vote for height 1: stale for everyone, so it is answered before its signature
        // is even looked at.
        let stale = tracechain_node::wire::encode_message(&Message::Prepare(Vote {
            view: 0,
            height: 1,
            block_hash: [0; 32],
            from: me,
            signature: ed25519_dalek::Signature::from_bytes(&[0; 64]),
        }));
        let mut peers: Vec<PeerId> = Vec::new();
        // Requests never answered: holding their channels keeps their streams open.
        let mut withheld = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if !peers.contains(&peer_id) => {
                        peers.push(peer_id)
                    }
                    SwarmEvent::Behaviour(request_response::Event::Message {
                        message: request_response::Message::Request { channel, .. },
                        ..
                    }) => withheld.push(channel),
                    _ => {}
                },
                _ = tick.tick() => {
                    for peer in &peers {
                        swarm.behaviour_mut().send_request(peer, stale.clone());
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_that_never_acknowledges_stalls_no_one() {
    // m3 is the withholding member; m0..m2 are honest and commit without it (n = 4, f = 1).
    let (members, genesis) = consortium_started(4, 3, &[], |_| {}).await;
    let address = &genesis.member("m3").expect("m3").address;
    let (host, port) = address.rsplit_once(':').expect("host:port");
    let addr = format!("/ip4/{host}/tcp/{port}")
        .parse()
        .expect("multiaddr");
    let withholder = tokio::spawn(withholding::run(
        [4; 32],
        tracechain_consensus::ReplicaId(3),
        addr,
    ));
    let all: Vec<&Member> = members.iter().collect();
    let first = admit(&members[0], 1).await;
    wait_all(&all, first).await;

    // Each honest replica now sends m3 a Status, directly, to help it catch up; m3 never
    // acknowledges. Commits must go on at their usual pace: a host that waited for the
    // acknowledgement would stall for the request timeout (10 s) each time.
    let mut slowest = Duration::ZERO;
    for seq in 2..=16u64 {
        let m = &members[seq as usize % 3];
        let started = std::time::Instant::now();
        let id = admit(m, seq).await;
        wait_all(&all, id).await;
        slowest = slowest.max(started.elapsed());
    }
    eprintln!("slowest submit-to-commit on all three: {slowest:?}");
    assert!(
        slowest < Duration::from_secs(4),
        "a commit took {slowest:?} while a member withheld acknowledgements"
    );
    same_chain(&all).await;
    withholder.abort();
    stop_all(members).await;
}
