//! Admission: the checks a transaction passes before it enters the mempool, and the
//! thread pool they run on.
//!
//! Checks run cheapest first (see [`check`]), so that what can be refused without a
//! signature check is. They run on their own rayon pool whose threads have a lower CPU
//! priority (a higher nice value) than the rest of the node: admitting new
//! transactions is background work next to executing, voting on and writing the
//! block under decision, which every transaction already admitted waits for. With four
//! members on two cores, checks at normal priority stretched every consensus round
//! several times over (docs/PERFORMANCE.md). Depends on `tx`, `mempool` and the store,
//! which it is handed in a [`Gate`]; it knows nothing of the node that runs it.

use std::{collections::HashMap, sync::Mutex};

use prost::Message as _;
use thread_priority::{ThreadPriority, ThreadPriorityValue};
use tracechain_proto::v1 as pb;
use tracechain_storage::Store;

use crate::{
    ledger::state,
    locks::lock,
    mempool::Mempool,
    tx::{self, CheckedTx, SignerKind, TxError, TxId},
};

/// Why a transaction was not admitted (the API maps each to a gRPC status).
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// Malformed, wrong chain, bad signature, impossible values.
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// Already pending or committed.
    #[error("transaction {id} is already {where_}")]
    Duplicate {
        /// The transaction.
        id: TxId,
        /// Where it is.
        where_: Seen,
    },
    /// The device was revoked: nothing it signs can be accepted again.
    #[error("device {device} is revoked")]
    Revoked {
        /// The device.
        device: String,
    },
    /// The device's sequence is not above its last accepted one: a replay, or a reading
    /// sent out of order after a later one was accepted.
    #[error(
        "sequence {sequence} of device {device} is not above its last accepted sequence {last} (replayed or out of order)"
    )]
    Replayed {
        /// The device.
        device: String,
        /// The transaction's sequence.
        sequence: u64,
        /// The last sequence accepted from the device.
        last: u64,
    },
    /// The mempool is full: retry later.
    #[error("mempool is full ({capacity} transactions); retry later")]
    Full {
        /// The bound that was hit.
        capacity: usize,
    },
    /// The node cannot pass more transactions to the consortium right now: retry later.
    #[error("the node is overloaded (its consortium queue is full); retry later")]
    Overloaded,
    /// A local fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Where a transaction already is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Waiting in the mempool.
    Pending,
    /// In the block at this height.
    Committed {
        /// The height.
        height: u64,
    },
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seen::Pending => f.write_str("pending"),
            Seen::Committed { height } => write!(f, "committed at height {height}"),
        }
    }
}

/// Where a transaction came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client of this node's API: pushed on to the other members.
    Client,
    /// Another member's (or an observer's) push: every member got it from its origin.
    Peer,
}

/// Most replayed device transactions of one submission compared with the committed
/// ones ([`crate::device_conflicts`]).
const MAX_SUSPECTS: usize = 16;

/// The thread priority of admission work, on the `thread-priority` crate's 0..=99
/// scale: nice 9 on Linux, so that the scheduler gives ordinary threads about ten times
/// the CPU share of these when both want it, and all of it to these when nothing else
/// runs.
const ADMISSION_PRIORITY: u8 = 23;

/// The pool admission checks run on: one thread per core, at a lower priority. If the
/// priority cannot be lowered (a platform without it), the pool still works, at normal
/// priority.
pub(crate) fn pool() -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .thread_name(|i| format!("admission-{i}"))
        .start_handler(|_| {
            let lowered = ThreadPriorityValue::try_from(ADMISSION_PRIORITY)
                .map_err(|e| e.to_string())
                .and_then(|p| {
                    thread_priority::set_current_thread_priority(ThreadPriority::Crossplatform(p))
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = lowered {
                tracing::debug!(error = %e, "admission thread keeps its priority");
            }
        })
        .build()
}

/// What admission reads: the chain, the mempool and its bound for clients, committed
/// state.
pub(crate) struct Gate<'a> {
    /// The chain id every transaction must name.
    pub(crate) chain_id: &'a str,
    /// The pool: duplicates, room, the commit mark.
    pub(crate) mempool: &'a Mutex<Mempool>,
    /// Most pending transactions a client may add to (peers: the pool's capacity).
    pub(crate) client_bound: usize,
    /// Committed state, for [`precheck`].
    pub(crate) store: &'a Store,
    /// Where a replayed device transaction is compared with the committed one.
    pub(crate) conflicts: &'a crate::device_conflicts::ConflictWatch,
}

