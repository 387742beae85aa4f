//! A member that shuts down and restarts on the same address is found again by the others
//! (their redial with backoff), without dialling anyone itself.

mod common;

use common::*;
use tracechain_p2p::NetworkEvent;

const MEMBERS: [u8; 4] = [31, 32, 33, 34];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_member_is_redialled_by_the_others() {
    init_logs();
    let mut nodes = start_members(&MEMBERS, &[], |_| {}).await;
    wait_for_mesh(&nodes, 3).await;
    let restarted_id = nodes[0].peer_id;
    let addr = nodes[0].addr.clone();

    nodes[0].handle.shutdown().await;
    for node in &mut nodes[1..] {
        let gone = next_matching(&mut node.events, |e| match e {
            NetworkEvent::PeerDisconnected { peer, .. } => Some(peer),
            _ => None,
        })
        .await;
        assert_eq!(gone, restarted_id);
    }
    for node in &nodes[1..] {
        assert_eq!(stats(node).await.connected_members.len(), 2);
    }

    // Same key, same port; it knows no addresses, so only the others' redials can reconnect it.
    let no_addrs = member_specs(&MEMBERS, &[]);
    let config = fast_config(MEMBERS[0], addr.clone(), no_addrs, Vec::new());
    let mut restarted = start(MEMBERS[0], config).await;
    assert_eq!(restarted.peer_id, restarted_id);
    assert_eq!(restarted.addr, addr);

    for node in &mut nodes[1..] {
        let back = next_matching(&mut node.events, |e| match e {
            NetworkEvent::PeerConnected { peer, .. } => Some(peer),
            _ => None,
        })
        .await;
        assert_eq!(back, restarted_id);
    }
    wait_until("the restarted member is connected to all", || async {
        stats(&restarted).await.connected_members.len() == 3
    })
    .await;

    // And it takes part again: a push in, a direct message out.
    let tx = b"tx after restart".to_vec();
    let sent = nodes[2].handle.push_txs(tx.clone()).await.expect("push");
    assert_eq!(sent, 3, "the restarted member is among the push targets");
    assert_eq!(next_tx(&mut restarted.events).await, (nodes[2].peer_id, tx));
    restarted
        .handle
        .send(nodes[3].peer_id, b"view change".to_vec())
        .await
        .expect("send");
    let (from, bytes) = next_matching(&mut nodes[3].events, |e| match e {
        NetworkEvent::Consensus { from, bytes } => Some((from, bytes)),
        _ => None,
    })
    .await;
    assert_eq!((from, bytes), (restarted_id, b"view change".to_vec()));

    restarted.handle.shutdown().await;
    shutdown_all(&nodes[1..]).await;
}
