//! Admission: the checks a transaction passes before it enters the mempool, and the
//! thread pool they run on.
//!
//! Checks run cheapest first (see [`check`]), so that what can be refused without a
//! signature check is. They run on their own rayon pool whose threads have a lower CPU
//! priority (a higher nice value) than the rest of the node: admitting new
//! transactions is background work next to executing, voting on and writing the
//! block under decision, which every transaction already admitted waits for. With four
//! members on two cores, checks at normal priority stretched every consensus round
//! several times over (docs/PERFORMANCE.md). Depends on `tx`, `mempool` (through the
//! node's shared state) and the store.

use prost::Message as _;
use thread_priority::{ThreadPriority, ThreadPriorityValue};
use tracechain_proto::v1 as pb;
use tracechain_storage::Store;

use crate::{
    ledger::state,
    node::{AdmissionError, Origin, Shared, lock},
    tx::{self, CheckedTx, SignerKind},
};

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

/// The admission checks of a submission, cheapest first, so that what can be refused
/// without a signature check is (a replayed, stale or duplicate transaction, or one that
/// finds the mempool full, costs a lookup, not a verification): stateless decoding; one
/// short mempool lock for duplicates and room; committed state ([`precheck`]); then the
/// signatures of what is left, in one batch. One outcome per input, in order, and the
/// mempool's [commit mark](crate::mempool::Mempool::commit_mark) read before committed
/// state was: whoever pools the outcomes must check the blocks committed since.
pub(crate) fn check(
    shared: &Shared,
    origin: Origin,
    txs: Vec<pb::SignedTx>,
) -> (u64, Vec<Result<CheckedTx, AdmissionError>>) {
    let chain_id = shared.genesis.chain_id();
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
        let pool = lock(&shared.mempool);
        mark = pool.commit_mark();
        let (mut room, capacity) = match origin {
            Origin::Client => {
                let bound = shared.config.mempool_max_txs;
                (bound.saturating_sub(pool.len()), bound)
            }
            Origin::Peer => (pool.room(), pool.capacity()),
        };
        candidates.retain(|(slot, u)| {
            let refusal = if pool.contains(&u.id()) {
                AdmissionError::Duplicate {
                    id: u.id(),
                    where_: "pending".into(),
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
    candidates.retain(|(slot, u)| match precheck(&shared.store, u) {
        Ok(()) => true,
        Err(e) => {
            out[*slot] = Err(e);
            false
        }
    });
    let (slots, unverified): (Vec<usize>, Vec<tx::UnverifiedTx>) = candidates.into_iter().unzip();
    for (slot, verified) in slots.into_iter().zip(tx::verify_all(unverified)) {
        out[slot] = verified.map_err(AdmissionError::from);
    }
    (mark, out)
}

/// Rejects what committed state already rules out forever: a transaction that is
/// already committed, a device sequence at or below the device's high-water mark, a
/// revoked device. Everything else is left to execution, where it gets a result code.
pub(crate) fn precheck(store: &Store, tx: &tx::UnverifiedTx) -> Result<(), AdmissionError> {
    let internal = |e: tracechain_storage::StorageError| AdmissionError::Internal(e.to_string());
    // First, so that a client retrying a committed transaction hears "already exists".
    if let Some(loc) = store.tx_location(&tx.id().0).map_err(internal)? {
        return Err(AdmissionError::Duplicate {
            id: tx.id(),
            where_: format!("committed at height {}", loc.height),
        });
    }
    let signer = tx.signer();
    if signer.kind == SignerKind::Device
        && let Some(bytes) = store
            .get_state(&state::device_key(&signer.id))
            .map_err(internal)?
    {
        let device = pb::DeviceRecord::decode(bytes.as_slice())
            .map_err(|e| AdmissionError::Internal(format!("corrupt device record: {e}")))?;
        if device.revoked {
            return Err(AdmissionError::Stale(format!(
                "device {} is revoked",
                signer.id
            )));
        }
        if tx.sequence() <= device.last_sequence {
            return Err(AdmissionError::Stale(format!(
                "sequence {} of device {} is not above its last accepted sequence {} (replayed or out of order)",
                tx.sequence(),
                signer.id,
                device.last_sequence
            )));
        }
    }
    Ok(())
}
