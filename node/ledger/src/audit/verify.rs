//! Offline verification of an audit bundle: no node, no database, no network.
//!
//! Order of checks, each failing with the first fact that is wrong:
//! 1. the encoding is canonical and the version known ([`super::decode`]);
//! 2. the genesis is well-formed (and the expected one, if the caller says which);
//! 3. every header is certified by 2f+1 distinct validators of that genesis, and block 1's
//!    `prev_hash` is the genesis hash;
//! 4. every transaction is at its claimed (height, index): the Merkle paths match the
//!    index and lead to the header's `tx_root` and `results_root`; its signature verifies;
//! 5. the history is complete: the shipment's events carry positions 1..n with no gap,
//!    each device's lifecycle positions 1..m, and nothing unrelated is in the bundle;
//! 6. replaying the proven transactions through the real ledger gives exactly the proven
//!    results, and the twin with its verdict.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use tracechain_proto::v1::{self as pb, tx_body::Action};

use super::{AuditError, BUNDLE_VERSION};
use crate::{
    BlockContext, Ledger, certificate, conflicts,
    genesis::Genesis,
    merkle, state,
    tx::{self, CheckedTx, SignerKind},
};

/// What the caller expects of the genesis, if anything.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// The genesis hash the auditor knows from elsewhere (a genesis file, a member).
    pub genesis_hash: Option<[u8; 32]>,
}

/// A proven transaction, checked.
#[derive(Debug, Clone)]
pub struct ProvenEvent {
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
    /// Block time, unix ms.
    pub block_time_ms: i64,
    /// The checked transaction.
    pub tx: CheckedTx,
    /// Its position in the shipment's history, if it is a shipment event.
    pub shipment_seq: Option<u64>,
}

/// A verified bundle: facts proven by the chain, and the twin recomputed from them.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Hash of the bundle's genesis.
    pub genesis_hash: [u8; 32],
    /// The genesis.
    pub genesis: Genesis,
    /// The shipment.
    pub shipment_id: String,
    /// All proven transactions in chain order (events and device lifecycle).
    pub events: Vec<ProvenEvent>,
    /// The twin recomputed by replay.
    pub twin: pb::ShipmentTwin,
    /// What the twin's device-signed verdict must say of its devices, from their proven
    /// lifecycle: one line per conflict proven against one of them (a clone).
    pub device_flags: Vec<String>,
    /// Height of the newest certified block in the bundle (the exporter's head).
    pub proven_height: u64,
    /// Number of certified headers checked.
    pub blocks_checked: usize,
    /// Whether the genesis is the one the auditor expected ([`Expectations::genesis_hash`]).
    /// Without it the bundle is only internally consistent: anyone can make a consortium
    /// of their own, with the same member names, and sign a bundle that checks against
    /// the genesis it carries. Only an anchored bundle is verified.
    pub anchored: bool,
}

/// Decodes and verifies a bundle file's bytes.
pub fn verify_bytes(bytes: &[u8], expect: &Expectations) -> Result<Verified, AuditError> {
    verify(super::decode(bytes)?, expect)
}

struct CheckedBlock {
    header: pb::BlockHeader,
    referenced: bool,
}

