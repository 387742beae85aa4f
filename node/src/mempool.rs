//! The mempool: checked transactions waiting for a block.
//!
//! A bounded pool (by count and by encoded bytes) of `Arc<CheckedTx>`. Only transactions
//! whose signatures verified get here (see `tx`), so the pool never holds unchecked
//! bytes. It is a plain data structure, not thread-safe; the node wraps it in a mutex.
//!
//! Order: first come, first served by arrival, except that the transactions of one
//! signer inside a batch are put in ascending sequence order *in the positions those
//! transactions already occupy*. A device that sends sequence 5 then 6 over two paths
//! may see them arrive as 6, 5; the ledger keeps a per-signer high-water mark, so
//! executing 6 first would make 5 a replay. Transactions of other signers keep their
//! places, so nobody is starved by the reordering.
//!
//! Complexity: insert, contains and removal are O(log n) (a `BTreeMap` keyed by an
//! arrival counter, plus a `HashMap` by id); a batch is O(k log k) in its size, plus the
//! entries it skips.
//!
//! Committed transactions: the pool also remembers the ids of the last
//! [`REMEMBERED_BLOCKS`] committed blocks ([`Mempool::committed`]). Admission checks
//! committed state first and inserts after the signature checks; a block committed in
//! between (its removal from the pool already done) would otherwise leave its
//! transactions in the pool for good: never proposed again, they filled followers'
//! pools under sustained load until every client was refused (docs/PERFORMANCE.md).
//!
//! Depends on `tx` only.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use prost::Message as _;

use crate::tx::{CheckedTx, SignerKind, TxId};

/// Why a transaction was not admitted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The transaction is already in the pool.
    #[error("transaction {id} is already in the mempool")]
    Duplicate {
        /// Its id.
        id: TxId,
    },
    /// Admitting the transaction would exceed the pool's count or byte limit.
    #[error(
        "mempool full: {len} of {capacity} transactions, {bytes} of {max_bytes} bytes; \
         a transaction of {tx_bytes} bytes does not fit"
    )]
    Full {
        /// Most transactions the pool holds.
        capacity: usize,
        /// Most bytes the pool holds.
        max_bytes: usize,
        /// Transactions in the pool now.
        len: usize,
        /// Bytes in the pool now.
        bytes: usize,
        /// Encoded size of the refused transaction.
        tx_bytes: usize,
    },
}

/// How many committed blocks' transaction ids the pool remembers at most: an admission
/// whose check of committed state is older than that asks the store again.
pub const REMEMBERED_BLOCKS: usize = 64;
/// Older blocks are forgotten too once the remembered ids exceed this (the last block is
/// always kept): ~10 MB at most, about 6 s of blocks at 16,000 readings per second.
pub const REMEMBERED_IDS: usize = 100_000;

/// What the pool knows of a transaction's commits after a [commit mark](Mempool::commit_mark).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinceMark {
    /// Committed in a block after the mark, at this height.
    Committed(u64),
    /// Not in any block committed after the mark.
    NotCommitted,
    /// The pool no longer remembers every block after the mark: ask the store.
    Unknown,
}

/// Identifies a signer's sequence space: members and devices are separate namespaces.
type SignerKey = (SignerKind, String);

fn signer_key(tx: &CheckedTx) -> SignerKey {
    (tx.signer.kind, tx.signer.id.clone())
}

/// Where an admitted transaction sits, and what it costs.
#[derive(Clone, Copy, Debug)]
struct Slot {
    arrival: u64,
    size: usize,
}

/// A bounded pool of checked transactions, ordered by arrival.
#[derive(Debug)]
pub struct Mempool {
    max_txs: usize,
    max_bytes: usize,
    /// Arrival counter -> transaction: iteration order is arrival order.
    by_arrival: BTreeMap<u64, Arc<CheckedTx>>,
    by_id: HashMap<TxId, Slot>,
    next_arrival: u64,
    bytes: usize,
    /// Ids of the remembered committed blocks, oldest first, by height.
    recent: VecDeque<(u64, Vec<TxId>)>,
    /// Number of ids in `recent`.
    recent_len: usize,
    /// Id -> height of the first remembered block that holds it.
    recent_ids: HashMap<TxId, u64>,
    /// Height of the last block given to [`Mempool::committed`] (the commit mark).
    committed_height: u64,
    /// Every block above this height, up to `committed_height`, is remembered.
    remembered_from: u64,
}

