//! Four members on 127.0.0.1: transaction pushes (one copy per link, no dedupe), direct
//! consensus messages and broadcast, block sync, and the size bounds on the wire.

mod common;

use std::time::Duration;

use common::*;
use tokio::time::{sleep, timeout};
use tracechain_p2p::{NetworkError, NetworkEvent, PeerId, Rejection};

const MEMBERS: [u8; 4] = [1, 2, 3, 4];
/// Time for pushes to settle before counting deliveries (messages arrive in milliseconds).
const SETTLE: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_txs_reach_every_other_member_exactly_once() {
    init_logs();
    let mut nodes = start_members(&MEMBERS, &[], |_| {}).await;
    wait_for_mesh(&nodes, 3).await;
    for node in &mut nodes {
        drain(&mut node.events);
    }

    // Node 0 pushes to its three members; each gets it once, from node 0; node 0 gets nothing.
    let tx = b"tx: sensor 17 reading 4.2C".to_vec();
    let sent = nodes[0].handle.push_txs(tx.clone()).await.expect("push");
    assert_eq!(sent, 3);
    for node in &mut nodes[1..] {
        let got = next_tx(&mut node.events).await;
        assert_eq!(got, (nodes_peer(0), tx.clone()));
    }
    // Nothing is forwarded: no second copy anywhere, nothing back to the pusher.
    sleep(SETTLE).await;
    for node in &mut nodes {
        let extra = txs(&drain(&mut node.events));
        assert!(
            extra.is_empty(),
            "node {} got an extra copy: {extra:?}",
            node.seed
        );
    }

    // The same bytes pushed again are delivered again: deduplication is the node's job.
    let sent = nodes[0].handle.push_txs(tx.clone()).await.expect("push");
    assert_eq!(sent, 3);
    for node in &mut nodes[1..] {
        let got = next_tx(&mut node.events).await;
        assert_eq!(got, (nodes_peer(0), tx.clone()));
    }

    // Nodes 2 and 3 push the same bytes at the same moment: every other node gets one copy
    // from each pusher, and each pusher gets the other's copy (and never its own).
    let tx2 = b"tx: shipment 9 handed over".to_vec();
    let (a, b) = tokio::join!(
        nodes[2].handle.push_txs(tx2.clone()),
        nodes[3].handle.push_txs(tx2.clone())
    );
    assert_eq!(a.expect("push from node 2"), 3);
    assert_eq!(b.expect("push from node 3"), 3);
    sleep(SETTLE).await;
    for (i, node) in nodes.iter_mut().enumerate() {
        let mut got = txs(&drain(&mut node.events));
        got.sort();
        let mut expected: Vec<_> = [2, 3]
            .into_iter()
            .filter(|pusher| *pusher != i)
            .map(|pusher| (nodes_peer(pusher), tx2.clone()))
            .collect();
        expected.sort();
        assert_eq!(got, expected, "node {i} deliveries");
    }
    for node in &nodes {
        let s = stats(node).await;
        assert_eq!((s.rejected_txs, s.dropped_txs, s.busy_pushes), (0, 0, 0));
    }
    shutdown_all(&nodes).await;
}

/// A member's pushes arrive at each other member in the order it pushed them, however they
/// are interleaved in size (a large batch in flight does not let a small one overtake it):
/// the node relies on this to see a device's readings in sequence order. Batches queued
/// behind one in flight may arrive concatenated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_arrive_in_the_order_they_were_pushed() {
    init_logs();
    let mut nodes = start_members(&MEMBERS[..2], &[], |_| {}).await;
    wait_for_mesh(&nodes, 1).await;
    drain(&mut nodes[1].events);
    let batches: Vec<Vec<u8>> = (0..60u32)
        .map(|i| {
            // Alternately ~200 KiB and a few bytes, each tagged with its number.
            let len = if i % 2 == 0 { 200 * 1024 } else { 8 };
            let mut b = vec![0u8; len];
            b[..4].copy_from_slice(&i.to_be_bytes());
            b
        })
        .collect();
    for b in &batches {
        assert_eq!(nodes[0].handle.push_txs(b.clone()).await.expect("push"), 1);
    }
    // Batches queued behind the one in flight go out together, concatenated; in order.
    let expected: Vec<u8> = batches.concat();
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let (from, bytes) = next_tx(&mut nodes[1].events).await;
        assert_eq!(from, nodes_peer(0));
        got.extend(bytes);
    }
    assert!(got == expected, "batches arrived out of order");
    let s = stats(&nodes[0]).await;
    assert_eq!((s.busy_pushes, s.dropped_pushes), (0, 0));
    shutdown_all(&nodes).await;
}

