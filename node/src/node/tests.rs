//! The node's bounds and admission paths: mempool limits, committed ids, peers' pushes.

use tracechain_proto::v1::tx_body::Action;

use super::*;
use crate::tx;
use crate::{
    crypto::{Scheme, SecretKey},
    genesis::GenesisFile,
};

const CHAIN: &str = "node-test";

/// The node key, admin key and genesis of a one-member chain.
fn single_member() -> (SigningKey, SecretKey, Genesis) {
    let node_key = SigningKey::from_bytes(&[3; 32]);
    let admin = SecretKey::from_bytes(Scheme::Ed25519, &[4; 32]).expect("seed");
    let genesis = Genesis::from_file(GenesisFile::single_member(
        CHAIN,
        1_700_000_000_000,
        &node_key.verifying_key(),
        &admin.public_key(),
    ))
    .expect("genesis");
    (node_key, admin, genesis)
}

fn setup(dir: &std::path::Path, mempool_max_txs: usize) -> (Node, SecretKey) {
    let (node_key, admin, genesis) = single_member();
    let mut config = NodeConfig::new(dir.join("db"), "farm".into());
    config.mempool_max_txs = mempool_max_txs;
    (Node::open(config, genesis, node_key).expect("open"), admin)
}

fn register(admin: &SecretKey, seq: u64) -> pb::SignedTx {
    let device = SecretKey::from_bytes(Scheme::Ed25519, &[seq as u8 + 50; 32]).expect("seed");
    tx::sign_body(
        &pb::TxBody {
            chain_id: CHAIN.into(),
            signer: Some(pb::Signer {
                kind: pb::SignerKind::Member as i32,
                id: "farm".into(),
                scheme: pb::SignatureScheme::Ed25519 as i32,
                public_key: admin.public_key(),
            }),
            sequence: seq,
            time_ms: now_ms(),
            action: Some(Action::RegisterDevice(pb::RegisterDevice {
                device_id: format!("dev-{seq}"),
                scheme: pb::SignatureScheme::Ed25519 as i32,
                public_key: device.public_key(),
                device_type: String::new(),
            })),
        },
        admin,
    )
}

#[test]
fn a_proposal_spacing_past_the_bound_is_refused_at_open() {
    let dir = tempfile::tempdir().expect("dir");
    let (node_key, _, genesis) = single_member();
    let mut config = NodeConfig::new(dir.path().join("db"), "farm".into());
    config.min_block_interval = Duration::from_millis(MAX_MIN_BLOCK_INTERVAL_MS + 1);
    let Err(StartError::Config(message)) =
        Node::open(config.clone(), genesis.clone(), node_key.clone())
    else {
        panic!("a spacing past the bound opened");
    };
    assert!(message.contains("min_block_interval"), "{message}");
    config.min_block_interval = Duration::from_millis(MAX_MIN_BLOCK_INTERVAL_MS);
    assert!(Node::open(config, genesis, node_key).is_ok());
}

#[tokio::test]
async fn full_mempool_refuses_with_resource_exhausted_and_keeps_what_it_has() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, admin) = setup(dir.path(), 3);
    let txs: Vec<_> = (1..=5).map(|s| register(&admin, s)).collect();
    let outcomes = node.submit(txs).await;
    assert!(outcomes[..3].iter().all(Result::is_ok), "{outcomes:?}");
    for o in &outcomes[3..] {
        let e = o.as_ref().expect_err("pool is full");
        assert!(matches!(e, AdmissionError::Full { capacity: 3 }), "{e}");
        assert_eq!(
            crate::api::admission_code(e),
            tonic::Code::ResourceExhausted
        );
    }
    assert_eq!(node.status().await.mempool_size, 3);
    // A block drains the pool; nothing admitted was lost.
    assert_eq!(node.produce_block().await.expect("produced"), Some(1));
    let block = node.block(1).await.expect("read").expect("block");
    assert_eq!(block.results.len(), 3);
    assert_eq!(node.status().await.mempool_size, 0);
    // The two refused ones can be submitted again now.
    let again = node
        .submit((4..=5).map(|s| register(&admin, s)).collect())
        .await;
    assert!(again.iter().all(Result::is_ok), "{again:?}");
}