/// The size a transaction is charged: its encoded envelope.
fn tx_size(tx: &CheckedTx) -> usize {
    tx.signed.encoded_len()
}

impl Mempool {
    /// An empty pool holding at most `max_txs` transactions and `max_bytes` bytes of
    /// encoded envelopes.
    pub fn new(max_txs: usize, max_bytes: usize) -> Self {
        Mempool {
            max_txs,
            max_bytes,
            by_arrival: BTreeMap::new(),
            by_id: HashMap::new(),
            next_arrival: 0,
            bytes: 0,
            recent: VecDeque::new(),
            recent_len: 0,
            recent_ids: HashMap::new(),
            committed_height: 0,
            remembered_from: 0,
        }
    }

    /// Admits a transaction at the back of the queue.
    pub fn insert(&mut self, tx: Arc<CheckedTx>) -> Result<(), MempoolError> {
        if self.by_id.contains_key(&tx.id) {
            return Err(MempoolError::Duplicate { id: tx.id });
        }
        let size = tx_size(&tx);
        if self.by_id.len() >= self.max_txs || size > self.max_bytes - self.bytes {
            return Err(MempoolError::Full {
                capacity: self.max_txs,
                max_bytes: self.max_bytes,
                len: self.by_id.len(),
                bytes: self.bytes,
                tx_bytes: size,
            });
        }
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        self.by_id.insert(tx.id, Slot { arrival, size });
        self.by_arrival.insert(arrival, tx);
        self.bytes += size;
        Ok(())
    }

    /// Whether a transaction is in the pool.
    pub fn contains(&self, id: &TxId) -> bool {
        self.by_id.contains_key(id)
    }

    /// The pooled transaction with this id, e.g. to reuse its signature check when a
    /// proposal carries it.
    pub fn get(&self, id: &TxId) -> Option<Arc<CheckedTx>> {
        let slot = self.by_id.get(id)?;
        self.by_arrival.get(&slot.arrival).cloned()
    }

    /// How many more transactions the pool takes (by count; bytes are checked on insert).
    pub fn room(&self) -> usize {
        self.max_txs.saturating_sub(self.by_id.len())
    }

    /// Most transactions the pool holds.
    pub fn capacity(&self) -> usize {
        self.max_txs
    }

    /// Number of transactions in the pool.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Total encoded bytes of the pooled transactions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The next block's worth of transactions, without removing them: at most `max_txs`
    /// transactions and `max_bytes` encoded bytes, oldest first, with each signer's
    /// transactions in ascending sequence order (in the positions they occupy).
    ///
    /// A transaction that does not fit the remaining byte budget is skipped, and so are
    /// its signer's later-sequence transactions (already picked or not): including
    /// them without it would make it a replay once they execute.
    pub fn batch(&self, max_txs: usize, max_bytes: usize) -> Vec<Arc<CheckedTx>> {
        let mut picked: Vec<Arc<CheckedTx>> = Vec::new();
        let mut used = 0usize;
        // Signer -> lowest sequence among its skipped transactions.
        let mut held_back: HashMap<SignerKey, u64> = HashMap::new();
        for tx in self.by_arrival.values() {
            if picked.len() >= max_txs || used >= max_bytes {
                break;
            }
            let size = self
                .by_id
                .get(&tx.id)
                .map_or_else(|| tx_size(tx), |slot| slot.size);
            if size > max_bytes - used {
                let lowest = held_back.entry(signer_key(tx)).or_insert(tx.sequence);
                *lowest = (*lowest).min(tx.sequence);
                continue;
            }
            picked.push(Arc::clone(tx));
            used += size;
        }
        if !held_back.is_empty() {
            picked.retain(|tx| {
                held_back
                    .get(&signer_key(tx))
                    .is_none_or(|&lowest| tx.sequence < lowest)
            });
        }
        order_sequences_per_signer(&mut picked);
        picked
    }