fn nodes_peer(index: usize) -> PeerId {
    peer_id(MEMBERS[index])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_message_and_broadcast_arrive_with_their_sender() {
    init_logs();
    let mut nodes = start_members(&MEMBERS, &[], |_| {}).await;
    wait_for_mesh(&nodes, 3).await;
    for node in &mut nodes {
        drain(&mut node.events);
    }

    // 0 -> 2, acknowledged once it is in node 2's queue.
    let prepare = b"prepare v=0 n=1".to_vec();
    nodes[0]
        .handle
        .send(nodes_peer(2), prepare.clone())
        .await
        .expect("send");
    let got = next_matching(&mut nodes[2].events, |e| match e {
        NetworkEvent::Consensus { from, bytes } => Some((from, bytes)),
        _ => None,
    })
    .await;
    assert_eq!(got, (nodes_peer(0), prepare));

    // Node 1 broadcasts to the three others.
    let commit = b"commit v=0 n=1".to_vec();
    let sent = nodes[1]
        .handle
        .broadcast(commit.clone())
        .await
        .expect("broadcast");
    assert_eq!(sent, 3);
    for i in [0, 2, 3] {
        let got = next_matching(&mut nodes[i].events, |e| match e {
            NetworkEvent::Consensus { from, bytes } => Some((from, bytes)),
            _ => None,
        })
        .await;
        assert_eq!(got, (nodes_peer(1), commit.clone()), "node {i}");
    }
    // Nobody got anything else (node 1 got nothing at all, node 3 nothing from node 0).
    sleep(Duration::from_millis(300)).await;
    for node in &mut nodes {
        let extra = consensus(&drain(&mut node.events));
        assert!(
            extra.is_empty(),
            "node {} got extra messages: {extra:?}",
            node.seed
        );
    }

    // Local refusals: a non-member target, an oversized message.
    let stranger = peer_id(99);
    assert!(matches!(
        nodes[0].handle.send(stranger, b"x".to_vec()).await,
        Err(NetworkError::NotAMember { peer }) if peer == stranger
    ));
    let too_big = vec![0u8; tracechain_p2p::config::DEFAULT_MAX_MESSAGE_BYTES + 1];
    assert!(matches!(
        nodes[0].handle.send(nodes_peer(1), too_big.clone()).await,
        Err(NetworkError::MessageTooLarge { .. })
    ));
    assert!(matches!(
        nodes[0].handle.push_txs(too_big).await,
        Err(NetworkError::MessageTooLarge { .. })
    ));
    shutdown_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_request_gets_the_responders_bytes() {
    init_logs();
    let max_response = 64 * 1024;
    let mut nodes = start_members(&MEMBERS, &[], |c| c.max_response_bytes = max_response).await;
    wait_for_mesh(&nodes, 3).await;
    let requester = nodes[3].handle.clone();
    let responder_id = nodes_peer(1);

    // The responder's node answers with bytes it makes from the range.
    let blocks = |from: u64, to: u64| -> Vec<u8> {
        (from..=to)
            .flat_map(|h| format!("block {h} + certificate;").into_bytes())
            .collect()
    };
    let request = tokio::spawn(async move { requester.request_blocks(responder_id, 5, 9).await });
    let (from, from_height, to_height, reply) = next_matching(&mut nodes[1].events, |e| match e {
        NetworkEvent::BlockRequest {
            from,
            from_height,
            to_height,
            reply,
        } => Some((from, from_height, to_height, reply)),
        _ => None,
    })
    .await;
    assert_eq!((from, from_height, to_height), (nodes_peer(3), 5, 9));
    reply.send(blocks(5, 9)).expect("requester waiting");
    let got = request.await.expect("task").expect("blocks");
    assert_eq!(got, blocks(5, 9));

    // The responder's node produces more than max_response_bytes: refused, nothing crashes.
    let requester = nodes[3].handle.clone();
    let request =
        tokio::spawn(async move { requester.request_blocks(responder_id, 0, 1_000_000).await });
    let reply = next_matching(&mut nodes[1].events, |e| match e {
        NetworkEvent::BlockRequest { reply, .. } => Some(reply),
        _ => None,
    })
    .await;
    reply
        .send(vec![7u8; max_response + 1])
        .expect("requester waiting");
    let result = request.await.expect("task");
    assert!(
        matches!(result, Err(NetworkError::Rejected { reason: Rejection::ResponseTooLarge, peer }) if peer == responder_id),
        "{result:?}"
    );

    // The node drops the reply: the requester learns it is unavailable.
    let requester = nodes[3].handle.clone();
    let request = tokio::spawn(async move { requester.request_blocks(responder_id, 1, 1).await });
    let reply = next_matching(&mut nodes[1].events, |e| match e {
        NetworkEvent::BlockRequest { reply, .. } => Some(reply),
        _ => None,
    })
    .await;
    drop(reply);
    let result = request.await.expect("task");
    assert!(
        matches!(
            result,
            Err(NetworkError::Rejected {
                reason: Rejection::Unavailable,
                ..
            })
        ),
        "{result:?}"
    );

    // An empty range never leaves the node; the responder still serves afterwards.
    assert!(matches!(
        nodes[3].handle.request_blocks(responder_id, 9, 5).await,
        Err(NetworkError::InvalidRange { from: 9, to: 5 })
    ));
    let requester = nodes[3].handle.clone();
    let request = tokio::spawn(async move { requester.request_blocks(responder_id, 2, 2).await });
    let reply = next_matching(&mut nodes[1].events, |e| match e {
        NetworkEvent::BlockRequest { reply, .. } => Some(reply),
        _ => None,
    })
    .await;
    reply.send(blocks(2, 2)).expect("requester waiting");
    assert_eq!(request.await.expect("task").expect("blocks"), blocks(2, 2));
    shutdown_all(&nodes).await;
}

/// A peer that does not share our limits (or ignores them) cannot make us read an oversized
/// frame: the reader refuses it from the length prefix, the sender gets an error, and both
/// nodes keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_over_the_readers_limit_fail_cleanly() {
    init_logs();
    let seeds = [11, 12];
    // Node 11 accepts large messages but only small responses; node 12 the opposite.
    let mut nodes = start_members(&seeds, &[], |c| {
        if c.secret_key == secret(11) {
            c.max_message_bytes = 64 * 1024;
            c.max_response_bytes = 1024;
        } else {
            c.max_message_bytes = 1024;
            c.max_response_bytes = 64 * 1024;
        }
    })
    .await;
    wait_for_mesh(&nodes, 1).await;
    let small = peer_id(11);
    let large = peer_id(12);

    // 11 -> 12: a 10 KiB consensus message passes 11's check but not 12's reader.
    let result = timeout(DEADLINE, nodes[0].handle.send(large, vec![1u8; 10 * 1024]))
        .await
        .expect("fails quickly, not by hanging");
    assert!(
        matches!(result, Err(NetworkError::RequestFailed { .. })),
        "{result:?}"
    );

    // 12 answers a block request from 11 with 10 KiB: within 12's limit, over 11's.
    let requester = nodes[0].handle.clone();
    let request = tokio::spawn(async move { requester.request_blocks(large, 1, 2).await });
    let reply = next_matching(&mut nodes[1].events, |e| match e {
        NetworkEvent::BlockRequest { reply, .. } => Some(reply),
        _ => None,
    })
    .await;
    reply.send(vec![2u8; 10 * 1024]).expect("requester waiting");
    let result = request.await.expect("task");
    // Refused by our reader from the length prefix (the message is our codec's).
    assert!(
        matches!(&result, Err(NetworkError::RequestFailed { reason, .. }) if reason.contains("exceeds the limit of 1024")),
        "{result:?}"
    );

    // 11 pushes 10 KiB of transactions to 12: queued (pushes wait for no answer), but 12's
    // reader refuses the frame, so 12's node never sees it; the batch is dropped, counted,
    // and does not hold up the pushes behind it.
    let sent = nodes[0]
        .handle
        .push_txs(vec![3u8; 10 * 1024])
        .await
        .expect("within 11's limit");
    assert_eq!(sent, 1);

    // Both still work within the limits.
    nodes[0]
        .handle
        .send(large, b"fits".to_vec())
        .await
        .expect("small send");
    let got = next_matching(&mut nodes[1].events, |e| match e {
        NetworkEvent::Consensus { from, bytes } => Some((from, bytes)),
        _ => None,
    })
    .await;
    assert_eq!(got, (small, b"fits".to_vec()));
    assert_eq!(
        nodes[0]
            .handle
            .push_txs(b"fits".to_vec())
            .await
            .expect("push"),
        1
    );
    assert_eq!(
        next_tx(&mut nodes[1].events).await,
        (small, b"fits".to_vec())
    );
    sleep(Duration::from_millis(300)).await;
    let extra = txs(&drain(&mut nodes[1].events));
    assert!(
        extra.is_empty(),
        "the oversized push was delivered: {extra:?}"
    );
    assert_eq!(stats(&nodes[0]).await.dropped_pushes, 1);
    assert_eq!(stats(&nodes[0]).await.connected_members, vec![large]);
    shutdown_all(&nodes).await;
}

/// A node that does not keep up never makes the network task buffer without bound: once its
/// event channel is full, direct messages, block requests and transaction pushes are answered
/// busy, each counted (the pusher counts the busy answer too); after the node catches up,
/// delivery resumes, and the push answered busy is delivered then, before later ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_node_gets_busy_answers_and_counted_drops() {
    init_logs();
    let capacity = 4;
    let mut nodes = start_members(&[41, 42], &[], |c| {
        if c.secret_key == secret(41) {
            c.event_capacity = capacity;
        }
    })
    .await;
    wait_for_mesh(&nodes, 1).await;
    drain(&mut nodes[0].events);
    let slow = nodes[0].peer_id;

    for i in 0..capacity {
        nodes[1]
            .handle
            .send(slow, vec![i as u8])
            .await
            .expect("queued while there is room");
    }
    let result = nodes[1].handle.send(slow, b"one too many".to_vec()).await;
    assert!(
        matches!(
            result,
            Err(NetworkError::Rejected {
                reason: Rejection::Busy,
                ..
            })
        ),
        "{result:?}"
    );
    let result = nodes[1].handle.request_blocks(slow, 1, 1).await;
    assert!(
        matches!(
            result,
            Err(NetworkError::Rejected {
                reason: Rejection::Busy,
                ..
            })
        ),
        "{result:?}"
    );
    let sent = nodes[1]
        .handle
        .push_txs(b"tx while slow".to_vec())
        .await
        .expect("push");
    assert_eq!(sent, 1);
    wait_until("the pusher counts the busy answer", || async {
        stats(&nodes[1]).await.busy_pushes >= 1
    })
    .await;
    let s = stats(&nodes[0]).await;
    assert_eq!((s.dropped_consensus, s.dropped_block_requests), (1, 1));
    assert!(s.dropped_txs >= 1, "{s:?}");
    assert_eq!(s.busy_pushes, 0, "the slow node pushed nothing");

    // The queue holds what was acknowledged, in order. The busy push is sent again
    // (every few milliseconds) until there is room, so it may already follow them.
    let queued = drain(&mut nodes[0].events);
    let expected: Vec<_> = (0..capacity)
        .map(|i| (nodes[1].peer_id, vec![i as u8]))
        .collect();
    assert_eq!(consensus(&queued), expected);
    let early = txs(&queued);
    assert!(
        early.is_empty() || early == vec![(nodes[1].peer_id, b"tx while slow".to_vec())],
        "{early:?}"
    );
    nodes[1]
        .handle
        .send(slow, b"after catching up".to_vec())
        .await
        .expect("room again");
    let got = next_matching(&mut nodes[0].events, |e| match e {
        NetworkEvent::Consensus { bytes, .. } => Some(bytes),
        _ => None,
    })
    .await;
    assert_eq!(got, b"after catching up".to_vec());
    nodes[1]
        .handle
        .push_txs(b"tx after catching up".to_vec())
        .await
        .expect("push");
    // The refused push was not lost, and nothing overtook it (the two may arrive
    // concatenated when the second was queued behind the first's retry).
    let mut expected = b"tx after catching up".to_vec();
    if early.is_empty() {
        expected = [b"tx while slow".to_vec(), expected].concat();
    }
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let (from, bytes) = next_tx(&mut nodes[0].events).await;
        assert_eq!(from, nodes[1].peer_id);
        got.extend(bytes);
    }
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );
    let pusher = stats(&nodes[1]).await;
    let slow_stats = stats(&nodes[0]).await;
    assert_eq!(
        pusher.busy_pushes, slow_stats.dropped_txs,
        "every busy answer counted on both sides"
    );
    assert_eq!(pusher.dropped_pushes, 0);
    shutdown_all(&nodes).await;
}