#[tokio::test]
async fn a_transaction_committed_while_it_was_checked_does_not_go_back_into_the_pool() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, admin) = setup(dir.path(), 100);
    let first = register(&admin, 1);
    // A pushed copy's admission checks committed state and signatures (mark 0)...
    let (stale_mark, stale_checks) =
        admission::check(&node.shared.gate(), Origin::Peer, vec![first.clone()]);
    assert!(stale_checks[0].is_ok(), "{stale_checks:?}");
    let (_, stale_again) = admission::check(&node.shared.gate(), Origin::Peer, vec![first.clone()]);
    // ... while the client's own copy is pooled and committed in block 1.
    assert!(node.submit(vec![first.clone()]).await[0].is_ok());
    let second = register(&admin, 2);
    let (mark, checks) = admission::check(&node.shared.gate(), Origin::Peer, vec![second]);
    assert_eq!(mark, 0);
    assert_eq!(node.produce_block().await.expect("produced"), Some(1));
    // The late insert of the committed one is refused (the pool remembers block 1);
    // the other goes in.
    let outcomes = node.pool_checked(Origin::Peer, None, mark, stale_checks);
    assert!(
        matches!(
            &outcomes[0],
            Err(AdmissionError::Duplicate {
                where_: Seen::Committed { height: 1 },
                ..
            })
        ),
        "{outcomes:?}"
    );
    assert!(node.pool_checked(Origin::Peer, None, mark, checks)[0].is_ok());
    assert_eq!(node.status().await.mempool_size, 1);

    // A check older than the blocks the pool remembers asks the store instead.
    for seq in 3..=(crate::mempool::REMEMBERED_BLOCKS as u64 + 2) {
        assert!(node.submit(vec![register(&admin, seq)]).await[0].is_ok());
        assert!(node.produce_block().await.is_ok_and(|h| h.is_some()));
    }
    let outcomes = node.pool_checked(Origin::Peer, None, stale_mark, stale_again);
    assert!(
        matches!(
            &outcomes[0],
            Err(AdmissionError::Duplicate {
                where_: Seen::Committed { height: 1 },
                ..
            })
        ),
        "{outcomes:?}"
    );
    assert_eq!(node.status().await.mempool_size, 0);
}

#[tokio::test]
async fn a_full_pool_refuses_clients_before_any_check_and_keeps_headroom_for_peers() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, admin) = setup(dir.path(), 2);
    let first = node
        .submit(vec![register(&admin, 1), register(&admin, 2)])
        .await;
    assert!(first.iter().all(Result::is_ok), "{first:?}");
    // At the client bound, a client's request is refused whole before it is decoded
    // or verified: a garbled signature is answered "full", not "bad signature".
    let mut garbled = register(&admin, 3);
    garbled.signature[0] ^= 1;
    let refused = node
        .submit(vec![garbled.clone(), register(&admin, 4)])
        .await;
    for r in &refused {
        let e = r.as_ref().expect_err("full");
        assert!(matches!(e, AdmissionError::Full { capacity: 2 }), "{e}");
        assert_eq!(
            crate::api::admission_code(e),
            tonic::Code::ResourceExhausted
        );
    }
    // Another member's push is still admitted, up to PEER_HEADROOM times the bound
    // (that member took it from its client; the primary must be able to propose it),
    // and is still checked: the garbled one is refused for its signature.
    let from_peer = node
        .submit_from(Origin::Peer, vec![garbled, register(&admin, 4)])
        .await;
    assert!(
        matches!(from_peer[0], Err(AdmissionError::Invalid(_))),
        "{from_peer:?}"
    );
    assert!(from_peer[1].is_ok(), "{from_peer:?}");
    let bound = 2 * PEER_HEADROOM;
    let more: Vec<_> = (5..=(bound as u64 + 3))
        .map(|s| register(&admin, s))
        .collect();
    let outcomes = node.submit_from(Origin::Peer, more).await;
    let admitted = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(admitted, bound - 3, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .filter_map(|o| o.as_ref().err())
            .all(|e| matches!(e, AdmissionError::Full { capacity } if *capacity == bound)),
        "{outcomes:?}"
    );
    assert_eq!(node.status().await.mempool_size, bound as u64);
    // Nothing admitted is lost: blocks drain the pool.
    while node.status().await.mempool_size > 0 {
        assert!(matches!(node.produce_block().await, Ok(Some(_))));
    }
}

#[tokio::test]
async fn committed_transactions_are_duplicates_and_restart_keeps_the_head() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, admin) = setup(dir.path(), 100);
    let tx = register(&admin, 1);
    assert!(node.submit(vec![tx.clone()]).await[0].is_ok());
    let again = node.submit(vec![tx.clone()]).await;
    assert!(matches!(again[0], Err(AdmissionError::Duplicate { .. })));
    assert_eq!(node.produce_block().await.expect("produced"), Some(1));
    let after = node.submit(vec![tx]).await;
    let e = after[0].as_ref().expect_err("committed");
    assert_eq!(crate::api::admission_code(e), tonic::Code::AlreadyExists);
    assert!(e.to_string().contains("committed at height 1"), "{e}");
    let status = node.status().await;
    drop(node);
    let (node, _) = setup(dir.path(), 100);
    let reopened = node.status().await;
    assert_eq!(
        (
            reopened.height,
            reopened.head_hash,
            reopened.state_commitment
        ),
        (status.height, status.head_hash, status.state_commitment)
    );
}

