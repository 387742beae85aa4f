//! What a node sees of device clones: a device-signed transaction refused as replayed
//! (at admission) or as replayed or out of time order (at execution) is compared with
//! the transaction the device's key had committed for that sequence, and with its latest
//! one. A pair that conflicts ([`crate::ledger::conflicts::check`]) is kept here, for a
//! member to report to the ledger (`tracechain submit report-conflict`), which then flags
//! the device. The node signs nothing itself: it holds no member key.
//!
//! Work is bounded: a suspect costs a state read and a signature check (what admitting
//! any transaction costs); only a correctly signed one goes on to the index and block
//! reads and the pair check; at most 16 suspects per submission or block, and at most
//! [`MAX_KEPT`] pairs are kept, oldest dropped first.

use std::collections::VecDeque;
use std::sync::Mutex;

use prost::Message as _;
use tracechain_proto::v1 as pb;
use tracechain_storage::Store;

use crate::{
    block_view::BlockView,
    ledger::{conflicts, state},
    locks::lock,
    tx::{self, SignerKind},
};

/// Most conflicting pairs a node keeps.
pub const MAX_KEPT: usize = 256;

/// Conflicting pairs this node has seen, newest last.
#[derive(Default)]
pub struct ConflictWatch {
    seen: Mutex<VecDeque<pb::SeenDeviceConflict>>,
}

impl ConflictWatch {
    /// The pairs kept, oldest first.
    pub fn list(&self) -> Vec<pb::SeenDeviceConflict> {
        lock(&self.seen).iter().cloned().collect()
    }

    /// Compares `suspect`, a transaction the ledger refused or would refuse, with what
    /// its device's key committed; keeps the pair when it is proof of a conflict. Says
    /// whether it kept one. Store faults and transactions that prove nothing are
    /// ignored: this is a watch, not a check anything depends on.
    pub fn examine(&self, store: &Store, chain_id: &str, suspect: &pb::SignedTx) -> bool {
        match find(store, chain_id, suspect) {
            Ok(Some(found)) => self.keep(found),
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(error = %e, "device conflict watch: store read failed");
                false
            }
        }
    }

    fn keep(&self, found: pb::SeenDeviceConflict) -> bool {
        let mut seen = lock(&self.seen);
        if seen
            .iter()
            .any(|s| s.first_tx_id == found.first_tx_id && s.second_tx_id == found.second_tx_id)
        {
            return false;
        }
        tracing::warn!(
            device = %found.device_id,
            kind = pb::DeviceConflictKind::try_from(found.kind)
                .map(|k| k.as_str_name())
                .unwrap_or("?"),
            first_sequence = found.first_sequence,
            second_sequence = found.second_sequence,
            "a device key signed conflicting readings (a clone?): a member can report it with `tracechain submit report-conflict --device {}`",
            found.device_id
        );
        if seen.len() == MAX_KEPT {
            seen.pop_front();
        }
        seen.push_back(found);
        true
    }
}

/// The committed transaction of `device` with `sequence`, if there is one.
fn committed(
    store: &Store,
    device: &str,
    sequence: u64,
) -> Result<Option<pb::SignedTx>, Box<dyn std::error::Error>> {
    let key = state::device_sequence_key(device, sequence);
    let Some(id) = store.get_indexes(&[key.as_slice()])?.pop().flatten() else {
        return Ok(None);
    };
    let id: [u8; 32] = id.as_slice().try_into()?;
    let Some(at) = store.tx_location(&id)? else {
        return Ok(None);
    };
    let Some(block) = store.block(at.height)? else {
        return Ok(None);
    };
    Ok(BlockView::new(block)?.tx(at.index)?)
}

fn find(
    store: &Store,
    chain_id: &str,
    suspect: &pb::SignedTx,
) -> Result<Option<pb::SeenDeviceConflict>, Box<dyn std::error::Error>> {
    let Ok(unverified) = tx::decode(suspect.clone(), chain_id) else {
        return Ok(None);
    };
    let signer = unverified.signer().clone();
    let sequence = unverified.sequence();
    if signer.kind != SignerKind::Device {
        return Ok(None);
    }
    let Some(record) = store.get_state(&state::device_key(&signer.id))? else {
        return Ok(None);
    };
    let device = pb::DeviceRecord::decode(record.as_slice())?;
    if device.public_key != signer.public_key
        || conflicts::current_key_compromised(&device).is_some()
    {
        // A key that is no longer the device's proves nothing the ledger takes; a
        // flagged one needs no second proof.
        return Ok(None);
    }
    // The signature first: a forged "replay" (anyone can send one) costs one check, as
    // any transaction does at admission, and no block is read for it.
    let Ok(suspect_tx) = unverified.verify() else {
        return Ok(None);
    };
    let mut sequences = vec![sequence, device.last_sequence];
    sequences.dedup();
    for sequence in sequences {
        let Some(other) = committed(store, &signer.id, sequence)? else {
            continue;
        };
        if other.body == suspect.body {
            continue;
        }
        // From this node's own blocks: verified before they were committed.
        let other_tx = tx::committed(other.clone(), chain_id)?;
        if let Ok(proof) = conflicts::prove(&suspect_tx, &other_tx) {
            return Ok(Some(pb::SeenDeviceConflict {
                device_id: proof.device_id,
                kind: proof.kind as i32,
                first_tx_id: proof.first.id.0.to_vec(),
                first_sequence: proof.first.sequence,
                second_tx_id: proof.second.id.0.to_vec(),
                second_sequence: proof.second.sequence,
                report: Some(pb::ReportDeviceConflict {
                    first: suspect.encode_to_vec(),
                    second: other.encode_to_vec(),
                }),
            }));
        }
    }
    Ok(None)
}