/// The admission checks of a submission, cheapest first, so that what can be refused
/// without a signature check is (a replayed, stale or duplicate transaction, or one that
/// finds the mempool full, costs a lookup, not a verification): stateless decoding; one
/// short mempool lock for duplicates and room; committed state ([`precheck`]); then the
/// signatures of what is left, in one batch. One outcome per input, in order, and the
/// mempool's [commit mark](crate::mempool::Mempool::commit_mark) read before committed
/// state was: whoever pools the outcomes must check the blocks committed since.
pub(crate) fn check(
    gate: &Gate<'_>,
    origin: Origin,
    txs: Vec<pb::SignedTx>,
) -> (u64, Vec<Result<CheckedTx, AdmissionError>>) {
    let chain_id = gate.chain_id;
    let mut out: Vec<Result<CheckedTx, AdmissionError>> = Vec::with_capacity(txs.len());
    let mut candidates: Vec<(usize, tx::UnverifiedTx)> = Vec::with_capacity(txs.len());
    for t in txs {
        match tx::decode(t, chain_id) {
            Ok(u) => candidates.push((out.len(), u)),
            Err(e) => {
                out.push(Err(e.into()));
                continue;
            }
        }
        out.push(Err(AdmissionError::Internal("unchecked".into())));
    }
    let mark;
    {
        let pool = lock(gate.mempool);
        mark = pool.commit_mark();
        let (mut room, capacity) = match origin {
            Origin::Client => {
                let bound = gate.client_bound;
                (bound.saturating_sub(pool.len()), bound)
            }
            Origin::Peer => (pool.room(), pool.capacity()),
        };
        candidates.retain(|(slot, u)| {
            let refusal = if pool.contains(&u.id()) {
                AdmissionError::Duplicate {
                    id: u.id(),
                    where_: Seen::Pending,
                }
            } else if room == 0 {
                AdmissionError::Full { capacity }
            } else {
                room -= 1;
                return true;
            };
            out[*slot] = Err(refusal);
            false
        });
    }
    let verdicts = precheck(gate.store, candidates.iter().map(|(_, u)| u));
    let mut verdicts = verdicts.into_iter();
    let mut replayed: Vec<pb::SignedTx> = Vec::new();
    candidates.retain(|(slot, u)| match verdicts.next() {
        Some(Ok(())) => true,
        Some(Err(e)) => {
            if matches!(e, AdmissionError::Replayed { .. }) && replayed.len() < MAX_SUSPECTS {
                replayed.push(u.signed().clone());
            }
            out[*slot] = Err(e);
            false
        }
        None => {
            out[*slot] = Err(AdmissionError::Internal("no precheck verdict".into()));
            false
        }
    });
    // A replayed sequence with another body is a clone's (or the genuine device's,
    // after a clone's was committed): the watch keeps the pair for a member to prove.
    for suspect in &replayed {
        gate.conflicts.examine(gate.store, chain_id, suspect);
    }
    let (slots, unverified): (Vec<usize>, Vec<tx::UnverifiedTx>) = candidates.into_iter().unzip();
    for (slot, verified) in slots.into_iter().zip(tx::verify_all(unverified)) {
        out[slot] = verified.map_err(AdmissionError::from);
    }
    (mark, out)
}