#[tokio::test]
async fn an_overloaded_consortium_queue_refuses_clients_and_admits_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, admin) = setup(dir.path(), 100);
    // A driver that takes one batch and then falls behind.
    let (announce, mut driver) = mpsc::channel::<Admitted>(1);
    node.shared.admitted.set(announce).expect("first driver");
    let first = node
        .submit(vec![register(&admin, 1), register(&admin, 2)])
        .await;
    assert!(first.iter().all(Result::is_ok), "{first:?}");
    let started = std::time::Instant::now();
    let second = node.submit(vec![register(&admin, 3)]).await;
    let e = second[0].as_ref().expect_err("the queue is full");
    assert!(matches!(e, AdmissionError::Overloaded), "{e}");
    assert_eq!(
        crate::api::admission_code(e),
        tonic::Code::ResourceExhausted
    );
    assert!(
        started.elapsed() >= ANNOUNCE_WAIT,
        "it waited for room first"
    );
    assert_eq!(
        node.status().await.mempool_size,
        2,
        "nothing refused was admitted"
    );
    // A peer's push is admitted anyway (its origin sent it to every member).
    let peer = node
        .submit_from(Origin::Peer, vec![register(&admin, 4)])
        .await;
    assert!(peer[0].is_ok(), "{peer:?}");
    // The first submission was announced as one batch, with its transactions.
    let batch = driver.recv().await.expect("announced");
    assert_eq!(batch.origin, Origin::Client);
    assert_eq!(batch.txs.len(), 2);
    // With room again, the client's transaction goes in.
    let third = node.submit(vec![register(&admin, 3)]).await;
    assert!(third[0].is_ok(), "{third:?}");
    assert_eq!(node.status().await.mempool_size, 4);
}

#[tokio::test]
async fn a_pending_transaction_is_not_checked_twice() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, admin) = setup(dir.path(), 100);
    let tx = register(&admin, 1);
    assert!(node.submit(vec![tx.clone()]).await[0].is_ok());
    // Same body, signature garbled: refused as a duplicate of what is pending,
    // without a signature check.
    let mut garbled = tx;
    garbled.signature[5] ^= 1;
    let again = node.submit(vec![garbled]).await;
    assert!(
        matches!(again[0], Err(AdmissionError::Duplicate { .. })),
        "{again:?}"
    );
}

fn signed(
    key: &SecretKey,
    kind: pb::SignerKind,
    id: &str,
    seq: u64,
    action: Action,
) -> pb::SignedTx {
    tx::sign_body(
        &pb::TxBody {
            chain_id: CHAIN.into(),
            signer: Some(pb::Signer {
                kind: kind as i32,
                id: id.into(),
                scheme: pb::SignatureScheme::Ed25519 as i32,
                public_key: key.public_key(),
            }),
            sequence: seq,
            time_ms: now_ms(),
            action: Some(action),
        },
        key,
    )
}

fn reading_at(key: &SecretKey, seq: u64, observed_at_ms: i64, milli_c: i32) -> pb::SignedTx {
    signed(
        key,
        pb::SignerKind::Device,
        "logger",
        seq,
        Action::SensorReport(pb::SensorReport {
            shipment_id: "s1".into(),
            observed_at_ms,
            temperature_milli_c: milli_c,
            humidity_permille: None,
            location: None,
        }),
    )
}

async fn committed_result(node: &Node, tx: &pb::SignedTx) -> pb::TxResult {
    let id = TxId::of_body(&tx.body);
    let lookup = node.get_tx(id).await.expect("reads");
    assert_eq!(lookup.status, pb::TxStatus::Committed, "{id} not committed");
    lookup.result.expect("a committed transaction has a result")
}

