//! Blocks without storage: the header that a batch of transactions executes into on top
//! of its parent, and the checks of a proposed header against that parent. The node's
//! `Chain` adds the store: it reads state through it and commits what these build.

use std::sync::Arc;

use prost::Message as _;
use tracechain_proto::v1 as pb;

use crate::{
    BlockContext, BlockExecution, Ledger, StateError, StateReader,
    genesis::Genesis,
    merkle, state,
    tx::{CheckedTx, TxError, TxId},
};

/// The parent a block builds on: the head of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Height (0 before block 1).
    pub height: u64,
    /// Hash of the head block (the genesis hash at height 0).
    pub hash: [u8; 32],
    /// State commitment after the head block (zero at genesis).
    pub state_commitment: [u8; 32],
    /// Block time of the head (genesis time at height 0).
    pub time_ms: i64,
}

impl Head {
    /// The head of a chain with no blocks yet.
    pub fn genesis(genesis: &Genesis) -> Self {
        Head {
            height: 0,
            hash: genesis.hash(),
            state_commitment: [0; 32],
            time_ms: genesis.file.genesis_time_ms,
        }
    }
}

/// A batch executed as the next block: its header, transaction ids and execution.
#[derive(Debug)]
pub struct Executed {
    /// The header the batch gives.
    pub header: pb::BlockHeader,
    /// Transaction ids, in order.
    pub tx_ids: Vec<TxId>,
    /// Results, state writes and index entries.
    pub execution: BlockExecution,
}

/// The block hash: blake3 of the encoded header, as signed and stored.
pub fn hash(header_bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(header_bytes).as_bytes()
}

/// What the block at `parent.height + 1` needs besides its transactions.
#[derive(Debug, Clone, Copy)]
pub struct Proposal<'a> {
    /// Block time, unix ms (already checked to be after the parent's).
    pub time_ms: i64,
    /// Consensus view.
    pub view: u64,
    /// The proposing member's id.
    pub proposer: &'a str,
}

/// Executes `txs` as the block after `parent` against `state` (the state after
/// `parent`) and derives its header: roots over ids and results, the chained state
/// commitment.
pub fn execute(
    ledger: &Ledger,
    state: &dyn StateReader,
    parent: &Head,
    txs: &[Arc<CheckedTx>],
    proposal: Proposal<'_>,
) -> Result<Executed, StateError> {
    let height = parent.height + 1;
    let ctx = BlockContext {
        height,
        time_ms: proposal.time_ms,
    };
    let execution = ledger.execute_block(state, ctx, txs.iter().map(|t| t.as_ref()))?;
    let tx_ids: Vec<TxId> = txs.iter().map(|t| t.id).collect();
    // A transaction's tx_root leaf is its id (merkle::tx_leaf of its body).
    let ids: Vec<[u8; 32]> = tx_ids.iter().map(|t| t.0).collect();
    let results: Vec<[u8; 32]> = execution.results.iter().map(merkle::result_leaf).collect();
    let header = pb::BlockHeader {
        chain_id: ledger.genesis().chain_id().to_string(),
        height,
        prev_hash: parent.hash.to_vec(),
        tx_root: merkle::root(&ids).to_vec(),
        results_root: merkle::root(&results).to_vec(),
        state_commitment: state::state_commitment(&parent.state_commitment, &execution.writes)
            .to_vec(),
        proposer: proposal.proposer.to_string(),
        view: proposal.view,
        time_ms: proposal.time_ms,
        tx_count: tx_ids.len() as u32,
    };
    Ok(Executed {
        header,
        tx_ids,
        execution,
    })
}

/// Why a proposed block's header cannot follow the parent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The header bytes are not a `BlockHeader`.
    #[error("header does not decode: {0}")]
    Malformed(String),
    /// The header is for another chain.
    #[error("chain id {0:?}")]
    WrongChain(String),
    /// The height is not the parent's plus one.
    #[error("height {0} is not the next height")]
    NotNext(u64),
    /// `prev_hash` is not the parent's hash.
    #[error("prev_hash is not the head")]
    WrongParent,
    /// The time is not after the parent's, or too far ahead of the checker's clock.
    #[error("time {time_ms} is not after the parent's {parent_ms} or is too far ahead")]
    Time {
        /// The header's time.
        time_ms: i64,
        /// The parent's time.
        parent_ms: i64,
    },
    /// `tx_count` is not the number of transactions carried.
    #[error("tx_count does not match")]
    TxCount,
    /// The proposer is not a member.
    #[error("proposer {0} is not a member")]
    UnknownProposer(String),
}

/// Why a proposed (or fetched) block is refused: the proposer's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockFault {
    /// The header does not follow the parent.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// A transaction fails the decode point's checks or its signature.
    #[error("transaction {index}: {error}")]
    Transaction {
        /// Its position in the block.
        index: usize,
        /// What is wrong with it.
        error: TxError,
    },
    /// Executing the transactions gives other roots than the header's.
    #[error("re-execution gives different roots (tx, results or state)")]
    Roots,
}

