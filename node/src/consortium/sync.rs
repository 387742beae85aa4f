//! Block sync: fetching the blocks after our head from a member, and serving ranges of
//! committed blocks to members that are behind. Nothing served is trusted: each block is
//! re-executed and its certificate checked before it is committed.

use prost::Message as _;
use tracechain_ledger::certificate;
use tracechain_p2p::{NetworkHandle, PeerId};
use tracechain_proto::v1 as pb;

use super::{MAX_SYNC_BLOCKS, MAX_SYNC_BYTES};
use crate::chain::ChainError;
use crate::node::Node;

/// Why a pull from a member failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum PullError {
    /// The request failed or the member refused it.
    #[error(transparent)]
    Network(#[from] tracechain_p2p::NetworkError),
    /// The answer is not a block range.
    #[error("the block range does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    /// A served block comes without its certificate.
    #[error("served block {index} of the range lacks its block or certificate")]
    Incomplete {
        /// Its position in the range.
        index: usize,
    },
    /// A served certificate does not convert (unknown signer, bad signature bytes).
    #[error("served certificate {index} of the range: {error}")]
    Certificate {
        /// Its position in the range.
        index: usize,
        /// Why.
        error: certificate::CertificateError,
    },
    /// A served block does not re-execute or its certificate does not prove it, or the
    /// store failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The blocking task panicked or was cancelled.
    #[error("blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Fetches the blocks after the head from `peer` and commits them; returns how many.
pub(super) async fn pull(
    node: &Node,
    net: &NetworkHandle,
    peer: PeerId,
) -> Result<usize, PullError> {
    let head = *node.shared.head.borrow();
    let bytes = net
        .request_blocks(peer, head + 1, head + MAX_SYNC_BLOCKS)
        .await?;
    let range = pb::BlockRange::decode(bytes.as_slice())?;
    let shared = node.shared.clone();
    tokio::task::spawn_blocking(move || {
        let mut n = 0;
        for (index, b) in range.blocks.iter().enumerate() {
            let (Some(block), Some(cert)) = (b.block.as_ref(), b.certificate.as_ref()) else {
                return Err(PullError::Incomplete { index });
            };
            let certificate = certificate::from_proto(cert, &shared.genesis)
                .map_err(|error| PullError::Certificate { index, error })?;
            // Nothing served is trusted: commit_decided re-executes the block and
            // Chain::commit checks the certificate against the genesis validators.
            shared.commit_decided(None, &block.encode_to_vec(), &certificate)?;
            n += 1;
        }
        Ok(n)
    })
    .await?
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