/// A clone at work, end to end on one node: the node keeps the pairs it sees (a replay
/// with another body refused at admission; a reading with an older time refused in a
/// block), a member proves one to the ledger, and the key is refused from then on.
#[tokio::test]
async fn a_node_keeps_a_clones_conflicting_readings_for_a_member_to_prove() {
    let dir = tempfile::tempdir().expect("dir");
    let (node, admin) = setup(dir.path(), 100);
    let device = SecretKey::from_bytes(Scheme::Ed25519, &[77; 32]).expect("seed");
    let member = |seq, action| signed(&admin, pb::SignerKind::Member, "farm", seq, action);
    let setup_txs = vec![
        member(
            1,
            Action::RegisterDevice(pb::RegisterDevice {
                device_id: "logger".into(),
                scheme: pb::SignatureScheme::Ed25519 as i32,
                public_key: device.public_key(),
                device_type: String::new(),
            }),
        ),
        member(
            2,
            Action::CreateShipment(pb::CreateShipment {
                shipment_id: "s1".into(),
                products: vec![],
                owner: String::new(),
                policy: Some(pb::ColdChainPolicy {
                    min_milli_c: 2_000,
                    max_milli_c: 8_000,
                    ..Default::default()
                }),
                origin_location: String::new(),
                device_ids: vec!["logger".into()],
            }),
        ),
    ];
    assert!(node.submit(setup_txs).await.iter().all(Result::is_ok));
    node.produce_block().await.expect("block 1");
    let t = now_ms() - 60_000;
    // In one block: sequence 5, and sequence 6 with a reading a minute older.
    let genuine = reading_at(&device, 5, t, 5_000);
    let older = reading_at(&device, 6, t - 60_000, 5_000);
    assert!(
        node.submit(vec![genuine.clone(), older.clone()])
            .await
            .iter()
            .all(Result::is_ok)
    );
    node.produce_block().await.expect("block 2");
    assert_eq!(
        committed_result(&node, &genuine).await.code,
        pb::ResultCode::Ok as i32
    );
    assert_eq!(
        committed_result(&node, &older).await.code,
        pb::ResultCode::BadTimestamp as i32
    );
    let seen = node.device_conflicts(Some("logger"));
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].kind, pb::DeviceConflictKind::ClockReversed as i32);
    assert_eq!((seen[0].first_sequence, seen[0].second_sequence), (5, 6));

    // Sequence 5 again, another body: refused at admission, and kept as a pair.
    let clone = reading_at(&device, 5, t, 3_000);
    let refused = node.submit(vec![clone]).await;
    assert!(
        matches!(refused[0], Err(AdmissionError::Replayed { .. })),
        "{refused:?}"
    );
    let seen = node.device_conflicts(None);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].kind, pb::DeviceConflictKind::SameSequence as i32);
    assert!(node.device_conflicts(Some("other")).is_empty());
    // A forged one (the device's key named, another key signing) is refused the same
    // way and proves nothing: the watch keeps nothing for it.
    let forger = SecretKey::from_bytes(Scheme::Ed25519, &[78; 32]).expect("seed");
    let mut body =
        pb::TxBody::decode(reading_at(&device, 5, t, 1_000).body.as_slice()).expect("body");
    body.time_ms += 1;
    let forged = tx::sign_body(&body, &forger);
    assert!(matches!(
        node.submit(vec![forged]).await[0],
        Err(AdmissionError::Replayed { .. })
    ));
    assert_eq!(node.device_conflicts(None).len(), 2);
    // A plain replay of the committed reading is a duplicate, not a conflict.
    let again = node.submit(vec![genuine]).await;
    assert!(matches!(again[0], Err(AdmissionError::Duplicate { .. })));
    assert_eq!(node.device_conflicts(None).len(), 2);

    // A member proves it; the key is refused from then on.
    let report = member(
        3,
        Action::ReportDeviceConflict(seen[1].report.clone().expect("proof")),
    );
    let after = reading_at(&device, 7, t + 1_000, 5_000);
    assert!(node.submit(vec![report.clone()]).await[0].is_ok());
    node.produce_block().await.expect("block 3");
    let result = committed_result(&node, &report).await;
    assert_eq!(result.code, pb::ResultCode::Ok as i32, "{}", result.message);
    assert!(node.submit(vec![after.clone()]).await[0].is_ok());
    node.produce_block().await.expect("block 4");
    assert_eq!(
        committed_result(&node, &after).await.code,
        pb::ResultCode::DeviceKeyCompromised as i32
    );
    let record = node
        .device("logger")
        .await
        .expect("reads")
        .expect("registered");
    assert_eq!(record.conflicts.len(), 1);
    assert_eq!(record.conflicts[0].reported_by, "farm");
    // The shipment's device-signed verdict now comes with the flag.
    let twin = node.shipment("s1").await.expect("reads").expect("exists");
    let flags = node.device_flags(&twin).await.expect("reads");
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert!(
        flags[0].starts_with("device logger is flagged as cloned"),
        "{flags:?}"
    );
}
