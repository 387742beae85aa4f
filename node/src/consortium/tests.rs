//! The driver's pure helpers: timer slots, block hashes, addresses.

use super::*;

#[test]
fn pre_prepares_only_from_their_author_votes_from_anyone() {
    use tracechain_consensus::{Message, PrePrepare};
    let pre_prepare = Message::PrePrepare(PrePrepare {
        view: 0,
        height: 1,
        block_hash: [0; 32],
        block: Vec::new(),
        from: ReplicaId(0),
        signature: ed25519_dalek::Signature::from_bytes(&[0; 64]),
    });
    assert!(from_whom_it_names(&pre_prepare, ReplicaId(0)));
    assert!(!from_whom_it_names(&pre_prepare, ReplicaId(2)));
    // Votes carry everything they sign, so they may be relayed.
    let prepare = Message::Prepare(tracechain_consensus::Vote {
        view: 0,
        height: 1,
        block_hash: [0; 32],
        from: ReplicaId(0),
        signature: ed25519_dalek::Signature::from_bytes(&[0; 64]),
    });
    assert!(from_whom_it_names(&prepare, ReplicaId(2)));
}

#[test]
fn a_block_hashes_as_its_header_without_decoding_its_transactions() {
    let header = pb::BlockHeader {
        height: 7,
        ..Default::default()
    }
    .encode_to_vec();
    let block = pb::Block {
        header: header.clone(),
        txs: vec![pb::SignedTx::default(); 3],
    }
    .encode_to_vec();
    assert_eq!(
        block_hash_of(&block),
        Some(*blake3::hash(&header).as_bytes())
    );
    // Same as hashing the header of the fully decoded block.
    let decoded = pb::Block::decode(block.as_slice()).expect("decodes");
    assert_eq!(
        block_hash_of(&block),
        Some(*blake3::hash(&decoded.header).as_bytes())
    );
    // Bytes that are not a block have no hash.
    assert_eq!(block_hash_of(&[0x0a, 0xff]), None);
}

/// The network may deliver several pushed batches concatenated (tracechain-p2p's
/// `push_txs`); protobuf decodes a concatenation as the merge, so the transactions come
/// out as one batch, in order.
#[test]
fn concatenated_batches_decode_as_one_batch_in_order() {
    let tx = |n: u8| pb::SignedTx {
        body: vec![n; 3],
        signature: vec![n],
    };
    let a = pb::TxBatch {
        txs: vec![tx(1), tx(2)],
    };
    let b = pb::TxBatch { txs: vec![tx(3)] };
    let joined = [a.encode_to_vec(), b.encode_to_vec()].concat();
    let batch = pb::TxBatch::decode(joined.as_slice()).expect("decodes");
    assert_eq!(batch.txs, vec![tx(1), tx(2), tx(3)]);
}
