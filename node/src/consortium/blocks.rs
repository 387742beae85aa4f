//! Blocks as the driver handles them: the head it tells consensus about, checking a
//! proposal against the head (after the write of the block before it), committing a
//! decided block.

use std::{sync::Arc, time::Duration};

use prost::Message as _;
use tracechain_consensus::ChainHead;
use tracechain_ledger::certificate;
use tracechain_proto::v1 as pb;

use super::now_ms;

use crate::{
    chain::{Chain, ChainError, ExecutedBlock},
    locks::lock,
    tx::{CheckedTx, TxId},
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

/// The pooled (already verified) transactions among `ids`, under one mempool lock.
pub(super) fn pooled(shared: &crate::node::Shared, ids: &[TxId]) -> Vec<Option<Arc<CheckedTx>>> {
    let pool = lock(&shared.mempool);
    ids.iter().map(|id| pool.get(id)).collect()
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
        &|ids| pooled(shared, ids),
        now_ms().saturating_add(skew),
    ) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!(error = %e, "refusing a proposal");
            None
        }
    }
}

/// Commits a decided block: the checked execution when we have it, else (a block
/// fetched while catching up) executes it first. Returns its transaction ids.
pub(super) fn commit_block(
    shared: &crate::node::Shared,
    checked: Option<ExecutedBlock>,
    block: &[u8],
    certificate: &tracechain_consensus::CommitCertificate,
) -> Result<Vec<TxId>, String> {
    let mut chain = lock(&shared.chain);
    if chain.head().height >= certificate.height {
        return Ok(Vec::new());
    }
    let executed = match checked.filter(|e| e.header.height == chain.head().height + 1) {
        Some(e) => e,
        None => {
            let block = pb::Block::decode(block).map_err(|e| e.to_string())?;
            chain
                .check_proposal(block, &|ids| pooled(shared, ids), i64::MAX)
                .map_err(|e| e.to_string())?
        }
    };
    let tx_ids = executed.tx_ids.clone();
    let height = executed.header.height;
    chain
        .commit(executed, certificate)
        .map_err(|e| e.to_string())?;
    drop(chain);
    shared.chain_written.notify_all();
    lock(&shared.mempool).committed(height, &tx_ids);
    Ok(tx_ids)
}
