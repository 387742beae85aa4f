//! The chain: building, checking and committing blocks over the store.
//!
//! A block is executed before it is proposed (execute-then-propose): its header commits
//! to the transaction ids (`tx_root`), to each transaction's result (`results_root`)
//! and to the state after it (`state_commitment`), so one commit certificate proves
//! all three. A replica checks a proposal by re-executing it and comparing
//! ([`Chain::check_proposal`]). Committing writes the block, its results, state
//! changes, indexes and the new head in one atomic, synced write.

use std::sync::Arc;

use ed25519_dalek::{Signature, SigningKey};
use prost::Message;
use tracechain_consensus::{CommitCertificate, ReplicaId, ValidatorSet, sign_commit_vote};
use tracechain_proto::v1 as pb;
use tracechain_storage::{BlockCommit, ChainHead, Store};

use tracechain_ledger::{
    block::{self, BlockFault},
    certificate,
};

use crate::{
    genesis::Genesis,
    ledger::{BlockExecution, Ledger, StateError, StateReader},
    tx::{self, CheckedTx, TxId},
};

/// Why a block cannot be built, checked or committed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The store failed (a local fault).
    #[error("storage: {0}")]
    Storage(#[from] tracechain_storage::StorageError),
    /// State could not be read (a local fault).
    #[error(transparent)]
    State(#[from] StateError),
    /// A stored record does not decode (a local fault).
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// The decode error.
        reason: String,
    },
    /// A proposed or fetched block breaks a rule (the proposer's fault).
    #[error("invalid block at height {height}: {fault}")]
    InvalidBlock {
        /// Height of the block.
        height: u64,
        /// What is wrong.
        fault: BlockFault,
    },
    /// A certificate of a view earlier than the block's header (see
    /// [`certificate::view_commits_header`]).
    #[error(
        "certificate for height {height} is of view {certificate_view}, earlier than the header's view {header_view}"
    )]
    CertificateBeforeHeader {
        /// Height.
        height: u64,
        /// The certificate's view.
        certificate_view: u64,
        /// The header's view.
        header_view: u64,
    },
    /// A certificate does not prove the block.
    #[error("invalid certificate for height {height}: {error}")]
    InvalidCertificate {
        /// Height.
        height: u64,
        /// Why.
        error: tracechain_consensus::CertificateError,
    },
}

/// A block executed against the current head, ready to be certified and committed.
#[derive(Debug)]
pub struct ExecutedBlock {
    /// The decoded header.
    pub header: pb::BlockHeader,
    /// The block as it is hashed, signed and stored.
    pub block: pb::Block,
    /// blake3 of the encoded header.
    pub hash: [u8; 32],
    /// Transaction ids, in order.
    pub tx_ids: Vec<TxId>,
    /// Execution results and writes.
    pub execution: BlockExecution,
}

/// Committed state is read through the store.
struct StoreState<'a>(&'a Store);

impl StateReader for StoreState<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.0
            .get_state(key)
            .map_err(|e| StateError::Store(e.to_string()))
    }
    fn tx_committed(&self, id: &TxId) -> Result<bool, StateError> {
        self.0
            .tx_location(&id.0)
            .map(|l| l.is_some())
            .map_err(|e| StateError::Store(e.to_string()))
    }
    fn txs_committed(&self, ids: &[TxId]) -> Result<Vec<bool>, StateError> {
        let ids: Vec<[u8; 32]> = ids.iter().map(|id| id.0).collect();
        self.0
            .tx_locations(&ids)
            .map(|locations| locations.iter().map(Option::is_some).collect())
            .map_err(|e| StateError::Store(e.to_string()))
    }
}

/// The head as the node keeps it (the storage head plus the decoded header's time).
pub use tracechain_ledger::block::Head;

/// The chain over one store.
pub struct Chain {
    store: Arc<Store>,
    ledger: Ledger,
    validators: ValidatorSet,
    head: Head,
}

/// Given transaction ids, the transactions among them this node verified already (in the
/// same order; `None` for one it has not seen).
pub type KnownTxs<'a> = dyn Fn(&[TxId]) -> Vec<Option<Arc<CheckedTx>>> + 'a;

