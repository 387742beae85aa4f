//! Building an audit bundle from a node's store (checking one is `tracechain-ledger`'s
//! `audit` module).
//!
//! The bundle holds every successful event of the shipment (the `e/` index), the
//! lifecycle transactions (register, rotate key, revoke: the `v/` index) of every
//! device that was attached to it or reported on it, block 1 (whose `prev_hash` is the
//! genesis hash) and the head block at export time, each block with its certificate.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use tracechain_proto::v1::{self as pb, tx_body::Action};
use tracechain_storage::Store;

use super::{BUNDLE_VERSION, MAX_BUNDLE_TXS};
use crate::{chain::decode_block, genesis::Genesis, ledger::state, merkle};

/// Why a node cannot build a shipment's bundle.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The shipment is not in the node's state.
    #[error("shipment {0} does not exist")]
    UnknownShipment(String),
    /// The node's store failed or holds a corrupt record (a local fault of the exporter).
    #[error("store: {0}")]
    Store(String),
}

fn store_err(e: impl std::fmt::Display) -> ExportError {
    ExportError::Store(e.to_string())
}

/// (height, index) positions under an index prefix, in order.
fn positions(store: &Store, prefix: &[u8]) -> Result<Vec<(u64, u32)>, ExportError> {
    let entries = store
        .scan_index(prefix, 0, MAX_BUNDLE_TXS + 1)
        .map_err(store_err)?;
    if entries.len() > MAX_BUNDLE_TXS {
        return Err(ExportError::Store(format!(
            "more than {MAX_BUNDLE_TXS} index entries"
        )));
    }
    entries
        .iter()
        .map(|(key, _)| {
            let suffix = key.get(prefix.len()..).unwrap_or_default();
            match (suffix.get(..8), suffix.get(8..12)) {
                (Some(h), Some(i)) if suffix.len() == 12 => Ok((
                    u64::from_be_bytes(h.try_into().unwrap_or_default()),
                    u32::from_be_bytes(i.try_into().unwrap_or_default()),
                )),
                _ => Err(ExportError::Store("corrupt index entry".into())),
            }
        })
        .collect()
}

/// A committed block with its Merkle leaves, read once.
struct LoadedBlock {
    block: pb::CommittedBlock,
    tx_leaves: Vec<[u8; 32]>,
    result_leaves: Vec<[u8; 32]>,
}

fn load(store: &Store, height: u64) -> Result<LoadedBlock, ExportError> {
    let block = decode_block(store.block(height).map_err(store_err)?)
        .map_err(store_err)?
        .ok_or_else(|| ExportError::Store(format!("block {height} is missing")))?;
    let txs = block
        .block
        .as_ref()
        .map(|b| b.txs.as_slice())
        .unwrap_or(&[]);
    let tx_leaves = txs.iter().map(|t| merkle::tx_leaf(&t.body)).collect();
    let result_leaves = block.results.iter().map(merkle::result_leaf).collect();
    Ok(LoadedBlock {
        block,
        tx_leaves,
        result_leaves,
    })
}

fn steps(path: Vec<merkle::ProofStep>) -> Vec<pb::MerkleStep> {
    path.into_iter()
        .map(|s| pb::MerkleStep {
            sibling: s.sibling.to_vec(),
            sibling_is_left: s.sibling_is_left,
        })
        .collect()
}

fn proven_tx(
    blocks: &BTreeMap<u64, LoadedBlock>,
    height: u64,
    index: u32,
) -> Result<pb::ProvenTx, ExportError> {
    let missing = || ExportError::Store(format!("transaction {height}/{index} is missing"));
    let b = blocks.get(&height).ok_or_else(missing)?;
    let i = index as usize;
    let tx = b
        .block
        .block
        .as_ref()
        .and_then(|blk| blk.txs.get(i))
        .cloned()
        .ok_or_else(missing)?;
    let result = b.block.results.get(i).cloned().ok_or_else(missing)?;
    Ok(pb::ProvenTx {
        height,
        index,
        tx: Some(tx),
        result: Some(result),
        tx_path: steps(merkle::proof(&b.tx_leaves, i).ok_or_else(missing)?),
        result_path: steps(merkle::proof(&b.result_leaves, i).ok_or_else(missing)?),
    })
}

/// Devices an event names: the reporting device, the attached ones.
fn devices_of(tx: &pb::SignedTx, out: &mut BTreeSet<String>) -> Result<(), ExportError> {
    let body = pb::TxBody::decode(tx.body.as_slice()).map_err(store_err)?;
    if let Some(signer) = &body.signer
        && signer.kind == pb::SignerKind::Device as i32
    {
        out.insert(signer.id.clone());
    }
    match body.action {
        Some(Action::CreateShipment(a)) => out.extend(a.device_ids),
        Some(Action::AttachDevice(a)) => {
            out.insert(a.device_id);
        }
        _ => {}
    }
    Ok(())
}

/// Builds the bundle of `shipment_id` from a node's store at head `head_height`.
pub fn build(
    store: &Store,
    genesis: &Genesis,
    head_height: u64,
    shipment_id: &str,
) -> Result<pb::AuditBundle, ExportError> {
    if store
        .get_state(&state::shipment_key(shipment_id))
        .map_err(store_err)?
        .is_none()
    {
        return Err(ExportError::UnknownShipment(shipment_id.to_string()));
    }
    let events = positions(store, &state::shipment_events_prefix(shipment_id))?;
    let mut blocks: BTreeMap<u64, LoadedBlock> = BTreeMap::new();
    let mut wanted: BTreeSet<(u64, u32)> = BTreeSet::new();
    let mut devices = BTreeSet::new();
    for &(height, index) in &events {
        if let std::collections::btree_map::Entry::Vacant(slot) = blocks.entry(height) {
            slot.insert(load(store, height)?);
        }
        let tx = proven_tx(&blocks, height, index)?;
        if let Some(signed) = &tx.tx {
            devices_of(signed, &mut devices)?;
        }
        wanted.insert((height, index));
    }
    for device in &devices {
        wanted.extend(positions(store, &state::device_lifecycle_prefix(device))?);
    }
    if wanted.len() > MAX_BUNDLE_TXS {
        return Err(ExportError::Store(format!(
            "the history has more than {MAX_BUNDLE_TXS} transactions"
        )));
    }
    // Block 1 ties the genesis to the chain; the head shows how far the chain reached.
    let mut heights: BTreeSet<u64> = wanted.iter().map(|(h, _)| *h).collect();
    if head_height >= 1 {
        heights.insert(1);
        heights.insert(head_height);
    }
    for &h in &heights {
        if let std::collections::btree_map::Entry::Vacant(slot) = blocks.entry(h) {
            slot.insert(load(store, h)?);
        }
    }
    let txs = wanted
        .iter()
        .map(|&(h, i)| proven_tx(&blocks, h, i))
        .collect::<Result<Vec<_>, _>>()?;
    let proven_blocks = heights
        .iter()
        .map(|h| {
            let b = &blocks[h].block;
            pb::ProvenBlock {
                header: b
                    .block
                    .as_ref()
                    .map(|x| x.header.clone())
                    .unwrap_or_default(),
                certificate: b.certificate.clone(),
            }
        })
        .collect();
    Ok(pb::AuditBundle {
        version: BUNDLE_VERSION,
        genesis: Some(genesis.to_proto()),
        shipment_id: shipment_id.to_string(),
        blocks: proven_blocks,
        txs,
        exported_at_height: head_height,
    })
}