fn hash32(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

fn root32(bytes: &[u8], what: &str, height: u64) -> Result<[u8; 32], AuditError> {
    bytes.try_into().map_err(|_| AuditError::Block {
        height,
        reason: format!("{what} is not 32 bytes"),
    })
}

/// Checks an inclusion proof of leaf number `index` of `n` under `root`
/// ([`merkle::verify_at`]: the path must also have the shape of that position's path).
fn check_path(
    path: &[pb::MerkleStep],
    index: u32,
    n: u32,
    leaf: &[u8; 32],
    root: &[u8; 32],
) -> Result<(), String> {
    let steps = path
        .iter()
        .map(|s| {
            Ok(merkle::ProofStep {
                sibling: s
                    .sibling
                    .as_slice()
                    .try_into()
                    .map_err(|_| "a proof sibling is not 32 bytes".to_string())?,
                sibling_is_left: s.sibling_is_left,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    merkle::verify_at(root, leaf, index as usize, n as usize, &steps).map_err(|e| e.to_string())
}

fn check_genesis(
    bundle: &pb::AuditBundle,
    expect: &Expectations,
) -> Result<(Genesis, [u8; 32]), AuditError> {
    let g = bundle
        .genesis
        .as_ref()
        .ok_or_else(|| AuditError::Genesis("missing".into()))?;
    let genesis = Genesis::from_proto(g).map_err(|e| AuditError::Genesis(e.to_string()))?;
    if &genesis.to_proto() != g {
        return Err(AuditError::Genesis("not in canonical form".into()));
    }
    let hash = genesis.hash();
    if let Some(want) = expect.genesis_hash
        && want != hash
    {
        return Err(AuditError::Genesis(format!(
            "hash {} is not the expected {}",
            hex::encode(hash),
            hex::encode(want)
        )));
    }
    Ok((genesis, hash))
}

fn check_blocks(
    bundle: &pb::AuditBundle,
    genesis: &Genesis,
    genesis_hash: &[u8; 32],
) -> Result<BTreeMap<u64, CheckedBlock>, AuditError> {
    let validators = genesis.validators();
    let mut blocks: BTreeMap<u64, CheckedBlock> = BTreeMap::new();
    let mut previous = 0u64;
    for pbk in &bundle.blocks {
        let header =
            pb::BlockHeader::decode(pbk.header.as_slice()).map_err(|e| AuditError::Block {
                height: 0,
                reason: format!("header does not decode: {e}"),
            })?;
        let height = header.height;
        let bad = |reason: String| AuditError::Block { height, reason };
        if height <= previous {
            return Err(bad(format!(
                "blocks must be in strictly increasing height (after {previous})"
            )));
        }
        previous = height;
        if header.chain_id != genesis.chain_id() {
            return Err(bad(format!("header is for chain {:?}", header.chain_id)));
        }
        let cert = pbk
            .certificate
            .as_ref()
            .ok_or_else(|| bad("has no commit certificate".into()))?;
        let cert = certificate::from_proto(cert, genesis).map_err(|e| bad(e.to_string()))?;
        // A block re-proposed by a later primary keeps its header: a later view is fine.
        if !certificate::view_commits_header(cert.view, header.view) {
            return Err(bad(format!(
                "certificate is for view {}, earlier than the header's view {}",
                cert.view, header.view
            )));
        }
        // 2f+1 distinct validators of the genesis signed this exact header's hash.
        cert.verify_for(&validators, height, &hash32(&pbk.header))
            .map_err(|e| bad(format!("certificate does not prove this header: {e}")))?;
        if height == 1 && header.prev_hash != genesis_hash {
            return Err(bad("prev_hash is not the genesis hash".into()));
        }
        root32(&header.tx_root, "tx_root", height)?;
        root32(&header.results_root, "results_root", height)?;
        blocks.insert(
            height,
            CheckedBlock {
                header,
                referenced: false,
            },
        );
    }
    if bundle.exported_at_height == 0 {
        return Err(AuditError::Malformed("exported at height 0".into()));
    }
    if !blocks.contains_key(&1) {
        return Err(AuditError::Malformed(
            "block 1 (which ties the chain to the genesis) is missing".into(),
        ));
    }
    if previous != bundle.exported_at_height {
        return Err(AuditError::Malformed(format!(
            "the newest block is {previous}, but the bundle says it was exported at height {}",
            bundle.exported_at_height
        )));
    }
    Ok(blocks)
}

fn check_txs(
    bundle: &pb::AuditBundle,
    blocks: &mut BTreeMap<u64, CheckedBlock>,
    chain_id: &str,
) -> Result<Vec<(ProvenEvent, pb::TxResult)>, AuditError> {
    let mut out = Vec::with_capacity(bundle.txs.len());
    let mut previous: Option<(u64, u32)> = None;
    for p in &bundle.txs {
        let (height, index) = (p.height, p.index);
        let bad = |reason: String| AuditError::Tx {
            height,
            index,
            reason,
        };
        if previous.is_some_and(|prev| prev >= (height, index)) {
            return Err(bad(
                "transactions must be in strictly increasing (height, index)".into(),
            ));
        }
        previous = Some((height, index));
        let block = blocks
            .get_mut(&height)
            .ok_or_else(|| bad("its block header is not in the bundle".into()))?;
        block.referenced = true;
        let header = &block.header;
        if index >= header.tx_count {
            return Err(bad(format!(
                "the block has {} transactions",
                header.tx_count
            )));
        }
        let signed = p.tx.clone().ok_or_else(|| bad("missing".into()))?;
        let result = p
            .result
            .clone()
            .ok_or_else(|| bad("result missing".into()))?;
        let tx_root = root32(&header.tx_root, "tx_root", height)?;
        let results_root = root32(&header.results_root, "results_root", height)?;
        check_path(
            &p.tx_path,
            index,
            header.tx_count,
            &merkle::tx_leaf(&signed.body),
            &tx_root,
        )
        .map_err(|e| bad(format!("transaction proof: {e}")))?;
        check_path(
            &p.result_path,
            index,
            header.tx_count,
            &merkle::result_leaf(&result),
            &results_root,
        )
        .map_err(|e| bad(format!("result proof: {e}")))?;
        let checked =
            tx::check(signed, chain_id).map_err(|e| bad(format!("signature or body: {e}")))?;
        if result.code != pb::ResultCode::Ok as i32 {
            return Err(bad(format!(
                "a failed transaction ({}) belongs to no history",
                result.message
            )));
        }
        out.push((
            ProvenEvent {
                height,
                index,
                block_time_ms: header.time_ms,
                tx: checked,
                shipment_seq: None,
            },
            result,
        ));
    }
    Ok(out)
}

/// Devices the shipment's events name (reporting, created with, attached).
fn named_devices(tx: &CheckedTx, out: &mut BTreeSet<String>) {
    if tx.signer.kind == SignerKind::Device {
        out.insert(tx.signer.id.clone());
    }
    match &tx.action {
        Action::CreateShipment(a) => out.extend(a.device_ids.iter().cloned()),
        Action::AttachDevice(a) => {
            out.insert(a.device_id.clone());
        }
        _ => {}
    }
}

/// Completeness: positions 1..n per subject, and every transaction accounted for.
fn check_complete(
    shipment_id: &str,
    txs: &mut [(ProvenEvent, pb::TxResult)],
) -> Result<(), AuditError> {
    let is = |e: &pb::HistoryEntry, kind: pb::HistoryKind, subject: &str| {
        e.kind == kind as i32 && e.subject == subject
    };
    let mut next = 1u64;
    let mut devices = BTreeSet::new();
    for (event, result) in txs.iter_mut() {
        if let Some(e) = result
            .history
            .iter()
            .find(|e| is(e, pb::HistoryKind::Shipment, shipment_id))
        {
            if e.seq != next {
                return Err(AuditError::Incomplete(format!(
                    "shipment event #{next} is missing (the next proven one, at height {} \
                     index {}, is #{})",
                    event.height, event.index, e.seq
                )));
            }
            next += 1;
            event.shipment_seq = Some(e.seq);
            named_devices(&event.tx, &mut devices);
        }
    }
    if next == 1 {
        return Err(AuditError::Incomplete(format!(
            "no event of shipment {shipment_id:?} is proven"
        )));
    }
    let mut lifecycle: BTreeMap<&str, u64> = devices.iter().map(|d| (d.as_str(), 1)).collect();
    for (event, result) in txs.iter() {
        if event.shipment_seq.is_some() {
            continue;
        }
        let entry = result.history.iter().find(|e| {
            e.kind == pb::HistoryKind::Device as i32 && lifecycle.contains_key(e.subject.as_str())
        });
        let Some(entry) = entry else {
            return Err(AuditError::Incomplete(format!(
                "the transaction at height {} index {} is neither an event of the shipment \
                 nor a lifecycle transaction of one of its devices",
                event.height, event.index
            )));
        };
        let Some(want) = lifecycle.get_mut(entry.subject.as_str()) else {
            continue;
        };
        if entry.seq != *want {
            return Err(AuditError::Incomplete(format!(
                "lifecycle transaction #{} of device {} is missing",
                *want, entry.subject
            )));
        }
        *want += 1;
    }
    if let Some((device, _)) = lifecycle.iter().find(|(_, next)| **next == 1) {
        return Err(AuditError::Incomplete(format!(
            "the registration of device {device} is missing"
        )));
    }
    Ok(())
}

/// Proven state, in memory: the replay's committed state.
/// Replays the proven transactions, block by block, through the real ledger. Every
/// replayed result must equal the proven one: a missing transaction that mattered
/// (a key rotation, a shipping step) shows up here as a different result.
fn replay(
    genesis: &Genesis,
    shipment_id: &str,
    blocks: &BTreeMap<u64, CheckedBlock>,
    txs: &[(ProvenEvent, pb::TxResult)],
) -> Result<(pb::ShipmentTwin, Vec<String>), AuditError> {
    let ledger = Ledger::new(genesis.clone());
    let mut st = state::MemoryState::default();
    let mut start = 0;
    while start < txs.len() {
        let height = txs[start].0.height;
        let end = start + txs[start..].partition_point(|(e, _)| e.height == height);
        let batch = &txs[start..end];
        let time_ms = blocks.get(&height).map_or(0, |b| b.header.time_ms);
        let exec = ledger
            .execute_block(
                &st,
                BlockContext { height, time_ms },
                batch.iter().map(|(e, _)| &e.tx),
            )
            .map_err(|e| AuditError::Replay(e.to_string()))?;
        for ((event, proven), got) in batch.iter().zip(&exec.results) {
            if got != proven {
                return Err(AuditError::Replay(format!(
                    "the transaction at height {} index {} replays to {:?} {:?}, \
                     but the chain recorded {:?} {:?}",
                    event.height,
                    event.index,
                    pb::ResultCode::try_from(got.code).unwrap_or_default(),
                    got.message,
                    pb::ResultCode::try_from(proven.code).unwrap_or_default(),
                    proven.message
                )));
            }
        }
        st.commit(exec.writes, batch.iter().map(|(e, _)| e.tx.id));
        start = end;
    }
    let bytes = st
        .record(&state::shipment_key(shipment_id))
        .ok_or_else(|| AuditError::Replay(format!("shipment {shipment_id} was never created")))?;
    let twin = pb::ShipmentTwin::decode(bytes).map_err(|e| AuditError::Replay(e.to_string()))?;
    let mut flags = Vec::new();
    for id in conflicts::devices_of(&twin) {
        if let Some(bytes) = st.record(&state::device_key(id)) {
            let device =
                pb::DeviceRecord::decode(bytes).map_err(|e| AuditError::Replay(e.to_string()))?;
            flags.extend(conflicts::flags(&device));
        }
    }
    Ok((twin, flags))
}

/// Verifies a decoded bundle (see the module doc for the order of checks).
pub fn verify(bundle: pb::AuditBundle, expect: &Expectations) -> Result<Verified, AuditError> {
    if bundle.version != BUNDLE_VERSION {
        return Err(AuditError::Malformed(format!(
            "version {} (this build reads version {BUNDLE_VERSION})",
            bundle.version
        )));
    }
    let (genesis, genesis_hash) = check_genesis(&bundle, expect)?;
    let mut blocks = check_blocks(&bundle, &genesis, &genesis_hash)?;
    let mut txs = check_txs(&bundle, &mut blocks, genesis.chain_id())?;
    check_complete(&bundle.shipment_id, &mut txs)?;
    // Every block must be there for a reason: so no byte of the bundle is idle.
    if let Some((h, _)) = blocks
        .iter()
        .find(|(h, b)| !b.referenced && **h != 1 && **h != bundle.exported_at_height)
    {
        return Err(AuditError::Block {
            height: *h,
            reason: "no transaction of the bundle is in this block".into(),
        });
    }
    let (twin, device_flags) = replay(&genesis, &bundle.shipment_id, &blocks, &txs)?;
    Ok(Verified {
        genesis_hash,
        shipment_id: bundle.shipment_id,
        events: txs.into_iter().map(|(e, _)| e).collect(),
        twin,
        device_flags,
        proven_height: bundle.exported_at_height,
        blocks_checked: blocks.len(),
        genesis,
        anchored: expect.genesis_hash.is_some(),
    })
}