/// Rejects what committed state already rules out forever: a transaction that is
/// already committed, a device sequence at or below the device's high-water mark, a
/// revoked device. Everything else is left to execution, where it gets a result code.
/// One verdict per transaction, in order. The store is asked once for all ids and once
/// for all devices (a request carries many readings of few devices), and each device
/// record is decoded once.
pub(crate) fn precheck<'a>(
    store: &Store,
    txs: impl Iterator<Item = &'a tx::UnverifiedTx>,
) -> Vec<Result<(), AdmissionError>> {
    let txs: Vec<&tx::UnverifiedTx> = txs.collect();
    let internal = |e: &dyn std::fmt::Display| AdmissionError::Internal(e.to_string());
    let ids: Vec<[u8; 32]> = txs.iter().map(|t| t.id().0).collect();
    let locations = match store.tx_locations(&ids) {
        Ok(l) => l,
        Err(e) => return txs.iter().map(|_| Err(internal(&e))).collect(),
    };
    // Each device's record, read and decoded once: `None` for an unknown device
    // (execution refuses it with its own code).
    let mut names: Vec<&str> = txs
        .iter()
        .map(|t| t.signer())
        .filter(|s| s.kind == SignerKind::Device)
        .map(|s| s.id.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let device_keys: Vec<Vec<u8>> = names.iter().map(|id| state::device_key(id)).collect();
    let keys: Vec<&[u8]> = device_keys.iter().map(Vec::as_slice).collect();
    let values = match store.get_states(&keys) {
        Ok(values) => values,
        Err(e) => return txs.iter().map(|_| Err(internal(&e))).collect(),
    };
    let devices: HashMap<&str, Result<Option<pb::DeviceRecord>, String>> = names
        .into_iter()
        .zip(values)
        .map(|(name, value)| {
            let record = value
                .map(|bytes| {
                    pb::DeviceRecord::decode(bytes.as_slice())
                        .map_err(|e| format!("corrupt device record: {e}"))
                })
                .transpose();
            (name, record)
        })
        .collect();
    txs.iter()
        .zip(locations)
        .map(|(t, location)| {
            // First, so that a client retrying a committed transaction hears "already
            // exists".
            if let Some(loc) = location {
                return Err(AdmissionError::Duplicate {
                    id: t.id(),
                    where_: Seen::Committed { height: loc.height },
                });
            }
            let signer = t.signer();
            if signer.kind != SignerKind::Device {
                return Ok(());
            }
            let device = match devices.get(signer.id.as_str()) {
                Some(Ok(Some(device))) => device,
                Some(Ok(None)) | None => return Ok(()),
                Some(Err(e)) => return Err(AdmissionError::Internal(e.clone())),
            };
            if device.revoked {
                return Err(AdmissionError::Revoked {
                    device: signer.id.clone(),
                });
            }
            if t.sequence() <= device.last_sequence {
                return Err(AdmissionError::Replayed {
                    device: signer.id.clone(),
                    sequence: t.sequence(),
                    last: device.last_sequence,
                });
            }
            Ok(())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Scheme, SecretKey};
    use tracechain_storage::{BlockCommit, ChainHead};

    const CHAIN: &str = "admission-test";

    fn reading(key: &SecretKey, device: &str, sequence: u64) -> tx::UnverifiedTx {
        let body = pb::TxBody {
            chain_id: CHAIN.into(),
            signer: Some(pb::Signer {
                kind: pb::SignerKind::Device as i32,
                id: device.into(),
                scheme: pb::SignatureScheme::Ed25519 as i32,
                public_key: key.public_key(),
            }),
            sequence,
            time_ms: 1_700_000_000_000,
            action: Some(pb::tx_body::Action::SensorReport(pb::SensorReport {
                shipment_id: "s".into(),
                observed_at_ms: 1_700_000_000_000,
                temperature_milli_c: 5_000,
                humidity_permille: None,
                location: None,
            })),
        };
        tx::decode(tx::sign_body(&body, key), CHAIN).expect("decodes")
    }

    fn device(id: &str, last_sequence: u64, revoked: bool) -> (Vec<u8>, Option<Vec<u8>>) {
        let record = pb::DeviceRecord {
            device_id: id.into(),
            last_sequence,
            revoked,
            ..Default::default()
        };
        (state::device_key(id), Some(record.encode_to_vec()))
    }

    #[test]
    fn precheck_gives_each_transaction_of_a_request_its_own_verdict() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).expect("open");
        let key = SecretKey::from_bytes(Scheme::Ed25519, &[9; 32]).expect("seed");
        let committed = reading(&key, "dev-a", 5);
        store
            .commit_block(&BlockCommit {
                height: 1,
                block_hash: [1; 32],
                block: b"block".to_vec(),
                tx_ids: vec![(0, committed.id().0)],
                state_writes: vec![device("dev-a", 5, false), device("dev-r", 1, true)],
                index_writes: vec![],
                head: ChainHead {
                    height: 1,
                    block_hash: [1; 32],
                    state_commitment: [0; 32],
                    extra: vec![],
                },
            })
            .expect("commit");
        let txs = [
            reading(&key, "dev-a", 6),   // next of a known device
            committed,                   // already committed
            reading(&key, "dev-a", 4),   // replay
            reading(&key, "dev-r", 2),   // revoked device
            reading(&key, "dev-new", 1), // unknown device: left to execution
            reading(&key, "dev-a", 7),   // several of one device in one request
            reading(&key, "dev-a", 5),   // the committed one again: "already exists" first
        ];
        let verdicts = precheck(&store, txs.iter());
        assert_eq!(verdicts.len(), txs.len());
        assert!(verdicts[0].is_ok(), "{:?}", verdicts[0]);
        assert!(
            matches!(
                &verdicts[1],
                Err(AdmissionError::Duplicate {
                    where_: Seen::Committed { height: 1 },
                    ..
                })
            ),
            "{:?}",
            verdicts[1]
        );
        assert!(
            matches!(&verdicts[2], Err(AdmissionError::Replayed { .. })),
            "{:?}",
            verdicts[2]
        );
        assert!(
            matches!(&verdicts[3], Err(AdmissionError::Revoked { .. })),
            "{:?}",
            verdicts[3]
        );
        assert!(verdicts[4].is_ok(), "{:?}", verdicts[4]);
        assert!(verdicts[5].is_ok(), "{:?}", verdicts[5]);
        assert!(
            matches!(&verdicts[6], Err(AdmissionError::Duplicate { .. })),
            "{:?}",
            verdicts[6]
        );
        assert!(precheck(&store, std::iter::empty()).is_empty());
    }
}
