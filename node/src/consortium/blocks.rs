//! Blocks as the driver handles them: the head it tells consensus about, and checking a
//! proposal against the head (after the write of the block before it). A decided block
//! is committed by `Shared::commit_decided`, the one path every block takes.

use std::time::Duration;

use prost::Message as _;
use tracechain_consensus::ChainHead;
use tracechain_ledger::certificate;
use tracechain_proto::v1 as pb;

use super::now_ms;

use crate::{
    chain::{Chain, ChainError, ExecutedBlock},
    locks::lock,
};

pub(super) fn head_of(chain: &Chain) -> Result<ChainHead, ChainError> {
    let height = chain.head().height;
    if height == 0 {
        return Ok(ChainHead::genesis());
    }
    let block = chain.block(height)?.ok_or(ChainError::Corrupt {
        what: "head block",
        reason: "missing".into(),
    })?;
    let cert = block
        .certificate
        .as_ref()
        .ok_or(ChainError::Corrupt {
            what: "head certificate",
            reason: "missing".into(),
        })
        .and_then(|c| {
            certificate::from_proto(c, chain.genesis()).map_err(|e| ChainError::Corrupt {
                what: "head certificate",
                reason: e.to_string(),
            })
        })?;
    Ok(ChainHead {
        height,
        certificate: Some(cert),
    })
}

/// Longest a proposal check waits for the write of the block before it.
pub(super) const CHECK_WAITS_FOR_WRITE: Duration = Duration::from_secs(10);

/// Re-executes a proposed block at `height` against the head; `None` if it is invalid
/// (or the ledger cannot tell, which must not produce a vote either).
///
/// The replica asks for the check of h + 1 as soon as it decided h, often in the same
/// step, while the write of h runs as another task. So the check waits until the head is
/// h: run against h − 1 it would fail as "not the next height", and the replica would
/// suspect a correct primary. The wait is bounded: a decided block is always written
/// (or the process stops), so it ends unless the store is failing.
pub(super) fn check_block(
    shared: &crate::node::Shared,
    height: u64,
    block: &[u8],
) -> Option<ExecutedBlock> {
    let block = pb::Block::decode(block).ok()?;
    let skew = i64::try_from(shared.genesis.file.max_clock_skew_ms).unwrap_or(i64::MAX);
    let chain = lock(&shared.chain);
    let (chain, _) = shared
        .chain_written
        .wait_timeout_while(chain, CHECK_WAITS_FOR_WRITE, |c| {
            c.head().height.saturating_add(1) < height
        })
        .unwrap_or_else(|p| p.into_inner());
    match chain.check_proposal(
        block,
        &|ids| shared.pooled(ids),
        now_ms().saturating_add(skew),
    ) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!(error = %e, "refusing a proposal");
            None
        }
    }
}