    /// A block at `height` was written to the store: removes its transactions and
    /// remembers their ids. Call it after the write, so that an admission reading the
    /// [commit mark](Self::commit_mark) before it checks the store either sees the block
    /// there or learns of it here. Returns how many were removed.
    pub fn committed(&mut self, height: u64, ids: &[TxId]) -> usize {
        let removed = self.remove(ids);
        if height != self.committed_height.wrapping_add(1) || self.recent.is_empty() {
            // A first block, or a gap: nothing at or below height - 1 is remembered.
            self.recent.clear();
            self.recent_len = 0;
            self.recent_ids.clear();
            self.remembered_from = height.saturating_sub(1);
        }
        for id in ids {
            self.recent_ids.entry(*id).or_insert(height);
        }
        self.recent.push_back((height, ids.to_vec()));
        self.recent_len += ids.len();
        self.committed_height = height;
        while self.recent.len() > REMEMBERED_BLOCKS
            || (self.recent_len > REMEMBERED_IDS && self.recent.len() > 1)
        {
            let Some((old, ids)) = self.recent.pop_front() else {
                break;
            };
            self.recent_len -= ids.len();
            for id in &ids {
                if self.recent_ids.get(id) == Some(&old) {
                    self.recent_ids.remove(id);
                }
            }
            self.remembered_from = old;
        }
        removed
    }

    /// The height of the last block given to [`committed`](Self::committed). Admission
    /// reads it before checking committed state, and passes it to
    /// [`committed_since`](Self::committed_since) when it inserts.
    pub fn commit_mark(&self) -> u64 {
        self.committed_height
    }

    /// Whether `id` was in a block committed after the mark `since`.
    pub fn committed_since(&self, id: &TxId, since: u64) -> SinceMark {
        if since < self.remembered_from {
            return SinceMark::Unknown;
        }
        match self.recent_ids.get(id) {
            Some(&height) if height > since => SinceMark::Committed(height),
            _ => SinceMark::NotCommitted,
        }
    }

    /// Removes transactions (after their block committed); unknown ids are ignored.
    /// Returns how many were removed.
    pub fn remove<'a>(&mut self, ids: impl IntoIterator<Item = &'a TxId>) -> usize {
        let mut removed = 0;
        for id in ids {
            if let Some(slot) = self.by_id.remove(id) {
                self.by_arrival.remove(&slot.arrival);
                self.bytes -= slot.size;
                removed += 1;
            }
        }
        removed
    }
}

