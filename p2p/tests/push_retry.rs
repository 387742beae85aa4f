//! A push that fails with an I/O error (a connection that broke mid-stream, as after a
//! member was paused and resumed) is sent again, not dropped: the member still gets its
//! transactions, in order. The far end here is a bare libp2p peer whose first two reads
//! of a push fail.

mod common;

use common::*;
use futures::StreamExt;
use libp2p::{Multiaddr, request_response, swarm::SwarmEvent};
use tokio::{sync::mpsc, time::timeout};

/// Runs member `seed` as a bare peer on 127.0.0.1; sends its address, then every push it
/// reads.
async fn flaky_member(seed: u8, fail_first: usize, out: mpsc::Sender<Result<Multiaddr, Vec<u8>>>) {
    let mut swarm = bare::swarm(
        seed,
        "/tracechain/txs/1",
        bare::Frames::failing_first(fail_first),
        request_response::Config::default(),
    );
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => {
                let _ = out.send(Ok(address)).await;
            }
            SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            }) => {
                let _ = swarm.behaviour_mut().send_response(channel, ());
                let _ = out.send(Err(request)).await;
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_fails_mid_stream_is_sent_again_in_order() {
    init_logs();
    let (out, mut received) = mpsc::channel(16);
    let peer = tokio::spawn(flaky_member(2, 2, out));
    let addr = match timeout(DEADLINE, received.recv()).await.expect("listening") {
        Some(Ok(addr)) => addr,
        other => panic!("expected the peer's address, got {other:?}"),
    };
    let node = start(
        1,
        fast_config(1, loopback(), member_specs(&[2], &[Some(addr)]), vec![]),
    )
    .await;
    wait_until("the peer connected", || async {
        node.handle
            .stats()
            .await
            .is_ok_and(|s| s.connected_members.len() == 1)
    })
    .await;

    node.handle
        .push_txs(b"first".to_vec())
        .await
        .expect("queued");
    node.handle
        .push_txs(b"second".to_vec())
        .await
        .expect("queued");
    // Whatever the coalescing, the member reads both, once each, first before second.
    let mut got = Vec::new();
    while got.len() < b"firstsecond".len() {
        match timeout(DEADLINE, received.recv())
            .await
            .expect("a push arrives")
        {
            Some(Err(bytes)) => got.extend(bytes),
            other => panic!("expected a push, got {other:?}"),
        }
    }
    assert_eq!(got, b"firstsecond");
    let stats = node.handle.stats().await.expect("stats");
    assert_eq!(stats.dropped_pushes, 0, "{stats:?}");
    peer.abort();
}
