//! A member never opens more consensus streams to another than that member accepts: at
//! most `MAX_DIRECT_IN_FLIGHT` messages are in flight to one member, the rest wait in a
//! bounded backlog, and when the member answers again everything waiting is delivered.
//! (Before the bound, a member that came back from a pause got every message sent to it
//! meanwhile at once and its handlers dropped inbound streams by the thousand.) The far end
//! is a bare libp2p peer that reads messages but withholds its acknowledgements until told.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::*;
use futures::StreamExt;
use libp2p::{Multiaddr, request_response, swarm::SwarmEvent};
use tokio::{
    sync::{mpsc, oneshot},
    time::{sleep, timeout},
};
use tracechain_p2p::{MAX_DIRECT_BACKLOG, MAX_DIRECT_IN_FLIGHT};

/// What the bare peer reports.
#[derive(Debug)]
enum Seen {
    Listening(Multiaddr),
    Message(u32),
}

/// Runs member `seed` as a bare peer that accepts any number of streams, reports each
/// message it reads, and acknowledges none until `release` fires (then all, and every later
/// one at once).
async fn withholding_member(seed: u8, out: mpsc::Sender<Seen>, release: oneshot::Receiver<()>) {
    let mut swarm = bare::swarm(
        seed,
        "/tracechain/consensus/1",
        bare::Frames::default(),
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(60))
            .with_max_concurrent_streams(4_096),
    );
    let mut release = Some(release);
    let mut held = Vec::new();
    let mut released = false;
    loop {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => {
                    let _ = out.send(Seen::Listening(address)).await;
                }
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Request { request, channel, .. },
                    ..
                }) => {
                    let index = u32::from_be_bytes(request[..4].try_into().expect("4 bytes"));
                    let _ = out.send(Seen::Message(index)).await;
                    if released {
                        let _ = swarm.behaviour_mut().send_response(channel, ());
                    } else {
                        held.push(channel);
                    }
                }
                _ => {}
            },
            Ok(()) = async { release.as_mut().expect("armed").await }, if release.is_some() => {
                release = None;
                released = true;
                for channel in held.drain(..) {
                    let _ = swarm.behaviour_mut().send_response(channel, ());
                }
            }
        }
    }
}

/// Reads what the peer saw within `window`, as message indices.
async fn seen_within(seen: &mut mpsc::Receiver<Seen>, window: Duration) -> Vec<u32> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, seen.recv()).await {
        match event {
            Seen::Message(i) => got.push(i),
            other => panic!("unexpected {other:?}"),
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_gets_no_more_streams_than_it_accepts_and_everything_after() {
    init_logs();
    let (out, mut seen) = mpsc::channel(4_096);
    let (release, released) = oneshot::channel();
    let peer = tokio::spawn(withholding_member(2, out, released));
    let addr = match timeout(DEADLINE, seen.recv()).await.expect("listening") {
        Some(Seen::Listening(addr)) => addr,
        other => panic!("expected the peer's address, got {other:?}"),
    };
    let mut config = fast_config(1, loopback(), member_specs(&[2], &[Some(addr)]), vec![]);
    // Longer than the test holds acknowledgements back: nothing may time out meanwhile.
    config.request_timeout = Duration::from_secs(20);
    let node = start(1, config).await;
    wait_until("the peer connected", || async {
        node.handle
            .stats()
            .await
            .is_ok_and(|s| s.connected_members.len() == 1)
    })
    .await;

    // More than the backlog holds: the oldest waiting ones are shed, counted.
    let extra = 10;
    let total = (MAX_DIRECT_IN_FLIGHT + MAX_DIRECT_BACKLOG + extra) as u32;
    for i in 0..total {
        node.handle
            .post(peer_id(2), i.to_be_bytes().to_vec())
            .await
            .expect("queued");
    }
    // While the peer withholds its acknowledgements, it sees only the first ones.
    let first = seen_within(&mut seen, Duration::from_millis(1_500)).await;
    let expected: Vec<u32> = (0..MAX_DIRECT_IN_FLIGHT as u32).collect();
    let got: BTreeSet<u32> = first.iter().copied().collect();
    assert_eq!(got.into_iter().collect::<Vec<_>>(), expected, "{first:?}");
    let stats = node.handle.stats().await.expect("stats");
    assert_eq!(stats.shed_consensus, extra as u64, "{stats:?}");

    // It answers again: everything still waiting arrives, once each.
    release.send(()).expect("peer running");
    let mut rest = Vec::new();
    let wanted = MAX_DIRECT_BACKLOG;
    while rest.len() < wanted {
        match timeout(DEADLINE, seen.recv())
            .await
            .expect("the rest arrives")
        {
            Some(Seen::Message(i)) => rest.push(i),
            other => panic!("expected a message, got {other:?}"),
        }
    }
    let expected: Vec<u32> = (MAX_DIRECT_IN_FLIGHT as u32 + extra as u32..total).collect();
    let got: BTreeSet<u32> = rest.iter().copied().collect();
    assert_eq!(got.len(), rest.len(), "a message arrived twice");
    assert_eq!(got.into_iter().collect::<Vec<_>>(), expected);
    // And nothing more.
    sleep(Duration::from_millis(300)).await;
    assert!(seen.try_recv().is_err(), "more than was sent arrived");
    peer.abort();
    node.handle.shutdown().await;
}
