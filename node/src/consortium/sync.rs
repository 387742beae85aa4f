//! Block sync: fetching the blocks after our head from a member, and serving ranges of
//! committed blocks to members that are behind. Nothing served is trusted: each block is
//! re-executed and its certificate checked before it is committed.

use prost::Message as _;
use tracechain_ledger::certificate;
use tracechain_p2p::{NetworkHandle, PeerId};
use tracechain_proto::v1 as pb;

use super::{MAX_SYNC_BLOCKS, MAX_SYNC_BYTES, blocks::commit_block};
use crate::node::Node;

/// Fetches the blocks after the head from `peer` and commits them; returns how many.
pub(super) async fn pull(node: &Node, net: &NetworkHandle, peer: PeerId) -> Result<usize, String> {
    let head = *node.shared.head.borrow();
    let bytes = net
        .request_blocks(peer, head + 1, head + MAX_SYNC_BLOCKS)
        .await
        .map_err(|e| e.to_string())?;
    let range = pb::BlockRange::decode(bytes.as_slice()).map_err(|e| e.to_string())?;
    let shared = node.shared.clone();
    let committed = tokio::task::spawn_blocking(move || {
        let mut n = 0;
        for b in range.blocks {
            let (Some(block), Some(cert)) = (b.block.as_ref(), b.certificate.as_ref()) else {
                return Err("a served block lacks its certificate".to_string());
            };
            let certificate =
                certificate::from_proto(cert, &shared.genesis).map_err(|e| e.to_string())?;
            // commit_block re-executes the block and Chain::commit checks the certificate
            // against the genesis validators: nothing served is trusted.
            commit_block(&shared, None, &block.encode_to_vec(), &certificate)?;
            shared.head.send_replace(certificate.height);
            n += 1;
        }
        Ok(n)
    })
    .await
    .map_err(|e| e.to_string())??;
    Ok(committed)
}

/// A block-sync answer: committed blocks `from..=to`, bounded in count and bytes.
pub(super) fn serve_blocks(store: &tracechain_storage::Store, from: u64, to: u64) -> Vec<u8> {
    let mut range = pb::BlockRange::default();
    let mut bytes = 0usize;
    let last = to.min(from.saturating_add(MAX_SYNC_BLOCKS - 1));
    for h in from..=last {
        let Ok(Some(raw)) = store.block(h) else { break };
        bytes += raw.len();
        if bytes > MAX_SYNC_BYTES && !range.blocks.is_empty() {
            break;
        }
        match pb::CommittedBlock::decode(raw.as_slice()) {
            Ok(b) => range.blocks.push(b),
            Err(_) => break,
        }
    }
    range.encode_to_vec()
}