/// Decodes a proposed block's header and checks it against `parent`: chain, height,
/// parent hash, time (after the parent's, at most `max_time_ms`), transaction count and
/// proposer. The roots are checked by re-executing ([`execute`]) and comparing.
pub fn check_header(
    genesis: &Genesis,
    parent: &Head,
    block: &pb::Block,
    max_time_ms: i64,
) -> Result<pb::BlockHeader, HeaderError> {
    let header = pb::BlockHeader::decode(block.header.as_slice())
        .map_err(|e| HeaderError::Malformed(e.to_string()))?;
    if header.chain_id != genesis.chain_id() {
        return Err(HeaderError::WrongChain(header.chain_id));
    }
    if header.height != parent.height + 1 {
        return Err(HeaderError::NotNext(header.height));
    }
    if header.prev_hash != parent.hash {
        return Err(HeaderError::WrongParent);
    }
    if header.time_ms <= parent.time_ms || header.time_ms > max_time_ms {
        return Err(HeaderError::Time {
            time_ms: header.time_ms,
            parent_ms: parent.time_ms,
        });
    }
    if header.tx_count as usize != block.txs.len() {
        return Err(HeaderError::TxCount);
    }
    if genesis.member(&header.proposer).is_none() {
        return Err(HeaderError::UnknownProposer(header.proposer));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::{genesis::GenesisFile, state::MemoryState};

    const T0: i64 = 1_700_000_000_000;

    fn ledger() -> Ledger {
        let node = SigningKey::from_bytes(&[3; 32]);
        let admin = SigningKey::from_bytes(&[4; 32]);
        Ledger::new(
            Genesis::from_file(GenesisFile::single_member(
                "block-chain",
                T0,
                &node.verifying_key(),
                admin.verifying_key().as_bytes(),
            ))
            .expect("genesis"),
        )
    }

    /// An empty block 1 on top of the genesis, as bytes a proposer would send.
    fn block_one(ledger: &Ledger) -> (Head, pb::Block) {
        let parent = Head::genesis(ledger.genesis());
        let proposal = Proposal {
            time_ms: T0 + 1_000,
            view: 0,
            proposer: "farm",
        };
        let executed =
            execute(ledger, &MemoryState::default(), &parent, &[], proposal).expect("executes");
        assert_eq!(executed.header.prev_hash, ledger.genesis().hash());
        assert_eq!(executed.header.tx_root, merkle::root(&[]));
        let block = pb::Block {
            header: executed.header.encode_to_vec(),
            txs: Vec::new(),
        };
        (parent, block)
    }

    #[test]
    fn a_block_built_on_its_parent_passes_the_header_checks() {
        let ledger = ledger();
        let (parent, block) = block_one(&ledger);
        let header = check_header(ledger.genesis(), &parent, &block, T0 + 2_000).expect("valid");
        assert_eq!(header.height, 1);
        assert_eq!(hash(&block.header), *blake3::hash(&block.header).as_bytes());
    }

    #[test]
    fn each_header_fault_is_named() {
        let ledger = ledger();
        let g = ledger.genesis();
        let (parent, block) = block_one(&ledger);
        let edit = |f: &dyn Fn(&mut pb::BlockHeader)| {
            let mut header = pb::BlockHeader::decode(block.header.as_slice()).expect("header");
            f(&mut header);
            pb::Block {
                header: header.encode_to_vec(),
                txs: Vec::new(),
            }
        };
        let check = |b: &pb::Block| check_header(g, &parent, b, T0 + 2_000).expect_err("refused");
        assert!(matches!(
            check(&pb::Block {
                header: vec![0xff; 4],
                txs: Vec::new()
            }),
            HeaderError::Malformed(_)
        ));
        assert_eq!(
            check(&edit(&|h| h.chain_id = "x".into())),
            HeaderError::WrongChain("x".into())
        );
        assert_eq!(check(&edit(&|h| h.height = 2)), HeaderError::NotNext(2));
        assert_eq!(
            check(&edit(&|h| h.prev_hash = vec![0; 32])),
            HeaderError::WrongParent
        );
        assert_eq!(
            check(&edit(&|h| h.time_ms = T0)),
            HeaderError::Time {
                time_ms: T0,
                parent_ms: T0
            }
        );
        assert!(matches!(
            check(&edit(&|h| h.time_ms = T0 + 3_000)),
            HeaderError::Time { .. }
        ));
        assert_eq!(check(&edit(&|h| h.tx_count = 1)), HeaderError::TxCount);
        assert_eq!(
            check(&edit(&|h| h.proposer = "mallory".into())),
            HeaderError::UnknownProposer("mallory".into())
        );
    }
}