/// Within `txs`, sorts each signer's transactions by sequence, keeping the set of
/// positions each signer occupies. Stable: equal sequences keep arrival order.
fn order_sequences_per_signer(txs: &mut [Arc<CheckedTx>]) {
    let mut positions: HashMap<SignerKey, Vec<usize>> = HashMap::new();
    for (position, tx) in txs.iter().enumerate() {
        positions.entry(signer_key(tx)).or_default().push(position);
    }
    for slots in positions.values().filter(|slots| slots.len() > 1) {
        let mut own: Vec<Arc<CheckedTx>> = slots.iter().map(|&p| Arc::clone(&txs[p])).collect();
        own.sort_by_key(|tx| tx.sequence);
        for (&position, tx) in slots.iter().zip(own) {
            txs[position] = tx;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Scheme, SecretKey};
    use crate::tx::{self, SignerRef};
    use tracechain_proto::v1 as pb;

    /// A checked transaction built directly (the mempool does not look at signatures).
    fn tx(kind: SignerKind, signer: &str, sequence: u64, padding: usize) -> Arc<CheckedTx> {
        let action = pb::tx_body::Action::SensorReport(pb::SensorReport {
            shipment_id: "s".repeat(padding.max(1)),
            observed_at_ms: 1,
            temperature_milli_c: 0,
            humidity_permille: None,
            location: None,
        });
        let body = pb::TxBody {
            chain_id: "c".into(),
            signer: None,
            sequence,
            time_ms: 1,
            action: Some(action.clone()),
        }
        .encode_to_vec();
        // Different signers with the same sequence must have different ids.
        let mut id_input = body.clone();
        id_input.extend_from_slice(signer.as_bytes());
        Arc::new(CheckedTx {
            id: TxId::of_body(&id_input),
            signed: pb::SignedTx {
                body,
                signature: vec![0; 64],
            },
            signer: SignerRef {
                kind,
                id: signer.to_owned(),
                scheme: Scheme::Ed25519,
                public_key: vec![0; 32],
            },
            sequence,
            time_ms: 1,
            action,
        })
    }

    fn dev(signer: &str, sequence: u64) -> Arc<CheckedTx> {
        tx(SignerKind::Device, signer, sequence, 1)
    }

    fn label(txs: &[Arc<CheckedTx>]) -> Vec<String> {
        txs.iter()
            .map(|t| format!("{}{}", t.signer.id, t.sequence))
            .collect()
    }

    #[test]
    fn insert_contains_len_bytes() {
        let mut pool = Mempool::new(10, 1 << 20);
        assert!(pool.is_empty());
        let a = dev("a", 1);
        let size = a.signed.encoded_len();
        pool.insert(Arc::clone(&a)).expect("insert");
        assert!(pool.contains(&a.id));
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.bytes(), size);
        assert_eq!(pool.get(&a.id).map(|t| t.id), Some(a.id));
        assert!(!pool.contains(&dev("a", 2).id));
    }

    #[test]
    fn duplicate_rejected() {
        let mut pool = Mempool::new(10, 1 << 20);
        let a = dev("a", 1);
        pool.insert(Arc::clone(&a)).expect("insert");
        assert_eq!(
            pool.insert(Arc::clone(&a)),
            Err(MempoolError::Duplicate { id: a.id })
        );
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn full_by_count() {
        let mut pool = Mempool::new(2, 1 << 20);
        pool.insert(dev("a", 1)).expect("1");
        pool.insert(dev("a", 2)).expect("2");
        let err = pool.insert(dev("a", 3)).expect_err("full");
        assert!(
            matches!(
                err,
                MempoolError::Full {
                    capacity: 2,
                    len: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        // Room again after a removal.
        let first = dev("a", 1).id;
        assert_eq!(pool.remove([&first]), 1);
        pool.insert(dev("a", 3)).expect("room again");
    }

    #[test]
    fn full_by_bytes() {
        let small = dev("a", 1);
        let size = small.signed.encoded_len();
        let mut pool = Mempool::new(100, size * 2);
        pool.insert(small).expect("1");
        pool.insert(dev("a", 2)).expect("2");
        assert!(matches!(
            pool.insert(dev("a", 3)),
            Err(MempoolError::Full { .. })
        ));
        let mut pool = Mempool::new(100, size);
        let big = tx(SignerKind::Device, "b", 1, 500);
        assert!(matches!(
            pool.insert(big),
            Err(MempoolError::Full { tx_bytes, .. }) if tx_bytes > size
        ));
        assert_eq!(pool.bytes(), 0);
    }

    #[test]
    fn batch_is_fifo_and_does_not_remove() {
        let mut pool = Mempool::new(100, 1 << 20);
        for (s, q) in [("a", 1), ("b", 1), ("c", 1), ("a", 2)] {
            pool.insert(dev(s, q)).expect("insert");
        }
        assert_eq!(label(&pool.batch(10, 1 << 20)), ["a1", "b1", "c1", "a2"]);
        assert_eq!(label(&pool.batch(2, 1 << 20)), ["a1", "b1"]);
        assert_eq!(pool.len(), 4, "batch only peeks");
        assert!(pool.batch(0, 1 << 20).is_empty());
    }

    #[test]
    fn batch_orders_each_signers_sequences_in_place() {
        let mut pool = Mempool::new(100, 1 << 20);
        // Arrival: a6, b2, a5, c1, b1, a7
        for (s, q) in [("a", 6), ("b", 2), ("a", 5), ("c", 1), ("b", 1), ("a", 7)] {
            pool.insert(dev(s, q)).expect("insert");
        }
        // a keeps positions 0, 2, 5; b keeps 1, 4; c keeps 3.
        assert_eq!(
            label(&pool.batch(10, 1 << 20)),
            ["a5", "b1", "a6", "c1", "b2", "a7"]
        );
    }

    #[test]
    fn member_and_device_with_same_id_are_different_signers() {
        let mut pool = Mempool::new(100, 1 << 20);
        pool.insert(tx(SignerKind::Member, "x", 9, 1)).expect("m9");
        pool.insert(tx(SignerKind::Device, "x", 1, 1)).expect("d1");
        let batch = pool.batch(10, 1 << 20);
        assert_eq!(batch[0].signer.kind, SignerKind::Member);
        assert_eq!(batch[0].sequence, 9);
        assert_eq!(batch[1].signer.kind, SignerKind::Device);
    }

    #[test]
    fn batch_respects_byte_budget_and_never_skips_ahead_in_a_signers_sequence() {
        let mut pool = Mempool::new(100, 1 << 20);
        let small = dev("a", 1).signed.encoded_len();
        // b5 (small) arrives first, then b4 (big): b4 does not fit, so b5 must wait too.
        pool.insert(dev("b", 5)).expect("b5");
        pool.insert(tx(SignerKind::Device, "b", 4, 400))
            .expect("b4");
        pool.insert(dev("c", 1)).expect("c1");
        pool.insert(dev("a", 1)).expect("a1");
        let batch = pool.batch(10, small * 3);
        assert_eq!(label(&batch), ["c1", "a1"]);
        let total: usize = batch.iter().map(|t| t.signed.encoded_len()).sum();
        assert!(total <= small * 3);
        // With room for everything, b4 comes first in b's positions.
        assert_eq!(label(&pool.batch(10, 1 << 20)), ["b4", "b5", "c1", "a1"]);
    }

    #[test]
    fn oversized_head_does_not_block_others() {
        let mut pool = Mempool::new(100, 1 << 20);
        pool.insert(tx(SignerKind::Device, "big", 1, 2000))
            .expect("big");
        pool.insert(dev("a", 1)).expect("a1");
        assert_eq!(label(&pool.batch(10, 500)), ["a1"]);
    }

    #[test]
    fn remove_after_commit() {
        let mut pool = Mempool::new(100, 1 << 20);
        let txs: Vec<_> = (1..=5).map(|q| dev("a", q)).collect();
        for t in &txs {
            pool.insert(Arc::clone(t)).expect("insert");
        }
        let committed: Vec<TxId> = pool.batch(3, 1 << 20).iter().map(|t| t.id).collect();
        assert_eq!(pool.remove(&committed), 3);
        assert_eq!(pool.len(), 2);
        assert_eq!(
            pool.bytes(),
            txs[3].signed.encoded_len() + txs[4].signed.encoded_len()
        );
        assert!(!pool.contains(&txs[0].id));
        assert_eq!(label(&pool.batch(10, 1 << 20)), ["a4", "a5"]);
        // Unknown and repeated ids are ignored.
        assert_eq!(pool.remove(&committed), 0);
        assert_eq!(pool.remove(&[txs[3].id, txs[3].id]), 1);
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn works_with_really_checked_transactions() {
        let key = SecretKey::from_bytes(Scheme::P256, &[5u8; 32]).expect("key");
        let mut pool = Mempool::new(10, 1 << 20);
        for sequence in [2u64, 1] {
            let body = pb::TxBody {
                chain_id: "c".into(),
                signer: Some(pb::Signer {
                    kind: pb::SignerKind::Device as i32,
                    id: "urn:epc:id:giai:4000001.111".into(),
                    scheme: pb::SignatureScheme::EcdsaP256Sha256 as i32,
                    public_key: key.public_key(),
                }),
                sequence,
                time_ms: 1_763_700_000_000,
                action: Some(pb::tx_body::Action::SensorReport(pb::SensorReport {
                    shipment_id: "s".into(),
                    observed_at_ms: 1_763_700_000_000,
                    temperature_milli_c: 5_000,
                    humidity_permille: None,
                    location: None,
                })),
            };
            let checked = tx::check(tx::sign_body(&body, &key), "c").expect("valid");
            pool.insert(Arc::new(checked)).expect("insert");
        }
        let batch = pool.batch(10, 1 << 20);
        assert_eq!(batch.iter().map(|t| t.sequence).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn remembers_committed_ids_after_a_mark_for_a_bounded_number_of_blocks() {
        let mut pool = Mempool::new(10, 1 << 20);
        let (a, b) = (dev("a", 1), dev("b", 1));
        pool.insert(Arc::clone(&a)).expect("insert");
        // Nothing committed yet: the mark is 0 and nothing is remembered after it.
        let mark = pool.commit_mark();
        assert_eq!(mark, 0);
        assert_eq!(pool.committed_since(&a.id, mark), SinceMark::NotCommitted);

        // Block 1 holds a (pooled) and b (never pooled here): both are remembered.
        assert_eq!(pool.committed(1, &[a.id, b.id]), 1);
        assert!(pool.is_empty());
        assert_eq!(pool.commit_mark(), 1);
        assert_eq!(pool.committed_since(&a.id, mark), SinceMark::Committed(1));
        assert_eq!(pool.committed_since(&b.id, mark), SinceMark::Committed(1));
        // A check made at mark 1 saw block 1 in the store already.
        assert_eq!(pool.committed_since(&a.id, 1), SinceMark::NotCommitted);

        // After REMEMBERED_BLOCKS more blocks, block 1 is forgotten: a mark before it
        // can no longer be answered, a recent one still can.
        for height in 2..=(REMEMBERED_BLOCKS as u64 + 1) {
            pool.committed(height, &[dev("c", height).id]);
        }
        assert_eq!(pool.committed_since(&a.id, 0), SinceMark::Unknown);
        assert_eq!(pool.committed_since(&a.id, 1), SinceMark::NotCommitted);
        let last = REMEMBERED_BLOCKS as u64 + 1;
        assert_eq!(
            pool.committed_since(&dev("c", last).id, 1),
            SinceMark::Committed(last)
        );
        assert_eq!(pool.recent.len(), REMEMBERED_BLOCKS);
        assert_eq!(pool.recent_ids.len(), REMEMBERED_BLOCKS);
    }

    #[test]
    fn remembered_ids_are_bounded_however_large_the_blocks() {
        let mut pool = Mempool::new(10, 1 << 20);
        let block = |height: u64, n: usize| -> Vec<TxId> {
            (0..n)
                .map(|i| TxId::of_body(format!("{height}/{i}").as_bytes()))
                .collect()
        };
        let half = REMEMBERED_IDS / 2;
        let (b1, b2, b3) = (block(1, half), block(2, half), block(3, half));
        pool.committed(1, &b1);
        pool.committed(2, &b2);
        assert_eq!(pool.committed_since(&b1[0], 0), SinceMark::Committed(1));
        // A third block takes the total over the bound: the oldest goes, no more.
        pool.committed(3, &b3);
        assert_eq!(pool.recent_len, REMEMBERED_IDS);
        assert_eq!(pool.committed_since(&b1[0], 0), SinceMark::Unknown);
        assert_eq!(pool.committed_since(&b2[0], 1), SinceMark::Committed(2));
        assert_eq!(pool.recent_ids.len(), REMEMBERED_IDS);
        // One block larger than the bound on its own is still remembered.
        let huge = block(4, REMEMBERED_IDS + 1);
        pool.committed(4, &huge);
        assert_eq!(pool.recent.len(), 1);
        assert_eq!(pool.committed_since(&huge[0], 3), SinceMark::Committed(4));
        assert_eq!(pool.committed_since(&b3[0], 2), SinceMark::Unknown);
    }

    #[test]
    fn a_gap_in_committed_heights_forgets_what_came_before() {
        let mut pool = Mempool::new(10, 1 << 20);
        let a = dev("a", 1);
        pool.committed(1, &[a.id]);
        // Heights 2..=9 were committed without the pool hearing of them (a restart
        // starts the same way: the first block it hears of is not 1).
        pool.committed(10, &[dev("b", 1).id]);
        assert_eq!(pool.committed_since(&a.id, 0), SinceMark::Unknown);
        assert_eq!(pool.committed_since(&a.id, 8), SinceMark::Unknown);
        assert_eq!(pool.committed_since(&a.id, 9), SinceMark::NotCommitted);
        assert_eq!(
            pool.committed_since(&dev("b", 1).id, 9),
            SinceMark::Committed(10)
        );
    }
}