impl Chain {
    /// Opens the chain over `store`, resuming from its head.
    pub fn open(store: Arc<Store>, genesis: Genesis) -> Result<Self, ChainError> {
        let head = match store.head()? {
            None => Head::genesis(&genesis),
            Some(h) => {
                let header = pb::BlockHeader::decode(h.extra.as_slice()).map_err(|e| {
                    ChainError::Corrupt {
                        what: "head header",
                        reason: e.to_string(),
                    }
                })?;
                if header.chain_id != genesis.chain_id() {
                    return Err(ChainError::Corrupt {
                        what: "head header",
                        reason: format!(
                            "data directory holds chain {:?}, genesis says {:?}",
                            header.chain_id,
                            genesis.chain_id()
                        ),
                    });
                }
                Head {
                    height: h.height,
                    hash: h.block_hash,
                    state_commitment: h.state_commitment,
                    time_ms: header.time_ms,
                }
            }
        };
        Ok(Self {
            validators: genesis.validators(),
            ledger: Ledger::new(genesis),
            store,
            head,
        })
    }

    /// The current head.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        self.ledger.genesis()
    }

    /// The validator set.
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Executes `txs` as the next block, proposed by `proposer` in `view` at `time_ms`
    /// (raised to one past the parent's time if the clock is behind).
    pub fn build_block(
        &self,
        txs: &[Arc<CheckedTx>],
        time_ms: i64,
        view: u64,
        proposer: &str,
    ) -> Result<ExecutedBlock, ChainError> {
        let time_ms = time_ms.max(self.head.time_ms + 1);
        let proposal = block::Proposal {
            time_ms,
            view,
            proposer,
        };
        let executed = self.execute(txs, proposal)?;
        let header_bytes = executed.header.encode_to_vec();
        Ok(ExecutedBlock {
            hash: block::hash(&header_bytes),
            block: pb::Block {
                header: header_bytes,
                txs: txs.iter().map(|t| t.signed.clone()).collect(),
            },
            header: executed.header,
            tx_ids: executed.tx_ids,
            execution: executed.execution,
        })
    }

    /// Executes `txs` as the next block against the committed state.
    fn execute(
        &self,
        txs: &[Arc<CheckedTx>],
        proposal: block::Proposal<'_>,
    ) -> Result<block::Executed, ChainError> {
        Ok(block::execute(
            &self.ledger,
            &StoreState(&self.store),
            &self.head,
            txs,
            proposal,
        )?)
    }

    /// Checks a block proposed (or fetched) for the next height: header fields, every
    /// transaction's signature and stateless rules, then re-executes it and compares
    /// the roots. `known` is asked once, with every transaction id of the block, for the
    /// transactions already verified on arrival, so that no signature is checked twice.
    pub fn check_proposal(
        &self,
        block: pb::Block,
        known: &KnownTxs<'_>,
        max_time_ms: i64,
    ) -> Result<ExecutedBlock, ChainError> {
        let height = self.head.height + 1;
        let invalid = |fault: BlockFault| ChainError::InvalidBlock { height, fault };
        let header = block::check_header(self.genesis(), &self.head, &block, max_time_ms)
            .map_err(|e| invalid(e.into()))?;
        // Verify what we have not verified before, in one batch.
        let chain_id = self.genesis().chain_id();
        let ids: Vec<TxId> = block.txs.iter().map(|t| TxId::of_body(&t.body)).collect();
        let mut known = known(&ids);
        known.resize(ids.len(), None);
        let mut txs: Vec<Option<Arc<CheckedTx>>> = Vec::with_capacity(block.txs.len());
        let mut unverified = Vec::new();
        let mut slots = Vec::new();
        for (i, (signed, known)) in block.txs.iter().zip(known).enumerate() {
            // Same id, same body; the signature must be the one we checked too.
            if let Some(c) = known.filter(|c| c.signed == *signed) {
                txs.push(Some(c));
            } else {
                let u = tx::decode(signed.clone(), chain_id)
                    .map_err(|error| invalid(BlockFault::Transaction { index: i, error }))?;
                unverified.push(u);
                slots.push(i);
                txs.push(None);
            }
        }
        if !slots.is_empty() {
            tracing::debug!(
                height,
                verified = slots.len(),
                "proposal carried unseen transactions"
            );
        }
        for (slot, result) in slots.into_iter().zip(tx::verify_all(unverified)) {
            let c =
                result.map_err(|error| invalid(BlockFault::Transaction { index: slot, error }))?;
            txs[slot] = Some(Arc::new(c));
        }
        let txs: Vec<Arc<CheckedTx>> = txs.into_iter().flatten().collect();
        let proposal = block::Proposal {
            time_ms: header.time_ms,
            view: header.view,
            proposer: &header.proposer,
        };
        let block::Executed {
            header: built,
            tx_ids,
            execution,
        } = self.execute(&txs, proposal)?;
        if built != header {
            return Err(invalid(BlockFault::Roots));
        }
        Ok(ExecutedBlock {
            hash: block::hash(&block.header),
            block,
            header,
            tx_ids,
            execution,
        })
    }

    /// Commits an executed block with its certificate: one atomic, synced write.
    pub fn commit(
        &mut self,
        executed: ExecutedBlock,
        certificate: &CommitCertificate,
    ) -> Result<Arc<pb::CommittedBlock>, ChainError> {
        let height = executed.header.height;
        certificate
            .verify_for(&self.validators, height, &executed.hash)
            .map_err(|error| ChainError::InvalidCertificate { height, error })?;
        if !certificate::view_commits_header(certificate.view, executed.header.view) {
            return Err(ChainError::CertificateBeforeHeader {
                height,
                certificate_view: certificate.view,
                header_view: executed.header.view,
            });
        }
        // A transaction repeated from an earlier block (or earlier in this one) keeps
        // its DUPLICATE result in the block, but must not move the index entry of the
        // original: only the first occurrence is indexed.
        let indexed: Vec<(u32, [u8; 32])> = executed
            .tx_ids
            .iter()
            .zip(&executed.execution.results)
            .enumerate()
            .filter(|(_, (_, r))| r.code != pb::ResultCode::Duplicate as i32)
            .map(|(i, (id, _))| (i as u32, id.0))
            .collect();
        let committed = pb::CommittedBlock {
            block: Some(executed.block),
            certificate: Some(certificate::to_proto(certificate, self.genesis())),
            results: executed.execution.results,
        };
        let state_commitment: [u8; 32] = executed
            .header
            .state_commitment
            .as_slice()
            .try_into()
            .unwrap_or([0; 32]);
        self.store.commit_block(&BlockCommit {
            height,
            block_hash: executed.hash,
            block: committed.encode_to_vec(),
            tx_ids: indexed,
            state_writes: executed.execution.writes.into_iter().collect(),
            index_writes: executed.execution.index_writes,
            head: ChainHead {
                height,
                block_hash: executed.hash,
                state_commitment,
                extra: executed.header.encode_to_vec(),
            },
        })?;
        self.head = Head {
            height,
            hash: executed.hash,
            state_commitment,
            time_ms: executed.header.time_ms,
        };
        Ok(Arc::new(committed))
    }

    /// Signs the commit vote for `executed` with this node's key: the whole certificate
    /// when this node is the only validator.
    pub fn sign_commit(
        &self,
        executed: &ExecutedBlock,
        replica: ReplicaId,
        key: &SigningKey,
    ) -> (ReplicaId, Signature) {
        let sig = sign_commit_vote(
            key,
            self.genesis().chain_id(),
            executed.header.height,
            executed.header.view,
            &executed.hash,
        );
        (replica, sig)
    }

    /// The committed block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<pb::CommittedBlock>, ChainError> {
        decode_block(self.store.block(height)?)
    }
}

