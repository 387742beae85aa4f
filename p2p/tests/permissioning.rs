//! Only member and observer keys may connect. An outsider is refused at the connection level
//! (never reported connected, counted on every member); an observer connects, receives gossip,
//! may sync blocks, and may not send consensus messages.

mod common;

use std::time::Duration;

use common::*;
use tokio::time::sleep;
use tracechain_p2p::{NetworkError, NetworkEvent, PeerRole, Rejection};

const MEMBERS: [u8; 4] = [21, 22, 23, 24];
const OBSERVER: u8 = 50;
const OUTSIDER: u8 = 66;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsider_is_refused_and_observer_receives_gossip() {
    init_logs();
    let mut members = start_members(&MEMBERS, &[OBSERVER], |_| {}).await;
    wait_for_mesh(&members, 3, 3).await;
    let addrs = all_addrs(&members);

    // The observer knows the members (as every node does, from the genesis) and dials them.
    let observer_config = fast_config(
        OBSERVER,
        loopback(),
        member_specs(&MEMBERS, &addrs),
        Vec::new(),
    );
    let mut observer = start(OBSERVER, observer_config).await;
    // The outsider has the same information and tries the same, with a key nobody allowed.
    let outsider_config = fast_config(
        OUTSIDER,
        loopback(),
        member_specs(&MEMBERS, &addrs),
        Vec::new(),
    );
    let outsider = start(OUTSIDER, outsider_config).await;

    wait_until(
        "the observer is connected to all members and sees their subscriptions",
        || async {
            let s = stats(&observer).await;
            s.connected_members.len() == 4 && s.gossip_peers == 4
        },
    )
    .await;
    for member in &members {
        wait_until(
            "the member counts refused connections from the outsider",
            || async { stats(member).await.refused_connections >= 1 },
        )
        .await;
        let s = stats(member).await;
        assert_eq!(s.connected_observers, vec![observer.peer_id]);
        assert_eq!(s.connected_members.len(), 3);
        assert!(!s.connected_members.contains(&outsider.peer_id));
    }

    // The outsider cannot get a message in either.
    let attempt = outsider
        .handle
        .send(members[0].peer_id, b"fake prepare".to_vec())
        .await;
    assert!(
        attempt.is_err(),
        "outsider's message was accepted: {attempt:?}"
    );

    // A member's gossip reaches the observer exactly once.
    let tx = b"tx: pallet 4 temperature excursion".to_vec();
    members[0]
        .handle
        .publish_tx(tx.clone())
        .await
        .expect("publish");
    let got = next_matching(&mut observer.events, |e| match e {
        NetworkEvent::Tx { from, bytes } => Some((from, bytes)),
        _ => None,
    })
    .await;
    assert_eq!(got, (members[0].peer_id, tx));
    sleep(Duration::from_millis(1000)).await;
    assert!(
        txs(&drain(&mut observer.events)).is_empty(),
        "delivered twice"
    );

    // Observers may sync blocks...
    let responder = members[1].peer_id;
    let observer_handle = observer.handle.clone();
    let request =
        tokio::spawn(async move { observer_handle.request_blocks(responder, 0, 3).await });
    let (from, reply) = next_matching(&mut members[1].events, |e| match e {
        NetworkEvent::BlockRequest { from, reply, .. } => Some((from, reply)),
        _ => None,
    })
    .await;
    assert_eq!(from, observer.peer_id);
    reply
        .send(b"blocks 0..=3".to_vec())
        .expect("observer waiting");
    assert_eq!(
        request.await.expect("task").expect("blocks"),
        b"blocks 0..=3".to_vec()
    );

    // ...but not inject consensus messages.
    let result = observer
        .handle
        .send(members[2].peer_id, b"vote".to_vec())
        .await;
    assert!(
        matches!(
            result,
            Err(NetworkError::Rejected {
                reason: Rejection::NotAMember,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(stats(&members[2]).await.rejected_consensus, 1);

    // Across everything, no member ever reported the outsider as connected, and none got a
    // message from it; the observer was reported with its role.
    for member in &mut members {
        let events = drain(&mut member.events);
        for event in &events {
            match event {
                NetworkEvent::PeerConnected { peer, role, .. } => {
                    assert_ne!(*peer, outsider.peer_id, "outsider reached PeerConnected");
                    if *peer == observer.peer_id {
                        assert_eq!(*role, PeerRole::Observer);
                    }
                }
                NetworkEvent::Consensus { from, .. } | NetworkEvent::Tx { from, .. } => {
                    assert_ne!(
                        *from, outsider.peer_id,
                        "message from the outsider delivered"
                    );
                }
                _ => {}
            }
        }
    }
    let refused: Vec<u64> = futures_refused(&members).await;
    assert!(
        refused.iter().all(|n| *n >= 1),
        "refused counters: {refused:?}"
    );

    outsider.handle.shutdown().await;
    observer.handle.shutdown().await;
    shutdown_all(&members).await;
}

async fn futures_refused(members: &[Node]) -> Vec<u64> {
    let mut out = Vec::new();
    for member in members {
        out.push(stats(member).await.refused_connections);
    }
    out
}
