//! Only member and observer keys may connect. An outsider is refused at the connection level
//! (never reported connected, counted on every member); an observer connects, pushes
//! transactions to the members (and is never pushed any), may sync blocks, and may not send
//! consensus messages.

mod common;

use std::time::Duration;

use common::*;
use tokio::time::sleep;
use tracechain_p2p::{NetworkError, NetworkEvent, PeerId, PeerRole, Rejection};

const MEMBERS: [u8; 4] = [21, 22, 23, 24];
const OBSERVER: u8 = 50;
const OUTSIDER: u8 = 66;
const LONE_MEMBER: u8 = 25;
const LONE_OBSERVER: u8 = 51;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsider_is_refused_and_observer_pushes_to_members() {
    init_logs();
    let mut members = start_members(&MEMBERS, &[OBSERVER], |_| {}).await;
    wait_for_mesh(&members, 3).await;
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

    wait_until("the observer is connected to all members", || async {
        stats(&observer).await.connected_members.len() == 4
    })
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

    // Every member's events are kept (not skipped by `next_matching`) for the checks at the end.
    let mut logs: Vec<Vec<NetworkEvent>> = members.iter().map(|_| Vec::new()).collect();

    // The observer's push (its clients' transactions) reaches every member directly.
    let from_observer = b"tx: pallet 4 temperature excursion".to_vec();
    let sent = observer
        .handle
        .push_txs(from_observer.clone())
        .await
        .expect("observer push");
    assert_eq!(sent, 4);
    // A member's push goes to the three other members only, never to the observer.
    let from_member = b"tx: pallet 4 unloaded".to_vec();
    let sent = members[0]
        .handle
        .push_txs(from_member.clone())
        .await
        .expect("member push");
    assert_eq!(sent, 3, "pushed to the other members, not the observer");
    let expected = |i: usize| {
        let mut expected = vec![(observer.peer_id, from_observer.clone())];
        if i != 0 {
            expected.push((members_peer(0), from_member.clone()));
        }
        expected.sort();
        expected
    };
    for (i, member) in members.iter_mut().enumerate() {
        let count = expected(i).len();
        let what = format!("member {i} gets {count} pushes");
        collect_until(&mut member.events, &mut logs[i], &what, |log| {
            txs(log).len() >= count
        })
        .await;
    }
    // Exactly once each, and nothing reaches the observer within a second.
    sleep(Duration::from_millis(1000)).await;
    assert!(
        txs(&drain(&mut observer.events)).is_empty(),
        "a transaction was pushed to the observer"
    );
    for (i, member) in members.iter_mut().enumerate() {
        logs[i].extend(drain(&mut member.events));
        let mut got = txs(&logs[i]);
        got.sort();
        assert_eq!(got, expected(i), "member {i} deliveries");
        assert_eq!(stats(member).await.rejected_txs, 0);
    }

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
    for (member, log) in members.iter_mut().zip(&mut logs) {
        log.extend(drain(&mut member.events));
        for event in log.iter() {
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

/// Pushes go to connected members only: with no member connected (alone, or with only an
/// observer) a push fails with `NoPeers`, while the observer can still push to the member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_needs_a_connected_member() {
    init_logs();
    let mut member = start_members(&[LONE_MEMBER], &[LONE_OBSERVER], |_| {})
        .await
        .remove(0);
    let result = member.handle.push_txs(b"tx".to_vec()).await;
    assert!(matches!(result, Err(NetworkError::NoPeers)), "{result:?}");

    let observer_config = fast_config(
        LONE_OBSERVER,
        loopback(),
        member_specs(&[LONE_MEMBER], &[Some(member.addr.clone())]),
        Vec::new(),
    );
    let mut observer = start(LONE_OBSERVER, observer_config).await;
    wait_until("the member sees the observer", || async {
        stats(&member).await.connected_observers == vec![observer.peer_id]
    })
    .await;
    wait_until("the observer sees the member", || async {
        stats(&observer).await.connected_members == vec![member.peer_id]
    })
    .await;
    let result = member.handle.push_txs(b"tx".to_vec()).await;
    assert!(
        matches!(result, Err(NetworkError::NoPeers)),
        "an observer is never pushed to: {result:?}"
    );
    let tx = b"tx from the observer's client".to_vec();
    assert_eq!(observer.handle.push_txs(tx.clone()).await.expect("push"), 1);
    assert_eq!(next_tx(&mut member.events).await, (observer.peer_id, tx));
    assert!(txs(&drain(&mut observer.events)).is_empty());

    observer.handle.shutdown().await;
    member.handle.shutdown().await;
}

fn members_peer(index: usize) -> PeerId {
    peer_id(MEMBERS[index])
}

async fn futures_refused(members: &[Node]) -> Vec<u64> {
    let mut out = Vec::new();
    for member in members {
        out.push(stats(member).await.refused_connections);
    }
    out
}