/// Decodes a stored committed block.
pub fn decode_block(bytes: Option<Vec<u8>>) -> Result<Option<pb::CommittedBlock>, ChainError> {
    bytes
        .map(|b| {
            pb::CommittedBlock::decode(b.as_slice()).map_err(|e| ChainError::Corrupt {
                what: "block",
                reason: e.to_string(),
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use tracechain_proto::v1::tx_body::Action;

    use tracechain_ledger::block::HeaderError;

    use super::*;
    use crate::{
        crypto::{Scheme, SecretKey},
        genesis::GenesisFile,
    };

    const CHAIN: &str = "chain-test";
    const T0: i64 = 1_700_000_000_000;

    struct Fixture {
        genesis: Genesis,
        node_key: SigningKey,
        admin: SecretKey,
        seq: u64,
    }

    impl Fixture {
        fn new() -> Self {
            let node_key = SigningKey::from_bytes(&[7; 32]);
            let admin = SecretKey::from_bytes(Scheme::Ed25519, &[8; 32]).expect("seed");
            let genesis = Genesis::from_file(GenesisFile::single_member(
                CHAIN,
                T0,
                &node_key.verifying_key(),
                &admin.public_key(),
            ))
            .expect("genesis");
            Self {
                genesis,
                node_key,
                admin,
                seq: 0,
            }
        }

        fn open(&self, dir: &std::path::Path) -> Chain {
            let store = Arc::new(Store::open(dir).expect("store"));
            Chain::open(store, self.genesis.clone()).expect("chain")
        }

        fn register(&mut self, device: &str) -> Arc<CheckedTx> {
            self.seq += 1;
            let key =
                SecretKey::from_bytes(Scheme::Ed25519, &[self.seq as u8 + 30; 32]).expect("seed");
            let body = pb::TxBody {
                chain_id: CHAIN.into(),
                signer: Some(pb::Signer {
                    kind: pb::SignerKind::Member as i32,
                    id: "farm".into(),
                    scheme: pb::SignatureScheme::Ed25519 as i32,
                    public_key: self.admin.public_key(),
                }),
                sequence: self.seq,
                time_ms: T0,
                action: Some(Action::RegisterDevice(pb::RegisterDevice {
                    device_id: device.into(),
                    scheme: pb::SignatureScheme::Ed25519 as i32,
                    public_key: key.public_key(),
                    device_type: String::new(),
                })),
            };
            Arc::new(tx::check(tx::sign_body(&body, &self.admin), CHAIN).expect("valid"))
        }

        fn certify(&self, chain: &Chain, executed: &ExecutedBlock) -> CommitCertificate {
            let vote = chain.sign_commit(executed, ReplicaId(0), &self.node_key);
            CommitCertificate {
                height: executed.header.height,
                view: executed.header.view,
                block_hash: executed.hash,
                signatures: vec![vote],
            }
        }
    }

    fn none(_: &[TxId]) -> Vec<Option<Arc<CheckedTx>>> {
        Vec::new()
    }

    #[test]
    fn build_commit_reopen_and_check_on_a_second_replica() {
        let mut f = Fixture::new();
        let (a, b) = (
            tempfile::tempdir().expect("dir"),
            tempfile::tempdir().expect("dir"),
        );
        let mut leader = f.open(a.path());
        let mut follower = f.open(b.path());
        assert_eq!(leader.head().hash, f.genesis.hash());

        for round in 0..3 {
            let txs = vec![
                f.register(&format!("dev-{round}-a")),
                f.register(&format!("dev-{round}-b")),
            ];
            let executed = leader
                .build_block(&txs, T0 + 1_000 * (round + 1), 0, "farm")
                .expect("build");
            let cert = f.certify(&leader, &executed);
            // The follower re-executes the proposal and reaches the same header.
            let checked = follower
                .check_proposal(executed.block.clone(), &none, i64::MAX)
                .expect("valid proposal");
            assert_eq!(checked.hash, executed.hash);
            follower.commit(checked, &cert).expect("follower commits");
            leader.commit(executed, &cert).expect("leader commits");
        }
        assert_eq!(leader.head().height, 3);
        assert_eq!(
            leader.head().state_commitment,
            follower.head().state_commitment
        );

        // Reopen: the head survives.
        let head = leader.head().clone();
        drop(leader);
        let leader = f.open(a.path());
        assert_eq!(
            (
                leader.head().height,
                leader.head().hash,
                leader.head().state_commitment
            ),
            (head.height, head.hash, head.state_commitment)
        );
        let block = leader.block(2).expect("read").expect("block 2");
        assert_eq!(block.results.len(), 2);
        assert!(
            block
                .results
                .iter()
                .all(|r| r.code == pb::ResultCode::Ok as i32)
        );
    }

    #[test]
    fn tampered_proposals_are_invalid() {
        let mut f = Fixture::new();
        let dir = tempfile::tempdir().expect("dir");
        let chain = f.open(dir.path());
        let txs = vec![f.register("dev-a"), f.register("dev-b")];
        let good = chain
            .build_block(&txs, T0 + 1_000, 0, "farm")
            .expect("build");

        let reheader = |edit: &dyn Fn(&mut pb::BlockHeader)| {
            let mut h = good.header.clone();
            edit(&mut h);
            pb::Block {
                header: h.encode_to_vec(),
                txs: good.block.txs.clone(),
            }
        };
        let cases: Vec<(&str, pb::Block)> = vec![
            (
                "state commitment",
                reheader(&|h| h.state_commitment[0] ^= 1),
            ),
            ("results root", reheader(&|h| h.results_root[0] ^= 1)),
            ("tx root", reheader(&|h| h.tx_root[0] ^= 1)),
            ("prev hash", reheader(&|h| h.prev_hash[0] ^= 1)),
            ("height", reheader(&|h| h.height = 5)),
            ("chain id", reheader(&|h| h.chain_id = "other".into())),
            ("time before parent", reheader(&|h| h.time_ms = T0)),
            (
                "unknown proposer",
                reheader(&|h| h.proposer = "mallory".into()),
            ),
            ("tx count", reheader(&|h| h.tx_count = 1)),
            (
                "dropped transaction",
                pb::Block {
                    header: good.block.header.clone(),
                    txs: good.block.txs[..1].to_vec(),
                },
            ),
            (
                "reordered transactions",
                pb::Block {
                    header: good.block.header.clone(),
                    txs: vec![good.block.txs[1].clone(), good.block.txs[0].clone()],
                },
            ),
            ("forged signature", {
                let mut b = good.block.clone();
                b.txs[0].signature[5] ^= 1;
                b
            }),
            (
                "garbage header",
                pb::Block {
                    header: vec![0xff; 10],
                    txs: vec![],
                },
            ),
        ];
        for (name, block) in cases {
            let r = chain.check_proposal(block.clone(), &none, i64::MAX);
            let Err(ChainError::InvalidBlock { height: 1, fault }) = r else {
                panic!("{name}: expected InvalidBlock at height 1, got {r:?}");
            };
            // The fault names its cause, for the replica's log and for tests.
            let expected = match name {
                "state commitment" | "results root" | "tx root" | "reordered transactions" => {
                    matches!(fault, BlockFault::Roots)
                }
                "forged signature" => matches!(fault, BlockFault::Transaction { index: 0, .. }),
                "garbage header" => matches!(fault, BlockFault::Header(HeaderError::Malformed(_))),
                "dropped transaction" | "tx count" => {
                    matches!(fault, BlockFault::Header(HeaderError::TxCount))
                }
                _ => matches!(fault, BlockFault::Header(_)),
            };
            assert!(expected, "{name}: {fault:?}");
        }
        // A time too far ahead of the replica's clock is refused too.
        assert!(chain.check_proposal(good.block.clone(), &none, T0).is_err());
        assert!(
            chain
                .check_proposal(good.block.clone(), &none, i64::MAX)
                .is_ok()
        );
    }

    #[test]
    fn commit_requires_a_valid_certificate() {
        let mut f = Fixture::new();
        let dir = tempfile::tempdir().expect("dir");
        let mut chain = f.open(dir.path());
        let txs = vec![f.register("dev-a")];
        let executed = chain
            .build_block(&txs, T0 + 1_000, 0, "farm")
            .expect("build");
        let mut cert = f.certify(&chain, &executed);
        let forger = SigningKey::from_bytes(&[9; 32]);
        cert.signatures = vec![chain.sign_commit(&executed, ReplicaId(0), &forger)];
        let r = chain.commit(executed, &cert);
        assert!(
            matches!(r, Err(ChainError::InvalidCertificate { .. })),
            "{r:?}"
        );
        assert_eq!(chain.head().height, 0, "nothing was written");
        assert!(chain.block(1).expect("read").is_none());
    }

    #[test]
    fn a_repeated_transaction_keeps_its_original_location() {
        let mut f = Fixture::new();
        let dir = tempfile::tempdir().expect("dir");
        let mut chain = f.open(dir.path());
        let tx = f.register("dev-a");
        let first = chain
            .build_block(std::slice::from_ref(&tx), T0 + 1_000, 0, "farm")
            .expect("build");
        let cert = f.certify(&chain, &first);
        chain.commit(first, &cert).expect("commit");
        // A (faulty) proposer repeats it, twice, in the next block.
        let again = chain
            .build_block(&[tx.clone(), tx.clone()], T0 + 2_000, 0, "farm")
            .expect("build");
        assert!(
            again
                .execution
                .results
                .iter()
                .all(|r| r.code == pb::ResultCode::Duplicate as i32)
        );
        let cert = f.certify(&chain, &again);
        chain.commit(again, &cert).expect("commit");
        let location = chain
            .store()
            .tx_location(&tx.id.0)
            .expect("read")
            .expect("indexed");
        assert_eq!((location.height, location.index), (1, 0));
    }

    #[test]
    fn certificates_roundtrip_through_protobuf() {
        let mut f = Fixture::new();
        let dir = tempfile::tempdir().expect("dir");
        let chain = f.open(dir.path());
        let txs = vec![f.register("dev-a")];
        let executed = chain
            .build_block(&txs, T0 + 1_000, 0, "farm")
            .expect("build");
        let cert = f.certify(&chain, &executed);
        let proto = certificate::to_proto(&cert, &f.genesis);
        assert_eq!(proto.signatures[0].member_id, "farm");
        let back = certificate::from_proto(&proto, &f.genesis).expect("decodes");
        assert_eq!(back, cert);
        let mut bad = proto.clone();
        bad.signatures[0].member_id = "mallory".into();
        assert!(certificate::from_proto(&bad, &f.genesis).is_err());
        let mut bad = proto;
        bad.chain_id = "other".into();
        assert!(certificate::from_proto(&bad, &f.genesis).is_err());
    }
}
