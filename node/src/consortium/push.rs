//! Transactions between members: pushing a client's admitted transactions to the other
//! members in batches, and admitting the batches they push, each member's in the order it
//! pushed them.

use std::sync::Arc;

use prost::Message as _;
use tokio::sync::mpsc;
use tracechain_p2p::{NetworkHandle, PeerId};
use tracechain_proto::v1 as pb;

use super::TX_BATCH_BYTES;
use crate::{
    node::{Node, Origin},
    tx::CheckedTx,
};

/// Pushed batches (as received, possibly several concatenated) waiting for admission.
/// When full, the network answers pushes busy and their senders send them again later,
/// in order: admission that is behind slows the pushers down, and nothing is dropped.
/// Small, because a push may be as large as the largest network message (which must hold a
/// block): a member flooding maximal pushes holds at most this many of them in memory.
/// Honest members send at most 1 MiB per push (the network's coalescing bound).
const PUSH_QUEUE: usize = 16;
/// Most transactions one round of push admission takes from its queue.
const PUSH_ROUND_TXS: usize = 20_000;

/// Admits the batches other members push. Each round takes what has arrived (up to
/// [`PUSH_ROUND_TXS`]), joins each peer's batches in arrival order, and admits the peers'
/// transactions concurrently, each peer's as one submission, before it takes more. So each
/// member's pushes are admitted in the order it pushed them: a device's readings reach
/// its member in sequence order and are pushed in that order, and a primary that admitted
/// reading 6 before 5 would propose 6 and make 5 a replay. Under load, rounds grow and
/// their fixed costs are shared by more transactions.
pub(super) fn spawn_push_admission(node: Node) -> mpsc::Sender<(PeerId, Vec<u8>)> {
    let (tx, mut rx) = mpsc::channel::<(PeerId, Vec<u8>)>(PUSH_QUEUE);
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut round: Vec<(PeerId, Vec<pb::SignedTx>)> = Vec::new();
            let mut taken = 0;
            let mut next = Some(first);
            while let Some((from, bytes)) = next.take() {
                match pb::TxBatch::decode(bytes.as_slice()) {
                    Ok(batch) => {
                        taken += batch.txs.len();
                        match round.iter_mut().find(|(peer, _)| *peer == from) {
                            Some((_, txs)) => txs.extend(batch.txs),
                            None => round.push((from, batch.txs)),
                        }
                    }
                    Err(e) => tracing::warn!(%from, error = %e, "malformed transaction batch"),
                }
                if taken < PUSH_ROUND_TXS {
                    next = rx.try_recv().ok();
                }
            }
            futures::future::join_all(
                round
                    .into_iter()
                    .map(|(_, txs)| node.submit_from(Origin::Peer, txs)),
            )
            .await;
        }
    });
    tx
}

/// Pushes a client's transactions to every connected member, in batches of about
/// [`TX_BATCH_BYTES`].
pub(super) async fn push(net: &NetworkHandle, txs: &[Arc<CheckedTx>]) {
    let mut batch = pb::TxBatch::default();
    let mut bytes = 0;
    for tx in txs {
        let len = tx.signed.encoded_len();
        if bytes + len > TX_BATCH_BYTES && !batch.txs.is_empty() {
            push_batch(net, std::mem::take(&mut batch)).await;
            bytes = 0;
        }
        bytes += len + 4;
        batch.txs.push(tx.signed.clone());
    }
    if !batch.txs.is_empty() {
        push_batch(net, batch).await;
    }
}

pub(super) async fn push_batch(net: &NetworkHandle, batch: pb::TxBatch) {
    match net.push_txs(batch.encode_to_vec()).await {
        Ok(_) | Err(tracechain_p2p::NetworkError::NoPeers) => {}
        // The transactions stay in our mempool and are proposed from there when this
        // node leads; otherwise a view change brings them in (censorship timer).
        Err(e) => tracing::warn!(txs = batch.txs.len(), error = %e, "pushing transactions failed"),
    }
}
